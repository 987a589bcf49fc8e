"""`intermediate_size` in ernie_config.json sets the FFN width (default 4*hidden_size, the only
width of 2019), so converted models whose FFN is not 4*hidden load and match transformers;
and ErnieConfig rejects sizes no model can be built with, naming the config and the key."""
import json

import numpy as np
import paddle
import pytest

from ernie_testkit import file_2019
from model.ernie import ErnieConfig, ErnieForPretraining, ErnieModel
from utils import checkpoint as ckpt
from utils import format_hf
from utils.errors import DataError


def base(**change):
    cfg = dict(attention_probs_dropout_prob=0.0, hidden_act="gelu", hidden_dropout_prob=0.0,
               hidden_size=48, initializer_range=0.02, max_position_embeddings=40,
               num_attention_heads=4, num_hidden_layers=2, type_vocab_size=2, vocab_size=120)
    cfg.update(change)
    return cfg


def write(tmp_path, cfg, name="ernie_config.json"):
    path = tmp_path / name
    path.write_text(json.dumps(cfg))
    return path


def ffn_shapes(model):
    return {p.name: list(p.shape) for p in model.parameters() if "_ffn_fc_" in p.name}


# ---- the FFN width ----------------------------------------------------------------------------

def test_the_ffn_is_4h_without_the_key_and_intermediate_size_with_it():
    assert ffn_shapes(ErnieModel(ErnieConfig(base())))["encoder_layer_1_ffn_fc_0.w_0"] == \
        [48, 192]
    shapes = ffn_shapes(ErnieModel(ErnieConfig(base(intermediate_size=100))))
    assert shapes["encoder_layer_0_ffn_fc_0.w_0"] == [48, 100]
    assert shapes["encoder_layer_0_ffn_fc_0.b_0"] == [100]
    assert shapes["encoder_layer_1_ffn_fc_1.w_0"] == [100, 48]
    assert shapes["encoder_layer_1_ffn_fc_1.b_0"] == [48]
    # null reads as absent, as every optional key of model/ernie.py
    assert ffn_shapes(ErnieModel(ErnieConfig(base(intermediate_size=None))))[
        "encoder_layer_0_ffn_fc_0.w_0"] == [48, 192]


def test_num_parameters_counts_the_encoder():
    for cfg in (base(), base(intermediate_size=100),
                base(use_task_id=True, task_type_vocab_size=3, sent_type_vocab_size=4)):
        config = ErnieConfig(cfg)
        built = sum(int(np.prod(p.shape)) for p in ErnieModel(config).parameters())
        assert config.num_parameters() == built


# ---- sizes --------------------------------------------------------------------------------------

@pytest.mark.parametrize("value", [0, -4, "100", True, 1.5])
def test_intermediate_size_must_be_a_positive_integer(tmp_path, value):
    path = write(tmp_path, base(intermediate_size=value))
    with pytest.raises(DataError, match="'intermediate_size' must be a positive integer") as err:
        ErnieConfig(path)
    assert str(path) in str(err.value)


@pytest.mark.parametrize("key,value", [
    ("hidden_size", 2 ** 40), ("intermediate_size", 2 ** 33), ("num_hidden_layers", 10 ** 6),
    ("vocab_size", 2 ** 40), ("max_position_embeddings", 2 ** 31),
    ("type_vocab_size", 2 ** 40)])
def test_an_absurd_size_names_the_config_and_the_key(tmp_path, key, value):
    cfg = base(**{key: value})
    if key == "hidden_size":
        cfg["num_attention_heads"] = 2
    path = write(tmp_path, cfg)
    with pytest.raises(DataError) as err:
        ErnieConfig(path)
    message = str(err.value)
    assert message.startswith("%s: '%s' is %d, more than " % (path, key, value)), message


def test_sizes_each_allowed_but_too_large_together(tmp_path):
    path = write(tmp_path, base(hidden_size=2 ** 15, num_attention_heads=2 ** 5,
                                num_hidden_layers=2 ** 10, vocab_size=2 ** 20))
    with pytest.raises(DataError) as err:
        ErnieConfig(path)
    message = str(err.value)
    assert message.startswith("%s: hidden_size 32768, num_hidden_layers 1024, vocab_size "
                              "1048576, max_position_embeddings 40 make a model of 1.32e+13 "
                              "parameters (52920 GB in float32); this toolkit builds up to "
                              "1e+11: check these keys" % path), message


@pytest.mark.parametrize("cfg", [
    # ERNIE 1.0 / 2.0 Base and Large, BERT/ERNIE large with a 50k vocabulary, a wide FFN
    base(hidden_size=768, num_attention_heads=12, num_hidden_layers=12, vocab_size=18000,
         max_position_embeddings=513),
    base(hidden_size=1024, num_attention_heads=16, num_hidden_layers=24, vocab_size=30522,
         max_position_embeddings=512, sent_type_vocab_size=4, task_type_vocab_size=16),
    base(hidden_size=1024, num_attention_heads=16, num_hidden_layers=24, vocab_size=50000,
         max_position_embeddings=2048, intermediate_size=4096),
    base(hidden_size=4096, num_attention_heads=64, num_hidden_layers=48, vocab_size=250000,
         max_position_embeddings=8192, intermediate_size=16384)])
def test_real_model_sizes_are_accepted(cfg):
    config = ErnieConfig(cfg)
    assert config.num_parameters() > 1e7


@pytest.mark.parametrize("name", ["ernie_config.json", "ernie_2.0_base_en_config.json"])
def test_the_2019_configs_are_accepted(name):
    config = ErnieConfig(file_2019("config/" + name))   # the 2.0 one is not shipped
    assert 5e7 < config.num_parameters() < 2e8


# ---- HF conversion carries intermediate_size ----------------------------------------------------

def test_hf_config_conversion_carries_intermediate_size_both_ways():
    hf = format_hf.ernie_to_hf_config(base(intermediate_size=100))
    assert hf["intermediate_size"] == 100
    assert format_hf.ernie_to_hf_config(base())["intermediate_size"] == 192
    assert format_hf.hf_to_ernie_config(hf) == base(intermediate_size=100)
    # a 4*hidden FFN is the 2019 default: the converted config stays a 2019 one
    assert "intermediate_size" not in format_hf.hf_to_ernie_config(dict(hf, intermediate_size=192))


def torch_batch(seed):
    rng = np.random.RandomState(seed)
    B, L = 3, 11
    src = rng.randint(1, 120, size=(B, L)).astype("int64")
    mask = np.zeros((B, L), "float32")
    sent = np.zeros((B, L), "int64")
    for b, n in enumerate([11, 7, 4]):
        mask[b, :n] = 1
        src[b, n:] = 0
        sent[b, n // 2:n] = 1
    pos = np.tile(np.arange(L, dtype="int64"), (B, 1))
    return src, sent, pos, mask


def randomize_torch(model, torch, seed):
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            noise = 0.2 * torch.randn(p.shape, generator=gen)
            p.copy_(1.0 + 0.5 * noise if "LayerNorm.weight" in name else noise)


@pytest.mark.parametrize("static", [False, True], ids=["eager", "static"])
def test_a_transformers_model_with_a_narrow_ffn_converts_and_matches(tmp_path, static):
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    from tools import convert_params
    hf_cfg = transformers.ErnieConfig(
        vocab_size=120, hidden_size=48, num_hidden_layers=2, num_attention_heads=4,
        intermediate_size=100, hidden_act="gelu", hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0, max_position_embeddings=40, type_vocab_size=2,
        layer_norm_eps=1e-5)
    hf = transformers.ErnieModel(hf_cfg)
    randomize_torch(hf, torch, seed=5)
    hf.eval()
    hf.save_pretrained(str(tmp_path / "hf"))

    # the command-line conversion: 2019 params/ and the ernie_config.json beside them
    assert convert_params.main([str(tmp_path / "hf"), str(tmp_path / "model" / "params"),
                                "--to", "paddle2019"]) == 0
    written = json.loads((tmp_path / "model" / "ernie_config.json").read_text())
    assert written["intermediate_size"] == 100 and written["hidden_size"] == 48
    cfg = ErnieConfig(str(tmp_path / "model" / "ernie_config.json"))
    model = ErnieModel(cfg)
    loaded, missing, _ = ckpt.init_pretraining_params(model, str(tmp_path / "model" / "params"))
    assert not missing
    model.eval()

    src, sent, pos, mask = torch_batch(seed=6)
    fn = paddle.jit.to_static(model, full_graph=True) if static else model
    seq, pooled = [o.numpy() for o in fn(*[paddle.to_tensor(x)
                                             for x in (src, sent, pos, mask)])]
    with torch.no_grad():
        out = hf(input_ids=torch.tensor(src), token_type_ids=torch.tensor(sent),
                 position_ids=torch.tensor(pos),
                 attention_mask=torch.tensor(mask.astype("int64")))
    real = mask.astype(bool)
    assert np.abs(seq[real] - out.last_hidden_state.numpy()[real]).max() <= 1e-5
    assert np.abs(pooled - out.pooler_output.numpy()).max() <= 1e-5
    assert np.std(seq[real]) > 0.1 and np.std(pooled) > 0.01     # not a vacuous comparison


def test_a_toolkit_model_with_a_narrow_ffn_exports_to_transformers(tmp_path):
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    cfg = ErnieConfig(base(intermediate_size=72, hidden_act="relu"))
    model = ErnieForPretraining(cfg)
    rng = np.random.RandomState(7)
    for p in model.parameters():
        scale = 1.0 if p.name.endswith("_layer_norm_scale") else 0.0
        p.set_value((scale + 0.2 * rng.randn(*p.shape)).astype("float32"))
    model.eval()
    ckpt.save_params(ckpt.model_params(model), str(tmp_path / "hf"), "hf", ernie_config=cfg)
    assert json.loads((tmp_path / "hf" / "config.json").read_text())["intermediate_size"] == 72
    hf, info = transformers.ErnieModel.from_pretrained(str(tmp_path / "hf"),
                                                       output_loading_info=True)
    assert not info["missing_keys"] and not info["mismatched_keys"], info
    hf.eval()
    src, sent, pos, mask = torch_batch(seed=8)
    seq, pooled = [o.numpy() for o in model.ernie(*[paddle.to_tensor(x)
                                                    for x in (src, sent, pos, mask)])]
    with torch.no_grad():
        out = hf(input_ids=torch.tensor(src), token_type_ids=torch.tensor(sent),
                 position_ids=torch.tensor(pos),
                 attention_mask=torch.tensor(mask.astype("int64")))
    real = mask.astype(bool)
    assert np.abs(seq[real] - out.last_hidden_state.numpy()[real]).max() <= 1e-5
    assert np.abs(pooled - out.pooler_output.numpy()).max() <= 1e-5

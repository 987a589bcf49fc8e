"""ErnieModel agrees with transformers.ErnieModel on the same random weights, through the
HF converter of utils.checkpoint: sequence output at real tokens and pooled output."""
import numpy as np
import paddle
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from model.ernie import ErnieConfig, ErnieForPretraining, ErnieModel
from utils.checkpoint import model_params, save_params

CONFIGS = {
    "relu_v1": dict(hidden_act="relu", type_vocab_size=2, max_position_embeddings=40),
    "gelu_task_v2": dict(hidden_act="gelu", sent_type_vocab_size=4, task_type_vocab_size=5,
                         use_task_id=True, max_position_embeddings=32),
}


def make_config(kind):
    base = dict(attention_probs_dropout_prob=0.0, hidden_dropout_prob=0.0, hidden_size=48,
                initializer_range=0.02, num_attention_heads=4, num_hidden_layers=3,
                vocab_size=120)
    base.update(CONFIGS[kind])
    return ErnieConfig(base)


def randomize(model, seed):
    """Random weights everywhere; layer-norm scales near 1 so they are not trivial."""
    rng = np.random.RandomState(seed)
    for p in model.parameters():
        shape = p.shape
        if p.name.endswith("_layer_norm_scale"):
            value = 1.0 + 0.1 * rng.randn(*shape)
        else:
            value = 0.2 * rng.randn(*shape)
        p.set_value(value.astype("float32"))


def make_batch(cfg, seed):
    rng = np.random.RandomState(seed)
    B, L = 3, 11
    lens = [L, 7, 4]
    src = rng.randint(1, cfg["vocab_size"], size=(B, L)).astype("int64")
    mask = np.zeros((B, L), "float32")
    sent = np.zeros((B, L), "int64")
    for b, n in enumerate(lens):
        mask[b, :n] = 1
        src[b, n:] = 0
        sent[b, n // 2:n] = 1
    pos = np.tile(np.arange(L, dtype="int64"), (B, 1))
    task = np.full((B, L), 3 if cfg.use_task_id else 0, "int64")
    return src, sent, pos, mask, task


def run_paddle(model, batch, static):
    fn = paddle.jit.to_static(model, full_graph=True) if static else model
    outs = fn(*[paddle.to_tensor(x) for x in batch])
    return [o.numpy() for o in outs]


def torch_inputs(batch):
    src, sent, pos, mask, task = batch
    return dict(input_ids=torch.tensor(src), token_type_ids=torch.tensor(sent),
                position_ids=torch.tensor(pos), attention_mask=torch.tensor(mask.astype("int64")),
                task_type_ids=torch.tensor(task))


@pytest.mark.parametrize("static", [False, True], ids=["eager", "static"])
@pytest.mark.parametrize("kind", sorted(CONFIGS))
def test_encoder_matches_transformers(kind, static, tmp_path):
    cfg = make_config(kind)
    model = ErnieModel(cfg)
    randomize(model, seed=1)
    model.eval()
    save_params(model_params(model), str(tmp_path / "hf"), "hf", ernie_config=cfg)
    hf, info = transformers.ErnieModel.from_pretrained(str(tmp_path / "hf"),
                                                       output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"], info
    hf.eval()

    batch = make_batch(cfg, seed=2)
    seq, pooled = run_paddle(model, batch, static)
    with torch.no_grad():
        out = hf(**torch_inputs(batch))
    real = batch[3].astype(bool)
    seq_diff = np.abs(seq[real] - out.last_hidden_state.numpy()[real]).max()
    pooled_diff = np.abs(pooled - out.pooler_output.numpy()).max()
    assert seq_diff <= 1e-5, seq_diff
    assert pooled_diff <= 1e-5, pooled_diff
    # the comparison is not vacuous: outputs vary across tokens and examples
    assert np.std(seq[real]) > 0.1 and np.std(pooled) > 0.01


@pytest.mark.parametrize("kind", sorted(CONFIGS))
def test_pretraining_heads_match_transformers(kind, tmp_path):
    cfg = make_config(kind)
    model = ErnieForPretraining(cfg)
    randomize(model, seed=3)
    model.eval()
    save_params(model_params(model), str(tmp_path / "hf"), "hf", ernie_config=cfg)
    hf, info = transformers.ErnieForPreTraining.from_pretrained(str(tmp_path / "hf"),
                                                                output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"], info
    hf.eval()

    batch = make_batch(cfg, seed=4)
    L = batch[0].shape[1]
    picks = [(0, 1), (0, 10), (1, 3), (2, 2)]
    mask_pos = np.array([b * L + j for b, j in picks], "int64")
    src, sent, pos, mask, task = [paddle.to_tensor(x) for x in batch]
    mlm, nsp = [o.numpy() for o in model(src, sent, pos, mask, paddle.to_tensor(mask_pos), task)]
    with torch.no_grad():
        out = hf(**torch_inputs(batch))
    hf_mlm = np.stack([out.prediction_logits.numpy()[b, j] for b, j in picks])
    assert np.abs(mlm - hf_mlm).max() <= 1e-4 * max(1.0, np.abs(hf_mlm).max())
    assert np.abs(nsp - out.seq_relationship_logits.numpy()).max() <= 1e-5

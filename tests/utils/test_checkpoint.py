"""The parameter formats (utils.format_paddle2019, format_pdparams, format_hf) and
utils.checkpoint: the legacy 2019 tensor files (against Paddle's own loader and jieba's real
Paddle 1.x parameter directory), .pdparams, HF transformers directories, format detection,
atomic writes, errors, and loading into a paddle.nn.Layer by 2019 names."""
import json
import os
import struct
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from ernie_testkit import (
    MAX_POS,
    N_HEAD,
    N_LAYERS,
    TASKS,
    TYPES,
    VOCAB,
    H,
    assert_same,
    ernie_config,
    ernie_params,
)
from utils import checkpoint as ckpt
from utils import format_hf, format_paddle2019, format_pdparams
from utils.errors import DataError, UsageError


def paddle_legacy_load(d, out_npz):
    """Paddle's own legacy loader (static graph, PIR off), in a subprocess -> .npz."""
    code = textwrap.dedent("""
        import sys, numpy as np, paddle
        paddle.enable_static()
        state = paddle.static.load_program_state(sys.argv[1])
        np.savez(sys.argv[2], **{k: np.asarray(v) for k, v in state.items()})
    """)
    env = dict(os.environ, FLAGS_enable_pir_api="0")
    subprocess.run([sys.executable, "-c", code, str(d), str(out_npz)], check=True, env=env,
                   capture_output=True, timeout=120)
    with np.load(out_npz) as z:
        return {k: z[k] for k in z.files}


# ------------------------------------------------------------------ legacy tensor files

def test_jieba_real_paddle1_dir_matches_paddle_loader(tmp_path):
    import jieba
    d = os.path.join(os.path.dirname(jieba.__file__), "lac_small", "model_baseline")
    ours = format_paddle2019.read_legacy_dir(d)
    theirs = paddle_legacy_load(d, tmp_path / "jieba.npz")
    assert len(ours) == 20 and sorted(ours) == sorted(theirs)
    assert ours["word_emb"].shape == (20941, 128) and ours["crfw"].shape == (59, 57)
    for k in ours:
        assert ours[k].dtype == theirs[k].dtype and np.array_equal(ours[k], theirs[k]), k
    assert ckpt.detect_format(d) == "legacy_dir"


def test_our_writer_is_read_by_paddle_loader(tmp_path):
    rng = np.random.default_rng(1)
    params = {
        "w_fp32_3d": rng.standard_normal((3, 4, 5)).astype(np.float32),
        "b_fp32_1d": rng.standard_normal(7).astype(np.float32),
        "fp64_2d": rng.standard_normal((2, 3)),
        "fp16_2d": rng.standard_normal((4, 2)).astype(np.float16),
        "int64_1d": rng.integers(-2**40, 2**40, 6, dtype=np.int64),
        "int32_2d": rng.integers(-1000, 1000, (2, 2), dtype=np.int32),
        "@LR_DECAY_COUNTER@": np.array([17], dtype=np.int64),
        "big_dim": rng.standard_normal((300, 2)).astype(np.float32),  # varint > 127
    }
    d = tmp_path / "params"
    format_paddle2019.write_legacy_dir(params, d)
    assert_same(format_paddle2019.read_legacy_dir(d), params)
    theirs = paddle_legacy_load(d, tmp_path / "ours.npz")
    assert_same(theirs, params)


def test_tensor_roundtrip_more_dtypes_and_bf16(tmp_path):
    for arr in [np.array([True, False]), np.arange(6, dtype=np.int16).reshape(2, 3),
                np.arange(4, dtype=np.uint8), np.arange(-2, 2, dtype=np.int8),
                np.array(3.5, dtype=np.float32), np.zeros((0, 3), np.float32)]:
        format_paddle2019.write_legacy_tensor(tmp_path / "t", arr)
        back = format_paddle2019.read_legacy_tensor(tmp_path / "t")
        assert back.dtype == arr.dtype and back.shape == arr.shape and np.array_equal(back, arr)
    # BF16 (VarType 22), in a file built by hand, is read as the exact float32 it represents.
    vals = np.array([1.5, -2.0, 3.140625], np.float32)
    bf = (vals.view(np.uint32) >> 16).astype("<u2")
    desc = bytes([0x08, 22, 0x10, 3])
    (tmp_path / "bf").write_bytes(struct.pack("<IQIi", 0, 0, 0, len(desc)) + desc + bf.tobytes())
    back = format_paddle2019.read_legacy_tensor(tmp_path / "bf")
    assert back.dtype == np.float32 and np.array_equal(back, vals)
    # packed dims and a LoD level are accepted too
    desc = bytes([0x08, 5, 0x12, 2, 2, 1])
    lod = struct.pack("<Q", 24) + struct.pack("<3Q", 0, 1, 2)
    (tmp_path / "lod").write_bytes(struct.pack("<IQ", 0, 1) + lod + struct.pack("<Ii", 0, len(desc))
                                   + desc + vals[:2].tobytes())
    np.testing.assert_array_equal(format_paddle2019.read_legacy_tensor(tmp_path / "lod"),
                                  vals[:2].reshape(2, 1))


def test_bad_tensor_files(tmp_path):
    good = tmp_path / "good"
    format_paddle2019.write_legacy_tensor(good, np.ones((4, 5), np.float32))
    data = good.read_bytes()
    (tmp_path / "trunc").write_bytes(data[:-3])
    with pytest.raises(DataError, match=r"trunc: truncated tensor file"):
        format_paddle2019.read_legacy_tensor(tmp_path / "trunc")
    (tmp_path / "version").write_bytes(b"\x07" + data[1:])
    with pytest.raises(DataError, match=r"version: corrupt tensor header"):
        format_paddle2019.read_legacy_tensor(tmp_path / "version")
    # unknown data type 99 in the TensorDesc
    i = data.index(b"\x08\x05")
    (tmp_path / "dtype").write_bytes(data[:i] + b"\x08\x63" + data[i + 2:])
    with pytest.raises(DataError, match=r"dtype: unknown tensor data type 99"):
        format_paddle2019.read_legacy_tensor(tmp_path / "dtype")
    (tmp_path / "trailing").write_bytes(data + b"\0" * 4)
    with pytest.raises(DataError, match=r"trailing: corrupt tensor file"):
        format_paddle2019.read_legacy_tensor(tmp_path / "trailing")
    (tmp_path / "tiny").write_bytes(b"\0\0")
    with pytest.raises(DataError, match=r"tiny: not a Paddle tensor file"):
        format_paddle2019.read_legacy_tensor(tmp_path / "tiny")
    with pytest.raises(DataError, match=r"nothere: no such file"):
        format_paddle2019.read_legacy_tensor(tmp_path / "nothere")


def test_legacy_dir_skips_our_files_and_rejects_others(tmp_path):
    d = tmp_path / "params"
    format_paddle2019.write_legacy_dir({"a": np.ones(2, np.float32)}, d)
    (d / "manifest.json").write_text("{}")
    (d / ".hidden").write_text("x")
    (d / "notes.txt").write_text("x")
    assert list(format_paddle2019.read_legacy_dir(d)) == ["a"]
    assert list(ckpt.load_params(tmp_path)) == ["a"]  # a model dir holding params/
    (d / "junk").write_text("not a tensor")
    with pytest.raises(DataError, match=r"junk"):
        format_paddle2019.read_legacy_dir(d)
    e = tmp_path / "empty"
    e.mkdir()
    with pytest.raises(DataError, match=r"empty: empty directory"):
        format_paddle2019.read_legacy_dir(e)
    with pytest.raises(DataError, match=r"empty: empty directory"):
        ckpt.load_params(e)
    with pytest.raises(DataError, match=r"missing: no such"):
        ckpt.load_params(tmp_path / "missing")
    with pytest.raises(DataError, match=r"parameter name"):
        format_paddle2019.write_legacy_dir({"x.json": np.ones(1)}, tmp_path / "bad")


# ------------------------------------------------------------------ atomic writes

def test_failed_dir_write_leaves_nothing(tmp_path, monkeypatch):
    real = format_paddle2019.write_legacy_tensor
    calls = []

    def flaky(path, arr):
        if len(calls) == 2:
            raise RuntimeError("disk on fire")
        calls.append(path)
        real(path, arr)

    monkeypatch.setattr(format_paddle2019, "write_legacy_tensor", flaky)
    params = ernie_params()
    dest = tmp_path / "params"
    with pytest.raises(RuntimeError):
        format_paddle2019.write_legacy_dir(params, dest)
    assert len(calls) == 2 and not dest.exists()
    assert os.listdir(tmp_path) == []

    # An existing destination keeps its old content when the rewrite fails.
    monkeypatch.setattr(format_paddle2019, "write_legacy_tensor", real)
    old = {"old_a": np.arange(3, dtype=np.float32), "old_b": np.ones((2, 2), np.float64)}
    format_paddle2019.write_legacy_dir(old, dest)
    calls.clear()
    monkeypatch.setattr(format_paddle2019, "write_legacy_tensor", flaky)
    with pytest.raises(RuntimeError):
        format_paddle2019.write_legacy_dir(params, dest)
    assert_same(format_paddle2019.read_legacy_dir(dest), old)
    assert os.listdir(tmp_path) == ["params"]

    # A successful rewrite replaces the old tensors (keeping our side files) and no tmp remains.
    monkeypatch.setattr(format_paddle2019, "write_legacy_tensor", real)
    (dest / "vocab.txt").write_text("[PAD]\n")
    format_paddle2019.write_legacy_dir(params, dest)
    assert_same(format_paddle2019.read_legacy_dir(dest), params)
    assert (dest / "vocab.txt").read_text() == "[PAD]\n"
    assert os.listdir(tmp_path) == ["params"]


def test_refuses_to_replace_a_non_parameter_directory(tmp_path):
    d = tmp_path / "home"
    d.mkdir()
    (d / "thesis.tex").write_text("precious")
    with pytest.raises(UsageError, match="refusing to replace"):
        format_paddle2019.write_legacy_dir({"a": np.ones(1, np.float32)}, d)
    with pytest.raises(UsageError, match="refusing to replace"):
        format_hf.write_hf_dir(ernie_params(), ernie_config(), d)
    with pytest.raises(UsageError, match="refusing to replace"):
        format_pdparams.write_pdparams({"a": np.ones(1)}, d / "thesis.tex")
    assert (d / "thesis.tex").read_text() == "precious" and os.listdir(d) == ["thesis.tex"]


def test_failed_pdparams_write_keeps_old_file(tmp_path, monkeypatch):
    import paddle
    path = tmp_path / "m.pdparams"
    format_pdparams.write_pdparams({"a": np.ones(2, np.float32)}, path)

    def boom(obj, p, **kw):
        with open(p, "wb") as f:
            f.write(b"\x80\x04half")
        raise OSError("killed")

    monkeypatch.setattr(paddle, "save", boom)
    with pytest.raises(OSError):
        format_pdparams.write_pdparams({"b": np.zeros(3, np.float32)}, path)
    assert list(format_pdparams.read_pdparams(path)) == ["a"]
    assert os.listdir(tmp_path) == ["m.pdparams"]


# ------------------------------------------------------------------ pdparams

def test_pdparams_roundtrip_and_bad_files(tmp_path):
    params = ernie_params(heads=("pretraining",))
    params["step"] = np.array([5], np.int64)
    path = tmp_path / "model.pdparams"
    ckpt.save_params(params, path, "pdparams")
    assert ckpt.detect_format(path) == "pdparams"
    assert_same(ckpt.load_params(path), params)
    (tmp_path / "text.pdparams").write_text("hello")
    with pytest.raises(DataError, match=r"text.pdparams: not a .pdparams file"):
        format_pdparams.read_pdparams(tmp_path / "text.pdparams")
    with pytest.raises(DataError, match=r"text.pdparams: not a parameter file"):
        ckpt.detect_format(tmp_path / "text.pdparams")
    (tmp_path / "cut.pdparams").write_bytes(path.read_bytes()[:200])
    with pytest.raises(DataError, match=r"cut.pdparams: cannot read"):
        format_pdparams.read_pdparams(tmp_path / "cut.pdparams")


# ------------------------------------------------------------------ HF

HEAD_CLASS = {"base": "ErnieModel", "pretraining": "ErnieForPreTraining",
              "cls": "ErnieForSequenceClassification", "ner": "ErnieForTokenClassification",
              "mrc": "ErnieForQuestionAnswering"}


def hf_load(d, cls_name):
    import transformers
    cls = getattr(transformers, cls_name)
    model, info = cls.from_pretrained(str(d), output_loading_info=True)
    return model, info


@pytest.mark.parametrize("head,use_task_id", [
    ("base", False), ("base", True), ("pretraining", True), ("cls", False), ("ner", True),
    ("mrc", False)])
def test_roundtrip_2019_pdparams_hf_2019_and_transformers_loads(tmp_path, head, use_task_id):
    import torch
    heads = () if head == "base" else (head,)
    params = ernie_params(use_task_id, heads, num_labels=5)
    cfg = ernie_config(use_task_id)
    ckpt.save_params(params, tmp_path / "a", "paddle2019")
    p1 = ckpt.load_params(tmp_path / "a")
    ckpt.save_params(p1, tmp_path / "b.pdparams", "pdparams")
    p2 = ckpt.load_params(tmp_path / "b.pdparams")
    ckpt.save_params(p2, tmp_path / "hf", "hf", ernie_config=cfg)
    assert ckpt.detect_format(tmp_path / "hf") == "hf"
    p3, hf_cfg = format_hf.read_hf_dir(tmp_path / "hf")
    ckpt.save_params(p3, tmp_path / "c", "paddle2019")
    assert_same(format_paddle2019.read_legacy_dir(tmp_path / "c"), params)

    assert hf_cfg["architectures"] == [HEAD_CLASS[head]]
    assert hf_cfg["layer_norm_eps"] == 1e-5 and hf_cfg["intermediate_size"] == 4 * H
    assert hf_cfg["use_task_id"] is use_task_id

    model, info = hf_load(tmp_path / "hf", HEAD_CLASS[head])
    assert not info["missing_keys"] and not info["unexpected_keys"], info
    assert not info["mismatched_keys"] and not info["error_msgs"], info
    sd = {k: v.detach().numpy() for k, v in model.state_dict().items()}
    pre = "" if head == "base" else "ernie."
    np.testing.assert_array_equal(sd[pre + "embeddings.word_embeddings.weight"],
                                  params["word_embedding"])
    np.testing.assert_array_equal(sd[pre + "encoder.layer.1.intermediate.dense.weight"],
                                  params["encoder_layer_1_ffn_fc_0.w_0"].T)
    if use_task_id:
        np.testing.assert_array_equal(sd[pre + "embeddings.task_type_embeddings.weight"],
                                      params["task_embedding"])
    if head == "pretraining":
        np.testing.assert_array_equal(sd["cls.predictions.decoder.weight"],
                                      params["word_embedding"])
        np.testing.assert_array_equal(sd["cls.predictions.decoder.bias"],
                                      params["mask_lm_out_fc.b_0"])
        np.testing.assert_array_equal(sd["cls.seq_relationship.weight"],
                                      params["next_sent_fc.w_0"].T)
    if head in ("cls", "ner"):
        name = "_cls_out_w" if head == "cls" else "cls_seq_label_out_w"
        np.testing.assert_array_equal(sd["classifier.weight"], params[name].T)
        assert model.config.num_labels == 5
    if head == "mrc":  # column 0 = start logits, column 1 = end logits
        with torch.no_grad():
            out = model(input_ids=torch.tensor([[1, 2, 3]]))
        np.testing.assert_array_equal(sd["qa_outputs.weight"][0], params["cls_mrc_out_w"][:, 0])
        assert out.start_logits.shape == (1, 3)
    if head == "base":  # the bare ErnieModel also loads from a head-less dir
        model2, info2 = hf_load(tmp_path / "hf", "ErnieModel")
        assert not info2["missing_keys"] and not info2["unexpected_keys"]


def test_hf_output_matches_2019_numpy_forward(tmp_path):
    """HF ErnieModel on our converted weights == a numpy 2019 forward (relu, task id)."""
    import torch
    params = ernie_params(True, seed=3)
    for k in params:
        if k.endswith("layer_norm_scale"):
            params[k] = 1 + 0.1 * params[k]
        elif not k.endswith(("embedding", "layer_norm_bias")):
            params[k] = 0.1 * params[k]
    cfg = ernie_config(True, act="relu")
    format_hf.write_hf_dir(params, cfg, tmp_path / "hf")
    model, _ = hf_load(tmp_path / "hf", "ErnieModel")
    model.eval()
    ids, sent, task = [[3, 7, 9, 11]], [[0, 0, 1, 1]], [[2, 2, 2, 2]]
    with torch.no_grad():
        out = model(input_ids=torch.tensor(ids), token_type_ids=torch.tensor(sent),
                    task_type_ids=torch.tensor(task))

    def ln(x, s, b):
        m, v = x.mean(-1, keepdims=True), x.var(-1, keepdims=True)
        return (x - m) / np.sqrt(v + 1e-5) * s + b

    P = {k: v.astype(np.float64) for k, v in params.items()}
    x = (P["word_embedding"][ids[0]] + P["pos_embedding"][:4] + P["sent_embedding"][sent[0]]
         + P["task_embedding"][task[0]])
    x = ln(x, P["pre_encoder_layer_norm_scale"], P["pre_encoder_layer_norm_bias"])
    d = H // N_HEAD
    for i in range(N_LAYERS):
        g = lambda n, i=i: P["encoder_layer_%d_%s" % (i, n)]  # noqa: E731
        q, k, v = [(x @ g("multi_head_att_%s_fc.w_0" % n) + g("multi_head_att_%s_fc.b_0" % n))
                   .reshape(4, N_HEAD, d).transpose(1, 0, 2) for n in ("query", "key", "value")]
        a = q @ k.transpose(0, 2, 1) / np.sqrt(d)
        a = np.exp(a - a.max(-1, keepdims=True))
        a /= a.sum(-1, keepdims=True)
        c = (a @ v).transpose(1, 0, 2).reshape(4, H)
        c = c @ g("multi_head_att_output_fc.w_0") + g("multi_head_att_output_fc.b_0")
        x = ln(x + c, g("post_att_layer_norm_scale"), g("post_att_layer_norm_bias"))
        f = np.maximum(x @ g("ffn_fc_0.w_0") + g("ffn_fc_0.b_0"), 0)
        f = f @ g("ffn_fc_1.w_0") + g("ffn_fc_1.b_0")
        x = ln(x + f, g("post_ffn_layer_norm_scale"), g("post_ffn_layer_norm_bias"))
    pooled = np.tanh(x[0] @ P["pooled_fc.w_0"] + P["pooled_fc.b_0"])
    np.testing.assert_allclose(out.last_hidden_state[0].numpy(), x, atol=2e-5)
    np.testing.assert_allclose(out.pooler_output[0].numpy(), pooled, atol=2e-5)


def test_hf_extra_params_optimizer_state_and_head_choice(tmp_path, capsys):
    params = ernie_params(heads=("pretraining", "cls"))
    params["word_embedding_moment1_0"] = np.zeros((VOCAB, H), np.float32)
    params["@LR_DECAY_COUNTER@"] = np.array([3], np.int64)
    format_hf.write_hf_dir(params, ernie_config(), tmp_path / "hf")
    assert "dropped 2 optimizer-state" in capsys.readouterr().out
    back, cfg = format_hf.read_hf_dir(tmp_path / "hf")
    assert cfg["architectures"] == ["ErnieForSequenceClassification"]
    expect = {k: v for k, v in params.items() if not format_paddle2019.is_optimizer_state(k)}
    assert_same(back, expect)  # pretraining heads travel in the extra file
    _, info = hf_load(tmp_path / "hf", "ErnieForSequenceClassification")
    assert not info["missing_keys"] and not info["unexpected_keys"]
    two = ernie_params(heads=("cls", "ner"))
    with pytest.raises(DataError, match="several fine-tune heads"):
        format_hf.write_hf_dir(two, ernie_config(), tmp_path / "hf2")
    format_hf.write_hf_dir(two, ernie_config(), tmp_path / "hf2", head="ner")
    assert_same(format_hf.read_hf_dir(tmp_path / "hf2")[0], two)
    # wrong config: vocab size disagrees with word_embedding
    bad = dict(ernie_config(), vocab_size=VOCAB + 1)
    with pytest.raises(DataError, match="word_embedding"):
        format_hf.write_hf_dir(params, bad, tmp_path / "hf3")
    # missing parameter for the chosen class
    incomplete = ernie_params()
    del incomplete["pooled_fc.b_0"]
    with pytest.raises(DataError, match="missing parameters pooled_fc.b_0"):
        format_hf.write_hf_dir(incomplete, ernie_config(), tmp_path / "hf4")
    assert not (tmp_path / "hf3").exists() and not (tmp_path / "hf4").exists()


def test_untied_mlm_output_weight(tmp_path):
    params = ernie_params(heads=("pretraining",))
    params["mask_lm_out_fc.w_0"] = np.random.default_rng(5).standard_normal(
        (H, VOCAB)).astype(np.float32)
    format_hf.write_hf_dir(params, ernie_config(), tmp_path / "hf")
    model, info = hf_load(tmp_path / "hf", "ErnieForPreTraining")
    assert not info["missing_keys"] and not info["unexpected_keys"]
    np.testing.assert_array_equal(model.cls.predictions.decoder.weight.detach().numpy(),
                                  params["mask_lm_out_fc.w_0"].T)
    np.testing.assert_array_equal(model.ernie.embeddings.word_embeddings.weight.detach().numpy(),
                                  params["word_embedding"])
    assert_same(format_hf.read_hf_dir(tmp_path / "hf")[0], params)


def test_read_transformers_saved_dirs_bert_names_and_torch_bin(tmp_path, monkeypatch):
    import torch
    import transformers
    torch.manual_seed(0)
    # a BertModel saved by transformers (no prefix, bert names == ernie names)
    bcfg = transformers.BertConfig(vocab_size=VOCAB, hidden_size=H, num_hidden_layers=N_LAYERS,
                                   num_attention_heads=N_HEAD, intermediate_size=4 * H,
                                   max_position_embeddings=MAX_POS, type_vocab_size=TYPES)
    bert = transformers.BertForTokenClassification(transformers.BertConfig(
        **bcfg.to_dict(), num_labels=4))
    bert.save_pretrained(tmp_path / "bert")
    params, cfg = format_hf.read_hf_dir(tmp_path / "bert")
    sd = {k: v.detach().numpy() for k, v in bert.state_dict().items()}
    np.testing.assert_array_equal(params["cls_seq_label_out_w"], sd["classifier.weight"].T)
    np.testing.assert_array_equal(params["encoder_layer_1_multi_head_att_key_fc.w_0"],
                                  sd["bert.encoder.layer.1.attention.self.key.weight"].T)
    assert "pooled_fc.w_0" not in params and len(params) == 5 + 16 * N_LAYERS + 2
    # pytorch_model.bin, read through torch (prefixed ErnieForQuestionAnswering names)
    ecfg = transformers.ErnieConfig(**{k: v for k, v in bcfg.to_dict().items()
                                       if k not in ("model_type", "architectures")})
    qa = transformers.ErnieForQuestionAnswering(ecfg)
    b = tmp_path / "bin"
    b.mkdir()
    torch.save(qa.state_dict(), b / "pytorch_model.bin")
    (b / "config.json").write_text(json.dumps(ecfg.to_dict()))
    assert ckpt.detect_format(b) == "hf"
    params = ckpt.load_params(b)
    np.testing.assert_array_equal(params["cls_mrc_out_w"],
                                  qa.qa_outputs.weight.detach().numpy().T)
    # without torch: a one-line DataError suggesting safetensors
    monkeypatch.setitem(sys.modules, "torch", None)
    with pytest.raises(DataError, match=r"pytorch_model.bin: .*needs torch.*safetensors"):
        ckpt.load_params(b)


def test_bad_hf_dirs(tmp_path):
    d = tmp_path / "hf"
    format_hf.write_hf_dir(ernie_params(), ernie_config(), d)
    (d / "model.safetensors").rename(tmp_path / "w.safetensors")
    with pytest.raises(DataError, match=r"hf: HF directory has neither"):
        ckpt.load_params(d)
    with pytest.raises(DataError, match=r"hf: HF directory has neither"):
        format_hf.read_hf_dir(d)
    from safetensors.numpy import save_file
    save_file({"embeddings.word_embeddings.weight": np.zeros((2, 2), np.float32),
               "foo.bar.weight": np.zeros(2, np.float32)}, str(d / "model.safetensors"))
    with pytest.raises(DataError, match=r"model.safetensors: unknown parameter names "
                                        r"foo.bar.weight"):
        ckpt.load_params(d)
    (d / "model.safetensors").write_bytes(b"garbage!garbage!")
    with pytest.raises(DataError, match=r"model.safetensors: cannot read"):
        ckpt.load_params(d)


def test_config_conversions():
    cfg = ernie_config(True)
    hf = format_hf.ernie_to_hf_config(cfg, "cls", num_labels=3)
    assert hf["type_vocab_size"] == TYPES and hf["task_type_vocab_size"] == TASKS
    assert hf["model_type"] == "ernie" and hf["id2label"]["2"] == "LABEL_2"
    back = format_hf.hf_to_ernie_config(hf)
    assert back == cfg
    hf_cfg = format_hf.ernie_to_hf_config(ernie_config())
    assert format_hf.hf_to_ernie_config(hf_cfg) == ernie_config()
    # an FFN that is not 4*hidden is carried both ways (the 2019 layout has no key for 4*H)
    narrow = format_hf.hf_to_ernie_config(dict(hf, intermediate_size=100))
    assert narrow == dict(cfg, intermediate_size=100)
    assert format_hf.ernie_to_hf_config(narrow)["intermediate_size"] == 100


# ------------------------------------------------------------------ paddle models

def test_is_pretraining_param():
    p = ernie_params(True, ("pretraining", "cls", "ner", "mrc"))
    enc = {k for k in p if format_paddle2019.is_pretraining_param(k)}
    assert len(enc) == 6 + 16 * N_LAYERS + 2
    assert not any(format_paddle2019.is_pretraining_param(n) for n in (
        "_cls_out_w", "mask_lm_trans_fc.w_0", "next_sent_fc.b_0", "word_embedding_moment1_0",
        "encoder_layer_0_ffn_fc_0.w_0_moment2_0", "encoder_layer_0_ffn_fc_0.w_0_beta1_pow_acc_0",
        "@LR_DECAY_COUNTER@"))
    assert format_paddle2019.is_optimizer_state("encoder_layer_0_ffn_fc_0.w_0_moment2_0")
    assert not format_paddle2019.is_optimizer_state("encoder_layer_0_ffn_fc_0.w_0")


def tiny_model():
    import paddle
    with paddle.utils.unique_name.guard():
        class Tiny(paddle.nn.Layer):
            def __init__(self):
                super().__init__()
                self.emb = paddle.nn.Embedding(
                    VOCAB, H, weight_attr=paddle.ParamAttr(name="word_embedding"))
                self.pool = paddle.nn.Linear(H, H,
                                             weight_attr=paddle.ParamAttr(name="pooled_fc.w_0"),
                                             bias_attr=paddle.ParamAttr(name="pooled_fc.b_0"))
                self.cls = paddle.nn.Linear(H, 3, weight_attr=paddle.ParamAttr(name="_cls_out_w"),
                                            bias_attr=paddle.ParamAttr(name="_cls_out_b"))
        return Tiny()


def test_assign_params_and_init_functions(tmp_path, capsys):
    m = tiny_model()
    params = ernie_params(heads=("cls",))
    loaded, missing, unexpected = ckpt.assign_params(m, params)
    assert sorted(loaded) == ["_cls_out_b", "_cls_out_w", "pooled_fc.b_0", "pooled_fc.w_0",
                              "word_embedding"]
    assert missing == [] and "pos_embedding" in unexpected
    got = ckpt.model_params(m)
    for k in got:
        np.testing.assert_array_equal(got[k], params[k])
    got["word_embedding"][:] = 0  # a copy, not a view
    assert np.array_equal(m.emb.weight.numpy(), params["word_embedding"])

    with pytest.raises(DataError, match=r"_cls_out_w: shape \[32, 4\] in the checkpoint, "
                                        r"\[32, 3\] in the model"):
        ckpt.assign_params(m, ernie_params(heads=("cls",), num_labels=4))

    # init_pretraining_params: encoder only, 2019 message, missing/unexpected listed
    d = tmp_path / "pretrained" / "params"
    d.parent.mkdir()
    p2 = ernie_params(heads=("pretraining",), seed=9)
    format_paddle2019.write_legacy_dir(p2, d)
    m2 = tiny_model()
    cls_before = m2.cls.weight.numpy().copy()
    loaded, missing, unexpected = ckpt.init_pretraining_params(m2, d.parent)
    out = capsys.readouterr().out
    assert "Load pretraining parameters from %s." % d.parent in out
    assert sorted(loaded) == ["pooled_fc.b_0", "pooled_fc.w_0", "word_embedding"]
    assert missing == [] and "pos_embedding" in unexpected
    assert "mask_lm_trans_fc.w_0" not in unexpected and "unexpected %d" % len(unexpected) in out
    np.testing.assert_array_equal(m2.cls.weight.numpy(), cls_before)
    np.testing.assert_array_equal(m2.emb.weight.numpy(), p2["word_embedding"])

    # init_checkpoint: everything present, from a .pdparams, missing head reported
    f = tmp_path / "ck.pdparams"
    p3 = ernie_params(seed=4)
    p3["word_embedding_moment1_0"] = np.zeros((VOCAB, H), np.float32)
    format_pdparams.write_pdparams(p3, f)
    loaded, missing, unexpected = ckpt.init_checkpoint(m2, f)
    out = capsys.readouterr().out
    assert "Load model from %s" % f in out
    assert missing == ["_cls_out_b", "_cls_out_w"] and "_cls_out_w" in out
    assert "word_embedding_moment1_0" not in unexpected
    np.testing.assert_array_equal(m2.pool.weight.numpy(), p3["pooled_fc.w_0"])
    # shape error from a file names the file
    with pytest.raises(DataError, match=r"ck2.pdparams: parameter _cls_out_w: shape"):
        format_pdparams.write_pdparams(ernie_params(heads=("cls",), num_labels=7),
                                       tmp_path / "ck2.pdparams")
        ckpt.init_checkpoint(m2, tmp_path / "ck2.pdparams")


def test_an_inference_model_folder_is_refused_naming_its_checkpoint(tmp_path):
    # a serving.export folder: programs with combined parameters, and the manifest's source
    folder = tmp_path / "my_model"
    folder.mkdir()
    for name in ("model.json", "model.pdiparams", "encoder.json", "encoder.pdiparams"):
        (folder / name).write_bytes(b"\0" * 64)
    (folder / "manifest.json").write_text(json.dumps(
        {"source_checkpoint": {"path": "/runs/checkpoints/step_80", "files": {}}}))
    with pytest.raises(DataError, match="inference model folder.*/runs/checkpoints/step_80"):
        ckpt.load_params(folder)


def test_a_model_folder_given_as_a_checkpoint_names_the_checkpoint_it_came_from(tmp_path):
    # a serving.export folder's manifest is {name: sha256}, not a checkpoint's
    folder = tmp_path / "my_model"
    folder.mkdir()
    (folder / "encoder.pdiparams").write_bytes(b"\0" * 64)
    (folder / "manifest.json").write_text(json.dumps(
        {"format_version": 1, "task": "classify", "files": {"encoder.pdiparams": "0" * 64},
         "source_checkpoint": {"path": "/runs/checkpoints/step_80", "files": {}}}))
    with pytest.raises(DataError, match=r"my_model: a model folder \(python -m serving.export\), "
                                        r"not a parameter checkpoint; give the checkpoint it "
                                        r"was exported from \(/runs/checkpoints/step_80\)$"):
        ckpt.init_checkpoint(tiny_model(), folder)


@pytest.mark.parametrize("files", [{"w": "0" * 64}, {"w": {"bytes": 4}}, ["w"], None])
def test_a_malformed_checkpoint_manifest_is_one_line_error(tmp_path, files):
    d = tmp_path / "step_2"
    d.mkdir()
    (d / "w").write_bytes(b"\0" * 4)
    (d / "manifest.json").write_text(json.dumps({"format": "ernie checkpoint", "version": 1,
                                                 "files": files}))
    with pytest.raises(DataError, match=r"manifest.json: unreadable checkpoint manifest$"):
        ckpt.verify_checkpoint(d)

"""ErnieModel agrees with transformers.ErnieModel on the same random weights, through the
HF converter of utils.checkpoint: sequence output at real tokens and pooled output."""
import numpy as np
import paddle
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from model.ernie import ErnieConfig, ErnieForPretraining, ErnieModel  # noqa: E402
from utils.checkpoint import model_params, save_params  # noqa: E402

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


@pytest.mark.parametrize("static", [False, True], ids=["eager", "static"])
@pytest.mark.parametrize("kind", sorted(CONFIGS))
def test_pretraining_gradients_match_transformers(kind, static, tmp_path):
    """Training mode (dropout 0, so both sides are deterministic): the gradient of MLM + NSP
    cross-entropy reaches every parameter as transformers' autograd computes it. Checks the
    training-only code paths (the bias added by matmul, the to_static step) that the
    inference comparisons above do not run."""
    import paddle.nn.functional as F

    from utils.format_hf import params_to_hf
    cfg = make_config(kind)
    model = ErnieForPretraining(cfg)
    randomize(model, seed=5)
    model.train()
    save_params(model_params(model), str(tmp_path / "hf"), "hf", ernie_config=cfg)
    hf = transformers.ErnieForPreTraining.from_pretrained(str(tmp_path / "hf"))
    hf.train()

    batch = make_batch(cfg, seed=6)
    L = batch[0].shape[1]
    picks = [(0, 1), (0, 10), (1, 3), (2, 2)]
    mask_label = np.array([5, 7, 9, 11], "int64")
    nsp_label = np.array([0, 1, 1], "int64")

    def loss_fn(src, sent, pos, mask, mask_pos, task):
        mlm, nsp = model(src, sent, pos, mask, mask_pos, task)
        return (F.cross_entropy(mlm, paddle.to_tensor(mask_label)[:, None]).mean()
                + F.cross_entropy(nsp, paddle.to_tensor(nsp_label)[:, None]).mean())

    fn = paddle.jit.to_static(loss_fn, full_graph=True) if static else loss_fn
    src, sent, pos, mask, task = [paddle.to_tensor(x) for x in batch]
    mask_pos = paddle.to_tensor(np.array([b * L + j for b, j in picks], "int64"))
    fn(src, sent, pos, mask, mask_pos, task).backward()

    out = hf(**torch_inputs(batch))
    logits = torch.stack([out.prediction_logits[b, j] for b, j in picks])
    (torch.nn.functional.cross_entropy(logits, torch.tensor(mask_label))
     + torch.nn.functional.cross_entropy(out.seq_relationship_logits,
                                         torch.tensor(nsp_label))).backward()

    grads = {p.name: p.grad.numpy() for p in model.parameters() if p.grad is not None}
    ours, _, _, _ = params_to_hf(grads, cfg, head="pretraining")
    theirs = {k: p.grad.numpy() for k, p in hf.named_parameters() if p.grad is not None}
    assert set(ours) == set(theirs)
    for name, g in ours.items():
        scale = np.abs(theirs[name]).max()
        if ".attention.self.key.bias" in name:
            # zero in exact arithmetic (softmax ignores a shift shared by all keys): both
            # sides hold rounding noise only
            assert scale < 1e-6 and np.abs(g).max() < 1e-6, name
            continue
        assert scale > 1e-6, name  # a gradient that vanished would compare trivially
        assert np.abs(g - theirs[name]).max() <= 1e-4 * scale, name

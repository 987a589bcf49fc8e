"""The 2019 LR schedules, weight-decay exclusion and the Adam + decay + clipping update,
checked against a numpy re-statement of the 2019 formulas."""
import numpy as np
import paddle
import pytest

from utils.errors import UsageError
from utils.optimization import (
    LinearWarmupDecay,
    NoamDecay,
    exclude_from_weight_decay,
    make_lr_schedule,
    make_optimizer,
)


def lrs(schedule, n):
    out = []
    for _ in range(n):
        out.append(schedule())
        schedule.step()
    return out


def test_linear_warmup_decay_values():
    values = lrs(LinearWarmupDecay(1.0, warmup_steps=4, num_train_steps=10), 13)
    expected = [0, .25, .5, .75] + [1 - s / 10 for s in range(4, 10)] + [0, 0, 0]
    np.testing.assert_allclose(values, expected, atol=1e-12)


def test_noam_peaks_at_warmup():
    values = lrs(NoamDecay(2.0, warmup_steps=5), 20)
    assert np.argmax(values) == 4 and abs(max(values) - 2.0) < 1e-12
    t = np.arange(1, 21)
    np.testing.assert_allclose(values, 2.0 * 5 ** .5 * np.minimum(t ** -.5, t * 5 ** -1.5))


def test_no_warmup_is_constant_and_unknown_scheduler_is_refused():
    assert make_lr_schedule(3e-5, 0, 100) == 3e-5
    with pytest.raises(UsageError, match="--lr_scheduler"):
        make_lr_schedule(1e-3, 10, 100, "cosine")


@pytest.mark.parametrize("name,excluded", [
    ("word_embedding", False), ("encoder_layer_0_ffn_fc_0.w_0", False), ("_cls_out_w", False),
    ("encoder_layer_0_ffn_fc_0.b_0", True), ("_cls_out_b", True), ("cls_seq_label_out_b", True),
    ("pre_encoder_layer_norm_scale", True), ("mask_lm_trans_layer_norm_bias", True),
    ("mask_lm_out_fc.b_0", True)])
def test_weight_decay_exclusion(name, excluded):
    assert exclude_from_weight_decay(name) == excluded


def reference_steps(params, grads_per_step, lrs_per_step, wd, clip=1.0,
                    b1=0.9, b2=0.999, eps=1e-8):
    """2019 update: global-norm clip, Adam (bias correction in the step size), then
    p -= p_before * wd * lr for the parameters that are decayed."""
    params = {k: v.astype("float64").copy() for k, v in params.items()}
    m = {k: np.zeros_like(v) for k, v in params.items()}
    v2 = {k: np.zeros_like(v) for k, v in params.items()}
    for t, (grads, lr) in enumerate(zip(grads_per_step, lrs_per_step), start=1):
        norm = np.sqrt(sum((g.astype("float64") ** 2).sum() for g in grads.values()))
        scale = clip / max(norm, clip)
        for k in params:
            g = grads[k] * scale
            m[k] = b1 * m[k] + (1 - b1) * g
            v2[k] = b2 * v2[k] + (1 - b2) * g * g
            lr_t = lr * np.sqrt(1 - b2 ** t) / (1 - b1 ** t)
            before = params[k].copy()
            params[k] = params[k] - lr_t * m[k] / (np.sqrt(v2[k]) + eps * np.sqrt(1 - b2 ** t))
            if not exclude_from_weight_decay(k):
                params[k] -= before * wd * lr
    return params


def test_adamw_clip_decay_update_matches_reference():
    rng = np.random.RandomState(0)
    with paddle.utils.unique_name.guard():
        layer = paddle.nn.Linear(6, 3, weight_attr=paddle.ParamAttr("enc_fc.w_0"),
                                 bias_attr=paddle.ParamAttr("enc_fc.b_0"))
    start = {p.name: p.numpy().copy() for p in layer.parameters()}
    opt, lr = make_optimizer(layer.parameters(), 0.1, warmup_steps=2, num_train_steps=6,
                             weight_decay=0.05)
    grads_seen, lrs_seen = [], []
    for _ in range(5):
        x = paddle.to_tensor(rng.randn(4, 6).astype("float32") * 3)
        loss = (layer(x) ** 2).mean()
        loss.backward()
        grads_seen.append({p.name: p.grad.numpy().copy() for p in layer.parameters()})
        lrs_seen.append(opt.get_lr())
        opt.step()
        opt.clear_grad()
        lr.step()
    assert lrs_seen[0] == 0.0 and lrs_seen[1] == pytest.approx(0.05)
    # the gradients are large enough that clipping really happens
    assert max(np.sqrt(sum((g ** 2).sum() for g in gs.values())) for gs in grads_seen) > 1.0
    expected = reference_steps(start, grads_seen, lrs_seen, wd=0.05)
    for p in layer.parameters():
        np.testing.assert_allclose(p.numpy(), expected[p.name], rtol=1e-5, atol=1e-6)

"""pretraining.masked_lm.losses with several trainers: the tensors are the trainer's share of
the loss of everything all trainers saw (its sums over the mean count), so that averaging the
gradients gives the mean over all of it; the floats are the trainer's own means, which the
log shows. Token-budget batches give trainers different counts, so the two differ."""
import types

import numpy as np
import paddle
import paddle.nn.functional as F

from pretraining import masked_lm

# this trainer: 3 masked tokens and 2 sentences; the other trainer: 9 and 6
OTHER_COUNTS = np.array([9, 6], "float32")


def test_shares_for_the_gradient_and_own_means_for_the_log(monkeypatch):
    rng = np.random.RandomState(0)
    mlm_logits = paddle.to_tensor(rng.randn(3, 7).astype("float32"))
    nsp_logits = paddle.to_tensor(rng.randn(2, 2).astype("float32"))
    batch = {"mask_label": np.array([[1], [4], [6]], "int64"),
             "labels": np.array([[0], [1]], "int64")}

    def all_reduce(tensor):  # the sum over this trainer and the other
        tensor.set_value(tensor + paddle.to_tensor(OTHER_COUNTS))

    monkeypatch.setattr(masked_lm, "feed", lambda batch, names: ())
    monkeypatch.setattr(paddle.distributed, "all_reduce", all_reduce)
    runtime = types.SimpleNamespace(num_trainers=2)
    mlm, nsp, acc, (own_mlm, own_nsp) = masked_lm.losses(
        lambda: (mlm_logits, nsp_logits), batch, types.SimpleNamespace(use_task_id=False),
        runtime)

    mlm_sum = F.cross_entropy(mlm_logits, paddle.to_tensor(batch["mask_label"]),
                              reduction="sum").item()
    nsp_sum = F.cross_entropy(nsp_logits, paddle.to_tensor(batch["labels"]),
                              reduction="sum").item()
    np.testing.assert_allclose(float(mlm), mlm_sum / ((3 + 9) / 2), rtol=1e-6)
    np.testing.assert_allclose(float(nsp), nsp_sum / ((2 + 6) / 2), rtol=1e-6)
    np.testing.assert_allclose(own_mlm, mlm_sum / 3, rtol=1e-6)
    np.testing.assert_allclose(own_nsp, nsp_sum / 2, rtol=1e-6)

"""Learning-rate schedules and the optimizer of 2019: Adam with decoupled weight decay
(not on layer norms and biases) and global-norm gradient clipping at 1.0."""
import math

import paddle

from utils.errors import UsageError

SCHEDULERS = ("linear_warmup_decay", "noam_decay")


class LinearWarmupDecay(paddle.optimizer.lr.LRScheduler):
    """lr * step / warmup during warmup, then lr * (1 - min(step, T) / T).

    The step counter starts at 0 on the first update (so warmup's first step uses LR 0), and
    the decay is measured from step 0, not from the end of warmup: both as in 2019."""

    def __init__(self, learning_rate, warmup_steps, num_train_steps):
        self.warmup_steps = warmup_steps
        self.num_train_steps = max(1, num_train_steps)
        super().__init__(learning_rate)

    def get_lr(self):
        step = self.last_epoch
        if step < self.warmup_steps:
            return self.base_lr * step / self.warmup_steps
        return self.base_lr * (1.0 - min(step, self.num_train_steps) / self.num_train_steps)


class NoamDecay(paddle.optimizer.lr.LRScheduler):
    """lr * sqrt(warmup) * min(t^-0.5, t * warmup^-1.5), t counted from 1; peaks at lr."""

    def __init__(self, learning_rate, warmup_steps):
        self.warmup_steps = warmup_steps
        super().__init__(learning_rate)

    def get_lr(self):
        t = self.last_epoch + 1
        return self.base_lr * self.warmup_steps ** 0.5 * min(t ** -0.5,
                                                             t * self.warmup_steps ** -1.5)


def make_lr_schedule(learning_rate, warmup_steps, num_train_steps,
                     scheduler="linear_warmup_decay"):
    """The 2019 rule: no warmup means a constant learning rate (no decay at all)."""
    if scheduler not in SCHEDULERS:
        raise UsageError("--lr_scheduler must be one of %s, got %r"
                         % (", ".join(SCHEDULERS), scheduler))
    if not (math.isfinite(learning_rate) and learning_rate > 0):
        raise UsageError("--learning_rate must be a positive finite number, got %s"
                         % learning_rate)
    if warmup_steps < 0:
        raise UsageError("--warmup_steps must not be negative, got %s" % warmup_steps)
    if warmup_steps <= 0:
        return learning_rate
    if scheduler == "noam_decay":
        return NoamDecay(learning_rate, warmup_steps)
    return LinearWarmupDecay(learning_rate, warmup_steps, num_train_steps)


def exclude_from_weight_decay(name):
    """Layer norms and biases are not decayed; embeddings and fc weights are."""
    return "layer_norm" in name or name.endswith(("_bias", "_b", ".b_0"))


def make_optimizer(parameters, learning_rate, warmup_steps, num_train_steps, weight_decay,
                   scheduler="linear_warmup_decay"):
    """AdamW (beta 0.9/0.999, eps 1e-8) + clip by global norm 1.0.

    Returns (optimizer, lr) where lr is the scheduler to `.step()` after each update, or a
    float when the rate is constant."""
    lr = make_lr_schedule(learning_rate, warmup_steps, num_train_steps, scheduler)
    optimizer = paddle.optimizer.AdamW(
        learning_rate=lr, parameters=parameters, weight_decay=weight_decay,
        apply_decay_param_fun=lambda name: not exclude_from_weight_decay(name),
        grad_clip=paddle.nn.ClipGradByGlobalNorm(clip_norm=1.0))
    return optimizer, lr

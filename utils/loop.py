"""The one training loop behind run_classifier.py, run_sequence_labeling.py, run_mrc.py and
train.py, and evaluation mode as a context manager.

A task hands the loop three things: `loss_and_stats(batch) -> (loss tensor, {name: tensor})`,
a function that formats the train log line, and an optional `validate(steps)` callback.
"""
import contextlib
import math
import os
import sys
import time

import paddle

from utils.checkpoint import prune_checkpoints, save_checkpoint
from utils.errors import DataError, ErnieError
from utils.resume import latest_checkpoint


@contextlib.contextmanager
def eval_mode(model):
    """Run the body with `model` in eval mode (no dropout) and put it back in the mode it was
    in afterwards, also when the body raises."""
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        if was_training:
            model.train()


def save_or_stop(model, optimizer, path, train_state):
    """save_checkpoint, or stop the run with one line naming what went wrong (a parameter that
    is not finite, a full disk) and the last complete checkpoint in the folder, which the
    failed save left as it was (nothing half-written stays: utils.fileio.atomic_dir)."""
    try:
        return save_checkpoint(model, optimizer, path, train_state)
    except (DataError, OSError) as e:
        last = latest_checkpoint(os.path.dirname(path)) or "none"
        if isinstance(e, DataError):
            raise DataError("%s; the last complete checkpoint is %s" % (e, last)) from None
        raise ErnieError("cannot save %s: %s; the last complete checkpoint is %s"
                         % (path, e.strerror or e, last)) from None


class Window(object):
    """Running means of the loss and statistics over the steps since the last log line."""

    def __init__(self):
        self.sums, self.count, self.start = {}, 0, time.time()

    def add(self, values):
        for key, value in values.items():
            self.sums[key] = self.sums.get(key, 0.0) + float(value)
        self.count += 1

    def flush(self):
        means = {k: v / max(1, self.count) for k, v in self.sums.items()}
        speed = self.count / max(1e-9, time.time() - self.start)
        self.sums, self.count, self.start = {}, 0, time.time()
        return means, speed


def train_loop(model, optimizer, lr, batches, loss_and_stats, args, runtime, log_line,
               validate=None, epoch_of=None, start_step=0, train_state=None, amp=None):
    """Run optimisation over `batches`; returns the step count reached.

    Every `--skip_steps` prints `log_line(steps, means, speed)` (means over the window);
    every `--save_steps` saves `<checkpoints>/step_N`, with `train_state()` (the data
    position) so a run can resume from it; every `--validation_steps`, and when `epoch_of()`
    moves to a new epoch, calls `validate(steps)`. A final checkpoint is saved. With
    --keep_checkpoint_max N, the older step_N folders beyond the N newest are deleted after
    each save. A non-finite loss stops the run before anything is saved from it, and so does
    a failed save (save_or_stop). `start_step` continues the count of
    a resumed run. `amp` (utils.amp.amp_from_args(args, runtime); None: fp32) runs each
    forward pass under fp16/bf16 autocast and the update through its loss scaler: a step whose
    scaled gradients overflow is skipped (it still counts), a non-finite loss still stops.
    """
    steps, window, last_ckpt = start_step, Window(), None

    def save():
        state = dict(train_state() if train_state else {}, step=steps)
        path = save_or_stop(model, optimizer, os.path.join(args.checkpoints,
                                                           "step_%d" % steps), state)
        if getattr(args, "keep_checkpoint_max", 0):    # only once the new one is complete
            prune_checkpoints(args.checkpoints, args.keep_checkpoint_max)
        return path

    epoch_seen = epoch_of() if epoch_of else None
    batches = iter(batches)
    batch = next(batches, None)
    while batch is not None:
        with (amp.autocast() if amp is not None else contextlib.nullcontext()):
            loss, stats = loss_and_stats(batch)
        loss_value = float(loss)
        if not math.isfinite(loss_value):
            raise DataError("training loss is %s at step %d; last good checkpoint: %s"
                            % (loss_value, steps + 1, last_ckpt or "none saved yet"))
        # Adam's moments are created on the first update and named from a global counter;
        # a fresh name scope keeps them `<param>_moment1_0`, ..., whatever ran before in the
        # process, so a checkpoint's optimizer state always finds its variables again
        with paddle.utils.unique_name.guard():
            if amp is not None:
                amp.backward_and_step(loss, optimizer)
            else:
                loss.backward()
                optimizer.step()
        optimizer.clear_grad()
        step_lr = optimizer.get_lr()  # the rate this step used, as 2019 fetched it
        if not isinstance(lr, float):
            lr.step()
        steps += 1
        window.add(dict({"loss": loss_value}, **stats))   # a task may log its own loss
        if steps % args.skip_steps == 0:
            means, speed = window.flush()
            means["learning_rate"] = step_lr
            if runtime.is_main:
                if args.verbose:
                    print("learning rate: %f" % step_lr)
                print(log_line(steps, means, speed), flush=True)
                runtime.train_log.append(means)
            runtime.add_scalars("train", means, steps)
        if steps % args.save_steps == 0 and runtime.is_main:
            last_ckpt = save()
        # look one batch ahead: fetching it tells whether this step ended an epoch
        batch = next(batches, None)
        epoch_ended = (epoch_of is not None and batch is not None and epoch_of() != epoch_seen)
        if validate is not None and (steps % args.validation_steps == 0 or epoch_ended):
            validate(steps)
        if epoch_of is not None:
            epoch_seen = epoch_of()
    if runtime.is_main and steps > start_step and steps % args.save_steps:
        save()
    return steps


def print_ce_kpis(runtime, train_seconds, dev_metrics=None):
    """--enable_ce: the 2019 continuous-evaluation lines `kpis<TAB>NAME_card<N><TAB>VALUE`.
    Train loss and accuracy come from the second-to-last log line (the last one may cover
    a short window), as in 2019, which printed `ce info error` when there was none."""
    card = runtime.num_trainers
    print("kpis\ttrain_duration_card%d\t%f" % (card, train_seconds))
    if len(runtime.train_log) < 2:
        print("ce info error")
    else:
        means = runtime.train_log[-2]
        for key in ("loss", "acc"):
            if key in means:
                print("kpis\ttrain_%s_card%d\t%f" % (key, card, means[key]))
    for name, value in sorted((dev_metrics or {}).items()):
        print("kpis\tdev_%s_card%d\t%f" % (name, card, value))
    sys.stdout.flush()

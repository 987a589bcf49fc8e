"""Continuing a run: finding the latest whole checkpoint in a --checkpoints folder
(latest_checkpoint, after clearing what a run killed while saving or deleting left there;
never `best`), one training run at a time in a folder (hold_checkpoints), the best so far of
a resumed run (saved_best), --resume auto
(resolve_resume), refusing to continue another run's checkpoints (check_resumed_run,
check_checkpoint_folder: the run identity recorded in train_state.json), and restoring the
optimizer, learning-rate schedule and random state of a checkpoint (restore_training; a 2019
`step_N` through restore_2019_optimizer).
"""
import contextlib
import fcntl
import json
import os
import re

import numpy as np

from utils.checkpoint import (
    ADAM_SLOTS,
    BEST,
    LR_COUNTER,
    MANIFEST_FILE,
    TRAIN_STATE_FILE,
    counter_lead,
    read_legacy_optimizer_state,
    read_training_state,
    verify_checkpoint,
)
from utils.errors import DataError, UsageError
from utils.fileio import process_alive, remove_quietly
from utils.format_paddle2019 import name_list


def _is_whole_checkpoint(path):
    """True if `path` is a checkpoint of ours that matches its manifest."""
    try:
        return verify_checkpoint(path) is not None
    except (DataError, OSError):
        return False


@contextlib.contextmanager
def _folder_mutex(directory):
    """Runs sharing `directory` clear its leftovers and take or give back its lock one at a
    time: an exclusive flock on the directory itself, held briefly."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _recover_leftovers(directory):
    """Clear what runs that died while saving left in `directory`. utils.fileio.atomic_dir
    replaces an existing `step_N` in two renames: `step_N` -> `step_N.old-<pid>`, then
    `step_N.tmp-<pid>` (complete) -> `step_N`; a run killed between them leaves no `step_N`
    and both copies whole. Then the complete one comes back as `step_N`: the new one if it
    matches its manifest, else the old one; the only complete copy is never removed. Every
    other leftover of a dead process (a save cut short, an old copy whose replacement is in
    place, a checkpoint it was deleting: `step_N.del-<pid>`) is removed, and so is the lock
    file of a run that is gone (hold_checkpoints). The same for `best`. Runs sharing the
    folder do this one at a time (_folder_mutex)."""
    with _folder_mutex(directory):
        _drop_stale_lock(directory)
        groups = {}
        for name in os.listdir(directory):
            left = re.fullmatch(r"((?:stage_\d+_)?step_\d+|%s)\.(tmp|old|del)-(\d+)" % BEST,
                                name)
            if not left or process_alive(int(left.group(3))):
                continue
            if left.group(2) == "del":
                remove_quietly(os.path.join(directory, name))
            else:
                groups.setdefault(left.group(1), []).append((left.group(2), name))
        for step, names in sorted(groups.items()):
            dest = os.path.join(directory, step)
            whole = {name: (kind == "tmp" and not os.path.lexists(dest)
                            and _is_whole_checkpoint(os.path.join(directory, name)))
                     for kind, name in names}
            if not os.path.lexists(dest):
                # the newer copy first (tmp), then the one it was replacing (old)
                for kind, name in sorted(names, key=lambda kn: kn[0] != "tmp"):
                    if kind == "old" or whole[name]:
                        try:
                            os.rename(os.path.join(directory, name), dest)
                        except OSError:
                            continue
                        print("%s: restored from %s (a run was killed while replacing it)"
                              % (dest, name))
                        break
            for kind, name in names:
                path = os.path.join(directory, name)
                if os.path.lexists(path) and (os.path.lexists(dest)
                                              or (kind == "tmp" and not whole[name])):
                    remove_quietly(path)


# ---------------------------------------------------------------------------------------
# One training run at a time in a --checkpoints folder
# ---------------------------------------------------------------------------------------

LOCK_FILE = ".lock"


def _drop_stale_lock(directory):
    """Remove the lock file of a run that is gone (its flock died with it); under the mutex."""
    path = os.path.join(directory, LOCK_FILE)
    try:
        fd = os.open(path, os.O_RDWR)
    except OSError:
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.remove(path)
    except OSError:     # held by a live run (or not ours to remove)
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def hold_checkpoints(directory, hold=True):
    """Hold the --checkpoints folder `directory` for the body (a training run): an exclusive,
    non-blocking flock on `<directory>/.lock`, which records the pid. A second run gets a
    UsageError naming the pid of the live one. The lock dies with the process (also by kill
    -9; the next run or resume clears the file); on the way out the file is removed, and
    the folders this made for it too, those that stayed empty. hold=False: nothing (evaluation
    runs; trainers other than 0, which do not write)."""
    if not hold:
        yield
        return
    made = []   # the folders this makes, innermost first
    parent = os.path.abspath(directory)
    while not os.path.isdir(parent):
        made.append(parent)
        parent = os.path.dirname(parent)
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, LOCK_FILE)
    # the file is made, taken and removed under the mutex only: whoever opens it there finds
    # the file its holder locked, never one about to be removed
    with _folder_mutex(directory):
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = os.read(fd, 32).decode("ascii", "replace").strip() or "unknown"
            os.close(fd)
            raise UsageError("--checkpoints %s: in use by a live run (pid %s)"
                             % (directory, pid)) from None
        os.ftruncate(fd, 0)
        os.write(fd, b"%d\n" % os.getpid())
    try:
        yield
    finally:
        with _folder_mutex(directory):
            remove_quietly(path)
            os.close(fd)
        for folder in made:
            try:
                os.rmdir(folder)        # only if nothing was written there
            except OSError:
                break


def latest_checkpoint(directory):
    """The `step_N` (or `stage_S_step_N`, a multi-task run's end of a stage) under `directory`
    with the highest N that passes verify_checkpoint (older or damaged ones are skipped), or
    None. What a killed run left behind while saving (its process is gone) is cleared first:
    see _recover_leftovers."""
    if not os.path.isdir(directory):
        return None
    _recover_leftovers(directory)
    steps = []
    for name in os.listdir(directory):
        match = re.fullmatch(r"(stage_\d+_)?step_(\d+)", name)
        if match and os.path.isfile(os.path.join(directory, name, MANIFEST_FILE)):
            # at the same step, step_N before stage_S_step_N (they hold the same state)
            steps.append((int(match.group(2)), not match.group(1),
                          os.path.join(directory, name)))
    for _, _, path in sorted(steps, reverse=True):
        try:
            verify_checkpoint(path)
            return path
        except DataError as e:
            print("WARNING: skipping %s" % e)
    return None


def resolve_resume(args):
    """--resume auto: continue from the latest complete checkpoint in --checkpoints (it
    becomes --init_checkpoint); without one the run starts from the beginning."""
    if not getattr(args, "resume", None):
        return
    if args.resume != "auto":
        raise UsageError("--resume takes the value 'auto', got %r" % args.resume)
    path = latest_checkpoint(args.checkpoints)
    if path is None:
        print("--resume auto: no complete checkpoint in %s, starting from the beginning"
              % args.checkpoints)
        return
    print("--resume auto: continuing from %s" % path)
    args.init_checkpoint = args.resumed_from = path


# Keys of a run identity that checkpoints written before this toolkit recorded them lack:
# such a checkpoint is compared on the keys it has.
RECORDED_LATER = frozenset(("shuffle", "random_seed", "in_tokens", "max_seq_len",
                            "lr_scheduler", "weight_decay", "learning_rate", "num_train_steps",
                            "warmup_steps"))


_IDENTITY_LABELS = {"num_examples": "train examples", "num_trainers": "trainers"}


def identity_differences(state, identity):
    """'--epoch 2 -> 3, ...': each entry of this run's `identity` that the train state of a
    checkpoint records with another value ('' if none)."""
    def show(value):
        if isinstance(value, bool):
            return "true" if value else "false"
        return "unset" if value is None else str(value)
    diffs = []
    for key, new in identity.items():
        if key not in state and key in RECORDED_LATER:
            continue
        old = state.get(key)
        if key not in state or old != new:
            diffs.append("%s %s -> %s" % (_IDENTITY_LABELS.get(key, "--" + key),
                                          show(old) if key in state else "(none)", show(new)))
    return ", ".join(diffs)


def _saved_train_state(path):
    """The train_state.json of a checkpoint of ours, or None."""
    try:
        with open(os.path.join(path, TRAIN_STATE_FILE), encoding="utf-8") as f:
            state = json.load(f)
    except (OSError, ValueError):
        return None
    return state if isinstance(state, dict) else None


def saved_best(directory, identity):
    """The `best` record ({"step", "metric", "value", ...}) of `<directory>/best` when a
    checkpoint of the run `identity` is there and whole (else None): what a resumed run
    keeps as its best so far (utils.checkpoint.BestCheckpoint.restore)."""
    path = os.path.join(directory, BEST)
    state = _saved_train_state(path)
    if not state or not isinstance(state.get("best"), dict) \
            or identity_differences(state, identity):
        return None
    try:
        verify_checkpoint(path)
    except DataError as e:
        print("WARNING: not keeping %s as the best so far: %s" % (path, e))
        return None
    return state["best"]


def check_resumed_run(args, identity):
    """--resume auto continues the run in --checkpoints only with the flags it was started
    with: a latest checkpoint of another run identity (batch stream, learning-rate plan) is
    refused, naming what differs. (An explicit --init_checkpoint of another run starts a new
    run from its parameters: restore_training.)"""
    path = getattr(args, "resumed_from", None)
    if not path or path != args.init_checkpoint:
        return
    state = _saved_train_state(path)
    diffs = identity_differences(state, identity) if state else ""
    if diffs:
        raise UsageError(
            "--resume auto: %s belongs to another run (%s); rerun with the old values to "
            "continue it, or give a new --checkpoints folder to start a new run (add "
            "--init_checkpoint %s to start from its parameters)" % (path, diffs, path))


def check_checkpoint_folder(args, identity, start_step):
    """Two runs never share a --checkpoints folder: a run refuses to start when the folder
    holds a checkpoint of another run identity past `start_step` (this run would write over
    it, or a later --resume auto would take it for this run's latest). 2019 `step_N`
    folders and checkpoints of the same run identity are written over, as in 2019. What
    runs killed while saving left in the folder is cleared first (_recover_leftovers), once:
    with --resume auto, resolve_resume did it when it looked for the latest checkpoint."""
    directory = args.checkpoints
    if not directory or not os.path.isdir(directory):
        return
    if getattr(args, "resume", None) != "auto":   # else resolve_resume has cleared it
        _recover_leftovers(directory)
    others = []
    for name in os.listdir(directory):
        match = re.fullmatch(r"step_(\d+)", name)
        path = os.path.join(directory, name)
        if not match or int(match.group(1)) <= start_step or \
                not os.path.isfile(os.path.join(path, MANIFEST_FILE)):
            continue
        state = _saved_train_state(path)
        diffs = identity_differences(state, identity) if state else ""
        if diffs:
            others.append((int(match.group(1)), name, diffs))
    if others:
        _, name, diffs = max(others)
        raise UsageError(
            "--checkpoints %s holds %d checkpoint%s of another run (%s: %s); to continue that "
            "run, rerun it with its values and --resume auto; to start this one, give a new "
            "--checkpoints folder or delete those step_N folders"
            % (directory, len(others), "s" if len(others) > 1 else "", name, diffs))


def restore_training(path, optimizer, lr, run_identity):
    """After init_checkpoint(model, path): bring back the optimizer state (moments, LR
    schedule position) and Paddle's random state, and return the saved train state (step,
    data position) when `path` was written by a run over the same data (`run_identity`
    equal: identity_differences); otherwise only the parameters are taken, the differing
    flags are named and None is returned. A 2019 `step_N`
    (no manifest) brings its optimizer state through restore_2019_optimizer. `lr` is this
    run's schedule (or constant rate) from make_optimizer."""
    import paddle
    state, optimizer_state, rng_state = read_training_state(path)
    if not state:
        return restore_2019_optimizer(path, optimizer, lr)
    diffs = identity_differences(state, run_identity)
    if diffs:
        print("%s was written by another run (%s); starting a new run from its parameters"
              % (path, diffs))
        return None
    if optimizer_state is not None:
        if (isinstance(lr, paddle.optimizer.lr.LRScheduler)
                and "LR_Scheduler" not in optimizer_state):
            # written with a constant rate (no warmup): this run's schedule starts at the step
            lr.step(state["step"])
            optimizer_state = dict(optimizer_state, LR_Scheduler=lr.state_dict())
        optimizer.set_state_dict(optimizer_state)
    if rng_state is not None:
        paddle.set_rng_state(rng_state)
    position = state["data_position"]
    if "stage" in position:     # a multi-task run (pretraining/multitask.py)
        print("Resuming at step %d (stage %d, step %d of it)"
              % (state["step"], position["stage"], position["stage_step"]))
    else:
        print("Resuming at step %d (epoch %d, batch %d of it)"
              % (state["step"], position["epoch"], position["batch"]))
    return state


def restore_2019_optimizer(path, optimizer, lr):
    """A 2019 checkpoint (fluid.io.save_persistables) holds the Adam moments and beta powers
    of each parameter and @LR_DECAY_COUNTER@, and 2019's init_checkpoint loaded them all: put
    them into `optimizer` and `lr`. The step count continues from the counter (so the run
    stops at the same total steps), the data from its beginning (2019 saved no position).
    Returns the train state {"step", "data_position": None}, or None if `path` holds no
    optimizer state. Parameters without state start afresh; a wrong shape is an error."""
    import paddle
    saved = read_legacy_optimizer_state(path)
    counter = saved.get(LR_COUNTER)
    state, found, missing, used = {}, 0, [], set()
    for p in optimizer._parameter_list:
        # every accumulator needs a value once any is given: fresh ones as Paddle makes them
        fresh = [np.zeros(p.shape, "float32"), np.zeros(p.shape, "float32"),
                 np.array([optimizer._beta1], "float32"), np.array([optimizer._beta2], "float32")]
        keys = ["%s_%s_0" % (p.name, slot) for slot in ADAM_SLOTS]
        complete = all(k in saved for k in keys)
        for key, value in zip(keys, fresh):
            if complete:
                if saved[key].shape != value.shape:
                    raise DataError("%s: %s has shape %s, expected %s" % (
                        path, key, list(saved[key].shape), list(value.shape)))
                value = saved[key].astype("float32")
                used.add(key)
            state[key] = value
        found += complete
        if not complete:
            missing.append(p.name)
    if not found and counter is None:
        return None
    line = "2019 optimizer state in %s: moments and beta powers of %d parameters" % (path, found)
    steps = 0
    if counter is not None:
        value = int(counter.reshape(-1)[0]) if counter.size == 1 else -1
        steps = value + counter_lead(lr)
        if counter.size != 1 or steps < 0:
            raise DataError("%s: %s holds %s, not a step count"
                            % (path, LR_COUNTER, counter.tolist()))
        line += ", learning-rate step %d" % value
    if isinstance(lr, paddle.optimizer.lr.LRScheduler):
        lr.step(steps)  # last_epoch = steps done: the next update uses the rate of the next step
        state["LR_Scheduler"] = lr.state_dict()
    optimizer.set_state_dict(state)
    if missing:
        line += "; none for %d parameters (they start afresh): %s" % (len(missing),
                                                                      name_list(missing))
    if counter is None:
        line += "; no %s: the learning rate and step count start from 0" % LR_COUNTER
    unused = [k for k in saved if k not in used and k != LR_COUNTER]
    if unused:
        line += "; not used: %s" % name_list(unused)
    print(line + "; continuing after step %d with the data from its beginning (2019 saved no "
          "data position)" % steps)
    return {"step": steps, "data_position": None}

"""Parameters in and out of a model, and training checkpoints.

Parameters travel as a plain ``dict`` mapping the 2019 variable name (``word_embedding``,
``encoder_layer_0_ffn_fc_0.w_0``, ``_cls_out_w``, ...) to a ``numpy.ndarray``, in one of
three formats, each read and written by its own module and told apart here by content
(detect_format, load_params, save_params):

* ``legacy_dir``: the 2019 ``params/`` directory, one LoDTensor file per variable
  (utils.format_paddle2019);
* ``pdparams``: one ``paddle.save`` pickle (utils.format_pdparams);
* ``hf``: a HuggingFace transformers directory (utils.format_hf).

Loading into a ``paddle.nn.Layer`` whose parameters carry the 2019 names in ``p.name``:
``assign_params``, ``init_pretraining_params``, ``init_checkpoint``, ``init_model_params``.

Training checkpoints (``checkpoints/step_N``): a 2019 parameter directory plus the optimizer
and random state, the data position and a manifest of checksums (save_checkpoint); finding
the latest whole one (latest_checkpoint) and continuing a run from it (resolve_resume,
restore_training; restore_2019_optimizer for a 2019 ``step_N``).
"""
import hashlib
import json
import os
import pickle
import re

import numpy as np

from utils.errors import DataError, UsageError, where
from utils.fileio import remove_quietly
from utils.format_hf import hf_weight_files, read_hf_dir, write_hf_dir
from utils.format_paddle2019 import (
    check_var_name,
    is_optimizer_state,
    is_pretraining_param,
    is_side_file,
    looks_like_tensor_file,
    name_list,
    new_legacy_dir,
    read_legacy_dir,
    read_legacy_tensor,
    resolve_legacy_dir,
    write_legacy_dir,
    write_legacy_tensor,
)
from utils.format_pdparams import is_pickle_file, read_pdparams, write_pdparams

# ---------------------------------------------------------------------------------------
# Format detection, load/save
# ---------------------------------------------------------------------------------------

def detect_format(path):
    """'legacy_dir', 'pdparams' or 'hf', decided by content; DataError if none fits."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise DataError("%s: no such file or directory" % where(path))
    if os.path.isfile(path):
        if is_pickle_file(path):
            return "pdparams"
        if looks_like_tensor_file(path):
            raise DataError("%s: a single tensor file; give the directory that holds it"
                            % where(path))
        raise DataError("%s: not a parameter file (neither a .pdparams pickle nor a "
                        "directory)" % where(path))
    if not os.path.isdir(path):
        raise DataError("%s: not a file or directory" % where(path))
    has_cfg = os.path.isfile(os.path.join(path, "config.json"))
    if has_cfg and hf_weight_files(path):
        return "hf"
    if os.path.isdir(os.path.join(path, "params")):
        return "legacy_dir"
    names = [n for n in os.listdir(path)
             if os.path.isfile(os.path.join(path, n)) and not is_side_file(n)]
    if has_cfg and not any(looks_like_tensor_file(os.path.join(path, n)) for n in names):
        raise DataError("%s: HF directory has neither model.safetensors nor pytorch_model.bin"
                        % where(path))
    if not names:
        raise DataError("%s: empty directory (no parameter files)" % where(path))
    return "legacy_dir"


def load_params(path):
    """{2019 name: array} from any supported format (see `detect_format`)."""
    fmt = detect_format(path)
    if fmt == "legacy_dir":
        return read_legacy_dir(path)
    if fmt == "pdparams":
        return read_pdparams(path)
    return read_hf_dir(path)[0]


def save_params(params, path, fmt, ernie_config=None, head=None):
    """Write params as 'legacy_dir' (alias 'paddle2019'), 'pdparams' or 'hf'."""
    if fmt in ("legacy_dir", "paddle2019"):
        write_legacy_dir(params, path)
    elif fmt == "pdparams":
        write_pdparams(params, path)
    elif fmt == "hf":
        if ernie_config is None:
            raise UsageError("writing a HF directory needs the ernie config")
        write_hf_dir(params, ernie_config, path, head=head)
    else:
        raise UsageError("unknown parameter format %r (choose from legacy_dir, pdparams, hf)"
                         % (fmt,))


# ---------------------------------------------------------------------------------------
# Paddle models
# ---------------------------------------------------------------------------------------

def _np_dtype(p):
    s = str(p.dtype).replace("paddle.", "")
    try:
        return np.dtype(s)
    except TypeError:
        return None


def assign_params(model, params, only=None):
    """Copy params into `model`'s parameters by their 2019 `p.name`.

    Returns (loaded, missing, unexpected) name lists; `only(name)` restricts all three.
    A shape mismatch raises DataError naming the parameter and both shapes (nothing is
    assigned in that case).
    """
    keep = only or (lambda name: True)
    model_ps = {}
    for p in model.parameters():
        if keep(p.name):
            model_ps[p.name] = p
    todo = []
    for name, p in model_ps.items():
        if name not in params:
            continue
        arr = np.asarray(params[name])
        if tuple(arr.shape) != tuple(p.shape):
            raise DataError("parameter %s: shape %s in the checkpoint, %s in the model"
                            % (name, list(arr.shape), list(p.shape)))
        todo.append((name, p, arr))
    for _, p, arr in todo:
        dt = _np_dtype(p)
        if dt is not None and arr.dtype != dt:
            arr = arr.astype(dt)
        p.set_value(arr)
    loaded = [name for name, _, _ in todo]
    missing = sorted(n for n in model_ps if n not in params)
    unexpected = sorted(n for n in params if keep(n) and n not in model_ps)
    return loaded, missing, unexpected


def model_params(model):
    """{p.name: numpy copy} of every parameter of `model`."""
    return {p.name: np.array(p.numpy(), copy=True) for p in model.parameters()}


def _report(loaded, missing, unexpected, fresh_head=(), path=None):
    """The "Loaded ..." line; a head initialised afresh (`fresh_head`, not in `missing`) is
    said once, on a line of its own."""
    print("Loaded %d parameters; missing %d%s; unexpected %d%s"
          % (len(loaded), len(missing), (": " + name_list(missing)) if missing else "",
             len(unexpected), (": " + name_list(unexpected)) if unexpected else ""))
    if fresh_head:
        print("task head initialised afresh (not in %s): %s" % (path, name_list(fresh_head)))


def _load_into(model, path, only):
    if os.path.isdir(path):
        verify_checkpoint(path)  # a checkpoint of ours must match its manifest
    params = load_params(path)
    try:
        return assign_params(model, params, only=only)
    except DataError as e:
        raise DataError("%s: %s" % (where(path), e)) from None


def init_pretraining_params(model, path):
    """Load the encoder parameters (is_pretraining_param) of `path` into `model`."""
    result = _load_into(model, path, is_pretraining_param)
    print("Load pretraining parameters from {}.".format(path))
    _report(*result)
    return result


# Heads that read the sequence output, not the pooled [CLS] one: 2019 built their programs
# without the pooler, so their checkpoints have no pooled_fc, which these tasks do not use.
_SEQUENCE_OUTPUT_HEADS = ("cls_seq_label_out_w", "cls_mrc_out_w")
_POOLER = ("pooled_fc.w_0", "pooled_fc.b_0")


def init_checkpoint(model, path, training=None):
    """Load every parameter of `path` that `model` has (optimizer state is not a parameter).

    training=False (evaluating or predicting what was trained before): every parameter the
    task uses must come from `path`, its head included; otherwise DataError naming the missing
    ones, instead of predicting with a random head (a pretraining checkpoint, or one of
    another task). training=True (fine-tuning from `path`): a missing head is initialised
    afresh, which is said once. None (pretraining, multi-task): what is missing is reported."""
    loaded, missing, unexpected = _load_into(model, path, lambda n: not is_optimizer_state(n))
    if training is False:
        names = {p.name for p in model.parameters()}
        unused = _POOLER if any(h in names for h in _SEQUENCE_OUTPUT_HEADS) else ()
        needed = [n for n in missing if n not in unused]
        if needed:
            head = any(not is_pretraining_param(n) for n in needed)
            raise DataError(
                "%s: the checkpoint has no %s; evaluating or predicting takes every parameter "
                "of the model from the checkpoint%s"
                % (where(path), name_list(needed),
                   ", the task head included (a pretraining checkpoint, or one of another "
                   "task, has no head for this one: fine-tune it with --do_train true first)"
                   if head else ""))
    fresh_head = [n for n in missing if not is_pretraining_param(n)] if training else []
    print("Load model from {}".format(path))
    _report(loaded, [n for n in missing if n not in fresh_head], unexpected, fresh_head, path)
    return loaded, missing, unexpected


# ---------------------------------------------------------------------------------------
# Training checkpoints
# ---------------------------------------------------------------------------------------

OPTIMIZER_FILE = "optimizer.pdopt"
RNG_FILE = "rng_state.pdrng"
TRAIN_STATE_FILE = "train_state.json"
MANIFEST_FILE = "manifest.json"


def _sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def save_checkpoint(model, optimizer, path, train_state=None):
    """`checkpoints/step_N`: the 2019 layout (one tensor file per parameter, readable by
    init_checkpoint, init_pretraining_params and Paddle's legacy loader), plus what a resumed
    run needs: the optimizer state (moments, LR schedule), Paddle's random state and
    `train_state.json` (step, data position). `manifest.json`, with every file's size and
    sha256, is written last; the whole directory appears at once (renamed from a temporary
    one), so a run killed at any moment leaves only complete checkpoints. Returns `path`."""
    import paddle
    params = model_params(model)
    for name in params:
        check_var_name(name)
    with new_legacy_dir(path) as tmp:
        for name in sorted(params):
            write_legacy_tensor(os.path.join(tmp, name), params[name])
        if optimizer is not None:
            paddle.save(optimizer.state_dict(), os.path.join(tmp, OPTIMIZER_FILE))
        with open(os.path.join(tmp, RNG_FILE), "wb") as f:
            pickle.dump(paddle.get_rng_state(), f)
        with open(os.path.join(tmp, TRAIN_STATE_FILE), "w", encoding="utf-8") as f:
            json.dump(train_state or {}, f, indent=1, sort_keys=True)
        files = {name: {"bytes": os.path.getsize(os.path.join(tmp, name)),
                        "sha256": _sha256(os.path.join(tmp, name))}
                 for name in sorted(os.listdir(tmp))}
        manifest = {"format": "ernie checkpoint", "version": 1,
                    "parameters": {n: {"shape": list(a.shape), "dtype": str(a.dtype)}
                                   for n, a in sorted(params.items())},
                    "files": files}
        with open(os.path.join(tmp, MANIFEST_FILE), "w", encoding="utf-8") as f:
            json.dump(manifest, f, indent=1, sort_keys=True)
    return path


def verify_checkpoint(path):
    """Check a checkpoint against its manifest; raise DataError naming what is wrong.
    Returns the manifest, or None for a directory without one (a 2019 or foreign one)."""
    manifest_path = os.path.join(path, MANIFEST_FILE)
    if not os.path.isfile(manifest_path):
        return None
    try:
        with open(manifest_path, encoding="utf-8") as f:
            manifest = json.load(f)
        files = manifest["files"]
    except (ValueError, KeyError, TypeError):
        raise DataError("%s: unreadable checkpoint manifest" % manifest_path) from None
    for name, info in sorted(files.items()):
        full = os.path.join(path, name)
        if not os.path.isfile(full):
            raise DataError("%s: incomplete checkpoint: %s is missing" % (path, name))
        if os.path.getsize(full) != info["bytes"] or _sha256(full) != info["sha256"]:
            raise DataError("%s: corrupt checkpoint: %s does not match its checksum"
                            % (path, name))
    return manifest


def read_training_state(path):
    """(train_state dict, optimizer state dict or None, paddle RNG state or None) of a
    checkpoint written by save_checkpoint; empty for other parameter folders."""
    import paddle
    if not os.path.isdir(path) or verify_checkpoint(path) is None:
        return {}, None, None
    with open(os.path.join(path, TRAIN_STATE_FILE), encoding="utf-8") as f:
        state = json.load(f)
    opt_path = os.path.join(path, OPTIMIZER_FILE)
    optimizer_state = paddle.load(opt_path) if os.path.exists(opt_path) else None
    rng = None
    if os.path.exists(os.path.join(path, RNG_FILE)):
        with open(os.path.join(path, RNG_FILE), "rb") as f:
            rng = pickle.load(f)
    return state, optimizer_state, rng


# 2019 (fluid.io.save_persistables) names of the optimizer state: `<param>_<slot>_0` for each
# Adam slot, and the LR schedule's step counter. Paddle 3 names its AdamW accumulators the same
# way (and, like fluid, starts beta1_pow at beta1 and multiplies after each update).
ADAM_SLOTS = ("moment1", "moment2", "beta1_pow_acc", "beta2_pow_acc")
LR_COUNTER = "@LR_DECAY_COUNTER@"
_ADAM_KEY_RE = re.compile(r"^(.+)_(%s)_\d+$" % "|".join(ADAM_SLOTS))


def counter_lead(lr):
    """Steps done minus @LR_DECAY_COUNTER@ after them: 1 for linear_warmup_decay (its counter
    is 0 on the first step), 0 for noam_decay (1 on the first step)."""
    from utils.optimization import NoamDecay
    return 0 if isinstance(lr, NoamDecay) else 1


def read_legacy_optimizer_state(path):
    """{name: array} of the optimizer-state files (is_optimizer_state) of a 2019-layout
    directory, without reading its parameters; {} for anything else (a file, our
    checkpoints, HF folders)."""
    if not os.path.isdir(path) or os.path.isfile(os.path.join(path, MANIFEST_FILE)):
        return {}
    d = resolve_legacy_dir(path)
    return {name: read_legacy_tensor(os.path.join(d, name)) for name in sorted(os.listdir(d))
            if is_optimizer_state(name) and os.path.isfile(os.path.join(d, name))}


def write_legacy_checkpoint(model, optimizer, path, steps):
    """A 2019 `step_N` directory as fluid.io.save_persistables wrote it after `steps` updates:
    the parameters, each one's Adam moments and beta-power accumulators under their 2019
    names, and @LR_DECAY_COUNTER@ (atomic, no manifest). Returns `path`."""
    import paddle
    tensors = model_params(model)
    for key, value in optimizer.state_dict().items():
        match = _ADAM_KEY_RE.match(key)
        if match and isinstance(value, paddle.Tensor):
            tensors["%s_%s_0" % match.groups()] = value.numpy()
    tensors[LR_COUNTER] = np.array([steps - counter_lead(optimizer._learning_rate)], np.int64)
    write_legacy_dir(tensors, path)
    return path


def _process_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _is_whole_checkpoint(path):
    """True if `path` is a checkpoint of ours that matches its manifest."""
    try:
        return verify_checkpoint(path) is not None
    except (DataError, OSError):
        return False


def _recover_leftovers(directory):
    """Clear what runs that died while saving left in `directory`. utils.fileio.atomic_dir
    replaces an existing `step_N` in two renames: `step_N` -> `step_N.old-<pid>`, then
    `step_N.tmp-<pid>` (complete) -> `step_N`; a run killed between them leaves no `step_N`
    and both copies whole. Then the complete one comes back as `step_N`: the new one if it
    matches its manifest, else the old one; the only complete copy is never removed. Every
    other leftover of a dead process (a save cut short, an old copy whose replacement is in
    place) is removed. Runs sharing the folder do this one at a time (a lock on the folder)."""
    import fcntl
    fd = os.open(directory, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        groups = {}
        for name in os.listdir(directory):
            left = re.fullmatch(r"((?:stage_\d+_)?step_\d+)\.(tmp|old)-(\d+)", name)
            if left and not _process_alive(int(left.group(3))):
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
    finally:
        os.close(fd)


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


# Starting and continuing runs: --init_checkpoint, --init_pretraining_params, --resume auto

def init_model_params(model, args, training):
    """--init_checkpoint (everything present) wins over --init_pretraining_params (encoder
    only); evaluation-only runs need a checkpoint, as in 2019, and take every parameter of the
    model from it, the task head included (a missing one is an error, not a random head);
    training from a checkpoint without the head initialises the head afresh and says so."""
    if args.init_checkpoint and args.init_pretraining_params:
        print("WARNING: args 'init_checkpoint' and 'init_pretraining_params' both are set! "
              "Only arg 'init_checkpoint' is made valid.")
    if args.init_checkpoint:
        init_checkpoint(model, args.init_checkpoint, training=bool(training))
    elif args.init_pretraining_params and training:
        init_pretraining_params(model, args.init_pretraining_params)
    elif not training:
        raise UsageError("--init_checkpoint is required when only evaluating or predicting")


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

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
and random state, the data position and a manifest of checksums (save_checkpoint,
verify_checkpoint, read_training_state); a 2019 ``step_N`` with its optimizer state
(write_legacy_checkpoint, read_legacy_optimizer_state); keeping the newest few
(prune_checkpoints, --keep_checkpoint_max) and the best one (BestCheckpoint, --save_best).
Continuing a run from one, and holding the folder while a run writes there: utils.resume.
"""
import json
import math
import os
import pickle
import re

import numpy as np

from utils.errors import DataError, UsageError, where
from utils.fileio import sha256
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
    if any(n.endswith(".pdiparams") for n in names):
        raise DataError("%s: %s" % (where(path), _inference_folder_note(path)))
    return "legacy_dir"


def _inference_folder_note(path, what="an inference model folder (a program and its "
                                       "combined .pdiparams)"):
    """Why an exported folder (`what` it is) is no parameter checkpoint, naming the
    checkpoint it came from when its manifest says."""
    source = None
    try:
        with open(os.path.join(path, "manifest.json"), encoding="utf-8") as f:
            source = json.load(f).get("source_checkpoint", {}).get("path")
    except (OSError, ValueError, AttributeError):
        pass
    return ("%s, not a parameter checkpoint; give the checkpoint it was exported from%s"
            % (what, " (%s)" % source if isinstance(source, str) else ""))


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


def save_checkpoint(model, optimizer, path, train_state=None):
    """`checkpoints/step_N`: the 2019 layout (one tensor file per parameter, readable by
    init_checkpoint, init_pretraining_params and Paddle's legacy loader), plus what a resumed
    run needs: the optimizer state (moments, LR schedule), Paddle's random state and
    `train_state.json` (step, data position). `manifest.json`, with every file's size and
    sha256, is written last; the whole directory appears at once (renamed from a temporary
    one), so a run killed at any moment leaves only complete checkpoints; a parameter that is
    not finite is refused (DataError naming it and the step) before anything is written.
    Returns `path`."""
    import paddle
    params = model_params(model)
    for name in params:
        check_var_name(name)
    step = (train_state or {}).get("step")
    for name in sorted(params):
        # a checkpoint is what a run falls back on: never one with nan/inf in it
        bad = params[name][~np.isfinite(params[name])] if params[name].dtype.kind == "f" else ()
        if len(bad):
            raise DataError("parameter %s holds %s%s: not saving %s"
                            % (name, bad[0], " after step %d" % step if step else "", path))
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
                        "sha256": sha256(os.path.join(tmp, name))}
                 for name in sorted(os.listdir(tmp))}
        manifest = {"format": "ernie checkpoint", "version": 1,
                    "parameters": {n: {"shape": list(a.shape), "dtype": str(a.dtype)}
                                   for n, a in sorted(params.items())},
                    "files": files}
        with open(os.path.join(tmp, MANIFEST_FILE), "w", encoding="utf-8") as f:
            json.dump(manifest, f, indent=1, sort_keys=True)
    return path


# A folder being deleted is renamed to `<name>.del-<pid>` first, so that a run killed while
# deleting leaves no half-deleted `step_N` (utils.resume clears the `.del-` leftovers). A test
# sets ERNIE_TEST_DELETE_PAUSE (seconds) to kill a run between the rename and the removal.
DELETE_PAUSE_ENV = "ERNIE_TEST_DELETE_PAUSE"


def prune_checkpoints(directory, keep):
    """--keep_checkpoint_max: delete the `step_N` folders of `directory` but the `keep` with
    the highest N (`best` and the multi-task `stage_S_step_N` ones are not step_N folders:
    they stay). Returns the deleted paths."""
    import shutil
    import time
    steps = sorted((int(m.group(1)), name) for name, m in
                   ((n, re.fullmatch(r"step_(\d+)", n)) for n in os.listdir(directory)) if m)
    deleted = []
    for _, name in steps[:max(0, len(steps) - keep)]:
        path = os.path.join(directory, name)
        doomed = "%s.del-%d" % (path, os.getpid())
        try:
            os.rename(path, doomed)
        except OSError as e:
            print("WARNING: cannot delete %s: %s" % (path, e.strerror or e))
            continue
        if os.environ.get(DELETE_PAUSE_ENV):
            time.sleep(float(os.environ[DELETE_PAUSE_ENV]))
        shutil.rmtree(doomed, ignore_errors=True)
        deleted.append(path)
    return deleted


BEST = "best"


class BestCheckpoint(object):
    """--save_best: `<checkpoints>/best`, a whole checkpoint (written as step_N is, manifest
    included) of the step whose evaluation gave the best `metric` so far; its
    train_state.json holds, besides what step_N's holds, `best`: {"step", "metric", "value"}.
    Higher is better, or lower with `lower_is_better` (a loss). `label` names the evaluation
    in the lines printed ("dev", "validation")."""

    def __init__(self, checkpoints, metric, lower_is_better=False, label="dev"):
        self.path = os.path.join(checkpoints, BEST)
        self.metric, self.lower, self.label = metric, lower_is_better, label
        self.step = self.value = None

    def restore(self, record):
        """Carry on a resumed run's best so far: the `best` record of the train state of its
        `best` folder (utils.resume.saved_best), if it follows the same metric."""
        if record and record.get("metric") == self.metric and self.lower == bool(
                record.get("lower_is_better")):
            self.step, self.value = int(record["step"]), float(record["value"])
            print("best so far: step %d (%s %s %.4f) in %s"
                  % (self.step, self.label, self.metric, self.value, self.path))

    def offer(self, steps, value, save):
        """After an evaluation at `steps` that gave `value` (None: no score): if it beats the
        best so far, `save(path, record)` writes the checkpoint with `record` in its train
        state. Returns True if it was saved."""
        if value is None or not math.isfinite(value):
            return False
        if self.value is not None and not (value < self.value if self.lower
                                           else value > self.value):
            return False
        record = {"step": steps, "metric": self.metric, "value": float(value),
                  "lower_is_better": self.lower}
        save(self.path, record)
        self.step, self.value = steps, float(value)
        print("new best %s %s %.4f at step %d: saved to %s"
              % (self.label, self.metric, self.value, steps, self.path), flush=True)
        return True

    def summary(self):
        """The run's last word on it: `best checkpoint: step 120 (dev acc 0.8821) in ...`."""
        if self.step is None:
            return "best checkpoint: none (no %s evaluation gave a %s)" % (self.label,
                                                                       self.metric)
        return "best checkpoint: step %d (%s %s %.4f) in %s" % (
            self.step, self.label, self.metric, self.value, self.path)


def verify_checkpoint(path):
    """Check a checkpoint against its manifest; raise DataError naming what is wrong.
    Returns the manifest, or None for a directory without one (a 2019 or foreign one)."""
    manifest_path = os.path.join(path, MANIFEST_FILE)
    if not os.path.isfile(manifest_path):
        return None
    try:
        with open(manifest_path, encoding="utf-8") as f:
            manifest = json.load(f)
    except ValueError:
        manifest = None
    if isinstance(manifest, dict) and "format_version" in manifest and "task" in manifest:
        # serving.folder's manifest: {name: sha256}, and no parameter files beside it
        raise DataError("%s: %s" % (path, _inference_folder_note(
            path, "a model folder (python -m serving.export)")))
    files = manifest.get("files") if isinstance(manifest, dict) else None
    if not isinstance(files, dict) or not all(
            isinstance(info, dict) and isinstance(info.get("bytes"), int)
            and isinstance(info.get("sha256"), str) for info in files.values()):
        raise DataError("%s: unreadable checkpoint manifest" % manifest_path)
    for name, info in sorted(files.items()):
        full = os.path.join(path, name)
        if not os.path.isfile(full):
            raise DataError("%s: incomplete checkpoint: %s is missing" % (path, name))
        if os.path.getsize(full) != info["bytes"] or sha256(full) != info["sha256"]:
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



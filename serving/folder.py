"""The self-contained model folder: everything needed to predict with a fine-tuned (or
pretrained) ERNIE, checked by checksums.

    model.json, model.pdiparams      the task's inference program (absent for `encode`):
                                     classify/regress: encoder inputs -> probabilities [B, C]
                                     (scores [B, 1]); tag: -> label probabilities [B, L, C];
                                     mrc: -> (start logits [B, L], end logits [B, L])
    encoder.json, encoder.pdiparams  the encoder: -> (sequence output [B, L, H], pooled [B, H])
    vocab.txt, ernie_config.json     copies of the files the model was trained with
    label_map.json                   the --label_map_config given (classify, regress, tag)
    sentencepiece.model              the --sentence_piece_model given (a folder exported
                                     before it had this name keeps its file's own name)
    manifest.json                    what the folder is, below

manifest.json: {"format_version": 1, "task", "num_labels", "labels" (the label name of every
output id, "0".."N-1" without a label map; null for regress, mrc, encode), "tokenizer":
{"tokenizer", "do_lower_case", "for_cn", "max_seq_len", "sentence_piece_model"}, "task_id",
"mrc" (doc_stride, max_query_length, n_best_size, max_answer_length; mrc only), "programs"
({"task": prefix, "encoder": prefix}), "source_checkpoint" ({"path", "files": {name:
[size, mtime_ns]}}: what the prediction scripts compare to export once), "files" ({name:
sha256} of every other file), and once int8 programs are added (serving/int8.py), "int8"
({"programs": {"task": prefix, "encoder": prefix}, "calibration": {"file", "sha256",
"examples" (model inputs: a long tag input counts once per window), "method"}})}.

`export_folder` writes a folder atomically (`check_replaceable`: never over other files);
`read_manifest` checks one; `is_model_folder` tells one from a checkpoint; `manifest_digest`
tells one export from another.
"""
import hashlib
import json
import os
import re
import shutil

from utils.args import check_max_seq_len
from utils.errors import DataError, UsageError
from utils.fileio import sha256

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
TASKS = ("classify", "regress", "tag", "mrc", "encode")
TOKENIZER_KEYS = ("tokenizer", "do_lower_case", "for_cn", "max_seq_len",
                  "sentence_piece_model")
MRC_KEYS = ("doc_stride", "max_query_length", "n_best_size", "max_answer_length")
# one name whatever the file given was called: no clash with the folder's other files
SENTENCEPIECE_MODEL = "sentencepiece.model"
# every name an export writes but manifest.json; the int8 programs serving.int8 adds begin
# with INT8_PREFIXES
EXPORT_FILES = ("model.json", "model.pdiparams", "encoder.json", "encoder.pdiparams",
                "vocab.txt", "ernie_config.json", "label_map.json", SENTENCEPIECE_MODEL)
INT8_PREFIXES = ("model_int8_", "encoder_int8_")


def _manifest_json(folder):
    """The parsed manifest.json of `folder`, or None when it cannot be read as json."""
    try:
        with open(os.path.join(str(folder), MANIFEST), encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError, UnicodeDecodeError):
        return None


def is_model_folder(path):
    """Is `path` a model folder, not a checkpoint? Its manifest.json names a format_version
    and a task (a training checkpoint's manifest.json, utils.checkpoint, names neither), or,
    whatever that manifest holds, the exported encoder program is beside it (no checkpoint
    has one): read_manifest then says what is wrong with the manifest."""
    if not path or not os.path.isdir(str(path)):
        return False
    manifest = _manifest_json(path)
    if isinstance(manifest, dict) and "format_version" in manifest and "task" in manifest:
        return True
    return os.path.isfile(os.path.join(str(path), MANIFEST)) and \
        os.path.isfile(os.path.join(str(path), "encoder.json"))


def read_manifest(folder, verify=True):
    """The folder's manifest, after checking that every file it lists is there with its
    checksum (`verify=False`: its form only, for a folder checked a moment ago). Raises a
    one-line DataError naming the file otherwise."""
    folder = str(folder)
    path = os.path.join(folder, MANIFEST)
    # checked before the open, whose errors (NotADirectoryError, IsADirectoryError) would
    # name neither what is wrong nor which path the user gave
    if os.path.exists(folder) and not os.path.isdir(folder):
        raise DataError("%s is not a model folder (it is a file; give the folder python -m "
                        "serving.export wrote)" % folder)
    if os.path.isdir(path):
        raise DataError("%s: %s is not a file (a directory)" % (folder, MANIFEST))
    try:
        with open(path, encoding="utf-8") as f:
            manifest = json.load(f)
    except FileNotFoundError:
        raise DataError("%s: not a model folder (no %s)" % (folder, MANIFEST)) from None
    except OSError as e:  # unreadable: permissions, a special file
        raise DataError("%s: cannot read (%s)" % (path, e.strerror or e)) from None
    except (ValueError, UnicodeDecodeError) as e:
        raise DataError("%s: not a json manifest (%s)" % (path, str(e).splitlines()[0])) from None
    if isinstance(manifest, dict) and "format_version" not in manifest:
        raise DataError("%s: not a model folder (a training checkpoint? python -m "
                        "serving.export makes a model folder of one)" % folder)
    if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), dict):
        raise DataError("%s: not a model folder manifest (no \"files\")" % path)
    if manifest.get("format_version") != FORMAT_VERSION:
        raise DataError("%s: format_version %r; this toolkit reads version %d"
                        % (path, manifest.get("format_version"), FORMAT_VERSION))
    if manifest.get("task") not in TASKS:
        raise DataError("%s: task %r is not one of %s" % (path, manifest.get("task"),
                                                          ", ".join(TASKS)))
    _check_fields(path, manifest)
    for name, digest in sorted(manifest["files"].items() if verify else ()):
        file = os.path.join(folder, name)
        if not os.path.isfile(file):
            raise DataError("%s: missing (listed in %s)" % (file, path))
        if sha256(file) != digest:
            raise DataError("%s: checksum does not match %s (the file was changed after "
                            "export)" % (file, path))
    return manifest


_MISSING = object()


def _is_int(value, least):
    return isinstance(value, int) and not isinstance(value, bool) and value >= least


def _field(path, parent, key, name, ok, want):
    """parent[key], named `name` in the message, if ok(it); else a one-line DataError."""
    value = parent.get(key, _MISSING)
    if value is _MISSING:
        raise DataError("%s: %s is missing" % (path, name))
    if not ok(value):
        shown = json.dumps(value, ensure_ascii=False)
        raise DataError("%s: %s must be %s, got %s"
                        % (path, name, want, shown if len(shown) <= 60 else shown[:57] + "..."))
    return value


def _check_programs(path, parent, name):
    programs = _field(path, parent, "programs", name, lambda v: isinstance(v, dict),
                      "an object")
    for which in ("task", "encoder"):
        _field(path, programs, which, "%s.%s" % (name, which),
               lambda v: isinstance(v, str) and v, "a file name prefix")


def _check_tokenizer(path, manifest):
    tok = _field(path, manifest, "tokenizer", "tokenizer", lambda v: isinstance(v, dict),
                 "an object")
    _field(path, tok, "tokenizer", "tokenizer.tokenizer", lambda v: isinstance(v, str) and v,
           "a tokenizer name")
    for key in ("do_lower_case", "for_cn"):
        _field(path, tok, key, "tokenizer." + key, lambda v: isinstance(v, bool),
               "true or false")
    _field(path, tok, "max_seq_len", "tokenizer.max_seq_len", lambda v: _is_int(v, 3),
           "an integer of at least 3")
    _field(path, tok, "sentence_piece_model", "tokenizer.sentence_piece_model",
           lambda v: v is None or isinstance(v, str) and v in manifest["files"],
           "null or a file listed in \"files\"")


def _check_labels(path, manifest):
    task = manifest["task"]
    if task in ("classify", "tag"):
        n = _field(path, manifest, "num_labels", "num_labels", lambda v: _is_int(v, 1),
                   "a positive integer")
        _field(path, manifest, "labels", "labels", lambda v: isinstance(v, list) and len(v) == n
               and all(isinstance(label, str) for label in v),
               "a list of %d label names (num_labels)" % n)
        return
    n = 1 if task == "regress" else None  # what ExportPlan writes for these tasks
    _field(path, manifest, "num_labels", "num_labels", lambda v: v == n,
           "%s for task %s" % (json.dumps(n), task))
    _field(path, manifest, "labels", "labels", lambda v: v is None, "null for task %s" % task)


def _check_int8(path, manifest):
    int8 = _field(path, manifest, "int8", "int8", lambda v: isinstance(v, dict), "an object")
    _check_programs(path, int8, "int8.programs")
    calibration = _field(path, int8, "calibration", "int8.calibration",
                         lambda v: isinstance(v, dict), "an object")
    for key, ok, want in (("file", lambda v: isinstance(v, str), "a path"),
                          ("sha256", lambda v: isinstance(v, str), "a hex digest"),
                          ("examples", lambda v: _is_int(v, 1), "a positive integer")):
        _field(path, calibration, key, "int8.calibration." + key, ok, want)


def _check_fields(path, manifest):
    """Each field loading reads (folder_settings, serving.api, serving.int8), of its type: an
    edited manifest.json fails here, naming the field, not with a KeyError or at the first
    prediction."""
    _check_tokenizer(path, manifest)
    if "task_id" in manifest:
        _field(path, manifest, "task_id", "task_id", lambda v: _is_int(v, 0),
               "an integer of at least 0")
    _check_programs(path, manifest, "programs")
    _check_labels(path, manifest)
    if manifest["task"] == "mrc":
        mrc = _field(path, manifest, "mrc", "mrc", lambda v: isinstance(v, dict), "an object")
        for key in MRC_KEYS:
            _field(path, mrc, key, "mrc." + key, lambda v: _is_int(v, 1), "a positive integer")
    if "int8" in manifest:
        _check_int8(path, manifest)


def manifest_digest(manifest, precision="fp32"):
    """A short hex digest of what a manifest (read_manifest's) says the folder predicts with
    at `precision`: the sha256 of every file, the task and the settings. Two folders with the
    same digest predict the same. Left out: where the model came from (source_checkpoint),
    and but for int8 the int8 programs, which serving.int8 adds to a folder in use."""
    served = {k: v for k, v in manifest.items() if k != "source_checkpoint"}
    if precision != "int8" and "int8" in served:
        prefixes = tuple(p + "." for p in served.pop("int8").get("programs", {}).values())
        served["files"] = {name: digest for name, digest in served["files"].items()
                           if not name.startswith(prefixes)}
    text = json.dumps(served, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def checkpoint_fingerprint(path):
    """{"path", "files": {relative name: [size, mtime_ns]}} of a checkpoint file or folder:
    cheap to compute, and any rewrite of a parameter file changes it."""
    path = os.path.abspath(str(path))
    files = {}
    if os.path.isdir(path):
        for root, _, names in os.walk(path):
            for name in names:
                full = os.path.join(root, name)
                st = os.stat(full)
                files[os.path.relpath(full, path)] = [st.st_size, st.st_mtime_ns]
    else:
        st = os.stat(path)
        files[os.path.basename(path)] = [st.st_size, st.st_mtime_ns]
    return {"path": path, "files": dict(sorted(files.items()))}


def label_names(label_map, num_labels):
    """The name of every output id 0..num_labels-1: the label map's (the last label on an
    id when several share it, as predict_classifier.py's --output_file names them), else
    the id as a string."""
    names = {v: k for k, v in (label_map or {}).items()}
    return [names.get(i, str(i)) for i in range(num_labels)]


class ExportPlan(object):
    """What a folder for these inputs holds, before anything is built: the manifest without
    "files", and the files copied into it ({name in the folder: source path})."""

    def __init__(self, task, init_checkpoint, ernie_config_path, vocab_path,
                 label_map_config=None, num_labels=None, max_seq_len=128, do_lower_case=True,
                 for_cn=True, tokenizer="FullTokenizer", sentence_piece_model=None,
                 task_id=0, mrc=None):
        from reader.task_reader import load_label_map
        if task not in TASKS:
            raise UsageError("--task %r is not one of %s" % (task, ", ".join(TASKS)))
        check_max_seq_len(max_seq_len)  # no folder loads with less
        label_map = load_label_map(label_map_config) if label_map_config else None
        if task == "tag" and not label_map:
            raise UsageError("--label_map_config is required for --task tag")
        if task == "classify":
            num_labels = num_labels or (max(label_map.values()) + 1 if label_map else 2)
            labels = label_names(label_map, num_labels)
        elif task == "tag":
            num_labels = num_labels or len(label_map)
            labels = label_names(label_map, num_labels)
        else:
            num_labels, labels = (1 if task == "regress" else None), None
        self.task, self.init_checkpoint = task, str(init_checkpoint)
        self.ernie_config_path, self.num_labels = str(ernie_config_path), num_labels
        self.copies = {"vocab.txt": str(vocab_path), "ernie_config.json": str(ernie_config_path)}
        if label_map_config and task in ("classify", "regress", "tag"):
            self.copies["label_map.json"] = str(label_map_config)
        sp_name = SENTENCEPIECE_MODEL if sentence_piece_model else None
        if sentence_piece_model:
            self.copies[sp_name] = str(sentence_piece_model)
        self.manifest = {
            "format_version": FORMAT_VERSION, "task": task, "num_labels": num_labels,
            "labels": labels,
            "tokenizer": {"tokenizer": tokenizer, "do_lower_case": bool(do_lower_case),
                          "for_cn": bool(for_cn), "max_seq_len": int(max_seq_len),
                          "sentence_piece_model": sp_name},
            "task_id": int(task_id or 0),
            "programs": {"task": "encoder" if task == "encode" else "model",
                         "encoder": "encoder"},
            "source_checkpoint": checkpoint_fingerprint(init_checkpoint)}
        if task == "mrc":
            mrc = dict(mrc or {})
            self.manifest["mrc"] = {k: int(mrc.get(k, d)) for k, d in
                                    zip(MRC_KEYS, (128, 64, 20, 100))}

    def is_current(self, folder):
        """Does `folder` already hold this export (same checkpoint files, settings and copied
        files, every checksum intact)?"""
        if not is_model_folder(folder):
            return False
        try:
            manifest = read_manifest(folder)
        except DataError:
            return False
        if {k: v for k, v in manifest.items() if k not in ("files", "int8")} != self.manifest:
            return False
        files = manifest["files"]
        programs = ("model.", "encoder.") + tuple(manifest.get("int8", {}).get("programs",
                                                                                {}).values())
        copied = {n for n in files if not n.startswith(programs)}
        return copied == set(self.copies) and all(sha256(src) == files[name]
                                                  for name, src in self.copies.items())

    def build_model(self, config):
        """(model with parameters from the checkpoint, the layer to export as the task
        program or None for encode)."""
        from finetune.classifier import ClassifierPredictor, ErnieClassifier
        from finetune.mrc import ErnieMRC
        from finetune.sequence_label import ErnieSequenceLabeler, SequenceLabelPredictor
        from model.ernie import ErnieModel
        from utils.checkpoint import init_checkpoint, init_pretraining_params
        if self.task == "encode":
            model = ErnieModel(config)
            init_pretraining_params(model, self.init_checkpoint)
            return model, None
        if self.task in ("classify", "regress"):
            model = ErnieClassifier(config, self.num_labels, self.task == "regress")
            serving = ClassifierPredictor(model)
        elif self.task == "tag":
            model = ErnieSequenceLabeler(config, self.num_labels)
            serving = SequenceLabelPredictor(model)
        else:
            model = serving = ErnieMRC(config)
        init_checkpoint(model, self.init_checkpoint, training=False)
        return model, serving

    def write(self, output_dir):
        """Build the model, export it and write the folder atomically (utils.fileio.atomic_dir:
        a failed export leaves `output_dir` as it was; check_replaceable first). Returns
        output_dir."""
        check_replaceable(output_dir)
        from model.ernie import ErnieConfig, encoder_input_spec
        from utils.fileio import atomic_dir, atomic_write_text
        from utils.inference import export
        config = ErnieConfig(self.ernie_config_path)
        model, serving = self.build_model(config)
        encoder = model if self.task == "encode" else model.ernie
        spec = encoder_input_spec(config)
        with atomic_dir(output_dir) as tmp:
            if serving is not None:
                export(serving, os.path.join(tmp, "model"), spec)
            export(encoder, os.path.join(tmp, "encoder"), spec)
            for name, src in self.copies.items():
                shutil.copyfile(src, os.path.join(tmp, name))
            files = {}
            for name in sorted(os.listdir(tmp)):
                if os.path.isfile(os.path.join(tmp, name)):
                    files[name] = sha256(os.path.join(tmp, name))
            manifest = dict(self.manifest, files=files)
            atomic_write_text(os.path.join(tmp, MANIFEST),
                              json.dumps(manifest, indent=1, ensure_ascii=False) + "\n")
        return output_dir


def _is_part(folder, name, listed):
    """Is the entry `name` of the model folder `folder` part of it? `listed`: the files its
    manifest lists, None when the manifest cannot be read (then any file an export writes)."""
    if not os.path.isfile(os.path.join(folder, name)):
        return False
    # int8 programs, and manifest.json's temporary copy, that a calibration killed before it
    # switched the manifest to them left unlisted (serving.int8.ensure_int8)
    return (name == MANIFEST or name.startswith(INT8_PREFIXES)
            or re.fullmatch(re.escape(MANIFEST) + r"\.tmp-\d+", name) is not None
            or name in (EXPORT_FILES if listed is None else listed))


def check_replaceable(output_dir):
    """Before a model folder is written to `output_dir`, which the new one replaces whole:
    refuse (UsageError, one line) a file there, a folder that is not a model folder and a
    model folder holding anything its manifest does not list (notes, results), so that an
    export never deletes what someone put there. (utils.format_paddle2019's
    check_model_dir_replaceable is the same rule for a 2019 MODEL_PATH folder.)"""
    if os.path.lexists(output_dir) and not os.path.isdir(output_dir):
        # now, not after the model is built: atomic_dir would fail at its last rename
        raise UsageError("%s is a file, not a folder: the model folder cannot be "
                         "written there" % output_dir)
    names = sorted(os.listdir(output_dir)) if os.path.isdir(output_dir) else []
    if names and not is_model_folder(output_dir):
        raise UsageError("refusing to replace %s: it holds %r and is not a model folder; "
                         "choose a new or empty folder" % (output_dir, names[0]))
    manifest = _manifest_json(output_dir) if names else None
    files = manifest.get("files") if isinstance(manifest, dict) else None
    listed = set(files) if isinstance(files, dict) else None
    other = [name for name in names if not _is_part(output_dir, name, listed)]
    if other:
        raise UsageError("refusing to replace the model folder %s: it also holds %r, which is "
                         "not part of it; move it or choose another folder"
                         % (output_dir, other[0]))


def export_folder(output_dir, task, init_checkpoint, ernie_config_path, vocab_path, **kwargs):
    """Write the model folder of `init_checkpoint` for `task` to `output_dir` (see the module
    docstring; keyword arguments as ExportPlan takes them). Returns output_dir."""
    return ExportPlan(task, init_checkpoint, ernie_config_path, vocab_path,
                      **kwargs).write(output_dir)


def export_once(plan, output_dir):
    """The prediction scripts' export: write `plan` to `output_dir` unless the folder there
    already holds it (the same checkpoint files, by size and modification time, the same
    settings and copied files), saying which in one line. Returns the prefix of the task's
    program (the encoder's for `encode`)."""
    if plan.is_current(output_dir):
        print("inference model in %s is up to date with %s; not exported again"
              % (output_dir, plan.init_checkpoint))
    else:
        plan.write(output_dir)
        print("save inference model to %s" % output_dir)
    return os.path.join(output_dir, plan.manifest["programs"]["task"])


def folder_settings(folder, manifest):
    """The flag values a model folder stands for: {flag name: value}, paths into the folder."""
    tok = manifest["tokenizer"]
    settings = {"ernie_config_path": os.path.join(folder, "ernie_config.json"),
                "vocab_path": os.path.join(folder, "vocab.txt"),
                "max_seq_len": tok["max_seq_len"], "do_lower_case": tok["do_lower_case"],
                "tokenizer": tok["tokenizer"], "for_cn": tok["for_cn"],
                "sentence_piece_model": (os.path.join(folder, tok["sentence_piece_model"])
                                         if tok["sentence_piece_model"] else None),
                "label_map_config": (os.path.join(folder, "label_map.json")
                                     if "label_map.json" in manifest["files"] else None)}
    if manifest["num_labels"] is not None:
        settings["num_labels"] = manifest["num_labels"]
    settings["is_regression"] = manifest["task"] == "regress"
    return settings


def _same_file(a, b):
    try:
        return sha256(a) == sha256(b)
    except OSError:
        return False


def given_flags(argv):
    """The flag names written on the command line (`--name value` or `--name=value`)."""
    return {a[2:].split("=", 1)[0] for a in argv if a.startswith("--")}


def use_folder(args, argv, flag, tasks):
    """A model folder given as --<flag>: check it (checksums, task in `tasks`), check that no
    flag written in `argv` contradicts it, and set the args its settings stand for. Returns
    (manifest, the prefix of the program to run: the task's, or the encoder's when `tasks`
    is ("encode",) and the folder is of another task)."""
    folder = getattr(args, flag)
    manifest = read_manifest(folder)
    task = manifest["task"]
    if tasks != ("encode",) and task not in tasks:
        raise UsageError("--%s: %s is a model folder for task %s, not %s"
                         % (flag, folder, task, " or ".join(tasks)))
    given = given_flags(argv)
    for name, value in folder_settings(folder, manifest).items():
        if not hasattr(args, name):
            continue
        mine = getattr(args, name)
        if name in given and mine is not None:
            if name.endswith(("_path", "_config", "_model")):
                same = value is not None and _same_file(mine, value)
            else:
                same = mine == value
            if not same:
                raise UsageError("--%s %s contradicts the model folder %s (%s); leave it out"
                                 % (name, mine, folder, value))
        setattr(args, name, value)
    program = "encoder" if tasks == ("encode",) else manifest["programs"]["task"]
    return manifest, os.path.join(folder, program)


"""Every parameter format the toolkit reads or writes, in one place.

Parameters travel as a plain ``dict`` mapping the 2019 variable name (``word_embedding``,
``encoder_layer_0_ffn_fc_0.w_0``, ``_cls_out_w``, ...) to a ``numpy.ndarray``.

Formats:

* ``legacy_dir``: the 2019 ``params/`` directory, one Paddle LoDTensor file per variable,
  named after it (``fluid.io.save_persistables`` / ``save_params``).  Read and written by
  hand here; no Paddle needed.
* ``pdparams``: one ``paddle.save`` pickle of ``{2019 name: array}``.
* ``hf``: a HuggingFace transformers directory (``config.json`` + ``model.safetensors``, or
  ``pytorch_model.bin`` when torch is installed), with ERNIE/BERT names.  Fc weights are
  transposed (Paddle ``[in, out]``, torch ``[out, in]``).  Parameters the chosen HF class
  has no slot for (e.g. ``pooled_fc`` of a NER model, pretraining heads of a fine-tuned
  one) are kept, under their 2019 names, in ``ernie2019_extra.safetensors`` beside the
  weights, which transformers ignores; so a conversion round trip is lossless.

Loading into a ``paddle.nn.Layer`` whose parameters carry the 2019 names in ``p.name``:
``assign_params``, ``init_pretraining_params``, ``init_checkpoint``.

Every write goes to a temporary sibling first and is renamed into place, so a killed
write never leaves a half-written destination.
"""
import json
import os
import re
import shutil
import struct
import sys

import numpy as np

from utils.errors import DataError, UsageError, where
from utils.fileio import atomic_path

# ---------------------------------------------------------------------------------------
# Legacy LoDTensor files
# ---------------------------------------------------------------------------------------

# Paddle's VarType enum (framework.proto) -> numpy dtype.  BF16 has no numpy dtype: it is
# read as float32 (exact: bf16 is the upper half of an fp32).
_VARTYPE_TO_NP = {
    0: np.dtype(np.bool_),
    1: np.dtype("<i2"),
    2: np.dtype("<i4"),
    3: np.dtype("<i8"),
    4: np.dtype("<f2"),
    5: np.dtype("<f4"),
    6: np.dtype("<f8"),
    20: np.dtype(np.uint8),
    21: np.dtype(np.int8),
    22: "bf16",
    23: np.dtype("<c8"),
    24: np.dtype("<c16"),
}
_VARTYPE_NAMES = {0: "BOOL", 1: "INT16", 2: "INT32", 3: "INT64", 4: "FP16", 5: "FP32",
                  6: "FP64", 20: "UINT8", 21: "INT8", 22: "BF16", 23: "COMPLEX64",
                  24: "COMPLEX128"}
_NP_TO_VARTYPE = {np.dtype(np.bool_): 0, np.dtype(np.int16): 1, np.dtype(np.int32): 2,
                  np.dtype(np.int64): 3, np.dtype(np.float16): 4, np.dtype(np.float32): 5,
                  np.dtype(np.float64): 6, np.dtype(np.uint8): 20, np.dtype(np.int8): 21,
                  np.dtype(np.complex64): 23, np.dtype(np.complex128): 24}

_MAX_LOD_LEVEL = 64
_MAX_DIMS = 64


def _read_varint(buf, pos, path):
    result = 0
    shift = 0
    while True:
        if pos >= len(buf):
            raise DataError("%s: corrupt tensor header (TensorDesc protobuf ends inside a "
                            "varint)" % where(path))
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7
        if shift >= 70:
            raise DataError("%s: corrupt tensor header (varint too long)" % where(path))


def _signed64(v):
    v &= (1 << 64) - 1
    return v - (1 << 64) if v >= (1 << 63) else v


def _parse_tensor_desc(buf, path):
    """TensorDesc { required VarType.Type data_type = 1; repeated int64 dims = 2; }"""
    data_type = None
    dims = []
    pos = 0
    while pos < len(buf):
        key, pos = _read_varint(buf, pos, path)
        field, wire = key >> 3, key & 7
        if wire == 0:
            val, pos = _read_varint(buf, pos, path)
            if field == 1:
                data_type = val
            elif field == 2:
                dims.append(_signed64(val))
        elif wire == 2:
            n, pos = _read_varint(buf, pos, path)
            end = pos + n
            if end > len(buf):
                raise DataError("%s: corrupt tensor header (TensorDesc field overruns)"
                                % where(path))
            if field == 2:  # packed dims
                while pos < end:
                    val, pos = _read_varint(buf, pos, path)
                    dims.append(_signed64(val))
            pos = end
        elif wire == 1:
            pos += 8
        elif wire == 5:
            pos += 4
        else:
            raise DataError("%s: corrupt tensor header (protobuf wire type %d)"
                            % (where(path), wire))
        if field == 0:
            raise DataError("%s: corrupt tensor header (protobuf field 0)" % where(path))
    if pos != len(buf):
        raise DataError("%s: corrupt tensor header (TensorDesc overruns)" % where(path))
    if data_type is None:
        raise DataError("%s: corrupt tensor header (TensorDesc has no data_type)"
                        % where(path))
    if len(dims) > _MAX_DIMS or any(d < 0 for d in dims):
        raise DataError("%s: corrupt tensor header (dims %s)" % (where(path), dims))
    return data_type, dims


def _read_header(f, path, file_size):
    """Parse the LoDTensor header; return (vartype, dims, data_offset)."""
    head = f.read(12)
    if len(head) < 12:
        raise DataError("%s: not a Paddle tensor file (only %d bytes)"
                        % (where(path), len(head)))
    version, lod_level = struct.unpack("<IQ", head)
    if version != 0:
        raise DataError("%s: corrupt tensor header (LoDTensor version %d, expected 0)"
                        % (where(path), version))
    if lod_level > _MAX_LOD_LEVEL:
        raise DataError("%s: corrupt tensor header (lod_level %d)" % (where(path), lod_level))
    for _ in range(lod_level):
        raw = f.read(8)
        if len(raw) < 8:
            raise DataError("%s: truncated tensor file (ends inside the LoD)" % where(path))
        (n,) = struct.unpack("<Q", raw)
        if n % 8 or f.tell() + n > file_size:
            raise DataError("%s: corrupt tensor header (LoD level of %d bytes)"
                            % (where(path), n))
        f.seek(n, 1)
    raw = f.read(8)
    if len(raw) < 8:
        raise DataError("%s: truncated tensor file (ends before the tensor header)"
                        % where(path))
    tversion, desc_size = struct.unpack("<Ii", raw)
    if tversion != 0:
        raise DataError("%s: corrupt tensor header (tensor version %d, expected 0)"
                        % (where(path), tversion))
    if desc_size <= 0 or f.tell() + desc_size > file_size:
        raise DataError("%s: corrupt tensor header (TensorDesc size %d)"
                        % (where(path), desc_size))
    desc = f.read(desc_size)
    vartype, dims = _parse_tensor_desc(desc, path)
    if vartype not in _VARTYPE_TO_NP:
        raise DataError("%s: unknown tensor data type %d in header" % (where(path), vartype))
    return vartype, dims, f.tell()


def _expected_nbytes(vartype, dims):
    itemsize = 2 if vartype == 22 else _VARTYPE_TO_NP[vartype].itemsize
    return int(np.prod(dims, dtype=np.int64)) * itemsize if dims else itemsize


def _looks_like_tensor_file(path):
    """True if `path` starts with a valid legacy tensor header (the data may be damaged)."""
    try:
        with open(path, "rb") as f:
            _read_header(f, path, os.path.getsize(path))
        return True
    except (DataError, OSError):
        return False


def read_legacy_tensor(path):
    """Read one Paddle LoDTensor file (the 2019 per-variable format) into a numpy array."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise DataError("%s: no such file" % where(path))
    if not os.path.isfile(path):
        raise DataError("%s: not a file" % where(path))
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        vartype, dims, off = _read_header(f, path, size)
        need = _expected_nbytes(vartype, dims)
        have = size - off
        if have < need:
            raise DataError("%s: truncated tensor file (%d data bytes, dims %s of %s need %d)"
                            % (where(path), have, dims, _VARTYPE_NAMES[vartype], need))
        if have > need:
            raise DataError("%s: corrupt tensor file (%d bytes after the data of dims %s; "
                            "a combined parameter file is not supported)"
                            % (where(path), have - need, dims))
        shape = tuple(int(d) for d in dims)
        if vartype == 22:
            raw = np.empty(shape, dtype="<u2")
        else:
            raw = np.empty(shape, dtype=_VARTYPE_TO_NP[vartype])
        if need:
            got = f.readinto(memoryview(raw.reshape(-1)).cast("B"))
            if got != need:
                raise DataError("%s: truncated tensor file" % where(path))
    if vartype == 22:
        return (raw.astype(np.uint32) << 16).view(np.float32)
    return raw.astype(raw.dtype.newbyteorder("="), copy=False)  # native order


def _varint(v):
    out = bytearray()
    v &= (1 << 64) - 1
    while True:
        b = v & 0x7F
        v >>= 7
        if v:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _tensor_bytes(array, name="tensor"):
    """(header bytes, contiguous little-endian array) of one LoDTensor file."""
    arr = np.asarray(array)
    if arr.dtype.name == "bfloat16":  # ml_dtypes / paddle numpy bf16
        vartype = 22
        arr = np.asarray(arr, order="C").view("<u2")
    else:
        if arr.dtype.byteorder == ">":
            arr = arr.astype(arr.dtype.newbyteorder("<"))
        vartype = _NP_TO_VARTYPE.get(np.dtype(arr.dtype.str.replace(">", "<")))
        if vartype is None:
            raise DataError("%s: dtype %s cannot be stored in a Paddle tensor file"
                            % (name, arr.dtype))
        arr = np.asarray(arr, order="C")  # (ascontiguousarray would make 0-d 1-d)
    desc = _varint((1 << 3) | 0) + _varint(vartype)
    for d in arr.shape:
        desc += _varint((2 << 3) | 0) + _varint(int(d))
    header = struct.pack("<IQ", 0, 0) + struct.pack("<Ii", 0, len(desc)) + desc
    return header, arr


def _tmp_name(path):
    return "%s.tmp-%d" % (path, os.getpid())  # the name utils.fileio.atomic_path uses too


def write_legacy_tensor(path, array):
    """Write one array as a Paddle LoDTensor file (atomic: temporary sibling + rename)."""
    path = os.fspath(path)
    header, arr = _tensor_bytes(array, name=where(path))
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(header)
            if arr.size:
                f.write(memoryview(arr.reshape(-1)).cast("B"))


def _remove_quietly(path):
    try:
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path, ignore_errors=True)
        else:
            os.remove(path)
    except OSError:
        pass


def _is_ours_to_skip(fname):
    """Non-tensor files a parameter directory may hold: hidden files, our manifests."""
    return fname.startswith(".") or fname.endswith((".json", ".pdopt", ".pdrng", ".txt"))


def _resolve_legacy_dir(d):
    """A model directory holding `params/` means its `params/`."""
    sub = os.path.join(d, "params")
    if os.path.isdir(sub):
        return sub
    return d


def read_legacy_dir(d):
    """Read a 2019 `params/` directory (one tensor file per variable) into {name: array}."""
    d = os.fspath(d)
    if not os.path.exists(d):
        raise DataError("%s: no such directory" % where(d))
    if not os.path.isdir(d):
        raise DataError("%s: not a directory" % where(d))
    d = _resolve_legacy_dir(d)
    params = {}
    for fname in sorted(os.listdir(d)):
        full = os.path.join(d, fname)
        if os.path.isdir(full) or _is_ours_to_skip(fname):
            continue
        params[fname] = read_legacy_tensor(full)
    if not params:
        raise DataError("%s: empty directory (no parameter files)" % where(d))
    return params


def _check_var_name(name):
    if (not isinstance(name, str) or not name or name in (".", "..") or "/" in name
            or "\\" in name or "\0" in name or _is_ours_to_skip(name)):
        raise DataError("parameter name %r cannot be a file name in a parameter directory"
                        % (name,))


def write_legacy_dir(params, d):
    """Write {name: array} as a 2019 `params/` directory (atomic; replaces `d` safely)."""
    for name in params:
        _check_var_name(name)
    with _atomic_dir(d, "legacy_dir") as tmp:
        for name in sorted(params):
            write_legacy_tensor(os.path.join(tmp, name), params[name])


# ---------------------------------------------------------------------------------------
# Atomic directory replacement
# ---------------------------------------------------------------------------------------

_HF_OWN_FILES = ("config.json", "model.safetensors", "pytorch_model.bin",
                 "model.safetensors.index.json", "pytorch_model.bin.index.json")
EXTRA_FILE = "ernie2019_extra.safetensors"


def _carry_over(fname, fmt):
    """Files of an existing destination we keep (vocab, tokenizer files, notes)."""
    if fmt == "hf":
        if fname in _HF_OWN_FILES or fname.endswith(".index.json"):
            return False
        return fname.startswith(".") or fname.endswith((".json", ".txt", ".model", ".md"))
    return _is_ours_to_skip(fname)


def _check_replaceable(dest, fmt):
    if not os.path.isdir(dest):
        raise UsageError("%s exists and is not a directory; refusing to replace it" % dest)
    for fname in os.listdir(dest):
        full = os.path.join(dest, fname)
        if _carry_over(fname, fmt):
            if os.path.isfile(full):
                continue
        elif os.path.isfile(full):
            if fmt == "hf" and (fname in _HF_OWN_FILES or fname == EXTRA_FILE
                                or fname.endswith((".safetensors", ".bin"))):
                continue
            if fmt == "legacy_dir" and _looks_like_tensor_file(full):
                continue
        raise UsageError("refusing to replace %s: it holds %r, which is not a parameter "
                         "file; choose a new or empty directory" % (dest, fname))


class _atomic_dir:
    """Write into `<dest>.tmp-<pid>`, then rename it to `dest` (swapping out an old one)."""

    def __init__(self, dest, fmt):
        self.dest = os.path.normpath(os.fspath(dest))
        self.fmt = fmt
        self.tmp = _tmp_name(self.dest)

    def __enter__(self):
        if os.path.lexists(self.dest):
            _check_replaceable(self.dest, self.fmt)
        os.makedirs(os.path.dirname(os.path.abspath(self.dest)), exist_ok=True)
        _remove_quietly(self.tmp)
        os.mkdir(self.tmp)
        return self.tmp

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None:
            _remove_quietly(self.tmp)
            return False
        try:
            if os.path.isdir(self.dest):
                for fname in os.listdir(self.dest):
                    src = os.path.join(self.dest, fname)
                    dst = os.path.join(self.tmp, fname)
                    if _carry_over(fname, self.fmt) and os.path.isfile(src) \
                            and not os.path.exists(dst):
                        shutil.copy2(src, dst)
                old = "%s.old-%d" % (self.dest, os.getpid())
                _remove_quietly(old)
                os.rename(self.dest, old)
                try:
                    os.rename(self.tmp, self.dest)
                except BaseException:
                    os.rename(old, self.dest)
                    raise
                shutil.rmtree(old, ignore_errors=True)
            else:
                os.rename(self.tmp, self.dest)
        except BaseException:
            _remove_quietly(self.tmp)
            raise
        return False


# ---------------------------------------------------------------------------------------
# .pdparams
# ---------------------------------------------------------------------------------------

_PADDLE_META_KEYS = ("StructuredToParameterName@@",)


def _is_pickle_file(path):
    try:
        with open(path, "rb") as f:
            head = f.read(2)
    except OSError:
        return False
    return len(head) == 2 and head[0] == 0x80 and 2 <= head[1] <= 5


def read_pdparams(path):
    """Read a `paddle.save` file of {2019 name: array or Tensor} into {name: ndarray}."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise DataError("%s: no such file" % where(path))
    if not os.path.isfile(path):
        raise DataError("%s: not a file" % where(path))
    if not _is_pickle_file(path):
        raise DataError("%s: not a .pdparams file (not a paddle.save pickle)" % where(path))
    import paddle
    try:
        obj = paddle.load(path, return_numpy=True)
    except Exception as e:  # pickle/paddle errors of every kind
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise DataError("%s: cannot read .pdparams file (%s)" % (where(path), msg)) from None
    if not isinstance(obj, dict):
        raise DataError("%s: .pdparams holds a %s, not a dict of parameters"
                        % (where(path), type(obj).__name__))
    params = {}
    for k, v in obj.items():
        if k in _PADDLE_META_KEYS:
            continue
        if not isinstance(k, str):
            raise DataError("%s: parameter key %r is not a string" % (where(path), k))
        if hasattr(v, "numpy") and not isinstance(v, np.ndarray):
            v = v.numpy()
        if not isinstance(v, np.ndarray):
            raise DataError("%s: value of %r is a %s, not an array"
                            % (where(path), k, type(v).__name__))
        params[k] = v
    if not params:
        raise DataError("%s: .pdparams holds no parameters" % where(path))
    return params


def write_pdparams(params, path):
    """`paddle.save` {2019 name: ndarray} to `path` (atomic)."""
    import paddle
    path = os.fspath(path)
    if os.path.lexists(path) and (not os.path.isfile(path) or not _is_pickle_file(path)):
        raise UsageError("refusing to replace %s: it is not a .pdparams file" % path)
    obj = {}
    for k, v in params.items():
        if not isinstance(k, str):
            raise DataError("parameter key %r is not a string" % (k,))
        obj[k] = np.ascontiguousarray(v.numpy() if hasattr(v, "numpy") and
                                      not isinstance(v, np.ndarray) else v)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with atomic_path(path) as tmp:
        paddle.save(obj, tmp, protocol=4)


# ---------------------------------------------------------------------------------------
# HuggingFace names
# ---------------------------------------------------------------------------------------

# (2019 name, HF name relative to ErnieModel, transpose)
_EMB_MAP = [
    ("word_embedding", "embeddings.word_embeddings.weight", False),
    ("pos_embedding", "embeddings.position_embeddings.weight", False),
    ("sent_embedding", "embeddings.token_type_embeddings.weight", False),
    ("task_embedding", "embeddings.task_type_embeddings.weight", False),
    ("pre_encoder_layer_norm_scale", "embeddings.LayerNorm.weight", False),
    ("pre_encoder_layer_norm_bias", "embeddings.LayerNorm.bias", False),
]
_POOLER_MAP = [
    ("pooled_fc.w_0", "pooler.dense.weight", True),
    ("pooled_fc.b_0", "pooler.dense.bias", False),
]
# (2019 suffix after `encoder_layer_{i}_`, HF suffix after `encoder.layer.{i}.`, transpose)
_LAYER_MAP = [
    ("multi_head_att_query_fc.w_0", "attention.self.query.weight", True),
    ("multi_head_att_query_fc.b_0", "attention.self.query.bias", False),
    ("multi_head_att_key_fc.w_0", "attention.self.key.weight", True),
    ("multi_head_att_key_fc.b_0", "attention.self.key.bias", False),
    ("multi_head_att_value_fc.w_0", "attention.self.value.weight", True),
    ("multi_head_att_value_fc.b_0", "attention.self.value.bias", False),
    ("multi_head_att_output_fc.w_0", "attention.output.dense.weight", True),
    ("multi_head_att_output_fc.b_0", "attention.output.dense.bias", False),
    ("post_att_layer_norm_scale", "attention.output.LayerNorm.weight", False),
    ("post_att_layer_norm_bias", "attention.output.LayerNorm.bias", False),
    ("ffn_fc_0.w_0", "intermediate.dense.weight", True),
    ("ffn_fc_0.b_0", "intermediate.dense.bias", False),
    ("ffn_fc_1.w_0", "output.dense.weight", True),
    ("ffn_fc_1.b_0", "output.dense.bias", False),
    ("post_ffn_layer_norm_scale", "output.LayerNorm.weight", False),
    ("post_ffn_layer_norm_bias", "output.LayerNorm.bias", False),
]
# Head parameters: HF names are top level (no `ernie.` prefix).
_HEAD_MAP = {
    "pretraining": [
        ("mask_lm_trans_fc.w_0", "cls.predictions.transform.dense.weight", True),
        ("mask_lm_trans_fc.b_0", "cls.predictions.transform.dense.bias", False),
        ("mask_lm_trans_layer_norm_scale", "cls.predictions.transform.LayerNorm.weight", False),
        ("mask_lm_trans_layer_norm_bias", "cls.predictions.transform.LayerNorm.bias", False),
        ("mask_lm_out_fc.b_0", "cls.predictions.bias", False),
        ("next_sent_fc.w_0", "cls.seq_relationship.weight", True),
        ("next_sent_fc.b_0", "cls.seq_relationship.bias", False),
    ],
    "cls": [("_cls_out_w", "classifier.weight", True), ("_cls_out_b", "classifier.bias", False)],
    "ner": [("cls_seq_label_out_w", "classifier.weight", True),
            ("cls_seq_label_out_b", "classifier.bias", False)],
    "mrc": [("cls_mrc_out_w", "qa_outputs.weight", True),
            ("cls_mrc_out_b", "qa_outputs.bias", False)],
}
# Untied MLM output weight (2019 `weight_sharing=False`): [H, V] -> decoder [V, H].
_MLM_OUT_W = ("mask_lm_out_fc.w_0", "cls.predictions.decoder.weight", True)

HEADS = ("base", "pretraining", "cls", "ner", "mrc")
HF_ARCH = {"base": "ErnieModel", "pretraining": "ErnieForPreTraining",
           "cls": "ErnieForSequenceClassification", "ner": "ErnieForTokenClassification",
           "mrc": "ErnieForQuestionAnswering"}
_HAS_POOLER = {"base": True, "pretraining": True, "cls": True, "ner": False, "mrc": False}

_LAYER_RE = re.compile(r"^encoder_layer_(\d+)_(.+)$")
_HF_LAYER_RE = re.compile(r"^encoder\.layer\.(\d+)\.(.+)$")

_PRETRAIN_RE = re.compile(
    r"^(word_embedding|pos_embedding|sent_embedding|task_embedding"
    r"|pre_encoder_layer_norm_(scale|bias)"
    r"|encoder_layer_\d+_(multi_head_att_(query|key|value|output)_fc\.(w_0|b_0)"
    r"|post_(att|ffn)_layer_norm_(scale|bias)|ffn_fc_[01]\.(w_0|b_0))"
    r"|pooled_fc\.(w_0|b_0))$")

_OPTIMIZER_RE = re.compile(
    r"(_moment\d*_\d+|_beta\d_pow_acc_\d+|_velocity_\d+|_mean_square_\d+|_mean_grad_\d+"
    r"|@GRAD|\.master)$|^(@LR_DECAY_COUNTER@|scheduled_learning_rate|learning_rate_\d+"
    r"|loss_scaling_\d+|num_good_steps_\d+|num_bad_steps_\d+)$")


def is_pretraining_param(name):
    """True for the encoder (embeddings, encoder layers, pooler); not heads or optimizer state."""
    return bool(_PRETRAIN_RE.match(name))


def is_optimizer_state(name):
    """True for Adam moments, beta-power accumulators, LR counters, loss-scaling variables."""
    return bool(_OPTIMIZER_RE.search(name))


def _to_hf_table(num_layers, head, with_pooler):
    """[(2019 name, HF name as stored in the file, transpose)] for one HF class."""
    prefix = "" if head == "base" else "ernie."
    table = [(p, prefix + h, t) for p, h, t in _EMB_MAP]
    for i in range(num_layers):
        table += [("encoder_layer_%d_%s" % (i, p), "%sencoder.layer.%d.%s" % (prefix, i, h), t)
                  for p, h, t in _LAYER_MAP]
    if with_pooler:
        table += [(p, prefix + h, t) for p, h, t in _POOLER_MAP]
    if head != "base":
        table += list(_HEAD_MAP[head])
    return table


def _heads_present(params):
    return [h for h in ("pretraining", "cls", "ner", "mrc")
            if any(p in params for p, _, _ in _HEAD_MAP[h])]


def _choose_head(params):
    heads = _heads_present(params)
    finetune = [h for h in heads if h != "pretraining"]
    if len(finetune) > 1:
        raise DataError("parameters hold several fine-tune heads (%s); choose one with head="
                        % ", ".join(finetune))
    if finetune:
        return finetune[0]
    return "pretraining" if heads else "base"


def _num_layers(params):
    idx = {int(m.group(1)) for m in map(_LAYER_RE.match, params) if m}
    return max(idx) + 1 if idx else 0


def _cfg_get(cfg, key, required=True):
    v = cfg.get(key)
    if v is None and required:
        raise DataError("ernie config lacks %r" % key)
    return v


def ernie_to_hf_config(ernie_config, head="base", num_labels=None, dtype=None,
                       tie_word_embeddings=True):
    """transformers `ErnieConfig` dict for a 2019 ernie_config.json (see the module doc)."""
    c = ernie_config
    hidden = int(_cfg_get(c, "hidden_size"))
    type_vocab = c.get("sent_type_vocab_size") or c.get("type_vocab_size")
    if not type_vocab:
        raise DataError("ernie config lacks 'type_vocab_size' (or 'sent_type_vocab_size')")
    use_task_id = bool(c.get("use_task_id"))
    hf = {
        "architectures": [HF_ARCH[head]],
        "model_type": "ernie",
        "vocab_size": int(_cfg_get(c, "vocab_size")),
        "hidden_size": hidden,
        "num_hidden_layers": int(_cfg_get(c, "num_hidden_layers")),
        "num_attention_heads": int(_cfg_get(c, "num_attention_heads")),
        "intermediate_size": int(c.get("intermediate_size") or 4 * hidden),
        "hidden_act": _cfg_get(c, "hidden_act"),
        "hidden_dropout_prob": float(c.get("hidden_dropout_prob", 0.1) or 0.0),
        "attention_probs_dropout_prob": float(c.get("attention_probs_dropout_prob", 0.1) or 0.0),
        "max_position_embeddings": int(_cfg_get(c, "max_position_embeddings")),
        "type_vocab_size": int(type_vocab),
        "use_task_id": use_task_id,
        "task_type_vocab_size": int(c.get("task_type_vocab_size") or 3),
        "initializer_range": float(c.get("initializer_range", 0.02) or 0.02),
        "layer_norm_eps": 1e-5,
        "pad_token_id": 0,
        "tie_word_embeddings": bool(tie_word_embeddings),
    }
    if dtype:
        hf["dtype"] = dtype
    if num_labels is not None and head in ("cls", "ner"):
        hf["id2label"] = {str(i): "LABEL_%d" % i for i in range(num_labels)}
        hf["label2id"] = {"LABEL_%d" % i: i for i in range(num_labels)}
    return hf


def hf_to_ernie_config(hf_config):
    """A 2019-style ernie_config.json dict from a transformers config.json dict."""
    c = hf_config
    hidden = int(_cfg_get(c, "hidden_size"))
    inter = c.get("intermediate_size")
    eps = c.get("layer_norm_eps")
    if eps is not None and abs(float(eps) - 1e-5) > 1e-9:
        print("note: config.json has layer_norm_eps=%g; the 2019 ERNIE model uses 1e-5"
              % float(eps), file=sys.stderr)
    out = {
        "attention_probs_dropout_prob": c.get("attention_probs_dropout_prob", 0.1),
        "hidden_act": c.get("hidden_act", "gelu"),
        "hidden_dropout_prob": c.get("hidden_dropout_prob", 0.1),
        "hidden_size": hidden,
        "initializer_range": c.get("initializer_range", 0.02),
        "max_position_embeddings": int(_cfg_get(c, "max_position_embeddings")),
        "num_attention_heads": int(_cfg_get(c, "num_attention_heads")),
        "num_hidden_layers": int(_cfg_get(c, "num_hidden_layers")),
        "type_vocab_size": int(c.get("type_vocab_size", 2)),
        "vocab_size": int(_cfg_get(c, "vocab_size")),
    }
    if inter is not None and int(inter) != 4 * hidden:
        # the 2019 configs have no such key (FFN 4*hidden); written only when it differs
        out["intermediate_size"] = int(inter)
    if c.get("use_task_id"):
        out["sent_type_vocab_size"] = out["type_vocab_size"]
        out["use_task_id"] = True
        out["task_type_vocab_size"] = int(c.get("task_type_vocab_size", 3))
    return out


def _check_against_config(params, c):
    hidden = int(_cfg_get(c, "hidden_size"))
    type_vocab = c.get("sent_type_vocab_size") or c.get("type_vocab_size")
    expect = {
        "word_embedding": (int(_cfg_get(c, "vocab_size")), hidden),
        "pos_embedding": (int(_cfg_get(c, "max_position_embeddings")), hidden),
        "sent_embedding": (int(type_vocab or 0), hidden),
        "pre_encoder_layer_norm_scale": (hidden,),
    }
    if c.get("use_task_id"):
        expect["task_embedding"] = (int(c.get("task_type_vocab_size") or 3), hidden)
    for name, shape in expect.items():
        if name in params and tuple(params[name].shape) != shape:
            raise DataError("parameter %s has shape %s but the ernie config implies %s"
                            % (name, list(params[name].shape), list(shape)))
    if not c.get("use_task_id") and "task_embedding" in params:
        raise DataError("parameters hold task_embedding but the ernie config has no "
                        "use_task_id")
    n = int(_cfg_get(c, "num_hidden_layers"))
    if _num_layers(params) > n:
        raise DataError("parameters hold %d encoder layers but the ernie config says "
                        "num_hidden_layers=%d" % (_num_layers(params), n))


def params_to_hf(params, ernie_config, head=None):
    """(HF state dict, HF config dict, extra {2019 name: array}, dropped optimizer names)."""
    if head is None or head == "auto":
        head = _choose_head(params)
    if head not in HEADS:
        raise UsageError("unknown head %r (choose from %s)" % (head, ", ".join(HEADS)))
    _check_against_config(params, ernie_config)
    n = int(ernie_config["num_hidden_layers"])
    table = _to_hf_table(n, head, _HAS_POOLER[head])
    if ernie_config.get("use_task_id"):
        required = [p for p, _, _ in table]
    else:
        table = [row for row in table if row[0] != "task_embedding"]
        required = [p for p, _, _ in table]
    tie = True
    if head == "pretraining" and _MLM_OUT_W[0] in params:
        # untied output layer: HF then ties neither the decoder weight nor its bias
        table += [_MLM_OUT_W, ("mask_lm_out_fc.b_0", "cls.predictions.decoder.bias", False)]
        tie = False
    missing = [p for p in required if p not in params]
    if missing:
        raise DataError("cannot write %s: missing parameters %s"
                        % (HF_ARCH[head], _name_list(missing)))
    state = {}
    for p, h, t in table:
        arr = np.asarray(params[p])
        state[h] = np.ascontiguousarray(arr.T if t else arr)
    used = {p for p, _, _ in table}
    dropped = sorted(k for k in params if k not in used and is_optimizer_state(k))
    extra = {k: np.ascontiguousarray(params[k]) for k in sorted(params)
             if k not in used and k not in dropped}
    num_labels = None
    if head in ("cls", "ner"):
        num_labels = int(params[_HEAD_MAP[head][0][0]].shape[1])
    dtype = params["word_embedding"].dtype.name
    hf_cfg = ernie_to_hf_config(ernie_config, head, num_labels,
                                dtype=dtype if dtype in ("float32", "float16", "float64",
                                                         "bfloat16") else None,
                                tie_word_embeddings=tie)
    return state, hf_cfg, extra, dropped


def hf_to_params(state, hf_config=None, source="HF state dict"):
    """{2019 name: array} from a HF ErnieModel/BertModel/ErnieFor* state dict."""
    hf_config = hf_config or {}
    archs = hf_config.get("architectures") or []
    token_cls = any("TokenClassification" in a for a in archs)
    tied = hf_config.get("tie_word_embeddings", True)
    emb = {h: (p, t) for p, h, t in _EMB_MAP + _POOLER_MAP}
    layer = {h: (p, t) for p, h, t in _LAYER_MAP}
    heads = {}
    for head in ("pretraining", "mrc"):
        heads.update({h: (p, t) for p, h, t in _HEAD_MAP[head]})
    cls_head = "ner" if token_cls else "cls"
    heads.update({h: (p, t) for p, h, t in _HEAD_MAP[cls_head]})
    out = {}
    unknown = []
    deferred = {}
    for key, arr in state.items():
        k = key
        for pre in ("ernie.", "bert."):
            if k.startswith(pre):
                k = k[len(pre):]
                break
        k = k.replace("LayerNorm.gamma", "LayerNorm.weight").replace("LayerNorm.beta",
                                                                    "LayerNorm.bias")
        if k in ("embeddings.position_ids", "embeddings.token_type_ids"):
            continue
        if k in ("cls.predictions.decoder.weight", "cls.predictions.decoder.bias"):
            deferred[k] = arr
            continue
        target = None
        m = _HF_LAYER_RE.match(k)
        if m and m.group(2) in layer:
            p, t = layer[m.group(2)]
            target = ("encoder_layer_%s_%s" % (m.group(1), p), t)
        elif k in emb:
            target = emb[k]
        elif k in heads:
            target = heads[k]
        if target is None:
            unknown.append(key)
            continue
        name, t = target
        if name in out:
            raise DataError("%s: two tensors map to parameter %s" % (source, name))
        arr = np.asarray(arr)
        out[name] = np.ascontiguousarray(arr.T) if t else arr
    if unknown:
        raise DataError("%s: unknown parameter names %s" % (source, _name_list(unknown)))
    if "cls.predictions.decoder.bias" in deferred and "mask_lm_out_fc.b_0" not in out:
        out["mask_lm_out_fc.b_0"] = np.asarray(deferred["cls.predictions.decoder.bias"])
    dec = deferred.get("cls.predictions.decoder.weight")
    if dec is not None:
        dec = np.asarray(dec)
        we = out.get("word_embedding")
        if not tied or we is None or not np.array_equal(dec, we):
            out[_MLM_OUT_W[0]] = np.ascontiguousarray(dec.T)
    return out


# ---------------------------------------------------------------------------------------
# HF directories
# ---------------------------------------------------------------------------------------

def _hf_weight_files(d):
    """[(kind, path)] of the weights of HF directory `d`, or [] if there are none."""
    def index_files(index_name):
        ip = os.path.join(d, index_name)
        try:
            with open(ip, encoding="utf-8") as f:
                wm = json.load(f)["weight_map"]
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise DataError("%s: unreadable weight index (%s)" % (where(ip), e)) from None
        return [os.path.join(d, fn) for fn in sorted(set(wm.values()))]

    if os.path.isfile(os.path.join(d, "model.safetensors")):
        return [("safetensors", os.path.join(d, "model.safetensors"))]
    if os.path.isfile(os.path.join(d, "model.safetensors.index.json")):
        return [("safetensors", p) for p in index_files("model.safetensors.index.json")]
    if os.path.isfile(os.path.join(d, "pytorch_model.bin")):
        return [("bin", os.path.join(d, "pytorch_model.bin"))]
    if os.path.isfile(os.path.join(d, "pytorch_model.bin.index.json")):
        return [("bin", p) for p in index_files("pytorch_model.bin.index.json")]
    return []


def _read_safetensors(path):
    from safetensors.numpy import load_file
    if not os.path.isfile(path):
        raise DataError("%s: no such file" % where(path))
    try:
        return load_file(path)
    except TypeError as e:
        if "bfloat16" in str(e):
            raise DataError("%s: holds bfloat16 tensors, which numpy cannot read; re-save it "
                            "as float32" % where(path)) from None
        raise DataError("%s: cannot read safetensors file (%s)" % (where(path), e)) from None
    except Exception as e:
        raise DataError("%s: cannot read safetensors file (%s)" % (where(path), e)) from None


def _read_torch_bin(path):
    try:
        import torch
    except ImportError:
        raise DataError("%s: reading pytorch_model.bin needs torch, which is not installed; "
                        "convert the model to model.safetensors instead" % where(path)) from None
    if not os.path.isfile(path):
        raise DataError("%s: no such file" % where(path))
    try:
        sd = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise DataError("%s: cannot read torch file (%s)" % (where(path), e)) from None
    if not isinstance(sd, dict):
        raise DataError("%s: holds a %s, not a state dict" % (where(path), type(sd).__name__))
    out = {}
    for k, v in sd.items():
        if not hasattr(v, "detach"):
            raise DataError("%s: entry %r is not a tensor" % (where(path), k))
        v = v.detach().cpu()
        if v.dtype == torch.bfloat16:
            v = v.float()
        out[k] = v.numpy().copy()
    return out


def _read_hf_config(d):
    cp = os.path.join(d, "config.json")
    try:
        with open(cp, encoding="utf-8") as f:
            cfg = json.load(f)
    except FileNotFoundError:
        raise DataError("%s: no such file" % where(cp)) from None
    except ValueError as e:
        raise DataError("%s: not valid JSON (%s)" % (where(cp), e)) from None
    if not isinstance(cfg, dict):
        raise DataError("%s: not a JSON object" % where(cp))
    return cfg


def read_hf_dir(d):
    """Read a transformers directory; return ({2019 name: array}, config.json dict)."""
    d = os.fspath(d)
    if not os.path.isdir(d):
        raise DataError("%s: no such directory" % where(d))
    cfg = _read_hf_config(d)
    files = _hf_weight_files(d)
    if not files:
        raise DataError("%s: HF directory has neither model.safetensors nor pytorch_model.bin"
                        % where(d))
    state = {}
    for kind, path in files:
        part = _read_safetensors(path) if kind == "safetensors" else _read_torch_bin(path)
        state.update(part)
    params = hf_to_params(state, cfg, source=where(files[0][1]))
    extra_path = os.path.join(d, EXTRA_FILE)
    if os.path.isfile(extra_path):
        for k, v in _read_safetensors(extra_path).items():
            if k in params:
                raise DataError("%s: %s is also in the HF weights" % (where(extra_path), k))
            params[k] = v
    return params, cfg


def write_hf_dir(params, ernie_config, d, head=None):
    """Write `config.json` + `model.safetensors` (+ extras) loadable by transformers.

    `head`: None/'auto' (from the parameters), 'base' (ErnieModel), 'pretraining',
    'cls', 'ner' or 'mrc'.  Returns the HF class name written.
    """
    from safetensors.numpy import save_file
    if isinstance(ernie_config, (str, os.PathLike)):
        ernie_config = load_ernie_config(ernie_config)
    state, hf_cfg, extra, dropped = params_to_hf(params, ernie_config, head)
    arch = hf_cfg["architectures"][0]
    with _atomic_dir(d, "hf") as tmp:
        with open(os.path.join(tmp, "config.json"), "w", encoding="utf-8") as f:
            json.dump(hf_cfg, f, indent=2, sort_keys=True)
            f.write("\n")
        save_file(state, os.path.join(tmp, "model.safetensors"), metadata={"format": "pt"})
        if extra:
            save_file(extra, os.path.join(tmp, EXTRA_FILE), metadata={"format": "np"})
    if dropped:
        print("%s: dropped %d optimizer-state variables" % (d, len(dropped)))
    if extra:
        print("%s: %s has no slot for %s; kept in %s"
              % (d, arch, _name_list(sorted(extra)), EXTRA_FILE))
    return arch


def load_ernie_config(path):
    """Read a 2019 ernie_config.json into a dict."""
    path = os.fspath(path)
    try:
        with open(path, encoding="utf-8") as f:
            cfg = json.load(f)
    except FileNotFoundError:
        raise DataError("%s: no such file" % where(path)) from None
    except (OSError, ValueError) as e:
        raise DataError("%s: error in parsing ernie model config file (%s)"
                        % (where(path), e)) from None
    if not isinstance(cfg, dict):
        raise DataError("%s: ernie config is not a JSON object" % where(path))
    return cfg


# ---------------------------------------------------------------------------------------
# Format detection, load/save
# ---------------------------------------------------------------------------------------

FORMATS = ("legacy_dir", "pdparams", "hf")


def detect_format(path):
    """'legacy_dir', 'pdparams' or 'hf', decided by content; DataError if none fits."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise DataError("%s: no such file or directory" % where(path))
    if os.path.isfile(path):
        if _is_pickle_file(path):
            return "pdparams"
        if _looks_like_tensor_file(path):
            raise DataError("%s: a single tensor file; give the directory that holds it"
                            % where(path))
        raise DataError("%s: not a parameter file (neither a .pdparams pickle nor a "
                        "directory)" % where(path))
    if not os.path.isdir(path):
        raise DataError("%s: not a file or directory" % where(path))
    has_cfg = os.path.isfile(os.path.join(path, "config.json"))
    if has_cfg and _hf_weight_files(path):
        return "hf"
    if os.path.isdir(os.path.join(path, "params")):
        return "legacy_dir"
    names = [n for n in os.listdir(path)
             if os.path.isfile(os.path.join(path, n)) and not _is_ours_to_skip(n)]
    if has_cfg and not any(_looks_like_tensor_file(os.path.join(path, n)) for n in names):
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

def _name_list(names, limit=10):
    names = list(names)
    if len(names) <= limit:
        return ", ".join(names)
    return "%s, ... (+%d more)" % (", ".join(names[:limit]), len(names) - limit)


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
    for name, p, arr in todo:
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
          % (len(loaded), len(missing), (": " + _name_list(missing)) if missing else "",
             len(unexpected), (": " + _name_list(unexpected)) if unexpected else ""))
    if fresh_head:
        print("task head initialised afresh (not in %s): %s" % (path, _name_list(fresh_head)))


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
                % (where(path), _name_list(needed),
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
    import hashlib
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
    import pickle
    params = model_params(model)
    for name in params:
        _check_var_name(name)
    with _atomic_dir(path, "legacy_dir") as tmp:
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
        raise DataError("%s: unreadable checkpoint manifest" % manifest_path)
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
    import pickle
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
    d = _resolve_legacy_dir(path)
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
    """Clear what runs that died while saving left in `directory`. _atomic_dir replaces an
    existing `step_N` in two renames: `step_N` -> `step_N.old-<pid>`, then `step_N.tmp-<pid>`
    (complete) -> `step_N`; a run killed between them leaves no `step_N` and both copies
    whole. Then the complete one comes back as `step_N`: the new one if it matches its
    manifest, else the old one; the only complete copy is never removed. Every other
    leftover of a dead process (a save cut short, an old copy whose replacement is in place)
    is removed. Runs sharing the folder do this one at a time (a lock on the folder)."""
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
                    _remove_quietly(path)
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
    folders and checkpoints of the same run identity are written over, as in 2019."""
    directory = args.checkpoints
    if not directory or not os.path.isdir(directory):
        return
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
        if isinstance(lr, paddle.optimizer.lr.LRScheduler) and "LR_Scheduler" not in optimizer_state:
            # written with a constant rate (no warmup): this run's schedule starts at the step
            lr.step(state["step"])
            optimizer_state = dict(optimizer_state, LR_Scheduler=lr.state_dict())
        optimizer.set_state_dict(optimizer_state)
    if rng_state is not None:
        paddle.set_rng_state(rng_state)
    position = state["data_position"]
    if "stage" in position:     # a multi-task run (model/multitask.py)
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
                                                                      _name_list(missing))
    if counter is None:
        line += "; no %s: the learning rate and step count start from 0" % LR_COUNTER
    unused = [k for k in saved if k not in used and k != LR_COUNTER]
    if unused:
        line += "; not used: %s" % _name_list(unused)
    print(line + "; continuing after step %d with the data from its beginning (2019 saved no "
          "data position)" % steps)
    return {"step": steps, "data_position": None}

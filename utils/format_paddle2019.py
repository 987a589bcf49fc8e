"""The 2019 parameter directory: `params/`, one Paddle LoDTensor file per variable, named
after it, as `fluid.io.save_persistables` / `save_params` wrote it. Read and written here by
hand, without Paddle.

A LoDTensor file is: uint32 version (0), uint64 LoD level count and each level (uint64 byte
size + offsets), uint32 tensor version (0), int32 size of a `TensorDesc` protobuf (data type,
dims), the protobuf, then the raw little-endian data. Parameters travel as a dict
{2019 variable name: numpy array}.

Also the 2019 variable names: which are encoder parameters, which are optimizer state.
"""
import contextlib
import os
import re
import struct

import numpy as np

from utils.errors import DataError, UsageError, where
from utils.fileio import atomic_dir, atomic_path

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


def write_legacy_tensor(path, array):
    """Write one array as a Paddle LoDTensor file (atomic: temporary sibling + rename)."""
    path = os.fspath(path)
    header, arr = _tensor_bytes(array, name=where(path))
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(header)
            if arr.size:
                f.write(memoryview(arr.reshape(-1)).cast("B"))


def looks_like_tensor_file(path):
    """True if `path` starts with a valid LoDTensor header (the data may be damaged)."""
    try:
        with open(path, "rb") as f:
            _read_header(f, path, os.path.getsize(path))
        return True
    except (DataError, OSError):
        return False


# ---------------------------------------------------------------------------------------
# 2019 variable names
# ---------------------------------------------------------------------------------------

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


def name_list(names, limit=10):
    """'a, b, c' of parameter names for a message, the first `limit` and a count of the rest."""
    names = list(names)
    if len(names) <= limit:
        return ", ".join(names)
    return "%s, ... (+%d more)" % (", ".join(names[:limit]), len(names) - limit)


# ---------------------------------------------------------------------------------------
# Parameter directories
# ---------------------------------------------------------------------------------------

def is_side_file(fname):
    """Non-tensor files a parameter directory may hold: hidden files, our manifests."""
    return fname.startswith(".") or fname.endswith((".json", ".pdopt", ".pdrng", ".txt"))


def resolve_legacy_dir(d):
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
    d = resolve_legacy_dir(d)
    params = {}
    for fname in sorted(os.listdir(d)):
        full = os.path.join(d, fname)
        if os.path.isdir(full) or is_side_file(fname):
            continue
        params[fname] = read_legacy_tensor(full)
    if not params:
        raise DataError("%s: empty directory (no parameter files)" % where(d))
    return params


def check_var_name(name):
    """A variable name is its file's name: no path separators, nothing taken for a side file."""
    if (not isinstance(name, str) or not name or name in (".", "..") or "/" in name
            or "\\" in name or "\0" in name or is_side_file(name)):
        raise DataError("parameter name %r cannot be a file name in a parameter directory"
                        % (name,))


def check_replaceable(dest, replaceable):
    """Writing a parameter directory over an existing `dest` is refused (UsageError) unless
    every entry of it is a file `replaceable(name, path)` accepts: a mistyped destination
    never swaps out a folder of other things."""
    if not os.path.isdir(dest):
        raise UsageError("%s exists and is not a directory; refusing to replace it" % dest)
    for fname in os.listdir(dest):
        full = os.path.join(dest, fname)
        if not (os.path.isfile(full) and replaceable(fname, full)):
            raise UsageError("refusing to replace %s: it holds %r, which is not a parameter "
                             "file; choose a new or empty directory" % (dest, fname))


# What a 2019 MODEL_PATH folder holds (a release tarball, --export_model_dir, convert_params
# --to paddle2019): a folder holding anything else is not replaced by one.
MODEL_DIR_FILES = ("params", "ernie_config.json", "vocab.txt", "label_map.json")


def check_model_dir_replaceable(flag, dest):
    """Before writing a MODEL_PATH folder to `dest` (given by `flag`): refuse (UsageError, one
    line) a `dest` that is a file or holds anything but MODEL_DIR_FILES, so a mistyped
    destination never loses what is in it."""
    dest = os.path.normpath(dest)
    if os.path.lexists(dest) and not os.path.isdir(dest):
        raise UsageError("%s: %s exists and is not a directory; refusing to replace it"
                         % (flag, dest))
    other = sorted(set(os.listdir(dest)) - set(MODEL_DIR_FILES)) if os.path.isdir(dest) else []
    if other:
        raise UsageError("%s: refusing to replace %s: it holds %r, which is not part of a model "
                         "folder; choose a new or empty directory" % (flag, dest, other[0]))


@contextlib.contextmanager
def new_legacy_dir(d):
    """Yield a temporary directory to fill (write_legacy_tensor per variable, side files);
    it replaces the directory `d` when the block succeeds (utils.fileio.atomic_dir), keeping
    the side files of the old one. An existing `d` must hold nothing but tensor files and
    side files."""
    d = os.path.normpath(os.fspath(d))
    if os.path.lexists(d):
        check_replaceable(d, lambda fname, full: (is_side_file(fname)
                                                  or looks_like_tensor_file(full)))
    with atomic_dir(d, keep=is_side_file) as tmp:
        yield tmp


def write_legacy_dir(params, d):
    """Write {name: array} as a 2019 `params/` directory (atomic; replaces `d` safely)."""
    for name in params:
        check_var_name(name)
    with new_legacy_dir(d) as tmp:
        for name in sorted(params):
            write_legacy_tensor(os.path.join(tmp, name), params[name])

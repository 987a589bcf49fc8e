"""`.pdparams`: one `paddle.save` pickle of {2019 variable name: array}, the file Paddle 2+
saves a model's state dict to. Paddle's bookkeeping keys (StructuredToParameterName@@) are
dropped on reading; arrays are read as numpy. Paddle is imported only to read or write one.
"""
import os

import numpy as np

from utils.errors import DataError, UsageError, where
from utils.fileio import atomic_path

_PADDLE_META_KEYS = ("StructuredToParameterName@@",)


def is_pickle_file(path):
    """True if `path` starts as a pickle (protocol 2 to 5) does."""
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
    if not is_pickle_file(path):
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
    if os.path.lexists(path) and (not os.path.isfile(path) or not is_pickle_file(path)):
        raise UsageError("refusing to replace %s: it is not a .pdparams file" % path)
    obj = {}
    for k, v in params.items():
        if not isinstance(k, str):
            raise DataError("parameter key %r is not a string" % (k,))
        obj[k] = np.ascontiguousarray(v.numpy() if hasattr(v, "numpy") and
                                      not isinstance(v, np.ndarray) else v)
    with atomic_path(path) as tmp:
        paddle.save(obj, tmp, protocol=4)


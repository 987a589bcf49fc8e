"""Export a model as a static inference program and run it under Paddle Inference.

`export(layer, prefix, input_spec)` writes `<prefix>.json` + `<prefix>.pdiparams`
(paddle.jit.save); `Predictor(prefix)` loads them with paddle.inference and maps named numpy
inputs to the list of outputs.

Precision on CPU (`--precision` of the prediction scripts, the API and the server): "fp32";
"bf16", oneDNN's bfloat16 kernels for the matmuls and most other ops (inputs and outputs stay
float32); "int8", a program quantized after training by serving/int8.py (its files are
int8_model_files(prefix): Paddle's older program format, which the old executor runs with
oneDNN's int8 kernels; Paddle 3's own inference passes have no int8 step on CPU). A CPU
without the instructions a precision needs runs fp32 and says so in one line.
"""
import os
import sys

import numpy as np
import paddle
from paddle import inference

from utils.args import PRECISIONS
from utils.errors import DataError
from utils.loop import eval_mode


def export(layer, prefix, input_spec):
    """Save `layer`, as it runs in eval mode (no dropout), as an inference program; returns
    the prefix."""
    parent = os.path.dirname(prefix)
    if parent:
        os.makedirs(parent, exist_ok=True)
    with eval_mode(layer):
        paddle.jit.save(layer, prefix, input_spec=input_spec)
    return prefix


# oneDNN's int8 fc keeps a converted copy of its weights for every input shape it meets, for
# the life of the process (a predictor made anew does not free them): int8 inputs are padded
# to a few shapes, lengths to a multiple of INT8_LENGTH_STEP and batches to one of
# INT8_BATCH_SIZES (or a multiple of the last), so that a run meets max_seq_len / 32 lengths.
INT8_LENGTH_STEP = 32
INT8_BATCH_SIZES = (1, 8, 32)


def _int8_padded(feed):
    """`feed` padded to the int8 shapes (padding: id 0, input_mask 0, which the model
    ignores), and its batch size before padding."""
    batch, length = next(iter(feed.values())).shape[:2]
    step = INT8_BATCH_SIZES[-1]
    rows = next((b for b in INT8_BATCH_SIZES if b >= batch), -(-batch // step) * step)
    cols = -(-length // INT8_LENGTH_STEP) * INT8_LENGTH_STEP
    return {name: np.pad(array, [(0, rows - batch), (0, cols - length)])
            for name, array in feed.items()}, batch


def int8_model_files(prefix):
    """The program and parameter files of the int8 program at `prefix`."""
    return prefix + ".pdmodel", prefix + ".pdiparams"


def _cpu_has(precision):
    """Does this CPU have the instructions that make `precision` pay: avx512_bf16 (or AMX) for
    bf16, VNNI for int8? Without them oneDNN emulates the narrow types, slower than fp32."""
    from paddle.base import core
    if precision == "bf16":
        return core.supports_bfloat16_fast_performance()
    if precision == "int8":
        return core.supports_vnni()
    return True


def cpu_precision(precision, use_cuda=False, what="--precision"):
    """The precision a Predictor should run: `precision` on a CPU that has its instructions;
    "fp32" after a one-line notice on stderr on one that lacks them; "fp32" on a GPU (its
    half precision is --use_fp16's)."""
    if precision not in PRECISIONS:
        raise ValueError("%s must be one of %s, got %r" % (what, ", ".join(PRECISIONS),
                                                          precision))
    if precision == "fp32" or (use_cuda and paddle.device.is_compiled_with_cuda()):
        return "fp32"
    if not _cpu_has(precision):
        print("notice: this CPU has no %s instructions; %s %s runs in fp32"
              % ("avx512_bf16" if precision == "bf16" else "VNNI", what, precision),
              file=sys.stderr)
        return "fp32"
    return precision


# In fp32 on CPU, a batch of fewer rows than this, divided by the threads (2 at least), runs
# on Paddle's own CPU kernels (MKL's sgemm) and a larger one on oneDNN's. oneDNN's kernels are
# set up again whenever the input shape changes (every call, when lengths vary), which costs
# more than their speed saves until a call holds about 16 rows on one thread, 4 to 8 on two
# (ERNIE's small and base shapes; benchmarks/kernel_rows.py): oneDNN runs every op on all the
# threads, Paddle's own kernels only the matrix products.
ONEDNN_MIN_ROWS = 16


def rows_for_onednn(num_threads):
    """The fewest rows a batch runs on oneDNN's kernels with, on `num_threads` threads."""
    return max(2, ONEDNN_MIN_ROWS // max(num_threads, 1))


# Paddle's executor hands each tensor it frees to a garbage-collector thread, which then spins
# waiting for more: at small batches that thread took about a fifth as much CPU as the model,
# on cores the model needs. Collecting once this many GB of garbage has piled up wakes it
# rarely, for that much memory more. The executor reads the setting when it first runs.
GARBAGE_BATCH_GB = 0.05


def _first_run(predictor):
    """predictor.run() with the garbage batched as GARBAGE_BATCH_GB says (unless the user set
    FLAGS_eager_delete_tensor_gb), leaving the process' setting as it was."""
    name = "FLAGS_eager_delete_tensor_gb"
    before = paddle.get_flags([name])
    if before[name] != 0.0 or name in os.environ:
        return predictor.run()
    paddle.set_flags({name: GARBAGE_BATCH_GB})
    try:
        return predictor.run()
    finally:
        paddle.set_flags(before)


class Predictor(object):
    """A Paddle Inference predictor over an exported program, on CPU (or GPU when asked).

    precision (CPU only): "fp32", "bf16" (oneDNN bfloat16), or "int8" for a program that
    serving.int8 quantized at `prefix`. Callers pass what cpu_precision() returned. In fp32
    on CPU with oneDNN (`use_mkldnn`), batches of fewer than `onednn_min_rows` rows (default
    rows_for_onednn(num_threads); 1: oneDNN for all) run on a second predictor without it,
    made on the first such batch (a second copy of the weights)."""

    def __init__(self, prefix, use_cuda=False, num_threads=None, use_mkldnn=True,
                 precision="fp32", onednn_min_rows=None):
        if precision not in PRECISIONS:
            raise ValueError("precision must be one of %s, got %r"
                             % (", ".join(PRECISIONS), precision))
        self._files = int8_model_files(prefix) if precision == "int8" else \
            (prefix + ".json", prefix + ".pdiparams")
        for path in self._files:
            if not os.path.exists(path):
                raise DataError("%s: inference model file not found" % path)
        self.on_gpu = use_cuda and paddle.device.is_compiled_with_cuda()
        self.precision = "fp32" if self.on_gpu else precision
        self.num_threads = num_threads or os.cpu_count() or 1
        use_mkldnn = use_mkldnn or self.precision != "fp32"
        self.predictor = self._create(use_mkldnn)
        self.input_names = self.predictor.get_input_names()
        if not use_mkldnn or self.precision != "fp32" or self.on_gpu:
            self.onednn_min_rows = 0  # every batch on the one predictor
        elif onednn_min_rows is None:
            self.onednn_min_rows = rows_for_onednn(self.num_threads)
        else:
            self.onednn_min_rows = onednn_min_rows
        self._few_rows = None  # the predictor without oneDNN, made when first needed
        # {id of a paddle predictor run at least once: (its input, its output handles)}
        self._handles = {}

    def _create(self, use_mkldnn):
        config = inference.Config(*self._files)
        config.disable_glog_info()
        if self.on_gpu:
            config.enable_use_gpu(256, 0)
            return inference.create_predictor(config)
        config.disable_gpu()
        config.set_cpu_math_library_num_threads(self.num_threads)
        if use_mkldnn:
            config.enable_mkldnn()
        else:
            config.disable_mkldnn()
        if self.precision == "bf16":
            config.enable_mkldnn_bfloat16()
        elif self.precision == "int8":
            # the old executor and its graph passes, which map `fc` onto oneDNN's kernels
            config.enable_new_ir(False)
            config.switch_ir_optim(True)
        return inference.create_predictor(config)

    def run(self, feed):
        """feed: {input name: numpy array}; returns the outputs as numpy arrays, in order.
        int8: the inputs are padded (see _int8_padded) and the outputs have the given batch
        size but the padded length, which callers cut to each example's length anyway."""
        batch = None
        if self.precision == "int8":
            feed, batch = _int8_padded({n: np.asarray(feed[n]) for n in self.input_names})
        predictor = self.predictor
        if len(feed[self.input_names[0]]) < self.onednn_min_rows:
            if self._few_rows is None:
                self._few_rows = self._create(use_mkldnn=False)
            predictor = self._few_rows
        handles = self._handles.get(id(predictor))
        inputs = handles[0] if handles else [predictor.get_input_handle(name)
                                             for name in self.input_names]
        for name, handle in zip(self.input_names, inputs):
            array = np.ascontiguousarray(feed[name])
            handle.reshape(array.shape)
            handle.copy_from_cpu(array)
        if handles:
            predictor.run()
        else:
            _first_run(predictor)
            handles = self._handles[id(predictor)] = (inputs, [
                predictor.get_output_handle(name) for name in predictor.get_output_names()])
        return [handle.copy_to_cpu()[:batch] for handle in handles[1]]


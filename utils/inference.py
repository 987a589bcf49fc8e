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


class Predictor(object):
    """A Paddle Inference predictor over an exported program, on CPU (or GPU when asked).

    precision (CPU only): "fp32", "bf16" (oneDNN bfloat16), or "int8" for a program that
    serving.int8 quantized at `prefix`. Callers pass what cpu_precision() returned."""

    def __init__(self, prefix, use_cuda=False, num_threads=None, use_mkldnn=True,
                 precision="fp32"):
        if precision not in PRECISIONS:
            raise ValueError("precision must be one of %s, got %r"
                             % (", ".join(PRECISIONS), precision))
        model_file, params_file = int8_model_files(prefix) if precision == "int8" else \
            (prefix + ".json", prefix + ".pdiparams")
        for path in (model_file, params_file):
            if not os.path.exists(path):
                raise DataError("%s: inference model file not found" % path)
        config = inference.Config(model_file, params_file)
        config.disable_glog_info()
        on_gpu = use_cuda and paddle.device.is_compiled_with_cuda()
        self.precision = "fp32" if on_gpu else precision
        if on_gpu:
            config.enable_use_gpu(256, 0)
        else:
            config.disable_gpu()
            config.set_cpu_math_library_num_threads(num_threads or os.cpu_count() or 1)
            if use_mkldnn or precision != "fp32":
                config.enable_mkldnn()
            else:
                config.disable_mkldnn()
            if precision == "bf16":
                config.enable_mkldnn_bfloat16()
            elif precision == "int8":
                # the old executor and its graph passes, which map `fc` onto oneDNN's kernels
                config.enable_new_ir(False)
                config.switch_ir_optim(True)
        self.predictor = inference.create_predictor(config)
        self.input_names = self.predictor.get_input_names()

    def run(self, feed):
        """feed: {input name: numpy array}; returns the outputs as numpy arrays, in order.
        int8: the inputs are padded (see _int8_padded) and the outputs have the given batch
        size but the padded length, which callers cut to each example's length anyway."""
        batch = None
        if self.precision == "int8":
            feed, batch = _int8_padded({n: np.asarray(feed[n]) for n in self.input_names})
        for name in self.input_names:
            handle = self.predictor.get_input_handle(name)
            array = np.ascontiguousarray(feed[name])
            handle.reshape(array.shape)
            handle.copy_from_cpu(array)
        self.predictor.run()
        return [self.predictor.get_output_handle(name).copy_to_cpu()[:batch]
                for name in self.predictor.get_output_names()]


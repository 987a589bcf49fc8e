"""Export a model as a static inference program and run it under Paddle Inference.

`export(layer, prefix, input_spec)` writes `<prefix>.json` + `<prefix>.pdiparams`
(paddle.jit.save); `Predictor(prefix)` loads them with paddle.inference and maps named numpy
inputs to the list of outputs.
"""
import os

import numpy as np
import paddle
from paddle import inference

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


class Predictor(object):
    """A Paddle Inference predictor over an exported program, on CPU (or GPU when asked)."""

    def __init__(self, prefix, use_cuda=False, num_threads=None, use_mkldnn=True):
        model_file, params_file = prefix + ".json", prefix + ".pdiparams"
        for path in (model_file, params_file):
            if not os.path.exists(path):
                raise DataError("%s: inference model file not found" % path)
        config = inference.Config(model_file, params_file)
        config.disable_glog_info()
        if use_cuda and paddle.device.is_compiled_with_cuda():
            config.enable_use_gpu(256, 0)
        else:
            config.disable_gpu()
            config.set_cpu_math_library_num_threads(num_threads or os.cpu_count() or 1)
            if use_mkldnn:
                config.enable_mkldnn()
            else:
                config.disable_mkldnn()
        self.predictor = inference.create_predictor(config)
        self.input_names = self.predictor.get_input_names()

    def run(self, feed):
        """feed: {input name: numpy array}; returns the outputs as numpy arrays, in order."""
        for name in self.input_names:
            handle = self.predictor.get_input_handle(name)
            array = np.ascontiguousarray(feed[name])
            handle.reshape(array.shape)
            handle.copy_from_cpu(array)
        self.predictor.run()
        return [self.predictor.get_output_handle(name).copy_to_cpu()
                for name in self.predictor.get_output_names()]


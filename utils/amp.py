"""Mixed precision for the one training loop (`utils.loop.train_loop`), in one place.

`amp_from_args(args, runtime)` reads the 2019 flags and returns an `Amp` (or None: fp32);
`train_loop(..., amp=...)` runs each step's forward pass inside `amp.autocast()` and its
backward pass and update through `amp.backward_and_step(loss, optimizer)`.

* `--use_fp16 true` on a CUDA GPU: fp16 autocast at level O1 with dynamic loss scaling
  (`paddle.amp.GradScaler` fed the Aug-2019 flags --init_loss_scaling, --incr_every_n_steps,
  --decr_every_n_nan_or_inf, --incr_ratio, --decr_ratio, --use_dynamic_loss_scaling). O1, not
  O2: the parameters stay fp32 (they are the fp32 master weights of the 2019 fp16 path), so
  the optimizer, the checkpoints and evaluation are unchanged; white-listed ops (matmul)
  run in fp16, black-listed ones (softmax, layer norm, cross entropy) in fp32. A step whose
  scaled gradients hold inf/nan is skipped (no parameter or moment update; the step still
  counts, as the 2019 global step did) and the scale follows the 2019 rules
  (`ErnieGradScaler`). A non-finite *loss* still stops the run (train_loop).
* `--use_bf16 true`: bf16 autocast at level O1, no loss scaling (bf16 has fp32's range).
* `--use_fp16 true` without a CUDA GPU: a one-line notice, then bf16 if this CPU has it,
  else fp32.

bf16 on CPU. `paddle.amp.auto_cast` in Paddle 3.3 only acts on GPU, XPU and custom devices:
on CPU it warns "amp_guard can only be enabled on CUDAPlace, XPUPlace, and CustomPlace ... so
it makes no effect", and eager CPU has no bf16 matmul kernel at all. The static-graph
builder behind `paddle.jit.to_static` (PIR) does insert the casts from the tracer's AMP
state whatever the device, and the static executor runs those bf16 matmuls with oneDNN. So
on CPU `cpu_autocast` sets that state itself (what auto_cast does, minus the device check):
bf16 on CPU works with `--to_static true` (the default); with `--to_static false` the run
stays fp32 and says so. `cpu_bf16_works()` checks this Paddle once (a traced matmul must come
out bf16) and the run falls back to fp32 if it does not.

Two properties of Paddle 3.3.1 that the callers rely on:
* The to_static program cache is not keyed by the AMP state. The training program (model in
  train mode) is built on the first training step, inside autocast; evaluation runs the
  model in eval mode, a program of its own built outside autocast: evaluation and
  prediction stay fp32. Do not run the model in train mode outside the loop before it.
* A to_static program whose *output* is a bf16 tensor crashes on CPU (segfault in
  CreateTensorFromValue). Every head of this toolkit ends in an fc whose fp32 bias add
  promotes the result to fp32, so their outputs are fp32 (tests/utils/test_amp.py checks it).
  The oneDNN bf16 matmul gradient also crashed when one of the two inputs needed no
  gradient (seen with data @ weight, data a program input); the only such matmuls here are
  the bias products `ones @ b` of model.transformer_encoder.Linear, which train fine.

Speed on CPU. A bf16 step beats fp32 only when little else than the matmuls runs in bf16:
Paddle's CPU kernels for bf16 transposes, scales and broadcast reductions are several times
slower than their fp32 ones, and every fp32/bf16 boundary costs a cast. So the encoder
(model.transformer_encoder) multiplies [rows, in] matrices (the oneDNN gradient of a
batched [B, L, in] x [in, out] product was the slowest kernel of the step), casts each
layer input once, keeps the FFN and attention-output activations bf16 up to the dropout,
and transposes in fp32.

The loss scale and its counters are not in checkpoints: a resumed fp16 run starts again from
--init_loss_scaling (2019 saved them with the persistables).
"""
import contextlib
import logging

import paddle

from utils.errors import UsageError

AMP_LEVEL = "O1"


def _as_bool(value):
    if isinstance(value, paddle.Tensor):
        return bool(value.numpy().any())
    return bool(value)


class ErnieGradScaler(paddle.amp.GradScaler):
    """paddle.amp.GradScaler with the loss-scale update of Aug 2019 (utils/fp16.py
    `update_loss_scaling`): after `decr_every_n_nan_or_inf` overflowing steps in a row the
    scale is multiplied by `decr_ratio` with a floor of 1.0; after `incr_every_n_steps` finite
    steps in a row it is multiplied by `incr_ratio` if the result is finite. Paddle's own
    update has neither the floor nor the check, and in Paddle 3.3.1 with numpy >= 2.4 it
    raises on its first decrease (`float()` of the [1]-shaped scale)."""

    def _update(self):
        if not self._enable:
            return
        if _as_bool(self._cache_found_inf):
            self._incr_count = 0
            self._decr_count += 1
            if self._decr_count == self._decr_every_n_nan_or_inf:
                old = float(self._scale.numpy().reshape(-1)[0])
                self._scale = paddle.clip(self._scale * self._decr_ratio, min=1.0)
                print("fp16 gradients overflowed in %d steps: loss scaling %g -> %g"
                      % (self._decr_count, old, float(self._scale.numpy().reshape(-1)[0])),
                      flush=True)
                self._decr_count = 0
        else:
            self._decr_count = 0
            self._incr_count += 1
            if self._incr_count == self._incr_every_n_steps:
                grown = self._scale * self._incr_ratio
                self._scale = paddle.where(paddle.isfinite(grown), grown, self._scale)
                self._incr_count = 0

    def loss_scaling(self):
        """The current loss scale, a float (1.0 when scaling is off)."""
        if not self._enable or self._scale is None:
            return 1.0
        return float(self._scale.numpy().reshape(-1)[0])


def make_scaler(args):
    """An ErnieGradScaler from the 2019 flags (checked, since GradScaler only asserts).
    The v2.0 flag --loss_scaling, when given, is a static scale: it replaces
    --init_loss_scaling and turns dynamic scaling off (v2.0 scaled the loss but never
    unscaled the gradients; the scaler does both)."""
    init_scale = check_scaling_flags(args)
    dynamic = bool(args.use_dynamic_loss_scaling) and getattr(args, "loss_scaling", None) is None
    return ErnieGradScaler(
        enable=True, init_loss_scaling=float(init_scale),
        incr_ratio=float(args.incr_ratio), decr_ratio=float(args.decr_ratio),
        incr_every_n_steps=int(args.incr_every_n_steps),
        decr_every_n_nan_or_inf=int(args.decr_every_n_nan_or_inf),
        use_dynamic_loss_scaling=dynamic)


def check_scaling_flags(args):
    """UsageError for a loss-scaling flag out of range (checked with --use_fp16 true on any
    device, so a command is refused alike on a CPU and a GPU); returns the initial scale."""
    static = getattr(args, "loss_scaling", None)
    init_scale = args.init_loss_scaling if static is None else static
    if not init_scale > 0:
        raise UsageError("--%s must be positive, got %s"
                         % ("init_loss_scaling" if static is None else "loss_scaling",
                            init_scale))
    if not args.incr_ratio > 1.0:
        raise UsageError("--incr_ratio must be greater than 1, got %s" % args.incr_ratio)
    if not 0.0 < args.decr_ratio < 1.0:
        raise UsageError("--decr_ratio must be between 0 and 1, got %s" % args.decr_ratio)
    for name in ("incr_every_n_steps", "decr_every_n_nan_or_inf"):
        if getattr(args, name) < 1:
            raise UsageError("--%s must be at least 1, got %s" % (name, getattr(args, name)))
    return init_scale


@contextlib.contextmanager
def cpu_autocast(dtype="bfloat16", level=AMP_LEVEL):
    """paddle.amp.auto_cast without its device check: the tracer's AMP state (level, op
    lists, dtype), which graphs traced by to_static inside the block follow on any device.
    Eager CPU ops ignore it."""
    from paddle.amp.auto_cast import AMP_LEVEL as LEVELS
    from paddle.amp.auto_cast import _update_list, amp_global_state
    from paddle.base.framework import _dygraph_tracer
    tracer = _dygraph_tracer()
    white, black = _update_list(None, None, level, dtype)
    saved = (tracer._amp_level, tracer._get_amp_op_list(), tracer._amp_dtype,
             amp_global_state().amp_dtype)
    # building the program also builds a static AMP op list, which warns that the phi CPU
    # kernels lack bf16 matmul (the executor uses oneDNN's): not actionable, keep it quiet
    lists_logger = _fp16_lists_logger()
    saved_log_level = lists_logger.level if lists_logger else None
    if lists_logger:
        lists_logger.setLevel(logging.ERROR)
    tracer._amp_level = getattr(LEVELS, level)
    tracer._set_amp_op_list(white, black)
    tracer._amp_dtype = dtype
    amp_global_state().amp_dtype = dtype
    try:
        yield
    finally:
        tracer._amp_level = saved[0]
        tracer._set_amp_op_list(*saved[1])
        tracer._amp_dtype = saved[2]
        amp_global_state().amp_dtype = saved[3]
        if lists_logger:
            lists_logger.setLevel(saved_log_level)


def _fp16_lists_logger():
    try:
        from paddle.static.amp import fp16_lists
        return fp16_lists._logger
    except (ImportError, AttributeError):
        return None


_CPU_BF16 = {}


def cpu_bf16_works():
    """Whether this CPU and this Paddle run bf16 in a to_static graph (checked once): the CPU
    must report bf16 support, and a matmul traced under `cpu_autocast` must come out bf16."""
    if "ok" in _CPU_BF16:
        return _CPU_BF16["ok"]
    ok = False
    try:
        if paddle.amp.is_bfloat16_supported("cpu"):
            seen = []

            def probe(x):
                y = paddle.matmul(x, x)
                seen.append(y.dtype)
                return y.astype("float32")  # a bf16 program output would crash (see above)

            static = paddle.jit.to_static(
                probe, input_spec=[paddle.static.InputSpec([2, 2], "float32")],
                full_graph=True)
            with cpu_autocast("bfloat16"):
                out = static(paddle.ones([2, 2]))
            ok = seen == [paddle.bfloat16] and float(out.sum()) == 8.0
    except Exception:  # any failure means: not usable here, run in fp32
        ok = False
    _CPU_BF16["ok"] = ok
    return ok


class Amp(object):
    """Mixed precision for training steps: `dtype` is "float16" or "bfloat16"; `scaler` an
    ErnieGradScaler (fp16 only) or None; `on_cpu` selects `cpu_autocast`."""

    def __init__(self, dtype, scaler=None, on_cpu=False):
        self.dtype, self.scaler, self.on_cpu = dtype, scaler, on_cpu
        self.skipped_steps = 0

    def __repr__(self):
        if self.scaler is None:
            scaling = "no loss scaling"
        elif self.scaler.is_use_dynamic_loss_scaling():
            scaling = "dynamic loss scaling from %g" % self.scaler.get_init_loss_scaling()
        else:
            scaling = "static loss scaling %g" % self.scaler.get_init_loss_scaling()
        name = {"float16": "fp16", "bfloat16": "bf16"}[self.dtype]
        return "%s autocast (%s) on %s, %s" % (name, AMP_LEVEL, "CPU" if self.on_cpu else "GPU",
                                              scaling)

    def autocast(self):
        """The context for a training step's forward pass (and its loss)."""
        if self.on_cpu:
            return cpu_autocast(self.dtype)
        return paddle.amp.auto_cast(enable=True, dtype=self.dtype, level=AMP_LEVEL)

    def backward_and_step(self, loss, optimizer):
        """Backward pass and update; returns False when the update was skipped because the
        (scaled) gradients overflowed. The caller clears the gradients."""
        if self.scaler is None:
            loss.backward()
            optimizer.step()
            return True
        self.scaler.scale(loss).backward()
        self.scaler.step(optimizer)
        applied = not _as_bool(self.scaler._cache_found_inf)
        self.scaler.update()
        if not applied:
            self.skipped_steps += 1
        return applied


def _notice(runtime, message):
    if runtime is None or runtime.is_main:
        print(message, flush=True)


def amp_from_args(args, runtime=None):
    """The Amp that --use_fp16 / --use_bf16 ask for on this device, or None (fp32).

    Call after Runtime() has chosen the device. Flags missing from `args` read as off."""
    use_fp16 = bool(getattr(args, "use_fp16", False))
    use_bf16 = bool(getattr(args, "use_bf16", False))
    on_gpu = paddle.device.get_device().startswith("gpu")
    loss_scaling = getattr(args, "loss_scaling", None)
    if loss_scaling is not None:
        if not loss_scaling > 0:
            raise UsageError("--loss_scaling must be positive, got %s" % loss_scaling)
        if not (use_fp16 and on_gpu):
            _notice(runtime, "--loss_scaling %g: a static loss scale applies to fp16 training "
                             "on a GPU (--use_fp16 true); no effect on this run."
                    % loss_scaling)
    if not (use_fp16 or use_bf16):
        return None
    if use_fp16 and use_bf16:
        raise UsageError("--use_fp16 and --use_bf16 are both true: choose one")
    if use_fp16:
        check_scaling_flags(args)
    to_static = bool(getattr(args, "to_static", True))
    amp = None
    if use_fp16 and on_gpu:
        if paddle.amp.is_float16_supported():
            amp = Amp("float16", make_scaler(args))
        else:
            _notice(runtime, "--use_fp16 true: this GPU has no fast fp16 (compute capability "
                             "< 7.0); training in fp32.")
            return None
    elif on_gpu:
        if paddle.amp.is_bfloat16_supported():
            amp = Amp("bfloat16")
        else:
            _notice(runtime, "--use_bf16 true: this GPU has no bf16 (compute capability < 8.0 "
                             "or CUDA < 11); training in fp32.")
            return None
    else:
        flag = "--use_fp16 true: fp16 needs a CUDA GPU and this run is on CPU; " if use_fp16 \
            else "--use_bf16 true: "
        if not to_static:
            _notice(runtime, flag + "bf16 on CPU needs the static graph (--to_static true); "
                                    "training in fp32.")
            return None
        if not cpu_bf16_works():
            _notice(runtime, flag + "this CPU (or this PaddlePaddle) has no bf16; training "
                                    "in fp32.")
            return None
        if use_fp16:
            _notice(runtime, flag + "training with bf16 autocast instead (no loss scaling).")
        amp = Amp("bfloat16", on_cpu=True)
    _notice(runtime, "Mixed precision: %r" % amp)
    return amp

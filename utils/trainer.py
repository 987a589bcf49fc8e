"""The one training loop behind run_classifier.py, run_sequence_labeling.py, run_mrc.py and
train.py, plus the runtime setup they share (threads, seeds, trainers, static graphs).

A task hands the loop three things: `loss_and_stats(batch) -> (loss tensor, {name: tensor})`,
a function that formats the train log line, and an optional `validate(steps)` callback.
"""
import contextlib
import itertools
import json
import math
import os
import re
import sys
import time

import numpy as np
import paddle
from paddle.static import InputSpec

import utils

from model.ernie import encoder_input_names
from utils.checkpoint import (ADAM_SLOTS, LR_COUNTER, MANIFEST_FILE, TRAIN_STATE_FILE,
                              _name_list, _recover_leftovers, counter_lead,
                              latest_checkpoint, read_legacy_optimizer_state,
                              read_training_state, save_checkpoint)
from utils.errors import DataError, UsageError


class Runtime(object):
    """Where this process runs: trainer id, number of trainers, and whether it logs/saves."""

    def __init__(self, use_cuda=False):
        if use_cuda and not paddle.device.is_compiled_with_cuda():
            print("WARNING: --use_cuda true, but this PaddlePaddle has no CUDA; running on CPU.")
            use_cuda = False
        self.num_trainers = int(os.environ.get("PADDLE_TRAINERS_NUM", "1"))
        self.trainer_id = int(os.environ.get("PADDLE_TRAINER_ID", "0"))
        if use_cuda:
            paddle.set_device("gpu:%s" % os.environ.get("FLAGS_selected_gpus", "0").split(",")[0])
        else:
            paddle.set_device("cpu")
            set_cpu_threads()
        if self.num_trainers > 1:
            paddle.distributed.init_parallel_env()
        self.is_main = self.trainer_id == 0
        self.scalars = None
        self.train_log = []  # the means of every train log line, for --enable_ce

    def open_visualdl(self, logdir):
        """--use_visualdl true: loss and metrics also go to a VisualDL log (trainer 0 only)."""
        if self.is_main:
            from visualdl import LogWriter
            self.scalars = LogWriter(logdir=logdir)
            print("VisualDL log: %s (view with: visualdl --logdir %s)" % (logdir, logdir))

    def add_scalars(self, prefix, values, step):
        if self.scalars is not None:
            for key, value in values.items():
                self.scalars.add_scalar("%s/%s" % (prefix, key), float(value), step)

    def wrap(self, model):
        """DataParallel over all trainers (NCCL on GPUs, gloo on CPUs) when there are several."""
        return paddle.DataParallel(model) if self.num_trainers > 1 else model


def set_cpu_threads(num_threads=None):
    """Let eager and to_static CPU kernels (matmuls above all) use this process' share of cores.

    Paddle's dygraph runs its CPU math library on one thread unless told otherwise, which
    halved training speed on 2 cores. Default: OMP_NUM_THREADS if set, else the cores this
    process may use divided among the trainers the launcher started on this machine.
    """
    if num_threads is None:
        if (utils.USER_OMP_NUM_THREADS or "").isdigit():
            num_threads = int(utils.USER_OMP_NUM_THREADS)
        else:
            local_trainers = int(os.environ.get("PADDLE_LOCAL_SIZE", "1") or 1)
            num_threads = len(os.sched_getaffinity(0)) // max(local_trainers, 1)
    paddle.base.core.set_num_threads(max(int(num_threads), 1))
    # static programs run their ops one after another on CPU: the executor's parallel op
    # scheduling oversubscribed the cores each matmul already uses (1.4x slower than eager)
    paddle.set_flags({"FLAGS_new_executor_serial_run": True})


MAX_SEED = 2 ** 32 - 1     # numpy's (and so the readers') seeds are unsigned 32-bit


def set_seed(seed):
    """Seed Paddle and numpy with --random_seed (None: leave them as they are)."""
    if seed is not None:
        if not 0 <= seed <= MAX_SEED:
            raise UsageError("--random_seed must be an integer in 0..%d, got %s"
                             % (MAX_SEED, seed))
        paddle.seed(seed)
        np.random.seed(seed)


def encoder_input_spec(cfg, extra=()):
    """[B, L] inputs with both dimensions dynamic, so one static program serves every batch."""
    names = encoder_input_names(cfg) + tuple(extra)
    return [InputSpec([None, None], "float32" if n == "input_mask" else "int64", name=n)
            for n in names]


def compile_model(model, cfg, use_static, input_spec=None):
    """The model's forward as a static graph (paddle.jit.to_static), or eager for debugging."""
    if not use_static:
        return model
    return paddle.jit.to_static(model, input_spec=input_spec or encoder_input_spec(cfg),
                                full_graph=True)


class Window(object):
    """Running means of the loss and statistics over the steps since the last log line."""

    def __init__(self):
        self.sums, self.count, self.start = {}, 0, time.time()

    def add(self, values):
        for key, value in values.items():
            self.sums[key] = self.sums.get(key, 0.0) + float(value)
        self.count += 1

    def flush(self):
        means = {k: v / max(1, self.count) for k, v in self.sums.items()}
        speed = self.count / max(1e-9, time.time() - self.start)
        self.sums, self.count, self.start = {}, 0, time.time()
        return means, speed


def train_loop(model, optimizer, lr, batches, loss_and_stats, args, runtime, log_line,
               validate=None, epoch_of=None, start_step=0, train_state=None, amp=None):
    """Run optimisation over `batches`; returns the step count reached.

    Every `--skip_steps` prints `log_line(steps, means, speed)` (means over the window);
    every `--save_steps` saves `<checkpoints>/step_N`, with `train_state()` (the data
    position) so a run can resume from it; every `--validation_steps`, and when `epoch_of()`
    moves to a new epoch, calls `validate(steps)`. A final checkpoint is saved. A non-finite
    loss stops the run before anything is saved from it. `start_step` continues the count of
    a resumed run. `amp` (utils.amp.amp_from_args(args, runtime); None: fp32) runs each
    forward pass under fp16/bf16 autocast and the update through its loss scaler: a step whose
    scaled gradients overflow is skipped (it still counts), a non-finite loss still stops.
    """
    steps, window, last_ckpt = start_step, Window(), None

    def save():
        state = dict(train_state() if train_state else {}, step=steps)
        return save_checkpoint(model, optimizer, os.path.join(args.checkpoints,
                                                              "step_%d" % steps), state)

    epoch_seen = epoch_of() if epoch_of else None
    batches = iter(batches)
    batch = next(batches, None)
    while batch is not None:
        with (amp.autocast() if amp is not None else contextlib.nullcontext()):
            loss, stats = loss_and_stats(batch)
        loss_value = float(loss)
        if not math.isfinite(loss_value):
            raise DataError("training loss is %s at step %d; last good checkpoint: %s"
                            % (loss_value, steps + 1, last_ckpt or "none saved yet"))
        # Adam's moments are created on the first update and named from a global counter;
        # a fresh name scope keeps them `<param>_moment1_0`, ..., whatever ran before in the
        # process, so a checkpoint's optimizer state always finds its variables again
        with paddle.utils.unique_name.guard():
            if amp is not None:
                amp.backward_and_step(loss, optimizer)
            else:
                loss.backward()
                optimizer.step()
        optimizer.clear_grad()
        step_lr = optimizer.get_lr()  # the rate this step used, as 2019 fetched it
        if not isinstance(lr, float):
            lr.step()
        steps += 1
        window.add(dict(stats, loss=loss_value))
        if steps % args.skip_steps == 0:
            means, speed = window.flush()
            means["learning_rate"] = step_lr
            if runtime.is_main:
                if args.verbose:
                    print("learning rate: %f" % step_lr)
                print(log_line(steps, means, speed), flush=True)
                runtime.train_log.append(means)
            runtime.add_scalars("train", means, steps)
        if steps % args.save_steps == 0 and runtime.is_main:
            last_ckpt = save()
        # look one batch ahead: fetching it tells whether this step ended an epoch
        batch = next(batches, None)
        epoch_ended = (epoch_of is not None and batch is not None and epoch_of() != epoch_seen)
        if validate is not None and (steps % args.validation_steps == 0 or epoch_ended):
            validate(steps)
        if epoch_of is not None:
            epoch_seen = epoch_of()
    if runtime.is_main and steps > start_step and steps % args.save_steps:
        save()
    return steps


def print_ce_kpis(runtime, train_seconds, dev_metrics=None):
    """--enable_ce: the 2019 continuous-evaluation lines `kpis<TAB>NAME_card<N><TAB>VALUE`.
    Train loss and accuracy come from the second-to-last log line (the last one may cover
    a short window), as in 2019, which printed `ce info error` when there was none."""
    card = runtime.num_trainers
    print("kpis\ttrain_duration_card%d\t%f" % (card, train_seconds))
    if len(runtime.train_log) < 2:
        print("ce info error")
    else:
        means = runtime.train_log[-2]
        for key in ("loss", "acc"):
            if key in means:
                print("kpis\ttrain_%s_card%d\t%f" % (key, card, means[key]))
    for name, value in sorted((dev_metrics or {}).items()):
        print("kpis\tdev_%s_card%d\t%f" % (name, card, value))
    sys.stdout.flush()


def check_positive(args, *names):
    """Each named flag that is set must be a positive number (NaN is not)."""
    for name in names:
        value = getattr(args, name)
        if value is not None and not value > 0:
            raise UsageError("--%s must be positive, got %s" % (name, value))


def check_learning_rate(args):
    """--learning_rate must be a positive finite number (a NaN rate would only show later,
    as a NaN loss; a negative one climbs the loss)."""
    if not (math.isfinite(args.learning_rate) and args.learning_rate > 0):
        raise UsageError("--learning_rate must be a positive finite number, got %s"
                         % args.learning_rate)


def check_seed(args):
    """--random_seed, when given, must be in 0..2**32-1 (what numpy and Paddle accept)."""
    seed = getattr(args, "random_seed", None)
    if seed is not None and not 0 <= seed <= MAX_SEED:
        raise UsageError("--random_seed must be an integer in 0..%d, got %s" % (MAX_SEED, seed))


def check_finetune_args(args, required=(), positive=(), files=()):
    """The checks every run_*.py shares, before any work: something to do, the paths each
    mode needs (plus `required`), positive sizes (plus `positive`), a token budget that holds
    one full sequence, and every named path present (plus `files`)."""
    if not (args.do_train or args.do_val or args.do_test):
        raise UsageError("one of --do_train, --do_val or --do_test must be true")
    for name in ("ernie_config_path", "vocab_path") + tuple(required):
        if not getattr(args, name):
            raise UsageError("--%s is required" % name)
    if args.do_train and not args.train_set:
        raise UsageError("--train_set is required with --do_train true")
    if args.do_val and not args.dev_set:
        raise UsageError("--dev_set is required with --do_val true")
    check_positive(args, "batch_size", "predict_batch_size", "epoch", "max_seq_len",
                   "skip_steps", "save_steps", "validation_steps", *positive)
    check_learning_rate(args)
    if not 0 <= args.warmup_proportion <= 1:   # NaN fails too
        raise UsageError("--warmup_proportion is the share of the training steps spent warming "
                         "up: it must be in [0, 1], got %s" % args.warmup_proportion)
    check_seed(args)
    if args.in_tokens and args.batch_size < args.max_seq_len:
        raise UsageError("--in_tokens true counts --batch_size in tokens: it must be at least "
                         "--max_seq_len (%d), got %d" % (args.max_seq_len, args.batch_size))
    check_files(args, "ernie_config_path", "vocab_path", "train_set", "dev_set", "test_set",
                "init_checkpoint", "init_pretraining_params", "sentence_piece_model", *files)


def check_finetune_outputs(args):
    """Before any work, creating nothing: --checkpoints (when training or logging there) and
    the --test_save prefixes, one per --test_set."""
    from utils.fileio import check_output_dir, check_output_prefix
    if args.do_train or getattr(args, "use_visualdl", False):
        check_output_dir("--checkpoints", args.checkpoints)
    if args.do_test and args.test_set:
        saves = args.test_save.split(",")
        if len(saves) != len(args.test_set.split(",")):
            raise UsageError("--test_set names %d files but --test_save %d"
                             % (len(args.test_set.split(",")), len(saves)))
        for prefix in saves:
            check_output_prefix("--test_save", prefix)


def check_files(args, *names):
    """Each named flag that is set must point at an existing path (comma lists allowed)."""
    for name in names:
        value = getattr(args, name, None)
        if not value:
            continue
        for path in str(value).split(","):
            if not os.path.exists(path):
                raise UsageError("--%s: %s does not exist" % (name, path))


def check_against_config(args, config, vocab):
    """Before any model is built: --max_seq_len fits the config's position embeddings and
    every vocabulary id fits its vocab_size (the embedding table the checkpoint holds)."""
    if args.max_seq_len > config["max_position_embeddings"]:
        raise UsageError("--max_seq_len %d is longer than max_position_embeddings %d in %s"
                         % (args.max_seq_len, config["max_position_embeddings"],
                            args.ernie_config_path))
    size = max(vocab.values()) + 1 if vocab else 0
    if size > config["vocab_size"]:
        raise UsageError("%s has ids up to %d but vocab_size in %s is %d"
                         % (args.vocab_path, size - 1, args.ernie_config_path,
                            config["vocab_size"]))


def plan_training(args, runtime, num_examples, batches_per_epoch, parameters):
    """The LR horizon from the real batch count, the 2019 lines that report it, and the
    optimizer: returns (optimizer, lr)."""
    from utils.optimization import make_optimizer
    max_train_steps = args.epoch * (batches_per_epoch // runtime.num_trainers)
    warmup_steps = int(max_train_steps * args.warmup_proportion)
    print("Device count: %d" % runtime.num_trainers)
    print("Num train examples: %d" % num_examples)
    print("Max train steps: %d" % max_train_steps)
    print("Num warmup steps: %d" % warmup_steps)
    return make_optimizer(parameters, args.learning_rate, warmup_steps, max_train_steps,
                          args.weight_decay, args.lr_scheduler)


def prepare_training(args, runtime, reader, parameters):
    """Everything before the loop for a fine-tuning reader: the optimizer and LR plan, the
    state of a resumed run (--init_checkpoint / --resume auto over the same data), and the
    batch stream from where that run stopped. Returns (num_examples, optimizer, lr, batches,
    loop_kwargs), loop_kwargs being what train_loop needs to continue and to save resumably."""
    num_examples = reader.get_num_examples(args.train_set)
    batches_per_epoch = reader.count_batches(args.train_set, args.batch_size)
    optimizer, lr = plan_training(args, runtime, num_examples, batches_per_epoch, parameters)
    # the run's identity: what its batch stream and learning-rate plan depend on
    run_identity = {"train_set": os.path.abspath(args.train_set), "num_examples": num_examples,
                    "batch_size": args.batch_size, "in_tokens": args.in_tokens,
                    "max_seq_len": args.max_seq_len, "num_trainers": runtime.num_trainers,
                    "shuffle": args.shuffle, "random_seed": args.random_seed,
                    "epoch": args.epoch, "learning_rate": args.learning_rate,
                    "warmup_proportion": args.warmup_proportion,
                    "lr_scheduler": args.lr_scheduler, "weight_decay": args.weight_decay}
    check_resumed_run(args, run_identity)
    resumed = (restore_training(args.init_checkpoint, optimizer, lr, run_identity)
               if args.init_checkpoint else None)
    check_checkpoint_folder(args, run_identity, resumed["step"] if resumed else 0)
    batches = reader.data_generator(args.train_set, args.batch_size, args.epoch,
                                    shuffle=args.shuffle, phase="train",
                                    trainer_id=runtime.trainer_id,
                                    num_trainers=runtime.num_trainers,
                                    start=resumed and resumed["data_position"])()
    # a run continued from a 2019 checkpoint reads the data from its beginning but stops at
    # plan_training's Max train steps, as the 2019 run would have; its checkpoints keep that
    # stop so resuming them stops there too
    stop_step = resumed.get("stop_step") if resumed else None
    if resumed and resumed["data_position"] is None:
        stop_step = args.epoch * (batches_per_epoch // runtime.num_trainers)
    if stop_step is not None:
        batches = itertools.islice(batches, max(0, stop_step - resumed["step"]))
    keep = {"stop_step": stop_step} if stop_step is not None else {}
    loop_kwargs = dict(start_step=resumed["step"] if resumed else 0,
                       train_state=lambda: dict(run_identity, data_position=reader.position,
                                                **keep))
    return num_examples, optimizer, lr, batches, loop_kwargs


def test_outputs(args, epoch, steps):
    """(--test_set file, `<test_save>.<epoch>.<steps>`) pairs, the 2019 naming of --do_test
    outputs, with the 2019 `testing ..., save to ...` line for each."""
    if not args.test_set:
        print("--do_test is true but no --test_set is given: nothing to predict.")
        return []
    test_sets, saves = args.test_set.split(","), args.test_save.split(",")
    if len(test_sets) != len(saves):
        raise UsageError("--test_set names %d files but --test_save %d"
                         % (len(test_sets), len(saves)))
    pairs = [(path, "%s.%s.%s" % (save, epoch, steps)) for path, save in zip(test_sets, saves)]
    for path, out in pairs:
        print("testing %s, save to %s" % (path, out))
    return pairs


def init_model_params(model, args, training):
    """--init_checkpoint (everything present) wins over --init_pretraining_params (encoder
    only); evaluation-only runs need a checkpoint, as in 2019, and take every parameter of the
    model from it, the task head included (a missing one is an error, not a random head);
    training from a checkpoint without the head initialises the head afresh and says so."""
    from utils.checkpoint import init_checkpoint, init_pretraining_params
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


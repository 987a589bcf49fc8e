"""The one fine-tuning run behind run_classifier.py, run_sequence_labeling.py and run_mrc.py.

Each entry point describes its task as a `Task` (reader, input checks, model, loss, train log
line, dev evaluation, test prediction) and calls `run(task)`, which does the rest in the same
order for all three:

  flags and output locations checked -> runtime, seed, config -> reader; every input file
  read and checked -> model and its parameters (a bad file stops the run with nothing
  created) -> VisualDL -> training, evaluating the dev sets and predicting the test sets
  every --validation_steps -> final evaluation -> --enable_ce lines.

Below `run` are the pieces it uses: the shared flag checks, the optimizer plan and the resume
of a stopped run (prepare_training), and the 2019 naming of the --do_test outputs.
"""
import abc
import itertools
import os
import time

from model.ernie import ErnieConfig, check_against_config, encoder_input_spec
from utils.amp import amp_from_args
from utils.args import (
    check_files,
    check_learning_rate,
    check_positive,
    check_seed,
    check_weight_decay,
    print_arguments,
)
from utils.checkpoint import BestCheckpoint, init_model_params
from utils.errors import UsageError
from utils.fileio import check_output_dir, check_output_prefix
from utils.loop import print_ce_kpis, save_or_stop, train_loop
from utils.optimization import make_optimizer
from utils.resume import (
    check_checkpoint_folder,
    check_resumed_run,
    hold_checkpoints,
    resolve_resume,
    restore_training,
    saved_best,
)
from utils.runtime import Runtime, compile_model, set_seed


class Task(abc.ABC):
    """What one fine-tuning entry point fills in. `run` builds the run's parts in order and
    sets them here as it goes, for the methods to use: `runtime` (utils.runtime.Runtime),
    `config`, `reader`, `model` and `forward` (the model's compiled forward; evaluation and
    prediction call it, training calls it wrapped for data parallel). An entry point
    defines every abstract method; a missing one fails when the task is built."""

    # 2019 evaluated classification also whenever an epoch ended; the other tasks only every
    # --validation_steps
    validate_each_epoch = False
    # the key of evaluate_dev's metrics that --save_best follows (higher is better); None:
    # the first value of --metric (classification, BEST_OF_METRIC)
    best_metric = None
    # training with --save_best: the utils.checkpoint.BestCheckpoint, and save_best(steps,
    # path, record) writing a checkpoint of the model as it is (set by `train`)
    best = save_best = None

    def __init__(self, args):
        self.args = args
        self.predict_batch_size = args.predict_batch_size or args.batch_size
        self.runtime = self.config = self.reader = self.model = self.forward = None

    @abc.abstractmethod
    def check_args(self):
        """Every flag and output location, before any work, creating nothing."""

    @abc.abstractmethod
    def make_reader(self):
        """The task's reader (reader.task_reader / reader.mrc), built from the flags."""

    @abc.abstractmethod
    def check_inputs(self):
        """Read and check every input file the run will use (input_files) and anything the
        reader holds (label maps); the reader caches what it read."""

    @abc.abstractmethod
    def make_model(self):
        """The task's model (a finetune head over model.ernie.ErnieModel)."""

    @abc.abstractmethod
    def loss_and_stats(self, forward, batch):
        """(loss tensor, {name: value}) of one training batch; the values are averaged over
        the log window for `log_line`."""

    @abc.abstractmethod
    def log_line(self, head, means, speed):
        """The train log line: `head` is its 2019 start `epoch: E, progress: N/M, step: S`,
        `means` the window's means of the loss and the stats, `speed` in steps/s."""

    @abc.abstractmethod
    def evaluate_dev(self, steps, epoch, final):
        """Evaluate every --dev_set (`final`: after training); returns the first one's
        metrics, which --enable_ce prints."""

    @abc.abstractmethod
    def predict_test(self, steps, epoch, final):
        """Predict every --test_set (`final`: after training)."""

    def final_outputs(self):
        """Anything written once, after the final evaluation (classification's --diagnostic);
        nothing by default."""
        return None


def run(task):
    """One fine-tuning run from its flags to its final outputs; returns the exit code 0."""
    args = task.args
    print_arguments(args)
    resolve_resume(args)
    task.check_args()
    runtime = task.runtime = Runtime(args.use_cuda)
    set_seed(args.random_seed)

    config = task.config = ErnieConfig(args.ernie_config_path)
    config.print_config()
    reader = task.reader = task.make_reader()
    check_against_config(args, config, reader.tokenizer.vocab)
    task.check_inputs()
    if args.do_test and not args.test_set:
        print("--do_test is true but no --test_set is given: nothing to predict.")

    model = task.model = task.make_model()
    init_model_params(model, args, training=args.do_train)
    task.forward = compile_model(model, args.to_static, encoder_input_spec(config))
    # a training run holds --checkpoints until its end (the final evaluation may save best)
    with hold_checkpoints(args.checkpoints, args.do_train and runtime.is_main):
        if args.use_visualdl:  # after the data and parameters loaded: bad input creates nothing
            runtime.open_visualdl(os.path.join(args.checkpoints, "visualdl"))

        train_start = time.time()
        steps = epoch = 0
        if args.do_train:
            steps = train(task)
            epoch = reader.current_epoch
        train_seconds = time.time() - train_start
        if runtime.is_main:
            dev_metrics = evaluate(task, steps, epoch, final=True)
            keep_best(task, steps, dev_metrics)
            task.final_outputs()
            if task.best is not None:
                print(task.best.summary(), flush=True)
            if args.enable_ce:
                print_ce_kpis(runtime, train_seconds, dev_metrics)
    return 0


def train(task):
    """Fine-tune `task.model` over --train_set (continuing a resumed run where it stopped);
    trainer 0 evaluates every --validation_steps. Returns the step count reached."""
    args, runtime, reader, model = task.args, task.runtime, task.reader, task.model
    num_examples, optimizer, lr, batches, loop_kwargs = prepare_training(
        args, runtime, reader, model.parameters())
    train_forward = runtime.wrap(task.forward)

    def log_line(steps, means, speed):
        head = "epoch: %d, progress: %d/%d, step: %d" % (
            reader.current_epoch, reader.current_example, num_examples, steps)
        return task.log_line(head, means, speed)

    def validate(steps):
        if runtime.is_main:
            keep_best(task, steps, evaluate(task, steps, reader.current_epoch))

    resumed, identity = loop_kwargs.pop("resumed"), loop_kwargs.pop("identity")
    if args.save_best:
        task.best = BestCheckpoint(args.checkpoints, task.best_metric or
                                   BEST_OF_METRIC[args.metric])
        if resumed:     # a resumed run keeps its best so far
            task.best.restore(saved_best(args.checkpoints, identity))
        train_state = loop_kwargs["train_state"]
        task.save_best = lambda steps, path, record: save_or_stop(
            model, optimizer, path, dict(train_state(), step=steps, best=record))

    epoch_of = (lambda: reader.current_epoch) if task.validate_each_epoch else None
    return train_loop(model, optimizer, lr, batches,
                      lambda batch: task.loss_and_stats(train_forward, batch),
                      args, runtime, log_line, validate, epoch_of=epoch_of,
                      amp=amp_from_args(args, runtime), **loop_kwargs)


# --save_best, classification: the first value of each --metric (the regression one: corr)
BEST_OF_METRIC = {"simple_accuracy": "acc", "acc_and_f1": "acc",
                  "matthews_corrcoef": "matthews_corrcoef", "pearson_and_spearman": "corr",
                  "acc_and_f1_and_mrr": "acc"}


def keep_best(task, steps, dev_metrics):
    """--save_best: after an evaluation of the first --dev_set at `steps`, save
    `<checkpoints>/best` if its metric beats the best so far."""
    if task.best is None or not dev_metrics:
        return
    value = dev_metrics.get(task.best.metric)
    task.best.offer(steps, None if value is None else float(value),
                    lambda path, record: task.save_best(steps, path, record))


def evaluate(task, steps, epoch, final=False):
    """--do_val: the dev sets, then --do_test: the test sets, the final ones under the 2019
    headings. Returns the first dev set's metrics (None without --do_val)."""
    args, dev_metrics = task.args, None
    if args.do_val:
        if final:
            print("Final validation result:")
        dev_metrics = task.evaluate_dev(steps, epoch, final)
    if args.do_test and args.test_set:
        if final:
            print("Final test result:")
        task.predict_test(steps, epoch, final)
    return dev_metrics


def input_files(args, *extra):
    """(flag, path) of every input file the run reads: --train_set with --do_train, each
    --dev_set with --do_val, each --test_set with --do_test, and the `extra` flags' files."""
    used = [("train_set", args.do_train), ("dev_set", args.do_val), ("test_set", args.do_test)]
    used += [(flag, True) for flag in extra]
    return [(flag, path) for flag, on in used if on and getattr(args, flag)
            for path in getattr(args, flag).split(",")]


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
    check_weight_decay(args)
    if not 0 <= args.warmup_proportion <= 1:   # NaN fails too
        raise UsageError("--warmup_proportion is the share of the training steps spent warming "
                         "up: it must be in [0, 1], got %s" % args.warmup_proportion)
    check_seed(args)
    if getattr(args, "keep_checkpoint_max", 0) < 0:
        raise UsageError("--keep_checkpoint_max must not be negative (0 keeps every "
                         "checkpoint), got %d" % args.keep_checkpoint_max)
    if getattr(args, "save_best", False) and not (args.do_train and args.do_val):
        raise UsageError("--save_best true keeps the checkpoint of the best dev evaluation: it "
                         "needs --do_train true and --do_val true")
    if args.in_tokens and args.batch_size < args.max_seq_len:
        raise UsageError("--in_tokens true counts --batch_size in tokens: it must be at least "
                         "--max_seq_len (%d), got %d" % (args.max_seq_len, args.batch_size))
    check_files(args, "ernie_config_path", "vocab_path", "train_set", "dev_set", "test_set",
                "init_checkpoint", "init_pretraining_params", "sentence_piece_model", *files)


def check_finetune_outputs(args):
    """Before any work, creating nothing: --checkpoints (when training or logging there) and
    the --test_save prefixes, one per --test_set."""
    if args.do_train or getattr(args, "use_visualdl", False):
        check_output_dir("--checkpoints", args.checkpoints)
    if args.do_test and args.test_set:
        saves = args.test_save.split(",")
        if len(saves) != len(args.test_set.split(",")):
            raise UsageError("--test_set names %d files but --test_save %d"
                             % (len(args.test_set.split(",")), len(saves)))
        for prefix in saves:
            check_output_prefix("--test_save", prefix)


def plan_training(args, runtime, num_examples, batches_per_epoch, parameters):
    """The LR horizon from the real batch count, the 2019 lines that report it, and the
    optimizer: returns (optimizer, lr)."""
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
    loop_kwargs), loop_kwargs being what train_loop needs to continue and to save resumably,
    plus `resumed` (this continues a run of ours) and `identity` (the run's), which `train`
    takes out."""
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
                                                **keep),
                       # not for train_loop: whether this continues a run of ours, and its
                       # identity (the best so far of --save_best comes back with it)
                       resumed=bool(resumed and resumed["data_position"] is not None),
                       identity=run_identity)
    return num_examples, optimizer, lr, batches, loop_kwargs


def test_outputs(args, epoch, steps):
    """(--test_set file, `<test_save>.<epoch>.<steps>`) pairs, the 2019 naming of --do_test
    outputs, with the 2019 `testing ..., save to ...` line for each."""
    pairs = [(path, "%s.%s.%s" % (save, epoch, steps))
             for path, save in zip(args.test_set.split(","), args.test_save.split(","))]
    for path, out in pairs:
        print("testing %s, save to %s" % (path, out))
    return pairs

"""What every fine-tuning entry point (run_classifier.py, run_sequence_labeling.py, run_mrc.py)
does around the training loop: check the flags and outputs, plan the optimizer, continue a
stopped run, and name the --do_test outputs."""
import itertools
import os

from utils.args import check_files, check_learning_rate, check_positive, check_seed
from utils.checkpoint import check_checkpoint_folder, check_resumed_run, restore_training
from utils.errors import UsageError
from utils.fileio import check_output_dir, check_output_prefix
from utils.optimization import make_optimizer


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
    if args.do_train or getattr(args, "use_visualdl", False):
        check_output_dir("--checkpoints", args.checkpoints)
    if args.do_test and args.test_set:
        saves = args.test_save.split(",")
        if len(saves) != len(args.test_set.split(",")):
            raise UsageError("--test_set names %d files but --test_save %d"
                             % (len(args.test_set.split(",")), len(saves)))
        for prefix in saves:
            check_output_prefix("--test_save", prefix)


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

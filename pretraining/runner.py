"""What both pretraining modes of train.py (masked_lm: ERNIE 1.0, multitask: ERNIE 2.0) do
around the training loop: check the flags and the model config, keep trainers in step, bring a
resumed run's data streams back to where it stopped, and write the --export_model_dir folder."""
import itertools
import json
import os
import shutil

import paddle

from utils.args import (
    check_files,
    check_learning_rate,
    check_positive,
    check_seed,
    check_weight_decay,
)
from utils.checkpoint import model_params
from utils.errors import UsageError
from utils.fileio import atomic_dir, check_output_dir
from utils.format_paddle2019 import check_model_dir_replaceable, write_legacy_dir


def check_pretrain_args(args):
    """The flag checks, before any work: positive sizes, a mode with its files, every named
    path present, and where training writes (creating nothing)."""
    check_positive(args, "batch_size", "epoch", "max_seq_len", "skip_steps", "save_steps",
                   "validation_steps", "num_train_steps")
    if args.warmup_steps < 0:
        raise UsageError("--warmup_steps must not be negative, got %d" % args.warmup_steps)
    check_learning_rate(args)
    check_weight_decay(args)
    check_seed(args)
    if args.keep_checkpoint_max < 0:
        raise UsageError("--keep_checkpoint_max must not be negative (0 keeps every "
                         "checkpoint), got %d" % args.keep_checkpoint_max)
    if args.save_best and (args.do_test or args.multitask_config or not args.valid_filelist):
        raise UsageError("--save_best true keeps the checkpoint of the lowest validation loss: "
                         "it needs --valid_filelist%s" % (
                             " (a --multitask_config run does not validate)"
                             if args.multitask_config else ""))
    if args.do_test:
        if not args.init_checkpoint:
            raise UsageError("[FATAL] Please use --init_checkpoint '/path/to/checkpoints' to "
                             "specify you pretrained model checkpoints")
        if not args.test_filelist:
            raise UsageError("--test_filelist is required with --do_test true")
    elif not args.multitask_config and not args.train_filelist:
        raise UsageError("--train_filelist is required (or --multitask_config for ERNIE 2.0)")
    check_files(args, "ernie_config_path", "vocab_path", "train_filelist", "valid_filelist",
                "test_filelist", "init_checkpoint", "multitask_config")
    # the model folder replaces --export_model_dir through a sibling: its parent is written too
    if not args.do_test:
        check_output_dir("--checkpoints", args.checkpoints)
        if args.export_model_dir:
            check_output_dir("--export_model_dir", args.export_model_dir)
            check_output_dir("--export_model_dir",
                             os.path.dirname(os.path.normpath(args.export_model_dir))
                             or os.curdir)
            # the export replaces the folder whole: nothing else may live in it
            check_model_dir_replaceable("--export_model_dir", args.export_model_dir)
            export = os.path.realpath(args.export_model_dir)
            checkpoints = os.path.realpath(args.checkpoints)
            if checkpoints == export or checkpoints.startswith(export + os.sep):
                raise UsageError("--checkpoints %s is inside --export_model_dir %s, which the "
                                 "export replaces whole; give them separate folders"
                                 % (args.checkpoints, args.export_model_dir))


def synchronized(batches, runtime):
    """Stop every trainer as soon as one of them runs out of data (file-level sharding can
    give trainers different numbers of batches; DataParallel needs the same on all)."""
    if runtime.num_trainers <= 1:
        yield from batches
        return
    batches = iter(batches)
    while True:
        batch = next(batches, None)
        flag = paddle.to_tensor([0 if batch is None else 1], dtype="int32")
        paddle.distributed.all_reduce(flag, op=paddle.distributed.ReduceOp.MIN)
        if int(flag.numpy()[0]) == 0:
            return
        yield batch


def replay(batches, count):
    """Take the first `count` batches of the iterator `batches` without training on them: a
    resumed run's stream then goes on where the stopped run's did.

    The pretraining readers cannot start in the middle of their stream: they read gz files
    through shuffle buffers and draw masks and negative samples from random states that the
    batches before advanced. Making the same batches again from the same seeds is the one way
    to the same place with the same state; it costs no training step."""
    next(itertools.islice(batches, count, count), None)


def export_model_dir(model, args, config):
    """--export_model_dir: params/ + vocab.txt + ernie_config.json (what a 2019 release holds),
    written to a temporary folder and renamed into place (replacing an earlier export)."""
    target = args.export_model_dir
    check_model_dir_replaceable("--export_model_dir", target)  # again: the run took a while
    with atomic_dir(target) as tmp:
        write_legacy_dir(model_params(model), os.path.join(tmp, "params"))
        shutil.copyfile(args.vocab_path, os.path.join(tmp, "vocab.txt"))
        with open(os.path.join(tmp, "ernie_config.json"), "w", encoding="utf-8") as f:
            json.dump(dict(config), f, indent=1, sort_keys=True)
    print("model folder (params/, vocab.txt, ernie_config.json) written to %s" % target)

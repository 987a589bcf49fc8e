"""ERNIE pretraining: ERNIE 1.0 masked LM (knowledge masking) + next sentence, or the ERNIE 2.0
continual multi-task framework.

    python train.py --train_filelist data/train_filelist --valid_filelist data/valid_filelist \
        --vocab_path config/vocab.txt --ernie_config_path config/ernie_config.json \
        --in_tokens true --batch_size 8192 --max_seq_len 512 --num_train_steps 1000000 ...
    python train.py --multitask_config config/ernie2_multitask_demo.json ...   (ERNIE 2.0)
    python train.py --do_test true --test_filelist data/test_filelist --init_checkpoint CKPT

Log lines (2019):
    epoch: %d, progress: %d/%d, step: %d, loss: %f, ppl: %f, next_sent_acc: %f, speed: %f steps/s, file: %s, mask_type: %s
    [validation_set] epoch: %d, step: %d, loss: %f, global ppl: %f, batch-averged ppl: %f, next_sent_acc: %f, speed: %f steps/s
    [test_set] loss: %f, global ppl: %f, next_sent_acc: %f, speed: %f steps/s
The loss, ppl and accuracy of a train line are means over the steps since the previous line.
Checkpoints go to <checkpoints>/step_N every --save_steps and after the last step (2019 saved
no final checkpoint).
"""
import itertools
import math
import os
import time

import numpy as np

from utils import paddle_env

paddle_env.apply()  # before Paddle loads: it reads these settings once

from utils.errors import DataError, UsageError, run_cli

import paddle
import paddle.nn.functional as F
from paddle.static import InputSpec

from model.ernie import ErnieConfig, ErnieForPretraining
from reader.pretraining import ErnieDataReader
from utils.amp import amp_from_args
from utils.args import print_arguments
from utils.checkpoint import init_checkpoint
from utils.fileio import check_output_dir
from utils.optimization import make_optimizer
from utils.pretrain_args import build_parser
from model.ernie import encoder_input_spec
from utils.args import check_files, check_learning_rate, check_positive, check_seed
from utils.checkpoint import (check_checkpoint_folder, check_resumed_run, resolve_resume, restore_training)
from utils.loop import train_loop
from utils.runtime import Runtime, compile_model, set_seed


# ----------------------------------------------------------------------------------------------
# checks

def check_args(args, config=None):
    check_positive(args, "batch_size", "epoch", "max_seq_len", "skip_steps", "save_steps",
                   "validation_steps", "num_train_steps")
    if args.warmup_steps < 0:
        raise UsageError("--warmup_steps must not be negative, got %d" % args.warmup_steps)
    check_learning_rate(args)
    check_seed(args)
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
    # where training writes, checked before any work starts (creating nothing); the model
    # folder replaces --export_model_dir through a sibling, so its parent is written too
    if not args.do_test:
        check_output_dir("--checkpoints", args.checkpoints)
        if args.export_model_dir:
            check_output_dir("--export_model_dir", args.export_model_dir)
            check_output_dir("--export_model_dir",
                             os.path.dirname(os.path.normpath(args.export_model_dir))
                             or os.curdir)


def check_config(args, config, vocab_size):
    if args.max_seq_len > config["max_position_embeddings"]:
        raise UsageError("--max_seq_len %d is longer than max_position_embeddings %d in %s"
                         % (args.max_seq_len, config["max_position_embeddings"],
                            args.ernie_config_path))
    if vocab_size > config["vocab_size"]:
        raise UsageError("%s has ids up to %d but vocab_size in %s is %d"
                         % (args.vocab_path, vocab_size - 1, args.ernie_config_path,
                            config["vocab_size"]))


# ----------------------------------------------------------------------------------------------
# ERNIE 1.0: masked LM + next sentence

def pretraining_input_spec(config):
    """Encoder inputs [B, L], then mask_pos [M], then task ids when the config uses them."""
    spec = encoder_input_spec(config)
    return spec[:4] + [InputSpec([None], "int64", name="mask_pos")] + spec[4:]


def pretraining_feed(batch, config):
    names = ["src_ids", "sent_ids", "pos_ids", "input_mask", "mask_pos"]
    if config.use_task_id:
        names.append("task_ids")
    return [paddle.to_tensor(batch[name]) for name in names]


def pretraining_losses(forward, batch, config, runtime=None):
    """(mean MLM loss, mean NSP loss, NSP accuracy) of one batch, as tensors (train_loop runs
    it under the mixed-precision autocast of --use_fp16/--use_bf16; evaluation in fp32).

    With several trainers, each loss is a sum over the trainer's tokens (sentences) divided
    by the mean count over all trainers, so the averaged gradient is that of the mean over
    everything the trainers saw together: N trainers with batch b train exactly as one with
    batch N*b, although token-budget batches hold different numbers of masked tokens. The
    returned values are then the trainer's share; `local_mlm` is its own mean, for the log.
    """
    mlm_logits, nsp_logits = forward(*pretraining_feed(batch, config))
    labels = paddle.to_tensor(batch["labels"])
    nsp_logits = nsp_logits.astype("float32")
    mlm_sum = F.cross_entropy(mlm_logits.astype("float32"),
                              paddle.to_tensor(batch["mask_label"]), reduction="sum")
    nsp_sum = F.cross_entropy(nsp_logits, labels, reduction="sum")
    counts = np.array([len(batch["mask_label"]), len(batch["labels"])], "float32")
    per_trainer = counts
    if runtime is not None and runtime.num_trainers > 1:
        total = paddle.to_tensor(counts)
        paddle.distributed.all_reduce(total)
        per_trainer = total.numpy() / runtime.num_trainers
    acc = (paddle.argmax(nsp_logits, axis=-1) == labels).astype("float32").mean()
    return (mlm_sum / float(per_trainer[0]), nsp_sum / float(per_trainer[1]), acc,
            float(mlm_sum) / counts[0])


def evaluate(model, forward, batches, config, skip_steps=None):
    """Means over a pass: (loss, global ppl, batch-averaged ppl, next_sent_acc, steps, secs)."""
    model.eval()
    start, steps = time.time(), 0
    sums = {"loss": 0.0, "lm": 0.0, "ppl": 0.0, "acc": 0.0}
    with paddle.no_grad():
        for batch in batches:
            mlm, nsp, acc, _ = pretraining_losses(forward, batch, config)
            lm = float(mlm)
            sums["loss"] += lm + float(nsp)
            sums["lm"] += lm
            sums["ppl"] += math.exp(min(lm, 700))
            sums["acc"] += float(acc)
            steps += 1
            if skip_steps and steps % skip_steps == 0:
                print("[test_set] steps: %d" % steps, flush=True)
    model.train()
    if not steps:
        raise DataError("no batch to evaluate (every line skipped or too long?)")
    mean = {k: v / steps for k, v in sums.items()}
    return (mean["loss"], math.exp(min(mean["lm"], 700)), mean["ppl"], mean["acc"], steps,
            time.time() - start)


def make_reader(args, config, filelist, is_test, runtime=None, epoch=None):
    return ErnieDataReader(
        filelist, args.vocab_path, batch_size=args.batch_size, max_seq_len=args.max_seq_len,
        shuffle_files=not is_test, epoch=args.epoch if epoch is None else epoch,
        voc_size=config["vocab_size"], is_test=is_test,
        generate_neg_sample=args.generate_neg_sample, in_tokens=args.in_tokens,
        random_seed=args.random_seed, strict_data=args.strict_data,
        trainer_id=runtime.trainer_id if runtime else 0,
        num_trainers=runtime.num_trainers if runtime else 1,
        sent_types=config.sent_types, max_position=config["max_position_embeddings"])


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


def export_model_dir(model, args, config):
    """--export_model_dir: params/ + vocab.txt + ernie_config.json (what a 2019 release holds),
    written to a temporary folder and renamed into place."""
    import json
    import shutil
    from utils.checkpoint import model_params, write_legacy_dir
    target = args.export_model_dir
    tmp = target.rstrip("/") + ".tmp-%d" % os.getpid()
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    write_legacy_dir(model_params(model), os.path.join(tmp, "params"))
    shutil.copyfile(args.vocab_path, os.path.join(tmp, "vocab.txt"))
    with open(os.path.join(tmp, "ernie_config.json"), "w", encoding="utf-8") as f:
        json.dump(dict(config), f, indent=1, sort_keys=True)
    if os.path.isdir(target):
        shutil.rmtree(target)
    os.replace(tmp, target)
    print("model folder (params/, vocab.txt, ernie_config.json) written to %s" % target)


def build_model(args, config):
    model = ErnieForPretraining(config, weight_sharing=args.weight_sharing)
    if args.init_checkpoint:
        init_checkpoint(model, args.init_checkpoint)
    return model


class Positions(object):
    """Counts the batches a trainer takes (and those of the current epoch) for the
    checkpoint's data position; `skip` replays the first n without training on them."""

    def __init__(self, reader):
        self.reader, self.total, self.in_epoch, self.epoch = reader, 0, 0, None

    def count(self, batches, skip=0):
        for batch in batches:
            if self.reader.current_epoch != self.epoch:
                self.epoch, self.in_epoch = self.reader.current_epoch, 0
            self.total += 1
            self.in_epoch += 1
            if self.total > skip:
                yield batch

    @property
    def position(self):
        return {"epoch": self.reader.current_epoch, "batch": self.in_epoch,
                "batches": self.total}


def train(args, config, runtime):
    print("pretraining start")
    config.print_config()
    reader = make_reader(args, config, args.train_filelist, False, runtime)
    check_config(args, config, reader.vocab_size)
    # both file lists must hold a usable line before anything is built or written
    reader.check_usable("--train_filelist")
    valid_reader = None
    if args.valid_filelist:
        valid_reader = make_reader(args, config, args.valid_filelist, True)
        valid_reader.check_usable("--valid_filelist")
    model = build_model(args, config)
    forward = compile_model(model, args.to_static, pretraining_input_spec(config))
    train_forward = runtime.wrap(forward)
    optimizer, lr = make_optimizer(model.parameters(), args.learning_rate, args.warmup_steps,
                                   args.num_train_steps, args.weight_decay, args.lr_scheduler)
    # what the data stream depends on: a checkpoint of another stream restores parameters only
    run_identity = {"train_filelist": os.path.abspath(args.train_filelist),
                    "batch_size": args.batch_size, "in_tokens": args.in_tokens,
                    "max_seq_len": args.max_seq_len, "random_seed": args.random_seed,
                    "generate_neg_sample": args.generate_neg_sample,
                    "num_trainers": runtime.num_trainers}
    # and the learning-rate plan: with it, the identity --resume auto and the --checkpoints
    # folder require (an explicit --init_checkpoint over the same data may change the plan;
    # --epoch only bounds the stream, whose batches do not depend on it)
    identity = dict(run_identity, num_train_steps=args.num_train_steps,
                    warmup_steps=args.warmup_steps, learning_rate=args.learning_rate,
                    lr_scheduler=args.lr_scheduler, weight_decay=args.weight_decay)
    check_resumed_run(args, identity)
    resumed = (restore_training(args.init_checkpoint, optimizer, lr, run_identity)
               if args.init_checkpoint else None)
    start_step = resumed["step"] if resumed else 0
    check_checkpoint_folder(args, identity, start_step)
    print("Device count: %d" % runtime.num_trainers)
    print("args.is_distributed: %s" % (runtime.num_trainers > 1))
    print("Num train steps: %d, warmup steps: %d" % (args.num_train_steps, args.warmup_steps))

    def loss_and_stats(batch):
        mlm, nsp, acc, lm = pretraining_losses(train_forward, batch, config, runtime)
        return mlm + nsp, {"lm_loss": lm, "ppl": math.exp(min(lm, 700)), "acc": float(acc)}

    def log_line(steps, means, speed):
        return ("current learning_rate:%f\n"
                "epoch: %d, progress: %d/%d, step: %d, loss: %f, ppl: %f, next_sent_acc: %f, "
                "speed: %f steps/s, file: %s, mask_type: %s"
                % (means["learning_rate"], reader.current_epoch, reader.current_file_index,
                   reader.total_file, steps, means["loss"], means["ppl"], means["acc"], speed,
                   reader.current_file, reader.mask_type))

    validate = None
    if valid_reader is not None:

        def validate(steps):
            if not runtime.is_main:
                return
            loss, gppl, bppl, acc, n, secs = evaluate(model, forward,
                                                      valid_reader.data_generator()(), config)
            print("[validation_set] epoch: %d, step: %d, loss: %f, global ppl: %f, "
                  "batch-averged ppl: %f, next_sent_acc: %f, speed: %f steps/s"
                  % (reader.current_epoch, steps, loss, gppl, bppl, acc, n / max(secs, 1e-9)),
                  flush=True)

    positions = Positions(reader)
    # our checkpoints replay the batches already taken (the step count, unless the run began
    # at a 2019 checkpoint); a 2019 one saved no data position: the data starts from the
    # beginning while the step count continues, so the run still stops at --num_train_steps
    replay = resumed["data_position"]["batches"] if resumed and resumed["data_position"] else 0
    if replay:
        print("resuming: replaying the %d batches already trained on (same seeds, same order)"
              % replay)
    batches = positions.count(reader.data_generator()(), skip=replay)
    batches = itertools.islice(synchronized(batches, runtime),
                               max(0, args.num_train_steps - start_step))
    steps = train_loop(model, optimizer, lr, batches, loss_and_stats, args, runtime, log_line,
                       validate, start_step=start_step,
                       train_state=lambda: dict(identity,
                                                data_position=positions.position),
                       amp=amp_from_args(args, runtime))
    if steps == 0:
        # usable lines, but every batch was dropped: nothing was selected for prediction
        raise DataError("%s: no training batch: no token of the usable lines of --train_filelist "
                        "was selected for masking (%d batches without a masked token); are "
                        "the samples only [CLS]/[SEP]?"
                        % (args.train_filelist, reader.stats.get("batches_without_mask", 0)))
    if args.export_model_dir and runtime.is_main:
        export_model_dir(model, args, config)
    if reader.stats.get("malformed"):
        print("WARNING: %d malformed lines were skipped" % reader.stats["malformed"])
    if steps > start_step:
        print("pretraining finished after %d steps; checkpoint %s/step_%d"
              % (steps, args.checkpoints, steps))
    else:   # resumed at --num_train_steps already: no step taken, nothing saved
        print("pretraining finished after %d steps (none taken: --num_train_steps %d reached); "
              "checkpoint %s" % (steps, args.num_train_steps, args.init_checkpoint))
    return steps


def test(args, config, runtime):
    print("test begin")
    reader = make_reader(args, config, args.test_filelist, True)
    check_config(args, config, reader.vocab_size)
    reader.check_usable("--test_filelist")
    model = build_model(args, config)
    forward = compile_model(model, args.to_static, pretraining_input_spec(config))
    loss, gppl, _, acc, n, secs = evaluate(model, forward, reader.data_generator()(), config,
                                           skip_steps=args.skip_steps)
    print("[test_set] loss: %f, global ppl: %f, next_sent_acc: %f, speed: %f steps/s"
          % (loss, gppl, acc, n / max(secs, 1e-9)), flush=True)
    return loss, gppl, acc


def main(argv):
    args = build_parser(__doc__.splitlines()[0]).parse_args(argv)
    print_arguments(args)
    check_args(args)
    runtime = Runtime(args.use_cuda)
    set_seed(args.random_seed)
    config = ErnieConfig(args.ernie_config_path)
    if args.resume and args.do_test:
        raise UsageError("--resume auto continues a pretraining run; with --do_test give "
                         "--init_checkpoint instead")
    resolve_resume(args)
    if args.do_test:
        test(args, config, runtime)
    elif args.multitask_config:
        from model.multitask import train_multitask
        train_multitask(args, config, runtime)
    else:
        train(args, config, runtime)
    return 0


if __name__ == "__main__":
    run_cli(main)

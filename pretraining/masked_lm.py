"""ERNIE 1.0 pretraining: masked LM with knowledge masking + next sentence prediction, and the
evaluation of a checkpoint on a test file list (train.py without --multitask_config).

Log lines (2019; each one line, wrapped here):
    epoch: %d, progress: %d/%d, step: %d, loss: %f, ppl: %f, next_sent_acc: %f,
        speed: %f steps/s, file: %s, mask_type: %s
    [validation_set] epoch: %d, step: %d, loss: %f, global ppl: %f, batch-averged ppl: %f,
        next_sent_acc: %f, speed: %f steps/s
    [test_set] loss: %f, global ppl: %f, next_sent_acc: %f, speed: %f steps/s
The loss, ppl and accuracy of a train line are means over the steps since the previous line.
Checkpoints go to <checkpoints>/step_N every --save_steps and after the last step (2019 saved
no final checkpoint); with --save_best, <checkpoints>/best after each validation whose loss is
the lowest so far.
"""
import itertools
import math
import os
import time

import numpy as np
import paddle
import paddle.nn.functional as F

from model.ernie import (
    ErnieForPretraining,
    check_against_config,
    encoder_input_names,
    feed,
    input_spec,
)
from pretraining.runner import export_model_dir, replay, synchronized
from reader.pretraining import ErnieDataReader
from utils.amp import amp_from_args
from utils.checkpoint import BestCheckpoint, init_checkpoint
from utils.errors import DataError
from utils.loop import eval_mode, save_or_stop, train_loop
from utils.optimization import make_optimizer
from utils.resume import check_checkpoint_folder, check_resumed_run, restore_training, saved_best
from utils.runtime import compile_model


def input_names(config):
    """What ErnieForPretraining takes, in order: the encoder's [B, L] inputs but task ids,
    mask_pos [M], then task ids when the config uses them."""
    names = encoder_input_names(config)
    return names[:4] + ("mask_pos",) + names[4:]


def losses(forward, batch, config, runtime=None):
    """(mean MLM loss, mean NSP loss, NSP accuracy) of one batch, as tensors, and the
    trainer's own (mean MLM loss, mean NSP loss) as floats (train_loop runs it under the
    mixed-precision autocast of --use_fp16/--use_bf16; evaluation in fp32).

    With several trainers, each loss is a sum over the trainer's tokens (sentences) divided
    by the mean count over all trainers, so the averaged gradient is that of the mean over
    everything the trainers saw together: N trainers with batch b train exactly as one with
    batch N*b, although token-budget batches hold different numbers of masked tokens. The
    returned tensors are then the trainer's share; the floats are its own means, for the log.
    """
    mlm_logits, nsp_logits = forward(*feed(batch, input_names(config)))
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
            (float(mlm_sum) / counts[0], float(nsp_sum) / counts[1]))


def evaluate(model, forward, batches, config, skip_steps=None):
    """Means over a pass: (loss, global ppl, batch-averaged ppl, next_sent_acc, steps, secs)."""
    start, steps = time.time(), 0
    sums = {"loss": 0.0, "lm": 0.0, "ppl": 0.0, "acc": 0.0}
    with eval_mode(model), paddle.no_grad():
        for batch in batches:
            mlm, nsp, acc, _ = losses(forward, batch, config)
            lm = float(mlm)
            sums["loss"] += lm + float(nsp)
            sums["lm"] += lm
            sums["ppl"] += math.exp(min(lm, 700))
            sums["acc"] += float(acc)
            steps += 1
            if skip_steps and steps % skip_steps == 0:
                print("[test_set] steps: %d" % steps, flush=True)
    if not steps:
        raise DataError("no batch to evaluate (every line skipped or too long?)")
    mean = {k: v / steps for k, v in sums.items()}
    return (mean["loss"], math.exp(min(mean["lm"], 700)), mean["ppl"], mean["acc"], steps,
            time.time() - start)


def make_reader(args, config, filelist, is_test, runtime=None):
    return ErnieDataReader(
        filelist, args.vocab_path, batch_size=args.batch_size, max_seq_len=args.max_seq_len,
        shuffle_files=not is_test, epoch=args.epoch, voc_size=config["vocab_size"],
        is_test=is_test, generate_neg_sample=args.generate_neg_sample,
        in_tokens=args.in_tokens, random_seed=args.random_seed, strict_data=args.strict_data,
        trainer_id=runtime.trainer_id if runtime else 0,
        num_trainers=runtime.num_trainers if runtime else 1,
        sent_types=config.sent_types, max_position=config["max_position_embeddings"])


def build_model(args, config):
    model = ErnieForPretraining(config, weight_sharing=args.weight_sharing)
    if args.init_checkpoint:
        init_checkpoint(model, args.init_checkpoint, training=False if args.do_test else None)
    return model


class Positions(object):
    """Counts the batches a trainer takes, in all and in the reader's current epoch: the
    data position a checkpoint records (`position`)."""

    def __init__(self, reader):
        self.reader, self.total, self.in_epoch, self.epoch = reader, 0, 0, None

    def count(self, batches):
        for batch in batches:
            if self.reader.current_epoch != self.epoch:
                self.epoch, self.in_epoch = self.reader.current_epoch, 0
            self.total += 1
            self.in_epoch += 1
            yield batch

    @property
    def position(self):
        return {"epoch": self.reader.current_epoch, "batch": self.in_epoch,
                "batches": self.total}


def train(args, config, runtime):
    """Pretrain until --num_train_steps (or the data ends); returns the step count reached."""
    print("pretraining start")
    config.print_config()
    reader = make_reader(args, config, args.train_filelist, False, runtime)
    check_against_config(args, config, reader.vocab)
    # both file lists must hold a usable line before anything is built or written
    reader.check_usable("--train_filelist")
    valid_reader = None
    if args.valid_filelist:
        valid_reader = make_reader(args, config, args.valid_filelist, True)
        valid_reader.check_usable("--valid_filelist")
    model = build_model(args, config)
    forward = compile_model(model, args.to_static, input_spec(input_names(config)))
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
        mlm, nsp, acc, (lm, own_nsp) = losses(train_forward, batch, config, runtime)
        # the log's loss is this trainer's own mean (the tensor is its share of the sum)
        return mlm + nsp, {"loss": lm + own_nsp, "lm_loss": lm,
                           "ppl": math.exp(min(lm, 700)), "acc": float(acc)}

    def log_line(steps, means, speed):
        return ("current learning_rate:%f\n"
                "epoch: %d, progress: %d/%d, step: %d, loss: %f, ppl: %f, next_sent_acc: %f, "
                "speed: %f steps/s, file: %s, mask_type: %s"
                % (means["learning_rate"], reader.current_epoch, reader.current_file_index,
                   reader.total_file, steps, means["loss"], means["ppl"], means["acc"], speed,
                   reader.current_file, reader.mask_type))

    positions = Positions(reader)

    def train_state():
        return dict(identity, data_position=positions.position)

    best = None
    if args.save_best:      # the lowest validation loss
        best = BestCheckpoint(args.checkpoints, "loss", lower_is_better=True,
                              label="validation")
        if resumed and resumed["data_position"] is not None:
            best.restore(saved_best(args.checkpoints, identity))

    def validate(steps):
        if not runtime.is_main:
            return
        loss, gppl, bppl, acc, n, secs = evaluate(model, forward,
                                                  valid_reader.data_generator()(), config)
        print("[validation_set] epoch: %d, step: %d, loss: %f, global ppl: %f, "
              "batch-averged ppl: %f, next_sent_acc: %f, speed: %f steps/s"
              % (reader.current_epoch, steps, loss, gppl, bppl, acc, n / max(secs, 1e-9)),
              flush=True)
        if best is not None:
            best.offer(steps, loss, lambda path, record: save_or_stop(
                model, optimizer, path, dict(train_state(), step=steps, best=record)))
    batches = positions.count(reader.data_generator()())
    # our checkpoints record the batches already taken (the step count, unless the run began
    # at a 2019 checkpoint); a 2019 one has no data position: the data starts from the
    # beginning while the step count continues, so the run still stops at --num_train_steps
    taken = resumed["data_position"]["batches"] if resumed and resumed["data_position"] else 0
    if taken:
        print("resuming: replaying the %d batches already trained on (same seeds, same order)"
              % taken)
        replay(batches, taken)
    batches = itertools.islice(synchronized(batches, runtime),
                               max(0, args.num_train_steps - start_step))
    steps = train_loop(model, optimizer, lr, batches, loss_and_stats, args, runtime, log_line,
                       validate if valid_reader is not None else None, start_step=start_step,
                       train_state=train_state,
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
    if best is not None and runtime.is_main:
        print(best.summary(), flush=True)
    return steps


def test(args, config, runtime):
    """Evaluate --init_checkpoint on --test_filelist; returns (loss, global ppl, accuracy)."""
    print("test begin")
    reader = make_reader(args, config, args.test_filelist, True)
    check_against_config(args, config, reader.vocab)
    reader.check_usable("--test_filelist")
    model = build_model(args, config)
    forward = compile_model(model, args.to_static, input_spec(input_names(config)))
    loss, gppl, _, acc, n, secs = evaluate(model, forward, reader.data_generator()(), config,
                                           skip_steps=args.skip_steps)
    print("[test_set] loss: %f, global ppl: %f, next_sent_acc: %f, speed: %f steps/s"
          % (loss, gppl, acc, n / max(secs, 1e-9)), flush=True)
    return loss, gppl, acc


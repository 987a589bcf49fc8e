"""Fine-tune ERNIE on sentence (pair) classification or regression, evaluate, predict.

    python run_classifier.py --do_train true --train_set train.tsv --dev_set dev.tsv \
        --vocab_path vocab.txt --ernie_config_path ernie_config.json \
        --init_pretraining_params params --num_labels 2 ...
"""
import os
import time

from utils import paddle_env

paddle_env.apply()  # before Paddle loads: it reads these settings once

from utils.errors import DataError, UsageError, run_cli

from finetune import classifier
from finetune.metrics import METRIC_CHOICES
from model.ernie import ErnieConfig, encoder_input_spec
from reader.task_reader import ClassifyReader, check_label_map_ids
from utils.amp import amp_from_args
from utils.args import print_arguments
from utils.fileio import check_output_file
from utils.finetune_args import build_parser
from utils.progress import progress
from finetune.runner import (check_against_config, check_finetune_args, check_finetune_outputs, prepare_training, test_outputs)
from utils.checkpoint import init_model_params, resolve_resume
from utils.loop import print_ce_kpis, train_loop
from utils.runtime import Runtime, compile_model, set_seed


def check_args(args):
    check_finetune_args(args, positive=("num_labels",),
                        files=("diagnostic", "label_map_config"))
    if args.is_classify == args.is_regression:
        raise UsageError("exactly one of --is_classify and --is_regression must be true")
    if args.metric not in METRIC_CHOICES:
        raise UsageError("--metric %r is not one of: %s"
                         % (args.metric, ", ".join(METRIC_CHOICES)))
    check_outputs(args)


def check_outputs(args):
    """Every location the run will write is checked before any work starts (creating
    nothing): --checkpoints, the --test_save prefixes, the diagnostic predictions."""
    check_finetune_outputs(args)
    if args.diagnostic:
        check_output_file("--diagnostic_save", args.diagnostic_save or args.diagnostic + ".pred")


def check_label_ids(records, path, num_labels):
    """Training and dev labels must index the --num_labels outputs (the loss needs them; test
    sets may carry the 2019 dummy label -1). Record i is line i + 2 of its file: read_tsv
    turns every line after the header into a row or fails."""
    for i, record in enumerate(records):
        if not 0 <= record.label < num_labels:
            raise DataError("%s:%d: label id %d is outside 0..%d (--num_labels %d)"
                            % (path, i + 2, record.label, num_labels - 1, num_labels))


def main(argv):
    args = build_parser(__doc__.splitlines()[0]).parse_args(argv)
    print_arguments(args)
    resolve_resume(args)
    check_args(args)
    runtime = Runtime(args.use_cuda)
    if args.use_visualdl:
        runtime.open_visualdl(os.path.join(args.checkpoints, "visualdl"))
    set_seed(args.random_seed)

    config = ErnieConfig(args.ernie_config_path)
    config.print_config()
    reader = ClassifyReader(
        vocab_path=args.vocab_path, label_map_config=args.label_map_config,
        max_seq_len=args.max_seq_len, do_lower_case=args.do_lower_case,
        in_tokens=args.in_tokens, random_seed=args.random_seed, tokenizer=args.tokenizer,
        is_classify=args.is_classify, is_regression=args.is_regression, for_cn=args.for_cn,
        task_id=args.task_id, sp_model=args.sentence_piece_model)
    check_against_config(args, config, reader.tokenizer.vocab)
    if reader.label_map is not None and not args.is_regression:
        check_label_map_ids(reader.label_map, args.label_map_config, args.num_labels)

    # read (and check) every input file before any work starts; records are cached
    for flag, paths in (("train_set", args.train_set if args.do_train else None),
                        ("dev_set", args.dev_set if args.do_val else None),
                        ("test_set", args.test_set if args.do_test else None),
                        ("diagnostic", args.diagnostic)):
        for path in (paths.split(",") if paths else []):
            if not reader.records(path):
                raise DataError("%s: no examples after the header line (--%s)" % (path, flag))
            if args.is_classify and flag in ("train_set", "dev_set"):
                check_label_ids(reader.records(path), path, args.num_labels)

    model = classifier.ErnieClassifier(config, args.num_labels, args.is_regression)
    init_model_params(model, args, training=args.do_train)
    forward = compile_model(model, args.to_static, encoder_input_spec(config))
    predict_batch_size = args.predict_batch_size or args.batch_size
    state = {"epoch": 0, "steps": 0}

    def dev_batches(path):
        batches = reader.data_generator(path, predict_batch_size, epoch=1, shuffle=False)()
        return progress(batches, reader.count_batches(path, predict_batch_size),
                        os.path.basename(path))

    def evaluate_dev_sets():
        """Returns the metrics of the first dev set."""
        results = []
        for path in args.dev_set.split(","):
            print("validation result of dataset %s:" % path)
            metrics, line = classifier.evaluate(model, forward, dev_batches(path), "dev",
                                                args.metric)
            runtime.add_scalars("dev/" + os.path.basename(path), metrics, state["steps"])
            print(line + ", file: %s, epoch: %d, steps: %d" % (path, state["epoch"],
                                                                state["steps"]), flush=True)
            results.append(metrics)
        return results[0]

    def predict_test_sets():
        for path, out in test_outputs(args, state["epoch"], state["steps"]):
            classifier.write_predictions(model, forward, dev_batches(path), out)

    train_start = time.time()
    if args.do_train:
        num_examples, optimizer, lr, batches, loop_kwargs = prepare_training(
            args, runtime, reader, model.parameters())
        train_forward = runtime.wrap(forward)

        def log_line(steps, means, speed):
            state["steps"] = steps
            head = "epoch: %d, progress: %d/%d, step: %d, ave loss: %f" % (
                reader.current_epoch, reader.current_example, num_examples, steps,
                means["loss"])
            if args.is_regression:
                return head + ",  speed: %f steps/s" % speed
            return head + ", ave acc: %f, speed: %f steps/s" % (means["acc"], speed)

        def validate(steps):
            state["steps"], state["epoch"] = steps, reader.current_epoch
            if runtime.is_main and args.do_val:
                evaluate_dev_sets()
            if runtime.is_main and args.do_test:
                predict_test_sets()

        steps = train_loop(
            model, optimizer, lr, batches,
            lambda batch: classifier.loss_and_stats(model, train_forward, batch),
            args, runtime, log_line, validate, epoch_of=lambda: reader.current_epoch,
            amp=amp_from_args(args, runtime), **loop_kwargs)
        state["steps"], state["epoch"] = steps, reader.current_epoch

    train_seconds = time.time() - train_start
    if runtime.is_main:
        dev_metrics = None
        if args.do_val:
            print("Final validation result:")
            dev_metrics = evaluate_dev_sets()
        if args.do_test:
            print("Final test result:")
            predict_test_sets()
        if args.diagnostic:
            print("Final diagnostic")
            save = args.diagnostic_save or args.diagnostic + ".pred"
            classifier.write_predictions(model, forward, dev_batches(args.diagnostic), save)
            print("Done final diagnostic, saving to %s" % save)
        if args.enable_ce:
            print_ce_kpis(runtime, train_seconds, dev_metrics)
    return 0


if __name__ == "__main__":
    run_cli(main)

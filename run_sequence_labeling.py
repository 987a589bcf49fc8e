"""Fine-tune ERNIE on sequence labelling (NER), evaluate chunk F1, predict the test set.

    python run_sequence_labeling.py --do_train true --train_set msra_ner/train.tsv \
        --dev_set msra_ner/dev.tsv --test_set msra_ner/test.tsv \
        --label_map_config msra_ner/label_map.json --num_labels 7 --chunk_scheme IOB \
        --vocab_path vocab.txt --ernie_config_path ernie_config.json \
        --init_pretraining_params params ...

Data: a header `text_a<TAB>label`, then one example a line, tokens and labels each joined by
\\x02 (or by spaces in a line without \\x02). With --do_test, every evaluation of --test_set
also writes `<test_save>.<epoch>.<steps>`: the tokens joined by \\x02, a tab, the predicted
labels joined by \\x02, one per input token (long inputs are predicted whole, in windows).
"""
import os
import time

from utils import paddle_env

paddle_env.apply()  # before Paddle loads: it reads these settings once

from utils.errors import DataError, UsageError, run_cli

from finetune import sequence_label
from finetune.metrics import chunk_f1, extract_chunks
from model.ernie import ErnieConfig, encoder_input_spec
from reader.task_reader import SequenceLabelReader
from utils.amp import amp_from_args
from utils.args import print_arguments
from utils.finetune_args import build_parser
from finetune.runner import (check_against_config, check_finetune_args, check_finetune_outputs, prepare_training, test_outputs)
from utils.checkpoint import init_model_params, resolve_resume
from utils.loop import print_ce_kpis, train_loop
from utils.runtime import Runtime, compile_model, set_seed


def check_args(args):
    check_finetune_args(args, required=("label_map_config",), positive=("num_labels",),
                        files=("label_map_config",))
    check_finetune_outputs(args)


def check_label_map(reader, args):
    """--num_labels must be the size of the label map, and every label must mean something
    under --chunk_scheme (checked now, not after training)."""
    if len(reader.label_map) != args.num_labels:
        raise UsageError("%s has %d labels but --num_labels is %d"
                         % (args.label_map_config, len(reader.label_map), args.num_labels))
    for label in reader.id2label:
        try:
            extract_chunks([label], args.chunk_scheme)
        except UsageError as e:
            raise UsageError("%s: %s" % (args.label_map_config, e)) from None


def make_reader(args, config):
    reader = SequenceLabelReader(
        vocab_path=args.vocab_path, label_map_config=args.label_map_config,
        max_seq_len=args.max_seq_len, do_lower_case=args.do_lower_case,
        in_tokens=args.in_tokens, random_seed=args.random_seed, tokenizer=args.tokenizer,
        task_id=args.task_id, sp_model=args.sentence_piece_model)
    check_against_config(args, config, reader.tokenizer.vocab)
    return reader


def main(argv):
    args = build_parser(__doc__.splitlines()[0]).parse_args(argv)
    print_arguments(args)
    resolve_resume(args)
    check_args(args)
    runtime = Runtime(args.use_cuda)
    set_seed(args.random_seed)

    config = ErnieConfig(args.ernie_config_path)
    config.print_config()
    reader = make_reader(args, config)
    check_label_map(reader, args)

    # read (and check) every input file before any work starts; examples are cached
    for flag, paths in (("train_set", args.train_set if args.do_train else None),
                        ("dev_set", args.dev_set if args.do_val else None),
                        ("test_set", args.test_set if args.do_test else None)):
        for path in (paths.split(",") if paths else []):
            if not reader.examples(path):
                raise DataError("%s: no examples after the header line (--%s)" % (path, flag))

    if args.use_visualdl:  # after the input checks: bad input leaves no checkpoint dir
        runtime.open_visualdl(os.path.join(args.checkpoints, "visualdl"))
    model = sequence_label.ErnieSequenceLabeler(config, args.num_labels)
    init_model_params(model, args, training=args.do_train)
    forward = compile_model(model, args.to_static, encoder_input_spec(config))
    runner = sequence_label.EagerRunner(model, forward)
    predict_batch_size = args.predict_batch_size or args.batch_size
    state = {"epoch": 0, "steps": 0}

    def evaluate(path, phase):
        metrics, line, preds = sequence_label.evaluate(
            reader, reader.examples(path), runner, predict_batch_size, args.chunk_scheme, phase)
        runtime.add_scalars("%s/%s" % (phase, os.path.basename(path)), metrics, state["steps"])
        print(line + ", file: %s, epoch: %d, steps: %d" % (path, state["epoch"],
                                                            state["steps"]), flush=True)
        return metrics, preds

    def evaluate_dev_sets():
        """Returns the metrics of the first dev set."""
        return [evaluate(path, "dev")[0] for path in args.dev_set.split(",")][0]

    def predict_test_sets():
        for path, out in test_outputs(args, state["epoch"], state["steps"]):
            _, preds = evaluate(path, "test")
            sequence_label.write_predictions(out, reader.examples(path), preds)

    train_start = time.time()
    if args.do_train:
        num_examples, optimizer, lr, batches, loop_kwargs = prepare_training(
            args, runtime, reader, model.parameters())
        train_forward = runtime.wrap(forward)

        def log_line(steps, means, speed):
            state["steps"] = steps
            precision, recall, f1 = chunk_f1(
                means["num_label"], means["num_infer"], means["num_correct"])
            return ("epoch: %d, progress: %d/%d, step: %d, loss: %f, f1: %f, precision: %f, "
                    "recall: %f, speed: %f steps/s"
                    % (reader.current_epoch, reader.current_example, num_examples, steps,
                       means["loss"], f1, precision, recall, speed))

        def validate(steps):
            state["steps"], state["epoch"] = steps, reader.current_epoch
            if runtime.is_main and args.do_val:
                evaluate_dev_sets()
            if runtime.is_main and args.do_test:
                predict_test_sets()

        # 2019 validated sequence labelling every --validation_steps only, not at epoch ends
        steps = train_loop(
            model, optimizer, lr, batches,
            lambda batch: sequence_label.loss_and_stats(model, train_forward, batch,
                                                        reader.id2label, args.chunk_scheme,
                                                        runtime.num_trainers),
            args, runtime, log_line, validate, amp=amp_from_args(args, runtime),
            **loop_kwargs)
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
        if args.enable_ce:
            print_ce_kpis(runtime, train_seconds, dev_metrics)
    return 0


if __name__ == "__main__":
    run_cli(main)

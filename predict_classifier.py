"""Batch prediction with a fine-tuned classifier, through an exported inference program.

    python predict_classifier.py --init_checkpoint checkpoints/step_N \
        --ernie_config_path ernie_config.json --vocab_path vocab.txt \
        --predict_set test.tsv --num_labels 2 [--label_map_config label_map.json] \
        [--output_file predictions.tsv]

The checkpoint is exported once to <save_inference_model_path>/<name>_inference_model, a
model folder (serving/folder.py: model.json, model.pdiparams, the label map, ...), and run with
Paddle Inference; a later run with the same checkpoint and settings reuses it. --init_checkpoint
may also be a model folder (python -m serving.export): its config, vocabulary, label map and
tokenizer settings are used, and nothing is exported.
"""
import numpy as np

from utils import paddle_env

paddle_env.apply()  # before Paddle loads: it reads these settings once

from finetune.predict import inference_model_dir, run_in_length_order
from model.ernie import ErnieConfig, check_against_config
from reader.task_reader import ClassifyReader, check_label_map_ids
from serving.folder import ExportPlan, export_once, is_model_folder, use_folder
from serving.int8 import script_predictor
from utils import predict_args
from utils.args import (
    IS_CLASSIFY_DEFAULT,
    check_files,
    check_head_flags,
    check_positive,
    print_arguments,
    resolve_is_classify,
)
from utils.errors import DataError, UsageError, run_cli
from utils.fileio import atomic_write_text, check_output_dir, check_output_file


def build_parser():
    parser, model_g, data_g, run_g = predict_args.build_parser(__doc__.splitlines()[0])
    predict_args.add_checkpoint_flags(model_g, data_g, run_g)
    model_g.add_arg("num_labels", int, 2, "Number of classes.")
    model_g.add_arg("is_classify", bool, None,
                    "(ours) The checkpoint is a classifier (run_classifier.py's flag).",
                    default_text=IS_CLASSIFY_DEFAULT)
    model_g.add_arg("is_regression", bool, False, "(ours) The checkpoint is a regression model.")
    data_g.add_arg("predict_set", str, None, "TSV with a header: text_a [, text_b].")
    data_g.add_arg("label_map_config", str, None, "json mapping label names to ids.")
    data_g.add_arg("for_cn", bool, True, "(ours) Chinese data: remove spaces; false for English.")
    data_g.add_arg("output_file", str, None,
                   "(ours) Also write one TSV line per input: probabilities, then the label.")
    return parser


def main(argv):
    args = build_parser().parse_args(argv)
    folder = is_model_folder(args.init_checkpoint)
    if folder:  # the folder's settings replace the flags' defaults
        manifest, prefix = use_folder(args, argv, "init_checkpoint", ("classify", "regress"))
        if args.is_classify is not None and args.is_classify == args.is_regression:
            raise UsageError("--is_classify %s contradicts the model folder %s (task %s); "
                             "leave it out" % (str(args.is_classify).lower(),
                                               args.init_checkpoint, manifest["task"]))
    # the head follows --is_regression (or the folder's task) unless --is_classify is given
    resolve_is_classify(args)
    check_head_flags(args)
    print_arguments(args)
    for name in ("init_checkpoint", "ernie_config_path", "vocab_path", "predict_set"):
        if not getattr(args, name):
            raise UsageError("--%s is required" % name)
    check_files(args, "init_checkpoint", "ernie_config_path", "vocab_path", "predict_set",
                "label_map_config", "sentence_piece_model", "calibration_set")
    check_positive(args, "batch_size", "max_seq_len", "num_labels", "cpu_threads")
    if not args.do_prediction:
        return 0
    # where the run writes, before any work starts (creating nothing; a missing folder of
    # --output_file is made when it is written, as --save_inference_model_path is)
    out_dir = args.init_checkpoint if folder else inference_model_dir(args)
    if not folder:
        check_output_dir("--save_inference_model_path", out_dir)
    if args.output_file:
        check_output_file("--output_file", args.output_file)
    config = ErnieConfig(args.ernie_config_path)
    reader = ClassifyReader(
        args.vocab_path, label_map_config=args.label_map_config, max_seq_len=args.max_seq_len,
        do_lower_case=args.do_lower_case, is_inference=True, tokenizer=args.tokenizer,
        for_cn=args.for_cn, is_classify=args.is_classify, is_regression=args.is_regression,
        task_id=args.task_id if args.ernie_version == "2.0" else 0,
        sp_model=args.sentence_piece_model)
    check_against_config(args, config, reader.tokenizer.vocab)
    if reader.label_map is not None and not args.is_regression:
        check_label_map_ids(reader.label_map, args.label_map_config, args.num_labels)
    records = reader.records(args.predict_set)
    if not records:
        raise DataError("%s: no examples after the header line (--predict_set)"
                        % args.predict_set)

    if not folder:
        plan = ExportPlan(
            "regress" if args.is_regression else "classify", args.init_checkpoint,
            args.ernie_config_path, args.vocab_path, label_map_config=args.label_map_config,
            num_labels=args.num_labels, max_seq_len=args.max_seq_len,
            do_lower_case=args.do_lower_case, for_cn=args.for_cn, tokenizer=args.tokenizer,
            sentence_piece_model=args.sentence_piece_model,
            task_id=args.task_id if args.ernie_version == "2.0" else 0)
        prefix = export_once(plan, out_dir)
    print("load inference model from %s" % out_dir)
    predictor = script_predictor(args, out_dir, prefix, "regress" if args.is_regression
                                 else "classify", reader, "predict_set", lambda n: records[:n])
    probs = run_in_length_order(predictor, records, args.batch_size, reader.pad_batch,
                                lambda outputs, feed: list(outputs[0]))
    probs = np.stack(probs)

    print("-------------- prediction results --------------")
    with np.printoptions(precision=4, suppress=True):
        for i, row in enumerate(probs):
            print("example_index:%d\t%s" % (i, row))
    if args.output_file:
        names = {v: k for k, v in (reader.label_map or {}).items()}
        lines = []
        for row in probs:
            label = row[0] if args.is_regression else names.get(int(row.argmax()),
                                                                 int(row.argmax()))
            lines.append("\t".join(["%.8g" % p for p in row] + [str(label)]))
        atomic_write_text(args.output_file, "\n".join(lines) + "\n")
        print("predictions written to %s" % args.output_file)
    return 0


if __name__ == "__main__":
    run_cli(main)

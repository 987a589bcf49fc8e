"""Batch prediction with a fine-tuned sequence labeller (NER) via an exported inference program.

    python predict_sequence_labeling.py --init_checkpoint checkpoints/step_N \
        --ernie_config_path ernie_config.json --vocab_path vocab.txt \
        --label_map_config label_map.json --predict_set input.tsv \
        --max_seq_len 256 --output_file predictions.tsv

The input has a header line `text_a` (a `label` column, if present, is ignored), then one
example a line, tokens joined by \\x02 (or by spaces in a line without \\x02). The output has
one line per input line: the tokens joined by \\x02, a tab, the predicted labels joined by \\x02,
exactly one label per token. Inputs longer than --max_seq_len are predicted in overlapping
windows and stitched back, as run_sequence_labeling.py does for its test output: with the same
checkpoint, --max_seq_len and batch size both write the same predictions.

The checkpoint is exported once to <save_inference_model_path>/<name>_inference_model, a
model folder (serving/folder.py: model.json, model.pdiparams, label_map.json, ...), and run with
Paddle Inference; a later run with the same checkpoint and settings reuses it. --init_checkpoint
may also be a model folder (python -m serving.export --task tag): its config, vocabulary, label
map and tokenizer settings are used, and nothing is exported.
"""
from utils import paddle_env

paddle_env.apply()  # before Paddle loads: it reads these settings once

from finetune.predict import inference_model_dir
from finetune.sequence_label import predict_labels, write_predictions
from model.ernie import ErnieConfig, check_against_config
from reader.task_reader import SequenceLabelReader
from serving.folder import ExportPlan, export_once, is_model_folder, use_folder
from serving.int8 import script_predictor
from utils import predict_args
from utils.args import check_files, check_positive, print_arguments
from utils.errors import DataError, UsageError, run_cli
from utils.fileio import check_output_dir, check_output_file


def build_parser():
    parser, model_g, data_g, run_g = predict_args.build_parser(
        __doc__.splitlines()[0],
        max_seq_len_help="Longest window in tokens; longer inputs are predicted in windows.",
        batch_size_help="Windows per batch.")
    predict_args.add_checkpoint_flags(model_g, data_g, run_g)
    model_g.add_arg("num_labels", int, None,
                    "Number of labels (default: the size of the label map, which it must equal).")
    data_g.add_arg("predict_set", str, None, "TSV with a header: text_a.")
    data_g.add_arg("label_map_config", str, None, "json mapping label names to ids (required).")
    data_g.add_arg("output_file", str, None,
                   "(ours) Write the aligned predictions here (otherwise they are printed).")
    return parser


def main(argv):
    args = build_parser().parse_args(argv)
    folder = is_model_folder(args.init_checkpoint)
    if folder:  # the folder's settings replace the flags' defaults
        _, prefix = use_folder(args, argv, "init_checkpoint", ("tag",))
    print_arguments(args)
    for name in ("init_checkpoint", "ernie_config_path", "vocab_path", "label_map_config",
                 "predict_set"):
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
    reader = SequenceLabelReader(
        args.vocab_path, label_map_config=args.label_map_config, max_seq_len=args.max_seq_len,
        do_lower_case=args.do_lower_case, is_inference=True, tokenizer=args.tokenizer,
        task_id=args.task_id if args.ernie_version == "2.0" else 0,
        sp_model=args.sentence_piece_model)
    check_against_config(args, config, reader.tokenizer.vocab)
    num_labels = args.num_labels or len(reader.label_map)
    if num_labels != len(reader.label_map):
        raise UsageError("%s has %d labels but --num_labels is %d"
                         % (args.label_map_config, len(reader.label_map), num_labels))
    examples = reader.examples(args.predict_set)
    if not examples:
        raise DataError("%s: no examples after the header line (--predict_set)"
                        % args.predict_set)

    if not folder:
        plan = ExportPlan(
            "tag", args.init_checkpoint, args.ernie_config_path, args.vocab_path,
            label_map_config=args.label_map_config, num_labels=num_labels,
            max_seq_len=args.max_seq_len, do_lower_case=args.do_lower_case, for_cn=False,
            tokenizer=args.tokenizer, sentence_piece_model=args.sentence_piece_model,
            task_id=args.task_id if args.ernie_version == "2.0" else 0)
        prefix = export_once(plan, out_dir)
    print("load inference model from %s" % out_dir)
    predictor = script_predictor(
        args, out_dir, prefix, "tag", reader, "predict_set",
        lambda n: [r for ex in examples[:n] for _, _, r in reader.window_records(ex)])
    preds = predict_labels(reader, examples, predictor, args.batch_size)

    if args.output_file:
        write_predictions(args.output_file, examples, preds)
        print("predictions written to %s" % args.output_file)
    else:
        print("-------------- prediction results --------------")
        for i, (example, labels) in enumerate(zip(examples, preds)):
            print("example_index:%d\t%s\t%s" % (i, "\x02".join(example.tokens),
                                                 "\x02".join(labels)))
    return 0


if __name__ == "__main__":
    run_cli(main)

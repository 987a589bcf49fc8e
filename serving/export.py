"""Export a checkpoint as a self-contained model folder (see serving/folder.py).

    python -m serving.export --init_checkpoint checkpoints/step_N --task classify \
        --ernie_config_path ernie_config.json --vocab_path vocab.txt \
        [--label_map_config label_map.json] [--num_labels 2] [--max_seq_len 128] \
        [--precision int8 --calibration_set inputs.tsv] --output_dir my_model

--task: classify, regress, tag (sequence labelling), mrc (reading comprehension) or encode
(embeddings only; --init_checkpoint may then be pretraining parameters, e.g. MODEL_PATH/params).
The folder is written atomically: a failed export leaves --output_dir as it was, and one that
holds anything but a model folder's files is refused before any work. With --precision int8
the calibration set is read and checked before anything is written, and the int8 programs
are added to the folder once it is (serving/int8.py): should the calibration itself then fail,
or be interrupted, the folder stays as exported, in fp32.
"""
from serving.folder import MANIFEST, TASKS, ExportPlan, check_replaceable, read_manifest
from utils import paddle_env
from utils.args import (
    PRECISIONS,
    ArgumentGroup,
    ArgumentParser,
    check_files,
    check_positive,
    print_arguments,
)
from utils.errors import UsageError, run_cli
from utils.fileio import check_output_dir


def build_parser():
    parser = ArgumentParser(description=__doc__.splitlines()[0])
    model_g = ArgumentGroup(parser, "model", "model config and parameters.")
    model_g.add_arg("init_checkpoint", str, None,
                    "Fine-tuned checkpoint (for --task encode: any encoder parameters).")
    model_g.add_arg("task", str, None, "What the folder predicts.", choices=list(TASKS))
    model_g.add_arg("ernie_config_path", str, None, "The ernie_config.json of the model.")
    model_g.add_arg("num_labels", int, None,
                    "Number of classes (classify: default the label map's ids, else 2; tag: "
                    "the size of the label map).")
    model_g.add_arg("output_dir", str, None, "The model folder to write.")
    data_g = ArgumentGroup(parser, "data", "tokenization, as the model was trained.")
    data_g.add_arg("vocab_path", str, None, "vocab.txt of the model.")
    data_g.add_arg("label_map_config", str, None, "json mapping label names to ids.")
    data_g.add_arg("max_seq_len", int, 128, "Longest input in tokens (tag: longest window).")
    data_g.add_arg("do_lower_case", bool, True, "Lower-case and strip accents.")
    data_g.add_arg("for_cn", bool, True, "Chinese data: remove spaces (classify, regress, mrc).")
    data_g.add_arg("tokenizer", str, "FullTokenizer", "Tokenizer name.")
    data_g.add_arg("sentence_piece_model", str, None, "SentencePiece model file.")
    data_g.add_arg("task_id", int, 0, "Task id fed to an ERNIE 2.0 model (use_task_id).")
    mrc_g = ArgumentGroup(parser, "mrc", "reading comprehension (--task mrc), as run_mrc.py.")
    mrc_g.add_arg("doc_stride", int, 128, "Tokens between the starts of context windows.")
    mrc_g.add_arg("max_query_length", int, 64, "Question tokens kept.")
    mrc_g.add_arg("n_best_size", int, 20, "Candidate starts and ends considered.")
    mrc_g.add_arg("max_answer_length", int, 100, "Longest answer in tokens.")
    int8_g = ArgumentGroup(parser, "precision", "reduced precision.")
    int8_g.add_arg("precision", str, "fp32", "int8: also write int8 programs, calibrated on "
                   "--calibration_set (fp32 and bf16 need nothing at export).",
                   choices=list(PRECISIONS))
    int8_g.add_arg("calibration_set", str, None,
                   "Inputs in the task's prediction input format (mrc: a SQuAD json), the "
                   "first 300 examples of which calibrate int8.")
    return parser


def main(argv):
    # before Paddle loads (nothing above imports it): Paddle reads these settings once
    paddle_env.apply()
    args = build_parser().parse_args(argv)
    print_arguments(args)
    for name in ("init_checkpoint", "task", "ernie_config_path", "vocab_path", "output_dir"):
        if not getattr(args, name):
            raise UsageError("--%s is required" % name)
    check_files(args, "init_checkpoint", "ernie_config_path", "vocab_path", "label_map_config",
                "sentence_piece_model", "calibration_set")
    if args.precision == "int8" and not args.calibration_set:
        raise UsageError("--precision int8 needs --calibration_set (a few hundred inputs)")
    check_positive(args, "max_seq_len", "num_labels", "doc_stride", "max_query_length",
                   "n_best_size", "max_answer_length")
    check_output_dir("--output_dir", args.output_dir)
    mrc = {k: getattr(args, k) for k in ("doc_stride", "max_query_length", "n_best_size",
                                         "max_answer_length")}
    plan = ExportPlan(args.task, args.init_checkpoint, args.ernie_config_path, args.vocab_path,
                      label_map_config=args.label_map_config, num_labels=args.num_labels,
                      max_seq_len=args.max_seq_len, do_lower_case=args.do_lower_case,
                      for_cn=args.for_cn, tokenizer=args.tokenizer,
                      sentence_piece_model=args.sentence_piece_model, task_id=args.task_id,
                      mrc=mrc)
    check_replaceable(args.output_dir)
    from model.ernie import ErnieConfig, check_against_config
    from tokenization import make_tokenizer
    config = ErnieConfig(args.ernie_config_path)
    # the tokenizer loads here, so that a bad vocabulary fails before the model is built
    tokenizer = make_tokenizer(args.tokenizer, args.vocab_path, args.do_lower_case,
                               args.sentence_piece_model)
    check_against_config(args, config, tokenizer.vocab)
    if args.task == "classify" and args.label_map_config:
        from reader.task_reader import check_label_map_ids, load_label_map
        label_map = load_label_map(args.label_map_config)
        num_labels = args.num_labels or max(label_map.values()) + 1
        check_label_map_ids(label_map, args.label_map_config, num_labels)
    if args.precision == "int8":
        # read now, not after the folder is written: a bad set must leave no fp32 folder
        from serving.api import task_reader
        from serving.int8 import calibration_records, ensure_int8
        reader = task_reader(args.task, plan.manifest, plan.copies)
        records = calibration_records(args.task, reader, args.calibration_set)
    plan.write(args.output_dir)
    if args.precision == "int8":
        ensure_int8(args.output_dir, args.calibration_set, lambda: records, reader.pad_batch)
    manifest = read_manifest(args.output_dir)
    print("model folder for task %s written to %s (%s lists %d files)"
          % (manifest["task"], args.output_dir, MANIFEST, len(manifest["files"])))
    return 0


if __name__ == "__main__":
    run_cli(main)

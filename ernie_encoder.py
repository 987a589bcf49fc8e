"""Extract sentence ([CLS], pooled) and token embeddings with a pretrained ERNIE.

    python ernie_encoder.py --init_pretraining_params params --ernie_config_path cfg.json \
        --vocab_path vocab.txt --data_set input.tsv --output_dir embeddings

Writes <output_dir>/cls_emb.npy [N, H] (pooled output, one row per input line),
<output_dir>/top_layer_emb.npy [total_tokens, H] (every real token of every input, [CLS] and
[SEP] included, in input order, without padding: the inputs one after the other) and
<output_dir>/seq_lens.npy [N] int64 (the number of those tokens of each input), so that
np.split(top_layer_emb, np.cumsum(seq_lens)[:-1]) gives each input's [L_i, H] rows.

The encoder is exported once to <output_dir>/inference_model, a model folder for the task
`encode` (serving/folder.py), and runs under Paddle Inference; a later run with the same
parameters and settings reuses it. --init_pretraining_params may also be a model folder of any
task (python -m serving.export): its encoder, config, vocabulary and tokenizer settings are
used, and nothing is exported.
"""
import os
import sys

import numpy as np

from utils import paddle_env

paddle_env.apply()  # before Paddle loads: it reads these settings once

from finetune.predict import run_in_length_order
from model.ernie import ErnieConfig, check_against_config
from reader.task_reader import ExtractEmbeddingReader
from serving.folder import ExportPlan, export_once, is_model_folder, use_folder
from serving.int8 import script_predictor
from utils import predict_args
from utils.args import check_files, check_positive, print_arguments
from utils.errors import DataError, UsageError, run_cli
from utils.fileio import atomic_path, check_output_dir


def build_parser():
    parser, model_g, data_g, _ = predict_args.build_parser(
        __doc__.splitlines()[0], data_description="input.", max_seq_len=512)
    model_g.add_arg("init_pretraining_params", str, None, "Encoder parameters to use.")
    model_g.add_arg("output_dir", str, "embeddings", "Where the .npy files are written.")
    data_g.add_arg("data_set", str, None, "TSV with a header and a text_a [, text_b] column.")
    return parser


def main(argv):
    args = build_parser().parse_args(argv)
    folder = is_model_folder(args.init_pretraining_params)
    if folder:  # the folder's settings replace the flags' defaults
        _, prefix = use_folder(args, argv, "init_pretraining_params", ("encode",))
    print_arguments(args)
    for name in ("init_pretraining_params", "ernie_config_path", "vocab_path", "data_set"):
        if not getattr(args, name):
            raise UsageError("--%s is required" % name)
    check_files(args, "init_pretraining_params", "ernie_config_path", "vocab_path", "data_set",
                "sentence_piece_model", "calibration_set")
    check_positive(args, "batch_size", "max_seq_len", "cpu_threads")
    check_output_dir("--output_dir", args.output_dir)  # before any work, creating nothing
    config = ErnieConfig(args.ernie_config_path)
    reader = ExtractEmbeddingReader(args.vocab_path, max_seq_len=args.max_seq_len,
                                    do_lower_case=args.do_lower_case, tokenizer=args.tokenizer,
                                    sp_model=args.sentence_piece_model)
    check_against_config(args, config, reader.tokenizer.vocab)
    records = reader.records(args.data_set)
    if not records:
        raise DataError("%s: no examples after the header line (--data_set)" % args.data_set)
    print("Device count: 1")
    print("Total num examples: %d" % len(records))
    if reader.cut:
        print("notice: %d of %d inputs were longer than --max_seq_len %d tokens ([CLS] and [SEP] "
              "included) and were cut to it" % (reader.cut, len(records), args.max_seq_len),
              file=sys.stderr)

    if not folder:  # exporting creates --output_dir, where the .npy files go too
        plan = ExportPlan("encode", args.init_pretraining_params, args.ernie_config_path,
                          args.vocab_path, max_seq_len=args.max_seq_len,
                          do_lower_case=args.do_lower_case, for_cn=False,
                          tokenizer=args.tokenizer,
                          sentence_piece_model=args.sentence_piece_model)
        prefix = export_once(plan, os.path.join(args.output_dir, "inference_model"))
    predictor = script_predictor(args, os.path.dirname(prefix), prefix, "encode", reader,
                                 "data_set", lambda n: records[:n])

    def per_example(outputs, feed):
        seq_out, pooled = outputs
        return [(pooled[i], seq_out[i, :n]) for i, n in enumerate(feed["seq_lens"])]

    results = run_in_length_order(predictor, records, args.batch_size, reader.pad_batch,
                                  per_example)
    cls_emb = np.stack([pooled for pooled, _ in results])
    top_layer_emb = np.concatenate([tokens for _, tokens in results])
    seq_lens = np.array([len(tokens) for _, tokens in results], dtype="int64")
    for name, array in (("cls_emb.npy", cls_emb), ("top_layer_emb.npy", top_layer_emb),
                        ("seq_lens.npy", seq_lens)):
        path = os.path.join(args.output_dir, name)
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as f:
                np.save(f, array)
        print("%s: %s saved to %s" % (name, list(array.shape), path))
    return 0


if __name__ == "__main__":
    run_cli(main)

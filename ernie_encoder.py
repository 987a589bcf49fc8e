"""Extract sentence ([CLS], pooled) and token embeddings with a pretrained ERNIE.

    python ernie_encoder.py --init_pretraining_params params --ernie_config_path cfg.json \
        --vocab_path vocab.txt --data_set input.tsv --output_dir embeddings

Writes <output_dir>/cls_emb.npy [N, H] (pooled output, one row per input line) and
<output_dir>/top_layer_emb.npy [total_tokens, H] (every real token of every input, [CLS] and
[SEP] included, in input order). The encoder runs as an exported program under Paddle
Inference.
"""
import os

import numpy as np

from utils import paddle_env

paddle_env.apply()  # before Paddle loads: it reads these settings once

from utils.errors import DataError, UsageError, run_cli

from model.ernie import ErnieConfig, ErnieModel
from reader.task_reader import ExtractEmbeddingReader
from utils.args import ArgumentGroup, ArgumentParser, print_arguments
from utils.checkpoint import init_pretraining_params
from utils.fileio import atomic_path, check_output_dir
from utils.inference import Predictor, export, run_in_length_order
from finetune.runner import check_against_config
from model.ernie import encoder_input_spec
from utils.args import check_files, check_positive


def build_parser():
    parser = ArgumentParser(description=__doc__.splitlines()[0])
    model_g = ArgumentGroup(parser, "model", "model config and parameters.")
    model_g.add_arg("ernie_config_path", str, None, "The ernie_config.json of the model.")
    model_g.add_arg("init_pretraining_params", str, None, "Encoder parameters to use.")
    model_g.add_arg("output_dir", str, "embeddings", "Where the .npy files are written.")
    data_g = ArgumentGroup(parser, "data", "input.")
    data_g.add_arg("data_set", str, None, "TSV with a header and a text_a [, text_b] column.")
    data_g.add_arg("vocab_path", str, None, "vocab.txt of the model.")
    data_g.add_arg("max_seq_len", int, 512, "Longest input in tokens.")
    data_g.add_arg("batch_size", int, 32, "Examples per batch.")
    data_g.add_arg("do_lower_case", bool, True, "Lower-case and strip accents.")
    data_g.add_arg("tokenizer", str, "FullTokenizer", "Tokenizer name.")
    data_g.add_arg("sentence_piece_model", str, None, "(ours) SentencePiece model file.")
    run_g = ArgumentGroup(parser, "run_type", "where to run.")
    run_g.add_arg("use_cuda", bool, True, "Run on GPU.")
    run_g.add_arg("cpu_threads", int, None, "(ours) CPU threads (default: all cores).")
    return parser


def main(argv):
    args = build_parser().parse_args(argv)
    print_arguments(args)
    for name in ("init_pretraining_params", "ernie_config_path", "vocab_path", "data_set"):
        if not getattr(args, name):
            raise UsageError("--%s is required" % name)
    check_files(args, "init_pretraining_params", "ernie_config_path", "vocab_path", "data_set",
                "sentence_piece_model")
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

    model = ErnieModel(config)
    init_pretraining_params(model, args.init_pretraining_params)
    os.makedirs(args.output_dir, exist_ok=True)
    prefix = export(model, os.path.join(args.output_dir, "inference_model", "encoder"),
                    encoder_input_spec(config))
    predictor = Predictor(prefix, use_cuda=args.use_cuda, num_threads=args.cpu_threads)

    def per_example(outputs, feed):
        seq_out, pooled = outputs
        return [(pooled[i], seq_out[i, :n]) for i, n in enumerate(feed["seq_lens"])]

    results = run_in_length_order(predictor, records, args.batch_size, reader.pad_batch,
                                  per_example)
    cls_emb = np.stack([pooled for pooled, _ in results])
    top_layer_emb = np.concatenate([tokens for _, tokens in results])
    for name, array in (("cls_emb.npy", cls_emb), ("top_layer_emb.npy", top_layer_emb)):
        path = os.path.join(args.output_dir, name)
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as f:
                np.save(f, array)
        print("%s: %s saved to %s" % (name, list(array.shape), path))
    return 0


if __name__ == "__main__":
    run_cli(main)

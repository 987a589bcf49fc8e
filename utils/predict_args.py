"""Flags shared by predict_classifier.py, predict_sequence_labeling.py and ernie_encoder.py
(2019 names and defaults; new flags are marked as ours in their help). Each script adds the
flags only it has to the groups that build_parser returns."""
from utils.args import PRECISIONS, ArgumentGroup, ArgumentParser


def build_parser(description, data_description="input and output.", max_seq_len=128,
                 max_seq_len_help="Longest input in tokens.",
                 batch_size_help="Examples per batch."):
    """The flags every prediction script has; returns (parser, model, data, run_type group)."""
    parser = ArgumentParser(description=description)
    model_g = ArgumentGroup(parser, "model", "model config and parameters.")
    model_g.add_arg("ernie_config_path", str, None, "The ernie_config.json of the model.")
    data_g = ArgumentGroup(parser, "data", data_description)
    data_g.add_arg("vocab_path", str, None, "vocab.txt of the model.")
    data_g.add_arg("max_seq_len", int, max_seq_len, max_seq_len_help)
    data_g.add_arg("batch_size", int, 32, batch_size_help)
    data_g.add_arg("do_lower_case", bool, True, "Lower-case and strip accents.")
    data_g.add_arg("tokenizer", str, "FullTokenizer", "Tokenizer name.")
    data_g.add_arg("sentence_piece_model", str, None, "(ours) SentencePiece model file.")
    data_g.add_arg("calibration_set", str, None,
                   "(ours) --precision int8: inputs in the prediction input's format whose "
                   "first 300 examples calibrate it (default: those of the input). Saved "
                   "with the exported model and reused.")
    run_g = ArgumentGroup(parser, "run_type", "where to run.")
    run_g.add_arg("use_cuda", bool, True, "Run on GPU.")
    run_g.add_arg("cpu_threads", int, None, "(ours) CPU threads (default: all cores).")
    run_g.add_arg("precision", str, "fp32",
                  "(ours) CPU inference precision: bf16 needs avx512_bf16, int8 VNNI (else fp32, "
                  "with a notice).", choices=list(PRECISIONS))
    return parser, model_g, data_g, run_g


def add_checkpoint_flags(model_g, data_g, run_g):
    """The flags of the scripts that predict with a fine-tuned checkpoint exported to
    <save_inference_model_path> (predict_classifier.py, predict_sequence_labeling.py)."""
    model_g.add_arg("init_checkpoint", str, None, "Fine-tuned checkpoint to predict with.")
    model_g.add_arg("save_inference_model_path", str, "inference_model",
                    "Where the exported inference program is written.")
    model_g.add_arg("use_fp16", bool, False, "(accepted) fp16 inference on GPU.")
    model_g.add_arg("ernie_version", str, "1.0", "1.0 or 2.0 (2.0 feeds task ids).",
                    choices=["1.0", "2.0"])
    data_g.add_arg("task_id", int, 0, "Task id fed with --ernie_version 2.0.")
    run_g.add_arg("do_prediction", bool, True, "Predict.")

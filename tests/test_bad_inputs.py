"""Bad inputs to every entry point fail early, in one line, with the right exit code.

Each case runs an entry point's `main(argv)` under `utils.errors.run_cli`, exactly as its
`__main__` does, and checks what a user sees: exit code 2 for a usage error (flag, path, a
config or vocabulary that does not go with the others) and 1 for a data error (a file whose
content is wrong); stderr ends in one `error: ...` line naming the file (and line) or flag;
no traceback; and nothing written (every case runs in an empty working directory, where the
default checkpoint, inference-model, embedding and output paths point, and it stays empty).

Most cases run in-process (Paddle is imported once); `test_command_line` runs a few through
real subprocesses, concurrently, to prove the command-line path itself, and `--debug`.
"""
import gzip
import json
import os
import subprocess
import sys

import pytest

from ernie_testkit import (
    REPO,
    Env,
    add_classifier_head,
    bad_config,
    check_failure,
    convert_argv,
    encoder_argv,
    predict_classifier_argv,
    predict_ner_argv,
    run_classifier_argv,
    run_in_process,
    run_mrc_argv,
    run_ner_argv,
    train_argv,
    truncate_file,
)


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    return Env(tmp_path_factory.mktemp("inputs"))


# ----------------------------------------------------------------------------------------------
# the cases: (entry point, argv builder, exit code, substrings the error line must contain)

CASES = {
    # --- paths that do not exist ---
    "missing_vocab": ("run_classifier", lambda e: run_classifier_argv(
        e, vocab_path=e.root / "nope_vocab.txt"), 2, ["--vocab_path", "nope_vocab.txt"]),
    "missing_config": ("run_classifier", lambda e: run_classifier_argv(
        e, ernie_config_path=e.root / "nope.json"), 2, ["--ernie_config_path", "nope.json"]),
    "missing_train_set": ("run_classifier", lambda e: run_classifier_argv(
        e, train_set=e.root / "nope.tsv"), 2, ["--train_set", "nope.tsv"]),
    "missing_pretraining_params": ("run_classifier", lambda e: run_classifier_argv(
        e, init_pretraining_params=e.root / "nope_params"), 2,
        ["--init_pretraining_params", "nope_params"]),
    "missing_init_checkpoint_predict": ("predict_classifier", lambda e: predict_classifier_argv(
        e, init_checkpoint=e.root / "nope_ckpt"), 2, ["--init_checkpoint", "nope_ckpt"]),
    "missing_predict_set": ("predict_sequence_labeling", lambda e: predict_ner_argv(
        e, predict_set=e.root / "nope.tsv"), 2, ["--predict_set", "nope.tsv"]),
    "missing_data_set_flag": ("ernie_encoder", lambda e: encoder_argv(e, data_set=None), 2,
                              ["--data_set"]),
    "missing_label_map_flag_ner": ("run_sequence_labeling", lambda e: run_ner_argv(
        e, label_map_config=None), 2, ["--label_map_config"]),
    "missing_mrc_train_set": ("run_mrc", lambda e: run_mrc_argv(
        e, train_set=e.root / "nope.json"), 2, ["--train_set", "nope.json"]),
    "missing_filelist": ("train", lambda e: train_argv(
        e, train_filelist=e.root / "nope_filelist"), 2, ["--train_filelist", "nope_filelist"]),
    "missing_convert_src": ("convert_params", lambda e: convert_argv(
        e, str(e.root / "nope_src")), 2, ["nope_src"]),

    # --- configs ---
    "corrupt_json_config": ("run_classifier", lambda e: run_classifier_argv(
        e, ernie_config_path=e.write("corrupt.json", '{"hidden_size": 16,')), 1,
        ["corrupt.json"]),
    "config_missing_key": ("run_classifier", lambda e: run_classifier_argv(
        e, ernie_config_path=bad_config(e, "no_hidden.json",
                                        lambda c: c.pop("hidden_size"))), 1,
        ["no_hidden.json", "hidden_size"]),
    "config_dropout_not_a_number": ("predict_classifier", lambda e: predict_classifier_argv(
        e, ernie_config_path=bad_config(e, "dropout_str.json",
                                        lambda c: c.update(hidden_dropout_prob="0.1"))), 1,
        ["dropout_str.json", "hidden_dropout_prob"]),
    "config_type_vocab_size_bool": ("run_sequence_labeling", lambda e: run_ner_argv(
        e, ernie_config_path=bad_config(e, "types_bool.json",
                                        lambda c: c.update(type_vocab_size=True))), 1,
        ["types_bool.json", "type_vocab_size"]),
    "config_not_object_encoder": ("ernie_encoder", lambda e: encoder_argv(
        e, ernie_config_path=e.write("list.json", "[1, 2]")), 1, ["list.json"]),
    "config_bad_heads_train": ("train", lambda e: train_argv(
        e, ernie_config_path=bad_config(e, "heads3.json",
                                        lambda c: c.update(num_attention_heads=3))), 1,
        ["heads3.json", "num_attention_heads"]),

    # --- vocab / config / checkpoint / label map that disagree ---
    "vocab_larger_than_config": ("run_classifier", lambda e: run_classifier_argv(
        e, ernie_config_path=bad_config(e, "small_vocab.json",
                                        lambda c: c.update(vocab_size=5))), 2,
        ["vocab.txt", "vocab_size", "small_vocab.json"]),
    "vocab_larger_than_config_predict": ("predict_classifier", lambda e: predict_classifier_argv(
        e, ernie_config_path=bad_config(e, "small_vocab.json",
                                        lambda c: c.update(vocab_size=5))), 2,
        ["vocab.txt", "vocab_size"]),
    "vocab_larger_than_config_encoder": ("ernie_encoder", lambda e: encoder_argv(
        e, ernie_config_path=bad_config(e, "small_vocab.json",
                                        lambda c: c.update(vocab_size=5))), 2,
        ["vocab.txt", "vocab_size"]),
    "vocab_larger_than_config_ner_predict": ("predict_sequence_labeling",
                                             lambda e: predict_ner_argv(
        e, ernie_config_path=bad_config(e, "small_vocab.json",
                                        lambda c: c.update(vocab_size=5))), 2,
        ["vocab.txt", "vocab_size"]),
    "vocab_larger_than_config_train": ("train", lambda e: train_argv(
        e, ernie_config_path=bad_config(e, "small_vocab.json",
                                        lambda c: c.update(vocab_size=5))), 2,
        ["vocab.txt", "vocab_size"]),
    "hidden_size_mismatch": ("run_classifier", lambda e: run_classifier_argv(
        e, init_pretraining_params=e.params32), 1, ["params", "shape", "[", "32"]),
    "hidden_size_mismatch_predict": ("predict_classifier", lambda e: predict_classifier_argv(
        e, init_checkpoint=e.params32), 1, ["params", "shape"]),
    "hidden_size_mismatch_encoder": ("ernie_encoder", lambda e: encoder_argv(
        e, init_pretraining_params=e.params32), 1, ["params", "shape"]),
    "checkpoint_label_count_mismatch": ("predict_classifier", lambda e: predict_classifier_argv(
        e, init_checkpoint=e.params_copy("params_3labels", add_classifier_head(3)),
        num_labels="2"), 1, ["params_3labels", "_cls_out_w", "shape"]),
    "label_map_vs_num_labels": ("run_classifier", lambda e: run_classifier_argv(
        e, label_map_config=e.label_map3, num_labels="2"), 2,
        ["labels3.json", "--num_labels"]),
    "label_map_vs_num_labels_predict": ("predict_classifier", lambda e: predict_classifier_argv(
        e, label_map_config=e.label_map3, num_labels="2"), 2,
        ["labels3.json", "--num_labels"]),
    "label_map_vs_num_labels_ner": ("run_sequence_labeling", lambda e: run_ner_argv(
        e, num_labels="5"), 2, ["ner_labels.json", "--num_labels"]),
    "label_map_vs_num_labels_ner_predict": ("predict_sequence_labeling",
                                            lambda e: predict_ner_argv(e, num_labels="4"), 2,
                                            ["ner_labels.json", "--num_labels"]),
    "label_map_not_json": ("run_classifier", lambda e: run_classifier_argv(
        e, label_map_config=e.write("labels_bad.json", "{pos: 1")), 1, ["labels_bad.json"]),

    # --- flags ---
    "max_seq_len_over_positions": ("run_classifier", lambda e: run_classifier_argv(
        e, max_seq_len="33"), 2, ["--max_seq_len", "max_position_embeddings"]),
    "max_seq_len_over_positions_predict": ("predict_classifier",
                                           lambda e: predict_classifier_argv(
        e, max_seq_len="64"), 2, ["--max_seq_len", "max_position_embeddings"]),
    "max_seq_len_over_positions_encoder": ("ernie_encoder", lambda e: encoder_argv(
        e, max_seq_len="64"), 2, ["--max_seq_len", "max_position_embeddings"]),
    "max_seq_len_over_positions_ner": ("run_sequence_labeling", lambda e: run_ner_argv(
        e, max_seq_len="40"), 2, ["--max_seq_len", "max_position_embeddings"]),
    "max_seq_len_over_positions_mrc": ("run_mrc", lambda e: run_mrc_argv(
        e, max_seq_len="40"), 2, ["--max_seq_len", "max_position_embeddings"]),
    "max_seq_len_over_positions_train": ("train", lambda e: train_argv(
        e, max_seq_len="40"), 2, ["--max_seq_len", "max_position_embeddings"]),
    "batch_size_zero": ("run_classifier", lambda e: run_classifier_argv(e, batch_size="0"), 2,
                        ["--batch_size"]),
    "batch_size_negative": ("run_sequence_labeling", lambda e: run_ner_argv(
        e, batch_size="-3"), 2, ["--batch_size"]),
    "batch_size_zero_predict": ("predict_classifier", lambda e: predict_classifier_argv(
        e, batch_size="0"), 2, ["--batch_size"]),
    "batch_size_negative_encoder": ("ernie_encoder", lambda e: encoder_argv(
        e, batch_size="-1"), 2, ["--batch_size"]),
    "batch_size_zero_mrc": ("run_mrc", lambda e: run_mrc_argv(e, batch_size="0"), 2,
                            ["--batch_size"]),
    "batch_size_negative_train": ("train", lambda e: train_argv(e, batch_size="-2"), 2,
                                  ["--batch_size"]),
    "in_tokens_batch_below_seq_len": ("run_classifier", lambda e: run_classifier_argv(
        e, in_tokens="true", batch_size="8"), 2, ["--in_tokens", "--max_seq_len"]),
    "in_tokens_batch_small_train": ("train", lambda e: train_argv(
        e, in_tokens="true", batch_size="50"), 2, ["--batch_size", "--in_tokens"]),
    "unknown_tokenizer": ("run_classifier", lambda e: run_classifier_argv(
        e, tokenizer="WhitespaceTokenizer"), 2, ["--tokenizer", "WhitespaceTokenizer"]),
    "unknown_tokenizer_encoder": ("ernie_encoder", lambda e: encoder_argv(
        e, tokenizer="Nope"), 2, ["--tokenizer", "Nope"]),
    "unknown_metric": ("run_classifier", lambda e: run_classifier_argv(
        e, metric="f2_score", do_val="true", dev_set=e.cls_train), 2, ["--metric", "f2_score"]),
    "bad_boolean": ("run_classifier", lambda e: run_classifier_argv(e, do_train="maybe"), 2,
                    ["--do_train", "maybe"]),
    "bad_boolean_predict": ("predict_classifier", lambda e: predict_classifier_argv(
        e, use_cuda="perhaps"), 2, ["--use_cuda", "perhaps"]),
    "bad_int_flag": ("ernie_encoder", lambda e: encoder_argv(e, batch_size="many"), 2,
                     ["--batch_size", "many"]),
    "unknown_flag": ("run_sequence_labeling", lambda e: run_ner_argv(e) + ["--no_such_flag",
                                                                          "1"], 2,
                     ["--no_such_flag"]),
    "bad_choice_lr_scheduler": ("train", lambda e: train_argv(e, lr_scheduler="cosine"), 2,
                                ["--lr_scheduler", "cosine"]),
    "nothing_to_do": ("run_classifier", lambda e: run_classifier_argv(e, do_train="false"), 2,
                      ["--do_train", "--do_val", "--do_test"]),
    "epoch_zero": ("run_mrc", lambda e: run_mrc_argv(e, epoch="0"), 2, ["--epoch"]),
    "doc_stride_zero": ("run_mrc", lambda e: run_mrc_argv(e, doc_stride="0"), 2,
                        ["--doc_stride"]),

    # --- a folder where a file is meant ---
    "config_is_a_folder": ("run_classifier", lambda e: run_classifier_argv(
        e, ernie_config_path=e.root), 2, ["--ernie_config_path", "a folder, not a file"]),
    "label_map_is_a_folder": ("predict_sequence_labeling", lambda e: predict_ner_argv(
        e, label_map_config=e.root), 2, ["--label_map_config", "a folder, not a file"]),
    "mrc_config_is_a_folder": ("run_mrc", lambda e: run_mrc_argv(
        e, ernie_config_path=e.root), 2, ["--ernie_config_path", "a folder, not a file"]),

    # --- classification TSV ---
    "tsv_column_named_twice": ("run_classifier", lambda e: run_classifier_argv(
        e, train_set=e.write("twice.tsv", "text_a\ttext_a\tlabel\n好\t差\t1\n")), 1,
        ["twice.tsv:1", "'text_a' more than once"]),
    "mrr_dev_set_without_qids": ("run_classifier", lambda e: run_classifier_argv(
        e, do_val="true", metric="acc_and_f1_and_mrr",
        dev_set=e.write("noqid.tsv", "text_a\ttext_b\tlabel\tqid\n问\t答\t1\t\n")), 1,
        ["noqid.tsv:2", "needs a qid on every line"]),
    "tsv_too_few_columns": ("run_classifier", lambda e: run_classifier_argv(
        e, train_set=e.write("short.tsv", "label\ttext_a\n1\t好的\n0\n")), 1, ["short.tsv:3"]),
    "tsv_no_header": ("run_classifier", lambda e: run_classifier_argv(
        e, train_set=e.write("noheader.tsv", "1\t好的\n0\t差\n")), 1, ["noheader.tsv:1"]),
    "tsv_not_utf8": ("run_classifier", lambda e: run_classifier_argv(
        e, train_set=e.write("latin1.tsv", "label\ttext_a\n1\tcaf\u00e9\n".encode("latin-1"))),
        1, ["latin1.tsv:2", "UTF-8"]),
    "tsv_empty_file": ("run_classifier", lambda e: run_classifier_argv(
        e, train_set=e.write("empty.tsv", "")), 1, ["empty.tsv"]),
    "tsv_header_only": ("run_classifier", lambda e: run_classifier_argv(
        e, train_set=e.write("header_only.tsv", "label\ttext_a\n")), 1, ["header_only.tsv"]),
    "tsv_unknown_label": ("run_classifier", lambda e: run_classifier_argv(
        e, label_map_config=e.label_map2,
        train_set=e.write("unk_label.tsv", "label\ttext_a\npos\t好\nmeh\t差\n")), 1,
        ["unk_label.tsv:3", "meh"]),
    "tsv_non_integer_label": ("run_classifier", lambda e: run_classifier_argv(
        e, train_set=e.write("word_label.tsv", "label\ttext_a\npos\t好\n")), 1,
        ["word_label.tsv:2", "pos"]),
    "tsv_label_id_over_num_labels": ("run_classifier", lambda e: run_classifier_argv(
        e, train_set=e.write("label5.tsv", "label\ttext_a\n1\t好\n5\t差\n")), 1,
        ["label5.tsv:3", "--num_labels"]),
    "tsv_dev_label_negative": ("run_classifier", lambda e: run_classifier_argv(
        e, do_val="true", dev_set=e.write("dev_neg.tsv", "label\ttext_a\n-1\t好\n")), 1,
        ["dev_neg.tsv:2", "--num_labels"]),
    "tsv_infinite_regression": ("run_classifier", lambda e: run_classifier_argv(
        e, is_classify="false", is_regression="true",
        train_set=e.write("regr_inf.tsv", "label\ttext_a\n0.5\t好\n1e999\t差\n")), 1,
        ["regr_inf.tsv:3", "finite"]),
    "tsv_non_numeric_regression": ("run_classifier", lambda e: run_classifier_argv(
        e, is_classify="false", is_regression="true",
        train_set=e.write("regr.tsv", "label\ttext_a\n0.5\t好\nhigh\t差\n")), 1,
        ["regr.tsv:3", "high"]),
    "tsv_bad_dev_set": ("run_classifier", lambda e: run_classifier_argv(
        e, do_val="true", dev_set=e.write("dev_short.tsv", "label\ttext_a\n1\n")), 1,
        ["dev_short.tsv:2"]),
    "tsv_predict_not_utf8": ("predict_classifier", lambda e: predict_classifier_argv(
        e, predict_set=e.write("pred_bin.tsv", b"text_a\n\xff\xfe\x00\n")), 1,
        ["pred_bin.tsv:2"]),
    "tsv_predict_header_only": ("predict_classifier", lambda e: predict_classifier_argv(
        e, predict_set=e.write("pred_empty.tsv", "text_a\n")), 1, ["pred_empty.tsv"]),
    "tsv_encoder_no_text_a": ("ernie_encoder", lambda e: encoder_argv(
        e, data_set=e.write("enc_nohead.tsv", "text\n好\n")), 1, ["enc_nohead.tsv:1", "text_a"]),
    "tsv_encoder_header_only": ("ernie_encoder", lambda e: encoder_argv(
        e, data_set=e.write("enc_empty.tsv", "text_a\n")), 1, ["enc_empty.tsv"]),

    # --- vocabulary files ---
    "vocab_not_utf8": ("run_classifier", lambda e: run_classifier_argv(
        e, vocab_path=e.write("vocab_bin.txt", b"[PAD]\t0\n[CLS]\t1\n\xff\t2\n")), 1,
        ["vocab_bin.txt:3"]),
    "vocab_bad_id": ("predict_classifier", lambda e: predict_classifier_argv(
        e, vocab_path=e.write("vocab_id.txt", "[PAD]\t0\n[CLS]\tone\n")), 1, ["vocab_id.txt:2"]),
    "vocab_without_cls": ("ernie_encoder", lambda e: encoder_argv(
        e, vocab_path=e.write("vocab_nocls.txt", "[PAD]\t0\n[SEP]\t1\n")), 1,
        ["vocab_nocls.txt", "[CLS]"]),

    # --- sequence labelling (NER) ---
    "ner_count_mismatch": ("run_sequence_labeling", lambda e: run_ner_argv(
        e, train_set=e.write("ner_count.tsv", "text_a\tlabel\n好\x02的\tO\x02O\n好\x02的\tO\n")),
        1, ["ner_count.tsv:3"]),
    "ner_unknown_label": ("run_sequence_labeling", lambda e: run_ner_argv(
        e, train_set=e.write("ner_unk.tsv", "text_a\tlabel\n好\x02的\tB-LOC\x02O\n")), 1,
        ["ner_unk.tsv:2", "B-LOC"]),
    "ner_empty_line": ("run_sequence_labeling", lambda e: run_ner_argv(
        e, train_set=e.write("ner_blank.tsv", "text_a\tlabel\n好\x02的\tO\x02O\n\n好\tO\n")), 1,
        ["ner_blank.tsv:3", "empty line"]),
    "ner_label_map_without_O": ("run_sequence_labeling", lambda e: run_ner_argv(
        e, num_labels="2", label_map_config=e.write("ner_noO.json",
                                                    json.dumps({"B-PER": 0, "I-PER": 1}))),
        1, ["ner_noO.json", "O"]),
    "ner_predict_header_only": ("predict_sequence_labeling", lambda e: predict_ner_argv(
        e, predict_set=e.write("ner_pred_empty.tsv", "text_a\n")), 1, ["ner_pred_empty.tsv"]),
    "ner_predict_count_in_header": ("predict_sequence_labeling", lambda e: predict_ner_argv(
        e, predict_set=e.write("ner_pred_nohead.tsv", "好\x02的\n")), 1,
        ["ner_pred_nohead.tsv:1"]),

    # --- reading comprehension json ---
    "mrc_not_squad": ("run_mrc", lambda e: run_mrc_argv(
        e, train_set=e.write("list.json", json.dumps([{"context": "x"}]))), 1,
        ["list.json", "SQuAD"]),
    "mrc_not_json": ("run_mrc", lambda e: run_mrc_argv(
        e, train_set=e.write("broken.json", '{"data": [')), 1, ["broken.json", "json"]),
    "mrc_answer_start_mismatch": ("run_mrc", lambda e: run_mrc_argv(
        e, train_set=e.write("shifted.json", json.dumps(Env.squad(start=2)))), 1,
        ["shifted.json", "q1", "answer_start"]),
    "mrc_empty_context": ("run_mrc", lambda e: run_mrc_argv(
        e, train_set=e.write("noctx.json", json.dumps(Env.squad(context="  ")))), 1,
        ["noctx.json", "q1", "context"]),

    # --- pretraining file lists and data ---
    "filelist_missing_data_file": ("train", lambda e: train_argv(
        e, train_filelist=e.write("fl_missing", "part-0.gz\t1.1\nnope-9.gz\t1.1\n")), 1,
        ["fl_missing:2", "nope-9.gz"]),
    "filelist_not_gz": ("train", lambda e: train_argv(
        e, train_filelist=e.write("fl_txt", "part-0.txt\t1.1\n")), 1, ["fl_txt:1", ".gz"]),
    "filelist_bad_weight": ("train", lambda e: train_argv(
        e, train_filelist=e.write("fl_weight", "part-0.gz\tmuch\n")), 1,
        ["fl_weight:1", "much"]),
    "filelist_no_tab": ("train", lambda e: train_argv(
        e, train_filelist=e.write("fl_notab", "part-0.gz 1.1\n")), 1, ["fl_notab:1"]),
    "filelist_empty": ("train", lambda e: train_argv(
        e, train_filelist=e.write("fl_empty", "\n")), 1, ["fl_empty"]),
    "pretraining_malformed_line_strict": ("train", lambda e: train_argv(
        e, train_filelist=e.write("fl_bad_line", "bad-0.gz\t1.1\n")), 1, ["bad-0.gz:2"]),
    "pretraining_second_file_not_gzip": ("train", lambda e: train_argv(
        e, train_filelist=e.write("fl_second_fake", "part-0.gz\t1.1\nfake-0.gz\t1.1\n")), 1,
        ["fake-0.gz", "not a gzip file"]),
    "do_test_without_the_next_sentence_head": ("train", lambda e: train_argv(
        e, do_test="true", test_filelist=e.filelist, init_checkpoint=e.params_copy(
            "params_no_nsp", lambda d: [p.unlink() for p in d.glob("next_sent_fc*")])), 1,
        ["next_sent_fc"]),
    "weight_decay_negative_classifier": ("run_classifier", lambda e: run_classifier_argv(
        e, weight_decay="-1"), 2, ["--weight_decay", "-1"]),
    "weight_decay_nan_train": ("train", lambda e: train_argv(e, weight_decay="nan"), 2,
                               ["--weight_decay"]),
    "export_model_dir_is_checkpoints": ("train", lambda e: train_argv(
        e, checkpoints=e.root / "ck_same", export_model_dir=e.root / "ck_same"), 2,
        ["--checkpoints", "--export_model_dir"]),
    "convert_into_a_training_checkpoint": ("convert_params", lambda e: convert_argv(
        e, str(e.params), to="paddle2019", dst=str(e.params_copy(
            "ckpt_like", lambda d: (d / "optimizer.pdopt").write_bytes(b"x")))), 2,
        ["ckpt_like", "training checkpoint", "optimizer.pdopt"]),
    "convert_into_a_checkpoint_with_a_manifest": ("convert_params", lambda e: convert_argv(
        e, str(e.params), to="paddle2019", dst=str(e.params_copy(
            "best_like", lambda d: (d / "manifest.json").write_text("{}")))), 2,
        ["best_like", "manifest.json"]),
    "pretraining_not_gzip_content": ("train", lambda e: train_argv(
        e, train_filelist=e.write("fl_fake_gz", "fake-0.gz\t1.1\n")), 1, ["fake-0.gz"]),

    # --- parameter files ---
    "truncated_param_file": ("run_classifier", lambda e: run_classifier_argv(
        e, init_pretraining_params=e.params_copy(
            "params_trunc", lambda d: truncate_file(d / "word_embedding", 60))), 1,
        ["word_embedding", "truncated"]),
    "empty_params_dir": ("run_classifier", lambda e: run_classifier_argv(
        e, init_pretraining_params=e.empty_dir("params_empty")), 1,
        ["params_empty", "empty"]),
    "hf_dir_without_weights": ("run_classifier", lambda e: run_classifier_argv(
        e, init_pretraining_params=e.hf_without_weights()), 1,
        ["hf_noweights", "model.safetensors"]),
    "not_a_param_file": ("predict_sequence_labeling", lambda e: predict_ner_argv(
        e, init_checkpoint=e.write("params.txt", "not parameters\n")), 1, ["params.txt"]),
    "truncated_param_file_convert": ("convert_params", lambda e: convert_argv(
        e, str(e.params_copy("params_trunc2",
                             lambda d: truncate_file(d / "pooled_fc.w_0", 30)))), 1,
        ["pooled_fc.w_0"]),
    "hf_dir_without_weights_convert": ("convert_params", lambda e: convert_argv(
        e, str(e.hf_without_weights()), to="paddle2019", dst="out_dir"), 1,
        ["hf_noweights"]),
    "convert_unknown_format": ("convert_params", lambda e: convert_argv(
        e, str(e.params), to="onnx"), 2, ["--to", "onnx"]),

    # --- prepare_data ---
    "prepare_unknown_task": ("prepare_data", lambda e: ["poetry", "--output_dir", "data"], 2,
                             ["poetry"]),
    "prepare_no_output_dir": ("prepare_data", lambda e: ["ner"], 2, ["--output_dir"]),
    "prepare_bad_seed": ("prepare_data", lambda e: ["ner", "--output_dir", "data",
                                                   "--seed", "-1"], 2, ["--seed"]),

    # --- output locations that cannot be written ---
    # (checked before any work; a path under a regular file stands for a read-only place,
    # since the tests run as root; tests/test_output_locations.py has the permission cases)
    "checkpoints_is_a_file": ("run_classifier", lambda e: run_classifier_argv(
        e, checkpoints=e.write("not_a_dir.txt", "x\n")), 2, ["--checkpoints", "not_a_dir.txt"]),
    "checkpoints_under_a_file_ner": ("run_sequence_labeling", lambda e: run_ner_argv(
        e, checkpoints=e.write("not_a_dir.txt", "x\n") / "ckpt"), 2,
        ["--checkpoints", "not_a_dir.txt/ckpt"]),
    "checkpoints_under_a_file_mrc": ("run_mrc", lambda e: run_mrc_argv(
        e, checkpoints=e.write("not_a_dir.txt", "x\n") / "ckpt"), 2,
        ["--checkpoints", "not_a_dir.txt/ckpt"]),
    "checkpoints_is_a_file_train": ("train", lambda e: train_argv(
        e, checkpoints=e.write("not_a_dir.txt", "x\n")), 2, ["--checkpoints", "not_a_dir.txt"]),
    "export_model_dir_under_a_file": ("train", lambda e: train_argv(
        e, export_model_dir=e.write("not_a_dir.txt", "x\n") / "model"), 2,
        ["--export_model_dir", "not_a_dir.txt/model"]),
    "export_model_dir_holds_other_files": ("train", lambda e: train_argv(
        e, export_model_dir=(e.empty_dir("mine"), e.write("mine/notes.txt", "x\n"))[0]), 2,
        ["--export_model_dir", "notes.txt"]),
    "checkpoints_inside_export_model_dir": ("train", lambda e: train_argv(
        e, export_model_dir=e.root / "model", checkpoints=e.root / "model" / "ckpt"), 2,
        ["--checkpoints", "--export_model_dir"]),
    "test_save_under_a_file": ("run_classifier", lambda e: run_classifier_argv(
        e, do_test="true", test_set=e.cls_train,
        test_save=e.write("not_a_dir.txt", "x\n") / "test_result"), 2,
        ["--test_save", "not_a_dir.txt/test_result"]),
    "test_save_under_a_file_ner": ("run_sequence_labeling", lambda e: run_ner_argv(
        e, do_test="true", test_set=e.ner_train,
        test_save=e.write("not_a_dir.txt", "x\n") / "sub" / "test_result"), 2,
        ["--test_save", "not_a_dir.txt/sub/test_result"]),
    "test_save_count_mismatch": ("run_classifier", lambda e: run_classifier_argv(
        e, do_test="true", test_set="%s,%s" % (e.cls_train, e.cls_train),
        test_save=e.root / "one_prefix"), 2, ["--test_set", "--test_save"]),
    "diagnostic_save_is_a_directory": ("run_classifier", lambda e: run_classifier_argv(
        e, diagnostic=e.cls_train, diagnostic_save=e.empty_dir("diag_dir")), 2,
        ["--diagnostic_save", "diag_dir"]),
    "output_file_is_a_directory": ("predict_classifier", lambda e: predict_classifier_argv(
        e, output_file=e.empty_dir("out_dir")), 2, ["--output_file", "out_dir"]),
    "output_file_under_a_file_ner": ("predict_sequence_labeling", lambda e: predict_ner_argv(
        e, output_file=e.write("not_a_dir.txt", "x\n") / "tags.tsv"), 2,
        ["--output_file", "not_a_dir.txt/tags.tsv"]),
    "save_inference_model_path_is_a_file": ("predict_classifier",
                                            lambda e: predict_classifier_argv(
        e, save_inference_model_path=e.write("not_a_dir.txt", "x\n")), 2,
        ["--save_inference_model_path", "not_a_dir.txt"]),
    "encoder_output_dir_is_a_file": ("ernie_encoder", lambda e: encoder_argv(
        e, output_dir=e.write("not_a_dir.txt", "x\n")), 2, ["--output_dir", "not_a_dir.txt"]),
    "convert_dst_under_a_file": ("convert_params", lambda e: convert_argv(
        e, str(e.params), dst=str(e.write("not_a_dir.txt", "x\n") / "out.pdparams")), 2,
        ["DST", "not_a_dir.txt/out.pdparams"]),
    "convert_dst_dir_is_a_file": ("convert_params", lambda e: convert_argv(
        e, str(e.params), to="paddle2019", dst=str(e.write("not_a_dir.txt", "x\n"))), 2,
        ["DST", "not_a_dir.txt"]),
    "prepare_output_dir_is_a_file": ("prepare_data", lambda e: [
        "ner", "--output_dir", e.write("not_a_dir.txt", "x\n")], 2,
        ["--output_dir", "not_a_dir.txt"]),

    # --- task heads and label maps (no silent wrong answers) ---
    # evaluating or predicting without training takes every parameter from the checkpoint
    "head_missing_predict": ("predict_classifier", lambda e: predict_classifier_argv(
        e, init_checkpoint=e.params_copy("params_nohead")), 1,
        ["params_nohead", "_cls_out_b", "_cls_out_w"]),
    "head_missing_eval_classifier": ("run_classifier", lambda e: run_classifier_argv(
        e, do_train="false", do_val="true", dev_set=e.cls_train, init_pretraining_params=None,
        init_checkpoint=e.params_copy("params_nohead")), 1,
        ["params_nohead", "_cls_out_b", "_cls_out_w"]),
    "head_of_another_task_predict_ner": ("predict_sequence_labeling", lambda e: predict_ner_argv(
        e, init_checkpoint=e.params_copy("params_cls2", add_classifier_head(2))), 1,
        ["params_cls2", "cls_seq_label_out_b", "cls_seq_label_out_w"]),
    "head_of_another_task_eval_ner": ("run_sequence_labeling", lambda e: run_ner_argv(
        e, do_train="false", do_val="true", dev_set=e.ner_train, init_pretraining_params=None,
        init_checkpoint=e.params_copy("params_cls2", add_classifier_head(2))), 1,
        ["params_cls2", "cls_seq_label_out_b", "cls_seq_label_out_w"]),
    "head_missing_eval_mrc": ("run_mrc", lambda e: run_mrc_argv(
        e, do_train="false", do_val="true", dev_set=e.mrc_train, init_pretraining_params=None,
        init_checkpoint=e.params_copy("params_nohead")), 1,
        ["params_nohead", "cls_mrc_out_b", "cls_mrc_out_w"]),
    "encoder_param_missing_predict": ("predict_classifier", lambda e: predict_classifier_argv(
        e, init_checkpoint=e.params_copy("params_cls2_nopos", lambda d: (
            add_classifier_head(2)(d), (d / "pos_embedding").unlink()))), 1,
        ["params_cls2_nopos", "pos_embedding"]),
    # label maps: unique keys, one class per id (ids shared by aliases only while every
    # output keeps a label), integer ids 0 or more, each below --num_labels
    "label_map_two_labels_one_id": ("run_classifier", lambda e: run_classifier_argv(
        e, label_map_config=e.write("labels_merged.json", json.dumps({"neg": 0, "pos": 0})),
        train_set=e.write("cls_named.tsv", "label\ttext_a\npos\t好的很\nneg\t质量差\n")), 1,
        ["labels_merged.json", "'neg'", "'pos'", "id 0", "id 1"]),
    "label_map_two_labels_one_id_predict": ("predict_classifier",
                                            lambda e: predict_classifier_argv(
        e, label_map_config=e.write("labels_merged.json", json.dumps({"neg": 0, "pos": 0}))),
        1, ["labels_merged.json", "'neg'", "'pos'", "id 0"]),
    "label_map_duplicate_key": ("run_classifier", lambda e: run_classifier_argv(
        e, label_map_config=e.write("labels_dupkey.json", '{"neg": 0, "neg": 1, "pos": 1}'),
        train_set=e.write("cls_named.tsv", "label\ttext_a\npos\t好的很\nneg\t质量差\n")), 1,
        ["labels_dupkey.json", "'neg'", "twice"]),
    "label_map_duplicate_key_predict": ("predict_classifier", lambda e: predict_classifier_argv(
        e, label_map_config=e.write("labels_dupkey.json", '{"neg": 0, "neg": 1, "pos": 1}')),
        1, ["labels_dupkey.json", "'neg'", "twice"]),
    "label_map_duplicate_key_ner": ("run_sequence_labeling", lambda e: run_ner_argv(
        e, label_map_config=e.write("ner_dupkey.json",
                                    '{"B-PER": 0, "B-PER": 1, "I-PER": 1, "O": 2}')), 1,
        ["ner_dupkey.json", "'B-PER'", "twice"]),
    "label_map_two_labels_one_id_ner_predict": ("predict_sequence_labeling",
                                                lambda e: predict_ner_argv(
        e, label_map_config=e.write("ner_merged.json",
                                    json.dumps({"B-PER": 0, "I-PER": 0, "O": 1}))), 1,
        ["ner_merged.json", "'B-PER'", "'I-PER'", "id 0"]),
    "label_map_id_over_num_labels_named": ("run_classifier", lambda e: run_classifier_argv(
        e, label_map_config=e.write("labels_id5.json", json.dumps({"neg": 0, "pos": 5})),
        train_set=e.write("cls_named.tsv", "label\ttext_a\npos\t好的很\nneg\t质量差\n")), 2,
        ["labels_id5.json", "'pos'", "id 5", "--num_labels 2"]),
    "label_map_id_over_num_labels_named_predict": ("predict_classifier",
                                                   lambda e: predict_classifier_argv(
        e, label_map_config=e.write("labels_id5.json", json.dumps({"neg": 0, "pos": 5}))), 2,
        ["labels_id5.json", "'pos'", "id 5", "--num_labels 2"]),
    "label_map_id_not_an_integer": ("run_classifier", lambda e: run_classifier_argv(
        e, label_map_config=e.write("labels_strid.json", json.dumps({"neg": 0, "pos": "1"})),
        train_set=e.write("cls_named.tsv", "label\ttext_a\npos\t好的很\nneg\t质量差\n")), 1,
        ["labels_strid.json", "'pos'"]),
    "label_map_empty": ("run_classifier", lambda e: run_classifier_argv(
        e, label_map_config=e.write("labels_empty.json", "{}")), 1,
        ["labels_empty.json", "no labels"]),

    # --- values that make no sense, pretraining data ---
    "learning_rate_negative": ("run_classifier", lambda e: run_classifier_argv(
        e, learning_rate="-0.001"), 2, ["--learning_rate", "-0.001"]),
    "learning_rate_negative_exponent": ("train", lambda e: train_argv(e) + [
        "--learning_rate=-1e-3"], 2, ["--learning_rate", "-0.001"]),
    "learning_rate_nan": ("run_classifier", lambda e: run_classifier_argv(
        e, learning_rate="nan"), 2, ["--learning_rate", "nan"]),
    "learning_rate_negative_train": ("train", lambda e: train_argv(
        e, learning_rate="-0.001"), 2, ["--learning_rate", "-0.001"]),
    "learning_rate_nan_train": ("train", lambda e: train_argv(e, learning_rate="nan"), 2,
                                ["--learning_rate", "nan"]),
    "learning_rate_nan_ner": ("run_sequence_labeling", lambda e: run_ner_argv(
        e, learning_rate="nan"), 2, ["--learning_rate", "nan"]),
    "warmup_proportion_negative": ("run_classifier", lambda e: run_classifier_argv(
        e, warmup_proportion="-0.5"), 2, ["--warmup_proportion", "-0.5", "[0, 1]"]),
    "warmup_proportion_above_one": ("run_classifier", lambda e: run_classifier_argv(
        e, warmup_proportion="5"), 2, ["--warmup_proportion", "5", "[0, 1]"]),
    "warmup_proportion_nan_mrc": ("run_mrc", lambda e: run_mrc_argv(
        e, warmup_proportion="nan"), 2, ["--warmup_proportion", "nan"]),
    "warmup_steps_negative_train": ("train", lambda e: train_argv(e, warmup_steps="-2"), 2,
                                    ["--warmup_steps", "-2"]),
    "random_seed_negative": ("run_classifier", lambda e: run_classifier_argv(
        e, random_seed="-1"), 2, ["--random_seed", "-1"]),
    "random_seed_too_big": ("run_classifier", lambda e: run_classifier_argv(
        e, random_seed="4294967296"), 2, ["--random_seed", "4294967296"]),
    "random_seed_negative_train": ("train", lambda e: train_argv(e, random_seed="-1"), 2,
                                   ["--random_seed", "-1"]),
    "random_seed_too_big_train": ("train", lambda e: train_argv(
        e, random_seed="4294967296"), 2, ["--random_seed", "4294967296"]),
    "filelist_weight_nan": ("train", lambda e: train_argv(
        e, train_filelist=e.write("fl_w_nan", "part-0.gz\tnan\n")), 1,
        ["fl_w_nan:1", "mask_word_prob nan", "[0, 1]"]),
    "filelist_weight_negative": ("train", lambda e: train_argv(
        e, train_filelist=e.write("fl_w_neg", "part-0.gz\t1.1\npart-0.gz\t-1\n")), 1,
        ["fl_w_neg:2", "mask_word_prob -1", "[0, 1]"]),
    "filelist_weight_above_one": ("train", lambda e: train_argv(
        e, train_filelist=e.write("fl_w_5", "part-0.gz\t5\n")), 1,
        ["fl_w_5:1", "mask_word_prob 5", "[0, 1]"]),
    "vocab_duplicate_id": ("run_classifier", lambda e: run_classifier_argv(
        e, vocab_path=e.write("vocab_dupid.txt", "[PAD]\t0\n[CLS]\t1\na\t3\nb\t3\n")), 1,
        ["vocab_dupid.txt:4", "id 3", "'a'"]),
    "vocab_negative_id_train": ("train", lambda e: train_argv(
        e, vocab_path=e.write("vocab_negid.txt", "x\t-5\n" + e.vocab.read_text("utf-8"))), 1,
        ["vocab_negid.txt:1", "-5"]),
    # (the data files are written where the lists name them: two malformed lines; a line of
    # 20 tokens, longer than the base --max_seq_len 16)
    "pretraining_no_usable_line": ("train", lambda e: train_argv(
        e, strict_data="false", train_filelist=e.write("fl_all_bad", "%s\t1.1\n" % e.write(
            "allbad-0.gz", gzip.compress(b"1 5 6 2;0 0 0;0 1 2 3;-1 0 0 -1;1\n"
                                         b"1 5 2;0 0 0;0 1 2;-1 0 -1;7\n")).name)), 1,
        ["fl_all_bad", "--train_filelist", "allbad-0.gz", "2 malformed"]),
    "pretraining_only_long_lines": ("train", lambda e: train_argv(
        e, train_filelist=e.write("fl_long", "%s\t1.1\n" % e.write(
            "long-0.gz", gzip.compress(b";".join([b"0 " * 20] * 4 + [b"1\n"]))).name)), 1,
        ["fl_long", "--train_filelist", "long-0.gz", "longer than --max_seq_len 16"]),
    "pretraining_valid_no_usable_line": ("train", lambda e: train_argv(
        e, strict_data="false", valid_filelist=e.write("fl_valid_bad", "%s\t1.1\n" % e.write(
            "allbad-0.gz", gzip.compress(b"1 5 6 2;0 0 0;0 1 2 3;-1 0 0 -1;1\n"
                                         b"1 5 2;0 0 0;0 1 2;-1 0 -1;7\n")).name)), 1,
        ["fl_valid_bad", "--valid_filelist", "allbad-0.gz"]),
    "config_hidden_size_absurd": ("run_classifier", lambda e: run_classifier_argv(
        e, ernie_config_path=bad_config(e, "hidden_2_40.json",
                                        lambda c: c.update(hidden_size=2 ** 40))), 1,
        ["hidden_2_40.json", "hidden_size", "1099511627776"]),
    "config_hidden_size_absurd_train": ("train", lambda e: train_argv(
        e, ernie_config_path=bad_config(e, "hidden_2_40.json",
                                        lambda c: c.update(hidden_size=2 ** 40))), 1,
        ["hidden_2_40.json", "hidden_size"]),
    "config_model_too_large": ("ernie_encoder", lambda e: encoder_argv(
        e, ernie_config_path=bad_config(e, "huge_model.json", lambda c: c.update(
            hidden_size=2 ** 16, num_hidden_layers=2 ** 10))), 1,
        ["huge_model.json", "hidden_size 65536", "num_hidden_layers 1024", "parameters"]),
    "config_intermediate_size_zero": ("run_classifier", lambda e: run_classifier_argv(
        e, ernie_config_path=bad_config(e, "ffn0.json",
                                        lambda c: c.update(intermediate_size=0))), 1,
        ["ffn0.json", "intermediate_size"]),
}



@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input(case, env, tmp_path):
    entry, build, expected_code, names = CASES[case]
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    code, stderr = run_in_process(entry, build(env), cwd)
    check_failure(code, stderr, expected_code, names, cwd)


def test_valid_inputs_pass_the_checks(env, tmp_path):
    """The base command lines the cases spoil are themselves valid: each runs to its end (a
    one-step training run, a prediction, a conversion), so every case fails for the one thing
    it changes."""
    for entry, argv in (("run_classifier", run_classifier_argv(env)),
                        ("run_sequence_labeling", run_ner_argv(env)),
                        ("run_mrc", run_mrc_argv(env)),
                        ("train", train_argv(env)),
                        ("predict_classifier", predict_classifier_argv(env)),
                        ("predict_sequence_labeling", predict_ner_argv(env)),
                        ("ernie_encoder", encoder_argv(env)),
                        ("convert_params", convert_argv(env, str(env.params)))):
        cwd = tmp_path / entry
        cwd.mkdir()
        code, stderr = run_in_process(entry, argv, cwd)
        assert code == 0, stderr


# ----------------------------------------------------------------------------------------------
# the real command line, in subprocesses (run concurrently)

SUBPROCESS_CASES = {
    "bad_boolean": ["run_classifier.py"],
    "filelist_missing_data_file": ["train.py"],
    "truncated_param_file_convert": ["-m", "tools.convert_params"],
    "prepare_unknown_task": ["-m", "tools.prepare_data"],
    "missing_init_checkpoint_predict": ["predict_classifier.py"],
    "ner_unknown_label": ["run_sequence_labeling.py"],
}


@pytest.fixture(scope="module")
def command_line_runs(env, tmp_path_factory):
    base = tmp_path_factory.mktemp("cli")
    child_env = dict(os.environ, PYTHONPATH=str(REPO))
    child_env.pop("ERNIE_DEBUG", None)
    runs = {}
    jobs = dict(SUBPROCESS_CASES)
    jobs["debug"] = None
    for case, command in sorted(jobs.items()):
        cwd = base / case
        cwd.mkdir()
        if case == "debug":
            argv = run_classifier_argv(env, train_set=env.root / "short.tsv") + ["--debug"]
            env.write("short.tsv", "label\ttext_a\n1\t好的\n0\n")
            command = ["run_classifier.py"]
        else:
            argv = CASES[case][1](env)
        if command[0].endswith(".py"):
            command = [str(REPO / command[0])]
        proc = subprocess.Popen([sys.executable] + command + [str(a) for a in argv], cwd=cwd,
                                env=child_env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, text=True)
        runs[case] = (proc, cwd)
    results = {}
    for case, (proc, cwd) in runs.items():
        _, stderr = proc.communicate(timeout=120)
        results[case] = (proc.returncode, stderr, cwd)
    return results


@pytest.mark.parametrize("case", sorted(SUBPROCESS_CASES))
@pytest.mark.slow
def test_command_line(case, command_line_runs):
    code, stderr, cwd = command_line_runs[case]
    _, _, expected_code, names = CASES[case]
    check_failure(code, stderr, expected_code, names, cwd)


@pytest.mark.slow
def test_debug_shows_the_traceback(command_line_runs):
    code, stderr, cwd = command_line_runs["debug"]
    assert code == 1
    assert "Traceback (most recent call last)" in stderr
    assert "DataError: " in stderr and "short.tsv:3" in stderr
    # the one line still ends it, and the exit code is the one without --debug
    assert stderr.strip().splitlines()[-1].startswith("error: ")
    assert os.listdir(cwd) == []


@pytest.mark.parametrize("argv, on, rest", [
    (["--debug"], True, []), (["a", "--debug", "true", "b"], True, ["a", "b"]),
    (["--debug", "false"], False, []), (["--debug=1"], True, []), (["--debug=no", "x"], False,
                                                                  ["x"]),
    (["--debug", "--epoch", "2"], True, ["--epoch", "2"]), (["--debugger"], False, ["--debugger"])])
def test_debug_flag_forms(argv, on, rest):
    from utils.errors import _pop_debug
    assert _pop_debug(argv) is on and argv == rest


def test_a_usage_error_keeps_its_exit_code_under_debug(capsys):
    from utils.errors import UsageError, run_cli

    def main(argv):
        raise UsageError("--epoch must be positive")
    with pytest.raises(SystemExit) as e:
        run_cli(main, ["--debug", "true"])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" in err and err.strip().splitlines()[-1] == "error: --epoch must be positive"


@pytest.mark.parametrize("raised, said", [
    (PermissionError(1, "Operation not permitted", "/sys/ckpt"),
     "error: /sys/ckpt: operation not permitted"),
    (IsADirectoryError(21, "Is a directory", "/tmp"), "error: /tmp: is a directory"),
    (OSError(5, "Input/output error"), "error: input/output error")])
def test_an_os_error_the_checks_could_not_foresee_is_one_line(capsys, raised, said):
    from utils.errors import run_cli

    def main(argv):
        raise raised
    with pytest.raises(SystemExit) as e:
        run_cli(main, [])
    assert e.value.code == 1
    assert capsys.readouterr().err == said + "\n"

"""run_sequence_labeling.py and predict_sequence_labeling.py end to end on a slice of the real
People's Daily NER data with a tiny model: the 2019 log lines, the reported test F1 against
seqeval on the written prediction file, token-aligned predictions for every input (1 token,
3 x max_seq_len, dropped and unknown tokens), identical predictions through the exported
inference program, and one-line errors for bad input."""
import contextlib
import io
import json

import numpy as np
import pytest
from seqeval.metrics import f1_score, precision_score, recall_score

import predict_sequence_labeling
import run_sequence_labeling
from ernie_testkit import NER_EVAL_LINE as EVAL_LINE
from ernie_testkit import NER_TRAIN_LINE as TRAIN_LINE
from ernie_testkit import PEOPLE_DAILY, SX, run_script, write_tiny_model
from tools.prepare_data import build_ner
from utils import errors

MAX_SEQ_LEN = 32


def read_rows(path, header=True):
    lines = path.read_text(encoding="utf-8").splitlines()[1 if header else 0:]
    return [(a.split(SX), b.split(SX)) for a, b in (line.split("\t") for line in lines)]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """msra_ner/ from the first 300 corpus lines, plus test inputs of 1 token, of exactly
    3 x max_seq_len tokens, and with a dropped (space) and an unknown token; the vocabulary
    comes from the training texts only, so dev/test also have [UNK] characters."""
    d = tmp_path_factory.mktemp("ner")
    build_ner(str(d), path=PEOPLE_DAILY, max_lines=300, verbose=False)
    data = d / "msra_ner"
    test_rows = read_rows(data / "test.tsv")
    long_tokens, long_labels = [], []
    for tokens, labels in test_rows:
        long_tokens += tokens
        long_labels += labels
    n = 3 * MAX_SEQ_LEN
    assert len(long_tokens) >= n
    extra = [(["京"], ["B-LOC"]), (long_tokens[:n], long_labels[:n]),
             (["ERNIE", " ", "北", "京", "市"], ["B-ORG", "O", "B-LOC", "I-LOC", "I-LOC"])]
    with open(data / "test.tsv", "a", encoding="utf-8") as f:
        f.write("".join("%s\t%s\n" % (SX.join(t), SX.join(ln)) for t, ln in extra))
    (d / "predict.tsv").write_text("text_a\n" + "".join(
        SX.join(t) + "\n" for t, _ in read_rows(data / "test.tsv")), encoding="utf-8")
    write_tiny_model(d / "model", ["".join(t) for t, _ in read_rows(data / "train.tsv")])
    return d


def common_flags(d):
    return ["--use_cuda", "false", "--vocab_path", str(d / "model" / "vocab.txt"),
            "--ernie_config_path", str(d / "model" / "ernie_config.json"),
            "--max_seq_len", str(MAX_SEQ_LEN)]


@pytest.fixture(scope="module")
def trained(workdir):
    d, data = workdir, workdir / "msra_ner"
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        run_sequence_labeling.main(common_flags(d) + [
            "--do_train", "true", "--do_val", "true", "--do_test", "true",
            "--train_set", str(data / "train.tsv"), "--dev_set", str(data / "dev.tsv"),
            "--test_set", str(data / "test.tsv"), "--test_save", str(d / "out" / "test"),
            "--label_map_config", str(data / "label_map.json"), "--num_labels", "7",
            "--chunk_scheme", "IOB", "--checkpoints", str(d / "ckpt"), "--batch_size", "16",
            "--predict_batch_size", "8", "--epoch", "4", "--learning_rate", "5e-3",
            "--warmup_proportion", "0.0", "--skip_steps", "10", "--validation_steps", "50",
            "--save_steps", "1000", "--random_seed", "1"])
    return d, out.getvalue().splitlines()


def test_logs_and_checkpoints(trained):
    d, lines = trained
    train_lines = [ln for ln in lines if ln.startswith("epoch:") and "progress" in ln]
    evals = [ln for ln in lines if ln.startswith("[")]
    n_train = len(read_rows(d / "msra_ner" / "train.tsv"))
    steps = 4 * -(-n_train // 16)
    assert len(train_lines) == steps // 10 and all(TRAIN_LINE.match(ln) for ln in train_lines)
    # dev and test every 50 steps (not at epoch ends), then the final ones
    assert len(evals) == 2 * (steps // 50 + 1) and all(EVAL_LINE.match(ln) for ln in evals), evals
    assert lines[lines.index("Final validation result:") + 1].startswith("[dev evaluation]")
    assert "Final test result:" in lines
    assert sorted(p.name for p in (d / "ckpt").iterdir()) == ["step_%d" % steps]
    assert (d / "ckpt" / ("step_%d" % steps) / "cls_seq_label_out_w").exists()
    # <test_save>.<epoch>.<steps>; the reader is one batch ahead when validation runs
    per_epoch = steps // 4
    expected = {"test.%d.%d" % (s // per_epoch, s) for s in range(50, steps + 1, 50)}
    assert {p.name for p in (d / "out").iterdir()} == expected | {"test.3.%d" % steps}


def final_test(d, lines):
    last = [ln for ln in lines if ln.startswith("[test evaluation]")][-1]
    f1, precision, recall = (float(x) for x in EVAL_LINE.match(last).groups()[1:])
    steps = int(last.rsplit(" ", 1)[1])
    return f1, precision, recall, d / "out" / ("test.3.%d" % steps)


def test_reported_f1_is_seqeval_on_the_prediction_file(trained):
    d, lines = trained
    f1, precision, recall, out = final_test(d, lines)
    gold = [labels for _, labels in read_rows(d / "msra_ner" / "test.tsv")]
    pred = [labels for _, labels in read_rows(out, header=False)]
    assert f1 > 0.1                 # the model learned something: the comparison means something
    assert abs(f1 - f1_score(gold, pred)) <= 1e-4
    assert abs(precision - precision_score(gold, pred)) <= 1e-4
    assert abs(recall - recall_score(gold, pred)) <= 1e-4


def test_predictions_are_aligned_with_every_input(trained):
    d, lines = trained
    *_, out = final_test(d, lines)
    gold = read_rows(d / "msra_ner" / "test.tsv")
    pred = read_rows(out, header=False)
    assert len(pred) == len(gold)
    labels = set(json.loads((d / "msra_ner" / "label_map.json").read_text()))
    for (tokens, _), (out_tokens, out_labels) in zip(gold, pred):
        assert out_tokens == tokens and len(out_labels) == len(tokens)
        assert set(out_labels) <= labels
    assert len(pred[-3][1]) == 1 and len(pred[-2][1]) == 3 * MAX_SEQ_LEN
    assert pred[-1][0][:2] == ["ERNIE", " "] and pred[-1][1][1] == "O"   # the dropped space


def test_predict_sequence_labeling_gives_the_same_file(trained):
    d, lines = trained
    *_, out = final_test(d, lines)
    ckpt = next((d / "ckpt").iterdir())
    with contextlib.redirect_stdout(io.StringIO()):
        predict_sequence_labeling.main(common_flags(d) + [
            "--init_checkpoint", str(ckpt), "--predict_set", str(d / "predict.tsv"),
            "--label_map_config", str(d / "msra_ner" / "label_map.json"),
            "--batch_size", "8", "--output_file", str(d / "pred.tsv"),
            "--save_inference_model_path", str(d / "inference")])
    exported = d / "inference" / (ckpt.name + "_inference_model")
    assert (exported / "model.pdiparams").exists() and (exported / "label_map.json").exists()
    assert (d / "pred.tsv").read_text(encoding="utf-8") == out.read_text(encoding="utf-8")


def run_cli_in_process(main, args, capsys):
    """The same CLI wrapper (utils.errors.run_cli) without a new interpreter: faster."""
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        errors.run_cli(main, [str(a) for a in args])
    return exit_info.value.code, capsys.readouterr().err.strip().splitlines()


def bad_train_flags(d, tmp_path, row, label_map=None):
    train = tmp_path / "train.tsv"
    train.write_text("text_a\tlabel\n人\tO\n" + row, encoding="utf-8")
    flags = common_flags(d) + ["--do_train", "true", "--do_val", "false", "--do_test", "false",
                               "--train_set", train, "--checkpoints", tmp_path / "ckpt",
                               "--num_labels", "7"]
    if label_map is not False:
        flags += ["--label_map_config", label_map or d / "msra_ner" / "label_map.json"]
    return flags


@pytest.mark.parametrize("row,where,needle", [
    ("北%s京\tB-LOC\n" % SX, "train.tsv:3", "2 tokens but 1 labels"),
    ("北\tB-GPE\n", "train.tsv:3", "'B-GPE' (token 1) is not in the label map"),
    ("\n京\tO\n", "train.tsv:3", "empty line"),
], ids=["count_mismatch", "unknown_label", "empty_line"])
def test_bad_lines_through_the_cli(workdir, tmp_path, row, where, needle):
    code, err = run_script("run_sequence_labeling.py", *bad_train_flags(workdir, tmp_path, row))
    assert code == 1 and len(err) == 1 and err[0].startswith("error: "), err
    assert where in err[0] and needle in err[0], err
    assert not (tmp_path / "ckpt").exists()


def test_bad_label_maps(workdir, tmp_path, capsys):
    code, err = run_cli_in_process(run_sequence_labeling.main,
                                   bad_train_flags(workdir, tmp_path, "", False), capsys)
    assert code == 2 and len(err) == 1 and "--label_map_config is required" in err[0], err
    no_o = tmp_path / "labels.json"
    no_o.write_text(json.dumps({"B-LOC": 0, "I-LOC": 1}))
    code, err = run_cli_in_process(run_sequence_labeling.main,
                                   bad_train_flags(workdir, tmp_path, "", no_o), capsys)
    assert code == 1 and len(err) == 1, err
    assert err[0].startswith("error: %s: " % no_o) and '"O"' in err[0], err
    iobes = tmp_path / "iobes.json"
    iobes.write_text(json.dumps({"S-LOC": 0, "B-LOC": 1, "I-LOC": 2, "E-LOC": 3, "B-PER": 4,
                                 "I-PER": 5, "O": 6}))
    code, err = run_cli_in_process(run_sequence_labeling.main,
                                   bad_train_flags(workdir, tmp_path, "", iobes), capsys)
    assert code == 2 and "S-LOC" in err[0] and "--chunk_scheme IOB" in err[0], err
    assert not (tmp_path / "ckpt").exists()


def test_predict_bad_input(tmp_path, trained, capsys):
    d, _ = trained
    bad = tmp_path / "predict.tsv"
    bad.write_text("text_a\n北%s京\n\n" % SX, encoding="utf-8")
    code, err = run_cli_in_process(predict_sequence_labeling.main, common_flags(d) + [
        "--init_checkpoint", next((d / "ckpt").iterdir()),
        "--label_map_config", d / "msra_ner" / "label_map.json",
        "--predict_set", bad, "--save_inference_model_path", tmp_path / "inf"], capsys)
    assert code == 1 and err == ["error: %s:3: empty line" % bad], err
    assert not (tmp_path / "inf").exists()


def test_resume_auto_continues_where_the_run_stopped(tmp_path):
    """A run stopped after its first checkpoint and resumed with --resume auto ends with the
    parameters of the run that was never stopped."""
    import shutil

    from utils.format_paddle2019 import read_legacy_dir
    rows = ["中\x02国\tB-LOC\x02I-LOC", "他\x02好\tO\x02O", "李\x02明\x02来\tB-PER\x02I-PER\x02O",
            "北\x02京\tB-LOC\x02I-LOC"] * 6
    (tmp_path / "train.tsv").write_text("text_a\tlabel\n" + "\n".join(rows) + "\n",
                                        encoding="utf-8")
    labels = {"B-PER": 0, "I-PER": 1, "B-ORG": 2, "I-ORG": 3, "B-LOC": 4, "I-LOC": 5, "O": 6}
    (tmp_path / "labels.json").write_text(json.dumps(labels))
    model = write_tiny_model(tmp_path / "model", ["中国他好李明来北京"], max_pos=32)

    def run(checkpoints, epochs, *extra):
        return run_sequence_labeling.main([
            "--use_cuda", "false", "--do_train", "true", "--do_val", "false",
            "--do_test", "false", "--train_set", str(tmp_path / "train.tsv"),
            "--label_map_config", str(tmp_path / "labels.json"), "--num_labels", "7",
            "--vocab_path", str(model / "vocab.txt"),
            "--ernie_config_path", str(model / "ernie_config.json"), "--max_seq_len", "16",
            "--batch_size", "4", "--epoch", str(epochs), "--save_steps", "6",
            "--random_seed", "5", "--checkpoints", str(checkpoints)] + list(extra))

    run(tmp_path / "whole", 2)
    # a run killed after its first checkpoint leaves exactly that checkpoint behind
    (tmp_path / "parts").mkdir()
    shutil.copytree(tmp_path / "whole" / "step_6", tmp_path / "parts" / "step_6")
    run(tmp_path / "parts", 2, "--resume", "auto")
    a = read_legacy_dir(str(tmp_path / "whole" / "step_12"))
    b = read_legacy_dir(str(tmp_path / "parts" / "step_12"))
    assert all(np.array_equal(a[k], b[k]) for k in a)

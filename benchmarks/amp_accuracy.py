"""fp32 against bf16 (--use_bf16 true) fine-tuning: dev and test accuracy, training speed.

    python -m tools.prepare_data sentiment --output_dir /tmp/ampdata
    python benchmarks/amp_accuracy.py --data_dir /tmp/ampdata --work_dir /tmp/ampbench

run_classifier.py trains a small randomly initialised model (hidden 128, 2 layers, 4 heads,
a character vocabulary of the training texts: tests' tiny model, wider) on
``DIR/chnsenticorp/train.tsv`` once per precision, with the same seed, data and flags, and
evaluates on dev.tsv and test.tsv. The precisions alternate (fp32, bf16, fp32, bf16, ... with
--repeats) so that other jobs on a shared machine load them alike; speed is compared as
bf16/fp32 ratios of back-to-back pairs. Speed is the mean of the steps/s of the training log
lines after the first (which includes building the static program). The last lines printed
are the table and the ratio. Needs a CPU with bf16 (avx512_bf16) or a GPU with bf16.
"""
import json
import os
import re
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from utils.args import ArgumentParser  # noqa: E402
from utils.errors import DataError, UsageError, run_cli  # noqa: E402

MODES = {"fp32": [], "bf16": ["--use_bf16", "true"]}
EVAL_LINE = re.compile(r"^\[dev evaluation\] .*acc:([\d.]+), data_num: (\d+), .*file: (\S+),")
SPEED = re.compile(r"^epoch: .*progress: .*speed: ([\d.]+) steps/s$")


def write_model(directory, train_tsv, hidden, layers, heads, max_pos):
    """vocab.txt (the training texts' characters, 2019 layout) and ernie_config.json."""
    os.makedirs(directory, exist_ok=True)
    chars = set()
    with open(train_tsv, encoding="utf-8") as f:
        next(f)
        for line in f:
            chars.update(c for c in line.rstrip("\n").split("\t", 1)[-1].lower()
                         if not c.isspace())
    tokens = ["[PAD]", "[CLS]", "[SEP]", "[MASK]"] + sorted(chars) + ["[UNK]"]
    with open(os.path.join(directory, "vocab.txt"), "w", encoding="utf-8") as f:
        f.write("".join("%s\t%d\n" % (t, i) for i, t in enumerate(tokens)))
    config = dict(attention_probs_dropout_prob=0.1, hidden_act="relu", hidden_dropout_prob=0.1,
                  hidden_size=hidden, initializer_range=0.02, max_position_embeddings=max_pos,
                  num_attention_heads=heads, num_hidden_layers=layers, type_vocab_size=2,
                  vocab_size=len(tokens))
    with open(os.path.join(directory, "ernie_config.json"), "w") as f:
        json.dump(config, f, indent=1)


def run(mode, index, args, data, model_dir):
    """One run_classifier.py training; returns {dev, test, steps_per_s, wall_s, log}."""
    log = os.path.join(args.work_dir, "%s_%d.log" % (mode, index))
    cmd = [sys.executable, os.path.join(REPO, "run_classifier.py"),
           "--use_cuda", args.use_cuda, "--do_train", "true", "--do_val", "true",
           "--do_test", "false",
           "--train_set", os.path.join(data, "train.tsv"),
           "--dev_set", "%s,%s" % (os.path.join(data, "dev.tsv"), os.path.join(data, "test.tsv")),
           "--vocab_path", os.path.join(model_dir, "vocab.txt"),
           "--ernie_config_path", os.path.join(model_dir, "ernie_config.json"),
           "--checkpoints", os.path.join(args.work_dir, "ckpt_%s_%d" % (mode, index)),
           "--max_seq_len", str(args.max_seq_len), "--batch_size", str(args.batch_size),
           "--epoch", str(args.epoch), "--learning_rate", str(args.learning_rate),
           "--warmup_proportion", "0.1", "--weight_decay", "0.01",
           "--skip_steps", "20", "--validation_steps", "1000000", "--save_steps", "1000000",
           "--random_seed", str(args.seed)] + MODES[mode]
    start = time.time()
    with open(log, "w") as out:
        rc = subprocess.call(cmd, stdout=out, stderr=subprocess.STDOUT, cwd=REPO)
    wall = time.time() - start
    lines = open(log, encoding="utf-8", errors="replace").read().splitlines()
    if rc != 0:
        raise DataError("%s run failed (exit %d), see %s" % (mode, rc, log))
    if mode != "fp32" and not any(ln.startswith("Mixed precision: bf16") for ln in lines):
        raise DataError("%s run did not train in bf16 (no 'Mixed precision' line), see %s"
                        % (mode, log))
    final = lines[max(i for i, ln in enumerate(lines) if ln == "Final validation result:"):]
    acc = {}
    for line in final:
        m = EVAL_LINE.match(line)
        if m:
            acc[os.path.basename(m.group(3))] = float(m.group(1))
    speeds = [float(m.group(1)) for m in map(SPEED.match, lines) if m]
    if len(speeds) < 2 or set(acc) != {"dev.tsv", "test.tsv"}:
        raise DataError("%s: no training speed or final accuracies in the log" % log)
    return {"dev": acc["dev.tsv"], "test": acc["test.tsv"],
            "steps_per_s": sum(speeds[1:]) / len(speeds[1:]), "wall_s": wall, "log": log}


def main(argv=None):
    p = ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data_dir", required=True)
    p.add_argument("--work_dir", required=True)
    p.add_argument("--hidden", type=int, default=128)
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--max_seq_len", type=int, default=128)
    p.add_argument("--batch_size", type=int, default=32)
    p.add_argument("--epoch", type=int, default=1)
    p.add_argument("--learning_rate", type=float, default=1e-3)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--repeats", type=int, default=1, help="back-to-back fp32/bf16 pairs")
    p.add_argument("--use_cuda", default="false")
    args = p.parse_args(argv)
    data = os.path.join(args.data_dir, "chnsenticorp")
    for name in ("train.tsv", "dev.tsv", "test.tsv"):
        if not os.path.isfile(os.path.join(data, name)):
            raise UsageError("%s: no such file (run `python -m tools.prepare_data sentiment "
                             "--output_dir %s`)" % (os.path.join(data, name), args.data_dir))
    os.makedirs(args.work_dir, exist_ok=True)
    model_dir = os.path.join(args.work_dir, "model")
    write_model(model_dir, os.path.join(data, "train.tsv"), args.hidden, args.layers,
                args.heads, max(args.max_seq_len, 64))

    results = []
    for index in range(args.repeats):
        for mode in ("fp32", "bf16"):
            r = run(mode, index, args, data, model_dir)
            results.append((mode, index, r))
            print("%s run %d: dev acc %.4f, test acc %.4f, %.3f steps/s, %.0f s (%s)"
                  % (mode, index, r["dev"], r["test"], r["steps_per_s"], r["wall_s"],
                     r["log"]), flush=True)
    print("config: hidden %d, %d layers, max_seq_len %d, batch %d, %d epoch(s), lr %g, seed %d"
          % (args.hidden, args.layers, args.max_seq_len, args.batch_size, args.epoch,
             args.learning_rate, args.seed))
    print("%-5s %-4s %-8s %-8s %-9s %s" % ("mode", "run", "dev acc", "test acc", "steps/s",
                                            "wall s"))
    for mode, index, r in results:
        print("%-5s %-4d %-8.4f %-8.4f %-9.3f %.0f" % (mode, index, r["dev"], r["test"],
                                                       r["steps_per_s"], r["wall_s"]))
    ratios = [results[i + 1][2]["steps_per_s"] / results[i][2]["steps_per_s"]
              for i in range(0, len(results), 2)]
    print("bf16/fp32 training speed (back-to-back pairs): %s"
          % ", ".join("%.2f" % r for r in ratios))
    return 0


if __name__ == "__main__":
    run_cli(main)

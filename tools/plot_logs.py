"""Training curves from the 2019 log lines, drawn to a PNG.

    python -m tools.plot_logs --output curves.png pretrain.log:pretraining sentiment.log:sentiment

Each LOG:TITLE becomes one panel: the training loss over steps (from `step: N, ... loss: X`
or `ave loss: X` lines; an ERNIE 2.0 multi-task log's `stage: S, step: N, task: T, loss: X`
lines give one curve a task) and, on a second axis, the dev metric of every `[dev evaluation]`
line that ends with `steps: N` (acc for classification, f1 for sequence labeling and
reading comprehension, ppl for `[validation_set]` pretraining lines).
"""
import argparse
import itertools
import os
import re

from utils.errors import UsageError, run_cli
from utils.fileio import check_output_file

TRAIN = re.compile(r"step: (\d+), (?:ave )?loss: ([-\d.naif]+)")
DEV = re.compile(r"\[dev evaluation\].*?\b(acc|f1|em):\s?([\d.]+).*?(?:file: ([^,]+), )?"
                 r"epoch: \d+, steps: (\d+)")
TASK = re.compile(r"^stage: \d+, step: (\d+), task: ([^,]+), loss: ([-\d.naif]+)")
VALID = re.compile(r"\[validation_set\] epoch: \d+, step: (\d+), loss: [\d.]+, "
                   r"global ppl: ([\d.]+)")


def parse(path):
    """(train {curve: [(step, loss)]}, dev {metric: [(step, value)]}) of one log file; the
    train curve is "train loss", or "loss TASK" for each task of a multi-task log."""
    train, dev = {}, {}
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            m = TRAIN.search(line)
            if m and line.lstrip().startswith("epoch:"):
                train.setdefault("train loss", []).append((int(m.group(1)), float(m.group(2))))
                continue
            m = TASK.search(line.lstrip())
            if m:
                train.setdefault("loss " + m.group(2), []).append((int(m.group(1)),
                                                                   float(m.group(3))))
                continue
            m = DEV.search(line)
            if m:
                name = m.group(1) + (" " + os.path.basename(m.group(3)) if m.group(3) else "")
                dev.setdefault(name, []).append((int(m.group(4)), float(m.group(2))))
                continue
            m = VALID.search(line)
            if m:
                dev.setdefault("valid ppl", []).append((int(m.group(1)), float(m.group(2))))
    return train, dev


def plot(panels, output):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 3.6), squeeze=False)
    for ax, (title, (train, dev)) in zip(axes[0], panels):
        blues = itertools.cycle(("tab:blue", "tab:cyan", "navy", "tab:gray", "tab:olive",
                                 "tab:brown"))
        for (name, points), color in zip(sorted(train.items()), blues):
            ax.plot(*zip(*points), color=color, label=name)
        if len(train) > 1:
            ax.legend(loc="upper right", fontsize=8)
        ax.set_title(title)
        ax.set_xlabel("step")
        ax.set_ylabel("train loss", color="tab:blue")
        if dev:
            ax2 = ax.twinx()
            colors = itertools.cycle(("tab:red", "tab:green", "tab:purple", "tab:orange"))
            for (name, points), color in zip(sorted(dev.items()), colors):
                ax2.plot(*zip(*points), "o-", color=color, label=name)
            ax2.set_ylabel("evaluation", color="tab:red")
            ax2.legend(loc="center right", fontsize=8)
    fig.tight_layout()
    fig.savefig(output, dpi=100)
    plt.close(fig)


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", required=True, help="PNG to write")
    parser.add_argument("logs", nargs="+", help="LOG:TITLE")
    args = parser.parse_args(argv)
    panels = []
    for spec in args.logs:
        path, _, title = spec.partition(":")
        if os.path.isdir(path):
            raise UsageError("%s: a directory, expected a log file" % path)
        try:
            train, dev = parse(path)
        except FileNotFoundError:
            raise UsageError("%s: log file not found" % path) from None
        if not train and not dev:
            raise UsageError("%s: no training or evaluation log line found (the 2019 "
                             "`epoch: ..., step: N, loss: X` lines, or ERNIE 2.0's `stage: "
                             "S, step: N, task: T, loss: X`)" % path)
        panels.append((title or path, (train, dev)))
    if not args.output.lower().endswith(".png"):
        raise UsageError("--output %s: give a file name ending in .png" % args.output)
    check_output_file("--output", args.output)
    os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
    plot(panels, args.output)
    print("curves written to %s" % args.output)
    return 0


if __name__ == "__main__":
    run_cli(main)

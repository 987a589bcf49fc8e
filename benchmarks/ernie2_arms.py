"""The four pretraining schedules of benchmarks/ernie2_continual.sh, as --multitask_config
files: ERNIE 2.0's continual multi-task learning against knowledge masking alone and the two
simpler schedules its paper compares it with, all at the same number of steps.

    python -m benchmarks.ernie2_arms configs --steps 16000 --data_dir PD --output_dir DIR
    python -m benchmarks.ernie2_arms table --out OUT --steps 16000 --seeds 1 2 3

`configs` writes DIR/<arm>.json for every arm (PD: the output of `tools.pretrain_data
people_daily`); `table` prints the results table of the runs under OUT (and writes it to
OUT/summary.md), with what has finished.

- knowledge_masking: knowledge masking for every step.
- continual_multitask: knowledge masking (1/4 of the steps); then with token-document relation
  and sentence reordering added (3/8); then with sentence distance, IR relevance and discourse
  relation added too (3/8). Earlier tasks keep training in every later stage.
- multitask: every task from the first step, each sampled in proportion to the steps it gets
  in continual_multitask.
- continual: the same tasks one after another, each stage dropping the earlier ones: knowledge
  masking, then token-document relation and sentence reordering, then the last three; each
  task gets the steps it gets in continual_multitask.

So every arm trains the same number of steps, and the three multi-task arms give each task the
same expected number of steps; they differ only in when a task is trained.
"""
import argparse
import json
import math
import os
import re

import numpy as np

from benchmarks.small_ernie import finetune_log, mrc_scores, ner_scores, read_text, sentiment_accs

# (name, kind, file in the people_daily folder, extra keys); the task id is the index
TASKS = [
    ("knowledge_masking", "knowledge_masking", "train_filelist", {}),
    ("token_document_relation", "token_document_relation", "documents.txt", {}),
    ("sentence_reordering", "sentence_reordering", "documents.txt", {"max_segments": 3}),
    ("sentence_distance", "sentence_distance", "documents.txt", {}),
    ("ir_relevance", "sentence_pair", "ir_relevance.tsv", {"num_labels": 2}),
    ("discourse_relation", "sentence_pair", "discourse_relation.tsv",
     {"label_map_config": "discourse_label_map.json"}),
]
# continual_multitask: (share of the steps, sampling weights) per stage
CONTINUAL_MULTITASK = [
    (2, {"knowledge_masking": 1}),
    (3, {"knowledge_masking": 2, "token_document_relation": 1, "sentence_reordering": 1}),
    (3, {"knowledge_masking": 2, "token_document_relation": 0.6, "sentence_reordering": 0.6,
         "sentence_distance": 0.6, "ir_relevance": 0.6, "discourse_relation": 0.6}),
]
ARMS = ("knowledge_masking", "continual_multitask", "multitask", "continual")


def _split(total, shares):
    """Integer parts of `total` in proportion to `shares`, summing to `total`."""
    bounds = [round(total * sum(shares[:i]) / sum(shares)) for i in range(len(shares) + 1)]
    return [b - a for a, b in zip(bounds, bounds[1:])]


def task_steps(stages):
    """{task: expected steps} of a list of {"steps", "tasks": {task: weight}} stages."""
    steps = {}
    for stage in stages:
        total = float(sum(stage["tasks"].values()))
        for name, weight in stage["tasks"].items():
            steps[name] = steps.get(name, 0.0) + stage["steps"] * weight / total
    return steps


def arm_stages(arm, steps):
    """The stages of one arm for a run of `steps` steps."""
    if arm == "knowledge_masking":
        return [{"steps": steps, "tasks": {"knowledge_masking": 1}}]
    lengths = _split(steps, [share for share, _ in CONTINUAL_MULTITASK])
    continual_multitask = [{"steps": n, "tasks": dict(weights)}
                           for n, (_, weights) in zip(lengths, CONTINUAL_MULTITASK)]
    if arm == "continual_multitask":
        return continual_multitask
    totals = task_steps(continual_multitask)
    if arm == "multitask":
        return [{"steps": steps, "tasks": {n: round(totals[n] / steps, 6) for n in totals}}]
    if arm == "continual":
        # each stage trains the tasks continual_multitask adds at that stage, for as many
        # steps as those tasks get there in all
        groups, seen = [], set()
        for stage in continual_multitask:
            added = [n for n in stage["tasks"] if n not in seen]
            seen.update(added)
            groups.append({n: totals[n] for n in added})
        lengths = _split(steps, [sum(g.values()) for g in groups])
        return [{"steps": n, "tasks": {t: round(w / sum(g.values()), 6) for t, w in g.items()}}
                for n, g in zip(lengths, groups)]
    raise ValueError("unknown arm %r (one of %s)" % (arm, ", ".join(ARMS)))


def arm_config(arm, steps, data_dir):
    """The --multitask_config of one arm (a dict); data paths absolute."""
    stages = arm_stages(arm, steps)
    used = {n for s in stages for n in s["tasks"]}
    num_labels = None
    label_map = os.path.join(data_dir, "discourse_label_map.json")
    if os.path.exists(label_map):
        with open(label_map, encoding="utf-8") as f:
            num_labels = len(json.load(f))
    tasks = []
    for task_id, (name, kind, data, extra) in enumerate(TASKS):
        if name not in used:
            continue
        task = {"name": name, "kind": kind, "data": os.path.join(data_dir, data),
                "task_id": task_id}
        for key, value in extra.items():
            task[key] = os.path.join(data_dir, value) if key == "label_map_config" else value
        if "label_map_config" in task:
            task["num_labels"] = num_labels
        tasks.append(task)
    return {"comment": "benchmarks/ernie2_continual.sh, arm %s, %d steps" % (arm, steps),
            "tasks": tasks, "stages": stages}


# ----------------------------------------------------------------------------------------------
# the results table

def mean_se(values, expected=None):
    """'mean ± standard error' in points (× 100) of fractions, the one value, or '–'; with
    '[k of n seeds]' when fewer than the `expected` n runs have finished."""
    if not values:
        return "–"
    mean = sum(values) / len(values)
    if len(values) == 1:
        text = "%.2f" % (100 * mean)
    else:
        var = sum((v - mean) ** 2 for v in values) / (len(values) - 1)
        text = "%.2f ± %.2f" % (100 * mean, 100 * math.sqrt(var / len(values)))
    if expected and len(values) < expected:
        text += " [%d of %d seeds]" % (len(values), expected)
    return text


def pretraining_minutes(log):
    """Minutes of training in a multi-task pretraining log: its last step at the median of
    the logged speeds (so that a pause, or a stretch shared with another job, does not
    count; start-up excluded)."""
    found = re.findall(r"^stage: \d+, step: (\d+), .*speed: ([\d.]+) steps/s$", log, re.M)
    if not found:
        return None
    speed = float(np.median([float(v) for _, v in found]))
    return max(int(step) for step, _ in found) / max(speed, 1e-9) / 60


def table(out, steps, seeds, mrc_seeds, arms=ARMS):
    """The markdown results table of the arms under `out`, then the figures by seed."""
    rows = ["| pretraining, %d steps | valid MLM ppl | sentiment test acc (dev) | NER test F1 "
            "| QA test EM / F1 | pretraining minutes |" % steps, "|---|---|---|---|---|---|"]
    per_seed = []
    for arm in arms:
        model = "%s/steps_%d" % (arm, steps)
        ppl = re.findall(r"\[test_set\] loss: [\d.]+, global ppl: ([\d.]+)",
                         read_text(os.path.join(out, model, "valid_ppl.log")) or "")
        log = read_text(os.path.join(out, model, "pretrain.log")) or ""
        test, dev, f1s, em, qa_f1 = [], [], [], [], []
        for seed in seeds:
            text = finetune_log(out, model, "sentiment", seed)
            if text:
                accs = sentiment_accs(text)
                test.append(accs["test.tsv"])
                dev.append(accs["dev.tsv"])
            text = finetune_log(out, model, "ner", seed)
            if text:
                f1s.append(ner_scores(text)[0])
        for seed in mrc_seeds:
            text = finetune_log(out, model, "mrc", seed)
            if text:
                e, f = mrc_scores(text)
                em.append(e / 100)
                qa_f1.append(f / 100)
        name = arm.replace("_", " ")
        minutes = pretraining_minutes(log)
        done = os.path.isdir(os.path.join(out, model, "params"))
        rows.append("| %s | %s | %s (%s) | %s | %s / %s | %s |" % (
            name, "%.1f" % float(ppl[-1]) if ppl else "–", mean_se(test, len(seeds)),
            mean_se(dev), mean_se(f1s, len(seeds)), mean_se(em, len(mrc_seeds)), mean_se(qa_f1),
            "%.0f" % minutes if done and minutes is not None else "–"))
        per_seed.append("- %s: sentiment test (dev) %s; NER test F1 %s" % (
            name, ", ".join("%.4f (%.4f)" % td for td in zip(test, dev)) or "–",
            ", ".join("%.4f" % f for f in f1s) or "–"))
    return ("\n".join(rows) + "\n\nBy fine-tuning seed (%s):\n\n" % ", ".join(seeds)
            + "\n".join(per_seed) + "\n")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)
    c = sub.add_parser("configs", help="write the --multitask_config of every arm")
    c.add_argument("--steps", type=int, required=True)
    c.add_argument("--data_dir", required=True, help="a tools.pretrain_data people_daily folder")
    c.add_argument("--output_dir", required=True)
    t = sub.add_parser("table", help="the results table of benchmarks/ernie2_continual.sh")
    t.add_argument("--out", required=True)
    t.add_argument("--steps", type=int, required=True)
    t.add_argument("--seeds", nargs="+", default=["1", "2", "3"])
    t.add_argument("--mrc_seeds", nargs="+", default=["1"])
    args = p.parse_args(argv)
    if args.command == "table":
        text = table(args.out, args.steps, args.seeds, args.mrc_seeds)
        print(text, end="")
        with open(os.path.join(args.out, "summary.md"), "w", encoding="utf-8") as f:
            f.write(text)
        return 0
    if args.steps < 8:
        p.error("--steps must be at least 8, got %d" % args.steps)
    os.makedirs(args.output_dir, exist_ok=True)
    data_dir = os.path.abspath(args.data_dir)
    for arm in ARMS:
        with open(os.path.join(args.output_dir, arm + ".json"), "w", encoding="utf-8") as f:
            json.dump(arm_config(arm, args.steps, data_dir), f, indent=1)
            f.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

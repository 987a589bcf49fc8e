"""The fine-tuning results of benchmarks/small_ernie.sh's `finetune`, read back from its logs:
what benchmarks/knowledge_masking.sh and benchmarks/ernie2_continual.sh tabulate."""
import os
import re


def read_text(path):
    """The text of a file, or None if it cannot be read (a run that has not got that far)."""
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except OSError:
        return None


def finetune_log(out, model, task, seed="1"):
    """The log text of `finetune MODEL TASK SEED` under `out`, or None while it has not
    finished (seed 1 logs to TASK.log, others to TASK_seedN.log)."""
    path = os.path.join(out, model, task + (".log" if seed == "1" else "_seed%s.log" % seed))
    return read_text(path) if os.path.exists(path + ".done") else None


def sentiment_accs(log):
    """{"dev.tsv": acc, "test.tsv": acc} of the last evaluation in a sentiment log."""
    return {path.rsplit("/", 1)[-1]: float(acc) for acc, path in re.findall(
        r"\[dev evaluation\].*acc:([\d.]+).*file: (\S+),", log)}


def ner_scores(log):
    """(F1, precision, recall) of the last test evaluation in an NER log."""
    found = re.findall(r"\[test evaluation\] f1: ([\d.]+), precision: ([\d.]+), "
                       r"recall: ([\d.]+)", log)
    return tuple(float(x) for x in found[-1])


def mrc_scores(log):
    """(EM, F1), in points, of the last test evaluation in a reading-comprehension log."""
    found = re.findall(r"\[test evaluation\] em: ([\d.]+), f1: ([\d.]+)", log)
    return tuple(float(x) for x in found[-1])

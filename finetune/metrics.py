"""Evaluation metrics of the fine-tune tasks, and the 2019 log lines that report them.

Classification / regression, chosen by `--metric` (the 2019 names):

    simple_accuracy        {"acc"}
    acc_and_f1             {"acc", "f1"}                 F1 of the positive class 1
    matthews_corrcoef      {"matthews_corrcoef"}
    pearson_and_spearman   {"pearson", "spearman", "corr"}  corr = (pearson + spearman) / 2
    acc_and_f1_and_mrr     {"acc", "f1", "mrr"}          MRR grouped by qid (DBQA)

Sequence labelling (the 2019 chunk evaluation, with its August 2019 fixes): chunk extraction
from label strings under `--chunk_scheme` IO, IOB, IOE or IOBES, chunk counts, and precision /
recall / F1.

Deliberate differences from 2019 (every result is a finite number):

- a zero denominator gives what scikit-learn gives: F1 0 (2019 added 1e-8 to p + r and divided
  by zero when nothing was predicted positive), Matthews 0 (2019: NaN);
- Pearson / Spearman of a constant input is 0.0, without a warning (2019: NaN);
- `pearson_and_spearman` works on the classification path (2019 raised KeyError);
- Matthews uses the multi-class formula (scikit-learn's), equal to 2019's binary one on 0/1 data;
- the regression line prints the real loss (2019 printed the literal 0.0);
- no examples at all raise ValueError("no examples to evaluate") (2019 divided by zero).
"""
import math
import warnings

import numpy as np
from scipy import stats

from utils.errors import UsageError

METRIC_CHOICES = (
    "simple_accuracy",
    "acc_and_f1",
    "matthews_corrcoef",
    "pearson_and_spearman",
    "acc_and_f1_and_mrr",
)

CHUNK_SCHEMES = ("IO", "IOB", "IOE", "IOBES")


# --------------------------------------------------------------------------------------------
# Classification and regression metrics
# --------------------------------------------------------------------------------------------

def _as_vectors(*arrays):
    """Flatten every array to 1-D (2019 fetched labels as [N, 1]); check they are non-empty and
    of one length."""
    flat = [np.asarray(a).reshape(-1) for a in arrays]
    n = flat[0].shape[0]
    if n == 0:
        raise ValueError("no examples to evaluate")
    for a in flat[1:]:
        if a.shape[0] != n:
            raise ValueError("length mismatch: %s" % ", ".join(str(len(b)) for b in flat))
    return flat


def _safe_div(num, den):
    """num / den as a float, 0.0 when den is 0."""
    return float(num) / float(den) if den != 0 else 0.0


def simple_accuracy(preds, labels):
    """Fraction of examples whose prediction equals the label."""
    preds, labels = _as_vectors(preds, labels)
    return float(np.mean(preds == labels))


def _f1_of_class_one(preds, labels):
    """F1 of the positive class 1 = 2tp / (2tp + fp + fn), i.e. 2pr / (p + r); 0 when the class
    is neither predicted nor present (scikit-learn's zero_division=0). Other classes count as
    negatives, as in 2019."""
    tp = np.sum((preds == 1) & (labels == 1))
    fp = np.sum((preds == 1) & (labels != 1))
    fn = np.sum((preds != 1) & (labels == 1))
    return _safe_div(2 * tp, 2 * tp + fp + fn)


def acc_and_f1(preds, labels):
    """{"acc": accuracy, "f1": F1 of class 1}."""
    preds, labels = _as_vectors(preds, labels)
    return {"acc": float(np.mean(preds == labels)), "f1": _f1_of_class_one(preds, labels)}


def matthews_corrcoef(preds, labels):
    """Matthews correlation coefficient (multi-class form, equal to the binary
    (tp*tn - fp*fn) / sqrt(...) on 0/1 data); 0.0 when a denominator factor is 0, e.g. when all
    predictions or all labels are one class."""
    preds, labels = _as_vectors(preds, labels)
    classes, idx = np.unique(np.concatenate([labels, preds]), return_inverse=True)
    k, n = len(classes), len(labels)
    true_idx, pred_idx = idx[:n], idx[n:]
    true_count = np.bincount(true_idx, minlength=k).astype(np.float64)
    pred_count = np.bincount(pred_idx, minlength=k).astype(np.float64)
    correct = float(np.sum(true_idx == pred_idx))
    samples = float(n)
    cov_tp = correct * samples - np.dot(true_count, pred_count)
    cov_pp = samples * samples - np.dot(pred_count, pred_count)
    cov_tt = samples * samples - np.dot(true_count, true_count)
    if cov_pp * cov_tt == 0:
        return 0.0
    return float(cov_tp / np.sqrt(cov_tt * cov_pp))


def _correlation(fn, x, y):
    """fn(x, y)[0] as a float; 0.0 when x or y is constant (correlation undefined)."""
    if np.all(x == x[0]) or np.all(y == y[0]):
        return 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # e.g. scipy's "nearly constant input" warning
        value = float(fn(x, y)[0])
    return value if math.isfinite(value) else 0.0


def pearson_and_spearman(preds, labels):
    """{"pearson", "spearman", "corr"} with corr their mean (scipy pearsonr / spearmanr); a
    constant input gives 0.0 for both."""
    preds, labels = _as_vectors(preds, labels)
    preds = preds.astype(np.float64)
    labels = labels.astype(np.float64)
    pearson = _correlation(stats.pearsonr, preds, labels)
    spearman = _correlation(stats.spearmanr, preds, labels)
    return {"pearson": pearson, "spearman": spearman, "corr": (pearson + spearman) / 2}


def mrr(qids, scores, labels):
    """Mean reciprocal rank over qids.

    Within a qid, examples are ranked by score, highest first; equal scores keep their input
    order (2019 used Python's stable sort). A qid adds 1 / rank of its first example whose label
    is not 0, or 0 when it has none; the result is the mean over all distinct qids.
    """
    qids, scores, labels = _as_vectors(qids, scores, labels)
    # lexsort: last key is the primary one; it is stable, so ties keep the input order.
    order = np.lexsort((-scores.astype(np.float64), qids))
    qids, labels = qids[order], labels[order]
    total, num_queries = 0.0, 0
    start = 0
    n = len(qids)
    while start < n:
        end = start
        while end < n and qids[end] == qids[start]:
            end += 1
        num_queries += 1
        positives = np.flatnonzero(labels[start:end] != 0)
        if positives.size:
            total += 1.0 / (positives[0] + 1)
        start = end
    return total / num_queries


def acc_and_f1_and_mrr(preds, labels, qids, scores):
    """{"acc", "f1", "mrr"}: accuracy and class-1 F1 of `preds`, MRR of `scores` (the
    probability of class 1) grouped by `qids`."""
    result = acc_and_f1(preds, labels)
    result["mrr"] = mrr(qids, scores, labels)
    return result


def classification_metrics(metric_name, preds, labels, probs=None, qids=None):
    """Compute the `--metric` named `metric_name`; returns the dict listed in the module doc.

    `preds` are the predicted classes (or the regression outputs), `labels` the gold values.
    `probs` ([N, num_labels], or [N] scores) and `qids` are needed by acc_and_f1_and_mrr only:
    the score of an example is probs[:, 1].
    """
    if metric_name == "simple_accuracy":
        return {"acc": simple_accuracy(preds, labels)}
    if metric_name == "acc_and_f1":
        return acc_and_f1(preds, labels)
    if metric_name == "matthews_corrcoef":
        return {"matthews_corrcoef": matthews_corrcoef(preds, labels)}
    if metric_name == "pearson_and_spearman":
        return pearson_and_spearman(preds, labels)
    if metric_name == "acc_and_f1_and_mrr":
        if qids is None or np.asarray(qids).size == 0:
            raise UsageError("--metric acc_and_f1_and_mrr needs a 'qid' column in the "
                             "evaluation data")
        if probs is None:
            raise ValueError("acc_and_f1_and_mrr needs probs to rank the examples")
        probs = np.asarray(probs)
        scores = probs[:, 1] if probs.ndim == 2 else probs.reshape(-1)
        return acc_and_f1_and_mrr(preds, labels, qids, scores)
    raise UsageError("--metric: unknown metric %r (choose from %s)"
                     % (metric_name, ", ".join(METRIC_CHOICES)))


# One 2019 format per metric: the part between "ave loss: %f, " and ", data_num".
_METRIC_FORMATS = {
    "simple_accuracy": ("acc:%f", ("acc",)),
    "acc_and_f1": ("ave_acc: %f, f1: %f", ("acc", "f1")),
    "matthews_corrcoef": ("matthews_corrcoef: %f", ("matthews_corrcoef",)),
    "pearson_and_spearman": ("pearson:%f, spearman:%f, corr:%f", ("pearson", "spearman", "corr")),
    "acc_and_f1_and_mrr": ("acc: %f, f1: %f, mrr: %f", ("acc", "f1", "mrr")),
}


def format_eval_line(phase, metric_name, metrics, loss, data_num, elapsed):
    """The 2019 evaluation log line, e.g.
    `[dev evaluation] ave loss: 0.301000, acc:0.910000, data_num: 1200, elapsed time: 16.200000 s`.

    `metrics` is the dict from `classification_metrics`. Pass `data_num=None` for the
    regression line, which in 2019 had no data_num part:
    `[dev evaluation] ave loss: %f, pearson:%f, spearman:%f, corr:%f, elapsed time: %f s`.
    """
    if metric_name not in _METRIC_FORMATS:
        raise UsageError("--metric: unknown metric %r (choose from %s)"
                         % (metric_name, ", ".join(METRIC_CHOICES)))
    fmt, keys = _METRIC_FORMATS[metric_name]
    parts = ["[%s evaluation] ave loss: %f" % (phase, loss), fmt % tuple(metrics[k] for k in keys)]
    if data_num is not None:
        parts.append("data_num: %d" % data_num)
    parts.append("elapsed time: %f s" % elapsed)
    return ", ".join(parts)


# --------------------------------------------------------------------------------------------
# Chunk evaluation (sequence labelling)
# --------------------------------------------------------------------------------------------

_SCHEME_PREFIXES = {
    "IO": "I",
    "IOB": "BI",
    "IOE": "IE",
    "IOBES": "BIES",
}


def _check_scheme(scheme):
    if scheme not in _SCHEME_PREFIXES:
        raise UsageError("--chunk_scheme: unknown scheme %r (choose from %s)"
                         % (scheme, ", ".join(CHUNK_SCHEMES)))


def _split_tag(tag, scheme):
    """'B-PER' -> ('B', 'PER'); 'O' -> (None, None); a prefix alone ('B') has type ''."""
    if tag == "O":
        return None, None
    prefix, sep, chunk_type = tag.partition("-")
    if prefix not in _SCHEME_PREFIXES[scheme] or len(prefix) != 1:
        raise UsageError("label %r has no meaning under --chunk_scheme %s (labels are O or "
                         "X-TYPE with X in %s)"
                         % (tag, scheme, ", ".join(_SCHEME_PREFIXES[scheme])))
    return prefix, chunk_type


def extract_chunks(tags, scheme="IOB"):
    """Chunks of one label sequence, as a list of (type, start, end) with `end` inclusive.

    Tags are strings: 'O', or a prefix and a type such as 'B-PER'. The prefixes a scheme allows:
    IO: I; IOB (= IOB2): B, I; IOE (= IOE2): I, E; IOBES: B, I, E, S. Any other prefix raises
    UsageError (the label map does not match --chunk_scheme).

    The rules are conlleval's, so ill-formed sequences are read the way conlleval and seqeval's
    default mode read them. Between the previous tag (pp, pt) and the current one (p, t) there is
    a boundary when the types differ, the current tag is B or S, or the previous one is E or S:

    - an open chunk closes at O or at a boundary;
    - a non-O tag opens a chunk after O or at a boundary.

    So an I- (or E-) with no open chunk of its type starts one, a type switch inside a chunk
    splits it, 'E-X I-X' is two chunks, and a chunk open at the last token ends there. One
    difference from Paddle's chunk_eval op: 'B-X S-X' / 'I-X S-X' close the open chunk (the op
    drops it).
    """
    _check_scheme(scheme)
    chunks = []
    start = None
    prev_prefix, prev_type = None, None
    for i, tag in enumerate(tags):
        prefix, chunk_type = _split_tag(tag, scheme)
        boundary = (chunk_type != prev_type or prefix in ("B", "S") or prev_prefix in ("E", "S"))
        if start is not None and (prefix is None or boundary):
            chunks.append((prev_type, start, i - 1))
            start = None
        if prefix is not None and (prev_prefix is None or boundary):
            start = i
        prev_prefix, prev_type = prefix, chunk_type
    if start is not None:
        chunks.append((prev_type, start, len(tags) - 1))
    return chunks


def chunk_counts(label_seqs, infer_seqs, scheme="IOB"):
    """(num_label, num_infer, num_correct) summed over pairs of sequences; a chunk is correct
    when type, start and end all match a gold chunk of the same sequence."""
    _check_scheme(scheme)
    label_seqs, infer_seqs = list(label_seqs), list(infer_seqs)
    if len(label_seqs) != len(infer_seqs):
        raise ValueError("%d label sequences but %d inferred sequences"
                         % (len(label_seqs), len(infer_seqs)))
    num_label = num_infer = num_correct = 0
    for k, (gold, pred) in enumerate(zip(label_seqs, infer_seqs)):
        if len(gold) != len(pred):
            raise ValueError("sequence %d: %d labels but %d inferred tags"
                             % (k, len(gold), len(pred)))
        gold_chunks = set(extract_chunks(gold, scheme))
        pred_chunks = set(extract_chunks(pred, scheme))
        num_label += len(gold_chunks)
        num_infer += len(pred_chunks)
        num_correct += len(gold_chunks & pred_chunks)
    return num_label, num_infer, num_correct


def chunk_f1(num_label, num_infer, num_correct):
    """(precision, recall, f1) with 2019's zero rules: precision 0 without inferred chunks,
    recall 0 without gold chunks, f1 0 when nothing is correct."""
    precision = _safe_div(num_correct, num_infer)
    recall = _safe_div(num_correct, num_label)
    f1 = 2 * precision * recall / (precision + recall) if num_correct else 0.0
    return precision, recall, f1


def format_chunk_line(phase, precision, recall, f1, elapsed):
    """`[dev evaluation] f1: %f, precision: %f, recall: %f, elapsed time: %f s` (2019)."""
    return ("[%s evaluation] f1: %f, precision: %f, recall: %f, elapsed time: %f s"
            % (phase, f1, precision, recall, elapsed))

"""finetune/metrics.py against scikit-learn, scipy and seqeval: the classification, regression and
chunk metrics of the 2019 toolkit."""
import random
import re
import warnings

import numpy as np
import pytest
from scipy import stats
from seqeval import metrics as seqeval_metrics
from seqeval.metrics.sequence_labeling import get_entities
from seqeval.scheme import IOBES, IOE2
from sklearn import metrics as skm

from finetune import metrics as M
from utils.errors import UsageError

TOL = 1e-9


# --------------------------------------------------------------------------------------------
# Classification metrics against scikit-learn
# --------------------------------------------------------------------------------------------

def sk_f1_class_one(labels, preds):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return skm.f1_score(labels, preds, labels=[1], average=None, zero_division=0)[0]


def check_against_sklearn(preds, labels):
    assert M.simple_accuracy(preds, labels) == pytest.approx(skm.accuracy_score(labels, preds),
                                                             abs=TOL)
    af = M.acc_and_f1(preds, labels)
    assert af["acc"] == pytest.approx(skm.accuracy_score(labels, preds), abs=TOL)
    assert af["f1"] == pytest.approx(sk_f1_class_one(labels, preds), abs=TOL)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected_mcc = skm.matthews_corrcoef(labels, preds)
    assert M.matthews_corrcoef(preds, labels) == pytest.approx(expected_mcc, abs=TOL)


@pytest.mark.parametrize("num_classes", [2, 3, 5])
@pytest.mark.slow
def test_classification_random_inputs_match_sklearn(num_classes):
    rng = np.random.RandomState(1234 + num_classes)
    for _ in range(200):
        n = rng.randint(1, 80)
        labels = rng.randint(0, num_classes, size=n)
        # predictions correlated with the labels so that every quadrant gets used
        preds = np.where(rng.rand(n) < 0.6, labels, rng.randint(0, num_classes, size=n))
        check_against_sklearn(preds, labels)
        # the 2019 shapes: preds as float argmax, labels as int64 [N, 1]
        check_against_sklearn(preds.astype(np.float32), labels.reshape(-1, 1))


def test_binary_mcc_equals_2019_formula_when_defined():
    rng = np.random.RandomState(7)
    for _ in range(100):
        n = rng.randint(4, 50)
        labels = rng.randint(0, 2, size=n)
        preds = rng.randint(0, 2, size=n)
        tp = np.sum((labels == 1) & (preds == 1))
        tn = np.sum((labels == 0) & (preds == 0))
        fp = np.sum((labels == 0) & (preds == 1))
        fn = np.sum((labels == 1) & (preds == 0))
        den = float((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
        if den == 0:
            assert M.matthews_corrcoef(preds, labels) == 0.0
        else:
            assert M.matthews_corrcoef(preds, labels) == pytest.approx(
                (tp * tn - fp * fn) / np.sqrt(den), abs=TOL)


@pytest.mark.parametrize("preds,labels", [
    ([0, 0, 0, 0], [0, 0, 0, 0]),          # one class only, all correct
    ([1, 1, 1, 1], [1, 1, 1, 1]),          # one class only, the positive one
    ([1, 1, 1], [0, 1, 0]),                # all predictions equal
    ([0, 0, 0], [0, 1, 1]),                # all predictions negative: precision undefined
    ([0, 1, 1, 0], [1, 1, 1, 1]),          # all labels equal
    ([0, 1, 0], [0, 0, 0]),                # all labels negative: recall undefined
    ([1, 0], [0, 1]),                      # two examples, both wrong
    ([1, 0], [1, 0]),                      # two examples, both right
    ([1], [0]),                            # one example
    ([2, 2, 0], [2, 0, 0]),                # class 1 absent everywhere
])
def test_classification_edge_inputs_match_sklearn(preds, labels):
    check_against_sklearn(np.array(preds), np.array(labels))
    for value in (M.simple_accuracy(preds, labels), M.matthews_corrcoef(preds, labels),
                  *M.acc_and_f1(preds, labels).values()):
        assert np.isfinite(value)


def test_degenerate_values_are_zero_not_nan():
    assert M.acc_and_f1([0, 0, 0], [0, 0, 0]) == {"acc": 1.0, "f1": 0.0}
    assert M.matthews_corrcoef([0, 0, 0], [0, 1, 0]) == 0.0
    assert M.matthews_corrcoef([1, 0, 1], [1, 1, 1]) == 0.0


# --------------------------------------------------------------------------------------------
# Pearson / Spearman against scipy
# --------------------------------------------------------------------------------------------

def check_against_scipy(preds, labels):
    got = M.pearson_and_spearman(preds, labels)
    pearson = stats.pearsonr(preds, labels)[0]
    spearman = stats.spearmanr(preds, labels)[0]
    assert got["pearson"] == pytest.approx(pearson, abs=TOL)
    assert got["spearman"] == pytest.approx(spearman, abs=TOL)
    assert got["corr"] == pytest.approx((pearson + spearman) / 2, abs=TOL)


def test_pearson_spearman_random_inputs_match_scipy():
    rng = np.random.RandomState(99)
    for _ in range(200):
        n = rng.randint(2, 60)
        labels = rng.rand(n) * 5
        preds = labels + rng.randn(n) * rng.rand() * 3
        check_against_scipy(preds, labels)
        # ties: small integer ranges (STS-B style rounded scores, or class predictions)
        labels_int = rng.randint(0, 4, size=n).astype(float)
        preds_int = rng.randint(0, 4, size=n).astype(float)
        if np.ptp(labels_int) > 0 and np.ptp(preds_int) > 0:
            check_against_scipy(preds_int, labels_int)


def test_pearson_spearman_two_examples():
    check_against_scipy(np.array([0.1, 0.9]), np.array([1.0, 3.0]))
    assert M.pearson_and_spearman([0.1, 0.9], [3.0, 1.0]) == pytest.approx(
        {"pearson": -1.0, "spearman": -1.0, "corr": -1.0})


@pytest.mark.parametrize("preds,labels", [
    ([1.0, 2.0, 3.0], [2.5, 2.5, 2.5]),    # constant regression targets
    ([0.7, 0.7, 0.7], [1.0, 2.0, 3.0]),    # constant predictions
    ([4.0, 4.0], [4.0, 4.0]),
    ([0.3], [1.2]),                        # one example
])
def test_pearson_spearman_constant_input_is_zero_without_warning(preds, labels):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = M.pearson_and_spearman(preds, labels)
    assert got == {"pearson": 0.0, "spearman": 0.0, "corr": 0.0}


# --------------------------------------------------------------------------------------------
# MRR
# --------------------------------------------------------------------------------------------

def mrr_by_loop(qids, scores, labels):
    """Group by qid in a dict, rank each group with a stable sort, scan for the first positive."""
    groups = {}
    for q, s, ln in zip(qids, scores, labels):
        groups.setdefault(q, []).append((s, ln))
    total = 0.0
    for items in groups.values():
        ranked = sorted(items, key=lambda item: -item[0])  # stable: ties keep input order
        for rank, (_, label) in enumerate(ranked, start=1):
            if label != 0:
                total += 1.0 / rank
                break
    return total / len(groups)


def test_mrr_matches_sklearn_lrap_with_one_positive_per_query():
    # With one relevant answer per query and no tied scores, label ranking average precision is
    # exactly 1 / rank of that answer.
    rng = np.random.RandomState(5)
    for _ in range(100):
        num_q, per_q = rng.randint(1, 12), rng.randint(1, 8)
        y_true = np.zeros((num_q, per_q), dtype=int)
        y_true[np.arange(num_q), rng.randint(0, per_q, size=num_q)] = 1
        y_score = rng.rand(num_q, per_q)
        qids = np.repeat(rng.permutation(1000)[:num_q], per_q)
        order = rng.permutation(num_q * per_q)  # qids interleaved in the input
        got = M.mrr(qids[order], y_score.reshape(-1)[order], y_true.reshape(-1)[order])
        assert got == pytest.approx(skm.label_ranking_average_precision_score(y_true, y_score),
                                    abs=TOL)


def test_mrr_random_with_ties_and_queries_without_positive():
    rng = np.random.RandomState(11)
    for _ in range(300):
        n = rng.randint(1, 150)  # long enough for numpy's unstable sorts to reorder ties
        qids = rng.randint(0, 6, size=n)
        scores = rng.randint(0, 4, size=n) / 4.0  # many ties
        labels = (rng.rand(n) < 0.3).astype(int)
        assert M.mrr(qids, scores, labels) == pytest.approx(mrr_by_loop(qids, scores, labels),
                                                            abs=TOL)


def test_mrr_hand_examples():
    # q1: ranked 0.9 (neg), 0.5 (pos) -> 1/2; q2: no positive -> 0; q3: tie 0.4/0.4, the
    # positive comes second in the input, so rank 2 -> 1/2.
    qids = [1, 2, 1, 3, 3, 2]
    scores = [0.5, 0.3, 0.9, 0.4, 0.4, 0.1]
    labels = [1, 0, 0, 0, 1, 0]
    assert M.mrr(qids, scores, labels) == pytest.approx((0.5 + 0.0 + 0.5) / 3)
    assert M.mrr([7, 7], [0.2, 0.8], [1, 1]) == 1.0
    assert M.mrr([7, 7], [0.2, 0.8], [0, 0]) == 0.0


def test_acc_and_f1_and_mrr_through_dispatch_uses_probs_column_one():
    labels = np.array([1, 0, 0, 1, 0])
    probs = np.array([[0.2, 0.8], [0.6, 0.4], [0.3, 0.7], [0.9, 0.1], [0.5, 0.5]])
    preds = probs.argmax(axis=1).astype(float)
    qids = np.array([[1], [1], [2], [2], [2]])
    got = M.classification_metrics("acc_and_f1_and_mrr", preds, labels, probs=probs, qids=qids)
    assert got["acc"] == pytest.approx(skm.accuracy_score(labels, preds))
    assert got["f1"] == pytest.approx(skm.f1_score(labels, preds))
    assert got["mrr"] == pytest.approx(mrr_by_loop(qids.ravel(), probs[:, 1], labels))
    assert got["mrr"] == pytest.approx((1.0 + 1.0 / 3) / 2)


# --------------------------------------------------------------------------------------------
# Dispatch and errors
# --------------------------------------------------------------------------------------------

def test_dispatch_each_metric():
    preds, labels = np.array([1, 0, 1, 1]), np.array([1, 0, 0, 1])
    assert M.classification_metrics("simple_accuracy", preds, labels) == {"acc": 0.75}
    assert M.classification_metrics("acc_and_f1", preds, labels) == M.acc_and_f1(preds, labels)
    assert M.classification_metrics("matthews_corrcoef", preds, labels) == {
        "matthews_corrcoef": M.matthews_corrcoef(preds, labels)}
    # pearson_and_spearman on the classify path works (2019 raised KeyError)
    assert set(M.classification_metrics("pearson_and_spearman", preds, labels)) == {
        "pearson", "spearman", "corr"}


def test_unknown_metric_is_a_usage_error_naming_the_flag_and_choices():
    with pytest.raises(UsageError) as err:
        M.classification_metrics("auc", [1], [1])
    message = str(err.value)
    assert "--metric" in message and "auc" in message
    for choice in M.METRIC_CHOICES:
        assert choice in message


def test_mrr_without_qids_is_a_usage_error():
    with pytest.raises(UsageError, match="qid"):
        M.classification_metrics("acc_and_f1_and_mrr", [1, 0], [1, 0],
                                 probs=[[0.1, 0.9], [0.8, 0.2]], qids=np.zeros((0, 1)))


@pytest.mark.parametrize("call", [
    lambda: M.simple_accuracy([], []),
    lambda: M.acc_and_f1(np.zeros((0, 1)), np.zeros((0, 1))),
    lambda: M.matthews_corrcoef([], []),
    lambda: M.pearson_and_spearman([], []),
    lambda: M.mrr([], [], []),
    lambda: M.classification_metrics("simple_accuracy", [], []),
])
def test_empty_input_raises(call):
    with pytest.raises(ValueError, match="^no examples to evaluate$"):
        call()


def test_length_mismatch_raises():
    with pytest.raises(ValueError):
        M.simple_accuracy([1, 0], [1])


# --------------------------------------------------------------------------------------------
# Log lines
# --------------------------------------------------------------------------------------------

def regex_of(fmt_2019):
    """A 2019 %-format as a full-match regex (%f prints six decimals)."""
    pattern = re.escape(fmt_2019)
    pattern = pattern.replace("%s", r"\w+").replace("%f", r"-?\d+\.\d{6}").replace("%d", r"\d+")
    return re.compile(pattern + r"\Z")


FORMATS_2019 = {
    "simple_accuracy": "[%s evaluation] ave loss: %f, acc:%f, data_num: %d, elapsed time: %f s",
    "acc_and_f1": "[%s evaluation] ave loss: %f, ave_acc: %f, f1: %f, data_num: %d, "
                  "elapsed time: %f s",
    "matthews_corrcoef": "[%s evaluation] ave loss: %f, matthews_corrcoef: %f, data_num: %d, "
                         "elapsed time: %f s",
    "pearson_and_spearman": "[%s evaluation] ave loss: %f, pearson:%f, spearman:%f, corr:%f, "
                            "data_num: %d, elapsed time: %f s",
    "acc_and_f1_and_mrr": "[%s evaluation] ave loss: %f, acc: %f, f1: %f, mrr: %f, "
                          "data_num: %d, elapsed time: %f s",
}
REGRESSION_2019 = ("[%s evaluation] ave loss: %f, pearson:%f, spearman:%f, corr:%f, "
                   "elapsed time: %f s")


@pytest.mark.parametrize("metric_name", sorted(FORMATS_2019))
def test_eval_line_has_the_2019_shape(metric_name):
    preds = np.array([1, 0, 1, 1, 0, 0])
    labels = np.array([1, 0, 0, 1, 1, 0])
    probs = np.stack([1 - preds * 0.7, preds * 0.7], axis=1)
    values = M.classification_metrics(metric_name, preds, labels, probs=probs,
                                      qids=[1, 1, 2, 2, 3, 3])
    line = M.format_eval_line("dev", metric_name, values, 0.301, 1200, 16.2)
    assert regex_of(FORMATS_2019[metric_name]).match(line), line
    assert line.startswith("[dev evaluation] ave loss: 0.301000, ")
    assert line.endswith(", data_num: 1200, elapsed time: 16.200000 s")


def test_eval_line_exact():
    assert M.format_eval_line("dev", "simple_accuracy", {"acc": 0.91}, 0.301, 1200, 16.2) == (
        "[dev evaluation] ave loss: 0.301000, acc:0.910000, data_num: 1200, "
        "elapsed time: 16.200000 s")
    assert M.format_eval_line("test", "acc_and_f1_and_mrr", {"acc": 0.5, "f1": 0.25, "mrr": 1},
                              1.5, 3, 0.5) == (
        "[test evaluation] ave loss: 1.500000, acc: 0.500000, f1: 0.250000, mrr: 1.000000, "
        "data_num: 3, elapsed time: 0.500000 s")


def test_regression_line_prints_the_real_loss():
    values = M.pearson_and_spearman([0.1, 0.4, 0.3], [1.0, 2.0, 3.0])
    line = M.format_eval_line("dev", "pearson_and_spearman", values, 0.75, None, 2.0)
    assert regex_of(REGRESSION_2019).match(line), line
    assert line.startswith("[dev evaluation] ave loss: 0.750000, pearson:")


def test_format_unknown_metric():
    with pytest.raises(UsageError, match="--metric"):
        M.format_eval_line("dev", "nope", {}, 0.0, 1, 1.0)


def test_chunk_line():
    line = M.format_chunk_line("dev", 0.94, 0.96, 0.95, 19.1)
    assert line == ("[dev evaluation] f1: 0.950000, precision: 0.940000, recall: 0.960000, "
                    "elapsed time: 19.100000 s")
    assert regex_of("[%s evaluation] f1: %f, precision: %f, recall: %f, elapsed time: %f s"
                    ).match(line)


# --------------------------------------------------------------------------------------------
# Chunk evaluation against seqeval
# --------------------------------------------------------------------------------------------

TYPES = ["PER", "LOC", "ORG"]


def ours_prf(golds, preds, scheme):
    return M.chunk_f1(*M.chunk_counts(golds, preds, scheme))


def seqeval_prf(golds, preds, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # UndefinedMetricWarning when nothing is predicted
        return (seqeval_metrics.precision_score(golds, preds, **kwargs),
                seqeval_metrics.recall_score(golds, preds, **kwargs),
                seqeval_metrics.f1_score(golds, preds, **kwargs))


def assert_prf_equal(got, expected):
    for g, e in zip(got, expected):
        assert g == pytest.approx(e, abs=TOL), (got, expected)


def random_tags(rnd, length, prefixes):
    vocab = ["O"] + ["%s-%s" % (p, t) for p in prefixes for t in TYPES]
    return [rnd.choice(vocab) for _ in range(length)]


def mutate(rnd, tags, prefixes, rate):
    vocab = ["O"] + ["%s-%s" % (p, t) for p in prefixes for t in TYPES]
    return [rnd.choice(vocab) if rnd.random() < rate else t for t in tags]


def test_iob_random_ill_formed_matches_seqeval_default_mode():
    rnd = random.Random(2019)
    for _ in range(400):
        golds, preds = [], []
        for _ in range(rnd.randint(1, 6)):
            gold = random_tags(rnd, rnd.randint(1, 15), "BI")
            golds.append(gold)
            preds.append(mutate(rnd, gold, "BI", rnd.choice([0.0, 0.1, 0.3, 1.0])))
        assert_prf_equal(ours_prf(golds, preds, "IOB"), seqeval_prf(golds, preds))


@pytest.mark.parametrize("scheme,prefixes", [("IOB", "BI"), ("IOE", "IE"), ("IOBES", "BIES"),
                                             ("IO", "I")])
def test_extract_chunks_follows_conlleval_rules_on_any_sequence(scheme, prefixes):
    # seqeval's default mode implements the conlleval rules for B/I/E/S prefixes; our
    # documented behaviour on ill-formed input is those rules, for every scheme.
    rnd = random.Random(hash(scheme) % 1000)
    for _ in range(500):
        tags = random_tags(rnd, rnd.randint(0, 15), prefixes)
        assert sorted(M.extract_chunks(tags, scheme)) == sorted(get_entities(tags))


def random_chunks(rnd, length, adjacent_types_differ=False):
    """Non-overlapping (type, start, end) chunks, end inclusive, some touching each other."""
    chunks, i = [], 0
    while i < length:
        if rnd.random() < 0.4:
            i += rnd.randint(1, 3)  # a gap of O
            continue
        end = min(length - 1, i + rnd.randint(0, 3))
        types = TYPES
        if adjacent_types_differ and chunks and chunks[-1][2] == i - 1:
            types = [t for t in TYPES if t != chunks[-1][0]]
        chunks.append((rnd.choice(types), i, end))
        i = end + 1
    return chunks


def perturb_chunks(rnd, chunks, length):
    """Predicted chunks: keep, drop, retype or shorten the gold ones, then add a few new ones."""
    out = []
    for t, s, e in chunks:
        r = rnd.random()
        if r < 0.5:
            out.append((t, s, e))
        elif r < 0.65:
            out.append((rnd.choice(TYPES), s, e))
        elif r < 0.8 and e > s:
            out.append((t, s + 1, e) if rnd.random() < 0.5 else (t, s, e - 1))
        # else: dropped
    taken = {i for _, s, e in out for i in range(s, e + 1)}
    for _ in range(rnd.randint(0, 3)):
        s = rnd.randrange(length)
        e = min(length - 1, s + rnd.randint(0, 2))
        if not taken & set(range(s, e + 1)):
            out.append((rnd.choice(TYPES), s, e))
            taken |= set(range(s, e + 1))
    return out


def encode(chunks, length, scheme):
    tags = ["O"] * length
    for t, s, e in chunks:
        for i in range(s, e + 1):
            if scheme == "IO":
                p = "I"
            elif scheme == "IOB":
                p = "B" if i == s else "I"
            elif scheme == "IOE":
                p = "E" if i == e else "I"
            else:  # IOBES
                p = "S" if s == e else "B" if i == s else "E" if i == e else "I"
            tags[i] = "%s-%s" % (p, t)
    return tags


@pytest.mark.parametrize("scheme,seqeval_scheme", [("IOE", IOE2), ("IOBES", IOBES),
                                                   ("IOB", None)])
def test_well_formed_random_sequences_match_seqeval_strict(scheme, seqeval_scheme):
    rnd = random.Random(len(scheme) * 31)
    for _ in range(300):
        golds, preds = [], []
        for _ in range(rnd.randint(1, 5)):
            length = rnd.randint(1, 14)
            gold_chunks = random_chunks(rnd, length)
            pred_chunks = perturb_chunks(rnd, gold_chunks, length)
            gold, pred = encode(gold_chunks, length, scheme), encode(pred_chunks, length, scheme)
            # the generated chunks are read back exactly
            assert sorted(M.extract_chunks(gold, scheme), key=lambda c: c[1]) == gold_chunks
            assert sorted(M.extract_chunks(pred, scheme)) == sorted(pred_chunks)
            golds.append(gold)
            preds.append(pred)
        if seqeval_scheme is None:
            expected = seqeval_prf(golds, preds)
        else:
            expected = seqeval_prf(golds, preds, mode="strict", scheme=seqeval_scheme)
        assert_prf_equal(ours_prf(golds, preds, scheme), expected)


def test_io_matches_iob_encoding_of_the_same_chunks():
    rnd = random.Random(404)
    for _ in range(300):
        io_golds, io_preds, iob_golds, iob_preds = [], [], [], []
        for _ in range(rnd.randint(1, 5)):
            length = rnd.randint(1, 14)
            gold_chunks = random_chunks(rnd, length, adjacent_types_differ=True)
            pred_chunks = random_chunks(rnd, length, adjacent_types_differ=True)
            if rnd.random() < 0.5:  # share some chunks so that some are correct
                pred_chunks = [c for c in gold_chunks if rnd.random() < 0.7]
            io_golds.append(encode(gold_chunks, length, "IO"))
            io_preds.append(encode(pred_chunks, length, "IO"))
            iob_golds.append(encode(gold_chunks, length, "IOB"))
            iob_preds.append(encode(pred_chunks, length, "IOB"))
            assert M.extract_chunks(io_golds[-1], "IO") == gold_chunks
        counts = M.chunk_counts(io_golds, io_preds, "IO")
        assert counts == M.chunk_counts(iob_golds, iob_preds, "IOB")
        assert_prf_equal(M.chunk_f1(*counts), seqeval_prf(iob_golds, iob_preds))


@pytest.mark.parametrize("scheme,tags,chunks", [
    # IOB: I- without an open chunk of its type starts one; type switches split; last token
    ("IOB", ["I-PER", "I-PER", "O"], [("PER", 0, 1)]),
    ("IOB", ["B-PER", "I-LOC", "I-LOC"], [("PER", 0, 0), ("LOC", 1, 2)]),
    ("IOB", ["B-PER", "B-PER"], [("PER", 0, 0), ("PER", 1, 1)]),
    ("IOB", ["O", "O", "I-ORG"], [("ORG", 2, 2)]),
    ("IOB", [], []),
    # IOE: an I- run without E- is still a chunk; E- closes; E-X E-X is two chunks
    ("IOE", ["I-PER", "I-PER"], [("PER", 0, 1)]),
    ("IOE", ["E-PER", "E-PER"], [("PER", 0, 0), ("PER", 1, 1)]),
    ("IOE", ["E-PER", "I-PER", "E-PER"], [("PER", 0, 0), ("PER", 1, 2)]),
    ("IOE", ["I-PER", "I-LOC", "E-LOC", "O"], [("PER", 0, 0), ("LOC", 1, 2)]),
    # IOBES: a B- never closed ends at O or at the next B-/S-; I-/E- without B- start a chunk
    ("IOBES", ["B-PER", "S-PER"], [("PER", 0, 0), ("PER", 1, 1)]),
    ("IOBES", ["B-PER", "O"], [("PER", 0, 0)]),
    ("IOBES", ["I-PER", "E-PER"], [("PER", 0, 1)]),
    ("IOBES", ["S-PER", "I-PER", "E-PER"], [("PER", 0, 0), ("PER", 1, 2)]),
    ("IOBES", ["B-PER", "B-PER", "E-PER"], [("PER", 0, 0), ("PER", 1, 2)]),
    ("IOBES", ["B-PER", "I-PER", "I-PER"], [("PER", 0, 2)]),
    # IO: a run of one type is one chunk
    ("IO", ["I-PER", "I-PER", "I-LOC", "O", "I-LOC"],
     [("PER", 0, 1), ("LOC", 2, 2), ("LOC", 4, 4)]),
])
def test_documented_behaviour_on_ill_formed_sequences(scheme, tags, chunks):
    assert M.extract_chunks(tags, scheme) == chunks


@pytest.mark.parametrize("scheme,tag", [("IOE", "B-PER"), ("IO", "B-PER"), ("IOB", "E-PER"),
                                        ("IOB", "PER"), ("IOBES", "X-PER")])
def test_tag_outside_the_scheme_is_a_usage_error(scheme, tag):
    with pytest.raises(UsageError, match="--chunk_scheme"):
        M.extract_chunks(["O", tag], scheme)


def test_unknown_scheme():
    with pytest.raises(UsageError, match="--chunk_scheme"):
        M.chunk_counts([["O"]], [["O"]], "BILOU")


def test_chunk_counts_and_f1_by_hand():
    golds = [["B-PER", "I-PER", "O", "B-LOC"], ["O", "B-ORG"]]
    preds = [["B-PER", "I-PER", "O", "B-ORG"], ["O", "O"]]
    assert M.chunk_counts(golds, preds, "IOB") == (3, 2, 1)
    p, r, f = M.chunk_f1(3, 2, 1)
    assert (p, r) == (0.5, 1 / 3) and f == pytest.approx(2 * 0.5 / 3 / (0.5 + 1 / 3))


@pytest.mark.parametrize("counts,expected", [
    ((0, 0, 0), (0.0, 0.0, 0.0)),
    ((5, 0, 0), (0.0, 0.0, 0.0)),
    ((0, 3, 0), (0.0, 0.0, 0.0)),
    ((4, 2, 0), (0.0, 0.0, 0.0)),
    ((4, 2, 2), (1.0, 0.5, 2 / 3)),
])
def test_chunk_f1_zero_rules(counts, expected):
    assert M.chunk_f1(*counts) == pytest.approx(expected)


def test_chunk_counts_length_mismatch():
    with pytest.raises(ValueError):
        M.chunk_counts([["O", "O"]], [["O"]], "IOB")
    with pytest.raises(ValueError):
        M.chunk_counts([["O"]], [], "IOB")

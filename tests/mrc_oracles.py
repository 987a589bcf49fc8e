"""Independent re-statements of the two official reading-comprehension scorers, for tests.

Written from their published descriptions (SQuAD v1.1 evaluation script; CMRC 2018 evaluation
script v5), deliberately not sharing code with utils/squad_eval.py or utils/cmrc2018_eval.py,
so a test comparing the two can fail. Only the Penn Treebank word splitter of English runs is
taken from the toolkit (it is checked on its own, against nltk when nltk is installed).
"""
import re
import string


# ---- SQuAD v1.1 --------------------------------------------------------------------------
def squad_normalize(s):
    s = s.lower()
    s = "".join(ch for ch in s if ch not in set(string.punctuation))
    s = re.sub(r"\b(a|an|the)\b", " ", s)
    return " ".join(s.split())


def squad_f1(pred, gold):
    p, g = squad_normalize(pred).split(), squad_normalize(gold).split()
    remaining = list(g)
    same = 0
    for tok in p:                       # multiset intersection, counted by hand
        if tok in remaining:
            remaining.remove(tok)
            same += 1
    if same == 0:
        return 0.0
    precision, recall = same / len(p), same / len(g)
    return 2 * precision * recall / (precision + recall)


def squad_scores(dataset_json, predictions):
    """(EM %, F1 %) over every question of a SQuAD json (unanswered questions score 0)."""
    em = f1 = n = 0
    for article in dataset_json["data"]:
        for para in article["paragraphs"]:
            for qa in para["qas"]:
                n += 1
                if qa["id"] in predictions:
                    golds = [a["text"] for a in qa["answers"]]
                    pred = predictions[qa["id"]]
                    em += max(float(squad_normalize(pred) == squad_normalize(g)) for g in golds)
                    f1 += max(squad_f1(pred, g) for g in golds)
    return 100.0 * em / n, 100.0 * f1 / n


# ---- CMRC 2018 ---------------------------------------------------------------------------
CMRC_PUNCT = set("-:_*^/\\~`+=，。：？！“”；’《》·、「」（）－～『』")


def cmrc_segments(text, word_split):
    text = text.lower().strip()
    out, buf = [], []
    for ch in text:
        if ch in CMRC_PUNCT:
            continue                     # punctuation is always removed when scoring F1
        if "\u4e00" <= ch <= "\u9fa5":
            if buf:
                out += word_split("".join(buf))
                buf = []
            out.append(ch)
        else:
            buf.append(ch)
    if buf:
        out += word_split("".join(buf))
    return out


def longest_common_run(a, b):
    best = 0
    for i in range(len(a)):
        for j in range(len(b)):
            k = 0
            while i + k < len(a) and j + k < len(b) and a[i + k] == b[j + k]:
                k += 1
            best = max(best, k)
    return best


def cmrc_scores(dataset_json, predictions, word_split):
    """(EM %, F1 %) with the CMRC 2018 v5 rules; unanswered questions score 0."""
    em = f1 = n = 0
    for article in dataset_json["data"]:
        for para in article["paragraphs"]:
            for qa in para["qas"]:
                n += 1
                qid = qa["id"].strip()
                if qid not in predictions:
                    continue
                pred = str(predictions[qid])
                golds = [a["text"] for a in qa["answers"]]
                strip = lambda s: "".join(c for c in s.lower().strip() if c not in CMRC_PUNCT)
                em += 1 if any(strip(g) == strip(pred) for g in golds) else 0
                best = 0.0
                ps = cmrc_segments(pred, word_split)
                for g in golds:
                    gs = cmrc_segments(g, word_split)
                    run = longest_common_run(gs, ps)
                    if run:
                        p, r = run / len(ps), run / len(gs)
                        best = max(best, 2 * p * r / (p + r))
                f1 += best
    return 100.0 * em / n, 100.0 * f1 / n

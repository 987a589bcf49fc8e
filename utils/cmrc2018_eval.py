"""CMRC 2018 / DRCD scoring: the logic of the CMRC 2018 evaluation script (v5), in Python 3.

    python -m utils.cmrc2018_eval dev.json predictions.json     # prints EM, F1 and TOTAL

* ``mixed_segmentation``: lower-case and strip the text; every CJK character (U+4E00..U+9FA5)
  and every character of ``SP_CHAR`` is a segment of its own; each run of other characters is
  split into words by the Penn Treebank word tokenizer. With ``rm_punc`` the ``SP_CHAR``
  characters are skipped (without ending the run they sit in, as in the original).
* F1 of a prediction against one gold answer: the longest common *contiguous* run of segments
  (punctuation removed on both sides), P = run / |prediction|, R = run / |answer|, 0 when no
  segment is shared; the best over the gold answers counts.
* EM: 1 when some gold answer equals the prediction once both are lower-cased, stripped and
  rid of ``SP_CHAR`` characters.
* Questions without a prediction score 0, are reported on stderr (``Unanswered question: id``)
  and counted as skipped; F1 and EM are averaged over all questions, x100.

Deviation, documented: the original splits the non-CJK runs with ``nltk.word_tokenize``, which
needs the punkt sentence model (a separate data download). Here the runs go through nltk's
``TreebankWordTokenizer`` when nltk is installed, else through ``treebank_tokenize`` below, a
regex equivalent of it; both need no data. The Treebank tokenizer is what ``word_tokenize``
ran on each sentence when the CMRC 2018 script was written; current nltk versions of
``word_tokenize`` add rules of their own (curly quotes, quotes glued to words, contractions
before a line break), and punkt would cut a run into sentences (``"them. Thanks."`` keeps
``them.`` whole here).
"""
import re
import sys

from utils.errors import DataError, run_cli
from utils.squad_eval import load_json, score_parser

# single characters; the original list also holds the two-character "……", which can never
# equal one character, so it is left out here with no change in behaviour
SP_CHAR = frozenset([
    "-", ":", "_", "*", "^", "/", "\\", "~", "`", "+", "=",
    "，", "。", "：", "？", "！", "“", "”", "；", "’", "《", "》", "·", "、",
    "「", "」", "（", "）", "－", "～", "『", "』"])

_CJK = re.compile("[\u4e00-\u9fa5]")

# ---- Penn Treebank word tokenizer (the rules of the Treebank sed script, as nltk applies
#      them in TreebankWordTokenizer.tokenize with convert_parentheses=False) ------------------
_TB_BEFORE = [                                  # applied to the bare text
    (re.compile(r'^"'), "``"),
    (re.compile(r"(``)"), r" \1 "),
    (re.compile(r"([ (\[{<])(\"|'{2})"), r"\1 `` "),
    (re.compile(r"([:,])([^\d])"), r" \1 \2"),
    (re.compile(r"([:,])$"), r" \1 "),
    (re.compile(r"\.\.\."), " ... "),
    (re.compile(r"[;@#$%&]"), r" \g<0> "),
    (re.compile(r"([^.])(\.)([\])}>\"']*)\s*$"), r"\1 \2\3 "),
    (re.compile(r"[?!]"), r" \g<0> "),
    (re.compile(r"([^'])' "), r"\1 ' "),
    (re.compile(r"[\][(){}<>]"), r" \g<0> "),
    (re.compile(r"--"), " -- "),
]
_TB_AFTER = [                                   # applied to " " + text + " "
    (re.compile(r"''"), " '' "),
    (re.compile(r'"'), " '' "),
    (re.compile(r"([^' ])('[sS]|'[mM]|'[dD]|') "), r"\1 \2 "),
    (re.compile(r"([^' ])('ll|'LL|'re|'RE|'ve|'VE|n't|N'T) "), r"\1 \2 "),
] + [(re.compile(p, re.IGNORECASE), r" \1 \2 ") for p in (
    r"\b(can)(not)\b", r"\b(d)('ye)\b", r"\b(gim)(me)\b", r"\b(gon)(na)\b", r"\b(got)(ta)\b",
    r"\b(lem)(me)\b", r"\b(more)('n)\b", r"\b(wan)(na)(?=\s)",
    r" ('t)(is)\b", r" ('t)(was)\b")]


def treebank_tokenize(text):
    """Penn Treebank word tokens of `text` (the same as nltk's TreebankWordTokenizer)."""
    for pattern, repl in _TB_BEFORE:
        text = pattern.sub(repl, text)
    text = " " + text + " "
    for pattern, repl in _TB_AFTER:
        text = pattern.sub(repl, text)
    return text.split()


def _word_tokenizer():
    try:
        from nltk.tokenize import TreebankWordTokenizer
    except ImportError:
        return treebank_tokenize
    return TreebankWordTokenizer().tokenize


word_tokenize = _word_tokenizer()


# ---- scoring ------------------------------------------------------------------------------
def mixed_segmentation(text, rm_punc=False):
    """Segments of `text`: CJK characters and SP_CHAR characters alone, other runs as words."""
    text = str(text).lower().strip()
    segs, run = [], ""
    for char in text:
        if rm_punc and char in SP_CHAR:
            continue
        if _CJK.match(char) or char in SP_CHAR:
            if run:
                segs.extend(word_tokenize(run))
                run = ""
            segs.append(char)
        else:
            run += char
    if run:
        segs.extend(word_tokenize(run))
    return segs


def remove_punctuation(text):
    return "".join(c for c in str(text).lower().strip() if c not in SP_CHAR)


def find_lcs(s1, s2):
    """Longest common contiguous sub-list of s1 and s2: (the sub-list, its length)."""
    best, end = 0, 0
    prev = [0] * (len(s2) + 1)
    for i in range(len(s1)):
        cur = [0] * (len(s2) + 1)
        for j in range(len(s2)):
            if s1[i] == s2[j]:
                cur[j + 1] = prev[j] + 1
                if cur[j + 1] > best:
                    best, end = cur[j + 1], i + 1
        prev = cur
    return s1[end - best:end], best


def calc_f1_score(answers, prediction):
    pred_segs = mixed_segmentation(prediction, rm_punc=True)
    scores = []
    for answer in answers:
        ans_segs = mixed_segmentation(answer, rm_punc=True)
        _, lcs = find_lcs(ans_segs, pred_segs)
        if lcs == 0:
            scores.append(0)
            continue
        precision, recall = lcs / len(pred_segs), lcs / len(ans_segs)
        scores.append(2 * precision * recall / (precision + recall))
    return max(scores)


def calc_em_score(answers, prediction):
    pred = remove_punctuation(prediction)
    return int(any(remove_punctuation(a) == pred for a in answers))


def evaluate(ground_truth, predictions):
    """ground_truth: a SQuAD-format json object; predictions: {question id: text}.

    Returns (F1 %, EM %, number of questions, number of unanswered questions)."""
    f1 = em = 0.0
    total = skipped = 0
    for article in ground_truth["data"]:
        for paragraph in article["paragraphs"]:
            for qa in paragraph["qas"]:
                total += 1
                qid = qa["id"].strip()
                answers = [a["text"] for a in qa["answers"]]
                if qid not in predictions:
                    sys.stderr.write("Unanswered question: %s\n" % qid)
                    skipped += 1
                    continue
                prediction = str(predictions[qid])
                f1 += calc_f1_score(answers, prediction)
                em += calc_em_score(answers, prediction)
    if total == 0:
        raise DataError("the dataset has no questions to score")
    return 100.0 * f1 / total, 100.0 * em / total, total, skipped


def eval_file(dataset_file, prediction_file):
    """(EM, F1, (EM + F1) / 2, number of questions) for a SQuAD-format json and predictions."""
    data = load_json(dataset_file, "dataset")
    if not isinstance(data, dict) or not isinstance(data.get("data"), list):
        raise DataError("%s: not a SQuAD-format json (no \"data\" list)" % dataset_file)
    f1, em, total, _ = evaluate(data, load_json(prediction_file, "predictions"))
    return em, f1, (em + f1) / 2, total


def main(argv):
    parser = score_parser("python -m utils.cmrc2018_eval",
                          "Exact match and F1 of predictions, by the CMRC 2018 rules.")
    args = parser.parse_args(argv)
    em, f1, _, total = eval_file(args.dataset, args.predictions)
    print("EM: %.3f" % em)
    print("F1: %.3f" % f1)
    print("TOTAL: %d" % total)
    return 0


if __name__ == "__main__":
    run_cli(main)

"""The two reading-comprehension scorers against code nobody here wrote, on a few hundred
generated questions (fixed seeds) full of the cases that matter.

* utils/squad_eval.py against torchmetrics' SQuAD metric (the official v1.1 rules, adapted
  from the codalab script): EM and F1 per question and in total, exactly equal (computed in
  float64 by ernie_testkit.squad_by_torchmetrics, so in the same precision).
* utils/cmrc2018_eval.py: its Penn Treebank fallback `treebank_tokenize` against nltk's
  TreebankWordTokenizer on a few hundred varied English strings; the scorer (no pip package
  carries it) against a straightforward re-derivation of the CMRC 2018 rules written below
  (longest common run by difflib, words by nltk), per question and in total, plus cases
  computed by hand.
"""
import difflib
import json
import random
import warnings

import pytest

from ernie_testkit import squad_by_torchmetrics
from utils import cmrc2018_eval as ce
from utils import squad_eval

pytest.importorskip("torchmetrics")
TreebankWordTokenizer = pytest.importorskip("nltk.tokenize").TreebankWordTokenizer


# ---- generated SQuAD-style questions ------------------------------------------------------
WORDS = ["Notre", "Dame", "Virgin", "Mary", "statue", "golden", "dome", "1879", "3.5",
         "U.S.", "Saint", "Bernadette", "Lourdes", "grotto", "Father", "Sorin", "college",
         "north-east", "O'Hare", "rock'n'roll", "co-op", "école", "naïve", "ERNIE", "BERT",
         "模型", "北京大学", "the", "a", "an", "of", "and", "in", "The", "A", "An", "theory",
         "another", "thea", "x", "$100", "50%", "2019-07-17", "C++", "e-mail"]
PUNCT = [".", ",", "!", "?", ";", ":", "'", '"', "(", ")", "-", "--", "...", "“", "”", "，",
         "。", "—", "‘"]


def gold_answer(rng):
    """1-6 words; at least one that is not an article, so it never normalises to nothing."""
    while True:
        words = [rng.choice(WORDS) for _ in range(rng.randint(1, 6))]
        if rng.random() < 0.3:
            k = rng.randrange(len(words) + 1)
            words.insert(k, rng.choice(PUNCT))
        text = " ".join(words)
        if squad_eval.normalize_answer(text):
            return text


def perturb(gold, rng):
    """A prediction made from a gold answer: the edge cases of the v1.1 rules."""
    words = gold.split()
    kind = rng.randrange(16)
    if kind == 0:
        return gold
    if kind == 1:
        return gold.upper() if rng.random() < 0.5 else gold.lower()
    if kind == 2:
        return rng.choice(["the ", "A ", "an ", "The the "]) + gold + rng.choice(["", " a"])
    if kind == 3:
        return rng.choice(PUNCT) + gold + rng.choice(PUNCT)
    if kind == 4:                                  # whitespace of every kind
        return rng.choice(["  ", "\t", "\n ", ""]).join(["", *words, ""]).replace(
            " ", rng.choice([" ", "   ", "\t"]))
    if kind == 5:                                  # part of the answer
        i = rng.randrange(len(words))
        return " ".join(words[i:i + rng.randint(1, 3)])
    if kind == 6:                                  # the answer and more
        return " ".join(words + [rng.choice(WORDS) for _ in range(rng.randint(1, 4))])
    if kind == 7:                                  # the same words, another order
        shuffled = list(words)
        rng.shuffle(shuffled)
        return " ".join(shuffled)
    if kind == 8:                                  # repeated words (bags, not sets)
        return " ".join(words + words[:rng.randint(1, len(words))])
    if kind == 9:
        return ""
    if kind == 10:
        return rng.choice(["   ", "\t\n", ".", "...", "the", "a an the", "!?"])
    if kind == 11:                                 # mixed Chinese / English, no spaces
        return "".join(words) + rng.choice(["", "的", "模型"])
    if kind == 12:                                 # punctuation glued inside words
        return " ".join(w + rng.choice(["", ",", ".", "'s", "-"]) for w in words)
    if kind == 13:                                 # articles as parts of words stay
        return " ".join(words) + " " + rng.choice(["theory", "another", "thea", "anthem"])
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 5)))   # unrelated


def squad_questions(seed=20190716, n=400):
    """(dataset json, predictions): n questions with 1-3 gold answers each; about 1 in 12
    unanswered (no key in the predictions)."""
    rng = random.Random(seed)
    qas, preds = [], {}
    for k in range(n):
        golds = [gold_answer(rng) for _ in range(rng.choice([1, 1, 2, 3]))]
        if len(golds) > 1 and rng.random() < 0.3:
            golds[1] = golds[0].upper() + "."      # a variant of the first
        qid = "q%03d" % k
        qas.append({"id": qid, "question": "?", "answers": [
            {"text": g, "answer_start": 0} for g in golds]})
        if rng.random() >= 1 / 12:
            preds[qid] = perturb(rng.choice(golds), rng)
    data = {"version": "1.1", "data": [
        {"title": "t%d" % a, "paragraphs": [{"context": "", "qas": qas[a::3]}]}
        for a in range(3)]}
    return data, preds


def all_qas(data):
    return [q for a in data["data"] for p in a["paragraphs"] for q in p["qas"]]


def test_squad_generated_questions_cover_the_edge_cases():
    data, preds = squad_questions()
    qas = all_qas(data)
    texts = list(preds.values())
    assert len(qas) == 400 and 300 < len(preds) < 390
    assert sum(len(q["answers"]) > 1 for q in qas) > 80
    assert "" in texts and any(t and not squad_eval.normalize_answer(t) for t in texts)
    assert any("\t" in t or "  " in t for t in texts)
    assert any(any("\u4e00" <= c <= "\u9fa5" for c in t) for t in texts)
    scores = [squad_eval.evaluate([{"paragraphs": [{"qas": [q]}]}], preds)
              for q in qas if q["id"] in preds]
    f1s = {round(s["f1"], 6) for s in scores}
    assert sum(s["exact_match"] == 100 for s in scores) > 60 and len(f1s) > 15


def test_squad_per_question_equals_torchmetrics(capsys):
    data, preds = squad_questions()
    for q in all_qas(data):
        ours = squad_eval.evaluate([{"paragraphs": [{"qas": [q]}]}], preds)
        assert ours == squad_by_torchmetrics([q], preds), (q, preds.get(q["id"]))
    assert "Unanswered question" in capsys.readouterr().err


def test_squad_totals_equal_torchmetrics(tmp_path, capsys):
    data, preds = squad_questions(seed=7, n=500)
    (tmp_path / "dev.json").write_text(json.dumps(data), encoding="utf-8")
    (tmp_path / "pred.json").write_text(json.dumps(preds), encoding="utf-8")
    em, f1, avg, total = squad_eval.eval_file(str(tmp_path / "dev.json"),
                                              str(tmp_path / "pred.json"))
    assert total == 500
    assert {"exact_match": em, "f1": f1} == squad_by_torchmetrics(data, preds)
    assert avg == (em + f1) / 2
    assert 10 < em < 45 < f1 < 90                  # neither trivially 0 nor 100
    # the metric class, fed in batches (its sums are float32 whatever the default dtype)
    from torchmetrics.text import SQuAD
    qas, metric = all_qas(data), SQuAD()
    for i in range(0, len(qas), 64):
        batch = qas[i:i + 64]
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Unanswered question")
            metric.update([{"id": q["id"], "prediction_text": preds[q["id"]]}
                           for q in batch if q["id"] in preds],
                          [{"id": q["id"], "answers": {"text": [a["text"] for a in q["answers"]],
                                                       "answer_start": [0] * len(q["answers"])}}
                           for q in batch])
    out = metric.compute()
    assert abs(out["exact_match"].item() - em) <= 1e-4 and abs(out["f1"].item() - f1) <= 1e-4
    capsys.readouterr()


def test_squad_empty_gold_answer_follows_v1_1_not_torchmetrics():
    """The one place torchmetrics leaves v1.1: a gold answer that normalises to nothing
    ("The", "!"). v1.1 (and the toolkit) gives F1 0 when no token is shared, so also an
    empty prediction scores F1 0 (EM 1); torchmetrics adds SQuAD 2.0's no-answer rule (F1 1
    when both are empty). The generator above never makes such a gold answer."""
    q = {"id": "e", "answers": [{"text": "The"}]}
    ours = squad_eval.evaluate([{"paragraphs": [{"qas": [q]}]}], {"e": "a"})
    assert ours == {"exact_match": 100.0, "f1": 0.0}
    assert squad_by_torchmetrics([q], {"e": "a"}) == {"exact_match": 100.0, "f1": 100.0}
    assert squad_eval.f1_score("", "!") == 0 and squad_eval.exact_match_score("", "!")


# ---- CMRC 2018: the Treebank word splitter ------------------------------------------------
TB_WORDS = ["They", "'ll", "ERNIE", "Baidu", "model", "U.S.", "Mr.", "e.g.", "3.88", "1,000",
            "2019-07-17", "12:30", "$5", "50%", "#1", "@home", "AT&T", "v2.0", "C++",
            "co-op", "rock'n'roll", "O'Neil", "it's", "can't", "won't", "I'm", "we've",
            "they'd", "you're", "isn't", "CANNOT", "gonna", "gimme", "wanna", "lemme",
            "d'ye", "'tis", "'twas", "more'n", "gotta", "James'", "dogs'", "'quoted'",
            "中文", "北京大学", "模型", "２０１９", "ｅｒｎｉｅ", "naïve", "café"]
TB_MARKS = [".", ",", ";", ":", "!", "?", "...", "--", "-", "(", ")", "[", "]", "{", "}",
            "<", ">", '"', "'", "``", "''", "“", "”", "‘", "’", "&", "@", "#", "$", "%",
            "…", "，", "。", "、", "（", "）"]


def treebank_strings(seed=2018, n=400):
    """Varied English strings: words, contractions, numbers, quotes, brackets and
    punctuation, glued or spaced, some with Chinese, tabs and newlines."""
    rng = random.Random(seed)
    out = ['"Hello," she said (twice) -- cannot stop...', "They'll save and invest more.",
           "hi, my name can't hello,", "Good muffins cost $3.88\nin New York.  Thanks.",
           "''", '"', "'", "", "   ", "a.", "A. B. C.", "(a) [b] {c} <d>", "ERNIE 2.0模型。"]
    while len(out) < n:
        parts = []
        for _ in range(rng.randint(1, 12)):
            roll = rng.random()
            parts.append(rng.choice(TB_WORDS) if roll < 0.6 else rng.choice(TB_MARKS))
            parts.append(rng.choice([" ", " ", " ", "", "\t", "  ", "\n"]))
        text = "".join(parts)
        if rng.random() < 0.2:
            text = '"' + text + rng.choice(['"', '."', '?"', "'", ""])
        out.append(text)
    return out


def test_treebank_fallback_equals_nltk_on_varied_strings():
    nltk_tokenize = TreebankWordTokenizer().tokenize
    texts = treebank_strings()
    assert len(set(texts)) > 380
    differ = [t for t in texts if ce.treebank_tokenize(t) != nltk_tokenize(t)]
    assert differ == []
    # the strings exercise the rules: contractions split, quotes converted, ... kept whole
    tokens = [tok for t in texts for tok in nltk_tokenize(t)]
    for expected in ("n't", "'ll", "``", "''", "...", "--", "ca", "gon", "'t", "(", "$"):
        assert expected in tokens, expected


# ---- CMRC 2018: the scorer, re-derived from its rules -----------------------------------
# The CMRC 2018 v5 rules (ymcui/cmrc2018, cmrc2018_evaluate.py): the punctuation list, one
# character each (its two-character "……" entry can never equal a character, so it is left out)
CMRC_PUNCT = ("- : _ * ^ / \\ ~ ` + = ， 。 ： ？ ！ “ ” ； ’ 《 》 · 、 「 」 （ ） － ～ "
              "『 』").split()
NLTK_TB = TreebankWordTokenizer()


def segments(text, drop_punct):
    """Lower-case, strip; a character U+4E00..U+9FA5 or of the list is a segment alone (with
    drop_punct those of the list are skipped, the run around them going on); the runs of
    other characters are cut into words by the Treebank tokenizer."""
    out, run = [], []
    for char in text.lower().strip():
        if drop_punct and char in CMRC_PUNCT:
            continue
        if 0x4E00 <= ord(char) <= 0x9FA5 or char in CMRC_PUNCT:
            out += NLTK_TB.tokenize("".join(run))
            run = []
            out.append(char)
        else:
            run.append(char)
    return out + NLTK_TB.tokenize("".join(run))


def cmrc_f1(golds, pred):
    best = 0.0
    p = segments(pred, True)
    for gold in golds:
        g = segments(gold, True)
        common = difflib.SequenceMatcher(None, g, p, autojunk=False).find_longest_match(
            0, len(g), 0, len(p)).size        # the longest common contiguous run
        if common:
            precision, recall = common / len(p), common / len(g)
            best = max(best, 2 * precision * recall / (precision + recall))
    return best


def cmrc_em(golds, pred):
    def bare(text):
        return "".join(c for c in text.lower().strip() if c not in CMRC_PUNCT)
    return float(any(bare(g) == bare(pred) for g in golds))


def cmrc_totals(data, preds):
    """(EM %, F1 %, questions, unanswered) over every question; ids are stripped."""
    em = f1 = 0.0
    n = missing = 0
    for q in all_qas(data):
        n += 1
        qid = q["id"].strip()
        if qid not in preds:
            missing += 1
            continue
        golds = [a["text"] for a in q["answers"]]
        em += cmrc_em(golds, str(preds[qid]))
        f1 += cmrc_f1(golds, str(preds[qid]))
    return 100.0 * em / n, 100.0 * f1 / n, n, missing


MIXINS = ["ERNIE", "BERT 2.0", "v2.0", "U.S.", "can't", "A.B", "x,y", "3.88", "(1998)",
          "Mr. Smith's", '"quoted"', "e-mail", "ｅｒｎｉｅ", "〇", "㐀", "…", "——", "‘", "％"]


def cmrc_questions(seed=2018, n=400):
    """Questions whose gold answers are spans of real People's Daily sentences, with English
    and punctuation mixed in, and predictions near them."""
    from tools.prepare_data import people_daily_sentences
    rng = random.Random(seed)
    texts = ["".join(words) for words, _ in people_daily_sentences(max_lines=400)]
    texts = [t for t in texts if len(t) >= 12]
    qas, preds = [], {}
    for k in range(n):
        text = rng.choice(texts)
        i = rng.randrange(len(text) - 8)
        gold = text[i:i + rng.randint(1, 8)]
        if rng.random() < 0.3:
            gold = gold[:2] + rng.choice([" ", ""]) + rng.choice(MIXINS) + " " + gold[2:]
        golds = [gold]
        if rng.random() < 0.35:
            golds.append(text[i:i + rng.randint(2, 10)] + rng.choice(["", "。", "》"]))
        if rng.random() < 0.1:
            golds.append(rng.choice(MIXINS))
        qid = "c%03d" % k
        qas.append({"id": qid + rng.choice(["", "", " "]), "question": "",
                    "answers": [{"text": g} for g in golds]})
        roll = rng.random()
        if roll < 0.08:
            continue                                          # unanswered
        if roll < 0.25:
            pred = rng.choice(golds)
        elif roll < 0.33:
            pred = rng.choice(["", " ", "。", "《》", "-", "the"])
        elif roll < 0.45:                                     # case, spaces, punctuation
            g = rng.choice(golds)
            pred = rng.choice([g.upper(), " " + g + " ", "《" + g + "》", g + "，", g + "."])
        else:                                                 # a nearby span, maybe mixed
            j = max(0, i + rng.randint(-4, 4))
            pred = text[j:j + rng.randint(1, 12)]
            if rng.random() < 0.3:
                pred += rng.choice([" ", ""]) + rng.choice(MIXINS)
        preds[qid] = pred
    data = {"data": [{"paragraphs": [{"context": "", "qas": qas}]}]}
    return data, preds


def test_cmrc_generated_questions_cover_the_edge_cases():
    data, preds = cmrc_questions()
    qas = all_qas(data)
    assert len(qas) == 400 and 330 < len(preds) < 390
    assert sum(len(q["answers"]) > 1 for q in qas) > 100
    assert sum(q["id"] != q["id"].strip() for q in qas) > 50
    assert "" in preds.values()
    assert sum(any(c.isascii() and c.isalpha() for c in p) for p in preds.values()) > 40
    f1s = [cmrc_f1([a["text"] for a in q["answers"]], preds[q["id"].strip()])
           for q in qas if q["id"].strip() in preds]
    assert sum(f == 1.0 for f in f1s) > 60 and sum(f == 0 for f in f1s) > 20
    assert len({round(f, 6) for f in f1s}) > 25


def test_cmrc_per_question_equals_rederivation():
    data, preds = cmrc_questions()
    for q in all_qas(data):
        pred = preds.get(q["id"].strip())
        if pred is None:
            continue
        golds = [a["text"] for a in q["answers"]]
        assert ce.calc_f1_score(golds, pred) == cmrc_f1(golds, pred), (golds, pred)
        assert ce.calc_em_score(golds, pred) == cmrc_em(golds, pred), (golds, pred)


@pytest.mark.parametrize("splitter", ["nltk", "fallback"])
def test_cmrc_totals_equal_rederivation(splitter, tmp_path, monkeypatch, capsys):
    """eval_file on the json files, with nltk installed (as here) and with the toolkit's
    own Treebank splitter (what runs without nltk)."""
    if splitter == "fallback":
        monkeypatch.setattr(ce, "word_tokenize", ce.treebank_tokenize)
    data, preds = cmrc_questions(seed=11, n=500)
    (tmp_path / "dev.json").write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    (tmp_path / "pred.json").write_text(json.dumps(preds, ensure_ascii=False),
                                        encoding="utf-8")
    em, f1, avg, total = ce.eval_file(str(tmp_path / "dev.json"), str(tmp_path / "pred.json"))
    want_em, want_f1, n, missing = cmrc_totals(data, preds)
    assert (em, f1, total) == (want_em, want_f1, n) and avg == (em + f1) / 2
    assert 10 < em < 45 < f1 < 90
    assert capsys.readouterr().err.count("Unanswered question:") == missing > 20


# answer(s), prediction, F1 and EM worked out by hand from the rules
CMRC_BY_HAND = [
    # segments 北 京 大 学 / 北 京 的 大 学: longest common run 2, P 2/5, R 2/4
    (["北京大学"], "北京的大学", 2 * (2 / 5) * (2 / 4) / (2 / 5 + 2 / 4), 0),
    # the best gold answer counts
    (["北京大学", "北京的大学"], "北京的大学", 1.0, 1),
    # punctuation of the list is removed for both EM and F1; case does not matter
    (["《红楼梦》"], "红楼梦", 1.0, 1),
    (["Red Mansions"], "red MANSIONS", 1.0, 1),
    # a listed character inside an English run does not end it: abcdef, one word, twice
    (["abc-def"], "abcdef", 1.0, 1),
    # ASCII , . ? are not in the list: "x,y" is x , y (3 words) against x y: run 1
    (["x,y"], "x y", 2 * (1 / 2) * (1 / 3) / (1 / 2 + 1 / 3), 0),
    # mixed: ernie 2.0 模 型 against ernie 2.0 的 模 型: run 2 (either half), P 2/5, R 2/4
    (["ERNIE 2.0模型"], "ernie 2.0的模型", 2 * (2 / 5) * (2 / 4) / (2 / 5 + 2 / 4), 0),
    # contractions are split: can n't go (3 words) inside "we can't go": run 3, P 3/4, R 1
    (["can't go"], "we can't go", 2 * (3 / 4) * 1 / (3 / 4 + 1), 0),
    # an empty prediction, or one of punctuation only, has no segments: F1 0
    (["北京"], "", 0.0, 0),
    (["北京"], "。《》", 0.0, 0),
    # EM compares characters (spaces kept): "北京 大学" is not "北京大学", F1 is 1
    (["北京 大学"], "北京大学", 1.0, 0),
]


@pytest.mark.parametrize("golds, pred, f1, em", CMRC_BY_HAND)
def test_cmrc_hand_computed(golds, pred, f1, em):
    assert ce.calc_f1_score(golds, pred) == pytest.approx(f1, abs=1e-12)
    assert cmrc_f1(golds, pred) == pytest.approx(f1, abs=1e-12)
    assert ce.calc_em_score(golds, pred) == em == cmrc_em(golds, pred)

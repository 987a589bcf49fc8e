"""utils/cmrc2018_eval.py: hand-computed CMRC 2018 cases, the Treebank word splitter (against
nltk when it is installed), and an independent re-statement of the scoring on real text."""
import json
import random

import pytest

from mrc_oracles import cmrc_scores
from utils import cmrc2018_eval as ce


def test_mixed_segmentation_by_hand():
    assert ce.mixed_segmentation("ERNIE是百度的模型") == ["ernie", "是", "百", "度", "的", "模", "型"]
    assert ce.mixed_segmentation(" 《红楼梦》，曹雪芹 ") == ["《", "红", "楼", "梦", "》", "，", "曹", "雪", "芹"]
    assert ce.mixed_segmentation("《红楼梦》", rm_punc=True) == ["红", "楼", "梦"]
    # a removed punctuation character does not end the run it sits in (as in the original)
    assert ce.mixed_segmentation("abc-def", rm_punc=True) == ["abcdef"]
    assert ce.mixed_segmentation("abc-def") == ["abc", "-", "def"]
    # ASCII , . ? are not in the list: the Treebank splitter handles them
    assert ce.mixed_segmentation("在2019年,v2.0发布?") == ["在", "2019", "年", ",", "v2.0", "发", "布", "?"]


def test_scores_by_hand():
    # answer 北京大学 vs prediction 北京的大学: longest common contiguous run 2 -> p 2/5, r 2/4
    assert ce.calc_f1_score(["北京大学"], "北京的大学") == pytest.approx(2 * 0.4 * 0.5 / 0.9)
    assert ce.calc_f1_score(["北京大学", "北京的大学"], "北京的大学") == 1.0
    assert ce.calc_f1_score(["。"], "北京") == 0
    assert ce.calc_em_score(["《红楼梦》"], "红楼梦") == 1
    assert ce.calc_em_score(["Red Mansions"], "red mansions") == 1
    assert ce.calc_em_score(["红楼梦"], "红楼梦。") == 1
    assert ce.calc_em_score(["红楼梦"], "红楼") == 0
    assert ce.find_lcs(list("abcxbcd"), list("zbcdq")) == (list("bcd"), 3)


def test_evaluate_counts_unanswered_as_zero(capsys):
    gold = {"data": [{"paragraphs": [{"qas": [
        {"id": "q1 ", "question": "", "answers": [{"text": "北京"}]},
        {"id": "q2", "question": "", "answers": [{"text": "上海"}]}]}]}]}
    f1, em, total, skipped = ce.evaluate(gold, {"q1": "北京"})
    assert (f1, em, total, skipped) == (50.0, 50.0, 2, 1)
    assert "Unanswered question: q2" in capsys.readouterr().err


TREEBANK_CASES = {
    "They'll save and invest more.": ["They", "'ll", "save", "and", "invest", "more", "."],
    "hi, my name can't hello,": ["hi", ",", "my", "name", "ca", "n't", "hello", ","],
    'Good muffins cost $3.88\nin New York.  Please buy me\ntwo of them.\nThanks.':
        ["Good", "muffins", "cost", "$", "3.88", "in", "New", "York.", "Please", "buy", "me",
         "two", "of", "them.", "Thanks", "."],
    '"Hello," she said (twice) -- cannot stop...': [
        "``", "Hello", ",", "''", "she", "said", "(", "twice", ")", "--", "can", "not", "stop",
        "..."],
}


@pytest.mark.parametrize("text", sorted(TREEBANK_CASES))
def test_treebank_fallback_by_hand(text):
    assert ce.treebank_tokenize(text) == TREEBANK_CASES[text]


def test_treebank_fallback_equals_nltk():
    nltk_tokenize = pytest.importorskip("nltk.tokenize").TreebankWordTokenizer().tokenize
    rng = random.Random(0)
    alphabet = "abAB01 .,:;!?'\"()[]{}<>-`$%&@#\tn't"
    texts = ["".join(rng.choice(alphabet) for _ in range(rng.randint(1, 30)))
             for _ in range(20000)] + list(TREEBANK_CASES)
    assert [t for t in texts if ce.treebank_tokenize(t) != nltk_tokenize(t)] == []


def test_matches_restated_logic_on_people_daily_text(tmp_path):
    from utils.prepare_data import people_daily_sentences
    rng = random.Random(1)
    qas, preds = [], {}
    for k, (words, _) in enumerate(people_daily_sentences(max_lines=120)):
        text = "".join(words)
        if len(text) < 8:
            continue
        i = rng.randrange(len(text) - 4)
        gold = text[i:i + rng.randint(1, 8)]
        golds = [{"text": gold}] + ([{"text": text[i:i + 3] + "A.B"}] if k % 3 == 0 else [])
        qas.append({"id": "q%d" % k, "question": "", "answers": golds})
        roll = rng.random()
        if roll < 0.1:
            continue
        j = max(0, i + rng.randint(-3, 3))
        preds["q%d" % k] = gold if roll < 0.3 else text[j:j + rng.randint(1, 10)] + \
            rng.choice(["", "。", " x,y", "（"])
    data = {"data": [{"paragraphs": [{"context": "", "qas": qas}]}]}
    (tmp_path / "gold.json").write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    (tmp_path / "pred.json").write_text(json.dumps(preds, ensure_ascii=False), encoding="utf-8")
    em, f1, avg, total = ce.eval_file(str(tmp_path / "gold.json"), str(tmp_path / "pred.json"))
    want_em, want_f1 = cmrc_scores(data, preds, ce.treebank_tokenize)
    assert total == len(qas) > 200
    assert 0 < em < 100 and 0 < f1 < 100
    assert abs(em - want_em) <= 1e-9 and abs(f1 - want_f1) <= 1e-9
    assert avg == pytest.approx((em + f1) / 2)

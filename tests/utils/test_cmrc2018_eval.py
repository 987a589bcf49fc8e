"""utils/cmrc2018_eval.py: hand-computed CMRC 2018 cases and the Treebank word splitter
(against nltk when it is installed). The scoring against a re-derivation of the CMRC 2018 rules
on generated People's Daily questions: tests/finetune/test_mrc_scorer_oracles.py."""
import random

import pytest

from utils import cmrc2018_eval as ce


def test_mixed_segmentation_by_hand():
    assert ce.mixed_segmentation("ERNIE是百度的模型") == [
        "ernie", "是", "百", "度", "的", "模", "型"]
    assert ce.mixed_segmentation(" 《红楼梦》，曹雪芹 ") == [
        "《", "红", "楼", "梦", "》", "，", "曹", "雪", "芹"]
    assert ce.mixed_segmentation("《红楼梦》", rm_punc=True) == ["红", "楼", "梦"]
    # a removed punctuation character does not end the run it sits in (as in the original)
    assert ce.mixed_segmentation("abc-def", rm_punc=True) == ["abcdef"]
    assert ce.mixed_segmentation("abc-def") == ["abc", "-", "def"]
    # ASCII , . ? are not in the list: the Treebank splitter handles them
    assert ce.mixed_segmentation("在2019年,v2.0发布?") == [
        "在", "2019", "年", ",", "v2.0", "发", "布", "?"]


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

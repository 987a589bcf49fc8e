"""FullTokenizer must give exactly the ids transformers.BertTokenizer gives, line by line, on
thousands of real lines through both real ERNIE vocabularies, and on hand-picked edge cases."""
import pytest
from bert_oracle import bert_oracle

import tokenization

MIN_LINES = 2000


def _ids(tok, text):
    return tok.convert_tokens_to_ids(tok.tokenize(text))


def assert_same_ids(ours, oracle, lines, what):
    """Compare every line; on failure list the first mismatches (line, both token lists)."""
    __tracebackhide__ = True
    mismatches = []
    for number, line in enumerate(lines):
        got, want = _ids(ours, line), _ids(oracle, line)
        if got != want:
            mismatches.append((number, line, ours.tokenize(line), oracle.tokenize(line)))
    if mismatches:
        report = ["%d of %d %s lines differ from BertTokenizer; first ones:"
                  % (len(mismatches), len(lines), what)]
        for number, line, ours_tokens, oracle_tokens in mismatches[:5]:
            first = next((i for i, (a, b) in enumerate(zip(ours_tokens, oracle_tokens)) if a != b),
                         min(len(ours_tokens), len(oracle_tokens)))
            report.append("  line #%d %r\n    first difference at token %d\n    ours:   %r\n"
                          "    oracle: %r" % (number, line[:200], first,
                                              ours_tokens[max(0, first - 3):first + 5],
                                              oracle_tokens[max(0, first - 3):first + 5]))
        pytest.fail("\n".join(report), pytrace=False)


def test_corpora_are_big_enough(chinese_lines, english_lines):
    assert len(chinese_lines) >= MIN_LINES
    assert len(english_lines) >= MIN_LINES
    # the POS tags really were stripped, and the English text is English
    assert not any("/n " in line or "/w" in line for line in chinese_lines)
    assert sum("the" in line.lower().split() for line in english_lines) > MIN_LINES // 4


def test_chinese_vocab_on_chinese_lines(zh_vocab, zh_vocab_one_per_line, chinese_lines):
    ours = tokenization.FullTokenizer(zh_vocab, do_lower_case=True)
    oracle = bert_oracle(zh_vocab_one_per_line, do_lower_case=True)
    assert_same_ids(ours, oracle, chinese_lines, "Chinese (zh vocab)")


def test_english_vocab_on_english_lines(en_vocab, english_lines):
    ours = tokenization.FullTokenizer(en_vocab, do_lower_case=True)
    oracle = bert_oracle(en_vocab, do_lower_case=True)
    assert_same_ids(ours, oracle, english_lines, "English (en vocab)")


def test_english_vocab_on_chinese_lines(en_vocab, chinese_lines):
    ours = tokenization.FullTokenizer(en_vocab, do_lower_case=True)
    oracle = bert_oracle(en_vocab, do_lower_case=True)
    assert_same_ids(ours, oracle, chinese_lines, "Chinese (en vocab)")


def test_cased_path_on_english_lines(en_vocab, english_lines):
    """do_lower_case=False: no lower-casing and no accent stripping, on both sides."""
    ours = tokenization.FullTokenizer(en_vocab, do_lower_case=False)
    oracle = bert_oracle(en_vocab, do_lower_case=False)
    assert_same_ids(ours, oracle, english_lines[:600], "English cased (en vocab)")


EDGE_CASES = [
    "",
    "   \t\n  ",
    "\u3000\u00a0",
    "Héllo Ça va? Ñandú, naïve café, Ångström",
    "ÉCOLE résumé",
    "a\u0000b c\ufffdd",
    "\u0000\ufffd",
    "tab\there\r\nnew\x0bline\x0c\x1b[0mbell\x07",
    "zero\u200bwidth soft\u00adhyphen bom\ufeffx",
    "I ❤ emoji 😀 ok😀ok 👍🏽 🇨🇳 ☃",
    "中文English混合123，测试！ＡＢＣ全角",
    "ERNIE是百度的模型。He said: \"it's 2019\" — ok…",
    "x" * 100,
    "x" * 101,
    "supercalifragilistic" * 6,
    "中" * 150,
    "𠀀𪜀 rare ideographs 龘 乂",
    "한국어 日本語のテキスト ไทย العربية русский",
    "$5.00 ^caret^ `tick` ~tilde~ {brace} |pipe| @at #hash",
    "unaffable running jumped",
    "İstanbul ǅemal ß STRASSE",
    "ﬁne ligature ½ ² ™ ©",
]


@pytest.fixture(scope="module")
def tokenizer_pairs(en_vocab, zh_vocab, zh_vocab_one_per_line):
    """(vocab name, do_lower_case) -> (our FullTokenizer, BertTokenizer), built once."""
    pairs = {}
    for name, ours_vocab, oracle_vocab in (("en", en_vocab, en_vocab),
                                           ("zh", zh_vocab, zh_vocab_one_per_line)):
        for lower in (True, False):
            pairs[name, lower] = (tokenization.FullTokenizer(ours_vocab, do_lower_case=lower),
                                  bert_oracle(oracle_vocab, do_lower_case=lower))
    return pairs


@pytest.mark.parametrize("do_lower_case", [True, False])
@pytest.mark.parametrize("vocab", ["en", "zh"])
@pytest.mark.parametrize("text", EDGE_CASES, ids=range(len(EDGE_CASES)))
def test_edge_cases_match_oracle(tokenizer_pairs, text, vocab, do_lower_case):
    ours, oracle = tokenizer_pairs[vocab, do_lower_case]
    assert ours.tokenize(text) == oracle.tokenize(text)
    assert _ids(ours, text) == _ids(oracle, text)

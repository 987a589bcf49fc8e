"""Vocabulary ids index the embedding rows: a negative id, or one id given to two tokens, is
an error at load naming the file and line (2019 loaded both; a negative id crashed training
later, a shared id silently merged two tokens)."""
import pytest

import tokenization
from utils.errors import DataError


def write(path, text):
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_two_tokens_with_one_id(tmp_path):
    path = write(tmp_path / "vocab.txt", "[PAD]\t0\n[CLS]\t1\na\t3\nb\t3\n")
    with pytest.raises(DataError) as err:
        tokenization.load_vocab(path)
    assert str(err.value) == "%s:4: id 3 of token 'b' is already the id of 'a' (line 3)" % path


def test_a_negative_id(tmp_path):
    path = write(tmp_path / "vocab.txt", "[PAD]\t0\n[CLS]\t1\nx\t-5\n")
    with pytest.raises(DataError) as err:
        tokenization.load_vocab(path)
    assert str(err.value) == ("%s:3: id -5 of token 'x' is negative (ids index the embedding "
                              "rows, from 0)" % path)


def test_an_explicit_id_that_repeats_a_line_number(tmp_path):
    # one-token lines take their line number: a later `token<TAB>0` collides with line 1
    path = write(tmp_path / "vocab.txt", "[PAD]\n[CLS]\nz\t0\n")
    with pytest.raises(DataError, match=r"vocab\.txt:3: id 0 of token 'z' is already the id "
                                        r"of '\[PAD\]' \(line 1\)"):
        tokenization.load_vocab(path)


def test_the_tokenizers_report_it_too(tmp_path):
    path = write(tmp_path / "vocab.txt", "[PAD]\t0\n[UNK]\t1\n[CLS]\t1\n")
    with pytest.raises(DataError, match=r"vocab\.txt:3: id 1 of token '\[CLS\]'"):
        tokenization.FullTokenizer(path)


def test_gaps_and_blank_lines_stay_valid(tmp_path):
    # ids need not be contiguous (the ERNIE reader uses the largest id + 1 as the size)
    path = write(tmp_path / "vocab.txt", "[PAD]\t0\n\n[CLS]\t1\nq\t7\n")
    assert dict(tokenization.load_vocab(path)) == {"[PAD]": 0, "[CLS]": 1, "q": 7}
    path = write(tmp_path / "vocab_en.txt", "[PAD]\n\n[CLS]\n")
    assert dict(tokenization.load_vocab(path)) == {"[PAD]": 0, "[CLS]": 2}


def test_the_shipped_vocabularies_load():
    from ernie_testkit import REPO
    zh = tokenization.load_vocab(REPO / "config" / "vocab.txt")
    assert sorted(zh.values()) == list(range(len(zh)))
    en = tokenization.load_vocab(REPO / "config" / "vocab_en.txt")
    assert sorted(en.values()) == list(range(len(en)))

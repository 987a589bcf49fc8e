"""Unit behaviour of tokenization.py: vocab loading (both layouts, every error), the
tokenizer pieces, CharTokenizer, tokenize_chinese_chars, SentencepieceTokenizer and
make_tokenizer."""
import pytest

import tokenization
from utils.errors import DataError, UsageError


def write(path, text, encoding="utf-8"):
    path.write_bytes(text.encode(encoding) if isinstance(text, str) else text)
    return path


# ------------------------------------------------------------------------- real vocabularies

def test_real_chinese_vocab_layout(zh_vocab):
    vocab = tokenization.load_vocab(zh_vocab)
    assert len(vocab) == 17964
    assert [vocab[t] for t in ("[PAD]", "[CLS]", "[SEP]", "[MASK]", "[UNK]")] == [0, 1, 2, 3, 17963]
    assert sorted(vocab.values()) == list(range(17964))
    assert next(iter(vocab)) == "[PAD]"


def test_real_english_vocab_layout(en_vocab):
    vocab = tokenization.load_vocab(en_vocab)
    assert len(vocab) == 30522
    assert [vocab[t] for t in ("[PAD]", "[CLS]", "[SEP]", "[MASK]", "[UNK]")] == \
        [0, 101, 102, 103, 100]
    assert vocab["[unused0]"] == 1 and vocab["[unused98]"] == 99
    assert list(vocab.values()) == list(range(30522))


# --------------------------------------------------------------------------- load_vocab

TOKENS = ["[PAD]", "[UNK]", "un", "##aff", "##able", "hello", "world", ",", "中", "##文"]


def test_both_layouts_give_the_same_map(tmp_path):
    plain = write(tmp_path / "plain.txt", "\n".join(TOKENS) + "\n")
    tabbed = write(tmp_path / "tab.txt", "".join("%s\t%d\n" % (t, i) for i, t in enumerate(TOKENS)))
    assert tokenization.load_vocab(plain) == tokenization.load_vocab(tabbed)
    assert list(tokenization.load_vocab(plain).items()) == [(t, i) for i, t in enumerate(TOKENS)]
    a, b = tokenization.FullTokenizer(plain), tokenization.FullTokenizer(tabbed)
    text = "Unaffable hello,world 中文 xyz"
    assert a.tokenize(text) == b.tokenize(text) == \
        ["un", "##aff", "##able", "hello", ",", "world", "中", "[UNK]", "[UNK]"]
    assert a.convert_tokens_to_ids(a.tokenize(text)) == [2, 3, 4, 5, 7, 6, 8, 1, 1]


def test_tab_layout_uses_given_ids_and_order(tmp_path):
    path = write(tmp_path / "v.txt", "b\t7\na\t3\n[UNK]\t42\n")
    vocab = tokenization.load_vocab(path)
    assert list(vocab.items()) == [("b", 7), ("a", 3), ("[UNK]", 42)]
    tok = tokenization.FullTokenizer(path)
    assert tok.convert_tokens_to_ids(["a", "zzz", "b"]) == [3, 42, 7]
    assert tok.convert_ids_to_tokens([7, 3, 42]) == ["b", "a", "[UNK]"]


def test_loading_stops_at_a_line_with_more_than_two_fields(tmp_path):
    path = write(tmp_path / "v.txt", "a\t0\nb\t1\nc\t2\textra\nd\t3\n")
    assert list(tokenization.load_vocab(path)) == ["a", "b"]


def test_line_numbers_count_blank_lines_and_crlf_and_bom(tmp_path):
    path = write(tmp_path / "v.txt", b"\xef\xbb\xbf[PAD]\r\na\r\n\r\nb\r\n")
    assert list(tokenization.load_vocab(path).items()) == [("[PAD]", 0), ("a", 1), ("b", 3)]


def _data_error(path, line=None):
    with pytest.raises(DataError) as info:
        tokenization.load_vocab(path)
    message = str(info.value)
    expected = "%s:%d" % (path, line) if line else str(path)
    assert message.startswith(expected), message
    return message


def test_error_missing_file(tmp_path):
    message = _data_error(tmp_path / "nope.txt")
    assert "not found" in message


def test_error_not_utf8_names_the_line(tmp_path):
    path = write(tmp_path / "v.txt", "a\nb\n".encode() + "中\n".encode("gbk"))
    assert "UTF-8" in _data_error(path, 3)


@pytest.mark.parametrize("content", ["", "\n\n  \n"])
def test_error_empty_vocab(tmp_path, content):
    assert "empty" in _data_error(write(tmp_path / "v.txt", content))


def test_error_non_integer_id_names_the_line(tmp_path):
    path = write(tmp_path / "v.txt", "a\t0\nb\tone\n")
    assert "'one'" in _data_error(path, 2)


def test_error_duplicated_token_names_both_lines(tmp_path):
    path = write(tmp_path / "v.txt", "[PAD]\nhello\nworld\nhello\n")
    assert "'hello'" in _data_error(path, 4) and "line 2" in _data_error(path, 4)


def test_unknown_token_without_unk_in_vocab_is_a_data_error(tmp_path):
    path = write(tmp_path / "v.txt", "a\nb\n")
    tok = tokenization.FullTokenizer(path)
    assert tok.convert_tokens_to_ids(["b", "a"]) == [1, 0]
    with pytest.raises(DataError, match=str(path)):
        tok.convert_tokens_to_ids(["c"])


# --------------------------------------------------------------- basic / wordpiece / full

def test_basic_tokenizer_steps():
    basic = tokenization.BasicTokenizer(do_lower_case=True)
    assert basic.tokenize("  Héllo,\tWORLD!\u3000Ça\u0000\ufffd\x07va ") == \
        ["hello", ",", "world", "!", "cava"]                     # dropped, not turned into spaces
    assert basic.tokenize("ERNIE是2019的") == ["ernie", "是", "2019", "的"]
    assert basic.tokenize("don't $5^x`y") == ["don", "'", "t", "$", "5", "^", "x", "`", "y"]
    assert basic.tokenize("ok😀ok €5 ½") == ["ok😀ok", "€5", "½"]   # symbols are not punctuation
    assert basic.tokenize(b"caf\xc3\xa9") == ["cafe"]
    assert basic.tokenize("") == [] and basic.tokenize(" \n\t ") == []
    cased = tokenization.BasicTokenizer(do_lower_case=False)
    assert cased.tokenize("Héllo Ça, 中文") == ["Héllo", "Ça", ",", "中", "文"]


def test_wordpiece_greedy_longest_match():
    vocab = {t: i for i, t in enumerate(["[UNK]", "un", "una", "##aff", "##able", "##ffable", "a"])}
    wp = tokenization.WordpieceTokenizer(vocab)
    assert wp.tokenize("unaffable") == ["una", "##ffable"]     # longest first, not "un ##aff.."
    assert wp.tokenize("unaffablex a") == ["[UNK]", "a"]       # one bad piece -> whole word UNK
    assert wp.tokenize("") == []
    short = tokenization.WordpieceTokenizer(vocab, unk_token="<u>", max_input_chars_per_word=3)
    assert short.tokenize("una unaffable") == ["una", "<u>"]


def test_long_word_limit_is_100_characters(en_vocab):
    tok = tokenization.FullTokenizer(en_vocab)
    assert len(tok.tokenize("a" * 100)) > 1 and "[UNK]" not in tok.tokenize("a" * 100)
    assert tok.tokenize("a" * 101) == ["[UNK]"]


def test_full_tokenizer_ids_and_back(en_vocab, zh_vocab):
    en = tokenization.FullTokenizer(en_vocab)
    tokens = en.tokenize("Unaffable ERNIE 😀!")
    assert tokens == ["una", "##ffa", "##ble", "ernie", "[UNK]", "!"]
    ids = en.convert_tokens_to_ids(tokens)
    assert ids[4] == 100 and en.convert_ids_to_tokens(ids) == tokens
    assert en.convert_tokens_to_ids(["never-seen-token"]) == [100]
    assert en.inv_vocab[101] == "[CLS]"
    zh = tokenization.FullTokenizer(zh_vocab)
    assert zh.convert_tokens_to_ids(zh.tokenize("我爱龘")) == [75, 329, 17963]


def test_2019_behaviour_where_the_rust_oracle_differs(en_vocab):
    """Documented divergences from transformers 5's Rust BertTokenizer (2019 ran Python):
    Python lower-cases a final capital sigma to 'ς'; private-use characters are kept (only
    Cc/Cf are dropped); '[CLS]' typed in the text is plain text, not a special token."""
    tok = tokenization.FullTokenizer(en_vocab)
    assert tok.tokenize("ΟΔΟΣ") == ["ο", "##δ", "##ος"]
    assert tok.tokenize("ab\ue000") == ["[UNK]"]
    assert tok.tokenize("[CLS] hi") == ["[", "cl", "##s", "]", "hi"]


# ------------------------------------------------------------------------- CharTokenizer

def test_char_tokenizer_whole_unspaced_oov_run_is_one_unk(zh_vocab):
    """2019 issue #437: nothing splits a run, so one unknown character kills the whole run."""
    char = tokenization.CharTokenizer(zh_vocab)
    full = tokenization.FullTokenizer(zh_vocab)
    assert char.tokenize("我爱龘京") == ["[UNK]"]
    assert full.tokenize("我爱龘京") == ["我", "爱", "[UNK]", "京"]
    assert char.tokenize("我爱北京") == ["我", "##爱", "##北", "##京"]
    assert char.tokenize("我 爱  北 京") == ["我", "爱", "北", "京"]


def test_char_tokenizer_lowercases_and_splits_on_space_only(en_vocab):
    char = tokenization.CharTokenizer(en_vocab)
    assert char.tokenize("Hello, World!") == ["hello", "##,", "world", "##!"]
    assert char.tokenize("ÉCOLE") == ["[UNK]"]                    # lower-cased, accents kept
    assert tokenization.FullTokenizer(en_vocab).tokenize("ÉCOLE") == ["ecole"]
    ids = char.convert_tokens_to_ids(char.tokenize("hello world"))
    assert char.convert_ids_to_tokens(ids) == ["hello", "world"]
    assert tokenization.CharTokenizer(en_vocab, do_lower_case=False).tokenize("Hello") != ["hello"]


# ----------------------------------------------------------------- tokenize_chinese_chars

@pytest.mark.parametrize("text, expected", [
    ("ERNIE是百度的", ["ERNIE", "是", "百", "度", "的"]),
    ("a b  c", ["a", " ", "b", " ", " ", "c"]),
    ("中 文\t1.5%\r\n𠀀x\u202fy",
     ["中", " ", "文", "\t", "1.5%", "\r", "\n", "𠀀", "x", "\u202f", "y"]),
    ("全角，标点。ok", ["全", "角", "，", "标", "点", "。ok"]),
    ("", []),
])
def test_tokenize_chinese_chars(text, expected):
    assert tokenization.tokenize_chinese_chars(text) == expected
    assert "".join(tokenization.tokenize_chinese_chars(text)) == text


def test_convert_to_unicode():
    assert tokenization.convert_to_unicode("中") == "中"
    assert tokenization.convert_to_unicode("中".encode()) == "中"
    assert tokenization.convert_to_unicode(b"a\xffb") == "ab"
    with pytest.raises(ValueError):
        tokenization.convert_to_unicode(3)


# ----------------------------------------------------------------- SentencepieceTokenizer

SP_VOCAB_SIZE = 2000


@pytest.fixture(scope="module")
def sp_model(tmp_path_factory, chinese_lines):
    spm = pytest.importorskip("sentencepiece")
    folder = tmp_path_factory.mktemp("sp")
    corpus = folder / "corpus.txt"
    corpus.write_text("\n".join(chinese_lines[:400]) + "\n", encoding="utf-8")
    prefix = str(folder / "tiny")
    spm.SentencePieceTrainer.train(input=str(corpus), model_prefix=prefix, vocab_size=SP_VOCAB_SIZE,
                                   model_type="unigram", character_coverage=0.98,
                                   hard_vocab_limit=False, num_threads=1, minloglevel=2)
    return folder / "tiny.model"


SP_TEXT = "这本书很好看，推荐给大家！Windows ABC 龘"


def test_sentencepiece_uses_model_ids_without_vocab(sp_model):
    import sentencepiece
    tok = tokenization.SentencepieceTokenizer(sp_model)
    proc = sentencepiece.SentencePieceProcessor(model_file=str(sp_model))
    tokens = tok.tokenize(SP_TEXT)
    assert len(tok.vocab) == proc.get_piece_size() > 1500 and all(t in tok.vocab for t in tokens)
    assert tok.convert_tokens_to_ids(tokens) == proc.encode(SP_TEXT.lower())
    assert tok.unk_token == "<unk>" and "<unk>" in tokens             # 龘 is not in the model
    assert tok.convert_ids_to_tokens(tok.convert_tokens_to_ids(tokens)) == tokens
    cased = tokenization.SentencepieceTokenizer(sp_model, do_lower_case=False)
    assert cased.tokenize("ABC") != tok.tokenize("ABC")


def test_sentencepiece_with_ernie_vocab_maps_missing_pieces_to_unk(sp_model, tmp_path):
    import sentencepiece
    proc = sentencepiece.SentencePieceProcessor(model_file=str(sp_model))
    pieces = proc.encode(SP_TEXT.lower(), out_type=str)
    kept = sorted(set(pieces))[::2]                                  # half the pieces known
    lines = ["[PAD]\t0", "[UNK]\t1"] + ["%s\t%d" % (p, 10 + i) for i, p in enumerate(kept)]
    vocab = write(tmp_path / "sp_vocab.txt", "\n".join(lines) + "\n")
    tok = tokenization.SentencepieceTokenizer(sp_model, vocab_file=vocab)
    tokens = tok.tokenize(SP_TEXT)
    assert tokens == [p if p in kept else "[UNK]" for p in pieces]
    assert "[UNK]" in tokens and set(tokens) - {"[UNK]"}
    assert tok.convert_tokens_to_ids(tokens) == \
        [10 + kept.index(p) if p in kept else 1 for p in pieces]


def test_sentencepiece_bad_model_files(tmp_path):
    pytest.importorskip("sentencepiece")
    with pytest.raises(DataError, match="missing.model"):
        tokenization.SentencepieceTokenizer(tmp_path / "missing.model")
    junk = write(tmp_path / "junk.model", "not a model")
    with pytest.raises(DataError, match="junk.model"):
        tokenization.SentencepieceTokenizer(junk)


# ----------------------------------------------------------------------- make_tokenizer

def test_make_tokenizer_choices(en_vocab, sp_model):
    assert type(tokenization.make_tokenizer("FullTokenizer", en_vocab)) is \
        tokenization.FullTokenizer
    char = tokenization.make_tokenizer("CharTokenizer", en_vocab, do_lower_case=False)
    assert type(char) is tokenization.CharTokenizer and char.do_lower_case is False
    sp = tokenization.make_tokenizer("SentencepieceTokenizer", None, sp_model=sp_model)
    assert type(sp) is tokenization.SentencepieceTokenizer and \
        len(sp.vocab) == len(sp.inv_vocab) > 1500
    sp_en = tokenization.make_tokenizer("SentencepieceTokenizer", en_vocab, sp_model=sp_model)
    assert sp_en.vocab["[UNK]"] == 100


def test_make_tokenizer_errors(en_vocab):
    with pytest.raises(UsageError) as info:
        tokenization.make_tokenizer("SentencepieceTokenizer", en_vocab)
    assert str(info.value) == "--tokenizer SentencepieceTokenizer needs --sentence_piece_model"
    assert info.value.exit_code == 2
    with pytest.raises(UsageError) as info:
        tokenization.make_tokenizer("WordTokenizer", en_vocab)
    message = str(info.value)
    assert "--tokenizer" in message and "WordTokenizer" in message
    assert all(choice in message for choice in tokenization.TOKENIZER_CHOICES)

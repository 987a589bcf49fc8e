"""The tokenizer files `convert_params --to hf` writes (utils.format_hf.hf_tokenizer_files):
transformers.AutoTokenizer loads them as a BertTokenizer that gives exactly the ids of the
toolkit's FullTokenizer, [CLS]/[SEP] included, through both real 2019 vocabularies (the Chinese
one in its `token<TAB>id` layout), lower-cased and cased, on thousands of real lines."""
import pytest

import tokenization
from utils.format_hf import hf_tokenizer_files

transformers = pytest.importorskip("transformers")


def hf_tokenizer(vocab_path, do_lower_case, directory):
    vocab = tokenization.load_vocab(vocab_path)
    directory.mkdir()
    for name, text in hf_tokenizer_files(vocab, do_lower_case, 512).items():
        (directory / name).write_text(text, encoding="utf-8")
    return transformers.AutoTokenizer.from_pretrained(str(directory))


def toolkit_ids(tok, text):
    vocab = tok.vocab
    return [vocab["[CLS]"]] + tok.convert_tokens_to_ids(tok.tokenize(text)) + [vocab["[SEP]"]]


def assert_same_ids(ours, theirs, lines, what):
    __tracebackhide__ = True
    got = theirs(lines, add_special_tokens=True)["input_ids"]
    bad = [(n, line) for n, (line, ids) in enumerate(zip(lines, got))
           if ids != toolkit_ids(ours, line)]
    assert not bad, "%d of %d %s lines differ, first: %r" % (len(bad), len(lines), what, bad[:3])


@pytest.mark.slow
@pytest.mark.parametrize("do_lower_case", [True, False], ids=["uncased", "cased"])
def test_autotokenizer_ids_equal_full_tokenizer(zh_vocab, en_vocab, chinese_lines,
                                                english_lines, do_lower_case, tmp_path):
    from test_tokenization_parity import EDGE_CASES
    for name, vocab in (("zh", zh_vocab), ("en", en_vocab)):
        theirs = hf_tokenizer(vocab, do_lower_case, tmp_path / name)
        assert theirs.model_max_length == 512
        assert theirs.do_lower_case is do_lower_case
        ours = tokenization.FullTokenizer(vocab, do_lower_case=do_lower_case)
        assert theirs.convert_tokens_to_ids(["[PAD]", "[UNK]", "[MASK]"]) == \
            ours.convert_tokens_to_ids(["[PAD]", "[UNK]", "[MASK]"])
        lines = chinese_lines + english_lines
        if not do_lower_case:
            lines = lines[::4]
        assert_same_ids(ours, theirs, lines + EDGE_CASES, "%s vocab" % name)


def test_bad_vocabularies_are_refused():
    from utils.errors import DataError
    with pytest.raises(DataError, match="no token has id 1"):
        hf_tokenizer_files({"[UNK]": 0, "[SEP]": 2, "[PAD]": 3, "[CLS]": 4}, True, 8)
    with pytest.raises(DataError, match="no \\[CLS\\] token"):
        hf_tokenizer_files({"[UNK]": 0, "[SEP]": 1, "[PAD]": 2, "a": 3}, True, 8)

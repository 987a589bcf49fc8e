"""ClassifyReader: the 2019 record layout, truncation, batching rules and input errors."""
import json

import numpy as np
import pytest

from reader import batching
from reader.task_reader import ClassifyReader, ExtractEmbeddingReader, truncate_pair
from utils.errors import DataError

# CJK characters are tokens of their own, so a string of them is a string of tokens
LETTERS = "一二三四五六七八九十"
VOCAB = ["[PAD]", "[CLS]", "[SEP]", "[MASK]", "[UNK]", "ab"] + list(LETTERS) + list("好坏的")


@pytest.fixture
def vocab(tmp_path):
    path = tmp_path / "vocab.txt"
    path.write_text("".join("%s\t%d\n" % (t, i) for i, t in enumerate(VOCAB)), encoding="utf-8")
    return str(path)


def tsv(tmp_path, text, name="data.tsv", encoding="utf-8"):
    path = tmp_path / name
    path.write_bytes(text.encode(encoding) if isinstance(text, str) else text)
    return str(path)


def ids(tokens):
    return [VOCAB.index(t) for t in tokens]


def test_pair_record_layout_and_truncation(tmp_path, vocab):
    path = tsv(tmp_path, "text_a\ttext_b\tlabel\n一二三四五六\t七八\t1\n")
    record = ClassifyReader(vocab, max_seq_len=8).records(path)[0]
    # 8 - 3 = 5 tokens: the longer side (a) loses its last tokens first
    assert record.token_ids == ids(["[CLS]", "一", "二", "三", "[SEP]", "七", "八", "[SEP]"])
    assert record.sent_ids == [0, 0, 0, 0, 0, 1, 1, 1]
    assert record.pos_ids == list(range(8))
    assert record.label == 1


def test_truncate_pair_drops_b_on_ties():
    a, b = list("abcd"), list("efgh")
    truncate_pair(a, b, 5)
    assert a == list("abc") and b == list("ef")


def test_single_text_is_cut_and_spaces_removed_for_chinese(tmp_path, vocab):
    path = tsv(tmp_path, "label\ttext_a\n0\t好 的 一二三四五六七八九十\n")
    record = ClassifyReader(vocab, max_seq_len=6).records(path)[0]
    assert record.token_ids == ids(["[CLS]", "好", "的", "一", "二", "[SEP]"])
    # --for_cn true removes spaces: "a b" becomes the known word "ab", else two letters
    path = tsv(tmp_path, "label\ttext_a\n0\ta b\n", "spaced.tsv")
    assert ClassifyReader(vocab).records(path)[0].token_ids == ids(["[CLS]", "ab", "[SEP]"])
    record = ClassifyReader(vocab, for_cn=False).records(path)[0]
    assert record.token_ids == ids(["[CLS]", "[UNK]", "[UNK]", "[SEP]"])


def test_label_map_regression_and_qid(tmp_path, vocab):
    label_map = tmp_path / "labels.json"
    label_map.write_text(json.dumps({"neg": 0, "pos": 1}))
    path = tsv(tmp_path, "qid\ttext_a\tlabel\n7\t一二\tpos\n7\t三四\tneg\n")
    reader = ClassifyReader(vocab, label_map_config=str(label_map), max_seq_len=16)
    batch = next(reader.data_generator(path, 8, shuffle=False)())
    assert batch["labels"].tolist() == [1, 0] and batch["qids"] == ["7", "7"]
    reg = tsv(tmp_path, "text_a\tlabel\nab\t0.25\n", "reg.tsv")
    batch = next(ClassifyReader(vocab, is_regression=True, is_classify=False)
                 .data_generator(reg, 8)())
    assert batch["labels"].dtype == np.float32 and batch["labels"][0] == 0.25


def test_batch_arrays(tmp_path, vocab):
    path = tsv(tmp_path, "text_a\tlabel\n一二\t0\n一二三四五\t1\n")
    batch = next(ClassifyReader(vocab, task_id=3).data_generator(path, 8, shuffle=False)())
    assert batch["src_ids"].shape == (2, 7) and batch["src_ids"].dtype == np.int64
    assert batch["input_mask"].tolist()[0] == [1, 1, 1, 1, 0, 0, 0]
    assert (batch["task_ids"] == 3).all()
    assert batch["src_ids"][0, 4:].tolist() == [0, 0, 0]


def test_in_tokens_batching_rule():
    lengths = [3, 5, 2, 8, 8, 1]
    batches = list(batching.batch_records(lengths, 16, in_tokens=True, length=lambda n: n))
    # a record joins while (count + 1) * max_len <= 16
    assert batches == [[3, 5, 2], [8, 8], [1]]
    assert list(batching.batch_records(lengths, 4, length=lambda n: n)) == [[3, 5, 2, 8], [8, 1]]
    assert list(batching.batch_records([40], 16, in_tokens=True, length=lambda n: n)) == [[40]]


def test_shard_batches_deals_complete_groups():
    batches = list(range(7))
    assert list(batching.shard_batches(batches, 0, 2)) == [0, 2, 4]
    assert list(batching.shard_batches(batches, 1, 2)) == [1, 3, 5]
    assert list(batching.shard_batches(batches, 0, 1)) == batches


def test_length_sorted_order_is_restored():
    lengths = [5, 1, 4, 1, 9]
    order = batching.length_sorted_order(lengths)
    assert [lengths[i] for i in order] == sorted(lengths)
    assert batching.restore_order([lengths[i] * 10 for i in order], order) == [50, 10, 40, 10, 90]


def test_shuffle_is_seeded(tmp_path, vocab):
    rows = "".join("%s\t%d\n" % (LETTERS[: 1 + i % 9], i % 2) for i in range(40))
    path = tsv(tmp_path, "text_a\tlabel\n" + rows)

    def first_ids(seed):
        gen = ClassifyReader(vocab, random_seed=seed).data_generator(path, 4, epoch=2)
        return [b["src_ids"].tolist() for b in gen()]

    assert first_ids(3) == first_ids(3) and first_ids(3) != first_ids(4)


def test_progress_counters(tmp_path, vocab):
    path = tsv(tmp_path, "text_a\tlabel\n" + "一二\t0\n" * 10)
    reader = ClassifyReader(vocab)
    seen = [(reader.current_epoch, reader.current_example)
            for _ in reader.data_generator(path, 4, epoch=2, phase="train")()]
    assert seen == [(0, 4), (0, 8), (0, 10), (1, 4), (1, 8), (1, 10)]


def test_embedding_reader_accepts_files_without_label(tmp_path, vocab):
    path = tsv(tmp_path, "text_a\n一二\n一二三四\n")
    batch = next(ExtractEmbeddingReader(vocab).data_generator(path, 8, shuffle=False)())
    assert batch["seq_lens"].tolist() == [4, 6]


@pytest.mark.parametrize("content,needle,line", [
    ("text_a\tlabel\nab\t0\nabc\n", "expected 2 tab-separated fields", 3),
    ("text_a\tlabel\nab\tmaybe\n", "not in the label map", 2),
    ("text_a\tlabel\n", "no examples", None),
    ("", "empty file", None),
    ("ab\t0\ncd\t1\n", "header line", 1),
    (b"text_a\tlabel\nab\t0\n\xff\xfe\t1\n", "not UTF-8", 3),
])
def test_bad_classification_files(tmp_path, vocab, content, needle, line):
    label_map = tmp_path / "labels.json"
    label_map.write_text(json.dumps({"0": 0, "1": 1}))
    path = tsv(tmp_path, content)
    reader = ClassifyReader(vocab, label_map_config=str(label_map))
    with pytest.raises(DataError, match=needle) as err:
        next(reader.data_generator(path, 4)())
    prefix = path if line is None else "%s:%d" % (path, line)
    assert str(err.value).startswith(prefix)


def test_non_numeric_regression_label(tmp_path, vocab):
    path = tsv(tmp_path, "text_a\tlabel\nab\t0.5\ncd\thigh\n")
    with pytest.raises(DataError, match=r"data.tsv:3: regression label 'high'"):
        ClassifyReader(vocab, is_regression=True, is_classify=False).records(path)

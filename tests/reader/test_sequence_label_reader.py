"""SequenceLabelReader: token/label parsing, sub-word label propagation, dropped tokens, the
[CLS]/[SEP] labels and loss mask, truncation vs windows, and input errors with file:line."""
import json

import numpy as np
import pytest

from ernie_testkit import SX
from reader.task_reader import (
    SequenceLabelReader,
    best_window_of_pieces,
    propagate_label,
    window_spans,
)
from utils.errors import DataError, UsageError

# "abcd" -> ab ##cd, "abcdef" -> ab ##cd ##ef; CJK characters are tokens of their own
VOCAB = ["[PAD]", "[CLS]", "[SEP]", "[MASK]", "[UNK]", "ab", "##cd", "##ef"] + list("北京人民")
IOB = {"B-LOC": 0, "I-LOC": 1, "B-PER": 2, "I-PER": 3, "O": 4}
IOBES = {"B-PER": 0, "I-PER": 1, "E-PER": 2, "S-PER": 3, "O": 4}


@pytest.fixture
def files(tmp_path):
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("".join("%s\t%d\n" % (t, i) for i, t in enumerate(VOCAB)), encoding="utf-8")

    def label_map(mapping, name="labels.json"):
        path = tmp_path / name
        path.write_text(json.dumps(mapping))
        return str(path)

    def data(text, name="data.tsv"):
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        return str(path)

    return str(vocab), label_map, data


def ids(*tokens):
    return [VOCAB.index(t) for t in tokens]


def test_record_layout_labels_and_mask(files):
    vocab, label_map, data = files
    path = data("text_a\tlabel\n" + SX.join("北京人") + "\t" + SX.join(["B-LOC", "I-LOC", "O"])
                + "\n人\tO\n")
    reader = SequenceLabelReader(vocab, label_map(IOB), max_seq_len=16)
    record = reader.records(path)[0]
    assert record.token_ids == ids("[CLS]", "北", "京", "人", "[SEP]")
    assert record.sent_ids == [0] * 5 and record.pos_ids == list(range(5))
    assert record.label == [4, 0, 1, 4, 4]          # O at [CLS] and [SEP]
    batch = next(reader.data_generator(path, 8, shuffle=False)())
    assert batch["labels"].dtype == np.int64 and batch["labels"].shape == (2, 5)
    assert batch["labels"][1].tolist() == [4, 4, 4, 4, 4]   # padding labelled O too
    assert batch["seq_lens"].tolist() == [5, 3]
    # only the text's pieces count in the loss: not [CLS], [SEP] or padding
    assert batch["label_mask"].tolist() == [[0, 1, 1, 1, 0], [0, 1, 0, 0, 0]]
    assert batch["input_mask"].tolist() == [[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]]


def test_space_separated_lines_are_accepted(files):
    vocab, label_map, data = files
    path = data("text_a\tlabel\n北 京\tB-LOC I-LOC\n" + SX.join("人民") + "\tO" + SX + "O\n")
    examples = SequenceLabelReader(vocab, label_map(IOB)).examples(path)
    assert examples[0].tokens == ["北", "京"] and examples[0].labels == ["B-LOC", "I-LOC"]
    assert examples[1].tokens == ["人", "民"] and examples[0].line == 2


@pytest.mark.parametrize("label,n,expected", [
    ("B-PER", 3, ["B-PER", "I-PER", "I-PER"]),
    ("I-PER", 2, ["I-PER", "I-PER"]),
    ("O", 3, ["O", "O", "O"]),
    ("S-PER", 2, ["B-PER", "E-PER"]),
    ("S-PER", 3, ["B-PER", "I-PER", "E-PER"]),
    ("E-PER", 3, ["I-PER", "I-PER", "E-PER"]),
    ("S-PER", 1, ["S-PER"]),
    ("B-PER", 0, []),
])
def test_propagate_label(label, n, expected):
    assert propagate_label(label, n) == expected


def test_sub_word_pieces_dropped_tokens_and_unknown_characters(files):
    vocab, label_map, data = files
    # "abcdef" has three pieces, " " none (dropped with its label), "X" is [UNK]
    tokens = ["abcdef", " ", "北", "X", "abcd"]
    labels = ["S-PER", "O", "B-PER", "E-PER", "O"]
    path = data("text_a\tlabel\n%s\t%s\n" % (SX.join(tokens), SX.join(labels)))
    reader = SequenceLabelReader(vocab, label_map(IOBES))
    example = reader.examples(path)[0]
    assert example.piece_ids == ids("ab", "##cd", "##ef", "北", "[UNK]", "ab", "##cd")
    assert example.first_piece == [0, -1, 3, 4, 5]
    assert [reader.id2label[k] for k in example.piece_labels] == [
        "B-PER", "I-PER", "E-PER", "B-PER", "E-PER", "O", "O"]


def test_propagated_label_missing_from_the_map(files):
    vocab, label_map, data = files
    # S-X needs B-X and E-X on its pieces: this map has B-LOC but no E-LOC
    path = data("text_a\tlabel\nabcd\tS-LOC\n")
    reader = SequenceLabelReader(vocab, label_map({"B-LOC": 0, "S-LOC": 1, "O": 2}))
    with pytest.raises(DataError, match=r"data.tsv:2: token 1 'abcd' is split into 2 pieces "
                                        r"and its label 'S-LOC' becomes 'E-LOC'"):
        reader.examples(path)


def test_truncation_for_training_windows_for_prediction(files):
    vocab, label_map, data = files
    text = "北京人民" * 5                               # 20 characters
    path = data("text_a\tlabel\n%s\t%s\n" % (SX.join(text), SX.join(["O"] * 20)))
    reader = SequenceLabelReader(vocab, label_map(IOB), max_seq_len=8)
    assert len(reader.records(path)[0].token_ids) == 8  # cut to max_seq_len - 2 pieces
    example = reader.examples(path)[0]
    windows = reader.window_records(example)
    assert [(s, e) for s, e, _ in windows] == [(0, 6), (3, 9), (6, 12), (9, 15), (12, 18),
                                               (14, 20)]
    for start, end, record in windows:
        assert record.token_ids == [1] + example.piece_ids[start:end] + [2]
        assert len(record.token_ids) <= 8


@pytest.mark.parametrize("n,capacity", [(0, 4), (1, 4), (4, 4), (5, 4), (17, 6), (9, 1),
                                        (100, 30), (31, 30)])
def test_windows_cover_every_piece_and_the_chosen_one_holds_it(n, capacity):
    spans = window_spans(n, capacity)
    assert all(0 <= s < e <= n or n == 0 for s, e in spans)
    assert all(e - s == min(n, capacity) for s, e in spans)
    covered = set()
    for s, e in spans:
        covered.update(range(s, e))
    assert covered == set(range(n))
    best = best_window_of_pieces(spans, n)
    for j, w in enumerate(best):
        s, e = spans[w]
        assert s <= j < e
        # no other window gives the piece more context on its shorter side
        assert min(j - s, e - 1 - j) == max(min(j - a, b - 1 - j) for a, b in spans if a <= j < b)


def test_inference_mode_needs_only_text_a(files):
    vocab, label_map, data = files
    path = data("text_a\n北" + SX + "京\n人\n")
    reader = SequenceLabelReader(vocab, label_map(IOB), is_inference=True)
    examples = reader.examples(path)
    assert [e.tokens for e in examples] == [["北", "京"], ["人"]]
    assert examples[0].labels is None and examples[0].piece_labels is None
    batch = reader.pad_batch([r for _, _, r in reader.window_records(examples[0])])
    assert "labels" not in batch and batch["seq_lens"].tolist() == [4]


def test_label_map_is_required_and_needs_o(files):
    vocab, label_map, _ = files
    with pytest.raises(UsageError, match="--label_map_config is required"):
        SequenceLabelReader(vocab)
    with pytest.raises(DataError, match=r'no.*"O" label'):
        SequenceLabelReader(vocab, label_map({"B-LOC": 0, "I-LOC": 1}))
    with pytest.raises(DataError, match="label ids must be 0..2"):
        SequenceLabelReader(vocab, label_map({"B-LOC": 0, "I-LOC": 5, "O": 2}))
    # O need not be the last id: its own id is used for [CLS], [SEP] and padding
    assert SequenceLabelReader(vocab, label_map({"O": 0, "B-LOC": 1, "I-LOC": 2})).o_id == 0


@pytest.mark.parametrize("content,line,needle", [
    ("text_a\tlabel\n北" + SX + "京\tB-LOC\n", 2, "2 tokens but 1 labels"),
    ("text_a\tlabel\n北\tO\n北 京\tB-LOC\n", 3, "2 tokens but 1 labels"),
    ("text_a\tlabel\n北\tO\n京\tB-ORG\n", 3, "label 'B-ORG' (token 1) is not in the label map"),
    ("text_a\tlabel\n北\tO\n\n人\tO\n", 3, "empty line"),
    ("text_a\tlabel\n北\tO\n\t\n", 3, "empty line"),
    ("text_a\tlabel\n北\tO\n  \tO\n", 3, "empty text_a"),
])
def test_bad_lines_name_file_and_line(files, content, line, needle):
    vocab, label_map, data = files
    path = data(content)
    with pytest.raises(DataError) as err:
        SequenceLabelReader(vocab, label_map(IOB)).examples(path)
    assert str(err.value).startswith("%s:%d: " % (path, line)), str(err.value)
    assert needle in str(err.value)

"""finetune/sequence_label.py: the head's 2019 names, the loss over real tokens only, window
stitching and token alignment of predictions, and chunk evaluation against seqeval."""
import json

import numpy as np
import paddle
import pytest
from seqeval.metrics import f1_score, precision_score, recall_score

from ernie_testkit import PEOPLE_DAILY, SX, write_tiny_model
from finetune import sequence_label as sl
from model.ernie import ErnieConfig
from reader.task_reader import SequenceLabelReader
from tools.prepare_data import LABEL_MAP, bio_from_words, people_daily_sentences

VOCAB_EXTRA = ["ab", "##cd", "##ef"]


@pytest.fixture(scope="module")
def ner_data(tmp_path_factory):
    """60 real People's Daily sentences (MSRA-style BIO), a vocabulary, the label map."""
    d = tmp_path_factory.mktemp("sl")
    rows = []
    for words, tags in people_daily_sentences(PEOPLE_DAILY, max_lines=40, max_chars=80):
        chars, labels = bio_from_words(words, tags)
        if chars:
            rows.append((chars, labels))
        if len(rows) == 60:
            break
    (d / "data.tsv").write_text("text_a\tlabel\n" + "".join(
        "%s\t%s\n" % (SX.join(c), SX.join(ln)) for c, ln in rows), encoding="utf-8")
    write_tiny_model(d / "model", ["".join(c) for c, _ in rows[:30]])
    with open(d / "model" / "vocab.txt", "a", encoding="utf-8") as f:   # sub-word pieces
        n = len((d / "model" / "vocab.txt").read_text(encoding="utf-8").splitlines())
        f.write("".join("%s\t%d\n" % (t, n + i) for i, t in enumerate(VOCAB_EXTRA)))
    (d / "label_map.json").write_text(json.dumps(LABEL_MAP))
    return d, rows


def reader_of(d, max_seq_len=64, **kwargs):
    return SequenceLabelReader(str(d / "model" / "vocab.txt"), str(d / "label_map.json"),
                               max_seq_len=max_seq_len, **kwargs)


def test_head_parameter_names_and_shapes(ner_data):
    d, _ = ner_data
    cfg = ErnieConfig(str(d / "model" / "ernie_config.json"))
    model = sl.ErnieSequenceLabeler(cfg, 7)
    params = {p.name: p.shape for p in model.parameters()}
    assert params["cls_seq_label_out_w"] == [32, 7] and params["cls_seq_label_out_b"] == [7]
    assert "word_embedding" in params
    model.eval()
    feed = {"src_ids": np.array([[1, 5, 6, 2]]), "sent_ids": np.zeros((1, 4), "int64"),
            "pos_ids": np.arange(4)[None], "input_mask": np.ones((1, 4), "float32")}
    logits = model(*[paddle.to_tensor(feed[k]) for k in ("src_ids", "sent_ids", "pos_ids",
                                                          "input_mask")])
    assert logits.shape == [1, 4, 7]


def test_loss_is_the_mean_over_real_tokens_only():
    rng = np.random.RandomState(0)
    logits = rng.randn(2, 6, 7).astype("float32")
    labels = rng.randint(0, 7, (2, 6))
    mask = np.array([[0, 1, 1, 1, 0, 0], [0, 1, 1, 1, 1, 0]], "float32")
    loss = float(sl.masked_loss(paddle.to_tensor(logits), paddle.to_tensor(labels),
                                paddle.to_tensor(mask)))
    logp = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    picked = -np.take_along_axis(logp, labels[..., None], -1)[..., 0]
    assert loss == pytest.approx(float((picked * mask).sum() / mask.sum()), rel=1e-5)
    # more padding (2019 divided by B * L, so it diluted the loss) changes nothing here
    wide = np.concatenate([logits, rng.randn(2, 10, 7).astype("float32")], 1)
    wide_labels = np.concatenate([labels, np.full((2, 10), 6)], 1)
    wide_mask = np.concatenate([mask, np.zeros((2, 10), "float32")], 1)
    assert float(sl.masked_loss(paddle.to_tensor(wide), paddle.to_tensor(wide_labels),
                                paddle.to_tensor(wide_mask))) == pytest.approx(loss, rel=1e-5)


def test_batch_chunk_counts_skip_cls_and_sep():
    id2label = ["B-PER", "I-PER", "O"]
    labels = np.array([[0, 0, 1, 2, 0, 2], [2, 0, 0, 2, 2, 2]])
    preds = np.array([[2, 0, 1, 2, 2, 0], [0, 0, 2, 0, 2, 2]])
    # row 0 (len 5): gold PER(1-2) at 1..3, pred PER at 1..2 -> correct; [SEP] at 4 ignored
    # row 1 (len 3): gold PER at 1, pred PER at 1; the B at [CLS] and padding are ignored
    assert sl.batch_chunk_counts(labels, preds, [5, 3], id2label, "IOB") == (2, 2, 2)


class IdRunner(object):
    """A stand-in model: the label of a piece is a function of its id and its position in
    the window, so stitching errors and misalignment show up."""

    def __init__(self, num_labels, position_matters=False):
        self.num_labels, self.position_matters = num_labels, position_matters

    def run(self, feed):
        src = feed["src_ids"]
        label = src % self.num_labels
        if self.position_matters:   # edge positions of a window are "wrong"
            lens = feed["seq_lens"][:, None]
            pos = np.arange(src.shape[1])[None]
            label = np.where((pos <= 2) | (pos >= lens - 3), (label + 1) % self.num_labels, label)
        return [np.eye(self.num_labels, dtype="float32")[label]]


@pytest.mark.parametrize("max_seq_len", [6, 11, 64])
def test_predictions_are_aligned_and_stitched(ner_data, tmp_path, max_seq_len):
    d, rows = ner_data
    tokens = ["abcdef", " ", "北", "Q", "abcd"] + list("中国人民")
    labels = ["B-PER", "O", "O", "B-LOC", "O"] + ["B-LOC", "I-LOC", "O", "O"]
    path = tmp_path / "in.tsv"
    path.write_text((d / "data.tsv").read_text(encoding="utf-8")
                    + "%s\t%s\n" % (SX.join(tokens), SX.join(labels)) + "人\tO\n",
                    encoding="utf-8")
    reader = reader_of(d, max_seq_len=max_seq_len)
    examples = reader.examples(str(path))
    preds = sl.predict_labels(reader, examples, IdRunner(7), batch_size=5)
    assert [len(p) for p in preds] == [len(ex.tokens) for ex in examples]
    for example, labels_out in zip(examples, preds):
        expected = [reader.id2label[example.piece_ids[k] % 7] if k >= 0 else "O"
                    for k in example.first_piece]
        assert labels_out == expected
    special = examples[-2]
    assert special.first_piece[1] == -1 and preds[-2][1] == "O"    # the dropped space
    assert len(preds[-1]) == 1
    # with windows, a piece is labelled from the window where it is furthest from the edges
    if max_seq_len == 11:
        long_ex = max(examples, key=lambda ex: len(ex.piece_ids))
        assert len(long_ex.piece_ids) > 3 * (max_seq_len - 2)
        stitched = sl.predict_labels(reader, [long_ex], IdRunner(7, position_matters=True), 3)[0]
        n = len(long_ex.piece_ids)
        inner = [j for j in range(n) if 2 <= j < n - 2]      # pieces with context both sides
        expected = [reader.id2label[long_ex.piece_ids[j] % 7] for j in range(n)]
        assert [stitched[j] for j in inner] == [expected[j] for j in inner]


def test_evaluate_matches_seqeval_and_prints_the_2019_line(ner_data):
    d, rows = ner_data
    reader = reader_of(d, max_seq_len=16)       # most sentences need several windows
    examples = reader.examples(str(d / "data.tsv"))
    cfg = ErnieConfig(str(d / "model" / "ernie_config.json"))
    paddle.seed(3)
    model = sl.ErnieSequenceLabeler(cfg, 7)
    # nudge the head towards B-LOC / I-LOC so that the random model finds some chunks
    bias = np.zeros(7, "float32")
    bias[[4, 5]] = [0.02, 0.02]
    model.cls_seq_label_out.bias.set_value(bias)
    metrics, line, preds = sl.evaluate(reader, examples, sl.EagerRunner(model, model), 8,
                                       "IOB", "test")
    gold = [labels for _, labels in rows]
    assert metrics["num_infer"] > 0 and metrics["num_label"] > 0
    assert metrics["f1"] == pytest.approx(f1_score(gold, preds), abs=1e-9)
    assert metrics["precision"] == pytest.approx(precision_score(gold, preds), abs=1e-9)
    assert metrics["recall"] == pytest.approx(recall_score(gold, preds), abs=1e-9)
    assert line.startswith("[test evaluation] f1: %f, precision: %f, recall: %f, elapsed time: "
                           % (metrics["f1"], metrics["precision"], metrics["recall"]))
    assert model.training                      # evaluation puts the model back in train mode


class OracleRunner(object):
    """Returns the gold labels that pad_batch put in the feed."""

    def run(self, feed):
        return [np.eye(7, dtype="float32")[feed["labels"]]]


def test_oracle_predictions_score_one_even_for_long_inputs(ner_data):
    d, rows = ner_data
    reader = reader_of(d, max_seq_len=8)
    metrics, _, preds = sl.evaluate(reader, reader.examples(str(d / "data.tsv")),
                                    OracleRunner(), 4, "IOB", "dev")
    assert preds == [labels for _, labels in rows]
    assert metrics["f1"] == 1.0 and metrics["num_label"] > 50


def test_write_predictions(tmp_path, ner_data):
    d, _ = ner_data
    reader = reader_of(d)
    examples = reader.examples(str(d / "data.tsv"))[:2]
    preds = [["O"] * len(ex.tokens) for ex in examples]
    sl.write_predictions(str(tmp_path / "out" / "pred"), examples, preds)
    lines = (tmp_path / "out" / "pred").read_text(encoding="utf-8").splitlines()
    assert lines[0] == SX.join(examples[0].tokens) + "\t" + SX.join(preds[0])
    with pytest.raises(AssertionError):
        sl.write_predictions(str(tmp_path / "bad"), examples, [["O"], ["O"]])

"""Fuzzing the readers: random bytes and random TSV / json / sample-line / tensor shapes.

10,000 generated inputs in all, from a fixed seed. Every input must either read (and batch)
or raise `DataError` / `UsageError`, the errors a user sees as one line; anything else is a
failure, reported with the input that caused it. The inputs are small and mostly near-valid
(a valid shape with one or two things spoiled), so they get past the first checks and reach
the code behind them.
"""
import gzip
import json
import os
import struct
import traceback

import numpy as np
import pytest

from ernie_testkit import write_tiny_model
from model.ernie import ErnieConfig
from reader.mrc import MRCReader
from reader.pretraining import ErnieDataReader, MalformedLine, parse_sample, read_filelist
from reader.task_reader import (
    ClassifyReader,
    ExtractEmbeddingReader,
    SequenceLabelReader,
    load_label_map,
    read_tsv,
)
from tokenization import load_vocab
from utils.errors import DataError, UsageError
from utils.format_paddle2019 import read_legacy_tensor, write_legacy_tensor

SEED = 20190731
EXPECTED = (DataError, UsageError)

# characters that make text hard: CJK, ASCII, spaces of several kinds, controls, \x02,
# combining marks, accents, emoji, zero-width, full-width punctuation, surrogate-free astral
CHARS = list("好的很坏不这个手机错质量差abcXYZ019 .,;:!?-_'\"") + [
    "\t", "\x02", "\u3000", "\u00a0", "\u200b", "\ufeff", "\x00", "\x1f", "\x7f", "\u0301",
    "\u00e9", "\u00df", "\U0001F600", "\uff01", "\u3002", "##", "[UNK]", "[CLS]", "[SEP]",
    "\r", "\u2028", "\u0085", "\ud7ff", "\U00020000"]
LABEL_WORDS = ["0", "1", "2", "-1", "pos", "neg", "", " ", "1.5", "nan", "inf", "-inf", "1e309",
               "99999999999999999999", "0x1", "１", "true", "None", "1 ", " 0"]
NER_LABELS = ["O", "B-PER", "I-PER", "E-PER", "S-PER", "B-LOC", "I-", "B-", "o", ""]


class Fuzzer(object):
    """Random inputs from one RandomState; `bytes_()` is raw noise, the rest near-valid."""

    def __init__(self, seed):
        self.rng = np.random.RandomState(seed)

    def choice(self, seq):
        return seq[self.rng.randint(len(seq))]

    def chance(self, p):
        return self.rng.random_sample() < p

    def bytes_(self, max_len=200):
        n = self.rng.randint(0, max_len)
        raw = self.rng.randint(0, 256, size=n).astype(np.uint8).tobytes()
        if self.chance(0.5):  # make tabs, newlines and \x02 common
            raw = bytes(self.choice(b"\t\n\x02a\xe5") if self.chance(0.2) else b for b in raw)
        return raw

    def text(self, max_len=12):
        return "".join(self.choice(CHARS) for _ in range(self.rng.randint(0, max_len)))

    def spoil(self, data):
        """Occasionally damage encoded text: invalid UTF-8, a BOM, CRLF, a NUL, cut short."""
        r = self.rng.random_sample()
        if r < 0.06 and data:
            i = self.rng.randint(len(data))
            data = data[:i] + self.choice([b"\xff", b"\xc3", b"\xed\xa0\x80", b"\x80"]) + data[i:]
        elif r < 0.09:
            data = b"\xef\xbb\xbf" + data
        elif r < 0.12:
            data = data.replace(b"\n", b"\r\n")
        elif r < 0.15 and data:
            data = data[:self.rng.randint(len(data))]
        return data

    def json_value(self, depth=0):
        kinds = ["int", "str", "float", "bool", "null", "list", "dict", "bigint", "neg"]
        kind = self.choice(kinds if depth < 2 else kinds[:5])
        if kind == "int":
            return int(self.rng.randint(0, 40))
        if kind == "bigint":
            return 10 ** int(self.rng.randint(5, 40))
        if kind == "neg":
            return -int(self.rng.randint(0, 40))
        if kind == "str":
            return self.text(6)
        if kind == "float":
            return self.choice([0.5, 1e300, -0.0, 0.1, 3.0])
        if kind == "bool":
            return bool(self.rng.randint(2))
        if kind == "null":
            return None
        if kind == "list":
            return [self.json_value(depth + 1) for _ in range(self.rng.randint(0, 3))]
        return {self.text(4): self.json_value(depth + 1) for _ in range(self.rng.randint(0, 3))}

    def maybe_replace(self, value, p=0.1):
        return self.json_value() if self.chance(p) else value


# ----------------------------------------------------------------------------------------------
# generators, one per input format: each returns bytes to write to a file

def classify_tsv(f):
    if f.chance(0.15):
        return f.bytes_()
    columns = ["label", "text_a"] + (["text_b"] if f.chance(0.5) else []) + \
        (["qid"] if f.chance(0.2) else [])
    if f.chance(0.3):
        f.rng.shuffle(columns)
    if f.chance(0.1):
        columns[f.rng.randint(len(columns))] = f.choice(["", "Label", "text", "text_a "])
    if f.chance(0.05):
        columns.append("text_a")  # a repeated column
    lines = ["\t".join(columns)]
    for _ in range(f.rng.randint(0, 6)):
        row = []
        for column in columns:
            row.append(f.choice(LABEL_WORDS) if column in ("label", "qid") else f.text(20))
        if f.chance(0.1):
            row = row[:f.rng.randint(len(row) + 1)] if f.chance(0.5) else row + [f.text(3)]
        lines.append("\t".join(row))
    if f.chance(0.1):
        lines.insert(f.rng.randint(1, len(lines) + 1), "")
    return f.spoil(("\n".join(lines) + ("\n" if f.chance(0.8) else "")).encode("utf-8",
                                                                              "surrogatepass"))


def ner_tsv(f):
    if f.chance(0.15):
        return f.bytes_()
    columns = ["text_a", "label"] if f.chance(0.9) else f.choice([["text_a"], ["label"],
                                                                  ["label", "text_a", "x"]])
    lines = ["\t".join(columns)]
    for _ in range(f.rng.randint(0, 5)):
        n = f.rng.randint(0, 8)
        tokens = [f.text(3) for _ in range(n)]
        labels = [f.choice(NER_LABELS) if f.chance(0.3) else f.choice(NER_LABELS[:3])
                  for _ in range(n + (f.rng.randint(-1, 2) if f.chance(0.1) else 0))]
        sep = "\x02" if f.chance(0.8) else " "
        fields = {"text_a": sep.join(tokens), "label": sep.join(labels), "x": f.text(3)}
        lines.append("\t".join(fields[c] for c in columns))
    if f.chance(0.1):
        lines.insert(f.rng.randint(1, len(lines) + 1), f.choice(["", " ", "\t", "\x02"]))
    return f.spoil(("\n".join(lines) + "\n").encode("utf-8", "surrogatepass"))


def squad_json(f):
    if f.chance(0.1):
        return f.bytes_()
    qid = [0]

    def qa(context):
        qid[0] += 1
        answers = []
        for _ in range(f.rng.randint(0, 3) if f.chance(0.1) else 1):
            if context and f.chance(0.8):
                start = f.rng.randint(len(context))
                text = context[start:start + f.rng.randint(1, 6)]
            else:
                start, text = f.rng.randint(-3, 30), f.text(4)
            answer = {"text": f.maybe_replace(text, 0.03),
                      "answer_start": f.maybe_replace(start, 0.03)}
            if f.chance(0.05):
                answer.pop(f.choice(["text", "answer_start"]))
            answers.append(f.maybe_replace(answer, 0.05))
        out = {"id": f.maybe_replace("q%d" % (qid[0] if f.chance(0.95) else 1), 0.05),
               "question": f.maybe_replace(f.text(8), 0.05),
               "answers": f.maybe_replace(answers, 0.05)}
        if f.chance(0.05):
            out.pop(f.choice(list(out)))
        return out

    data = []
    for _ in range(f.rng.randint(0, 3) if f.chance(0.1) else 1):
        paragraphs = []
        for _ in range(f.rng.randint(0, 3) if f.chance(0.1) else f.rng.randint(1, 3)):
            context = f.text(40) if f.chance(0.9) else f.choice(["", "   ", "\x00\x01"])
            para = {"context": f.maybe_replace(context, 0.05),
                    "qas": f.maybe_replace([qa(context) for _ in range(f.rng.randint(1, 3))],
                                           0.03)}
            paragraphs.append(f.maybe_replace(para, 0.03))
        data.append(f.maybe_replace({"paragraphs": f.maybe_replace(paragraphs, 0.05)}, 0.03))
    doc = f.maybe_replace({"data": f.maybe_replace(data, 0.05), "version": "1.1"}, 0.05)
    return f.spoil(json.dumps(doc, ensure_ascii=f.chance(0.5)).encode("utf-8", "surrogatepass"))


def sample_line(f, vocab_size):
    """One pretraining sample line, usually valid, often spoiled in one place."""
    if f.chance(0.1):
        return f.bytes_(80).decode("utf-8", "replace")
    n = f.rng.randint(0, 12)
    fields = [[int(x) for x in f.rng.randint(0, vocab_size, n)],
              [int(x) for x in f.rng.randint(0, 2, n)], list(range(n)),
              [int(x) for x in f.rng.randint(-1, 2, n)], [int(f.rng.randint(0, 2))]]
    if f.chance(0.5):
        k = f.rng.randint(5)
        what = f.rng.randint(5)
        if what == 0 and fields[k]:
            fields[k][f.rng.randint(len(fields[k]))] = f.choice(
                [-1, vocab_size, 2 ** 63, -2 ** 70, 5, 1000])
        elif what == 1:
            fields[k] = fields[k][:-1]
        elif what == 2:
            fields[k] = fields[k] + [0]
        elif what == 3:
            fields[k] = []
    texts = [" ".join(str(x) for x in field) for field in fields]
    if f.chance(0.1):
        texts[f.rng.randint(5)] = f.choice(["a", "1.5", "1e3", "--1", "0x1", "١", "+2", " "])
    if f.chance(0.05):
        texts = texts[:f.rng.randint(5)] if f.chance(0.5) else texts + ["0"]
    return ";".join(texts)


def filelist_text(f, gz_name):
    if f.chance(0.15):
        return f.bytes_(60)
    lines = []
    for _ in range(f.rng.randint(0, 4) if f.chance(0.2) else 1):
        name = f.choice([gz_name] * 6 + ["nope.gz", "part.txt", "", " ", "./" + gz_name])
        prob = f.choice(["1.1", "0.5", "0", "-1", "nan", "inf", "x", "", "1e400"])
        sep = "\t" if f.chance(0.9) else f.choice([" ", "\t\t", ";"])
        lines.append(name + sep + prob if f.chance(0.95) else name)
    return f.spoil(("\n".join(lines) + "\n").encode("utf-8"))


def vocab_text(f):
    if f.chance(0.2):
        return f.bytes_()
    lines = []
    tokens = ["[PAD]", "[CLS]", "[SEP]", "[MASK]", "[UNK]"] + [f.text(3) for _ in range(6)]
    with_ids = f.chance(0.6)
    for i, token in enumerate(tokens):
        if with_ids:
            index = f.choice([str(i), str(i), "x", "-1", str(2 ** 70), "", "1.0", " 7 "]) \
                if f.chance(0.1) else str(i)
            line = token + "\t" + index + ("\textra" if f.chance(0.03) else "")
        else:
            line = token
        lines.append(line)
    if f.chance(0.2):
        f.rng.shuffle(lines)
    return f.spoil(("\n".join(lines) + "\n").encode("utf-8", "surrogatepass"))


BASE_CONFIG = dict(attention_probs_dropout_prob=0.1, hidden_act="relu", hidden_dropout_prob=0.1,
                   hidden_size=16, initializer_range=0.02, max_position_embeddings=32,
                   num_attention_heads=2, num_hidden_layers=1, type_vocab_size=2,
                   vocab_size=20)


def config_text(f):
    if f.chance(0.1):
        return f.bytes_()
    cfg = dict(BASE_CONFIG)
    if f.chance(0.3):
        cfg.update(sent_type_vocab_size=cfg.pop("type_vocab_size"), task_type_vocab_size=3,
                   use_task_id=True)
    for _ in range(f.rng.randint(0, 3)):
        key = f.choice(list(cfg) + ["use_task_id", "task_type_vocab_size", "extra"])
        if f.chance(0.2):
            cfg.pop(key, None)
        else:
            cfg[key] = f.json_value()
    doc = cfg if f.chance(0.95) else f.json_value()
    return f.spoil(json.dumps(doc).encode("utf-8", "surrogatepass"))


def label_map_text(f):
    if f.chance(0.2):
        return f.bytes_()
    doc = {f.choice(NER_LABELS): f.maybe_replace(i, 0.2) for i in range(f.rng.randint(0, 5))}
    return f.spoil(json.dumps(f.maybe_replace(doc, 0.1)).encode("utf-8", "surrogatepass"))


def tensor_bytes(f, valid):
    """A legacy tensor file: a valid one, damaged (bytes flipped, cut, extended, header
    fields replaced), or noise."""
    if f.chance(0.1):
        return f.bytes_()
    data = bytearray(f.choice(valid))
    for _ in range(f.rng.randint(1, 4)):
        what = f.rng.randint(5)
        if what == 0 and data:
            data[f.rng.randint(len(data))] = f.rng.randint(256)
        elif what == 1:
            del data[f.rng.randint(len(data) + 1):]
        elif what == 2:
            data += f.bytes_(20)
        elif what == 3 and len(data) >= 20:  # header: version, lod_level, tversion, desc_size
            offset, fmt = f.choice([(0, "<I"), (4, "<Q"), (12, "<I"), (16, "<i")])
            value = f.choice([0, 1, 2, 7, 64, 65, 2 ** 31 - 1, -1 if fmt == "<i" else 3])
            data[offset:offset + struct.calcsize(fmt)] = struct.pack(fmt, value)
        elif what == 4 and len(data) > 22:  # the TensorDesc varints
            i = f.rng.randint(20, min(len(data), 40))
            data[i] = f.choice([0x80, 0xff, 0x08, 0x10, 0x12, 0x00, 0x7f])
    return bytes(data)


# ----------------------------------------------------------------------------------------------
# running

class Target(object):
    """Feeds inputs to one reader function; collects anything but the expected errors."""

    def __init__(self, name, directory):
        self.name, self.directory = name, directory
        self.count, self.ok, self.failures = 0, 0, []
        os.makedirs(directory, exist_ok=True)

    def path(self, suffix=""):
        return os.path.join(self.directory, "%s_%d%s" % (self.name, self.count, suffix))

    def run(self, read, data, path=None, expected=EXPECTED):
        self.count += 1
        if path is None:
            path = self.path()
        if data is not None:
            with open(path, "wb") as fh:
                fh.write(data if isinstance(data, bytes) else data.encode("utf-8",
                                                                          "surrogatepass"))
        try:
            read(path)
            self.ok += 1
        except expected:
            pass
        except Exception as e:  # noqa: BLE001 - this is what the test looks for
            self.failures.append((self.name, data, "".join(
                traceback.format_exception_only(type(e), e)).strip(),
                traceback.format_exc().strip().splitlines()[-3:]))


def batches_of(reader, records):
    """Pad what was read, as training would (shows label / id values that cannot batch)."""
    for i in range(0, len(records), 4):
        reader.pad_batch(records[i:i + 4])


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("fuzz_model")
    write_tiny_model(d, ["好的很坏不这个手机错质量差abcxyz019"], hidden=16, layers=1, heads=2,
                     max_pos=32)
    (d / "labels.json").write_text(json.dumps({"0": 0, "1": 1, "pos": 1, "neg": 0}))
    (d / "ner_labels.json").write_text(json.dumps({"B-PER": 0, "I-PER": 1, "E-PER": 2,
                                                   "O": 3}))
    return d


def test_fuzz_readers(model_dir, tmp_path):
    f = Fuzzer(SEED)
    vocab = str(model_dir / "vocab.txt")
    vocab_size = len(load_vocab(vocab))
    targets = []

    def target(name):
        t = Target(name, str(tmp_path / name))
        targets.append(t)
        return t

    # classification TSV: plain, label map, regression, text pair cut short, inference
    readers = [
        ClassifyReader(vocab, max_seq_len=8),
        ClassifyReader(vocab, label_map_config=str(model_dir / "labels.json"), max_seq_len=5),
        ClassifyReader(vocab, is_classify=False, is_regression=True, max_seq_len=3,
                       for_cn=False),
        ClassifyReader(vocab, is_inference=True, max_seq_len=6),
        ExtractEmbeddingReader(vocab, max_seq_len=4),
    ]
    t = target("classify_tsv")
    for i in range(2600):
        reader = readers[i % len(readers)]
        t.run(lambda p, reader=reader: batches_of(reader, reader.records(p)), classify_tsv(f))
    t = target("read_tsv")
    for i in range(400):
        t.run(lambda p, i=i: read_tsv(p, ("text_a", "label")[:1 + i % 2], reject_empty=bool(i % 3)),
              classify_tsv(f))

    # sequence labelling TSV: training (label propagation) and inference, short windows
    ner_map = str(model_dir / "ner_labels.json")
    ner_readers = [SequenceLabelReader(vocab, label_map_config=ner_map, max_seq_len=5),
                   SequenceLabelReader(vocab, label_map_config=ner_map, max_seq_len=3,
                                       is_inference=True)]
    t = target("ner_tsv")

    def read_ner(reader):
        def read(path):
            batches_of(reader, reader.records(path))
            for example in reader.examples(path):
                reader.pad_batch([r for _, _, r in reader.window_records(example)])
        return read

    for i in range(1500):
        t.run(read_ner(ner_readers[i % 2]), ner_tsv(f))

    # reading comprehension json, training and evaluation, Chinese and English doc tokens
    mrc_readers = [MRCReader(vocab, max_seq_len=16, max_query_length=4, doc_stride=3),
                   MRCReader(vocab, max_seq_len=12, max_query_length=3, doc_stride=2,
                             for_cn=False)]
    t = target("squad_json")

    def read_squad_file(reader, is_training):
        def read(path):
            _, features = reader.load(path, is_training)
            batches_of(reader, features)
        return read

    for i in range(1500):
        t.run(read_squad_file(mrc_readers[i % 2], bool(i % 3)), squad_json(f))

    # pretraining: the line parser alone (its MalformedLine is what the reader reports or,
    # with --strict_data, raises as DataError), then whole gz files read strictly
    t = target("sample_line")
    for _ in range(1000):
        line = sample_line(f, vocab_size)
        t.run(lambda p, line=line: parse_sample(line, vocab_size, max_seq_len=10, sent_types=2,
                                                max_position=32),
              None, path="-", expected=EXPECTED + (MalformedLine,))
    gz_dir = tmp_path / "gz"
    gz_dir.mkdir()
    good_gz = gz_dir / "good.gz"
    with gzip.open(good_gz, "wt") as fh:
        fh.write("1 5 6 2;0 0 0 0;0 1 2 3;-1 0 0 -1;1\n")
    (gz_dir / "filelist").write_text("%s\t1.1\n" % good_gz)
    strict = ErnieDataReader(str(gz_dir / "filelist"), vocab, batch_size=256, in_tokens=True,
                             max_seq_len=10, strict_data=True, sent_types=2, max_position=32,
                             verbose=False)
    lenient = ErnieDataReader(str(gz_dir / "filelist"), vocab, batch_size=256, in_tokens=True,
                              max_seq_len=10, strict_data=False, sent_types=2,
                              max_position=32, verbose=False, generate_neg_sample=True)
    t = target("sample_gz")
    for i in range(300):
        lines = [sample_line(f, vocab_size) for _ in range(f.rng.randint(0, 5))]
        data = ("\n".join(lines) + "\n").encode("utf-8", "surrogatepass")
        data = gzip.compress(data) if f.chance(0.9) else f.bytes_()
        if f.chance(0.05):
            data = data[:f.rng.randint(len(data) + 1)]
        reader = strict if i % 2 else lenient
        t.run(lambda p, reader=reader: list(reader.read_file(p)), data, path=t.path(".gz"))
    t = target("filelist")
    for _ in range(300):
        t.run(read_filelist, filelist_text(f, str(good_gz)), path=str(gz_dir / ("fl_%d" % _)))

    # vocabularies, configs, label maps
    t = target("vocab")
    for _ in range(900):
        t.run(load_vocab, vocab_text(f))
    t = target("ernie_config")
    for _ in range(900):
        t.run(ErnieConfig, config_text(f))
    t = target("label_map")
    for _ in range(200):
        t.run(load_label_map, label_map_text(f))

    # legacy tensor files
    valid = []
    for k, array in enumerate([np.arange(6, dtype="float32").reshape(2, 3),
                               np.zeros((0, 4), "int64"), np.array(3.5, "float64"),
                               np.ones((2, 2, 2), "float16"), np.arange(5, dtype="int32")]):
        p = str(tmp_path / ("valid_%d" % k))
        write_legacy_tensor(p, array)
        with open(p, "rb") as fh:
            valid.append(fh.read())
    t = target("legacy_tensor")
    for _ in range(900):
        t.run(read_legacy_tensor, tensor_bytes(f, valid))

    total = sum(t.count for t in targets)
    failures = [x for t in targets for x in t.failures]
    summary = ", ".join("%s %d/%d read" % (t.name, t.ok, t.count) for t in targets)
    print("fuzzed %d inputs: %s" % (total, summary))
    assert total >= 10000
    if failures:
        lines = ["%d of %d inputs raised something other than DataError/UsageError; the first "
                 "ones:" % (len(failures), total)]
        seen = set()
        for name, data, error, where in failures:
            if (name, error.splitlines()[-1][:60]) in seen:
                continue
            seen.add((name, error.splitlines()[-1][:60]))
            lines.append("[%s] %s\n    input: %r\n    at: %s" % (name, error, data[:300],
                                                                " | ".join(where)))
            if len(seen) >= 12:
                break
        pytest.fail("\n".join(lines), pytrace=False)
    # the generators reach the readers' inner code, not just their first check
    for t in targets:
        assert t.ok > 0.05 * t.count or t.name in ("legacy_tensor",), summary

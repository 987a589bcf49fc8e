"""Fine-tuning readers: TSV files with a header line -> batches of numpy arrays.

One reader per input format: `ClassifyReader` (text_a [, text_b], label [, qid]),
`ExtractEmbeddingReader` (same file, labels unused) and `SequenceLabelReader` (characters and
labels joined by \\x02). Examples are tokenized once, when a file is first read; an epoch
shuffles the records with the reader's own seeded RandomState.
"""
import collections
import json

import numpy as np

from reader import batching
from tokenization import make_tokenizer
from utils.errors import DataError, UsageError, where

Record = collections.namedtuple("Record", "token_ids sent_ids pos_ids label qid")


def read_tsv(path, required=("text_a",)):
    """Rows of a TSV with a header line, as (line number, dict column -> text).

    Checks what 2019 left to a crash: the file exists and is UTF-8, the header names the
    required columns, every row has as many fields as the header."""
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        raise DataError("%s: file not found" % path)
    except IsADirectoryError:
        raise DataError("%s: is a directory, expected a TSV file" % path)
    lines = raw.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    if not lines:
        raise DataError("%s: empty file (expected a header line naming %s)"
                        % (path, ", ".join(required)))
    rows = []
    header = None
    for number, line in enumerate(lines, start=1):
        try:
            text = line.decode("utf-8").rstrip("\r")
        except UnicodeDecodeError:
            raise DataError("%s: not UTF-8 text" % where(path, number))
        fields = text.split("\t")
        if header is None:
            header = fields
            missing = [c for c in required if c not in header]
            if missing:
                raise DataError("%s: header line must name the columns %s; missing %s (got %r)"
                                % (where(path, 1), ", ".join(required), ", ".join(missing),
                                   text[:80]))
            continue
        if len(fields) != len(header):
            raise DataError("%s: expected %d tab-separated fields (%s), got %d"
                            % (where(path, number), len(header), ", ".join(header), len(fields)))
        rows.append((number, dict(zip(header, fields))))
    return rows


def load_label_map(path):
    if path is None:
        return None
    try:
        with open(path, encoding="utf-8") as f:
            label_map = json.load(f)
    except FileNotFoundError:
        raise DataError("%s: label map file not found" % path)
    except (ValueError, UnicodeDecodeError) as e:
        raise DataError("%s: not a json label map (%s)" % (path, str(e).splitlines()[0]))
    if not isinstance(label_map, dict) or not all(isinstance(v, int) for v in label_map.values()):
        raise DataError("%s: a label map is a json object of label -> integer id" % path)
    return label_map


def _record_len(record):
    return len(record.token_ids)


def truncate_pair(tokens_a, tokens_b, max_len):
    """Drop the last token of the longer side (b on ties) until both fit in max_len."""
    while len(tokens_a) + len(tokens_b) > max_len:
        if len(tokens_a) > len(tokens_b):
            tokens_a.pop()
        else:
            tokens_b.pop()


class BaseReader(object):
    """Shared by the fine-tuning readers: tokenizer, record cache, batching and epochs."""

    text_columns = ("text_a", "text_b")

    def __init__(self, vocab_path, label_map_config=None, max_seq_len=512, do_lower_case=True,
                 in_tokens=False, is_inference=False, random_seed=None,
                 tokenizer="FullTokenizer", is_classify=True, is_regression=False, for_cn=True,
                 task_id=0, sp_model=None):
        if max_seq_len < 3:
            raise UsageError("--max_seq_len must be at least 3, got %d" % max_seq_len)
        self.tokenizer = make_tokenizer(tokenizer, vocab_path, do_lower_case, sp_model)
        vocab = self.tokenizer.vocab
        for token in ("[CLS]", "[SEP]"):
            if token not in vocab:
                raise DataError("%s: the vocabulary has no %s token" % (vocab_path, token))
        self.pad_id = vocab.get("[PAD]", 0)
        self.cls_id, self.sep_id = vocab["[CLS]"], vocab["[SEP]"]
        self.label_map = load_label_map(label_map_config)
        self.max_seq_len = max_seq_len
        self.in_tokens = in_tokens
        self.is_inference = is_inference
        self.is_classify = is_classify
        self.is_regression = is_regression
        self.for_cn = for_cn
        self.task_id = task_id
        self.rng = np.random.RandomState(random_seed)
        self.current_example = 0
        self.current_epoch = 0
        self._cache = {}

    # ---- examples -> records -------------------------------------------------------------
    def required_columns(self):
        return ("text_a",) if self.is_inference else ("text_a", "label")

    def clean_text(self, text):
        """Chinese task data is space-segmented; 2019 removed the spaces (--for_cn true)."""
        return text.replace(" ", "") if self.for_cn else text

    def parse_label(self, label, path, line):
        if self.is_inference:
            return None
        if self.is_regression:
            try:
                return float(label)
            except ValueError:
                raise DataError("%s: regression label %r is not a number"
                                % (where(path, line), label))
        if self.label_map is not None:
            if label not in self.label_map:
                raise DataError("%s: label %r is not in the label map (%s)"
                                % (where(path, line), label, ", ".join(sorted(self.label_map))))
            return self.label_map[label]
        try:
            return int(label)
        except ValueError:
            raise DataError("%s: label %r is not an integer id (give --label_map_config to map "
                            "label names)" % (where(path, line), label))

    def build_record(self, row, path, line):
        tokens_a = self.tokenizer.tokenize(self.clean_text(row["text_a"]))
        tokens_b = None
        if "text_b" in row:
            tokens_b = self.tokenizer.tokenize(self.clean_text(row["text_b"]))
            truncate_pair(tokens_a, tokens_b, self.max_seq_len - 3)
        else:
            tokens_a = tokens_a[:self.max_seq_len - 2]
        ids_a = self.tokenizer.convert_tokens_to_ids(tokens_a)
        token_ids = [self.cls_id] + ids_a + [self.sep_id]
        sent_ids = [0] * len(token_ids)
        if tokens_b is not None:
            ids_b = self.tokenizer.convert_tokens_to_ids(tokens_b)
            token_ids += ids_b + [self.sep_id]
            sent_ids += [1] * (len(ids_b) + 1)
        label = self.parse_label(row.get("label"), path, line)
        qid = row.get("qid")
        return Record(token_ids, sent_ids, list(range(len(token_ids))), label, qid)

    def records(self, path):
        """All records of a file, tokenized once and cached."""
        if path not in self._cache:
            rows = read_tsv(path, self.required_columns())
            self._cache[path] = [self.build_record(row, path, line) for line, row in rows]
        return self._cache[path]

    def get_num_examples(self, path):
        return len(self.records(path))

    def count_batches(self, path, batch_size):
        """Batches in one pass over the file in its own order (the LR schedule's horizon)."""
        return sum(1 for _ in batching.batch_records(self.records(path), batch_size,
                                                     self.in_tokens, length=_record_len))

    # ---- records -> batches --------------------------------------------------------------
    def pad_batch(self, records):
        batch = batching.encoder_inputs(records, self.pad_id, self.task_id)
        if not self.is_inference:
            dtype = "float32" if self.is_regression else "int64"
            batch["labels"] = np.array([r.label for r in records], dtype=dtype)
        batch["qids"] = [r.qid for r in records]
        return batch

    def data_generator(self, input_file, batch_size, epoch=1, shuffle=True, phase=None,
                       trainer_id=0, num_trainers=1):
        """A function returning a generator of padded batches over `epoch` passes.

        In the train phase `current_epoch` (0-based) and `current_example` follow the
        progress. Batches are dealt to trainers (see batching.shard_batches)."""
        if batch_size <= 0:
            raise UsageError("--batch_size must be positive, got %d" % batch_size)
        records = list(self.records(input_file))
        if not records:
            raise DataError("%s: no examples after the header line" % input_file)

        def batches_of_epoch():
            for epoch_index in range(epoch):
                if phase == "train":
                    self.current_epoch, self.current_example = epoch_index, 0
                if shuffle:
                    self.rng.shuffle(records)
                for batch in batching.batch_records(records, batch_size, self.in_tokens,
                                                    length=_record_len):
                    if phase == "train":
                        self.current_example += len(batch)
                    yield batch

        def generator():
            for group in batching.shard_batches(batches_of_epoch(), trainer_id, num_trainers):
                yield self.pad_batch(group)

        return generator


class ClassifyReader(BaseReader):
    """text_a [, text_b], label [, qid]: one record per row (labels dropped in inference)."""


class ExtractEmbeddingReader(BaseReader):
    """The fine-tuning TSV format (a label column may be present and is ignored); batches carry
    `seq_lens` so token embeddings can be unpadded."""

    def __init__(self, vocab_path, max_seq_len=512, do_lower_case=True, **kwargs):
        kwargs.setdefault("for_cn", False)
        super().__init__(vocab_path, max_seq_len=max_seq_len, do_lower_case=do_lower_case,
                         is_inference=True, **kwargs)

    def pad_batch(self, records):
        batch = super().pad_batch(records)
        batch["seq_lens"] = batching.seq_lens([r.token_ids for r in records])
        return batch

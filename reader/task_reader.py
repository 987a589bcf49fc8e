"""Fine-tuning readers: TSV files with a header line -> batches of numpy arrays.

One reader per input format: `ClassifyReader` (text_a [, text_b], label [, qid]),
`ExtractEmbeddingReader` (same file, labels unused) and `SequenceLabelReader` (characters and
labels joined by \\x02). Examples are tokenized once, when a file is first read; an epoch
shuffles the records with the reader's own seeded RandomState.
"""
import collections
import json
import math

import numpy as np

from reader import batching
from tokenization import make_tokenizer
from utils.args import check_max_seq_len
from utils.errors import DataError, UsageError, where

Record = collections.namedtuple("Record", "token_ids sent_ids pos_ids label qid")


def read_tsv(path, required=("text_a",), reject_empty=False):
    """Rows of a TSV with a header line, as (line number, dict column -> text).

    Checks what 2019 left to a crash: the file exists and is UTF-8, the header names the
    required columns, every row has as many fields as the header. With `reject_empty`, a
    data line that is empty or only whitespace is an error of its own ("empty line")."""
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        raise DataError("%s: file not found" % path) from None
    except IsADirectoryError:
        raise DataError("%s: is a directory, expected a TSV file" % path) from None
    if raw.startswith(b"\xef\xbb\xbf"):  # a UTF-8 byte-order mark is not part of the header
        raw = raw[3:]
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
            raise DataError("%s: not UTF-8 text" % where(path, number)) from None
        fields = text.split("\t")
        if header is None:
            header = fields
            twice = sorted({c for c in header if header.count(c) > 1})
            if twice:
                raise DataError("%s: header line names the column%s %s more than once"
                                % (where(path, 1), "s" * (len(twice) > 1), _and(map(repr, twice))))
            missing = [c for c in required if c not in header]
            if missing:
                raise DataError("%s: header line must name the columns %s; missing %s (got %r)"
                                % (where(path, 1), ", ".join(required), ", ".join(missing),
                                   text[:80]))
            continue
        if reject_empty and not text.strip():
            raise DataError("%s: empty line" % where(path, number))
        if len(fields) != len(header):
            raise DataError("%s: expected %d tab-separated fields (%s), got %d"
                            % (where(path, number), len(header), ", ".join(header), len(fields)))
        rows.append((number, dict(zip(header, fields))))
    return rows


def _and(words):
    """'a' / 'a and b' / 'a, b and c'"""
    words = [str(w) for w in words]
    return words[0] if len(words) == 1 else "%s and %s" % (", ".join(words[:-1]), words[-1])


def labels_by_id(label_map):
    """{id: [labels with that id, in file order]}"""
    by_id = {}
    for label, index in label_map.items():
        by_id.setdefault(index, []).append(label)
    return by_id


def load_label_map(path):
    """A `--label_map_config` file: a json object of label -> integer id (0 or more), each
    label once (a repeated key is an error, not "the last one wins"). What the ids must be
    depends on the task: check_label_map_ids (classification), SequenceLabelReader."""
    if path is None:
        return None

    def unique_keys(pairs):
        seen = {}
        for key, value in pairs:
            if key in seen:
                raise DataError("%s: label %r appears twice in the label map (ids %s and %s); "
                                "each label has one id" % (path, key, json.dumps(seen[key]),
                                                           json.dumps(value)))
            seen[key] = value
        return seen

    try:
        with open(path, encoding="utf-8-sig") as f:
            label_map = json.load(f, object_pairs_hook=unique_keys)
    except FileNotFoundError:
        raise DataError("%s: label map file not found" % path) from None
    except (ValueError, UnicodeDecodeError, RecursionError) as e:
        raise DataError("%s: not a json label map (%s)" % (path, str(e).splitlines()[0])) from None
    if not isinstance(label_map, dict):
        raise DataError("%s: a label map is a json object of label -> integer id (0 or more)"
                        % path)
    for label, index in label_map.items():
        if not (isinstance(index, int) and not isinstance(index, bool) and 0 <= index < 2 ** 63):
            raise DataError("%s: label %r has id %s; a label map is a json object of label -> "
                            "integer id (0 or more)" % (path, label, json.dumps(index)[:40]))
    if not label_map:
        raise DataError("%s: the label map has no labels" % path)
    return label_map


def check_label_map_ids(label_map, path, num_labels):
    """The ids of a classification label map against --num_labels: each is one of the model's
    outputs (below --num_labels), and labels share an id only as aliases of one class while
    every output keeps a label (2019's XNLI map names id 0 "contradictory", as its training
    data says, and "contradiction", as its dev and test data say). Labels on one id while an
    output has none would merge two classes: the model could never predict the other one."""
    over = [(label, index) for label, index in label_map.items() if index >= num_labels]
    if over:
        raise UsageError("%s: %s, but --num_labels %d makes the ids 0..%d"
                         % (path, _and("label %r has id %d" % pair for pair in over),
                            num_labels, num_labels - 1))
    by_id = labels_by_id(label_map)
    unnamed = [index for index in range(num_labels) if index not in by_id]
    shared = sorted((index, labels) for index, labels in by_id.items() if len(labels) > 1)
    if shared and unnamed:
        index, labels = shared[0]
        raise DataError("%s: labels %s share id %d while no label has id %s: that merges "
                        "classes; give each class an id of its own (labels share an id only "
                        "as names of one class)" % (path, _and(repr(ln) for ln in labels), index,
                                                    _and(unnamed)))


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
        check_max_seq_len(max_seq_len)
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
        self.position = None
        self._cache = {}
        self.cut = 0  # records build_record cut to max_seq_len

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
                value = float(label)
            except ValueError:
                raise DataError("%s: regression label %r is not a number"
                                % (where(path, line), label)) from None
            if not math.isfinite(value):
                raise DataError("%s: regression label %r is not a finite number"
                                % (where(path, line), label))
            return value
        if self.label_map is not None:
            if label not in self.label_map:
                raise DataError("%s: label %r is not in the label map (%s)"
                                % (where(path, line), label, ", ".join(sorted(self.label_map))))
            return self.label_map[label]
        try:
            value = int(label)
        except ValueError:
            raise DataError("%s: label %r is not an integer id (give --label_map_config to map "
                            "label names)" % (where(path, line), label)) from None
        if not -2 ** 63 <= value < 2 ** 63:  # batches hold labels as int64
            raise DataError("%s: label id %r is out of range" % (where(path, line), label))
        return value

    def build_record(self, row, path, line):
        tokens_a = self.tokenizer.tokenize(self.clean_text(row["text_a"]))
        tokens_b = None
        if "text_b" in row:
            tokens_b = self.tokenizer.tokenize(self.clean_text(row["text_b"]))
            self.cut += len(tokens_a) + len(tokens_b) > self.max_seq_len - 3
            truncate_pair(tokens_a, tokens_b, self.max_seq_len - 3)
        else:
            self.cut += len(tokens_a) > self.max_seq_len - 2
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
                                                     self.in_tokens, batching.token_count))

    # ---- records -> batches --------------------------------------------------------------
    def pad_batch(self, records):
        batch = batching.encoder_inputs(records, self.pad_id, self.task_id)
        if not self.is_inference:
            dtype = "float32" if self.is_regression else "int64"
            batch["labels"] = np.array([r.label for r in records], dtype=dtype)
        batch["qids"] = [r.qid for r in records]
        return batch

    def data_generator(self, input_file, batch_size, epoch=1, shuffle=True, phase=None,
                       trainer_id=0, num_trainers=1, start=None):
        """A function returning a generator of padded batches over `epoch` passes over the
        file's records (see `batch_generator`)."""
        if batch_size <= 0:
            raise UsageError("--batch_size must be positive, got %d" % batch_size)
        records = self.records(input_file)
        if not records:
            raise DataError("%s: no examples after the header line" % input_file)
        return self.batch_generator(records, batch_size, epoch, shuffle, phase, trainer_id,
                                    num_trainers, start)

    def batch_generator(self, records, batch_size, epoch=1, shuffle=True, phase=None,
                        trainer_id=0, num_trainers=1, start=None):
        """A function returning a generator of padded batches over `epoch` passes.

        Each pass shuffles the records afresh with the reader's RandomState, groups them
        into batches and deals the batches to trainers (batching.epoch_batches). In the
        train phase `current_epoch` (0-based), `current_example` and `position` follow the
        progress; `start` (a `position` saved by an earlier run) resumes right after the batch
        it names, with the same shuffles as the uninterrupted run."""

        def epoch_records(_):
            if not shuffle:
                return records
            return [records[i] for i in self.rng.permutation(len(records))]

        def generator():
            for batch, position, examples in batching.epoch_batches(
                    epoch_records, epoch, batch_size, self.in_tokens, trainer_id=trainer_id,
                    num_trainers=num_trainers, rng=self.rng, start=start):
                if phase == "train":
                    self.current_epoch = position["epoch"]
                    self.current_example = examples
                    self.position = position
                yield self.pad_batch(batch)

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


# ---- sequence labelling --------------------------------------------------------------------

SeqExample = collections.namedtuple(
    "SeqExample", "tokens labels piece_ids piece_labels first_piece line")
SeqExample.__doc__ = """One input line of a sequence-labelling file.

tokens       the input tokens, as written
labels       their label strings (None in inference mode)
piece_ids    vocabulary ids of all their pieces, untruncated
piece_labels label ids of the pieces (None in inference mode)
first_piece  per token: index of its first piece in piece_ids, or -1 when it has none
line         line number in the file"""


def split_tokens(text, spaced):
    """Tokens (or labels) of one field: \\x02-separated, or space-separated when `spaced`."""
    return text.split() if spaced else text.split("\x02")


def propagate_label(label, num_pieces):
    """The labels of the pieces of one token labelled `label` (the 2019-08-19 rule):
    B-X -> B-X, I-X...; S-X -> B-X, I-X..., E-X; E-X -> I-X..., E-X; O, I-X and anything
    else are copied to every piece."""
    if num_pieces <= 1:
        return [label] * num_pieces
    prefix, sep, kind = label.partition("-")
    if sep and prefix == "B":
        return [label] + ["I-" + kind] * (num_pieces - 1)
    if sep and prefix == "S":
        return ["B-" + kind] + ["I-" + kind] * (num_pieces - 2) + ["E-" + kind]
    if sep and prefix == "E":
        return ["I-" + kind] * (num_pieces - 1) + [label]
    return [label] * num_pieces


def window_spans(num_pieces, capacity):
    """[(start, end)] windows of at most `capacity` pieces covering 0..num_pieces.

    One window when everything fits; otherwise full windows whose starts are
    max(1, capacity // 2) apart, the last one moved back to end at the last piece, so every
    piece but those at the very ends is seen with context on both sides."""
    if num_pieces <= capacity:
        return [(0, num_pieces)]
    stride = max(1, capacity // 2)
    spans, start = [], 0
    while True:
        start = min(start, num_pieces - capacity)
        spans.append((start, start + capacity))
        if start + capacity >= num_pieces:
            return spans
        start += stride


def best_window_of_pieces(spans, num_pieces):
    """For every piece, the index of the window in which it has the most context on its
    shorter side (the first such window on ties), as BERT's SQuAD code chooses."""
    best, score = [0] * num_pieces, [-1] * num_pieces
    for w, (start, end) in enumerate(spans):
        for j in range(start, end):
            s = min(j - start, end - 1 - j)
            if s > score[j]:
                best[j], score[j] = w, s
    return best


class SequenceLabelReader(BaseReader):
    """Sequence labelling (NER): header `text_a<TAB>label`, tokens and labels each joined by
    \\x02 (or by spaces, in a line that has no \\x02); in inference mode only `text_a`.

    Every token is tokenized on its own. Its pieces get labels by `propagate_label`; a token
    with no pieces (a space, a control character) is dropped together with its label. Training
    records keep the first max_seq_len - 2 pieces; evaluation and prediction use
    `window_records`, which covers long inputs in overlapping windows instead of cutting them.

    The label map (`--label_map_config`, json label -> id) is required, its ids must be
    0..N-1 and it must have "O". 2019 took id N-1 (the last) for "O"; here the id of "O" is
    used, which is the same for the 2019 maps. [CLS], [SEP] and padding are labelled O and
    have weight 0 in `label_mask`, so they are not part of the loss.

    Batches: the encoder inputs, plus `labels` int64 [B, L], `label_mask` float32 [B, L]
    (1 at the pieces of the text) and `seq_lens` int64 [B] ([CLS] and [SEP] included)."""

    def __init__(self, vocab_path, label_map_config=None, max_seq_len=512, do_lower_case=True,
                 in_tokens=False, is_inference=False, random_seed=None,
                 tokenizer="FullTokenizer", task_id=0, sp_model=None, **kwargs):
        if not label_map_config:
            raise UsageError("--label_map_config is required for sequence labelling: a json "
                             "object mapping every label (and \"O\") to its id")
        kwargs.update(for_cn=False, is_classify=False, is_regression=False)
        super().__init__(vocab_path, label_map_config=label_map_config,
                         max_seq_len=max_seq_len, do_lower_case=do_lower_case,
                         in_tokens=in_tokens, is_inference=is_inference,
                         random_seed=random_seed, tokenizer=tokenizer, task_id=task_id,
                         sp_model=sp_model, **kwargs)
        label_map = self.label_map
        if "O" not in label_map:
            raise DataError("%s: the label map has no \"O\" label; sequence labelling needs "
                            "one for [CLS], [SEP], padding and tokens outside any chunk "
                            "(2019 assumed it is the last id, %d)"
                            % (label_map_config, len(label_map) - 1))
        for index, labels in sorted(labels_by_id(label_map).items()):
            if len(labels) > 1:
                raise DataError("%s: labels %s share id %d; sequence labelling needs an id "
                                "of its own for each label" % (label_map_config,
                                                               _and(repr(ln) for ln in labels),
                                                               index))
        if sorted(label_map.values()) != list(range(len(label_map))):
            raise DataError("%s: label ids must be 0..%d, each used once; got %s"
                            % (label_map_config, len(label_map) - 1,
                               sorted(label_map.values())))
        self.label_map_config = label_map_config
        self.o_id = label_map["O"]
        self.id2label = [None] * len(label_map)
        for label, index in label_map.items():
            self.id2label[index] = label
        self._examples = {}
        self._pieces = {}

    def required_columns(self):
        return ("text_a",) if self.is_inference else ("text_a", "label")

    def token_pieces(self, token):
        """Vocabulary ids of one token's pieces (memoised: most tokens are characters)."""
        ids = self._pieces.get(token)
        if ids is None:
            ids = self.tokenizer.convert_tokens_to_ids(self.tokenizer.tokenize(token))
            self._pieces[token] = ids
        return ids

    def build_example(self, row, path, line):
        text = row["text_a"]
        label_text = None if self.is_inference else row["label"]
        if not text.strip() and not (label_text or "").strip():
            raise DataError("%s: empty line" % where(path, line))
        spaced = "\x02" not in text and "\x02" not in (label_text or "")
        tokens = split_tokens(text, spaced)
        labels = None if label_text is None else split_tokens(label_text, spaced)
        if not tokens or (labels is not None and not labels):
            raise DataError("%s: empty %s" % (where(path, line), "text_a" if not tokens
                                                else "label"))
        if labels is not None and len(tokens) != len(labels):
            raise DataError("%s: %d tokens but %d labels (tokens and labels are separated by "
                            "\\x02, or by spaces in a line without \\x02)"
                            % (where(path, line), len(tokens), len(labels)))
        piece_ids, piece_labels, first_piece = [], [], []
        for k, token in enumerate(tokens):
            ids = self.token_pieces(token)
            first_piece.append(len(piece_ids) if ids else -1)
            piece_ids.extend(ids)
            if labels is None:
                continue
            if labels[k] not in self.label_map:
                raise DataError("%s: label %r (token %d) is not in the label map %s (%s)"
                                % (where(path, line), labels[k], k + 1, self.label_map_config,
                                   ", ".join(self.id2label)))
            for label in propagate_label(labels[k], len(ids)):
                if label not in self.label_map:
                    raise DataError("%s: token %d %r is split into %d pieces and its label %r "
                                    "becomes %r there, which is not in the label map %s"
                                    % (where(path, line), k + 1, token, len(ids), labels[k],
                                       label, self.label_map_config))
                piece_labels.append(self.label_map[label])
        return SeqExample(tokens, labels, piece_ids,
                          None if labels is None else piece_labels, first_piece, line)

    def examples(self, path):
        """All examples of a file (SeqExample), read and tokenized once."""
        if path not in self._examples:
            rows = read_tsv(path, self.required_columns(), reject_empty=True)
            self._examples[path] = [self.build_example(row, path, line) for line, row in rows]
        return self._examples[path]

    def make_record(self, example, start=0, end=None):
        """[CLS] pieces[start:end] [SEP] as a Record; label = the label ids, O at the ends."""
        end = len(example.piece_ids) if end is None else end
        token_ids = [self.cls_id] + example.piece_ids[start:end] + [self.sep_id]
        labels = None
        if example.piece_labels is not None:
            labels = [self.o_id] + example.piece_labels[start:end] + [self.o_id]
        n = len(token_ids)
        return Record(token_ids, [0] * n, list(range(n)), labels, None)

    def records(self, path):
        """Training records: the first max_seq_len - 2 pieces of every example."""
        if path not in self._cache:
            cut = self.max_seq_len - 2
            self._cache[path] = [self.make_record(ex, 0, min(cut, len(ex.piece_ids)))
                                 for ex in self.examples(path)]
        return self._cache[path]

    def window_records(self, example):
        """[(start, end, Record)]: the whole example in windows of max_seq_len - 2 pieces."""
        return [(s, e, self.make_record(example, s, e))
                for s, e in window_spans(len(example.piece_ids), self.max_seq_len - 2)]

    def pad_batch(self, records):
        batch = batching.encoder_inputs(records, self.pad_id, self.task_id)
        token_ids = [r.token_ids for r in records]
        lens = batching.seq_lens(token_ids)
        batch["seq_lens"] = lens
        mask = batch["input_mask"].copy()
        mask[:, 0] = 0.0
        mask[np.arange(len(records)), lens - 1] = 0.0
        batch["label_mask"] = mask
        if records[0].label is not None:
            batch["labels"] = batching.pad_batch_data([r.label for r in records], self.o_id)
        return batch

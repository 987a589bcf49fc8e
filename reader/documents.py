"""ERNIE 2.0 document tasks (`DocumentTaskReader`).

A document file has one document a line (a paragraph of raw text), cut into sentences by
`split_sentences`. The reader builds, on the fly, the examples of the document-level tasks
of ERNIE 2.0 (capitalization prediction, token-document relation, sentence reordering,
sentence distance); see `DOCUMENT_TASKS`.
"""
import collections
import itertools
import re

import numpy as np

from reader import batching
from reader.pretraining import seed_for, special_ids
from tokenization import BasicTokenizer
from utils.errors import DataError, UsageError, where

# The one definition of sentence ends, shared with the word-list splitter of
# tools/prepare_data.py. The CJK marks end a sentence wherever they are; the ASCII ones only
# when whitespace follows, so that 3.5 stays whole.
SENTENCE_ENDS = "。！？"
SPACED_SENTENCE_ENDS = ".!?"
# Closing quotes and brackets (and more end marks) right after an end stay with the sentence
# they close: 。” is one end, not an end and then a sentence of its own.
CLOSING_MARKS = "”’）》」』】〕)]\"'"
_SENTENCE_BREAK = re.compile("[%s][%s]*|[%s]+[%s]*(?=\\s)" % (
    SENTENCE_ENDS, re.escape(SENTENCE_ENDS + CLOSING_MARKS), re.escape(SPACED_SENTENCE_ENDS),
    re.escape(CLOSING_MARKS)))


def split_sentences(text):
    """Sentences of a paragraph, stripped: cut after 。！？ and after .!? followed by
    whitespace, the closing marks right after a cut staying with its sentence (see
    CLOSING_MARKS). Empty pieces are dropped."""
    out, start = [], 0
    for match in _SENTENCE_BREAK.finditer(text):
        out.append(text[start:match.end()].strip())
        start = match.end()
    out.append(text[start:].strip())
    return [sentence for sentence in out if sentence]


class Document(object):
    """A tokenized document: sentences as lists of ids, and for each token whether its word
    starts with a capital letter (for capitalization prediction)."""

    __slots__ = ("sentences", "capitals")

    def __init__(self, sentences, capitals):
        self.sentences, self.capitals = sentences, capitals


_CASED_SPLITTER = BasicTokenizer(do_lower_case=False)


def tokenize_document(text, tokenizer, cased_splitter=_CASED_SPLITTER):
    """Raw paragraph -> Document. Words come from a cased BasicTokenizer so that their case is
    known; each word is then tokenized (lower-cased) by `tokenizer`."""
    sentences, capitals = [], []
    for sentence in split_sentences(text):
        ids, caps = [], []
        for word in cased_splitter.tokenize(sentence):
            pieces = tokenizer.convert_tokens_to_ids(tokenizer.tokenize(word))
            ids.extend(pieces)
            caps.extend([1 if word[:1].isupper() else 0] * len(pieces))
        if ids:
            sentences.append(ids)
            capitals.append(caps)
    return Document(sentences, capitals)


def read_documents(path, tokenizer, min_sentences=1):
    """Documents of a text file (one a line, UTF-8); DataError names the file and line."""
    docs = []
    try:
        with open(path, "rb") as f:
            for number, raw in enumerate(f, 1):
                try:
                    text = raw.decode("utf-8")
                except UnicodeDecodeError:
                    raise DataError("%s: not UTF-8 text" % where(path, number)) from None
                if not text.strip():
                    continue
                doc = tokenize_document(text, tokenizer)
                if len(doc.sentences) >= min_sentences:
                    docs.append(doc)
    except FileNotFoundError:
        raise DataError("%s: document file not found" % path) from None
    if not docs:
        raise DataError("%s: no document with at least %d sentence(s)" % (path, min_sentences))
    return docs


Example = collections.namedtuple("Example", "token_ids sent_ids pos_ids label")


def _pack(segments, cls_id, sep_id, sent_types):
    """[CLS] s0 [SEP] s1 [SEP] ...; segment k gets sentence id min(k, sent_types - 1)."""
    tokens, sent_ids = [cls_id], [0]
    for k, seg in enumerate(segments):
        tokens += list(seg) + [sep_id]
        sent_ids += [min(k, sent_types - 1)] * (len(seg) + 1)
    return tokens, sent_ids


def _fit(segments, budget):
    """Cut the longest segment's tail until the lengths fit in `budget` (none left empty)."""
    segments = [list(s) for s in segments]
    while sum(len(s) for s in segments) > budget:
        longest = max(range(len(segments)), key=lambda k: len(segments[k]))
        if len(segments[longest]) <= 1:
            break
        segments[longest].pop()
    return segments


def permutation_classes(max_segments):
    """[(n, permutation)] for n = 1..max_segments: sentence reordering's Σ n! classes."""
    return [(n, p) for n in range(1, max_segments + 1)
            for p in itertools.permutations(range(n))]


# document task -> number of labels (None: Σ n! for n = 1..max_segments)
DOCUMENT_TASKS = collections.OrderedDict([
    ("capitalization", 2), ("token_document_relation", 2), ("sentence_reordering", None),
    ("sentence_distance", 3)])
TOKEN_TASKS = ("capitalization", "token_document_relation")


class DocumentTaskReader(object):
    """Examples of one ERNIE 2.0 document-level task, drawn on the fly from documents.

    kind:
      capitalization          one sentence (or a run of them); per token: 1 when its word
                              starts with a capital letter (English), 0 otherwise.
      token_document_relation one sentence of a document; per token: 1 when the token also
                              occurs in another sentence of the document.
      sentence_reordering     a paragraph cut into n = 1..max_segments segments (sentence
                              boundaries), shuffled; the class is the permutation among the
                              Σ n! of `permutation_classes`.
      sentence_distance       a sentence pair: 0 adjacent (B follows A), 1 same document but
                              not adjacent, 2 different documents; classes drawn 1/3 each
                              (a 2-sentence document gives 0 where 1 was drawn).
    Token-level labels are -1 at [CLS]/[SEP] (not predicted). Batches are dicts with the
    encoder inputs and `labels` ([B] for sentence tasks, [B, L] with -1 padding for token
    tasks).
    """

    def __init__(self, kind, path, tokenizer, max_seq_len=512, batch_size=4096,
                 in_tokens=True, random_seed=1, task_id=0, sent_types=2, max_segments=3,
                 trainer_id=0, num_trainers=1, docs=None):
        if kind not in DOCUMENT_TASKS:
            raise UsageError("unknown document task %r (one of %s)"
                             % (kind, ", ".join(DOCUMENT_TASKS)))
        self.kind = kind
        self.path = path
        self.tokenizer = tokenizer
        self.max_seq_len = max_seq_len
        self.batch_size = batch_size
        self.in_tokens = in_tokens
        self.task_id = task_id
        self.sent_types = sent_types
        self.max_segments = max_segments
        self.trainer_id, self.num_trainers = trainer_id, num_trainers
        vocab = tokenizer.vocab
        self.pad_id, self.cls_id, self.sep_id, _ = special_ids(vocab, getattr(
            tokenizer, "vocab_file", "vocabulary"))
        min_sentences = 2 if kind in ("token_document_relation", "sentence_distance") else 1
        if docs is None:
            docs = read_documents(path, tokenizer, min_sentences)
        self.docs = [d for d in docs if len(d.sentences) >= min_sentences]
        if not self.docs:
            raise DataError("%s: %s needs documents of at least %d sentences; there are none"
                            % (path, kind, min_sentences))
        self.rng = np.random.RandomState(
            seed_for(random_seed, 10, list(DOCUMENT_TASKS).index(kind)))
        self.classes = permutation_classes(max_segments)
        self.current_epoch = 0
        self.position = None
        if kind == "sentence_distance" and len(self.docs) < 2:
            raise DataError("%s: sentence_distance needs at least 2 documents" % path)

    @property
    def num_labels(self):
        return DOCUMENT_TASKS[self.kind] or len(self.classes)

    # ---- examples --------------------------------------------------------------------------
    def _span(self, doc, budget):
        """A run of consecutive sentences of `doc` starting at a random one, within budget."""
        start = self.rng.randint(len(doc.sentences))
        end, total = start, 0
        while end < len(doc.sentences) and (end == start or
                                            total + len(doc.sentences[end]) <= budget):
            total += len(doc.sentences[end])
            end += 1
        return start, end

    def example(self, doc_index):
        doc, budget = self.docs[doc_index], self.max_seq_len - 2
        if self.kind == "capitalization":
            start, end = self._span(doc, budget)
            ids = [t for s in doc.sentences[start:end] for t in s][:budget]
            caps = [c for s in doc.capitals[start:end] for c in s][:budget]
            tokens, sent_ids = _pack([ids], self.cls_id, self.sep_id, self.sent_types)
            return Example(tokens, sent_ids, list(range(len(tokens))), [-1] + caps + [-1])
        if self.kind == "token_document_relation":
            k = self.rng.randint(len(doc.sentences))
            ids = doc.sentences[k][:budget]
            others = set(t for j, s in enumerate(doc.sentences) if j != k for t in s)
            tokens, sent_ids = _pack([ids], self.cls_id, self.sep_id, self.sent_types)
            return Example(tokens, sent_ids, list(range(len(tokens))),
                           [-1] + [int(t in others) for t in ids] + [-1])
        if self.kind == "sentence_reordering":
            start, end = self._span(doc, self.max_seq_len - 1 - self.max_segments)
            sents = doc.sentences[start:end]
            flat = [t for s in sents for t in s]
            n = int(self.rng.randint(1, min(self.max_segments, len(flat)) + 1))
            if len(sents) >= n:      # cut at sentence boundaries
                cuts = self.rng.choice(np.arange(1, len(sents)), n - 1, replace=False)
                ends = np.cumsum([len(s) for s in sents])
                cuts = [int(ends[c - 1]) for c in cuts]
            else:                    # too few sentences: cut between tokens
                cuts = [int(c) for c in self.rng.choice(np.arange(1, len(flat)), n - 1,
                                                        replace=False)]
            bounds = [0] + sorted(cuts) + [len(flat)]
            segments = [flat[a:b] for a, b in zip(bounds, bounds[1:])]
            perm = tuple(int(i) for i in self.rng.permutation(n))
            shuffled = _fit([segments[i] for i in perm], self.max_seq_len - 1 - n)
            tokens, sent_ids = _pack(shuffled, self.cls_id, self.sep_id, self.sent_types)
            return Example(tokens, sent_ids, list(range(len(tokens))),
                           self.classes.index((n, perm)))
        # sentence_distance
        label = int(self.rng.randint(3))
        n = len(doc.sentences)
        if label == 1 and n < 3:
            label = 0
        a = int(self.rng.randint(n - 1)) if label == 0 else int(self.rng.randint(n))
        if label == 0:
            b_sent = doc.sentences[a + 1]
        elif label == 1:
            far = [j for j in range(n) if abs(j - a) > 1]
            if not far:           # a sentence in the middle of a 3-sentence document
                a, far = 0, [2]
            b_sent = doc.sentences[far[self.rng.randint(len(far))]]
        else:
            other = (doc_index + 1 + self.rng.randint(len(self.docs) - 1)) % len(self.docs)
            odoc = self.docs[other]
            b_sent = odoc.sentences[self.rng.randint(len(odoc.sentences))]
        pair = _fit([doc.sentences[a], b_sent], self.max_seq_len - 3)
        tokens, sent_ids = _pack(pair, self.cls_id, self.sep_id, self.sent_types)
        return Example(tokens, sent_ids, list(range(len(tokens))), label)

    def epoch_examples(self, epoch):
        """One example of each document, in a new order each epoch (0-based)."""
        self.current_epoch = epoch + 1
        for index in self.rng.permutation(len(self.docs)):
            yield self.example(int(index))

    # ---- batches ---------------------------------------------------------------------------
    def pad_batch(self, examples):
        batch = batching.encoder_inputs(examples, self.pad_id, self.task_id)
        if self.kind in TOKEN_TASKS:
            batch["labels"] = batching.pad_batch_data([e.label for e in examples], -1)
        else:
            batch["labels"] = np.array([e.label for e in examples], dtype="int64")
        return batch

    def data_generator(self, start=None):
        """A function returning an endless generator of batches; they run on across epochs
        (batching.epoch_batches with cut_epochs=False) and the trainers take turns.
        `position` follows them; `start`, a `position` saved before, continues right after
        it (the examples are drawn again from the beginning: give a reader as new)."""
        def generator():
            for group, position, _ in batching.epoch_batches(
                    self.epoch_examples, None, self.batch_size, self.in_tokens,
                    trainer_id=self.trainer_id, num_trainers=self.num_trainers, start=start,
                    cut_epochs=False):
                self.position = position
                yield self.pad_batch(group)
        return generator

"""Reading comprehension (span extraction) reader: SQuAD v1.1 json -> windowed features -> batches.

Input: ``{"data": [{"paragraphs": [{"context": str, "qas": [{"id": str, "question": str,
"answers": [{"text": str, "answer_start": int}]}]}]}]}`` (SQuAD, DRCD, CMRC 2018).

Doc tokens, the units that predictions map back to:
  * ``for_cn=False`` (English): whitespace-separated words, as BERT's run_squad;
  * ``for_cn=True`` (Chinese): ``tokenization.tokenize_chinese_chars`` (each CJK character alone,
    whitespace alone, other runs whole).
Each doc token is split into vocabulary sub-tokens, and every sub-token also gets the character
span it covers in the context (aligned through the tokenizer's normalisation; a token whose
pieces cannot be aligned gives every piece the whole token's span). Training answers are
placed with these spans: the label runs from the first sub-token that overlaps the answer's
first character to the last one that overlaps its last character, in English and Chinese
alike (2019's three-piece context trick is not needed).

Features follow BERT run_squad: the question is cut to ``max_query_length`` tokens; a context
longer than ``max_seq_len - len(question) - 3`` tokens is read in windows that start
``doc_stride`` tokens apart; each window is ``[CLS] question [SEP] window [SEP]`` and records
which original doc token each position came from and whether the window gives that token its
most central view (``token_is_max_context``). In training a window that does not contain the
whole answer is labelled start = end = 0 ([CLS]).

Errors name the file and the question id: a json that is not SQuAD-shaped, a repeated id, an
empty context, a training question without exactly one answer (the 2019 rule), an
``answer_start`` whose text differs from the answer, an evaluation file where only some
questions have gold answers.
"""
import collections
import json
import unicodedata

import numpy as np

from reader import batching
from reader.task_reader import BaseReader
from tokenization import _is_control, _is_whitespace, tokenize_chinese_chars
from utils.errors import DataError, UsageError

FIRST_UNIQUE_ID = 1000000000

Example = collections.namedtuple("Example", [
    "qas_id", "question_text", "context",
    "doc_tokens", "doc_spans",        # doc tokens and their [start, end) char spans
    "sub_tokens", "sub_spans",        # all doc sub-tokens and their [start, end) char spans
    "sub_to_orig",                    # sub-token index -> doc token index
    "answer_texts",                   # gold answer texts ([] when the file has none)
    "start_char", "end_char",         # training answer, [start, end) in context; else None
])

Feature = collections.namedtuple("Feature", [
    "unique_id", "example_index", "doc_span_index", "tokens", "token_to_orig_map",
    "token_is_max_context", "token_ids", "sent_ids", "pos_ids",
    "start_position", "end_position",
    "doc_offset", "doc_start",        # position of the first window token; its sub-token index
])


# ---- SQuAD json --------------------------------------------------------------------------
def _is_squad_whitespace(char):
    """BERT run_squad's word separators."""
    return char in " \t\r\n" or ord(char) == 0x202F


def whitespace_doc_tokens(context):
    """English doc tokens: [(word, start, end)] split on whitespace."""
    out, start = [], None
    for i, char in enumerate(context):
        if _is_squad_whitespace(char):
            if start is not None:
                out.append((context[start:i], start, i))
                start = None
        elif start is None:
            start = i
    if start is not None:
        out.append((context[start:], start, len(context)))
    return out


def chinese_doc_tokens(context):
    """Chinese doc tokens: tokenize_chinese_chars pieces with their char spans."""
    out, pos = [], 0
    for piece in tokenize_chinese_chars(context):
        out.append((piece, pos, pos + len(piece)))
        pos += len(piece)
    return out


def _canon_chars(text):
    """[(canonical char, index in text)]: lower-cased, accents stripped, whitespace and control
    characters dropped; the form in which pieces are compared with the text."""
    out = []
    for i, char in enumerate(text):
        if char in "\x00\ufffd" or _is_control(char) or _is_whitespace(char):
            continue
        for c in unicodedata.normalize("NFD", char.lower()):
            if unicodedata.category(c) != "Mn":
                out.append((c, i))
    return out


def piece_char_spans(word, pieces, unk_token="[UNK]"):
    """[start, end) spans in `word` of each of its tokenizer pieces, or None when the pieces
    cannot be aligned with the word's characters. An unknown piece covers the characters
    between its neighbours."""
    chars = _canon_chars(word)
    flat = "".join(c for c, _ in chars)
    spans, pending, pos = [], [], 0

    def span(a, b):
        return chars[a][1], chars[b - 1][1] + 1

    for k, piece in enumerate(pieces):
        if piece == unk_token:
            pending.append(k)
            spans.append(None)
            continue
        text = piece[2:] if piece.startswith("##") else piece
        text = "".join(c for c, _ in _canon_chars(text.replace("\u2581", " ")))
        if not text:
            return None
        at = flat.find(text, pos)
        if at < 0 or (at != pos and not pending) or (pending and at == pos):
            return None
        for j in pending:
            spans[j] = span(pos, at)
        pending = []
        spans.append(span(at, at + len(text)))
        pos = at + len(text)
    if pending:
        if pos >= len(flat):
            return None
        for j in pending:
            spans[j] = span(pos, len(flat))
    return spans


def _fail(path, qid, message):
    raise DataError("%s: question %s: %s" % (path, qid, message))


def read_squad(path, is_training):
    """Parse and check a SQuAD-format file: [(qas_id, question, context, answers)] where
    answers is [(text, answer_start)]."""
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except FileNotFoundError:
        raise DataError("%s: file not found" % path) from None
    except IsADirectoryError:
        raise DataError("%s: is a directory, expected a SQuAD json file" % path) from None
    except UnicodeDecodeError:
        raise DataError("%s: not UTF-8 text" % path) from None
    except ValueError as e:
        raise DataError("%s: not json (%s)" % (path, str(e).splitlines()[0])) from None
    if not isinstance(data, dict) or not isinstance(data.get("data"), list):
        raise DataError("%s: not SQuAD-shaped json: expected {\"data\": [{\"paragraphs\": "
                        "[{\"context\": ..., \"qas\": [...]}]}]}" % path)
    out, seen = [], set()
    for a, article in enumerate(data["data"]):
        where = "data[%d]" % a
        if not isinstance(article, dict) or not isinstance(article.get("paragraphs"), list):
            raise DataError("%s: not SQuAD-shaped json: %s has no \"paragraphs\" list"
                            % (path, where))
        for p, para in enumerate(article["paragraphs"]):
            where = "data[%d].paragraphs[%d]" % (a, p)
            if not isinstance(para, dict) or not isinstance(para.get("qas"), list):
                raise DataError("%s: not SQuAD-shaped json: %s has no \"qas\" list"
                                % (path, where))
            context = para.get("context")
            for q, qa in enumerate(para["qas"]):
                qwhere = "%s.qas[%d]" % (where, q)
                if not isinstance(qa, dict) or not isinstance(qa.get("id"), str) or \
                        not qa["id"].strip():
                    raise DataError("%s: not SQuAD-shaped json: %s has no string \"id\""
                                    % (path, qwhere))
                qid = qa["id"]
                if qid in seen:
                    _fail(path, qid, "the id is used by another question too")
                seen.add(qid)
                if not isinstance(context, str):
                    _fail(path, qid, "not SQuAD-shaped json: its paragraph has no string "
                                     "\"context\"")
                if not context.strip():
                    _fail(path, qid, "the context is empty")
                if not isinstance(qa.get("question"), str):
                    _fail(path, qid, "not SQuAD-shaped json: no string \"question\"")
                answers = qa.get("answers", [])
                if not isinstance(answers, list) or not all(
                        isinstance(x, dict) and isinstance(x.get("text"), str)
                        for x in answers):
                    _fail(path, qid, "not SQuAD-shaped json: \"answers\" must be a list of "
                                     "{\"text\": ..., \"answer_start\": ...}")
                if is_training and len(answers) != 1:
                    _fail(path, qid, "has %d answers; a training question must have exactly "
                                     "one (the 2019 rule)" % len(answers))
                pairs = []
                for x in answers:
                    start = x.get("answer_start")
                    if is_training:
                        if not isinstance(start, int) or isinstance(start, bool):
                            _fail(path, qid, "answer_start must be an integer, got %r"
                                  % (start,))
                        if not x["text"].strip():
                            _fail(path, qid, "the answer text is empty")
                        found = context[start:start + len(x["text"])] if start >= 0 else ""
                        if found != x["text"]:
                            _fail(path, qid, "answer_start %d does not match the answer text: "
                                             "the context there reads %r, the answer is %r"
                                  % (start, found, x["text"]))
                    pairs.append((x["text"], start))
                out.append((qid, qa["question"], context, pairs))
    if not is_training:
        with_gold = [q for q in out if q[3]]
        if with_gold and len(with_gold) != len(out):
            missing = next(q for q in out if not q[3])
            _fail(path, missing[0], "has no answers while other questions of the file have "
                                    "some; give gold answers for all questions or for none")
    return out


# ---- reader ------------------------------------------------------------------------------
class MRCReader(BaseReader):
    """SQuAD-format files -> features (document windows) -> batches.

    Per file and mode (training or not) the examples and features are built once and cached
    (`load`). A file's records are its training features (with answer labels): what
    `get_num_examples` counts, as 2019 did (the train progress denominator), `count_batches`
    batches and the train phase of `data_generator` reads; evaluation features have no
    labels (a question may have several answers, or none). `get_num_questions(path)` counts
    questions."""

    def __init__(self, vocab_path, label_map_config=None, max_seq_len=512, do_lower_case=True,
                 in_tokens=False, random_seed=None, tokenizer="FullTokenizer",
                 is_classify=True, is_regression=False, for_cn=True, task_id=0,
                 doc_stride=128, max_query_length=64, sp_model=None):
        super().__init__(vocab_path, label_map_config=label_map_config,
                         max_seq_len=max_seq_len, do_lower_case=do_lower_case,
                         in_tokens=in_tokens, is_inference=False, random_seed=random_seed,
                         tokenizer=tokenizer, is_classify=is_classify,
                         is_regression=is_regression, for_cn=for_cn, task_id=task_id,
                         sp_model=sp_model)
        if doc_stride <= 0:
            raise UsageError("--doc_stride must be positive, got %d" % doc_stride)
        if max_query_length <= 0:
            raise UsageError("--max_query_length must be positive, got %d" % max_query_length)
        if max_seq_len - max_query_length - 3 <= 0:
            raise UsageError("--max_seq_len %d leaves no room for the context after a question "
                             "of --max_query_length %d tokens and 3 special tokens"
                             % (max_seq_len, max_query_length))
        self.doc_stride = doc_stride
        self.max_query_length = max_query_length
        self.do_lower_case = do_lower_case

    # ---- examples ------------------------------------------------------------------------
    def _build_example(self, qid, question, context, answers, is_training):
        doc = (chinese_doc_tokens if self.for_cn else whitespace_doc_tokens)(context)
        unk = getattr(self.tokenizer, "unk_token", "[UNK]")
        sub_tokens, sub_spans, sub_to_orig = [], [], []
        for i, (word, start, end) in enumerate(doc):
            pieces = self.tokenizer.tokenize(word)
            spans = piece_char_spans(word, pieces, unk) if pieces else []
            for k, piece in enumerate(pieces):
                sub_tokens.append(piece)
                sub_spans.append((start + spans[k][0], start + spans[k][1]) if spans
                                 else (start, end))
                sub_to_orig.append(i)
        start_char = end_char = None
        if is_training:
            text, start_char = answers[0]
            end_char = start_char + len(text)
        return Example(qid, question, context, [d[0] for d in doc],
                       [(d[1], d[2]) for d in doc], sub_tokens, sub_spans, sub_to_orig,
                       [a[0] for a in answers], start_char, end_char)

    def _answer_subtokens(self, example, path):
        """First and last sub-token index of the training answer."""
        first = last = None
        for k, (s, e) in enumerate(example.sub_spans):
            if s < example.end_char and e > example.start_char:
                if first is None:
                    first = k
                last = k
        if first is None:
            _fail(path, example.qas_id, "the answer %r covers no token of the context"
                  % example.context[example.start_char:example.end_char])
        return first, last

    # ---- features ------------------------------------------------------------------------
    def _windows(self, n_tokens, max_tokens_for_doc):
        spans, start = [], 0
        while start < n_tokens:
            length = min(n_tokens - start, max_tokens_for_doc)
            spans.append((start, length))
            if start + length == n_tokens:
                break
            start += min(length, self.doc_stride)
        return spans

    @staticmethod
    def _is_max_context(windows, current, position):
        """Does window `current` see sub-token `position` with the most context around it?"""
        best, best_index = None, None
        for index, (start, length) in enumerate(windows):
            end = start + length - 1
            if position < start or position > end:
                continue
            score = min(position - start, end - position) + 0.01 * length
            if best is None or score > best:
                best, best_index = score, index
        return best_index == current

    def _build_features(self, example, example_index, is_training, next_id, path):
        query = self.tokenizer.tokenize(example.question_text)[:self.max_query_length]
        query_ids = self.tokenizer.convert_tokens_to_ids(query)
        max_tokens_for_doc = self.max_seq_len - len(query) - 3
        if is_training:
            answer_first, answer_last = self._answer_subtokens(example, path)
        windows = self._windows(len(example.sub_tokens), max_tokens_for_doc)
        doc_offset = len(query) + 2
        features = []
        for w, (start, length) in enumerate(windows):
            window = example.sub_tokens[start:start + length]
            tokens = ["[CLS]"] + query + ["[SEP]"] + window + ["[SEP]"]
            token_ids = ([self.cls_id] + query_ids + [self.sep_id] +
                         self.tokenizer.convert_tokens_to_ids(window) + [self.sep_id])
            sent_ids = [0] * doc_offset + [1] * (length + 1)
            token_to_orig_map, max_context = {}, {}
            for i in range(length):
                token_to_orig_map[doc_offset + i] = example.sub_to_orig[start + i]
                max_context[doc_offset + i] = self._is_max_context(windows, w, start + i)
            start_position = end_position = 0
            if is_training and start <= answer_first and answer_last < start + length:
                start_position = answer_first - start + doc_offset
                end_position = answer_last - start + doc_offset
            features.append(Feature(next_id + w, example_index, w, tokens, token_to_orig_map,
                                    max_context, token_ids, sent_ids,
                                    list(range(len(token_ids))), start_position, end_position,
                                    doc_offset, start))
        return features

    def load(self, path, is_training=False):
        """(examples, features) of a file, built once per (path, mode)."""
        key = (path, bool(is_training))
        if key not in self._cache:
            questions = read_squad(path, is_training)
            if not questions:
                raise DataError("%s: no questions in the file" % path)
            examples, features, next_id = [], [], FIRST_UNIQUE_ID
            for index, (qid, question, context, answers) in enumerate(questions):
                example = self._build_example(qid, question, context, answers, is_training)
                if not example.sub_tokens:
                    _fail(path, qid, "the context has no tokens (only spaces or control "
                                     "characters)")
                feats = self._build_features(example, index, is_training, next_id, path)
                next_id += len(feats)
                examples.append(example)
                features.extend(feats)
            self._cache[key] = (examples, features)
        return self._cache[key]

    def has_answers(self, path):
        """Does the (evaluation) file carry gold answers?"""
        examples, _ = self.load(path, is_training=False)
        return bool(examples[0].answer_texts)

    # ---- BaseReader interface ------------------------------------------------------------
    def records(self, path):
        """The file's training features."""
        return self.load(path, is_training=True)[1]

    def get_num_questions(self, path, is_training=True):
        return len(self.load(path, is_training)[0])

    def pad_batch(self, features):
        batch = batching.encoder_inputs(features, self.pad_id, self.task_id)
        batch["start_positions"] = np.array([f.start_position for f in features],
                                            dtype="int64")
        batch["end_positions"] = np.array([f.end_position for f in features], dtype="int64")
        batch["unique_ids"] = np.array([f.unique_id for f in features], dtype="int64")
        return batch

    def data_generator(self, input_file, batch_size, epoch=1, shuffle=True, phase=None,
                       trainer_id=0, num_trainers=1, start=None):
        """The train phase batches the training features as BaseReader does: a fresh seeded
        shuffle every epoch (when `shuffle`), `current_epoch`, `current_example` and a
        resumable `position`, `start` to continue right after one. Other phases batch the
        evaluation features once, in file order, whatever `epoch` and `shuffle` say: an
        evaluation predicts every feature once."""
        if batch_size <= 0:
            raise UsageError("--batch_size must be positive, got %d" % batch_size)
        if phase == "train":
            features = self.records(input_file)
        else:
            features, epoch, shuffle = self.load(input_file, is_training=False)[1], 1, False
        return self.batch_generator(features, batch_size, epoch, shuffle, phase, trainer_id,
                                    num_trainers, start)

"""ERNIE 1.0 pretraining data (`ErnieDataReader`): the 2019 gz sample files and knowledge masking.

A file list has one line per data file, `path<TAB>mask_word_prob`. Once per epoch and file,
`mask_word = random() < mask_word_prob` chooses word-level (knowledge) masking for the whole
file, otherwise char-level masking. A relative path is taken from the working directory as in
2019, or else from the file list's folder.

A data file is gzip text, one sample a line, five `;`-separated fields of space-separated ints:
`token_ids;sentence_type_ids;position_ids;seg_labels;next_sentence_label`, where seg_labels are
0 at the first token of a word/phrase/entity, 1 at its other tokens and -1 at [CLS]/[SEP].
Lines longer than max_seq_len are skipped (2019). Malformed lines (field count, lengths that
disagree, non-integers, ids outside the vocabulary, ...) are reported as `file:line: why` and
skipped, or raise DataError with `strict_data=True`.

Batches are dicts of numpy arrays (the project's [B, L] layout, see reader/batching.py):
`src_ids, pos_ids, sent_ids, task_ids` int64 [B, L], `input_mask` float32 [B, L],
`mask_label, mask_pos` int64 [M] (flat `row * L + col` positions of the predicted tokens) and
`labels` int64 [B] (next sentence).

Differences from 2019, on purpose: random replacement ids are drawn from the real vocabulary
(2019 used the config's vocab_size, 18000 for a 17964-token vocabulary); every random draw
comes from generators the reader owns; the masking draws of a sample depend only on the seed
and the sample's place in the data stream, not on how samples are batched or which trainer
reads them (so N trainers with batch b mask exactly as one with batch N*b); the
validation/test pass masks the same way every time; a batch where nothing was selected for
prediction is dropped (2019 fed it and got a NaN loss).
"""
import collections
import gzip
import itertools
import os
import re
import zlib

import numpy as np

from reader import batching
from tokenization import load_vocab
from utils.args import check_max_seq_len
from utils.errors import DataError, UsageError, where

# the parsed sample of 2019: [token_ids, sent_ids, pos_ids, label, seg_labels] + mask_word
Sample = collections.namedtuple("Sample", "token_ids sent_ids pos_ids label seg_labels")

NEG_SAMPLE_BUFFER = 1000      # positives buffered for negative sampling (2019)
SHUFFLE_BUFFER = 1000         # samples shuffled together when not negative sampling (Aug 2019)
MAX_REPORTED = 10             # malformed lines printed per file before only counting them


class MalformedLine(ValueError):
    """Why a sample line cannot be used (the caller adds file and line)."""


def special_ids(vocab, path="vocabulary"):
    """[PAD], [CLS], [SEP], [MASK] ids of a vocabulary (2019: 0, 1, 2, 3)."""
    out = []
    for token in ("[PAD]", "[CLS]", "[SEP]", "[MASK]"):
        if token not in vocab:
            raise DataError("%s: the vocabulary has no %s token" % (path, token))
        out.append(vocab[token])
    return out


def real_vocab_size(vocab):
    """Ids of the vocabulary file are 0..size-1 (the random-replace range is [1, size))."""
    return max(vocab.values()) + 1


# ----------------------------------------------------------------------------------------------
# file lists and sample lines

def valid_mask_word_prob(prob):
    """A file list's second column is compared with a uniform draw in [0, 1) once per epoch
    (`random() < mask_word_prob` -> word masking): a probability in [0, 1]. The 2019 demo
    lists write 1.1 (always word masking), which stays valid; NaN, negative numbers and
    other values above 1 are mistakes (a weight, a percentage, ...)."""
    return prob == 1.1 or 0.0 <= prob <= 1.0


def read_filelist(path):
    """[(data file path, mask_word_prob)] of a file list; errors name the list's line."""
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except FileNotFoundError:
        raise DataError("%s: file list not found" % path) from None
    except UnicodeDecodeError:
        raise DataError("%s: file list is not UTF-8 text" % path) from None
    base = os.path.dirname(os.path.abspath(path))
    files = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        fields = line.strip().split("\t")
        if len(fields) != 2:
            raise DataError("%s: expected `path<TAB>mask_word_prob`, got %r"
                            % (where(path, number), line[:100]))
        name, prob = fields[0].strip(), fields[1].strip()
        try:
            prob = float(prob)
        except ValueError:
            raise DataError("%s: mask_word_prob %r is not a number"
                            % (where(path, number), prob)) from None
        if not valid_mask_word_prob(prob):
            raise DataError("%s: mask_word_prob %s is not a probability: it must be a number in "
                            "[0, 1] (the chance that an epoch masks %s by words; 1.1, the "
                            "2019 demo lists' 'always', is also accepted)"
                            % (where(path, number), fields[1].strip(), name))
        if not name.endswith(".gz"):
            raise DataError("%s: %s is not a gzip file (the name must end in .gz)"
                            % (where(path, number), name))
        resolved = name
        if not os.path.isabs(name) and not os.path.exists(name):
            resolved = os.path.join(base, name)
        if not os.path.isfile(resolved):
            raise DataError("%s: data file %s not found" % (where(path, number), name))
        files.append((resolved, prob))
    if not files:
        raise DataError("%s: the file list names no data file" % path)
    return files


def _ints(field, what):
    try:
        return [int(x) for x in field.split()]
    except ValueError:
        bad = next(x for x in field.split() if not re.fullmatch(r"[+-]?\d+", x))
        raise MalformedLine("%s: %r is not an integer" % (what, bad[:20])) from None


def parse_sample(line, vocab_size, max_seq_len=None, sent_types=None, max_position=None):
    """One text line -> Sample, or None when it is longer than max_seq_len (2019 skipped it).

    Raises MalformedLine for what 2019 asserted (5 fields, equal lengths) or crashed on later
    (non-integers, ids outside the vocabulary, sentence ids outside the config's sentence
    types, seg labels other than -1/0/1, next sentence labels other than 0/1)."""
    fields = line.strip().split(";")
    if len(fields) != 5:
        raise MalformedLine("expected 5 ';'-separated fields (token_ids;sentence_type_ids;"
                            "position_ids;seg_labels;next_sentence_label), got %d" % len(fields))
    token_ids = _ints(fields[0], "token_ids")
    sent_ids = _ints(fields[1], "sentence_type_ids")
    pos_ids = _ints(fields[2], "position_ids")
    seg_labels = _ints(fields[3], "seg_labels")
    label = _ints(fields[4], "next_sentence_label")
    if not token_ids:
        raise MalformedLine("no token ids")
    lens = (len(token_ids), len(sent_ids), len(pos_ids), len(seg_labels))
    if len(set(lens)) != 1:
        raise MalformedLine("token_ids, sentence_type_ids, position_ids and seg_labels have "
                            "different lengths %d, %d, %d, %d" % lens)
    if len(label) != 1:
        raise MalformedLine("next_sentence_label must be one integer, got %d" % len(label))
    if max_seq_len is not None and len(token_ids) > max_seq_len:
        return None
    lo, hi = min(token_ids), max(token_ids)
    if lo < 0 or hi >= vocab_size:
        raise MalformedLine("token id %d is outside the vocabulary (0..%d)"
                            % (lo if lo < 0 else hi, vocab_size - 1))
    lo, hi = min(sent_ids), max(sent_ids)
    if lo < 0 or (sent_types is not None and hi >= sent_types):
        raise MalformedLine("sentence type id %d is outside 0..%s"
                            % (lo if lo < 0 else hi, sent_types - 1 if sent_types else "n"))
    lo, hi = min(pos_ids), max(pos_ids)
    limit = min(x for x in (max_seq_len, max_position) if x is not None) \
        if (max_seq_len or max_position) else None
    if lo < 0 or (limit is not None and hi >= limit):
        raise MalformedLine("position id %d is outside 0..%s"
                            % (lo if lo < 0 else hi, limit - 1 if limit else "n"))
    if not set(seg_labels) <= {-1, 0, 1}:
        raise MalformedLine("seg_labels must be -1, 0 or 1, got %d"
                            % next(s for s in seg_labels if s not in (-1, 0, 1)))
    if label[0] not in (0, 1):
        raise MalformedLine("next_sentence_label must be 0 or 1, got %d" % label[0])
    return Sample(token_ids, sent_ids, pos_ids, label[0], seg_labels)


def format_sample(token_ids, sent_ids, pos_ids, seg_labels, label):
    """The 2019 text line of a sample (without the newline)."""
    return ";".join([" ".join(map(str, token_ids)), " ".join(map(str, sent_ids)),
                     " ".join(map(str, pos_ids)), " ".join(map(str, seg_labels)), str(label)])


# ----------------------------------------------------------------------------------------------
# masking (2019 batching.mask)

def mask(batch_tokens, seg_labels, mask_word_tags, total_token_num, vocab_size, rng=None,
         cls_id=1, sep_id=2, mask_id=3, draws=None):
    """Choose the tokens to predict and corrupt them, in place, exactly as 2019.

    Two arrays over all tokens of the batch (before padding): probabilities in [0, 1) and
    replacement ids in [1, vocab_size); token j of sentence s uses index offset_s + j. 2019
    drew them per batch, `rng.rand(total_token_num)` and `rng.randint(1, vocab_size, ...)`;
    `draws=(probs, ids)` passes them in instead (the reader's per-sample draws).

    Char masking (mask_word False): each token other than [CLS]/[SEP] with p <= 0.15 is
    predicted; (0.03, 0.15] -> [MASK], (0.015, 0.03] -> random id, <= 0.015 kept.
    Word masking: a word (a seg_label-0 token and the seg_label-1 tokens after it, ended by
    the next 0 or -1) is selected by the draw of its first token (<= 0.15) and then predicted
    in full; each of its tokens, with base 0.15 for the first and 1.0 for the others:
    (0.2 base, base] -> [MASK], (0.1 base, 0.2 base] -> random id, otherwise kept.
    Position 0 (always [CLS]) is the 'no open word' sentinel, as 2019.

    Returns (batch_tokens, mask_label int64 [M], mask_pos int64 [M]) with
    mask_pos = sentence * max_len + position.
    """
    max_len = max(len(sent) for sent in batch_tokens)
    mask_label, mask_pos = [], []
    if draws is None:
        prob_mask = rng.rand(total_token_num)
        replace_ids = rng.randint(1, vocab_size, size=total_token_num)
    else:
        prob_mask, replace_ids = draws
    prob_index = 0
    for sent_index, sent in enumerate(batch_tokens):
        row = sent_index * max_len
        if mask_word_tags[sent_index]:
            segs = seg_labels[sent_index]
            beg = 0
            for token_index in range(len(sent)):
                seg_label = segs[token_index]
                if seg_label == 1:
                    continue
                if beg == 0:
                    if seg_label != -1:
                        beg = token_index
                    continue
                if prob_mask[prob_index + beg] <= 0.15:
                    for index in range(beg, token_index):
                        prob = prob_mask[prob_index + index]
                        base = 0.15 if index == beg else 1.0
                        mask_label.append(sent[index])
                        mask_pos.append(row + index)
                        if base * 0.2 < prob <= base:
                            sent[index] = mask_id
                        elif base * 0.1 < prob <= base * 0.2:
                            sent[index] = int(replace_ids[prob_index + index])
                beg = 0 if seg_label == -1 else token_index
        else:
            for token_index, token in enumerate(sent):
                prob = prob_mask[prob_index + token_index]
                if prob > 0.15 or token == cls_id or token == sep_id:
                    continue
                mask_label.append(token)
                mask_pos.append(row + token_index)
                if prob > 0.03:
                    sent[token_index] = mask_id
                elif prob > 0.015:
                    sent[token_index] = int(replace_ids[prob_index + token_index])
        prob_index += len(sent)
    return (batch_tokens, np.array(mask_label, dtype="int64"),
            np.array(mask_pos, dtype="int64"))


def sample_draws(seed, serials, lengths, vocab_size):
    """The masking draws of a batch: for each sample, `length` probabilities and replacement
    ids from a generator keyed by (seed, the sample's serial number in the data stream),
    concatenated in batch order."""
    probs, ids = [], []
    for serial, length in zip(serials, lengths):
        rng = np.random.Generator(np.random.Philox(key=[seed, serial]))
        probs.append(rng.random(length))
        ids.append(rng.integers(1, vocab_size, length))
    return np.concatenate(probs), np.concatenate(ids)


def prepare_batch_data(samples, mask_word_tags, total_token_num, vocab_size, rng=None, pad_id=0,
                       cls_id=1, sep_id=2, mask_id=3, task_id=0, draws=None):
    """Samples of one batch -> masked, padded batch dict (see the module docstring)."""
    batch_tokens = [list(s.token_ids) for s in samples]
    batch_tokens, mask_label, mask_pos = mask(
        batch_tokens, [s.seg_labels for s in samples], mask_word_tags, total_token_num,
        vocab_size, rng, cls_id, sep_id, mask_id, draws=draws)
    src = batching.pad_batch_data(batch_tokens, pad_id)
    return {
        "src_ids": src,
        "pos_ids": batching.pad_batch_data([s.pos_ids for s in samples], pad_id),
        "sent_ids": batching.pad_batch_data([s.sent_ids for s in samples], pad_id),
        "input_mask": batching.input_mask(batch_tokens),
        "task_ids": np.full_like(src, task_id),
        "mask_label": mask_label,
        "mask_pos": mask_pos,
        "labels": np.array([s.label for s in samples], dtype="int64"),
    }


def seed_for(seed, *extra):
    """A 32-bit seed derived from `seed` and small integers (one stream per purpose/trainer)."""
    return int(np.random.SeedSequence([seed] + list(extra)).generate_state(1)[0])


# ----------------------------------------------------------------------------------------------
# ERNIE 1.0 reader

class ErnieDataReader(object):
    """Batches of masked samples from a file list (2019 `reader/pretraining.py`, Aug 2019 API).

    Progress, for the log line: `current_epoch` (1-based, as 2019), `current_file_index` /
    `total_file`, `current_file` and `mask_type` ("mask_word" or "mask_char").

    Sharding over trainers (PADDLE_TRAINER_ID / PADDLE_TRAINERS_NUM unless given): with at
    least as many files as trainers, each trainer reads every N-th file of the epoch's order
    (the Aug 2019 rule; the order is drawn from a RandomState shared by all trainers);
    otherwise every trainer reads everything and takes every N-th batch
    (batching.shard_batches).
    """

    def __init__(self, filelist, vocab_path, batch_size=4096, max_seq_len=512,
                 shuffle_files=True, epoch=100, voc_size=0, is_test=False,
                 generate_neg_sample=False, in_tokens=True, random_seed=1, strict_data=False,
                 trainer_id=None, num_trainers=None, task_id=0, sent_types=None,
                 max_position=None, verbose=True):
        if in_tokens and batch_size <= 100:
            raise UsageError("--batch_size counts tokens with --in_tokens true (the 2019 reader "
                             "asserts batch_size > 100), got %d" % batch_size)
        if batch_size <= 0:
            raise UsageError("--batch_size must be positive, got %d" % batch_size)
        check_max_seq_len(max_seq_len)
        self.vocab = load_vocab(vocab_path)
        self.pad_id, self.cls_id, self.sep_id, self.mask_id = special_ids(self.vocab, vocab_path)
        # 2019 drew replacement ids below the config's vocab_size (`voc_size`); we use the
        # vocabulary file's size so that no unused embedding row is ever fed (deliberate fix)
        self.vocab_size = real_vocab_size(self.vocab)
        self.config_vocab_size = voc_size
        self.filelist = filelist
        self.files = read_filelist(filelist)
        self.batch_size = batch_size
        self.max_seq_len = max_seq_len
        self.in_tokens = in_tokens
        self.is_test = is_test
        self.epoch = 1 if is_test else epoch
        self.shuffle_files = False if is_test else shuffle_files
        self.generate_neg_sample = generate_neg_sample and not is_test
        self.strict_data = strict_data
        self.task_id = task_id
        self.sent_types = sent_types
        self.max_position = max_position
        self.verbose = verbose
        self.trainer_id = int(os.environ.get("PADDLE_TRAINER_ID", "0")) \
            if trainer_id is None else trainer_id
        self.num_trainers = int(os.environ.get("PADDLE_TRAINERS_NUM", "1")) \
            if num_trainers is None else num_trainers
        if random_seed is None:
            random_seed = 1 if self.num_trainers > 1 else int(np.random.randint(2 ** 31))
        self.random_seed = random_seed
        # file order: identical on all trainers; samples: identical too (batch-level sharding
        # splits one common stream); masks: drawn per sample (see sample_draws)
        self.file_rng = np.random.RandomState(seed_for(random_seed, 0))
        self.sample_rng = np.random.RandomState(seed_for(random_seed, 1))
        self.mask_seed = seed_for(random_seed, 3 if is_test else 2)
        self.shard_files = self.num_trainers > 1 and len(self.files) >= self.num_trainers
        self.total_file = (len(self.files) // self.num_trainers * self.num_trainers
                           if self.shard_files else len(self.files))
        self.current_epoch = 0
        self.current_file_index = 0
        self.current_file = ""
        self.mask_type = ""
        self.position = None
        self.stats = collections.Counter()
        self._reported_files = set()    # malformed lines are printed on a file's first read

    # ---- lines -> samples ------------------------------------------------------------------
    def _bad_line(self, path, number, message, reported):
        if self.strict_data:
            raise DataError("%s: %s" % (where(path, number), message))
        reported[0] += 1
        if path in self._reported_files:
            return                  # seen in an earlier epoch: reported and counted then
        self.stats["malformed"] += 1
        if self.verbose and reported[0] <= MAX_REPORTED:
            print("WARNING: %s: %s; line skipped" % (where(path, number), message), flush=True)

    def _neg_sample_problem(self, sample):
        """Why --generate_neg_sample cannot use `sample` (None when it can)."""
        if not self.generate_neg_sample:
            return None
        if sample.label != 1:
            return ("next_sentence_label is 0, but --generate_neg_sample true expects "
                    "positive pairs only")
        if self.sep_id not in sample.token_ids:
            return "no [SEP] token: cannot split the pair for negative sampling"
        return None

    def check_usable(self, flag="--train_filelist"):
        """Before any training: DataError naming the file list (`flag`) and its files unless
        at least one line of them is a sample this reader can use. Reads until the first
        usable line (usually the first line), quietly; nothing is counted or printed."""
        # every file must at least start as gzip: one that does not would stop the run only
        # when training reaches it (a file cut short still does: finding that means reading
        # every file whole, minutes for a real corpus, at every start)
        for path, _ in self.files:
            try:
                with gzip.open(path, "rb") as f:
                    f.read(1 << 16)
            except (OSError, EOFError, zlib.error) as e:
                raise DataError("%s: not a gzip file (%s)"
                                % (path, str(e) or type(e).__name__)) from None
        counts, first_error = [], None
        for path, _ in self.files:
            bad = long_ = 0
            number = 0
            try:
                with gzip.open(path, "rb") as f:
                    for number, raw in enumerate(f, 1):
                        try:
                            sample = parse_sample(raw.decode("utf-8"), self.vocab_size,
                                                  self.max_seq_len, self.sent_types,
                                                  self.max_position)
                            problem = None if sample is None else \
                                self._neg_sample_problem(sample)
                        except UnicodeDecodeError:
                            problem = "not UTF-8 text"
                        except MalformedLine as e:
                            problem = str(e)
                        if problem is not None:
                            if self.strict_data:
                                raise DataError("%s: %s" % (where(path, number), problem))
                            bad += 1
                            first_error = first_error or "%s: %s" % (where(path, number),
                                                                      problem)
                        elif sample is None:
                            long_ += 1
                        else:
                            return
            except (OSError, EOFError, zlib.error) as e:
                raise DataError("%s: cannot read as gzip after line %d (%s)"
                                % (path, number, str(e) or type(e).__name__)) from None
            why = []
            if bad:
                why.append("%d malformed" % bad)
            if long_:
                why.append("%d longer than --max_seq_len %d" % (long_, self.max_seq_len))
            counts.append("%s (%s)" % (path, ", ".join(why) or "empty"))
        shown = counts[:3] + (["and %d more files" % (len(counts) - 3)]
                              if len(counts) > 3 else [])
        raise DataError("%s: no usable line in the data files of %s: %s%s"
                        % (self.filelist, flag, "; ".join(shown),
                           "; first malformed line: %s" % first_error if first_error else ""))

    def read_file(self, path):
        """Yield the Samples of one gz file; long lines skipped, malformed ones reported (the
        first MAX_REPORTED of a file, on its first read) and counted in `stats`."""
        reported = [0]
        number = 0
        try:
            with gzip.open(path, "rb") as f:
                for number, raw in enumerate(f, 1):
                    try:
                        line = raw.decode("utf-8")
                        sample = parse_sample(line, self.vocab_size, self.max_seq_len,
                                              self.sent_types, self.max_position)
                    except UnicodeDecodeError:
                        self._bad_line(path, number, "not UTF-8 text", reported)
                        continue
                    except MalformedLine as e:
                        self._bad_line(path, number, str(e), reported)
                        continue
                    if sample is None:
                        self.stats["too_long"] += 1
                        continue
                    problem = self._neg_sample_problem(sample)
                    if problem is not None:
                        self._bad_line(path, number, problem, reported)
                        continue
                    self.stats["samples"] += 1
                    yield sample
        except (OSError, EOFError, zlib.error) as e:
            raise DataError("%s: cannot read as gzip after line %d (%s)"
                            % (path, number, str(e) or type(e).__name__)) from None
        first_read = path not in self._reported_files
        self._reported_files.add(path)
        if self.verbose and first_read and reported[0] > MAX_REPORTED:
            print("WARNING: %s: %d malformed lines skipped in all (the first %d shown)"
                  % (path, reported[0], MAX_REPORTED), flush=True)

    def shuffle_samples(self, samples, buffer=SHUFFLE_BUFFER):
        """Shuffle within consecutive buffers of samples (Aug 2019)."""
        while True:
            chunk = list(itertools.islice(samples, buffer))
            if not chunk:
                return
            self.sample_rng.shuffle(chunk)
            yield from chunk

    def _split_sent(self, sample, max_len):
        """The first sentence if it is at most max_len tokens, else the second (2019)."""
        tokens, segs = sample.token_ids, sample.seg_labels
        sep_index = tokens.index(self.sep_id)
        if sep_index - 1 <= max_len:
            return tokens[1:sep_index], segs[1:sep_index]
        return tokens[sep_index + 1:-1], segs[sep_index + 1:-1]

    def random_pair_neg_samples(self, pos_samples):
        """Pair the left part of sample i with the right part of sample i+1 (label 0)."""
        self.sample_rng.shuffle(pos_samples)
        n = len(pos_samples)
        negatives, miss = [], 0
        if n < 2:
            return negatives, miss
        for i in range(n):
            left, left_seg = self._split_sent(pos_samples[i], (self.max_seq_len - 3) // 2)
            right, right_seg = self._split_sent(pos_samples[(i + 1) % n],
                                                self.max_seq_len - 3 - len(left))
            tokens = [self.cls_id] + left + [self.sep_id] + right + [self.sep_id]
            if len(tokens) > self.max_seq_len:
                miss += 1
                continue
            sent_ids = [0] * (len(left) + 2) + [1] * (len(right) + 1)
            segs = [-1] + left_seg + [-1] + right_seg + [-1]
            negatives.append(Sample(tokens, sent_ids, list(range(len(tokens))), 0, segs))
        return negatives, miss

    def mixin_negative_samples(self, pos_samples, buffer=NEG_SAMPLE_BUFFER):
        """Buffers of positives, each followed by as many re-paired negatives, shuffled."""
        miss_num = ideal = 0
        while True:
            chunk = list(itertools.islice(pos_samples, buffer))
            if not chunk:
                break
            negatives, miss = self.random_pair_neg_samples(chunk)
            miss_num += miss
            ideal += len(chunk) if len(chunk) > 1 else 0
            mixed = chunk + negatives
            self.sample_rng.shuffle(mixed)
            yield from mixed
        if self.verbose:
            print("stopiteration: reach end of file")
            print("miss_num:%d\tideal_total_sample_num:%d\tmiss_rate:%f"
                  % (miss_num, ideal, miss_num / ideal if ideal else 0.0), flush=True)

    # ---- samples -> batches ----------------------------------------------------------------
    def _epoch_files(self):
        """This trainer's [(path, mask_word_prob)] of the next epoch."""
        files = list(self.files)
        if self.shuffle_files:
            self.file_rng.shuffle(files)
        if self.shard_files:
            files = files[:self.total_file][self.trainer_id::self.num_trainers]
        return files

    def epoch_samples(self, epoch):
        """(Sample, mask_word) of one epoch (0-based), updating the progress fields."""
        self.current_epoch = epoch + 1
        for index, (path, prob) in enumerate(self._epoch_files()):
            mask_word = bool(self.sample_rng.random_sample() < prob)
            self.current_file_index = (index + 1) * (self.num_trainers
                                                     if self.shard_files else 1)
            self.current_file = path
            self.mask_type = "mask_word" if mask_word else "mask_char"
            stream = self.read_file(path)
            if not self.is_test:
                if self.generate_neg_sample:
                    stream = self.mixin_negative_samples(stream)
                else:
                    stream = self.shuffle_samples(stream)
            for sample in stream:
                yield sample, mask_word

    def samples(self):
        """(Sample, mask_word, serial) over all epochs; serial numbers the samples of this
        trainer's stream from 0."""
        serial = itertools.count()
        for epoch in range(self.epoch):
            for sample, mask_word in self.epoch_samples(epoch):
                yield sample, mask_word, next(serial)

    def data_generator(self, start=None):
        """A function returning a generator of batch dicts (one pass over `epoch` epochs).

        Batches run on across file and epoch boundaries (batching.epoch_batches with
        cut_epochs=False); with file sharding each trainer batches its own files, otherwise
        all trainers read the same stream and take every N-th batch. `position` follows the
        batches; `start`, a `position` saved before, continues right after it (the stream is
        read again from its beginning: give a reader as new)."""
        sharded = self.num_trainers > 1 and not self.shard_files

        def generator():
            serials = itertools.count()   # restart: the same masks at every validation

            def numbered(epoch):
                return ((s, m, next(serials)) for s, m in self.epoch_samples(epoch))

            for group, position, _ in batching.epoch_batches(
                    numbered, self.epoch, self.batch_size, self.in_tokens,
                    length=lambda item: len(item[0].token_ids),
                    trainer_id=self.trainer_id if sharded else 0,
                    num_trainers=self.num_trainers if sharded else 1, start=start,
                    cut_epochs=False):
                self.position = position
                samples = [s for s, _, _ in group]
                lengths = [len(s.token_ids) for s in samples]
                draws = sample_draws(self.mask_seed, [n for _, _, n in group], lengths,
                                     self.vocab_size)
                batch = prepare_batch_data(
                    samples, [m for _, m, _ in group], sum(lengths), self.vocab_size, None,
                    self.pad_id, self.cls_id, self.sep_id, self.mask_id, self.task_id,
                    draws=draws)
                if not len(batch["mask_pos"]):
                    self.stats["batches_without_mask"] += 1
                    continue
                yield batch

        return generator

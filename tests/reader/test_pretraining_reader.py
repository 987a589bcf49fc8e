"""ErnieDataReader on the real 2019 demo data: masking statistics (char and word level, 80/10/10),
[CLS]/[SEP] never masked, flat mask positions, token-budget batching, sharding, negative
sampling, malformed lines; and the ERNIE 2.0 document task examples."""
import gzip
import re

import numpy as np
import pytest

from ernie_testkit import file_2019
from reader import batching
from reader.documents import DocumentTaskReader, permutation_classes, split_sentences
from reader.pretraining import ErnieDataReader, Sample, mask, parse_sample, read_filelist
from tokenization import FullTokenizer
from utils.errors import DataError, UsageError

CLS, SEP, MASK = 1, 2, 3


def filelist(tmp_path, files, name="filelist"):
    path = tmp_path / name
    path.write_text("".join("%s\t%s\n" % (f, p) for f, p in files), encoding="utf-8")
    return str(path)


def write_gz(path, lines):
    with gzip.open(path, "wt", encoding="utf-8") as f:
        f.write("".join(line + "\n" for line in lines))
    return str(path)


@pytest.fixture(scope="module")
def demo():
    """The 2019 demo training file and vocabulary (shipped in data/ and config/)."""
    return {"train": file_2019("data/demo_train_set.gz"), "vocab": file_2019("config/vocab.txt")}


@pytest.fixture(scope="module")
def demo_lists(demo, tmp_path_factory):
    """File lists naming the demo training file: mask_word_prob 0.0 (char) and 1.1 (word)."""
    d = tmp_path_factory.mktemp("lists")
    return {prob: filelist(d, [(demo["train"], prob)], "list%s" % prob)
            for prob in (0.0, 1.1)}


@pytest.fixture(scope="module")
def demo_samples(demo, demo_lists):
    reader = ErnieDataReader(demo_lists[1.1], str(demo["vocab"]),
                             batch_size=8192, epoch=1, verbose=False)
    return list(reader.read_file(str(demo["train"])))


def classify(batch, vocab_size):
    """Per predicted token: 'mask', 'keep' or 'random' (ids in [1, vocab_size))."""
    flat = batch["src_ids"].reshape(-1)[batch["mask_pos"]]
    kinds = np.where(flat == MASK, 0, np.where(flat == batch["mask_label"], 1, 2))
    assert flat[kinds == 2].min(initial=1) >= 1 and flat.max() < vocab_size
    return np.bincount(kinds, minlength=3)


# ---- the whole demo file through the reader --------------------------------------------------

@pytest.mark.parametrize("prob,mask_type", [(0.0, "mask_char"), (1.1, "mask_word")])
def test_masking_over_the_demo_file(demo, demo_lists, prob, mask_type):
    vocab = str(demo["vocab"])
    reader = ErnieDataReader(demo_lists[prob], vocab, batch_size=8192, epoch=1,
                             random_seed=3)
    assert reader.vocab_size == 17964 and reader.config_vocab_size == 0
    kinds, predicted, maskable, samples = np.zeros(3, int), 0, 0, 0
    for batch in reader.data_generator()():
        assert reader.mask_type == mask_type and reader.current_epoch == 1
        src, pos = batch["src_ids"], batch["mask_pos"]
        real = batch["input_mask"].reshape(-1)
        # flat positions index real tokens of the padded batch; never [CLS]/[SEP]
        assert pos.max() < src.size and np.all(real[pos] == 1)
        assert not np.isin(batch["mask_label"], [CLS, SEP]).any()
        assert not np.any(pos % src.shape[1] == 0)
        assert batch["src_ids"].shape == batch["pos_ids"].shape == batch["sent_ids"].shape
        # token budget: rows * padded length <= 8192
        assert src.shape[0] * src.shape[1] <= 8192
        kinds += classify(batch, reader.vocab_size)
        predicted += len(pos)
        maskable += int(real.sum()) - 3 * src.shape[0]
        samples += src.shape[0]
    assert samples == 10000 and reader.stats["samples"] == 10000
    share = kinds / kinds.sum()
    assert abs(share[0] - 0.8) < 0.01 and abs(share[1] - 0.1) < 0.01 and \
        abs(share[2] - 0.1) < 0.01, share
    if mask_type == "mask_char":
        assert abs(predicted / maskable - 0.15) < 0.01, predicted / maskable


def words_of(seg_labels):
    """[(start, end)] of the words the 2019 word masking sees (start > 0)."""
    words, beg = [], 0
    for i, s in enumerate(seg_labels):
        if s == 1:
            continue
        if beg:
            words.append((beg, i))
        beg = i if s == 0 else 0
    return words


def test_word_masking_selects_whole_words(demo_samples):
    rng = np.random.RandomState(0)
    selected = total = 0
    kinds = np.zeros(3, int)
    for group in batching.batch_records(demo_samples, 8192, True,
                                        length=lambda s: len(s.token_ids)):
        tokens = [list(s.token_ids) for s in group]
        max_len = max(map(len, tokens))
        n = sum(map(len, tokens))
        out, labels, pos = mask(tokens, [s.seg_labels for s in group], [True] * len(group), n,
                                17964, rng)
        chosen = set(pos.tolist())
        for row, s in enumerate(group):
            for start, end in words_of(s.seg_labels):
                flags = [row * max_len + k in chosen for k in range(start, end)]
                assert all(flags) or not any(flags), "a word was masked in part"
                selected += flags[0]
                total += 1
            assert not any(row * max_len + k in chosen for k, v in enumerate(s.seg_labels)
                           if v == -1)
        got = batching.pad_batch_data(out).reshape(-1)[pos]
        kinds += np.bincount(np.where(got == MASK, 0, np.where(got == labels, 1, 2)),
                             minlength=3)
    assert total == 650406     # the demo file's seg_label-0 tokens, one word each
    assert abs(selected / total - 0.15) < 0.01, selected / total
    share = kinds / kinds.sum()
    assert np.allclose(share, [0.8, 0.1, 0.1], atol=0.01), share


class FixedRng(object):
    """rand() and randint() return given arrays: to check the decisions one by one."""

    def __init__(self, probs, ids):
        self.probs, self.ids = np.array(probs, float), np.array(ids)

    def rand(self, n):
        assert n == len(self.probs)
        return self.probs

    def randint(self, low, high, size):
        assert low == 1 and size == len(self.ids)
        return self.ids


def test_mask_decisions_and_flat_positions():
    # sentence 0: [CLS] w(0 1) w(0) [SEP] w(0 1 1) [SEP]  (word mode)
    # sentence 1: [CLS] a b [SEP]                       (char mode)
    s0 = [1, 10, 11, 12, 2, 13, 14, 15, 2]
    seg0 = [-1, 0, 1, 0, -1, 0, 1, 1, -1]
    s1 = [1, 20, 21, 2]
    probs = [0.01, 0.10, 0.99, 0.5, 0.01, 0.12, 0.5, 0.15, 0.01,   # sentence 0
             0.01, 0.02, 0.10, 0.14]                               # sentence 1
    ids = [90 + i for i in range(13)]
    out, labels, pos = mask([list(s0), list(s1)], [seg0, [-1, 0, 0, -1]], [True, False], 13,
                            100, FixedRng(probs, ids))
    # word (10 11): first draw 0.10 <= 0.15 -> selected; 0.10 in (0.03, 0.15] -> [MASK];
    # 11: base 1.0, 0.99 -> (0.2, 1] -> [MASK]. Word (12): 0.5 -> skipped.
    # word (13 14 15): 0.12 -> selected, [MASK]; 14: 0.5 -> [MASK]; 15: 0.15 -> (0.1, 0.2] ->
    # random id ids[7] = 97. [CLS] 0.01 and [SEP] 0.01 are never predicted.
    # sentence 1 (offset 9, max_len 9): 20: 0.02 -> random 100? no: ids[10] = 100 is drawn
    # for (0.015, 0.03]; 21: 0.10 -> [MASK]; [SEP] 0.14 -> never.
    assert out[0] == [1, MASK, MASK, 12, 2, MASK, MASK, 97, 2]
    assert out[1] == [1, 100, MASK, 2]
    assert labels.tolist() == [10, 11, 13, 14, 15, 20, 21]
    assert pos.tolist() == [1, 2, 5, 6, 7, 9 + 1, 9 + 2]


def test_first_token_keep_and_random_bands():
    seg = [-1, 0, 1, -1]
    for p, expect in ((0.02, 77), (0.01, 10)):      # (0.015, 0.03] random, <= 0.015 keep
        out, labels, pos = mask([[1, 10, 11, 2]], [seg], [True], 4, 100,
                                FixedRng([0.5, p, 0.05, 0.5], [5, 77, 78, 6]))
        # continuation 0.05 (<= 0.1 of base 1.0) keeps its token
        assert out[0] == [1, expect, 11, 2] and labels.tolist() == [10, 11]
        assert pos.tolist() == [1, 2]


def test_progress_epochs_and_random_ids_within_the_vocabulary(tmp_path):
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("".join("%s\t%d\n" % (t, i) for i, t in enumerate(
        ["[PAD]", "[CLS]", "[SEP]", "[MASK]", "a", "b", "c", "[UNK]"])), encoding="utf-8")
    line = "1 4 5 2 6 4 2;0 0 0 0 1 1 1;0 1 2 3 4 5 6;-1 0 0 -1 0 0 -1;1"
    files = [write_gz(tmp_path / ("d%d.gz" % i), [line] * 50) for i in range(2)]
    reader = ErnieDataReader(filelist(tmp_path, [(f, 0.0) for f in files]), str(vocab),
                             batch_size=140, epoch=2, voc_size=18000)
    seen = set()
    replaced = []
    for batch in reader.data_generator()():
        seen.add((reader.current_epoch, reader.current_file_index, reader.total_file))
        flat = batch["src_ids"].reshape(-1)[batch["mask_pos"]]
        replaced += [t for t, o in zip(flat, batch["mask_label"]) if t not in (MASK, o)]
    assert seen == {(1, 1, 2), (1, 2, 2), (2, 1, 2), (2, 2, 2)}
    # 2019 drew from [1, config vocab_size = 18000); we stay inside the vocabulary file
    assert replaced and max(replaced) <= 7 and min(replaced) >= 1


def test_sharding_batches_and_files(tmp_path, demo_samples):
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("".join("%s\t%d\n" % ("t%d" % i if i > 3 else
                                            ["[PAD]", "[CLS]", "[SEP]", "[MASK]"][i], i)
                             for i in range(17964)), encoding="utf-8")
    from reader.pretraining import format_sample
    lines = [format_sample(s.token_ids, s.sent_ids, s.pos_ids, s.seg_labels, s.label)
             for s in demo_samples[:300]]
    one = filelist(tmp_path, [(write_gz(tmp_path / "a.gz", lines), 1.1)], "one")

    def labels_of(flist, tid, n, **kw):
        r = ErnieDataReader(flist, str(vocab), batch_size=1024, epoch=1, trainer_id=tid,
                            num_trainers=n, **kw)
        return [tuple(b["labels"]) + (b["src_ids"].shape,) for b in r.data_generator()()]

    # one file, two trainers: every other batch of the common stream
    full = labels_of(one, 0, 1)
    t0, t1 = labels_of(one, 0, 2), labels_of(one, 1, 2)
    assert t0 == full[0:len(full) // 2 * 2:2] and t1 == full[1:len(full) // 2 * 2:2]
    # two files, two trainers: each trainer reads one file
    two = filelist(tmp_path, [(write_gz(tmp_path / "b.gz", lines[:150]), 1.1),
                              (write_gz(tmp_path / "c.gz", lines[150:]), 1.1)], "two")
    files = []
    for tid in (0, 1):
        r = ErnieDataReader(two, str(vocab), batch_size=1024, epoch=1, trainer_id=tid,
                            num_trainers=2)
        assert r.shard_files and r.total_file == 2
        n = sum(len(b["labels"]) for b in r.data_generator()())
        files.append((r.current_file, n, r.current_file_index))
    assert {f for f, _, _ in files} == {str(tmp_path / "b.gz"), str(tmp_path / "c.gz")}
    assert sorted(n for _, n, _ in files) == [150, 150]
    assert {i for _, _, i in files} == {2}


def test_negative_sampling(tmp_path, demo_samples, capsys):
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("".join("%s\t%d\n" % (["[PAD]", "[CLS]", "[SEP]", "[MASK]"][i]
                                           if i < 4 else "t%d" % i, i)
                             for i in range(17964)), encoding="utf-8")
    from reader.pretraining import format_sample
    positives = [s for s in demo_samples if s.label == 1][:400]
    lines = [format_sample(s.token_ids, s.sent_ids, s.pos_ids, s.seg_labels, 1)
             for s in positives]
    lines.insert(5, format_sample(*demo_samples[0][:3], demo_samples[0].seg_labels, 0))
    flist = filelist(tmp_path, [(write_gz(tmp_path / "pos.gz", lines), 1.1)])
    reader = ErnieDataReader(flist, str(vocab), batch_size=4096, epoch=1, max_seq_len=512,
                             generate_neg_sample=True)
    samples = [s for s, _, _ in reader.samples()]
    out = capsys.readouterr().out
    assert "pos.gz:6: next_sentence_label is 0" in out
    assert "stopiteration: reach end of file" in out and "miss_num:0\t" in out
    negatives = [s for s in samples if s.label == 0]
    assert len(samples) == 800 and len(negatives) == 400
    for s in negatives:
        first_sep = s.token_ids.index(SEP)
        assert s.token_ids[0] == CLS and s.token_ids[-1] == SEP and len(s.token_ids) <= 512
        assert s.sent_ids == [0] * (first_sep + 1) + [1] * (len(s.token_ids) - first_sep - 1)
        assert [i for i, v in enumerate(s.seg_labels) if v == -1] == \
            [0, first_sep, len(s.token_ids) - 1]


# ---- malformed data -----------------------------------------------------------------------

BAD_LINES = [
    ("1 5 2;0 0 0;0 1 2;-1 0 -1", "expected 5 ';'-separated fields"),
    ("1 5 2;0 0;0 1 2;-1 0 -1;1", "different lengths 3, 2, 3, 3"),
    ("1 5 x;0 0 0;0 1 2;-1 0 -1;1", "token_ids: 'x' is not an integer"),
    ("1 99 2;0 0 0;0 1 2;-1 0 -1;1", "token id 99 is outside the vocabulary (0..7)"),
    ("1 5 2;0 0 0;0 1 2;-1 2 -1;1", "seg_labels must be -1, 0 or 1"),
    ("1 5 2;0 0 0;0 1 2;-1 0 -1;3", "next_sentence_label must be 0 or 1"),
]


@pytest.fixture
def small_vocab(tmp_path):
    path = tmp_path / "vocab.txt"
    path.write_text("".join("%s\t%d\n" % (t, i) for i, t in enumerate(
        ["[PAD]", "[CLS]", "[SEP]", "[MASK]", "a", "b", "c", "[UNK]"])), encoding="utf-8")
    return str(path)


def test_bad_lines_are_reported_and_skipped_or_fatal(tmp_path, small_vocab, capsys):
    good = "1 4 5 2 6 2;0 0 0 0 1 1;0 1 2 3 4 5;-1 0 1 -1 0 -1;1"
    long_line = ";".join([" ".join(["4"] * 20), " ".join(["0"] * 20),
                          " ".join(map(str, range(20))), " ".join(["0"] * 20), "1"])
    lines = [good] + [b for b, _ in BAD_LINES] + [long_line, good]
    data = write_gz(tmp_path / "bad.gz", lines)
    flist = filelist(tmp_path, [(data, 0.0)])
    reader = ErnieDataReader(flist, small_vocab, batch_size=200, max_seq_len=16, epoch=1)
    batches = list(reader.data_generator()())
    out = capsys.readouterr().out
    for number, (_, message) in enumerate(BAD_LINES, start=2):
        assert re.search(r"WARNING: %s:%d: .*%s.*; line skipped" % (
            re.escape(data), number, re.escape(message)), out), out
    assert sum(len(b["labels"]) for b in batches) <= 2
    assert reader.stats["malformed"] == len(BAD_LINES) and reader.stats["too_long"] == 1
    assert reader.stats["samples"] == 2
    strict = ErnieDataReader(flist, small_vocab, batch_size=200, max_seq_len=16, epoch=1,
                             strict_data=True)
    with pytest.raises(DataError, match=r"bad\.gz:2: expected 5 ';'-separated fields"):
        list(strict.data_generator()())


def test_filelist_and_flag_errors(tmp_path, small_vocab):
    data = write_gz(tmp_path / "ok.gz", ["1 4 2;0 0 0;0 1 2;-1 0 -1;1"])
    (tmp_path / "plain.txt").write_text("x")
    cases = [("%s\n" % data, "filelist:1: expected `path<TAB>mask_word_prob`"),
             ("%s\tmany\n" % data, "filelist:1: mask_word_prob 'many' is not a number"),
             ("\n%s\t1.1\n" % (tmp_path / "plain.txt"), "filelist:2: .*is not a gzip file"),
             ("%s\t1.1\n" % (tmp_path / "missing.gz"), "filelist:1: data file .*not found"),
             ("", "names no data file")]
    for text, message in cases:
        (tmp_path / "filelist").write_text(text)
        with pytest.raises(DataError, match=message):
            read_filelist(str(tmp_path / "filelist"))
    flist = filelist(tmp_path, [("ok.gz", 1.1)])      # relative to the list's folder
    assert read_filelist(flist) == [(str(tmp_path / "ok.gz"), 1.1)]
    with pytest.raises(UsageError, match="batch_size > 100"):
        ErnieDataReader(flist, small_vocab, batch_size=64)
    with open(tmp_path / "trunc.gz", "wb") as f:
        f.write(gzip.compress(b"1 4 2;0 0 0;0 1 2;-1 0 -1;1\n" * 100)[:-30])
    reader = ErnieDataReader(filelist(tmp_path, [("trunc.gz", 1.1)]), small_vocab, epoch=1)
    with pytest.raises(DataError, match="trunc.gz: cannot read as gzip"):
        list(reader.data_generator()())


def test_parse_sample_skips_long_lines_and_checks_types():
    line = "1 4 2;0 0 0;0 1 2;-1 0 -1;1"
    assert parse_sample(line, 8) == Sample([1, 4, 2], [0, 0, 0], [0, 1, 2], 1, [-1, 0, -1])
    assert parse_sample(line, 8, max_seq_len=2) is None
    from reader.pretraining import MalformedLine
    with pytest.raises(MalformedLine, match="sentence type id 3 is outside 0..1"):
        parse_sample("1 4 2;0 0 3;0 1 2;-1 0 -1;1", 8, sent_types=2)


# ---- ERNIE 2.0 document tasks --------------------------------------------------------------

DOCS = ["今天天气很好。我们去公园散步！公园里有很多人？大家都很开心。",
        "北京是中国的首都。上海是一个大城市。",
        "The Yangtze River flows east. It reaches Shanghai! Ships sail on it.",
        "小明喜欢读书。他每天都去图书馆。图书馆很安静。他在那里学习。"]


@pytest.fixture
def doc_setup(tmp_path):
    text = "".join(DOCS) + "abcdefghijklmnopqrstuvwxyz"
    tokens = ["[PAD]", "[CLS]", "[SEP]", "[MASK]"] + sorted(
        set(c.lower() for c in text if not c.isspace())) + \
        ["##" + c for c in "abcdefghijklmnopqrstuvwxyz"] + ["[UNK]"]
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("".join("%s\t%d\n" % (t, i) for i, t in enumerate(tokens)),
                     encoding="utf-8")
    docs = tmp_path / "docs.txt"
    docs.write_text("\n".join(DOCS) + "\n", encoding="utf-8")
    return FullTokenizer(str(vocab)), str(docs)


def test_split_sentences():
    assert split_sentences("他说：“好。”然后走了！真的？Yes. It is.") == \
        ["他说：“好。”", "然后走了！", "真的？", "Yes.", "It is."]
    # closing marks and further ends stay with the sentence; .!? end one only before whitespace
    assert split_sentences("好。”！再见。」 He said [so.] 3.5 was it?\nYes") == \
        ["好。”！", "再见。」", "He said [so.]", "3.5 was it?", "Yes"]


def test_capitalization_and_token_document_relation(doc_setup):
    tok, docs = doc_setup
    cap = DocumentTaskReader("capitalization", docs, tok, max_seq_len=64, batch_size=4,
                             in_tokens=False, task_id=3)
    english = cap.docs[2]
    words = "The Yangtze River flows east . It reaches Shanghai ! Ships sail on it .".split()
    expected = [int(w[0].isupper()) for w in words for _ in tok.tokenize(w)]
    assert [c for s in english.capitals for c in s] == expected
    batch = next(cap.data_generator()())
    assert batch["labels"].shape == batch["src_ids"].shape
    assert np.all(batch["task_ids"] == 3)
    assert np.all(batch["labels"][:, 0] == -1)
    tdr = DocumentTaskReader("token_document_relation", docs, tok, max_seq_len=64)
    for _ in range(20):
        d = int(np.random.randint(len(tdr.docs)))
        ex = tdr.example(d)
        ids = ex.token_ids[1:-1]
        doc = tdr.docs[d]
        k = [i for i, s in enumerate(doc.sentences) if s[:len(ids)] == ids][0]
        others = {t for j, s in enumerate(doc.sentences) if j != k for t in s}
        assert ex.label == [-1] + [int(t in others) for t in ids] + [-1]


def test_sentence_reordering_labels_undo_the_shuffle(doc_setup):
    tok, docs = doc_setup
    reader = DocumentTaskReader("sentence_reordering", docs, tok, max_seq_len=64,
                                sent_types=4, random_seed=5)
    classes = permutation_classes(3)
    assert reader.num_labels == len(classes) == 9
    seen = set()
    for i in range(200):
        d = i % len(reader.docs)
        ex = reader.example(d)
        n, perm = classes[ex.label]
        seen.add(ex.label)
        parts, cur = [], []
        for t in ex.token_ids[1:]:
            if t == tok.vocab["[SEP]"]:
                parts.append(cur)
                cur = []
            else:
                cur.append(t)
        assert len(parts) == n
        original = [None] * n
        for slot, segment in zip(perm, parts):
            original[slot] = segment
        flat = [t for s in reader.docs[d].sentences for t in s]
        joined = [t for s in original for t in s]
        assert any(flat[k:k + len(joined)] == joined for k in range(len(flat))), (n, perm)
        assert max(ex.sent_ids) == n - 1
    assert seen == set(range(9))


def test_sentence_distance_labels(doc_setup):
    tok, docs = doc_setup
    reader = DocumentTaskReader("sentence_distance", docs, tok, max_seq_len=64, random_seed=2)
    counts = np.zeros(3, int)
    where = {tuple(s): (d, k) for d, doc in enumerate(reader.docs)
             for k, s in enumerate(doc.sentences)}
    for i in range(300):
        d = i % len(reader.docs)
        ex = reader.example(d)
        sep = ex.token_ids.index(tok.vocab["[SEP]"])
        a = where[tuple(ex.token_ids[1:sep])]
        b = where[tuple(ex.token_ids[sep + 1:-1])]
        counts[ex.label] += 1
        if ex.label == 0:
            assert a[0] == b[0] == d and b[1] == a[1] + 1
        elif ex.label == 1:
            assert a[0] == b[0] == d and abs(a[1] - b[1]) > 1
        else:
            assert b[0] != d
    assert counts.min() > 50

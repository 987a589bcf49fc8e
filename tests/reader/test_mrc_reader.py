"""reader/mrc.py: doc tokens and character spans, answer placement, sliding windows,
max-context flags, batches, and one-line errors that name the question id."""
import json

import numpy as np
import pytest

from ernie_testkit import write_tiny_model
from reader.mrc import (
    FIRST_UNIQUE_ID,
    MRCReader,
    chinese_doc_tokens,
    piece_char_spans,
    whitespace_doc_tokens,
)
from tokenization import BasicTokenizer
from utils.errors import DataError, UsageError


def squad(*paragraphs):
    """paragraphs: (context, [(id, question, [(text, start)])])"""
    return {"version": "1.1", "data": [{"title": "t", "paragraphs": [
        {"context": c, "qas": [{"id": i, "question": q, "answers": [
            {"text": t, "answer_start": s} for t, s in ans]} for i, q, ans in qas]}
        for c, qas in paragraphs]}]}


def write(path, obj):
    path.write_text(obj if isinstance(obj, str) else json.dumps(obj, ensure_ascii=False),
                    encoding="utf-8")
    return str(path)


def english_vocab(directory, texts):
    words = sorted({w for t in texts for w in BasicTokenizer().tokenize(t)})
    chars = sorted({c for w in words for c in w})
    tokens = ["[PAD]", "[CLS]", "[SEP]", "[MASK]", "[UNK]"] + words + ["##" + c for c in chars] + \
        [c for c in chars if c not in words]
    path = directory / "vocab_en.txt"
    path.write_text("\n".join(tokens) + "\n", encoding="utf-8")
    return str(path)


def zh_reader(tmp_path, texts, **kw):
    d = write_tiny_model(tmp_path / "model", texts)
    kw.setdefault("max_seq_len", 32)
    kw.setdefault("max_query_length", 12)
    return MRCReader(str(d / "vocab.txt"), for_cn=True, **kw)


# ---- doc tokens and spans ------------------------------------------------------------------
def test_doc_tokens():
    ctx = "Notre  Dame\n(1858). x"
    assert whitespace_doc_tokens(ctx) == [("Notre", 0, 5), ("Dame", 7, 11),
                                          ("(1858).", 12, 19), ("x", 20, 21)]
    ctx = "江泽民 发表ERNIE2.0讲话"
    toks = chinese_doc_tokens(ctx)
    assert [t for t, _, _ in toks] == ["江", "泽", "民", " ", "发", "表", "ERNIE2.0", "讲", "话"]
    assert all(ctx[s:e] == t for t, s, e in toks)


def test_piece_char_spans():
    assert piece_char_spans("(1858).", ["(", "1858", ")", "."]) == [(0, 1), (1, 5), (5, 6), (6, 7)]
    assert piece_char_spans("Café", ["cafe"]) == [(0, 4)]
    assert piece_char_spans("unaffable", ["un", "##aff", "##able"]) == [(0, 2), (2, 5), (5, 9)]
    assert piece_char_spans("aΩb", ["a", "[UNK]", "##b"]) == [(0, 1), (1, 2), (2, 3)]
    assert piece_char_spans("x☃", ["x", "[UNK]"]) == [(0, 1), (1, 2)]
    assert piece_char_spans("abc", ["abd"]) is None                  # cannot be aligned
    assert piece_char_spans("abc", ["[UNK]", "[UNK]", "abc"]) is None


# ---- answers -------------------------------------------------------------------------------
def test_english_answer_inside_punctuated_word(tmp_path):
    ctx = "It  appeared to Saint Bernadette\nSoubirous (1858). The end."
    qs = [("q1", "When did it appear?", [("1858", ctx.index("1858"))]),
          ("q2", "To whom?", [("Saint Bernadette\nSoubirous", ctx.index("Saint"))])]
    path = write(tmp_path / "train.json", squad((ctx, qs)))
    reader = MRCReader(english_vocab(tmp_path, [ctx] + [q[1] for q in qs]), max_seq_len=64,
                       max_query_length=16, for_cn=False)
    examples, features = reader.load(path, is_training=True)
    assert examples[0].doc_tokens[6] == "(1858)."
    f = features[0]
    assert f.tokens[f.start_position:f.end_position + 1] == ["1858"]
    f = features[1]
    assert f.tokens[f.start_position:f.end_position + 1] == ["saint", "bernadette", "soubirous"]
    assert f.tokens[0] == "[CLS]" and f.tokens[f.doc_offset - 1] == "[SEP]"
    assert f.tokens[-1] == "[SEP]" and f.unique_id == FIRST_UNIQUE_ID + 1
    assert f.sent_ids == [0] * f.doc_offset + [1] * (len(f.tokens) - f.doc_offset)
    assert f.pos_ids == list(range(len(f.tokens)))


def test_chinese_answer_inside_a_latin_run(tmp_path):
    ctx = "百度于2019年发布ERNIE2.0模型。"
    qs = [("q1", "版本号？", [("2.0", ctx.index("2.0"))]),
          ("q2", "哪年？", [("19年", ctx.index("19年"))]),
          ("q3", "发布了什么？", [("ERNIE2.0模型", ctx.index("ERNIE"))])]
    path = write(tmp_path / "train.json", squad((ctx, qs)))
    cjk = sorted({c for t in [ctx] + [q[1] for q in qs] for c in t if ord(c) > 0x2e80})
    vocab = ["[PAD]", "[CLS]", "[SEP]", "[MASK]", "[UNK]", "ernie", "##2", ".", "0", "20",
             "##19"] + cjk
    (tmp_path / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    reader = MRCReader(str(tmp_path / "vocab.txt"), max_seq_len=48, max_query_length=8)
    examples, features = reader.load(path, is_training=True)
    assert examples[0].sub_tokens[3:5] == ["20", "##19"]
    assert examples[0].sub_tokens[8:12] == ["ernie", "##2", ".", "0"]
    for f, (_, _, ans) in zip(features, qs):
        ex = examples[f.example_index]
        a = f.start_position - f.doc_offset + f.doc_start
        b = f.end_position - f.doc_offset + f.doc_start
        assert ex.context[ex.sub_spans[a][0]:ex.sub_spans[b][1]] == ans[0][0]


# ---- windows -------------------------------------------------------------------------------
def long_context(rng, n_chars):
    chars = "的一是在不了有和人这中大为上个国我以要他时来用们生到作地于出就分对成会可主发年动"
    return "".join(rng.choice(list(chars)) for _ in range(n_chars))


def test_long_context_windows_and_max_context(tmp_path):
    rng = np.random.RandomState(0)
    max_seq_len, stride = 32, 10
    ctx = long_context(rng, 5 * max_seq_len)          # 160 characters, one token each
    answer_at = 130
    ctx = ctx[:answer_at] + "北京大学" + ctx[answer_at + 4:]
    qs = [("long", "问题是什么？", [("北京大学", answer_at)])]
    path = write(tmp_path / "train.json", squad((ctx, qs)))
    reader = zh_reader(tmp_path, [ctx, "问题是什么？北京大学"], max_seq_len=max_seq_len,
                       doc_stride=stride)
    examples, features = reader.load(path, is_training=True)
    n_doc = len(examples[0].sub_tokens)
    assert n_doc == 160
    query_len = 6
    per_window = max_seq_len - query_len - 3
    starts = [f.doc_start for f in features]
    assert starts == list(range(0, n_doc - per_window + stride, stride))[:len(features)]
    assert starts[-1] + per_window >= n_doc and starts[-2] + per_window < n_doc
    assert reader.get_num_examples(path) == len(features) and reader.get_num_questions(path) == 1
    assert all(len(f.token_ids) <= max_seq_len for f in features)
    # every doc token is the max-context token of exactly one window
    owners = {}
    for f in features:
        for pos, is_max in f.token_is_max_context.items():
            if is_max:
                sub = f.doc_start + pos - f.doc_offset
                assert sub not in owners
                owners[sub] = f.doc_span_index
    assert sorted(owners) == list(range(n_doc))
    # the answer (subtokens 130..133): labelled where the whole answer is inside, else [CLS]
    partial = 0
    for f in features:
        first, last = f.doc_start, f.doc_start + len(f.tokens) - f.doc_offset - 2
        if first <= answer_at and answer_at + 3 <= last:
            assert f.tokens[f.start_position:f.end_position + 1] == list("北京大学")
        else:
            assert f.start_position == f.end_position == 0
            partial += first <= answer_at + 3 and last >= answer_at
    assert partial >= 1            # some window cuts the answer at its boundary
    assert sum(f.start_position > 0 for f in features) >= 1


def test_query_is_cut_to_max_query_length(tmp_path):
    ctx = "北京是中国的首都。"
    q = "请问文中提到的这个国家的首都城市究竟是哪一个呢？"
    path = write(tmp_path / "dev.json", squad((ctx, [("q", q, [("北京", 0)])])))
    reader = zh_reader(tmp_path, [ctx, q], max_query_length=5)
    _, features = reader.load(path)
    assert features[0].tokens[1:6] == list(q[:5]) and features[0].tokens[6] == "[SEP]"


# ---- batches -------------------------------------------------------------------------------
def test_batches(tmp_path):
    ctxs = ["北京是中国的首都。", "上海是一座大城市，位于长江口。", "广州在南方。"]
    paras = [(c, [("q%d" % i, "哪里？", [(c[:2], 0)])]) for i, c in enumerate(ctxs)]
    path = write(tmp_path / "train.json", squad(*paras))
    reader = zh_reader(tmp_path, ctxs + ["哪里？"], random_seed=1)
    batches = list(reader.data_generator(path, 2, epoch=1, shuffle=False, phase="train")())
    assert [b["src_ids"].shape[0] for b in batches] == [2, 1]
    b = batches[0]
    assert b["src_ids"].shape == b["input_mask"].shape == b["sent_ids"].shape
    assert b["start_positions"].dtype == np.int64 and b["start_positions"].tolist() == [5, 5]
    assert b["end_positions"].tolist() == [6, 6]     # [CLS] 哪 里 ？ [SEP] 北 京
    assert b["unique_ids"].tolist() == [FIRST_UNIQUE_ID, FIRST_UNIQUE_ID + 1]
    assert reader.current_example == 3 and reader.count_batches(path, 2) == 2
    # evaluation keeps the order and carries no labels
    dev = list(reader.data_generator(path, 2, phase="dev", shuffle=True)())
    assert np.concatenate([x["unique_ids"] for x in dev]).tolist() == \
        [FIRST_UNIQUE_ID + i for i in range(3)]
    assert all((x["start_positions"] == 0).all() for x in dev)
    # in_tokens: a batch holds as many features as fit in the token budget
    reader.in_tokens = True
    # (lengths 15, 21, 12: 2 x 21 <= 45 < 3 x 21)
    sizes = [x["src_ids"].shape[0] for x in reader.data_generator(path, 45, phase="dev")()]
    assert sizes == [2, 1]


# ---- errors --------------------------------------------------------------------------------
GOOD_CTX = "北京是中国的首都。"


def bad_inputs():
    ok = ("q1", "首都是哪里？", [("北京", 0)])
    return {
        "not_json": ("{data: ", None, "not json"),
        "not_squad": ({"paragraphs": []}, None, "not SQuAD-shaped"),
        "no_paragraphs": ({"data": [{"title": "x"}]}, None, "data[0] has no \"paragraphs\""),
        "no_id": ({"data": [{"paragraphs": [{"context": GOOD_CTX, "qas": [{"question": "x"}]}]}]},
                  None, "data[0].paragraphs[0].qas[0] has no string \"id\""),
        "answer_start": (squad((GOOD_CTX, [("q7", "x", [("北京", 3)])])), "q7",
                         "answer_start 3 does not match the answer text"),
        "empty_context": (squad(("  ", [ok])), "q1", "the context is empty"),
        "two_answers": (squad((GOOD_CTX, [("q2", "x", [("北京", 0), ("中国", 3)])])), "q2",
                        "has 2 answers; a training question must have exactly one (the 2019 rule)"),
        "no_answer": (squad((GOOD_CTX, [("q3", "x", [])])), "q3", "has 0 answers"),
        "duplicate_id": (squad((GOOD_CTX, [ok, ok])), "q1", "used by another question"),
        "answer_not_text": ({"data": [{"paragraphs": [{"context": GOOD_CTX, "qas": [
            {"id": "q5", "question": "x", "answers": ["北京"]}]}]}]}, "q5", "\"answers\" must be"),
    }


@pytest.mark.parametrize("case", sorted(bad_inputs()))
def test_bad_training_input_names_the_question(tmp_path, case):
    obj, qid, message = bad_inputs()[case]
    path = write(tmp_path / "train.json", obj)
    reader = zh_reader(tmp_path, [GOOD_CTX, "首都是哪里？x"])
    with pytest.raises(DataError) as e:
        reader.load(path, is_training=True)
    text = str(e.value)
    assert "\n" not in text and message in text and text.startswith(path)
    if qid:
        assert "question %s:" % qid in text


def test_evaluation_rules(tmp_path):
    reader = zh_reader(tmp_path, [GOOD_CTX, "首都是哪里？x"])
    # several gold answers and a wrong answer_start are fine when only scoring
    path = write(tmp_path / "dev.json",
                 squad((GOOD_CTX, [("q1", "x", [("北京", 0), ("北京", 5)])])))
    examples, _ = reader.load(path)
    assert examples[0].answer_texts == ["北京", "北京"] and reader.has_answers(path)
    # a test file without answers
    path = write(tmp_path / "test.json", squad((GOOD_CTX, [("q1", "x", [])])))
    assert not reader.has_answers(path)
    # but not a file where only some questions have them
    path = write(tmp_path / "mixed.json",
                 squad((GOOD_CTX, [("q1", "x", [("北京", 0)]), ("q9", "y", [])])))
    with pytest.raises(DataError, match="question q9: has no answers while other questions"):
        reader.load(path)


def test_flag_checks(tmp_path):
    d = write_tiny_model(tmp_path / "m", ["北京"])
    with pytest.raises(UsageError, match="leaves no room"):
        MRCReader(str(d / "vocab.txt"), max_seq_len=64, max_query_length=61)
    with pytest.raises(UsageError, match="--doc_stride"):
        MRCReader(str(d / "vocab.txt"), max_seq_len=64, doc_stride=0)

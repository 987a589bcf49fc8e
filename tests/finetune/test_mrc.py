"""finetune/mrc.py: the head and its 2019 names, the loss, n-best decoding across windows,
mapping spans back to text (always a substring of the context), and the output files."""
import json

import numpy as np
import paddle
import pytest

from ernie_testkit import write_tiny_model
from finetune import mrc
from model.ernie import ErnieConfig
from reader.mrc import MRCReader
from tokenization import BasicTokenizer


def squad(paragraphs):
    return {"data": [{"paragraphs": [
        {"context": c, "qas": [{"id": i, "question": q, "answers": [
            {"text": t, "answer_start": s} for t, s in ans]} for i, q, ans in qas]}
        for c, qas in paragraphs]}]}


def write(path, obj):
    path.write_text(json.dumps(obj, ensure_ascii=False), encoding="utf-8")
    return str(path)


@pytest.fixture
def tiny(tmp_path):
    d = write_tiny_model(tmp_path / "m", ["北京上海广州深圳的是在了一个城市问题哪里"])
    return ErnieConfig(str(d / "ernie_config.json")), str(d / "vocab.txt")


def test_head_names_shapes_and_loss(tiny):
    cfg, _ = tiny
    paddle.seed(3)
    model = mrc.ErnieMRC(cfg)
    params = {p.name: p.shape for p in model.parameters()}
    assert params["cls_mrc_out_w"] == [32, 2] and params["cls_mrc_out_b"] == [2]
    assert "word_embedding" in params and "encoder_layer_1_ffn_fc_1.w_0" in params
    model.eval()
    rng = np.random.RandomState(0)
    batch = {"src_ids": rng.randint(4, 20, (3, 9)).astype("int64"),
             "sent_ids": np.zeros((3, 9), "int64"),
             "pos_ids": np.tile(np.arange(9), (3, 1)).astype("int64"),
             "input_mask": np.ones((3, 9), "float32"),
             "start_positions": np.array([1, 4, 0]), "end_positions": np.array([2, 8, 0])}
    start, end = model(*[paddle.to_tensor(batch[k]) for k in
                         ("src_ids", "sent_ids", "pos_ids", "input_mask")])
    assert start.shape == [3, 9] and end.shape == [3, 9]
    # column 0 is the start, column 1 the end
    seq, _ = model.ernie(*[paddle.to_tensor(batch[k]) for k in
                           ("src_ids", "sent_ids", "pos_ids", "input_mask")])
    w, b = model.cls_mrc_out.weight.numpy(), model.cls_mrc_out.bias.numpy()
    logits = seq.numpy() @ w + b
    np.testing.assert_allclose(start.numpy(), logits[:, :, 0], atol=1e-5)
    np.testing.assert_allclose(end.numpy(), logits[:, :, 1], atol=1e-5)

    def ce(lg, labels):
        lg = lg - lg.max(1, keepdims=True)
        logp = lg - np.log(np.exp(lg).sum(1, keepdims=True))
        return -logp[np.arange(len(labels)), labels].mean()

    loss, stats = mrc.loss_and_stats(model, model, batch)
    want = (ce(logits[:, :, 0], batch["start_positions"]) +
            ce(logits[:, :, 1], batch["end_positions"])) / 2
    assert stats == {} and float(loss) == pytest.approx(want, rel=1e-5)


def test_get_final_text():
    assert mrc.get_final_text("steve smith", "Steve Smith's", True) == "Steve Smith"
    assert mrc.get_final_text("1858", "(1858).", True) == "1858"
    assert mrc.get_final_text("notre dame", "Notre\n Dame?", True) == "Notre\n Dame"
    assert mrc.get_final_text("xyz", "Steve", True) == "Steve"            # no match: all
    assert mrc.get_final_text("cafe", "Café", True) == "Café"             # lengths agree
    assert mrc.get_final_text("Cafe", "Café!", False) == "Café!"          # they don't


def fake_results(features, pick):
    """Small random logits, plus what pick(feature) -> {pos: (start, end)} adds."""
    rng = np.random.RandomState(0)
    results = []
    for f in features:
        start, end = rng.rand(len(f.tokens)) * 0.1, rng.rand(len(f.tokens)) * 0.1
        for pos, (s, e) in pick(f).items():
            start[pos] += s
            end[pos] += e
        results.append(mrc.RawResult(f.unique_id, start.tolist(), end.tolist()))
    return results


def test_decoding_across_windows_uses_max_context(tmp_path, tiny):
    _, vocab = tiny
    ctx = "的是在了一个" * 20 + "北京" + "的是在了一个" * 10           # 182 chars
    at = ctx.index("北京")
    path = write(tmp_path / "dev.json", squad([(ctx, [("q", "哪里？", [("北京", at)])])]))
    reader = MRCReader(vocab, max_seq_len=32, max_query_length=8, doc_stride=8)
    examples, features = reader.load(path)
    assert len(features) > 10

    def pos_of(f, sub):
        return f.doc_offset + sub - f.doc_start

    def pick(f):
        out = {}
        if f.doc_start <= at and at + 1 < f.doc_start + len(f.tokens) - f.doc_offset - 1:
            out[pos_of(f, at)] = (5.0, 0.0)
            out[pos_of(f, at + 1)] = (0.0, 5.0)
        return out

    preds, nbest = mrc.decode(examples, features, fake_results(features, pick), 5, 30, True,
                              True)
    assert preds == {"q": "北京"}
    probs = [c["probability"] for c in nbest["q"]]
    assert len(nbest["q"]) == 5 and abs(sum(probs) - 1) < 1e-9 and probs == sorted(probs)[::-1]
    assert len({c["text"] for c in nbest["q"]}) == 5

    # a strong span in a window that is not the max-context one for its start is dropped
    owner = {}
    for f in features:
        for pos, is_max in f.token_is_max_context.items():
            if is_max:
                owner[f.doc_start + pos - f.doc_offset] = f.unique_id
    trap = 60
    fake = fake_results(features, lambda f: {pos_of(f, trap): (9.0, 9.0)}
                        if f.unique_id != owner[trap] and
                        f.doc_start <= trap < f.doc_start + len(f.tokens) - f.doc_offset - 1
                        else pick(f))
    preds, _ = mrc.decode(examples, features, fake, 5, 30, True, True)
    assert preds == {"q": "北京"}
    # max_answer_length (in tokens) bounds the span
    def long_pick(f):
        if f.doc_start <= at - 3 and at + 1 < f.doc_start + len(f.tokens) - f.doc_offset - 1:
            return {pos_of(f, at - 3): (5.0, 0.0), pos_of(f, at + 1): (0.0, 5.0)}
        return {}
    preds, _ = mrc.decode(examples, features, fake_results(features, long_pick), 5, 5, True,
                          True)
    assert preds == {"q": ctx[at - 3:at + 2]}
    preds, _ = mrc.decode(examples, features, fake_results(features, long_pick), 5, 4, True,
                          True)
    assert len(preds["q"]) <= 4


def test_predictions_are_always_substrings(tmp_path):
    rng = np.random.RandomState(0)
    en_ctx = ["It appeared to Saint  Bernadette\nSoubirous in 1858 (Lourdes, France).",
              "The  U.S.-based team won 3-2; \"great\" said Smith's coach... Café!"]
    zh_ctx = ["百度于2019年7月发布ERNIE 2.0模型，“知识增强”。",
              "北京（Beijing）是中国的首都，人口约2,000万。"]
    for for_cn, contexts in ((False, en_ctx), (True, zh_ctx)):
        texts = contexts + ["what ? 哪里"]
        words = sorted({w for t in texts for w in BasicTokenizer().tokenize(t)})
        chars = sorted({c for w in words for c in w})
        vocab = ["[PAD]", "[CLS]", "[SEP]", "[MASK]", "[UNK]"] + words[::2] + \
            ["##" + c for c in chars] + [c for c in chars if c not in words[::2]]
        vpath = tmp_path / ("v%d.txt" % for_cn)
        vpath.write_text("\n".join(vocab) + "\n", encoding="utf-8")
        data = squad([(c, [("%d-%d" % (i, k), "what ? 哪里", []) for k in range(30)])
                      for i, c in enumerate(contexts)])
        path = write(tmp_path / ("d%d.json" % for_cn), data)
        reader = MRCReader(str(vpath), max_seq_len=24, max_query_length=6, doc_stride=5,
                           for_cn=for_cn)
        examples, features = reader.load(path)
        results = [mrc.RawResult(f.unique_id, rng.randn(len(f.tokens)).tolist(),
                                 rng.randn(len(f.tokens)).tolist()) for f in features]
        preds, nbest = mrc.decode(examples, features, results, 7, 6, True, for_cn)
        for ex in examples:
            assert preds[ex.qas_id] and preds[ex.qas_id] in ex.context
            assert all(c["text"] in ex.context for c in nbest[ex.qas_id])
        # only query/special positions scored high: 2019 said "empty"; we still give a span
        results = [mrc.RawResult(f.unique_id,
                                 [9.0] * f.doc_offset + [0.0] * (len(f.tokens) - f.doc_offset),
                                 [9.0] * f.doc_offset + [0.0] * (len(f.tokens) - f.doc_offset))
                   for f in features]
        preds, _ = mrc.decode(examples, features, results, 3, 6, True, for_cn)
        assert all(preds[ex.qas_id] in ex.context and preds[ex.qas_id] for ex in examples)


def test_write_predictions_files(tmp_path, tiny):
    _, vocab = tiny
    path = write(tmp_path / "dev.json",
                 squad([("北京是城市", [("a", "哪里", []), ("b", "是", [])])]))
    reader = MRCReader(vocab, max_seq_len=32, max_query_length=8)
    examples, features = reader.load(path)
    results = fake_results(features, lambda f: {f.doc_offset: (3.0, 0.0),
                                                f.doc_offset + 1: (0.0, 3.0)})
    out = tmp_path / "out"
    preds = mrc.write_predictions(examples, features, results, 4, 10, True, True,
                                  str(out / "dev_predictions.json"),
                                  str(out / "dev_nbest_predictions.json"))
    assert sorted(p.name for p in out.iterdir()) == ["dev_nbest_predictions.json",
                                                    "dev_predictions.json"]
    text = (out / "dev_predictions.json").read_text(encoding="utf-8")
    assert json.loads(text) == preds == {"a": "北京", "b": "北京"}
    assert text.startswith('{\n    "a": "北京"') and text.endswith("}\n")
    nbest = json.loads((out / "dev_nbest_predictions.json").read_text(encoding="utf-8"))
    assert list(nbest["a"][0]) == ["text", "probability", "start_logit", "end_logit"]
    assert 3.0 <= nbest["a"][0]["start_logit"] < 3.1 and 1 < len(nbest["a"]) <= 4

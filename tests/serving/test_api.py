"""The model folder (python -m serving.export) and the Python API (serving.api) predict what the
batch scripts predict from the same checkpoint: predict_classifier.py (classify, regress),
predict_sequence_labeling.py (tag), run_mrc.py's nbest file (mrc) and ernie_encoder.py (encode).

The checkpoints are tiny random models (every tensor random, heads too) written with the
toolkit's own 2019-format writer; the scripts run in-process through run_cli."""
import json
import logging
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest

from ernie_testkit import REPO, SX, run_entry, write_random_params, write_tiny_model

pytestmark = pytest.mark.slow

TEXTS = ["这个手机不错", "质量差", "好的很", "abc 好", "手机质量不错很好的"]
NER_MAP = {"B-PER": 0, "I-PER": 1, "O": 2}
CLS_MAP = {"neg": 0, "pos": 1, "mid": 2}
CONTEXT = "这个手机不错质量很好的"


class Setup(object):
    def __init__(self, root):
        from utils.format_paddle2019 import write_legacy_tensor
        self.root = root
        model = write_tiny_model(root / "model", TEXTS + [CONTEXT], hidden=16, layers=1,
                                 heads=2, max_pos=64)
        write_random_params(model, seed=1)
        self.vocab, self.config = model / "vocab.txt", model / "ernie_config.json"
        self.params = model / "params"
        rng = np.random.RandomState(2)

        def checkpoint(name, heads):
            path = root / name
            shutil.copytree(self.params, path)
            for tensor, shape in heads.items():
                write_legacy_tensor(str(path / tensor), rng.randn(*shape).astype("float32"))
            return path

        self.cls = checkpoint("ck_cls", {"_cls_out_w": (16, 3), "_cls_out_b": (3,)})
        self.reg = checkpoint("ck_reg", {"_cls_out_w": (16, 1), "_cls_out_b": (1,)})
        self.ner = checkpoint("ck_ner", {"cls_seq_label_out_w": (16, 3),
                                         "cls_seq_label_out_b": (3,)})
        self.mrc = checkpoint("ck_mrc", {"cls_mrc_out_w": (16, 2), "cls_mrc_out_b": (2,)})
        self.cls_map = self.write("cls_map.json", json.dumps(CLS_MAP))
        self.ner_map = self.write("ner_map.json", json.dumps(NER_MAP))
        self.cls_set = self.write("cls.tsv", "text_a\n" + "".join(t + "\n" for t in TEXTS))
        self.pair_set = self.write("pairs.tsv", "text_a\ttext_b\n" + "".join(
            "%s\t%s\n" % (a, b) for a, b in zip(TEXTS, TEXTS[1:])))
        # the last line is longer than one window of --max_seq_len 8
        self.ner_lines = ["这\x02个\x02手\x02机", "质 量 差", SX.join("手机质量不错很好的好的很")]
        self.ner_set = self.write("ner.tsv", "text_a\n" + "".join(t + "\n" for t in
                                                                   self.ner_lines))
        self.questions = [("q1", "手机", CONTEXT), ("q2", "质量", CONTEXT + CONTEXT),
                          ("q3", "好", "好的很")]
        self.squad = self.write("dev.json", json.dumps({"data": [{"paragraphs": [
            {"context": c, "qas": [{"id": q, "question": t, "answers": []}]}
            for q, t, c in self.questions]}]}, ensure_ascii=False))

    def write(self, name, text):
        path = self.root / name
        path.write_text(text, encoding="utf-8")
        return path

    def model_flags(self, max_seq_len=16):
        return ["--ernie_config_path", self.config, "--vocab_path", self.vocab,
                "--max_seq_len", str(max_seq_len)]


def run(name, argv, cwd):
    """(exit code, stdout, stderr) of an entry point's main through run_cli, in `cwd`."""
    os.makedirs(cwd, exist_ok=True)
    return run_entry(name, argv, cwd)


def ok(name, argv, cwd):
    code, out, err = run(name, argv, cwd)
    assert code == 0, err
    return out


@pytest.fixture(scope="module")
def s(tmp_path_factory):
    return Setup(tmp_path_factory.mktemp("serving"))


def export(s, task, checkpoint, name, *extra, max_seq_len=16):
    folder = s.root / "folders" / name
    ok("serving.export", ["--init_checkpoint", checkpoint, "--task", task, "--output_dir",
                          folder] + s.model_flags(max_seq_len) + list(extra), s.root)
    return folder


def load(folder):
    import serving.api
    return serving.api.load(folder, num_threads=1)


def read_rows(path):
    return [line.split("\t") for line in path.read_text(encoding="utf-8").splitlines()]


# ---- classify, regress ----------------------------------------------------------------------

@pytest.fixture(scope="module")
def cls_folder(s):
    return export(s, "classify", s.cls, "cls", "--label_map_config", s.cls_map,
                  "--num_labels", "3")


def predict_classifier(s, init, out, *extra):
    argv = s.model_flags() + ["--use_cuda", "false", "--init_checkpoint", init,
                              "--predict_set", s.cls_set, "--output_file", out,
                              "--save_inference_model_path", s.root / "inference"] + list(extra)
    return ok("predict_classifier", argv, s.root)


def test_classify_matches_predict_classifier(s, cls_folder):
    out = s.root / "cls_pred.tsv"
    predict_classifier(s, s.cls, out, "--label_map_config", s.cls_map, "--num_labels", "3")
    rows = read_rows(out)
    model = load(cls_folder)
    assert (model.task, model.labels, model.max_seq_len, model.hidden_size) == \
        ("classify", ["neg", "pos", "mid"], 16, 16)
    got = model.classify(TEXTS)
    assert [g["label"] for g in got] == [r[-1] for r in rows]
    np.testing.assert_allclose([[g["probs"][n] for n in model.labels] for g in got],
                               [[float(x) for x in r[:-1]] for r in rows], atol=1e-5)
    assert model.predict(TEXTS) == got


def test_sentence_pairs_match_predict_classifier(s, cls_folder):
    out = s.root / "pair_pred.tsv"
    argv = s.model_flags() + ["--use_cuda", "false", "--init_checkpoint", cls_folder,
                              "--predict_set", s.pair_set, "--output_file", out]
    ok("predict_classifier", argv, s.root)
    got = load(cls_folder).classify(list(zip(TEXTS, TEXTS[1:])))
    rows = read_rows(out)
    assert [g["label"] for g in got] == [r[-1] for r in rows]
    np.testing.assert_allclose([list(g["probs"].values()) for g in got],
                               [[float(x) for x in r[:-1]] for r in rows], atol=1e-5)


def test_regression_scores_match_predict_classifier(s):
    folder = export(s, "regress", s.reg, "reg")
    out = s.root / "reg_pred.tsv"
    predict_classifier(s, s.reg, out, "--is_regression", "true")
    got = load(folder).classify(TEXTS)
    assert set(got[0]) == {"score"}
    np.testing.assert_allclose([g["score"] for g in got],
                               [float(r[0]) for r in read_rows(out)], atol=1e-5)


def test_predict_classifier_given_the_folder_writes_the_same_file_and_exports_nothing(
        s, cls_folder):
    a, b = s.root / "from_ckpt.tsv", s.root / "from_folder.tsv"
    predict_classifier(s, s.cls, a, "--label_map_config", s.cls_map, "--num_labels", "3")
    before = sorted(os.listdir(s.root))
    out = ok("predict_classifier", ["--use_cuda", "false", "--init_checkpoint", cls_folder,
                                    "--predict_set", s.cls_set, "--output_file", b], s.root)
    assert a.read_bytes() == b.read_bytes()
    assert "save inference model" not in out
    assert sorted(os.listdir(s.root)) == sorted(before + [b.name])


def test_predict_classifier_exports_a_checkpoint_once(s):
    out_file = s.root / "once.tsv"
    exported = s.root / "inference_once" / "ck_cls_inference_model"
    extra = ["--label_map_config", s.cls_map, "--num_labels", "3",
             "--save_inference_model_path", exported.parent]
    first = predict_classifier(s, s.cls, out_file, *extra)
    assert "save inference model to %s" % exported in first
    mtimes = {n: os.stat(exported / n).st_mtime_ns for n in os.listdir(exported)}
    second = predict_classifier(s, s.cls, out_file, *extra)
    assert "save inference model" not in second and "not exported again" in second
    assert {n: os.stat(exported / n).st_mtime_ns for n in os.listdir(exported)} == mtimes
    # another setting is another export
    third = predict_classifier(s, s.cls, out_file, *extra, "--max_seq_len", "12")
    assert "save inference model to %s" % exported in third


def test_a_flag_that_contradicts_the_folder_is_one_line_error(s, cls_folder):
    code, _, err = run("predict_classifier", [
        "--use_cuda", "false", "--init_checkpoint", cls_folder, "--predict_set", s.cls_set,
        "--max_seq_len", "8"], s.root / "contradiction")
    assert code == 2
    assert err.strip().splitlines() == [err.strip()] and "--max_seq_len 8" in err, err
    code, _, err = run("predict_sequence_labeling", [
        "--use_cuda", "false", "--init_checkpoint", cls_folder, "--predict_set", s.ner_set],
        s.root / "wrong_task")
    assert code == 2 and "task classify" in err, err


def test_a_changed_file_in_the_folder_is_one_line_error(s, cls_folder):
    from utils.errors import DataError
    tampered = s.root / "tampered"
    shutil.copytree(cls_folder, tampered)
    with open(tampered / "model.pdiparams", "r+b") as f:
        f.seek(100)
        byte = f.read(1)
        f.seek(100)
        f.write(bytes([byte[0] ^ 1]))
    with pytest.raises(DataError, match="model.pdiparams: checksum does not match"):
        load(tampered)
    code, _, err = run("predict_classifier", [
        "--use_cuda", "false", "--init_checkpoint", tampered, "--predict_set", s.cls_set],
        s.root / "tampered_run")
    assert code == 1 and len(err.strip().splitlines()) == 1, err
    assert "model.pdiparams" in err and "checksum" in err
    missing = s.root / "missing"
    shutil.copytree(cls_folder, missing)
    (missing / "vocab.txt").unlink()
    with pytest.raises(DataError, match="vocab.txt: missing"):
        load(missing)


def test_bad_input_is_a_one_line_value_error(s, cls_folder):
    model = load(cls_folder)
    for bad, said in [([], "non-empty"), ("text", "list"), ([""], "empty"), ([3], "string"),
                      ([("a",)], "pair"), ([("a", " ")], "text_b is empty")]:
        with pytest.raises(ValueError, match=said) as info:
            model.classify(bad)
        assert "\n" not in str(info.value)
    with pytest.raises(ValueError, match="classify"):
        model.tag(["a"])
    with pytest.raises(ValueError, match="pooling"):
        model.encode(["a"], pooling="max")


@pytest.mark.parametrize("name, value", [("batch_size", 0), ("batch_size", -1),
                                         ("batch_size", 1.5), ("batch_size", "2"),
                                         ("batch_size", None), ("num_threads", 0)])
def test_a_bad_batch_size_or_num_threads_is_refused_at_load(s, cls_folder, name, value):
    import serving.api
    with pytest.raises(ValueError, match=r"^%s must be a positive integer, got %s$"
                                         % (name, re.escape(repr(value)))):
        serving.api.load(cls_folder, **{name: value})


# only control characters, only zero-width characters: not empty, but no token either
NO_TOKENS = ["\u0001\u0002", "\u200b\u200b", "\u0000"]


def test_a_text_without_tokens_is_a_one_line_value_error(s, cls_folder):
    model = load(cls_folder)
    for call in (model.classify, model.encode):
        for text in NO_TOKENS:
            with pytest.raises(ValueError, match=r"^item 1: the text has no tokens$"):
                call(["质量差", text])
        with pytest.raises(ValueError, match=r"^item 0: text_b has no tokens$"):
            call([("质量差", "\u200b")])
        with pytest.raises(ValueError, match=r"^item 1: text_a has no tokens$"):
            call([("好", "好"), ("\u0001", "质量差")])
    # what the server checks every item with first
    for item, said in [(NO_TOKENS[0], "the text"), (("好", "\u0000"), "text_b")]:
        with pytest.raises(ValueError, match=r"^item 0: %s has no tokens$" % said):
            model.token_count(item)


def test_token_count_is_the_length_of_the_model_input(s, cls_folder):
    model = load(cls_folder)
    assert model.token_count("质量差") == 5                # [CLS] 3 characters [SEP]
    assert model.token_count(("质量差", "好")) == 7
    assert model.token_count("手机质量不错很好的" * 4) == 16  # cut to --max_seq_len


# ---- tag ----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def ner_folder(s):
    return export(s, "tag", s.ner, "ner", "--label_map_config", s.ner_map, max_seq_len=8)


def test_tag_matches_predict_sequence_labeling(s, ner_folder):
    out = s.root / "ner_pred.tsv"
    ok("predict_sequence_labeling", s.model_flags(8) + [
        "--use_cuda", "false", "--init_checkpoint", s.ner, "--label_map_config", s.ner_map,
        "--predict_set", s.ner_set, "--output_file", out, "--batch_size", "2",
        "--save_inference_model_path", s.root / "inference"], s.root)
    want = [(tokens.split(SX), labels.split(SX)) for tokens, labels in read_rows(out)]
    model = load(ner_folder)
    assert model.labels == ["B-PER", "I-PER", "O"]
    got = model.tag(s.ner_lines)
    assert got == [list(zip(tokens, labels)) for tokens, labels in want]
    assert len(got[2]) == 12 and model.token_count(s.ner_lines[2]) > 8   # several windows
    assert model.tag([list("这个手机")]) == [got[0]]
    assert model.predict(s.ner_lines) == got
    folder_out = s.root / "ner_pred_folder.tsv"
    ok("predict_sequence_labeling", ["--use_cuda", "false", "--init_checkpoint", ner_folder,
                                     "--predict_set", s.ner_set, "--output_file", folder_out,
                                     "--batch_size", "2"], s.root)
    assert folder_out.read_bytes() == out.read_bytes()


def test_a_token_with_spaces_gets_one_label(s, ner_folder):
    model = load(ner_folder)
    (one,), = model.tag([["王 五"]])
    assert one[0] == "王 五" and one[1] in model.labels
    assert model.token_count(["王 五"]) == 4             # [CLS] 王 五 [SEP]
    # kept whole as in a line joined by \x02, which predict_sequence_labeling.py reads
    got = model.tag([["质 量", "差"], "质 量" + SX + "差"])
    assert [t for t, _ in got[0]] == ["质 量", "差"] and got[0] == got[1]
    assert [t for t, _ in model.tag(["质 量"])[0]] == ["质", "量"]   # a line without \x02
    with pytest.raises(ValueError, match=r"^item 0: token 1 '量\\x02差' contains \\x02"):
        model.tag([["质", "量" + SX + "差"]])


def test_tag_rejects_a_text_without_tokens(s, ner_folder):
    model = load(ner_folder)
    for text in NO_TOKENS:
        with pytest.raises(ValueError, match=r"^item 1: the text has no tokens$"):
            model.tag(["质量差", text])
        with pytest.raises(ValueError, match=r"^item 0: no token has any"):
            model.tag([list(text.replace(SX, "\u0003"))])
        with pytest.raises(ValueError, match=r"^item 0: the text has no tokens$"):
            model.token_count(text)
    # a token without pieces beside others is labelled O, as in predict_sequence_labeling.py
    assert model.tag([["质", "\u200b"]])[0][1] == ("\u200b", "O")


# ---- mrc ----------------------------------------------------------------------------------

def test_answer_matches_run_mrc_nbest(s):
    mrc = ["--max_query_length", "4", "--doc_stride", "4", "--n_best_size", "5",
           "--max_answer_length", "6"]
    folder = export(s, "mrc", s.mrc, "mrc", *mrc)
    ok("run_mrc", s.model_flags() + mrc + [
        "--use_cuda", "false", "--do_train", "false", "--do_val", "true", "--do_test", "false",
        "--dev_set", s.squad, "--init_checkpoint", s.mrc, "--checkpoints", s.root / "mrc_out",
        "--batch_size", "2"], s.root)
    nbest = json.loads((s.root / "mrc_out" / "dev_nbest_predictions.json").read_text("utf-8"))
    got = load(folder).answer([{"question": q, "context": c} for _, q, c in s.questions])
    for (qid, _, context), answer in zip(s.questions, got):
        assert answer["text"] == nbest[qid][0]["text"] and answer["text"] in context
        assert abs(answer["score"] - nbest[qid][0]["probability"]) < 1e-5
    with pytest.raises(ValueError, match="question"):
        load(folder).answer([{"context": CONTEXT}])
    for text in NO_TOKENS:
        for item, said in [({"question": text, "context": CONTEXT}, "question"),
                           ({"question": "手机", "context": text}, "context")]:
            with pytest.raises(ValueError, match=r"^item 1: the %s has no tokens$" % said):
                load(folder).answer([{"question": "手机", "context": CONTEXT}, item])
            with pytest.raises(ValueError, match=r"^item 0: the %s has no tokens$" % said):
                load(folder).token_count(item)


# ---- encode -------------------------------------------------------------------------------

def embeddings(s, init, out_dir, *extra):
    ok("ernie_encoder", s.model_flags() + ["--use_cuda", "false", "--init_pretraining_params",
                                           init, "--data_set", s.pair_set, "--output_dir",
                                           out_dir, "--batch_size", "2"] + list(extra), s.root)
    cls_emb, tokens, lens = (np.load(out_dir / n) for n in
                             ("cls_emb.npy", "top_layer_emb.npy", "seq_lens.npy"))
    return cls_emb, np.split(tokens, np.cumsum(lens)[:-1])


def check_encodings(got, cls_emb, tokens):
    assert len(got) == len(cls_emb) == len(tokens)
    for g, pooled, t in zip(got, cls_emb, tokens):
        np.testing.assert_allclose(g["pooled"], pooled, atol=1e-5)
        np.testing.assert_allclose(g["tokens"], t, atol=1e-5)


def test_encode_matches_ernie_encoder(s):
    folder = export(s, "encode", s.params, "enc")
    cls_emb, tokens = embeddings(s, s.params, s.root / "emb")
    from tokenization import FullTokenizer
    tokenize = FullTokenizer(str(s.vocab)).tokenize
    assert [len(t) for t in tokens] == [len(tokenize(a)) + len(tokenize(b)) + 3
                                        for a, b in zip(TEXTS, TEXTS[1:])]
    model = load(folder)
    pairs = list(zip(TEXTS, TEXTS[1:]))
    check_encodings(model.encode(pairs), cls_emb, tokens)
    mean = model.encode(pairs, pooling="mean")
    for g, t in zip(mean, tokens):
        np.testing.assert_allclose(g["pooled"], t.astype("float64").mean(axis=0), atol=1e-5)
    # the folder given to ernie_encoder.py: the same files
    again, again_tokens = embeddings(s, folder, s.root / "emb_folder")
    for name in ("cls_emb.npy", "top_layer_emb.npy", "seq_lens.npy"):
        assert (s.root / "emb" / name).read_bytes() == (s.root / "emb_folder" / name).read_bytes()


def test_every_folder_encodes_with_its_checkpoints_encoder(s, cls_folder):
    cls_emb, tokens = embeddings(s, s.cls, s.root / "emb_cls")
    check_encodings(load(cls_folder).encode(list(zip(TEXTS, TEXTS[1:]))), cls_emb, tokens)
    # ernie_encoder.py exports once too
    code, out, err = run("ernie_encoder", s.model_flags() + [
        "--use_cuda", "false", "--init_pretraining_params", s.cls, "--data_set", s.pair_set,
        "--output_dir", s.root / "emb_cls"], s.root)
    assert code == 0 and "not exported again" in out, err


def test_importing_the_api_changes_nothing_in_the_process():
    probe = ("import os, json; before = dict(os.environ); import serving.api, serving.folder; "
             "print(json.dumps([before == dict(os.environ), 'paddle' in __import__('sys')."
             "modules]))")
    out = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True,
                         text=True, check=True).stdout
    assert json.loads(out.strip().splitlines()[-1]) == [True, False]


def test_load_leaves_logging_and_warnings_as_they_were(s, cls_folder):
    # Paddle's import sets the root logger to INFO with a handler, and warns about ccache
    probe = ("import json, logging, sys, serving.api; root = logging.getLogger(); "
             "model = serving.api.load(sys.argv[1], num_threads=1); model.classify(['好']); "
             "print(json.dumps([root.level, len(root.handlers), 'paddle' in sys.modules]))")
    proc = subprocess.run([sys.executable, "-c", probe, str(cls_folder)], cwd=REPO,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == [logging.WARNING, 0, True]
    assert "ccache" not in proc.stderr, proc.stderr


def test_an_export_over_a_folder_with_int8_programs_replaces_it(s):
    from serving.folder import read_manifest
    folder = export(s, "classify", s.cls, "int8_then_fp32", "--num_labels", "3",
                    "--precision", "int8", "--calibration_set", s.cls_set)
    assert "int8" in read_manifest(folder)
    export(s, "classify", s.cls, "int8_then_fp32", "--num_labels", "3")
    assert "int8" not in read_manifest(folder)


@pytest.mark.parametrize("name, text", [("empty.tsv", ""), ("header_only.tsv", "text_a\n")])
def test_a_bad_calibration_set_leaves_no_folder(s, name, text):
    folder = s.root / "folders" / "bad_calibration"
    code, _, err = run("serving.export", [
        "--init_checkpoint", s.cls, "--task", "classify", "--num_labels", "3", "--output_dir",
        folder, "--precision", "int8", "--calibration_set", s.write(name, text)]
        + s.model_flags(), s.root)
    assert code == 1 and name in err, err
    assert not folder.exists()


def test_an_export_no_folder_could_load_is_refused_at_once(s):
    folder = s.root / "folders" / "too_short"
    code, out, err = run("serving.export", [
        "--init_checkpoint", s.cls, "--task", "classify", "--num_labels", "3", "--output_dir",
        folder] + s.model_flags(max_seq_len=2), s.root)
    assert code == 2 and err.strip() == "error: --max_seq_len must be at least 3, got 2", err
    assert "Load model" not in out and not folder.exists()


def test_the_identity_of_a_folder_changes_when_it_is_exported_over(s):
    from serving.folder import manifest_digest, read_manifest
    from serving.model_process import model_identity
    folder = export(s, "classify", s.cls, "overwritten", "--num_labels", "3")
    first = model_identity(load(folder))
    assert first == manifest_digest(read_manifest(folder))
    export(s, "regress", s.reg, "overwritten")
    assert model_identity(load(folder)) != first

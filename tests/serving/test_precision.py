"""--precision bf16 of the prediction scripts, the Python API and the server, against fp32 on
the same model, and the fp32 fallback of a CPU without the instructions.

Tolerances. bf16 keeps 8 significant bits: every value it rounds moves by up to 2^-9 (0.2%)
of itself, and the errors add up over the layers and are amplified by the fixture's weights
(scaled up so that texts are told apart clearly). On tiny_classify_folder's 200 reviews the
measured differences from fp32 are: probabilities at most 0.041 (mean 0.0044), the label the
same for 99.5% of texts, token vectors within 3% of their largest value. The bounds below
are about twice that; random probabilities (a wrong kernel, a mixed-up row) differ by ~0.3.
"""
import numpy as np
import pytest

from ernie_testkit import run_entry, run_script, served, tiny_classify_folder
from utils.inference import _cpu_has  # what Predictor asks of the CPU

pytestmark = pytest.mark.slow

PROB_MAX, PROB_MEAN, AGREEMENT, RELATIVE = 0.08, 0.01, 0.97, 0.06


needs_bf16 = pytest.mark.skipif("not _cpu_has('bf16')",
                                reason="this CPU has no avx512_bf16: bf16 runs as fp32")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return tiny_classify_folder(tmp_path_factory.mktemp("precision"))


def load(folder, precision):
    import serving.api
    return serving.api.load(str(folder), num_threads=1, precision=precision)


def probs(results):
    return np.array([[r["probs"][k] for k in ("neg", "neu", "pos")] for r in results])


def assert_close_probs(a, b):
    assert a.shape == b.shape
    diff = np.abs(a - b)
    assert diff.max() <= PROB_MAX and diff.mean() <= PROB_MEAN, (diff.max(), diff.mean())
    assert np.mean(a.argmax(1) == b.argmax(1)) >= AGREEMENT


@needs_bf16
def test_bf16_api_classifies_and_encodes_close_to_fp32(tiny):
    folder, texts = tiny
    fp32, bf16 = load(folder, "fp32"), load(folder, "bf16")
    assert (fp32.precision, bf16.precision) == ("fp32", "bf16")
    a, b = probs(fp32.classify(texts)), probs(bf16.classify(texts))
    assert_close_probs(a, b)
    assert not np.array_equal(a, b)  # it did run in another precision
    for x, y in zip(fp32.encode(texts[:20]), bf16.encode(texts[:20])):
        assert x["tokens"].shape == y["tokens"].shape and y["tokens"].dtype == np.float32
        scale = np.abs(x["tokens"]).max()
        assert np.abs(x["tokens"] - y["tokens"]).max() <= RELATIVE * scale
        assert np.abs(x["pooled"] - y["pooled"]).max() <= RELATIVE * max(
            np.abs(x["pooled"]).max(), 1.0)


def test_an_unknown_precision_is_refused(tiny):
    folder, _ = tiny
    with pytest.raises(ValueError, match="precision must be one of fp32, bf16, int8"):
        load(folder, "fp16")


def predict_file(folder, texts, root, name, *extra):
    data = root / "input.tsv"
    data.write_text("text_a\n" + "".join(t + "\n" for t in texts), encoding="utf-8")
    out = root / name
    code, stdout, err = run_entry("predict_classifier", [
        "--use_cuda", "false", "--init_checkpoint", folder, "--predict_set", data,
        "--output_file", out, "--cpu_threads", "1"] + list(extra), root)
    assert code == 0, err
    rows = [line.split("\t") for line in out.read_text(encoding="utf-8").splitlines()]
    return np.array([[float(x) for x in r[:-1]] for r in rows]), stdout, err


@needs_bf16
def test_predict_classifier_bf16_is_close_to_fp32_and_to_the_api(tiny, tmp_path):
    folder, texts = tiny
    a, _, _ = predict_file(folder, texts, tmp_path, "fp32.tsv")
    b, out, err = predict_file(folder, texts, tmp_path, "bf16.tsv", "--precision", "bf16")
    assert "precision: bf16" in out and "notice" not in err
    assert_close_probs(a, b)
    # the script and the API run the same bf16 program on the same batches of 32
    np.testing.assert_allclose(b, probs(load(folder, "bf16").classify(texts)), atol=1e-5)


def test_a_cpu_without_bf16_runs_fp32_after_one_notice(tiny, tmp_path, monkeypatch):
    import utils.inference
    folder, texts = tiny
    monkeypatch.setattr(utils.inference, "_cpu_has", lambda precision: False)
    a, _, _ = predict_file(folder, texts[:20], tmp_path, "fp32.tsv")
    b, _, err = predict_file(folder, texts[:20], tmp_path, "fallback.tsv", "--precision", "bf16")
    notices = [line for line in err.splitlines() if line.startswith("notice:")]
    assert notices == ["notice: this CPU has no avx512_bf16 instructions; --precision bf16 "
                       "runs in fp32"], err
    np.testing.assert_array_equal(a, b)
    assert load(folder, "bf16").precision == "fp32"


@needs_bf16
def test_ernie_encoder_bf16_writes_the_same_shapes_close_to_fp32(tiny, tmp_path):
    folder, texts = tiny
    data = tmp_path / "input.tsv"
    data.write_text("text_a\n" + "".join(t + "\n" for t in texts[:30]), encoding="utf-8")
    outputs = {}
    for precision in ("fp32", "bf16"):
        out_dir = tmp_path / precision
        code, _, err = run_entry("ernie_encoder", [
            "--use_cuda", "false", "--init_pretraining_params", folder, "--data_set", data,
            "--output_dir", out_dir, "--cpu_threads", "1", "--precision", precision], tmp_path)
        assert code == 0, err
        outputs[precision] = [np.load(out_dir / n) for n in
                              ("cls_emb.npy", "top_layer_emb.npy", "seq_lens.npy")]
    for x, y in zip(outputs["fp32"], outputs["bf16"]):
        assert x.shape == y.shape and x.dtype == y.dtype
    np.testing.assert_array_equal(outputs["fp32"][2], outputs["bf16"][2])
    for x, y in zip(outputs["fp32"][:2], outputs["bf16"][:2]):
        assert np.abs(x - y).max() <= RELATIVE * np.abs(x).max()


def test_the_prediction_scripts_refuse_an_unknown_precision_in_one_line():
    for script in ("predict_classifier.py", "predict_sequence_labeling.py", "ernie_encoder.py"):
        code, lines = run_script(script, "--precision", "fp16")
        assert code == 2 and len(lines) == 1 and "--precision" in lines[0], (script, lines)


@needs_bf16
def test_the_server_serves_in_bf16(tiny):
    import httpx
    folder, texts = tiny
    with served(folder, "--num_threads", "1", "--precision", "bf16") as url:
        got = httpx.post(url + "/predict", json={"items": texts[:16]}, timeout=60).json()
    np.testing.assert_allclose(probs(got["results"]),
                               probs(load(folder, "bf16").predict(texts[:16])), atol=1e-5)


# ---- int8 ----------------------------------------------------------------------------------
# Tolerances: activations are quantized per tensor to 127 (255 after a relu) steps of their
# calibrated range and weights per output channel; on the scaled-up fixture the probabilities
# move by 0.11 at most (mean 0.01) and 97.5% of the labels stay (measured). A wrong scale or
# a program calibrated on nothing moves them by tens of percent.

INT8_MEAN, INT8_AGREEMENT = 0.03, 0.95


needs_vnni = pytest.mark.skipif("not _cpu_has('int8')",
                                reason="this CPU has no VNNI: int8 runs fp32")


def int8_manifest(folder):
    from serving.folder import read_manifest
    return read_manifest(folder).get("int8")


@pytest.fixture(scope="module")
def int8_tiny(tmp_path_factory):
    """A fresh tiny classify folder (int8 programs get added to it) and its calibration file:
    the last 100 reviews, the first 100 being what is predicted."""
    root = tmp_path_factory.mktemp("int8")
    folder, texts = tiny_classify_folder(root)
    calibration = root / "calibration.tsv"
    calibration.write_text("text_a\n" + "".join(t + "\n" for t in texts[100:]), "utf-8")
    return folder, texts, calibration


@needs_vnni
def test_predict_classifier_int8_calibrates_once_then_reuses(int8_tiny, tmp_path):
    folder, texts, calibration = int8_tiny
    a, _, _ = predict_file(folder, texts[:100], tmp_path, "fp32.tsv")
    b, out, _ = predict_file(folder, texts[:100], tmp_path, "int8.tsv", "--precision", "int8",
                             "--calibration_set", calibration)
    assert "calibrating int8 on 100 examples of %s" % calibration in out
    info = int8_manifest(folder)  # the manifest lists the new files, checksums verified
    assert info["calibration"]["examples"] == 100
    assert info["calibration"]["file"] == str(calibration)
    diff = np.abs(a - b)
    assert diff.mean() <= INT8_MEAN and np.mean(a.argmax(1) == b.argmax(1)) >= INT8_AGREEMENT
    assert not np.array_equal(a, b)
    # again, with the same calibration set or none: nothing recalibrated, same numbers
    for extra in (["--calibration_set", calibration], []):
        c, out, _ = predict_file(folder, texts[:100], tmp_path, "again.tsv", "--precision",
                                 "int8", *extra)
        assert "not calibrated again" in out and "calibrating" not in out
        np.testing.assert_array_equal(b, c)
    # the API runs the same int8 program
    np.testing.assert_allclose(b, probs(load(folder, "int8").classify(texts[:100])), atol=1e-5)


@needs_vnni
def test_another_calibration_set_replaces_the_int8_programs(int8_tiny, tmp_path):
    import os
    folder, texts, calibration = int8_tiny
    other = tmp_path / "other.tsv"
    other.write_text("text_a\n" + "".join(t + "\n" for t in texts[150:170]), "utf-8")
    predict_file(folder, texts[:10], tmp_path, "x.tsv", "--precision", "int8",
                 "--calibration_set", calibration)
    before = set(int8_manifest(folder)["programs"].values())
    _, out, _ = predict_file(folder, texts[:10], tmp_path, "y.tsv", "--precision", "int8",
                             "--calibration_set", other)
    assert "calibrating int8 on 20 examples" in out
    after = int8_manifest(folder)
    assert after["calibration"]["examples"] == 20
    names = os.listdir(folder)
    assert not any(n.startswith(tuple(before)) for n in names)  # the old programs are gone
    assert all(any(n.startswith(p) for n in names) for p in after["programs"].values())


@needs_vnni
def test_without_a_calibration_set_the_input_calibrates_with_a_notice(tmp_path):
    folder, texts = tiny_classify_folder(tmp_path / "m")
    _, out, err = predict_file(folder, texts[:40], tmp_path, "int8.tsv", "--precision", "int8")
    assert "notice: no --calibration_set: int8 is calibrated on the first 300 examples of " \
        "--predict_set" in err
    assert "calibrating int8 on 40 examples of %s" % (tmp_path / "input.tsv") in out


@needs_vnni
def test_a_checkpoint_is_exported_and_calibrated_once(int8_tiny, tmp_path):
    folder, texts, calibration = int8_tiny
    checkpoint = folder.parent / "checkpoint"
    data = tmp_path / "input.tsv"
    data.write_text("text_a\n" + "".join(t + "\n" for t in texts[:20]), encoding="utf-8")
    argv = ["--use_cuda", "false", "--init_checkpoint", checkpoint, "--predict_set", data,
            "--ernie_config_path", folder / "ernie_config.json", "--vocab_path",
            folder / "vocab.txt", "--max_seq_len", "48", "--num_labels", "3",
            "--save_inference_model_path", tmp_path / "inference", "--precision", "int8",
            "--calibration_set", calibration]
    code, first, err = run_entry("predict_classifier", argv, tmp_path)
    assert code == 0, err
    assert "save inference model" in first and "calibrating int8" in first
    code, second, err = run_entry("predict_classifier", argv, tmp_path)
    assert code == 0, err
    assert "not exported again" in second and "not calibrated again" in second


def test_int8_needs_the_folders_int8_programs_or_its_checkpoint(tmp_path):
    import shutil

    from utils.errors import DataError
    folder, texts = tiny_classify_folder(tmp_path / "m")
    if _cpu_has("int8"):
        with pytest.raises(DataError, match="no int8 program in this model folder; add one "
                                            "with python -m serving.export"):
            load(folder, "int8")
    shutil.rmtree(folder.parent / "checkpoint")
    data = tmp_path / "input.tsv"
    data.write_text("text_a\n" + texts[0] + "\n", encoding="utf-8")
    code, _, err = run_entry("predict_classifier", [
        "--use_cuda", "false", "--init_checkpoint", folder, "--predict_set", data,
        "--precision", "int8"], tmp_path)
    if _cpu_has("int8"):
        assert code != 0 and len(err.strip().splitlines()) == 2, err  # the notice, the error
        assert "int8 calibration needs the checkpoint the folder was exported from" in err
        assert int8_manifest(folder) is None


def test_a_cpu_without_vnni_runs_int8_as_fp32_after_one_notice(tmp_path, monkeypatch):
    import utils.inference
    folder, texts = tiny_classify_folder(tmp_path / "m")
    monkeypatch.setattr(utils.inference, "_cpu_has", lambda precision: False)
    a, _, _ = predict_file(folder, texts[:20], tmp_path, "fp32.tsv")
    b, out, err = predict_file(folder, texts[:20], tmp_path, "int8.tsv", "--precision", "int8")
    assert [ln for ln in err.splitlines() if ln.startswith("notice:")] == [
        "notice: this CPU has no VNNI instructions; --precision int8 runs in fp32"], err
    assert "calibrating" not in out
    np.testing.assert_array_equal(a, b)


@needs_vnni
def test_serving_export_int8_for_a_tagger_and_the_encoder(tmp_path):
    from test_api import Setup, export, ok
    s = Setup(tmp_path)
    code, lines = run_script("-m", "serving.export", "--init_checkpoint", s.ner, "--task",
                             "tag", "--output_dir", tmp_path / "x", "--precision", "int8",
                             *s.model_flags(), "--label_map_config", s.ner_map)
    assert code == 2 and lines == ["error: --precision int8 needs --calibration_set (a few "
                                   "hundred inputs)"], lines
    folder = export(s, "tag", s.ner, "ner_int8", "--label_map_config", s.ner_map,
                    "--precision", "int8", "--calibration_set", s.ner_set, max_seq_len=8)
    # 3 lines, the last one in 3 windows of --max_seq_len 8: 5 model inputs
    assert int8_manifest(folder)["calibration"]["examples"] == 5
    tags = load(folder, "int8").tag(s.ner_lines)
    assert [len(t) for t in tags] == [4, 3, 12]  # one label per token, windows joined
    out = tmp_path / "ner_int8.tsv"
    stdout = ok("predict_sequence_labeling", [
        "--use_cuda", "false", "--init_checkpoint", folder, "--predict_set", s.ner_set,
        "--output_file", out, "--precision", "int8"], tmp_path)
    assert "not calibrated again" in stdout
    assert [line.split("\t")[1].split("\x02") for line in
            out.read_text(encoding="utf-8").splitlines()] == [[t for _, t in row]
                                                               for row in tags]
    # any folder's int8 encoder serves embeddings, here through ernie_encoder.py
    stdout = ok("ernie_encoder", ["--use_cuda", "false", "--init_pretraining_params", folder,
                                  "--data_set", s.cls_set, "--output_dir", tmp_path / "emb",
                                  "--precision", "int8"], tmp_path)
    assert "not calibrated again" in stdout
    fp32 = load(folder, "fp32").encode([line for line in s.cls_set.read_text(
        encoding="utf-8").splitlines()[1:]])
    cls_emb = np.load(tmp_path / "emb" / "cls_emb.npy")
    want = np.stack([r["pooled"] for r in fp32])
    assert cls_emb.shape == want.shape
    assert np.abs(cls_emb - want).max() <= 0.1 * np.abs(want).max()

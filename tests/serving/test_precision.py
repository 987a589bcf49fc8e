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

from ernie_testkit import REPO, free_port, run_entry, run_script, tiny_classify_folder

pytestmark = pytest.mark.slow

PROB_MAX, PROB_MEAN, AGREEMENT, RELATIVE = 0.08, 0.01, 0.97, 0.06


def has_bf16():
    from paddle.base import core
    return core.supports_bfloat16_fast_performance()


needs_bf16 = pytest.mark.skipif("not has_bf16()",
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
    import subprocess
    import sys
    import time

    import httpx
    folder, texts = tiny
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "serving.server", str(folder), "--port",
                             str(port), "--num_threads", "1", "--precision", "bf16"],
                            cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        url = "http://127.0.0.1:%d" % port
        for _ in range(1200):
            assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
            try:
                httpx.get(url + "/health", timeout=5)
                break
            except httpx.TransportError:
                time.sleep(0.1)
        got = httpx.post(url + "/predict", json={"items": texts[:16]}, timeout=60).json()
        np.testing.assert_allclose(probs(got["results"]),
                                   probs(load(folder, "bf16").predict(texts[:16])), atol=1e-5)
    finally:
        proc.terminate()
        proc.wait(30)

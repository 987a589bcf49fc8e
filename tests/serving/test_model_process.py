"""serving.model_process: the model in a worker process answers as it would in-process; its
errors cross the pipe; a process that dies fails the call and is replaced; and the HTTP
server runs on one (a fake model here; test_server.py runs one on a real folder)."""
import json
import os

import httpx
import numpy as np
import pytest
from test_server import running_server

from serving.folder import manifest_digest
from serving.model_process import (
    ModelFolderChanged,
    ModelProcess,
    ModelProcessDied,
    start_model_processes,
)
from serving.server import create_app
from utils.errors import DataError


class Fake:
    """A model that answers len(text); ValueError on "bad"; its process exits on "die"."""
    task, labels, max_seq_len = "classify", ["neg", "pos"], 32

    def token_count(self, item):
        return len(item) + 2

    def predict(self, items):
        if "die" in items:
            os._exit(3)
        if "bad" in items:
            raise ValueError("item %d: bad text" % items.index("bad"))
        return [{"n": len(t)} for t in items]

    def encode(self, texts, pooling="cls"):
        return [{"pooled": np.full(2, len(t), "float32"), "pooling": pooling} for t in texts]


def fake_load(folder, num_threads=None, precision="fp32"):
    if folder == "missing":
        raise DataError("missing: not a model folder")
    fake = Fake()
    if folder == "per-process":  # every process loads another model
        fake.manifest = {"pid": os.getpid()}
    elif os.path.isdir(folder):  # the model is what the folder's manifest.json says
        with open(os.path.join(folder, "manifest.json")) as f:
            fake.manifest = json.load(f)
    return fake


@pytest.fixture
def fake_process():
    run = ModelProcess("fake", load=fake_load)
    yield run
    run.close()


def test_calls_and_errors_cross_the_pipe(fake_process):
    assert fake_process("predict", ["ab", "c"]) == [{"n": 2}, {"n": 1}]
    out = fake_process(("encode", "mean"), ["abc"])
    assert out[0]["pooling"] == "mean" and out[0]["pooled"].dtype == np.float32
    np.testing.assert_array_equal(out[0]["pooled"], [3, 3])
    with pytest.raises(ValueError, match="item 1: bad text"):
        fake_process("predict", ["ok", "bad"])
    assert fake_process("predict", ["ok"]) == [{"n": 2}] and fake_process.starts == 1


def test_a_dead_process_fails_the_call_and_is_replaced(fake_process):
    with pytest.raises(ModelProcessDied, match="code 3"):
        fake_process("predict", ["die"])
    assert fake_process("predict", ["ok"]) == [{"n": 2}] and fake_process.starts == 2
    fake_process._process.kill()
    fake_process._process.join(5)
    assert fake_process("predict", ["ok"]) == [{"n": 2}] and fake_process.starts == 3


def test_a_load_error_is_raised_by_the_constructor():
    with pytest.raises(DataError, match="not a model folder"):
        ModelProcess("missing", load=fake_load)


def test_the_server_answers_500_when_the_process_dies_then_recovers(fake_process):
    with running_server(create_app(Fake(), run=fake_process)) as url:
        r = httpx.post(url + "/predict", json={"items": ["die"]}, timeout=60)
        assert r.status_code == 500 and "ModelProcessDied" in r.json()["error"]
        r = httpx.post(url + "/predict", json={"items": ["bad"]}, timeout=60)
        assert r.status_code == 422 and r.json()["error"] == "item 0: bad text"
        r = httpx.post(url + "/predict", json={"items": ["abc"]}, timeout=60)
        assert r.status_code == 200 and r.json() == {"results": [{"n": 3}]}



def kill(run):
    run._process.kill()
    run._process.join(5)


def test_a_restart_that_loads_another_model_fails_every_call(tmp_path):
    (tmp_path / "manifest.json").write_text(json.dumps({"task": "classify", "files": {}}))
    run = ModelProcess(str(tmp_path), load=fake_load)
    try:
        assert run.identity == manifest_digest({"task": "classify", "files": {}})
        kill(run)   # a restart that finds the same model serves it
        assert run("predict", ["ok"]) == [{"n": 2}] and run.starts == 2
        # the folder exported over with another task, then the process dies
        (tmp_path / "manifest.json").write_text(json.dumps({"task": "tag", "files": {}}))
        kill(run)
        for _ in range(2):   # and stays failed, without loading again
            with pytest.raises(ModelFolderChanged, match="model folder %s changed since the "
                               "server started .* restart the server" % tmp_path) as info:
                run("predict", ["ok"])
            assert "\n" not in str(info.value) and run.starts == 3
        assert run._process is None   # nothing left running the other model
        with running_server(create_app(Fake(), run=run)) as url:
            r = httpx.post(url + "/predict", json={"items": ["abc"]}, timeout=60)
            assert r.status_code == 500 and "ModelFolderChanged" in r.json()["error"]
    finally:
        run.close()


def test_the_model_given_is_the_one_the_process_must_load(tmp_path):
    (tmp_path / "manifest.json").write_text(json.dumps({"task": "classify", "files": {}}))
    with pytest.raises(ModelFolderChanged, match="changed since the server started"):
        ModelProcess(str(tmp_path), load=fake_load, identity="0123456789abcdef")
    identity = manifest_digest({"task": "classify", "files": {}})
    runs = start_model_processes(str(tmp_path), 2, load=fake_load, identity=identity)
    try:
        assert [r.identity for r in runs] == [identity] * 2
    finally:
        for run in runs:
            run.close()


def test_model_processes_that_load_different_models_do_not_start():
    with pytest.raises(ModelFolderChanged, match="changed while the server loaded it"):
        start_model_processes("per-process", 2, load=fake_load)

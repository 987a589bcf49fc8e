"""serving.model_process: the model in a worker process answers as it would in-process; its
errors cross the pipe; a process that dies fails the call and is replaced; and the HTTP
server runs on one (a fake model here; test_server.py runs one on a real folder)."""
import os

import httpx
import numpy as np
import pytest
from test_server import running_server

from serving.model_process import ModelProcess, ModelProcessDied
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
    return Fake()


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


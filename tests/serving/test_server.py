"""serving.server over loopback: a real uvicorn server in a thread, a real HTTP client (httpx).

Every endpoint for every task, every kind of bad request (each answered with its status and a
message, the server healthy after it), a full queue (503 + Retry-After), a failing model; and
a load test: 32 concurrent clients, 2,000 requests, in which every answer must equal the
model's own unbatched prediction of its texts, on a real tiny model folder (serving.export
of a random checkpoint, serving.api) as well as on a fake model."""
import asyncio
import contextlib
import json
import random
import socket
import threading
import time

import httpx
import numpy as np
import pytest
import uvicorn

from serving.server import create_app


class FakeModel:
    """serving.api's Model, minus Paddle: every output is a function of its own item, so a
    result given to the wrong request shows. predict raises ValueError on the text "explode"
    and RuntimeError on "crash" (token_count accepts both); with `gate`, the first predict
    call waits until gate.release is set (gate.started tells it began)."""

    def __init__(self, task="classify", gate=None):
        self.task = task
        self.labels = ["neg", "pos"] if task in ("classify", "tag") else None
        self.max_seq_len, self.hidden_size = 32, 4
        self.gate = gate

    def _texts(self, item, task=None):
        if (task or self.task) == "mrc":
            if not isinstance(item, dict):
                raise ValueError("item 0: expected {\"question\": ..., \"context\": ...}")
            texts = [item["question"], item["context"]]
        elif isinstance(item, (list, tuple)):
            texts = list(item)
        else:
            texts = [item]
        for t in texts:
            if not isinstance(t, str) or not t.strip():
                raise ValueError("item 0: text is empty")
        return texts

    def token_count(self, item):
        return min(self.max_seq_len, sum(len(t) for t in self._texts(item)) + 2)

    def _wait(self):
        if self.gate is not None and not self.gate.started.is_set():
            self.gate.started.set()
            assert self.gate.release.wait(30)

    def predict(self, items):
        self._wait()
        for item in items:
            if "explode" in self._texts(item):
                raise ValueError("the model cannot read 'explode'")
            if "crash" in self._texts(item):
                raise RuntimeError("out of cheese")
        return [self.one(item) for item in items]

    def one(self, item):
        text = "|".join(self._texts(item))
        if self.task == "tag":
            return [(c, self.labels[ord(c) % 2]) for c in text]
        if self.task == "mrc":
            return {"text": item["context"][:2], "score": len(text) / 100.0}
        p = (sum(map(ord, text)) % 97) / 97.0
        if self.task == "regress":
            return {"score": p}
        return {"label": self.labels[int(p > 0.5)], "probs": {"neg": 1 - p, "pos": p}}

    def encode(self, texts, pooling="cls"):
        for t in texts:
            self._texts(t, "encode")
        out = []
        for t in texts:
            text = "|".join(self._texts(t, "encode"))
            tokens = np.array([[ord(c), i, len(text), 1.5] for i, c in enumerate(text)],
                              "float32")
            out.append({"pooled": tokens[0] if pooling == "cls" else tokens.mean(axis=0),
                        "tokens": tokens})
        return out


class Gate:
    def __init__(self):
        self.started, self.release = threading.Event(), threading.Event()


@contextlib.contextmanager
def running_server(app):
    """Run `app` under uvicorn in a thread on a free loopback port; yields its base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        for _ in range(3000):
            if server.started or not thread.is_alive():
                break
            time.sleep(0.01)
        assert server.started, "uvicorn did not start"
        yield "http://127.0.0.1:%d" % sock.getsockname()[1]
    finally:
        server.should_exit = True
        thread.join(30)
        sock.close()


@pytest.fixture(scope="module")
def classify_server():
    model = FakeModel("classify")
    with running_server(create_app(model, max_items=4, max_text_chars=50)) as url:
        with httpx.Client(base_url=url, timeout=30) as client:
            yield model, client


def assert_healthy(client):
    r = client.get("/health")
    assert r.status_code == 200 and r.json()["status"] == "ok"


def test_health_names_the_task_and_labels(classify_server):
    _, client = classify_server
    assert client.get("/health").json() == {"status": "ok", "task": "classify",
                                            "labels": ["neg", "pos"], "max_seq_len": 32}


def test_predict_returns_the_models_results_in_order(classify_server):
    model, client = classify_server
    items = ["好看", ["第一句", "第二句"], "不好看"]
    r = client.post("/predict", json={"items": items})
    assert r.status_code == 200
    assert r.json() == {"results": [model.one(i) for i in items]}


@pytest.mark.parametrize("pooling", ["cls", "mean"])
def test_embed_returns_pooled_and_token_vectors(classify_server, pooling):
    model, client = classify_server
    texts = ["好看", "一部电影"]
    r = client.post("/embed", json={"texts": texts, "pooling": pooling})
    assert r.status_code == 200
    want = model.encode(texts, pooling)
    got = r.json()["results"]
    assert len(got) == 2
    for g, w in zip(got, want):
        np.testing.assert_array_equal(np.array(g["pooled"], "float32"), w["pooled"])
        np.testing.assert_array_equal(np.array(g["tokens"], "float32"), w["tokens"])


def test_embed_takes_pairs(classify_server):
    model, client = classify_server
    got = client.post("/embed", json={"texts": [["一", "二"]]}).json()["results"][0]["tokens"]
    assert got == model.encode([["一", "二"]])[0]["tokens"].tolist()


def test_embed_pools_with_cls_by_default(classify_server):
    model, client = classify_server
    got = client.post("/embed", json={"texts": ["好看"]}).json()["results"][0]["pooled"]
    assert got == model.encode(["好看"], "cls")[0]["pooled"].tolist()


@pytest.mark.parametrize("task, items", [
    ("tag", ["张三好", ["张", "三", "好"]]),
    ("regress", ["一", ["一", "二"]]),
    ("mrc", [{"question": "谁", "context": "张三在北京"}]),
])
def test_predict_and_embed_for_the_other_tasks(task, items):
    model = FakeModel(task)
    with running_server(create_app(model)) as url:
        r = httpx.post(url + "/predict", json={"items": items}, timeout=30)
        assert r.status_code == 200, r.text
        assert r.json() == {"results": json.loads(json.dumps([model.one(i) for i in items]))}
        assert httpx.get(url + "/health", timeout=30).json()["task"] == task
        r = httpx.post(url + "/embed", json={"texts": ["一二三"]}, timeout=30)
        assert r.status_code == 200, r.text


def test_an_encode_folder_has_embed_but_no_predict():
    with running_server(create_app(FakeModel("encode"))) as url:
        r = httpx.post(url + "/predict", json={"items": ["一"]}, timeout=30)
        assert r.status_code == 404 and "/embed" in r.json()["error"]
        assert httpx.post(url + "/embed", json={"texts": ["一"]}, timeout=30).status_code == 200


JSON = {"content-type": "application/json"}


@pytest.mark.parametrize("path, body, status, words", [
    ("/predict", b'{"items": ["unclosed"', 422, "JSON decode error"),
    ("/predict", b"not json at all", 422, "JSON decode error"),
    ("/predict", b'{"items": ["\xff\xfe bad utf-8"]}', 400, "the request body is not UTF-8"),
    ("/predict", b'["a list"]', 422, "valid dictionary"),
    ("/predict", b'{"items": "a text, not a list"}', 422, "valid list"),
    ("/predict", b'{"items": [1, 2]}', 422, "items.0"),
    ("/predict", b'{"items": [["only one text"]]}', 422, "at least 2"),
    ("/predict", b'{"items": [["a", "b", "c"]]}', 422, "at most 2"),
    ("/predict", b'{"items": [{"question": "q", "context": "c"}]}', 422, "items.0"),
    ("/predict", b'{"texts": ["wrong field"]}', 422, "items: Field required"),
    ("/predict", b'{"items": ["a"], "extra": 1}', 422, "extra: Extra inputs"),
    ("/predict", b'{"items": []}', 422, "at least 1 item"),
    ("/predict", b'{"items": ["a", "b", "c", "d", "e"]}', 422, "at most 4 items"),
    ("/predict", ('{"items": ["%s"]}' % ("长" * 51)).encode(), 422, "at most 50 characters"),
    ("/predict", b'{"items": ["   "]}', 422, "item 0: text is empty"),
    ("/predict", b'{"items": ["fine", ""]}', 422, "item 1: text is empty"),
    ("/predict", b'{"items": ["fine", "explode"]}', 422, "cannot read 'explode'"),
    ("/predict", b'{"items": ["crash"]}', 500, "out of cheese"),
    ("/embed", b'{"texts": ["a"], "pooling": "max"}', 422, "pooling: Input should be 'cls'"),
    ("/embed", b'{"texts": []}', 422, "at least 1 item"),
    ("/embed", b'{"texts": [null]}', 422, "texts.0"),
    ("/embed", b'{"texts": ["fine", " "]}', 422, "text is empty"),
    ("/predict", b"x" * 2_000_000, 413, "too large"),
])
def test_a_bad_request_gets_its_status_and_a_message(classify_server, path, body, status,
                                                     words):
    _, client = classify_server
    r = client.post(path, content=body, headers=JSON)
    assert r.status_code == status, r.text
    message = r.json().get("error") or r.json().get("detail")
    assert isinstance(message, str) and words in message, r.text
    assert_healthy(client)


def test_a_streamed_body_over_the_limit_is_refused(classify_server):
    """No Content-Length (chunked transfer): the server stops reading at the limit."""
    _, client = classify_server
    r = client.post("/predict", content=iter([b'{"items": ["'] + [b"x" * 65536] * 40),
                    headers=JSON)
    assert r.status_code == 413 and "too large" in r.json()["error"]
    assert_healthy(client)


def test_a_body_without_content_type_is_refused(classify_server):
    _, client = classify_server
    r = client.post("/predict", content=b'{"items": ["a"]}')
    assert r.status_code == 422 and r.json()["error"]
    assert_healthy(client)


def test_a_bad_request_does_not_fail_the_others_in_its_batch():
    gate = Gate()
    model = FakeModel("classify", gate=gate)
    app = create_app(model, max_wait_ms=0)
    with running_server(app) as url:
        results = {}

        def post(name, items):
            results[name] = httpx.post(url + "/predict", json={"items": items}, timeout=30)

        first = threading.Thread(target=post, args=("first", ["先"]))
        first.start()
        assert gate.started.wait(30)
        others = [threading.Thread(target=post, args=(name, items)) for name, items in
                  (("good", ["好", "很好"]), ("bad", ["explode"]), ("crash", ["crash"]),
                   ("also good", ["也好"]))]
        for t in others:
            t.start()
        while app.state.batcher.queued() < 4:  # all four in the queue: one batch
            time.sleep(0.01)
        gate.release.set()
        for t in [first] + others:
            t.join(30)
        assert results["good"].json()["results"] == [model.one("好"), model.one("很好")]
        assert results["also good"].json()["results"] == [model.one("也好")]
        assert results["bad"].status_code == 422
        assert results["crash"].status_code == 500
        assert app.state.batcher.calls >= 2


def test_a_full_queue_answers_503_with_retry_after():
    gate = Gate()
    app = create_app(FakeModel("classify", gate=gate), max_batch_size=1, max_wait_ms=0,
                     max_queue=1)
    with running_server(app) as url:
        answers = []

        def post(text):
            answers.append(httpx.post(url + "/predict", json={"items": [text]}, timeout=30))

        running = threading.Thread(target=post, args=("跑",))
        running.start()
        assert gate.started.wait(30)                 # the worker is busy with it
        waiting = threading.Thread(target=post, args=("等",))
        waiting.start()
        while app.state.batcher.queued() < 1:        # and the one queue place is taken
            time.sleep(0.01)
        r = httpx.post(url + "/predict", json={"items": ["满"]}, timeout=30)
        assert r.status_code == 503
        assert int(r.headers["retry-after"]) >= 1 and "busy" in r.json()["error"]
        gate.release.set()
        running.join(30)
        waiting.join(30)
        assert [a.status_code for a in answers] == [200, 200]
        assert httpx.get(url + "/health", timeout=30).status_code == 200


# ---- load: 32 concurrent clients, 2,000 requests ---------------------------------------------

def load_requests(texts, n, seed):
    """n request bodies of 1-3 texts drawn from `texts` (a fixed seed)."""
    rng = random.Random(seed)
    return [[rng.choice(texts) for _ in range(rng.choice((1, 1, 1, 2, 3)))] for _ in range(n)]


def fire(url, requests, clients):
    """Post every request's items to /predict from `clients` concurrent clients; returns the
    (status, json) of each, in the order of `requests`."""
    answers = [None] * len(requests)

    async def client(queue, http):
        while queue:
            i = queue.pop()
            r = await http.post("/predict", json={"items": requests[i]})
            answers[i] = (r.status_code, r.json())

    async def main():
        queue = list(range(len(requests)))[::-1]
        limits = httpx.Limits(max_connections=clients)
        async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as http:
            await asyncio.gather(*(client(queue, http) for _ in range(clients)))

    asyncio.run(main())
    return answers


def check_load(model, texts, app, seed):
    requests = load_requests(texts, 2000, seed)
    alone = {t: model.predict([t])[0] for t in set(texts)}  # unbatched, one text a call
    with running_server(app) as url:
        answers = fire(url, requests, clients=32)
    assert all(a is not None for a in answers)
    assert [status for status, _ in answers] == [200] * len(requests)
    return requests, [body["results"] for _, body in answers], alone


@pytest.mark.slow
def test_load_on_a_fake_model_loses_and_mixes_up_nothing():
    model = FakeModel("classify")
    texts = ["文本%d" % i + "长" * (i % 40) for i in range(300)]
    app = create_app(model)
    requests, results, alone = check_load(model, texts, app, seed=0)
    for items, got in zip(requests, results):
        assert got == [alone[t] for t in items]
    assert app.state.batcher.calls < app.state.batcher.items_run  # batches were shared


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory):
    from ernie_testkit import tiny_classify_folder
    return tiny_classify_folder(tmp_path_factory.mktemp("folder"))


@pytest.mark.slow
@pytest.mark.parametrize("copies", [0, 2])
def test_load_on_a_real_model_folder_answers_each_text_as_the_model_alone(tiny_folder, copies):
    """Batched answers equal unbatched predictions up to float rounding (padding changes
    the shapes of the matrix products, and batches of 16 rows run on oneDNN's kernels, smaller
    ones on Paddle's own), and the label agrees wherever the top two probabilities are not
    within rounding of each other. The model runs in the server's process, or in two worker
    processes at once."""
    import serving.api
    from serving.model_process import start_model_processes
    folder, texts = tiny_folder
    model = serving.api.load(str(folder), num_threads=1)
    runs = start_model_processes(folder, copies, num_threads=1) if copies else None
    try:
        app = create_app(model, max_batch_size=16, run=runs)
        requests, results, alone = check_load(model, texts, app, seed=1)
    finally:
        for run in runs or ():
            run.close()
    for items, got in zip(requests, results):
        assert len(got) == len(items)
        for text, answer in zip(items, got):
            want = alone[text]
            assert sorted(answer["probs"]) == sorted(want["probs"])
            np.testing.assert_allclose([answer["probs"][k] for k in sorted(want["probs"])],
                                       [want["probs"][k] for k in sorted(want["probs"])],
                                       atol=1e-5)
            top = sorted(want["probs"].values())
            if top[-1] - top[-2] > 1e-4:
                assert answer["label"] == want["label"]
    # texts differ in their probabilities by far more than the rounding allowed above (and in
    # their labels), so an answer given to the wrong text would show
    assert len({round(alone[t]["probs"]["pos"], 3) for t in texts}) > len(set(texts)) // 2
    assert len({a["label"] for a in alone.values()}) == 3
    assert app.state.batcher.calls < app.state.batcher.items_run


@pytest.mark.slow
def test_embed_on_a_real_model_folder_matches_the_api(tiny_folder):
    import serving.api
    folder, texts = tiny_folder
    model = serving.api.load(str(folder), num_threads=1)
    with running_server(create_app(model)) as url:
        for pooling in ("cls", "mean"):
            r = httpx.post(url + "/embed", json={"texts": texts[:5], "pooling": pooling},
                           timeout=60)
            assert r.status_code == 200, r.text
            for got, want in zip(r.json()["results"], model.encode(texts[:5], pooling)):
                np.testing.assert_allclose(got["pooled"], want["pooled"], atol=1e-5)
                np.testing.assert_allclose(got["tokens"], want["tokens"], atol=1e-5)
        assert httpx.post(url + "/predict", json={"items": [""]},
                          timeout=60).json()["error"] == "item 0: text is empty"


@pytest.mark.slow
def test_a_model_process_on_a_real_folder_answers_as_in_process(tiny_folder):
    import serving.api
    from serving.model_process import ModelProcess
    folder, texts = tiny_folder
    model = serving.api.load(str(folder), num_threads=1)
    run = ModelProcess(folder, num_threads=1)
    try:
        for got, want in zip(run("predict", texts[:8]), model.predict(texts[:8])):
            assert got["label"] == want["label"]
            np.testing.assert_allclose(list(got["probs"].values()),
                                       list(want["probs"].values()), atol=1e-6)
        got, = run(("encode", "mean"), texts[:1])
        want, = model.encode(texts[:1], pooling="mean")
        np.testing.assert_allclose(got["tokens"], want["tokens"], atol=1e-6)
        with pytest.raises(ValueError, match="item 0: text is empty"):
            run("predict", [""])
    finally:
        run.close()


@pytest.mark.slow
@pytest.mark.parametrize("model_process", ["true", "false"])
def test_the_command_line_serves_a_folder_on_loopback(tiny_folder, model_process):
    from ernie_testkit import served
    folder, texts = tiny_folder
    with served(folder, "--max_batch_size", "8", "--num_threads", "1", "--model_process",
                model_process) as url:
        health = httpx.get(url + "/health", timeout=5).json()
        assert health == {"status": "ok", "task": "classify", "labels": ["neg", "neu", "pos"],
                          "max_seq_len": 48}
        r = httpx.post(url + "/predict", json={"items": texts[:3]}, timeout=60)
        assert [a["label"] for a in r.json()["results"]] == \
            [a["label"] for a in serving_api_predict(folder, texts[:3])]


def serving_api_predict(folder, items):
    import serving.api
    return serving.api.load(str(folder), num_threads=1).predict(items)


@pytest.mark.slow
@pytest.mark.parametrize("args, words", [
    (["/no/such/folder"], "not a model folder"),
    (["{folder}", "--max_batch_size", "0"], "--max_batch_size must be >= 1"),
    (["{folder}", "--port", "70000"], "--port must be in 1..65535"),
    (["{folder}", "--host", "999.1.1.1"], "--host 999.1.1.1: "),
    (["{folder}", "--max_wait_ms", "soon"], "invalid float value"),
    (["{folder}", "--model_processes", "0"], "--model_processes must be >= 1"),
    (["{folder}", "--model_processes", "2", "--model_process", "false"],
     "--model_processes needs --model_process true"),
])
def test_the_command_line_refuses_bad_arguments_in_one_line(tiny_folder, args, words):
    from ernie_testkit import run_script
    folder, _ = tiny_folder
    code, lines = run_script("-m", "serving.server",
                             *[a.format(folder=folder) for a in args])
    assert code != 0 and len(lines) == 1 and words in lines[0], lines


@pytest.mark.slow
def test_the_command_line_refuses_a_port_in_use_in_one_line_before_loading(tiny_folder):
    """Before the model loads and its processes start: the one line is all it prints."""
    from ernie_testkit import run_script
    folder, _ = tiny_folder
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code, lines = run_script("-m", "serving.server", folder, "--port", port)
    assert code != 0 and lines == ["error: --port %d: address already in use" % port], lines


def flags_checked(monkeypatch, args):
    """Run serving.server.main on `args` up to the check of its address, which comes before
    the model loads: True when it got there."""
    from serving import server

    class Checked(Exception):
        pass

    def check_address(host, port):
        raise Checked

    monkeypatch.setattr(server, "check_address", check_address)
    try:
        server.main(args)
    except Checked:
        return True


@pytest.mark.parametrize("value, shown", [("inf", "inf"), ("nan", "nan"), ("-1", "-1"),
                                          ("1e300", "1e+300"), ("60001", "60001")])
def test_a_max_wait_ms_out_of_range_is_refused_before_the_model_loads(monkeypatch, value,
                                                                      shown):
    """inf or 1e300 would kill the batcher's thread (the server then answers /health and
    never /predict), nan would never end a batch's wait."""
    from utils.errors import UsageError
    with pytest.raises(UsageError) as refused:
        flags_checked(monkeypatch, ["/no/such/folder", "--max_wait_ms", value])
    assert str(refused.value) == "--max_wait_ms must be within 0..60000, got %s" % shown


@pytest.mark.parametrize("value", ["0", "60000"])
def test_a_max_wait_ms_within_range_is_taken(monkeypatch, value):
    assert flags_checked(monkeypatch, ["/no/such/folder", "--max_wait_ms", value])


@pytest.mark.parametrize("cores, flags, want", [
    (2, {}, (2, 1)),
    (1, {}, (1, 1)),
    (8, {}, (2, 4)),
    (2, {"num_threads": 2}, (1, 2)),
    (8, {"num_threads": 2}, (2, 2)),
    (4, {"model_processes": 4}, (4, 1)),
    (2, {"model_processes": 3, "num_threads": 2}, (3, 2)),
    (8, {"model_process": False}, (1, 8)),
])
def test_model_copies_divide_the_cores(monkeypatch, cores, flags, want):
    from serving import server
    monkeypatch.setattr(server.os, "sched_getaffinity", lambda pid: set(range(cores)))
    assert server.model_copies(**flags) == want

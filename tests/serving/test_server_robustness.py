"""serving.server against bodies that are not what it expects, over loopback: a body that is
not UTF-8 or not sent as JSON, JSON it cannot parse, a number too long for Python's int, a large
request that takes long to measure, and a body that stops arriving; each answered with a status
and a one-line {"error": ...}, the server answering others meanwhile and healthy after. And
clients that disconnect before their answer: their requests never reach the model."""
import json
import socket
import threading
import time

import httpx
import pytest
from test_server import JSON, FakeModel, Gate, assert_healthy, running_server

from serving.server import create_app, plain_errors


@pytest.fixture(scope="module")
def client():
    with running_server(create_app(FakeModel("classify"))) as url:
        with httpx.Client(base_url=url, timeout=30) as http:
            yield http


def assert_one_line_error(r, status, words):
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/json", r.text
    message = r.json()["error"]
    assert words in message and "\n" not in message, r.text


CONTENT_TYPES = [None, "text/plain", "application/x-www-form-urlencoded", "application/json"]
NOT_UTF8 = {"/predict": b'{"items": ["\xff\xfe bad"]}', "/embed": b'{"texts": ["\xff\xfe bad"]}'}


@pytest.mark.parametrize("path", ["/predict", "/embed"])
@pytest.mark.parametrize("content_type", CONTENT_TYPES)
def test_a_body_that_is_not_utf8_gets_400_whatever_its_content_type(client, path,
                                                                    content_type):
    headers = {"content-type": content_type} if content_type else {}
    r = client.post(path, content=NOT_UTF8[path], headers=headers)
    assert_one_line_error(r, 400, "not UTF-8")
    assert_healthy(client)


@pytest.mark.parametrize("path", ["/predict", "/embed"])
@pytest.mark.parametrize("content_type", CONTENT_TYPES[:3])
def test_json_sent_without_a_json_content_type_gets_422_saying_which_to_send(client, path,
                                                                             content_type):
    headers = {"content-type": content_type} if content_type else {}
    r = client.post(path, content=b'{"items": ["a"]}', headers=headers)
    assert_one_line_error(r, 422, "content-type: application/json")
    assert_healthy(client)


@pytest.mark.parametrize("body", [
    b"[" * 100000 + b"]" * 100000,
    b'{"items": [' + b"[" * 5000 + b"]" * 5000 + b"]}",
])
def test_json_nested_too_deeply_gets_400_saying_so(client, body):
    r = client.post("/predict", content=body, headers=JSON)
    assert_one_line_error(r, 400, "nested too deeply")
    assert_healthy(client)


@pytest.mark.parametrize("path, body", [
    ("/predict", b'{"items": [1' + b"0" * 4300 + b"]}"),
    ("/embed", b'{"texts": ["a"], "pooling": -' + b"9" * 5000 + b"}"),
])
def test_a_number_of_more_than_4300_digits_gets_422_saying_so(client, path, body):
    """Valid JSON that Python's int refuses to read (a ValueError, not a JSON decode error)."""
    r = client.post(path, content=body, headers=JSON)
    assert_one_line_error(r, 422, "a number in the request body has more than 4300 digits")
    assert_healthy(client)


def test_validation_errors_are_answered_without_what_json_cannot_hold():
    """The input (bytes that are not UTF-8 here) is left out, an exception in ctx becomes
    its text."""
    errors = [{"type": "value_error", "loc": ("body", "items", 0), "msg": "Value error, no",
               "input": b"\xff\xfe", "ctx": {"error": ValueError("no"), "limit": float("inf"),
                                             "max_length": 2}}]
    got = json.loads(json.dumps(plain_errors(errors), allow_nan=False))
    assert got == [{"type": "value_error", "loc": ["body", "items", 0],
                    "msg": "Value error, no",
                    "ctx": {"error": "no", "limit": "inf", "max_length": 2}}]


# ---- a large request is measured off the event loop -----------------------------------------

class SlowToMeasure(FakeModel):
    """token_count of a long text waits until `release` is set (`measuring` tells it began),
    as a tokenizer does on a long text, only for as long as the test wants."""

    def __init__(self):
        super().__init__("classify")
        self.measuring, self.release = threading.Event(), threading.Event()

    def token_count(self, item):
        if sum(map(len, self._texts(item))) > 1000:
            self.measuring.set()
            assert self.release.wait(60)
        return super().token_count(item)


def test_health_and_small_requests_are_answered_while_a_large_request_is_measured():
    model = SlowToMeasure()
    big = ["长" * 5000, ["甲" * 5000, "乙" * 5000]]
    with running_server(create_app(model)) as url:
        answers = {}

        def post(name, items):
            answers[name] = httpx.post(url + "/predict", json={"items": items}, timeout=120)

        posts = [threading.Thread(target=post, args=("big", big)),
                 threading.Thread(target=post, args=("big, one bad", big + ["  "]))]
        try:
            for t in posts:
                t.start()
            assert model.measuring.wait(30)
            # on the event loop, the measuring would hold these until the test gave up
            assert httpx.get(url + "/health", timeout=10).status_code == 200
            r = httpx.post(url + "/predict", json={"items": ["短"]}, timeout=10)
            assert r.json() == {"results": [model.one("短")]}
            assert all(t.is_alive() for t in posts)  # the large ones still measuring
        finally:
            model.release.set()
            for t in posts:
                t.join(60)
        assert answers["big"].json() == {"results": [model.one(i) for i in big]}
        assert_one_line_error(answers["big, one bad"], 422, "item 2: text is empty")


# ---- a body that stops arriving --------------------------------------------------------------

def read_response(sock):
    """(status, lower-cased head, JSON body) of the HTTP answer coming on `sock`."""
    received = b""

    def more():
        chunk = sock.recv(65536)
        assert chunk, "the server closed the connection mid-answer: %r" % received
        return chunk

    while b"\r\n\r\n" not in received:
        received += more()
    head, _, body = received.partition(b"\r\n\r\n")
    head = head.decode("latin-1").lower()
    length = int(head.split("content-length:")[1].split()[0])
    while len(body) < length:
        body += more()
    return int(head.split()[1]), head, json.loads(body)


def request_head(body_length):
    return (b"POST /predict HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n" % body_length)


def test_a_body_that_stops_arriving_gets_408_and_the_connection_is_closed():
    with running_server(create_app(FakeModel("classify"), body_timeout=1)) as url:
        port = int(url.rsplit(":", 1)[1])
        # a server that waited for the rest of the body forever fails this at the timeout
        with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
            sock.sendall(request_head(100) + b'{"items": [')
            assert httpx.get(url + "/health", timeout=10).status_code == 200  # meanwhile
            status, head, body = read_response(sock)
            assert status == 408 and "connection: close" in head
            assert "stopped arriving" in body["error"] and "\n" not in body["error"]
            assert sock.recv(65536) == b""
        assert httpx.get(url + "/health", timeout=10).status_code == 200


def test_a_slow_body_that_keeps_arriving_and_a_slow_model_are_not_timed_out():
    """The limit bounds each pause of a body, not the whole body, nor what comes after it."""
    gate = Gate()
    model = FakeModel("classify", gate=gate)
    body = json.dumps({"items": ["慢"]}).encode()
    pieces = [body[i:i + 4] for i in range(0, len(body), 4)]
    assert 0.5 * len(pieces) > 2  # the whole body takes longer than the limit

    def release_after_the_limit():
        assert gate.started.wait(30)
        time.sleep(2.5)
        gate.release.set()

    with running_server(create_app(model, body_timeout=2, max_wait_ms=0)) as url:
        port = int(url.rsplit(":", 1)[1])
        threading.Thread(target=release_after_the_limit, daemon=True).start()
        with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
            sock.sendall(request_head(len(body)))
            for piece in pieces:
                time.sleep(0.5)
                sock.sendall(piece)
            status, _, got = read_response(sock)
        assert (status, got) == (200, {"results": [model.one("慢")]})


# ---- a client that disconnects before its answer ---------------------------------------------

class RecordingModel(FakeModel):
    """FakeModel that records every item it predicts."""

    def __init__(self, gate=None):
        super().__init__("classify", gate=gate)
        self.predicted = []

    def predict(self, items):
        self.predicted.extend(items)
        return super().predict(items)


def wait_until(condition, timeout=30):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def send_and_close(port, items, then):
    """Post `items` from a client of its own, call `then()`, and close the connection
    unanswered, as a client that gives up does."""
    body = json.dumps({"items": items}).encode()
    with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
        sock.sendall(request_head(len(body)) + body)
        then()


def test_a_request_whose_client_disconnects_in_the_queue_is_never_run():
    gate = Gate()
    model = RecordingModel(gate)
    app = create_app(model, max_wait_ms=0)
    batcher = app.state.batcher
    with running_server(app) as url:
        first = {}

        def post_first():
            first["answer"] = httpx.post(url + "/predict", json={"items": ["先"]}, timeout=30)

        running = threading.Thread(target=post_first)
        running.start()
        try:
            assert gate.started.wait(30)  # the one model copy is busy with the first
            send_and_close(int(url.rsplit(":", 1)[1]), ["走"],
                           then=lambda: wait_until(lambda: batcher.queued() == 1))
            # the server cancels the request it left behind, still queued
            wait_until(lambda: [r.future.cancelled() for r in list(batcher._queue.queue)]
                       == [True], timeout=10)
        finally:
            gate.release.set()
            running.join(30)
        assert first["answer"].json() == {"results": [model.one("先")]}
        r = httpx.post(url + "/predict", json={"items": ["三"]}, timeout=30)
        assert r.json() == {"results": [model.one("三")]}
        assert httpx.get(url + "/health", timeout=10).status_code == 200
    assert model.predicted == ["先", "三"] and batcher.items_run == 2


@pytest.mark.parametrize("items", [["长" * 5000], ["长" * 20000] * 4])
def test_a_request_whose_client_disconnects_while_it_is_measured_is_never_queued(items):
    """Also with a body of 480 kB, after which uvicorn has stopped reading the connection."""
    model = SlowToMeasure()
    app = create_app(model)
    with running_server(app) as url:
        send_and_close(int(url.rsplit(":", 1)[1]), items,
                       then=lambda: model.measuring.wait(30))
        # answered after the server has read the closed connection (the event loop is free
        # while the measuring thread waits)
        assert httpx.get(url + "/health", timeout=10).status_code == 200
        model.release.set()
        r = httpx.post(url + "/predict", json={"items": ["短"]}, timeout=30)
        assert r.json() == {"results": [model.one("短")]}
    assert app.state.batcher.items_run == 1

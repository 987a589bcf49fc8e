"""An HTTP server for a model folder, with dynamic batching.

    python -m serving.server MODEL_DIR [--host 127.0.0.1] [--port 8000] [--max_batch_size 32]
        [--max_wait_ms 5] [--max_queue 1024] [--model_processes N] [--num_threads N]
        [--model_process true]

Endpoints (JSON in and out):
    GET  /health   {"status": "ok", "task", "labels", "max_seq_len"}
    POST /predict  {"items": [...]} -> {"results": [...]}, an item and a result as
                   serving.api's predict takes and returns them for the folder's task:
                   classify/regress: "text" or ["text_a", "text_b"] -> {"label", "probs":
                   {label: p}} or {"score"}; tag: "text" or [token, ...] -> [[token, label],
                   ...]; mrc: {"question", "context"} -> {"text", "score"}
    POST /embed    {"texts": [...], "pooling": "cls" | "mean"} -> {"results": [{"pooled": [H],
                   "tokens": [[H], ...]}, ...]} (a text may be a pair ["text_a", "text_b"])

Every request is checked before it reaches the model (pydantic schemas, then the model's own
`token_count` per item), and a bad one is answered with a one-line {"error": ...}: 400 for a
body that is not UTF-8 or whose JSON is nested too deeply, 413 for a body larger than the
largest valid request, 422 for one that is not JSON, wrong types (a number of more than 4300
digits included), empty or oversized batches, texts over `max_text_chars` and items the model
rejects; 408 for a body that stops arriving; 503 with Retry-After when `max_queue` requests are
waiting already. A request whose client disconnects before its turn is dropped unrun.
Requests of all clients share model calls through serving.batcher, which by default runs the
model in worker processes (serving.model_process: Paddle keeps Python's lock while it predicts,
which would stop the HTTP handling meanwhile), two copies on a machine of two cores or more, so
that one runs a batch while the other's results go out and its next batch gathers. To scale out
run several servers behind a load balancer.
"""
import asyncio
import errno
import math
import os
import re
import socket
import sys
from contextlib import asynccontextmanager
from typing import Annotated, List, Literal, Union

import numpy as np
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, StrictStr, StringConstraints, create_model
from starlette.exceptions import HTTPException

from serving.batcher import Batcher, QueueFull
from serving.model_process import call_model

# the longest text (in characters) a request may carry: far beyond any max_seq_len, but it
# bounds what one request makes the server tokenize
MAX_TEXT_CHARS = 20000
RETRY_AFTER_SECONDS = 1
# how long a request body may pause between two of its chunks: a client that stops sending
# would otherwise hold its connection (and its handler) forever
BODY_TIMEOUT_SECONDS = 30
# a request with more text than this (in characters) has its items measured in a worker thread,
# so that the event loop answers other requests meanwhile; shorter ones cost less to measure
# than the hop to a thread
INLINE_MEASURE_CHARS = 4000
# the longest --max_wait_ms: a minute, far beyond any use, and short enough for a timeout
MAX_WAIT_MS = 60000


def jsonable(value):
    """`value` with numpy arrays and scalars (and tuples) turned into JSON's lists and numbers."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    return value


def error(status, message, headers=None):
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def client_gone():
    # nginx's "client closed request", for the log's sake: the client is not there to read it
    return error(499, "the client closed the connection")


def plain_errors(errors):
    """pydantic's errors as JSON: without the input (possibly huge, or bytes that are not
    UTF-8), with ctx's values that are not JSON (an exception, say) as text."""
    def plain(value):
        if value is None or isinstance(value, (str, int)) or (
                isinstance(value, float) and math.isfinite(value)):
            return value
        return str(value)

    out = []
    for e in errors:
        entry = {"type": str(e.get("type")), "loc": [plain(p) for p in e.get("loc", ())],
                 "msg": str(e.get("msg"))}
        if isinstance(e.get("ctx"), dict):
            entry["ctx"] = {str(k): plain(v) for k, v in e["ctx"].items()}
        out.append(entry)
    return out


def unparsed_body_error(cause):
    """(status, message) for a body FastAPI could not parse as JSON (its own 400 does not say
    what was wrong), from the exception it failed with."""
    if isinstance(cause, UnicodeDecodeError):
        return 400, "the request body is not UTF-8"
    if isinstance(cause, RecursionError):
        return 400, "the request body's JSON is nested too deeply"
    if isinstance(cause, ValueError) and "integer string conversion" in str(cause):
        # valid JSON, which Python's int refuses to read: a wrong type, as no item is a number
        return 422, ("a number in the request body has more than %d digits"
                     % sys.get_int_max_str_digits())
    return 400, "the request body could not be parsed as JSON (not UTF-8, or nested too deeply)"


def text_chars(item):
    """How many characters the texts of a (validated) request item have."""
    if isinstance(item, str):
        return len(item)
    texts = item.values() if isinstance(item, dict) else item
    return sum(len(t) for t in texts if isinstance(t, str))


def token_counts(model, items):
    """model.token_count of every item; a ValueError names the bad item by its place."""
    counts = []
    for i, item in enumerate(items):
        try:
            counts.append(model.token_count(item))
        except ValueError as e:  # serving.api numbers the one item it was given 0
            raise ValueError("item %d: %s" % (i, re.sub(r"^item 0: ", "", str(e)))) from None
    return counts


async def disconnected(request):
    """Returns once the client of `request`, whose body has been read, closes its connection:
    after the body, the ASGI receive has nothing to return but that disconnect, when it comes
    (so there is nothing to poll). Waiting on it also keeps uvicorn reading the connection,
    which it stops doing after a large body (starlette's is_disconnected then says False)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass


def one_line(errors, limit=3):
    """pydantic's errors as `where: what; ...` (the first `limit` of them)."""
    parts = ["%s: %s" % (".".join(str(p) for p in e.get("loc", ())) or "body", e.get("msg"))
             for e in errors[:limit]]
    more = len(errors) - limit
    return "; ".join(parts) + ("; and %d more" % more if more > 0 else "")


def request_schemas(task, max_items, max_text_chars):
    """The pydantic models of a /predict body for `task` and of an /embed body."""
    text = Annotated[StrictStr, StringConstraints(max_length=max_text_chars)]
    forbid = ConfigDict(extra="forbid")
    text_or_pair = Union[text, Annotated[List[text], Field(min_length=2, max_length=2)]]
    if task in ("classify", "regress"):
        item = text_or_pair
    elif task == "mrc":
        item = create_model("MRCItem", __config__=forbid, question=(text, ...),
                            context=(text, ...))
    else:  # tag: a text or its tokens (encode folders answer /predict with an error)
        item = Union[text, Annotated[List[text], Field(min_length=1)]]
    predict = create_model(
        "PredictRequest", __config__=forbid,
        items=(Annotated[List[item], Field(min_length=1, max_length=max_items)], ...))
    embed = create_model(
        "EmbedRequest", __config__=forbid,
        texts=(Annotated[List[text_or_pair], Field(min_length=1, max_length=max_items)], ...),
        pooling=(Literal["cls", "mean"], "cls"))
    return predict, embed


class BodyLimit:
    """ASGI middleware: 413 for a request body over `max_bytes`: at once when its
    Content-Length says so, else as soon as the body read so far is over; 408 when the
    body, still incomplete, pauses for more than `timeout` seconds."""

    def __init__(self, app, max_bytes, timeout=BODY_TIMEOUT_SECONDS):
        self.app, self.max_bytes, self.timeout = app, max_bytes, timeout

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        length = dict(scope["headers"]).get(b"content-length", b"")
        if length.isdigit() and int(length) > self.max_bytes:
            response = error(413, "request body of %d bytes is too large (limit %d)"
                             % (int(length), self.max_bytes))
            return await response(scope, receive, send)
        seen, complete = 0, False

        # FastAPI passes an HTTPException raised here, while it reads the body, on to
        # create_app's http_error
        async def guarded():
            nonlocal seen, complete
            if complete:  # all that can come now is the client's disconnect, however late
                return await receive()
            try:
                message = await asyncio.wait_for(receive(), self.timeout)
            except TimeoutError:
                # closing: the rest of a body that never came must not be read as the next
                # request on this connection
                raise HTTPException(408, "the request body stopped arriving: nothing came for "
                                    "%g s" % self.timeout, {"Connection": "close"}) from None
            seen += len(message.get("body", b""))
            complete = not message.get("more_body", False)
            if seen > self.max_bytes:
                raise HTTPException(413, "request body too large (limit %d bytes)"
                                    % self.max_bytes)
            return message

        return await self.app(scope, guarded, send)


def create_app(model, max_batch_size=32, max_wait_ms=5, max_queue=1024, max_items=64,
               max_text_chars=MAX_TEXT_CHARS, body_timeout=BODY_TIMEOUT_SECONDS, run=None):
    """The FastAPI app serving `model` (a serving.api model: .task, .labels, .max_seq_len,
    predict, encode, token_count). Its batcher (app.state.batcher) starts now and stops
    with the app. `run(key, items)` makes the model calls (a serving.model_process
    ModelProcess), or a list of such functions, one per model copy, called at once; by
    default the batcher calls `model` in this process. A request body that pauses for more
    than `body_timeout` seconds is answered 408."""
    if run is None:
        def run(key, items):
            return call_model(model, key, items)

    batcher = Batcher(run, max_batch_size=max_batch_size, max_wait_ms=max_wait_ms,
                      max_queue=max_queue)

    @asynccontextmanager
    async def lifespan(app):
        yield
        batcher.close()

    # 413 above the largest valid body: every text at the limit, each character a 12-byte
    # JSON escape (a surrogate pair), two texts an item
    max_body = max_items * 2 * (12 * max_text_chars + 64) + 4096
    app = FastAPI(title="ERNIE %s" % model.task, lifespan=lifespan)
    app.state.batcher = batcher
    app.add_middleware(BodyLimit, max_bytes=max_body, timeout=body_timeout)
    PredictRequest, EmbedRequest = request_schemas(model.task, max_items, max_text_chars)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request, exc):
        # FastAPI parses a body as JSON only when its content-type says JSON, and hands
        # any other on as bytes, which the schema then refuses
        if isinstance(exc.body, (bytes, bytearray)):
            try:
                exc.body.decode("utf-8")
            except UnicodeDecodeError:
                return error(400, "the request body is not UTF-8")
            return error(422, "the body is read as JSON only with content-type: "
                         "application/json (got %s)"
                         % (request.headers.get("content-type") or "no content-type"))
        errors = plain_errors(exc.errors())
        return JSONResponse({"error": one_line(errors), "detail": errors}, status_code=422)

    @app.exception_handler(HTTPException)
    async def http_error(request, exc):
        # this app's only 400 is FastAPI's, for a JSON body it could not parse
        status, message = (unparsed_body_error(exc.__cause__) if exc.status_code == 400
                           else (exc.status_code, str(exc.detail)))
        return error(status, message, getattr(exc, "headers", None))

    async def answer(request, key, items, lengths=None):
        # a client that gives up (while its items are measured, or wait for their turn) must
        # not keep a model copy busy for nobody
        gone = asyncio.create_task(disconnected(request))
        try:
            return await answer_unless(gone, key, items, lengths)
        finally:
            gone.cancel()

    async def answer_unless(gone, key, items, lengths):
        if lengths is None:
            try:
                if sum(map(text_chars, items)) > INLINE_MEASURE_CHARS:
                    lengths = await asyncio.to_thread(token_counts, model, items)
                else:
                    lengths = token_counts(model, items)
            except ValueError as e:
                return error(422, str(e))
        if gone.done():
            return client_gone()
        try:
            future = batcher.submit(key, items, lengths)
        except QueueFull as e:
            return error(503, "server busy: %s; retry later" % e,
                         {"Retry-After": str(RETRY_AFTER_SECONDS)})
        done = asyncio.wrap_future(future)
        try:
            await asyncio.wait([done, gone], return_when=asyncio.FIRST_COMPLETED)
        finally:
            # a no-op once done, else it cancels `future` too, which the batcher then drops
            # unrun unless it runs already (also when this handler is cancelled)
            done.cancel()
        if done.cancelled():
            return client_gone()
        try:
            results = done.result()
        except ValueError as e:
            return error(422, str(e))
        except Exception as e:  # the model failed on this batch: this request fails, not all
            return error(500, "model error: %s: %s" % (type(e).__name__, e))
        return JSONResponse({"results": jsonable(results)})

    @app.get("/health")
    async def health():
        return JSONResponse({"status": "ok", "task": model.task,
                             "labels": jsonable(model.labels),
                             "max_seq_len": model.max_seq_len})

    @app.post("/predict")
    async def predict(body: PredictRequest, request: Request):
        if model.task == "encode":
            return error(404, "this model folder's task is encode: POST /embed")
        items = [i.model_dump() if isinstance(i, BaseModel) else i for i in body.items]
        return await answer(request, "predict", items)

    @app.post("/embed")
    async def embed(body: EmbedRequest, request: Request):
        # model.token_count measures items of the folder's task (an mrc folder's are
        # question-context pairs): texts to embed are measured in characters, enough to
        # group them by length, and checked by model.encode itself (the batcher runs a
        # rejected request's batch again without it)
        lengths = [min(model.max_seq_len, sum(map(len, t)) if isinstance(t, list) else len(t))
                   for t in body.texts]
        return await answer(request, ("encode", body.pooling), body.texts, lengths)

    return app


def model_copies(model_process=True, model_processes=None, num_threads=None):
    """(copies of the model, threads each) for the server's flags on this process' cores: two
    copies when there are two cores or more for them (one when the model runs in the server's
    process), each with the cores divided among them, unless the flags say otherwise."""
    cores = len(os.sched_getaffinity(0))
    if not model_process:
        copies = 1
    elif model_processes:
        copies = model_processes
    else:
        copies = max(1, min(2, cores // (num_threads or 1)))
    return copies, num_threads or max(1, cores // copies)


def check_address(host, port):
    """UsageError unless the server can listen on host:port. uvicorn finds out only once the
    model is loaded, and says so in many lines; this binds as it does (every address `host`
    resolves to, with SO_REUSEADDR) and lets go at once."""
    from utils.errors import UsageError

    def said(reason):  # the OS's "Address already in use" inside our one line
        return reason[:1].lower() + reason[1:]

    try:
        addresses = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                       flags=socket.AI_PASSIVE)
    except UnicodeError:  # a name IDNA cannot encode, such as "a..b"
        raise UsageError("--host %s: not a valid host name" % host) from None
    except OSError as e:
        raise UsageError("--host %s: %s" % (host, said(e.strerror or str(e)))) from None
    for family, kind, proto, _, address in addresses:
        try:
            sock = socket.socket(family, kind, proto)
        except OSError:  # a family this machine lacks, which uvicorn skips too
            continue
        with sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:  # as asyncio's server: IPv4 is bound on its own
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            try:
                sock.bind(address)
            except OSError as e:
                flag = "--host %s" % host if e.errno == errno.EADDRNOTAVAIL else "--port %d" % port
                raise UsageError("%s: %s" % (flag, said(e.strerror or str(e)))) from None


def build_parser():
    from utils.args import PRECISIONS, ArgumentParser, str2bool
    parser = ArgumentParser(prog="python -m serving.server",
                            description="Serve a model folder over HTTP, with dynamic batching.")
    parser.add_argument("model_dir", help="A model folder (python -m serving.export).")
    parser.add_argument("--host", default="127.0.0.1",
                        help="Address to bind; 0.0.0.0 exposes it to the network. "
                             "Default: %(default)s.")
    parser.add_argument("--port", type=int, default=8000, help="Default: %(default)s.")
    parser.add_argument("--max_batch_size", type=int, default=32,
                        help="Items per model call at most; 1 turns batching off. "
                             "Default: %(default)s.")
    parser.add_argument("--max_wait_ms", type=float, default=5.0,
                        help="How long a batch waits for more requests after its first, "
                             "0 to %d. Default: %%(default)s." % MAX_WAIT_MS)
    parser.add_argument("--max_queue", type=int, default=1024,
                        help="Requests waiting at most; more are answered 503. "
                             "Default: %(default)s.")
    parser.add_argument("--max_items", type=int, default=64,
                        help="Items per request at most. Default: %(default)s.")
    parser.add_argument("--model_processes", type=int, default=None,
                        help="Copies of the model, each in a worker process of its own, "
                             "running batches at the same time. Default: 2 when the cores "
                             "allow 2 copies of --num_threads threads, else 1.")
    parser.add_argument("--num_threads", type=int, default=None,
                        help="CPU threads of each model copy. Default: the cores divided "
                             "among the copies.")
    parser.add_argument("--precision", default="fp32", choices=PRECISIONS,
                        help="CPU inference precision: bf16 needs avx512_bf16, int8 a folder "
                             "exported with --precision int8 and VNNI (a CPU without them "
                             "runs fp32). Default: %(default)s.")
    parser.add_argument("--model_process", type=str2bool, default=True,
                        help="Run the model in worker processes, so that HTTP is served "
                             "during model calls (Paddle keeps Python's lock while it runs); "
                             "false: one copy in the server's process. Default: %(default)s.")
    return parser


def main(argv):
    from utils.errors import UsageError
    args = build_parser().parse_args(argv)
    for name in ("max_batch_size", "max_queue", "max_items", "num_threads", "model_processes"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise UsageError("--%s must be >= 1, got %d" % (name, value))
    if not 0 <= args.max_wait_ms <= MAX_WAIT_MS:  # nan too: a batch would never time out
        raise UsageError("--max_wait_ms must be within 0..%d, got %g"
                         % (MAX_WAIT_MS, args.max_wait_ms))
    if not 0 < args.port < 65536:
        raise UsageError("--port must be in 1..65535, got %d" % args.port)

    if args.model_processes is not None and not args.model_process:
        raise UsageError("--model_processes needs --model_process true")
    check_address(args.host, args.port)  # before the model loads, which takes a while

    import uvicorn

    from serving import api
    from serving.model_process import model_identity, start_model_processes
    copies, threads = model_copies(args.model_process, args.model_processes, args.num_threads)
    # checks the folder first; no Paddle in this process when worker processes predict
    model = api.load(args.model_dir, num_threads=threads, predictor=not args.model_process,
                     precision=args.precision)
    # the copies must hold the model /health describes, also after a restart
    runs = start_model_processes(args.model_dir, copies, num_threads=threads,
                                 precision=args.precision,
                                 identity=model_identity(model, args.precision)) \
        if args.model_process else None
    print("serving %s (%s) with %d model %s of %d thread%s" % (
        args.model_dir, model.task, copies, "process" + "es" * (copies > 1) if runs else "copy",
        threads, "s" * (threads > 1)), file=sys.stderr, flush=True)
    app = create_app(model, max_batch_size=args.max_batch_size, max_wait_ms=args.max_wait_ms,
                     max_queue=args.max_queue, max_items=args.max_items, run=runs)
    try:
        uvicorn.run(app, host=args.host, port=args.port, log_level="info")
    finally:
        for run in runs or ():
            run.close()
    return 0


if __name__ == "__main__":
    from utils import paddle_env
    paddle_env.apply()  # before Paddle loads (serving.api imports it): it reads these once

    from utils.errors import run_cli
    run_cli(main, sys.argv[1:])

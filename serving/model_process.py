"""The model in a worker process, so that the HTTP server runs while it predicts.

Paddle Inference keeps Python's lock (the GIL) for the whole of a model call, so a model run
in the server's own process stops its HTTP handling for as long. `ModelProcess(folder)`
starts a process (multiprocessing, "spawn") that loads serving.api.load(folder) itself and
answers calls sent over a pipe; the server's batcher calls it as it would call the model:

    run = ModelProcess("my_model", num_threads=2, precision="fp32")   # returns once loaded
    run("predict", items)              # model.predict(items)
    run(("encode", "mean"), texts)     # model.encode(texts, pooling="mean")
    run.close()
    runs = start_model_processes("my_model", 2, num_threads=1)   # two copies, loaded at once

A call raises what the model raised (ValueError for a bad item). When the process dies in a
call, the call raises ModelProcessDied and the next call starts a new process. That process
loads the folder again, which may hold another model by then (exported over it): every load
reports the digest of the manifest it read (serving.folder.manifest_digest), and when it is
not the first one's (or the `identity` given) every call raises ModelFolderChanged, rather
than answer with a model other than the one the server started with. One call at a time (a
lock): each of the batcher's worker threads has a ModelProcess of its own.
"""
import multiprocessing
import pickle
import signal
import threading


class ModelProcessDied(RuntimeError):
    """The model's process exited during a call (killed, out of memory, a crash)."""


class ModelFolderChanged(RuntimeError):
    """The model folder holds another model than the one first loaded from it."""


def model_identity(model, precision="fp32"):
    """What tells the model a process loaded at `precision` (the one asked for) from another:
    serving.folder.manifest_digest of its folder's manifest, which lists the checksum of every
    file; None for a model without a manifest."""
    manifest = getattr(model, "manifest", None)
    if manifest is None:
        return None
    from serving.folder import manifest_digest
    return manifest_digest(manifest, precision)


def call_model(model, key, items):
    """What the server's batcher asks of a serving.api model: `key` "predict" or
    ("encode", pooling)."""
    if key == "predict":
        return model.predict(items)
    return model.encode(items, pooling=key[1])


def _send(conn, ok, value):
    """Send (ok, value), or a RuntimeError in its place when it cannot cross the pipe."""
    try:
        if not ok:  # an exception class with its own __init__ may not unpickle
            pickle.loads(pickle.dumps(value))
        conn.send((ok, value))
    except (OSError, EOFError):
        raise
    except Exception as e:
        conn.send((False, RuntimeError("%s: %s" % (type(value).__name__, value) if not ok
                                       else "the model's result cannot be sent: %s" % e)))


def _serve(conn, load, folder, num_threads, precision):
    """The worker process: load the folder, then answer (key, items) calls until the pipe
    closes. Sends (True, model_identity(model, precision)) once loaded, (False, exception)
    if loading failed."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C stops the server, which closes us
    from utils import paddle_env
    paddle_env.apply()  # before Paddle loads
    if load is None:
        from serving.api import load
    try:
        model = load(folder, num_threads=num_threads, precision=precision)
    except Exception as e:
        _send(conn, False, e)
        return
    conn.send((True, model_identity(model, precision)))
    while True:
        try:
            key, items = conn.recv()
        except (EOFError, OSError):
            return
        try:
            result = call_model(model, key, items)
        except Exception as e:
            _send(conn, False, e)
        else:
            _send(conn, True, result)


class ModelProcess:
    """serving.api.load(folder) in a worker process, called as run(key, items). `load`: a
    function like serving.api.load that the process can import by name (tests pass a fake).
    `identity`: the model_identity the folder must hold (the server's own model's, at the
    same precision); by default the first load's. Attributes: `identity`, the one every
    restart must find; `changed`, None until a restart finds another, then the
    ModelFolderChanged every call raises."""

    def __init__(self, folder, num_threads=None, load=None, precision="fp32", identity=None):
        self.folder, self.num_threads, self._load = str(folder), num_threads, load
        self.precision = precision
        self.identity, self.changed = identity, None
        self._context = multiprocessing.get_context("spawn")
        self._lock = threading.Lock()
        self._process = self._conn = None
        self.starts = 0  # processes started: for tests and logs
        self._start()

    def _start(self):
        conn, child_conn = self._context.Pipe()
        process = self._context.Process(target=_serve, name="ernie-model", daemon=True,
                                        args=(child_conn, self._load, self.folder,
                                              self.num_threads, self.precision))
        process.start()
        child_conn.close()
        self._process, self._conn = process, conn
        self.starts += 1
        try:
            ok, value = conn.recv()
        except (EOFError, OSError):
            process.join(5)
            ok, value = False, ModelProcessDied("the model process exited (code %s) while "
                                                "loading %s" % (process.exitcode, self.folder))
        if not ok:
            self.close()
            raise value
        if self.starts == 1 and self.identity is None:
            self.identity = value
        elif value != self.identity:
            # for good: the server's /health and its clients know the model it started with
            self.changed = ModelFolderChanged(
                "the model folder %s changed since the server started (its manifest now has "
                "digest %s, not %s); restart the server" % (self.folder, value, self.identity))
            self.close()
            raise self.changed

    def __call__(self, key, items):
        with self._lock:
            if self.changed is not None:
                raise self.changed
            if self._process is None or not self._process.is_alive():
                self.close()
                self._start()
            try:
                self._conn.send((key, items))
                ok, value = self._conn.recv()
            except (EOFError, OSError):
                self._process.join(5)
                code = self._process.exitcode
                self.close()
                raise ModelProcessDied("the model process exited (code %s) during a call; "
                                       "the next call starts another" % code) from None
        if ok:
            return value
        raise value

    def close(self):
        """End the worker process (it exits when its pipe closes)."""
        if self._conn is not None:
            self._conn.close()
        if self._process is not None:
            self._process.join(5)
            if self._process.is_alive():
                self._process.kill()
                self._process.join(5)
        self._process = self._conn = None


def start_model_processes(folder, count, **kwargs):
    """`count` ModelProcess(folder, **kwargs), loading at the same time; if one fails to
    load, the others are closed and its error is raised, and so is ModelFolderChanged if they
    did not all load the same model (the folder was exported over meanwhile)."""
    from concurrent.futures import ThreadPoolExecutor
    with ThreadPoolExecutor(count) as pool:
        futures = [pool.submit(ModelProcess, folder, **kwargs) for _ in range(count)]
    runs, errors = [], []
    for future in futures:
        try:
            runs.append(future.result())
        except Exception as e:
            errors.append(e)
    if not errors and len({run.identity for run in runs}) > 1:
        errors.append(ModelFolderChanged(
            "the model folder %s changed while the server loaded it (manifest digests %s); "
            "start the server again" % (folder, ", ".join(sorted({str(run.identity)
                                                               for run in runs})))))
    if errors:
        for run in runs:
            run.close()
        raise errors[0]
    return runs

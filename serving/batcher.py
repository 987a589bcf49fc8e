"""Dynamic batching: many requests, one model (or several copies of it), one batch at a time
per copy.

Requests (each a list of items, validated and measured by the caller) enter a bounded queue.
The batcher takes the first waiting request, then whatever else arrives within `max_wait_ms`
of it, until the requests taken hold `max_batch_size` items (it waits only when its last
batch held several requests: a lone client would wait for company that never comes). It
sorts their items by length, cuts them into groups that pad little, calls the model once per
group and hands every request its own results, in its own order, through a
`concurrent.futures.Future`. With several copies of the model, one thread gathers batches, each
when a copy is free, and hands it to that copy's thread, so that the next batch fills while
the other copies run.

    batcher = Batcher(run, max_batch_size=32, max_wait_ms=5, max_queue=1024)
    batcher = Batcher([run_1, run_2], ...)          # two model copies, called at once
    future = batcher.submit(key, items, lengths)   # raises QueueFull
    results = future.result()                      # [result of items[0], ...]

`run(key, items) -> [result, ...]` is the model call; `key` says which call (the server uses
"predict" and ("encode", pooling)), and only items of the same key share a call. With
`max_batch_size=1` every item is a call of its own: batching off.
"""
import queue
import threading
import time
from concurrent.futures import Future

# Lengths below this count as this when grouping: short rows cost about the same whatever
# their length, so a batch of them is not split for padding.
MIN_GROUP_LENGTH = 16
# A group ends before an item this many times as long as its shortest: a model call has a
# fixed cost, so a little padding is cheaper than another call.
MAX_PADDING = 2.0


class QueueFull(Exception):
    """The batcher holds `max_queue` requests already: the caller should retry later."""


class _Request:
    __slots__ = ("key", "items", "lengths", "future", "results", "pending")

    def __init__(self, key, items, lengths):
        self.key, self.items, self.lengths = key, items, lengths
        self.future = Future()
        self.results = [None] * len(items)
        self.pending = len(items)


_STOP = object()


def length_groups(lengths, max_batch_size):
    """Indices into `lengths`, shortest first, cut into groups of at most `max_batch_size`; a
    group also ends before an item more than MAX_PADDING times as long as its shortest
    (counting lengths below MIN_GROUP_LENGTH as MIN_GROUP_LENGTH), so no row is padded to
    over MAX_PADDING times its size."""
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    groups, group, floor = [], [], 0
    for i in order:
        length = max(lengths[i], MIN_GROUP_LENGTH)
        if group and (len(group) == max_batch_size or length > MAX_PADDING * floor):
            groups.append(group)
            group = []
        if not group:
            floor = length
        group.append(i)
    if group:
        groups.append(group)
    return groups


class Batcher:
    """A bounded queue of requests, the thread that gathers them into batches, and one thread
    per model copy (`run`: a model call function, or a list of them) that runs its batches."""

    def __init__(self, run, max_batch_size=32, max_wait_ms=5.0, max_queue=1024):
        if max_batch_size < 1 or max_queue < 1:
            raise ValueError("max_batch_size and max_queue must be >= 1, got %r, %r"
                             % (max_batch_size, max_queue))
        # a wait the queue's timeout cannot take (inf, 1e300) would kill the gathering thread,
        # and nan would never end a batch's wait
        if not 0 <= max_wait_ms / 1000.0 <= threading.TIMEOUT_MAX:
            raise ValueError("max_wait_ms must be within 0..%g, got %r"
                             % (threading.TIMEOUT_MAX * 1000, max_wait_ms))
        runs = list(run) if isinstance(run, (list, tuple)) else [run]
        if not runs:
            raise ValueError("a batcher needs at least one model call function")
        self.max_batch_size = max_batch_size
        self.max_wait = max_wait_ms / 1000.0
        self._queue = queue.Queue(maxsize=max_queue)
        self._counting = threading.Lock()
        self.calls = 0       # model calls made, and the items they held: for tests and logs
        self.items_run = 0
        self._closed = False
        self._last_batch_requests = 1
        # the inboxes of the copies free to run a batch, the one freed last at the end
        self._idle = [queue.SimpleQueue() for _ in runs]
        self._idle_changed = threading.Condition()
        self._workers = [threading.Thread(target=self._work, args=(run, inbox), daemon=True,
                                          name="batcher-%d" % i)
                         for i, (run, inbox) in enumerate(zip(runs, self._idle))]
        self._inboxes = list(self._idle)
        self._dispatcher = threading.Thread(target=self._dispatch, name="batcher", daemon=True)
        for thread in self._workers + [self._dispatcher]:
            thread.start()

    def submit(self, key, items, lengths):
        """Queue a request of `items` (already validated) whose token counts are `lengths`;
        returns a Future of their results, in order. Raises QueueFull."""
        if len(items) != len(lengths) or not items:
            raise ValueError("a request needs one length per item and at least one item")
        if self._closed:
            raise RuntimeError("the batcher is closed")
        request = _Request(key, list(items), list(lengths))
        try:
            self._queue.put_nowait(request)
        except queue.Full:
            raise QueueFull("%d requests are waiting" % self._queue.maxsize) from None
        return request.future

    def queued(self):
        return self._queue.qsize()

    def close(self, timeout=5.0):
        """Stop after the requests already queued (they are run first)."""
        self._closed = True
        self._queue.put(_STOP)
        for thread in [self._dispatcher] + self._workers:
            thread.join(timeout)

    # ---- the threads -------------------------------------------------------------------------

    def _dispatch(self):
        """Gather a batch whenever a copy is free, and give it to the copy freed last (its
        memory is the warmest: a lone client keeps one copy busy rather than taking turns)."""
        while True:
            with self._idle_changed:
                self._idle_changed.wait_for(lambda: self._idle)
            first = self._queue.get()
            if first is _STOP:
                break
            requests = [first]
            stop = self._collect(requests)
            # from here on a caller cannot cancel them; the cancelled ones are dropped
            requests = [r for r in requests if r.future.set_running_or_notify_cancel()]
            if requests:
                with self._idle_changed:
                    inbox = self._idle.pop()
                inbox.put(requests)
            if stop:
                break
        for inbox in self._inboxes:
            inbox.put(_STOP)

    def _work(self, run, inbox):
        """A copy's thread: run the batches put in its inbox on `run`."""
        while True:
            requests = inbox.get()
            if requests is _STOP:
                return
            try:
                self._run_requests(run, requests)
            except Exception as exc:  # a bug here fails these requests, not the worker
                for r in requests:
                    if not r.future.done():
                        r.future.set_exception(exc)
            with self._idle_changed:
                self._idle.append(inbox)
                self._idle_changed.notify()

    def _collect(self, requests):
        """Add to `requests` what is queued or arrives within max_wait of the first (no wait
        when the last batch gathered was one request), up to max_batch_size items; True when
        the stop marker came in meanwhile."""
        n_items = len(requests[0].items)
        wait = self.max_wait if self._last_batch_requests > 1 else 0.0
        deadline = time.monotonic() + wait
        while n_items < self.max_batch_size:
            timeout = deadline - time.monotonic()
            try:
                request = (self._queue.get_nowait() if timeout <= 0
                           else self._queue.get(timeout=timeout))
            except queue.Empty:
                break
            if request is _STOP:
                return True
            requests.append(request)
            n_items += len(request.items)
        self._last_batch_requests = len(requests)
        return False

    def _run_requests(self, run, requests):
        """Group the requests' items by key and length, one model call per group."""
        by_key = {}
        for r in requests:
            by_key.setdefault(r.key, []).extend((r, j) for j in range(len(r.items)))
        for key, slots in by_key.items():
            lengths = [r.lengths[j] for r, j in slots]
            for group in length_groups(lengths, self.max_batch_size):
                self._run_group(run, key, [slots[i] for i in group])

    def _run_group(self, run, key, slots):
        """One model call over `slots` [(request, item index)]; when it fails and the items
        come from several requests, each request's items are run again on their own, so
        one bad request fails alone."""
        live = [(r, j) for r, j in slots if not r.future.done()]
        if not live:
            return
        try:
            results = self._call(run, key, [r.items[j] for r, j in live])
        except Exception as exc:
            owners = list(dict.fromkeys(r for r, _ in live))
            if len(owners) == 1:
                owners[0].future.set_exception(exc)
                return
            for owner in owners:
                self._run_group(run, key, [(r, j) for r, j in live if r is owner])
            return
        for (r, j), result in zip(live, results):
            r.results[j] = result
            r.pending -= 1
            if r.pending == 0:
                r.future.set_result(r.results)

    def _call(self, run, key, items):
        results = list(run(key, items))
        if len(results) != len(items):
            raise RuntimeError("the model returned %d results for %d items"
                               % (len(results), len(items)))
        with self._counting:
            self.calls += 1
            self.items_run += len(items)
        return results

"""serving.batcher: every request gets its own results, in order, whatever batch it rode in;
bad requests and model failures fail only their own requests; the worker survives them.

The model here is a function of the text (upper-casing), so a result routed to the wrong
request or item shows. Batches are made deterministic with gates: the model blocks on its
first call until the test has queued everything it wants in the next ones."""
import random
import threading
import time

import pytest

from serving.batcher import MAX_PADDING, MIN_GROUP_LENGTH, Batcher, QueueFull, length_groups


class GatedModel:
    """run(key, items) -> [key-tagged upper-case item]; the first call waits for `release`.
    Records every call's (key, items)."""

    def __init__(self, fail_on=None, error=ValueError):
        self.calls = []
        self.started = threading.Event()
        self.release = threading.Event()
        self.fail_on, self.error = fail_on, error

    def __call__(self, key, items):
        if not self.started.is_set():
            self.started.set()
            assert self.release.wait(30)
        self.calls.append((key, list(items)))
        if self.fail_on is not None and self.fail_on in items:
            raise self.error("bad item %r" % self.fail_on)
        return ["%s:%s" % (key, item.upper()) for item in items]


def first_call_blocked(model, batcher, key="p"):
    """Queue one request and wait until the worker is inside the model with it."""
    future = batcher.submit(key, ["first"], [3])
    assert model.started.wait(30)
    return future


def test_length_groups_cut_by_size_and_by_length():
    lengths = [5, 100, 7, 50, 60, 120]
    assert length_groups(lengths, 32) == [[0, 2], [3, 4, 1], [5]]
    assert length_groups([10] * 5, 2) == [[0, 1], [2, 3], [4]]


def test_length_groups_property_on_random_lengths():
    rng = random.Random(0)
    for _ in range(200):
        lengths = [rng.randint(1, 512) for _ in range(rng.randint(1, 80))]
        size = rng.randint(1, 40)
        groups = length_groups(lengths, size)
        assert sorted(i for g in groups for i in g) == list(range(len(lengths)))
        for g in groups:
            assert 1 <= len(g) <= size
            shortest = max(min(lengths[i] for i in g), MIN_GROUP_LENGTH)
            assert max(lengths[i] for i in g) <= MAX_PADDING * shortest


def test_queued_requests_share_calls_and_get_their_own_results():
    model = GatedModel()
    batcher = Batcher(model, max_batch_size=32, max_wait_ms=0)
    first = first_call_blocked(model, batcher)
    texts = ["text %d" % i for i in range(40)]
    futures = [batcher.submit("p", [t], [8]) for t in texts]
    model.release.set()
    assert first.result(30) == ["p:FIRST"]
    for text, future in zip(texts, futures):
        assert future.result(30) == ["p:" + text.upper()]
    assert [len(items) for _, items in model.calls] == [1, 32, 8]
    batcher.close()


def test_a_request_larger_than_a_batch_is_split_and_reassembled_in_order():
    model = GatedModel()
    model.started.set()
    model.release.set()
    batcher = Batcher(model, max_batch_size=4, max_wait_ms=0)
    items = ["w%d" % i + "x" * (i % 5) for i in range(10)]
    assert batcher.submit("p", items, [len(t) for t in items]).result(30) == \
        ["p:" + t.upper() for t in items]
    assert len(model.calls) == 3 and all(len(c[1]) <= 4 for c in model.calls)
    batcher.close()


def test_a_lone_client_does_not_wait_for_company():
    """max_wait_ms is a minute, but one request at a time never waits for it (the results'
    timeout is half a minute)."""
    batcher = Batcher(lambda key, items: items, max_batch_size=32, max_wait_ms=60000)
    for i in range(5):
        assert batcher.submit("p", ["t%d" % i], [2]).result(30) == ["t%d" % i]
    batcher.close()


def test_batching_off_runs_one_item_a_call():
    model = GatedModel()
    batcher = Batcher(model, max_batch_size=1, max_wait_ms=5)
    first = first_call_blocked(model, batcher)
    futures = [batcher.submit("p", ["a%d" % i, "b%d" % i], [3, 3]) for i in range(5)]
    model.release.set()
    assert first.result(30) == ["p:FIRST"]
    assert [f.result(30) for f in futures] == [["p:A%d" % i, "p:B%d" % i] for i in range(5)]
    assert all(len(items) == 1 for _, items in model.calls)
    batcher.close()


def test_keys_never_share_a_call():
    model = GatedModel()
    batcher = Batcher(model, max_batch_size=32, max_wait_ms=0)
    first = first_call_blocked(model, batcher)
    futures = [(key, batcher.submit(key, ["t%d" % i], [4]))
               for i, key in enumerate(["p", ("e", "cls"), "p", ("e", "mean")] * 3)]
    model.release.set()
    first.result(30)
    for i, (key, future) in enumerate(futures):
        assert future.result(30) == ["%s:T%d" % (key, i)]
    # one call per key, holding all of that key's requests (and the keys tag every result)
    assert sorted((str(key), len(items)) for key, items in model.calls[1:]) == \
        [("('e', 'cls')", 3), ("('e', 'mean')", 3), ("p", 6)]
    batcher.close()


@pytest.mark.parametrize("error", [ValueError, RuntimeError])
def test_a_failing_request_fails_alone_and_the_worker_goes_on(error):
    model = GatedModel(fail_on="bad", error=error)
    batcher = Batcher(model, max_batch_size=32, max_wait_ms=0)
    first = first_call_blocked(model, batcher)
    good = [batcher.submit("p", ["g%d" % i, "h%d" % i], [3, 3]) for i in range(3)]
    bad = batcher.submit("p", ["ok", "bad"], [3, 3])
    more = batcher.submit("p", ["last"], [3])
    model.release.set()
    first.result(30)
    with pytest.raises(error, match="bad item"):
        bad.result(30)
    assert [f.result(30) for f in good] == [["p:G%d" % i, "p:H%d" % i] for i in range(3)]
    assert more.result(30) == ["p:LAST"]
    assert batcher.submit("p", ["after"], [3]).result(30) == ["p:AFTER"]
    batcher.close()


def test_a_model_returning_the_wrong_number_of_results_fails_its_requests_only():
    calls = []

    def run(key, items):
        calls.append(items)
        return items[:-1] if "short" in items else items

    batcher = Batcher(run, max_batch_size=8, max_wait_ms=0)
    with pytest.raises(RuntimeError, match="returned 1 results for 2 items"):
        batcher.submit("p", ["a", "short"], [1, 1]).result(30)
    assert batcher.submit("p", ["b"], [1]).result(30) == ["b"]
    batcher.close()


def test_a_full_queue_refuses_and_the_accepted_requests_complete():
    model = GatedModel()
    batcher = Batcher(model, max_batch_size=1, max_wait_ms=0, max_queue=2)
    first = first_call_blocked(model, batcher)
    waiting = [batcher.submit("p", ["w%d" % i], [2]) for i in range(2)]
    with pytest.raises(QueueFull):
        batcher.submit("p", ["refused"], [2])
    model.release.set()
    assert first.result(30) == ["p:FIRST"]
    assert [f.result(30) for f in waiting] == [["p:W0"], ["p:W1"]]
    batcher.close()


def test_a_cancelled_request_is_dropped_without_harm():
    model = GatedModel()
    batcher = Batcher(model, max_batch_size=32, max_wait_ms=0)
    first = first_call_blocked(model, batcher)
    gone = batcher.submit("p", ["gone"], [2])
    kept = batcher.submit("p", ["kept"], [2])
    assert gone.cancel()
    model.release.set()
    first.result(30)
    assert kept.result(30) == ["p:KEPT"]
    assert all("gone" not in items for _, items in model.calls)
    batcher.close()


def test_concurrent_submitters_each_get_their_own_answers():
    """16 threads, 50 requests each of 1-3 random texts, batching on: all answered, each with
    its own texts' results."""
    batcher = Batcher(lambda key, items: [t[::-1] for t in items], max_batch_size=8,
                      max_wait_ms=1)
    failures = []

    def client(seed):
        rng = random.Random(seed)
        for _ in range(50):
            items = ["".join(rng.choice("abcdef") for _ in range(rng.randint(1, 40)))
                     for _ in range(rng.randint(1, 3))]
            got = batcher.submit("p", items, [len(t) for t in items]).result(30)
            if got != [t[::-1] for t in items]:
                failures.append((items, got))

    threads = [threading.Thread(target=client, args=(s,)) for s in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not failures
    assert batcher.items_run >= 16 * 50
    batcher.close()


def test_several_model_copies_run_batches_at_the_same_time():
    """Two copies: while copy 0 holds a batch, copy 1 takes the next requests as one batch
    and answers them; then copy 0 finishes its own."""
    inside, release = threading.Event(), threading.Event()
    calls = []

    def copy(n):
        def run(key, items):
            calls.append((n, list(items)))
            if "slow" in items:
                inside.set()
                assert release.wait(30)
            return [t.upper() for t in items]
        return run

    batcher = Batcher([copy(0), copy(1)], max_batch_size=32, max_wait_ms=0)
    slow = batcher.submit("p", ["slow"], [4])
    assert inside.wait(30)
    quick = [batcher.submit("p", ["q%d" % i], [2]) for i in range(3)]
    assert [f.result(30) for f in quick] == [["Q0"], ["Q1"], ["Q2"]]
    assert not slow.done()
    release.set()
    assert slow.result(30) == ["SLOW"]
    slow_copy = next(n for n, items in calls if items == ["slow"])
    assert {n for n, items in calls if items != ["slow"]} == {1 - slow_copy}
    batcher.close()
    assert not any(w.is_alive() for w in batcher._workers)


def test_a_batch_gathers_once_however_many_copies_are_free():
    """While a batch gathers (waiting for more requests, since the last batch held several),
    a copy that becomes free takes none of them: they stay one batch."""
    copy0, copy1 = GatedModel(), GatedModel()
    batcher = Batcher([copy0, copy1], max_batch_size=3, max_wait_ms=60000)
    first = batcher.submit("p", ["first"], [5])
    deadline = time.monotonic() + 30
    while not (copy0.started.is_set() or copy1.started.is_set()):
        assert time.monotonic() < deadline
        time.sleep(0.01)
    busy, free = (copy0, copy1) if copy0.started.is_set() else (copy1, copy0)
    second = batcher.submit("p", ["second"], [6])
    assert free.started.wait(30)  # both copies now hold a request
    pair = [batcher.submit("p", [t], [1]) for t in ("b", "c")]
    busy.release.set()  # b and c go together: the last batch then held two requests
    assert first.result(30) == ["p:FIRST"] and [f.result(30) for f in pair] == [["p:B"], ["p:C"]]
    d = batcher.submit("p", ["d"], [1])  # the batch of d waits for two more
    free.release.set()
    assert second.result(30) == ["p:SECOND"]
    rest = [batcher.submit("p", [t], [1]) for t in ("e", "f")]
    assert [f.result(30) for f in [d] + rest] == [["p:D"], ["p:E"], ["p:F"]]
    calls = busy.calls + free.calls
    assert ("p", ["d", "e", "f"]) in calls and len(calls) == 4
    batcher.close()


def test_a_lone_client_keeps_to_the_copy_freed_last():
    """One request at a time: each goes to the copy that answered the last one (its memory
    is warm), not to the copies in turn."""
    used = []

    def copy(n):
        return lambda key, items: used.append(n) or list(items)

    batcher = Batcher([copy(0), copy(1), copy(2)], max_batch_size=32, max_wait_ms=5)
    for i in range(20):
        assert batcher.submit("p", ["t%d" % i], [2]).result(30) == ["t%d" % i]
        deadline = time.monotonic() + 30
        while len(batcher._idle) < 3:  # the copy is free again once it has answered
            assert time.monotonic() < deadline
            time.sleep(0.001)
    assert len(set(used)) == 1 and len(used) == 20
    batcher.close()


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError):
        Batcher(lambda k, i: i, max_batch_size=0)
    batcher = Batcher(lambda k, i: i)
    with pytest.raises(ValueError):
        batcher.submit("p", [], [])
    with pytest.raises(ValueError):
        batcher.submit("p", ["a"], [1, 2])
    batcher.close()
    with pytest.raises(RuntimeError, match="closed"):
        batcher.submit("p", ["a"], [1])


@pytest.mark.parametrize("max_wait_ms", [float("inf"), float("nan"), -1, 1e300])
def test_a_wait_the_queue_cannot_time_is_refused(max_wait_ms):
    """inf and 1e300 would kill the gathering thread at its first timed wait (the queue's
    timeout overflows), nan would never end a wait."""
    with pytest.raises(ValueError, match="max_wait_ms must be within 0.."):
        Batcher(lambda k, i: i, max_wait_ms=max_wait_ms)

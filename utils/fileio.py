"""Atomic file writes: a reader never sees a half-written output, a killed run leaves the old
file (or none) in place."""
import contextlib
import os


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary sibling path to write; it replaces `path` only if the block succeeds."""
    tmp = "%s.tmp-%d" % (path, os.getpid())
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def atomic_write_text(path, text):
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)

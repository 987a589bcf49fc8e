"""A progress bar on stderr for evaluation and prediction, shown only on a terminal."""
import sys
import time


def progress(iterable, total=None, desc="", stream=None):
    """Yield from `iterable`, redrawing `desc [=====>    ] 12/40 3.1 it/s` when stream is a tty."""
    stream = stream or sys.stderr
    if not stream.isatty():
        yield from iterable
        return
    start, done, width = time.time(), 0, 30
    for item in iterable:
        yield item
        done += 1
        rate = done / max(1e-9, time.time() - start)
        if total:
            filled = int(width * min(done, total) / total)
            bar = "=" * filled + (">" if filled < width else "") + " " * (width - filled - 1)
            stream.write("\r%s [%s] %d/%d %.1f it/s" % (desc, bar[:width], done, total, rate))
        else:
            stream.write("\r%s %d %.1f it/s" % (desc, done, rate))
        stream.flush()
    if done:
        stream.write("\n")
        stream.flush()

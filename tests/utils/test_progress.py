"""The progress bar draws on a terminal and stays silent otherwise."""
import io

from utils.progress import progress


class Tty(io.StringIO):
    def isatty(self):
        return True


def test_silent_when_not_a_terminal():
    stream = io.StringIO()
    assert list(progress(range(5), 5, "dev", stream=stream)) == list(range(5))
    assert stream.getvalue() == ""


def test_draws_on_a_terminal():
    stream = Tty()
    assert list(progress(range(4), 4, "dev", stream=stream)) == list(range(4))
    out = stream.getvalue()
    assert out.count("\r") == 4 and "4/4" in out and out.endswith("\n")

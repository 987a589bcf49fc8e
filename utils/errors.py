"""Errors a user can act on, and the command-line wrapper that prints them as one line.

Every entry point runs its `main` through `run_cli`: a `UsageError` (bad flag, missing
path) exits with 2, a `DataError` (a file whose content is wrong) exits with 1, and both
print a single line to stderr. `--debug` on the command line (or ERNIE_DEBUG=1) shows the
traceback instead.
"""
import os
import sys


class ErnieError(Exception):
    """Base class: the message is meant for the user, as it is."""
    exit_code = 1


class UsageError(ErnieError):
    """A flag, an environment variable or a path given on the command line is wrong."""
    exit_code = 2


class DataError(ErnieError):
    """A file's content is wrong: name the file (and line) in the message."""
    exit_code = 1


def where(path, line=None):
    """`path` or `path:line`, the prefix every data error starts with."""
    return "%s:%d" % (path, line) if line is not None else str(path)


def run_cli(main, argv=None):
    """Run `main(argv)`; turn ErnieError (and a few OS errors) into one line and an exit code."""
    argv = sys.argv[1:] if argv is None else list(argv)
    debug = "--debug" in argv or os.environ.get("ERNIE_DEBUG") == "1"
    if "--debug" in argv:
        argv.remove("--debug")
    try:
        rc = main(argv)
    except ErnieError as e:
        if debug:
            raise
        print("error: %s" % e, file=sys.stderr)
        sys.exit(e.exit_code)
    except FileNotFoundError as e:
        if debug:
            raise
        print("error: %s: no such file or directory" % (e.filename or e), file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        sys.exit(130)
    sys.exit(rc or 0)

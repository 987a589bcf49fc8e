"""Errors a user can act on, and the command-line wrapper that prints them as one line.

Every entry point runs its `main` through `run_cli`: a `UsageError` (bad flag, missing
path) exits with 2, a `DataError` (a file whose content is wrong) exits with 1, and both
print a single line to stderr. `--debug` (or `--debug true`) on the command line, or
ERNIE_DEBUG=1, shows the traceback before that line; the exit code stays the same. Ctrl-C
(SIGINT) and `kill` (SIGTERM) stop the run the same way: the exception unwinds through the
same clean-up (temporary files and folders removed, no partial step_N), and one line says
which (`error: interrupted`, exit 130; `error: terminated`, exit 143).
"""
import importlib.abc
import importlib.util
import os
import signal
import sys
import threading
import traceback


class ErnieError(Exception):
    """Base class: the message is meant for the user, as it is."""
    exit_code = 1


class UsageError(ErnieError):
    """A flag, an environment variable or a path given on the command line is wrong."""
    exit_code = 2


class DataError(ErnieError):
    """A file's content is wrong: name the file (and line) in the message."""
    exit_code = 1


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the program is, as Ctrl-C raises KeyboardInterrupt: a subclass, so
    that whatever handles an interruption handles this one too."""


def _raise_terminated(signum, frame):
    raise Terminated()


def _handle_sigterm():
    """SIGTERM raises Terminated in the main thread (Python runs signal handlers there only)."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _raise_terminated)


class _AfterPaddleImport(importlib.abc.MetaPathFinder):
    """Re-installs the SIGTERM handler once Paddle has loaded, for the entry points that import
    it inside `main`: importing Paddle puts its own C-level SIGTERM handler over any set
    before, and that one prints a C++ stack dump and never runs the clean-up."""

    def find_spec(self, name, path=None, target=None):
        if name != "paddle":
            return None
        sys.meta_path.remove(self)      # once; find_spec below asks the other finders
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.loader is not None:
            exec_module = spec.loader.exec_module

            def exec_then_handle(module):
                exec_module(module)
                _handle_sigterm()

            spec.loader.exec_module = exec_then_handle
        return spec


def where(path, line=None):
    """`path` or `path:line`, the prefix every data error starts with."""
    return "%s:%d" % (path, line) if line is not None else str(path)


# the words every boolean flag takes (utils.args.str2bool, and --debug here)
TRUE_WORDS = ("true", "t", "1", "yes", "y")
FALSE_WORDS = ("false", "f", "0", "no", "n")


def _pop_debug(argv):
    """Take `--debug`, `--debug true|false` or `--debug=true|false` out of `argv`; is it on?"""
    words = dict([(w, True) for w in TRUE_WORDS] + [(w, False) for w in FALSE_WORDS])
    on = False
    for i in range(len(argv) - 1, -1, -1):
        arg = argv[i]
        if arg.startswith("--debug=") and arg[8:].lower() in words:
            on = on or words[arg[8:].lower()]
            del argv[i]
        elif arg == "--debug":
            value = argv[i + 1].lower() if i + 1 < len(argv) else None
            if value in words:
                on = on or words[value]
                del argv[i + 1]
            else:
                on = True
            del argv[i]
    return on


def run_cli(main, argv=None):
    """Run `main(argv)`; turn ErnieError (and a few OS errors) into one line and an exit code."""
    argv = sys.argv[1:] if argv is None else list(argv)
    debug = _pop_debug(argv) or os.environ.get("ERNIE_DEBUG") == "1"
    # Paddle's import installs a SIGTERM handler of its own (a C++ stack dump, no clean-up).
    # The entry points import Paddle before they call run_cli, so this one replaces it; for
    # those that import it later, inside main, the finder sets this one again after it.
    previous = signal.getsignal(signal.SIGTERM)
    _handle_sigterm()
    finder = None
    if "paddle" not in sys.modules:
        finder = _AfterPaddleImport()
        sys.meta_path.insert(0, finder)
    try:
        rc = main(argv)
    except ErnieError as e:
        if debug:
            traceback.print_exc()
        print("error: %s" % e, file=sys.stderr)
        sys.exit(e.exit_code)
    except FileNotFoundError as e:
        if debug:
            traceback.print_exc()
        print("error: %s: no such file or directory" % (e.filename or e), file=sys.stderr)
        sys.exit(1)
    except OSError as e:  # what the checks before the work cannot foresee: EACCES as root, EIO
        if debug:
            traceback.print_exc()
        where = "%s: " % e.filename if e.filename else ""
        said = e.strerror or str(e)
        print("error: %s%s" % (where, said[:1].lower() + said[1:]), file=sys.stderr)
        sys.exit(1)
    except Terminated:
        print("error: terminated", file=sys.stderr)
        sys.exit(128 + signal.SIGTERM)
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        sys.exit(130)
    finally:
        # a caller that runs main in-process (the tests) gets its own handling back
        if finder in sys.meta_path:
            sys.meta_path.remove(finder)
        if previous is not None and threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, previous)
    sys.exit(rc or 0)

"""Command-line flags the 2019 way: grouped by purpose, booleans take an explicit value."""
import argparse
import re

from utils.errors import UsageError

TRUE_WORDS = ("true", "t", "1", "yes", "y")
FALSE_WORDS = ("false", "f", "0", "no", "n")


def str2bool(value):
    """`--do_train true`: true/false, t/f, 1/0, yes/no (any case)."""
    if isinstance(value, bool):
        return value
    word = str(value).strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise argparse.ArgumentTypeError("expected true or false, got %r" % value)


class ArgumentParser(argparse.ArgumentParser):
    """argparse, but a bad command line raises UsageError (one `error: ...` line, exit 2,
    through utils.errors.run_cli) instead of printing the usage text and exiting; and a
    negative number in exponent form (`--learning_rate -1e-3`) is a value, not a flag, so
    that the flag's own check can say what is wrong with it."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._negative_number_matcher = re.compile(r"^-(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$")

    def error(self, message):
        raise UsageError(message)


class ArgumentGroup(object):
    """A titled group of flags; `add_arg("epoch", int, 3, "...")` registers `--epoch`."""

    def __init__(self, parser, title, des):
        self._group = parser.add_argument_group(title=title, description=des)

    def add_arg(self, name, type, default, help, positional_arg=False, **kwargs):
        prefix = "" if positional_arg else "--"
        type = str2bool if type == bool else type
        self._group.add_argument(prefix + name, default=default, type=type,
                                 help=help + " Default: %(default)s.", **kwargs)


def print_arguments(args):
    print("-----------  Configuration Arguments -----------")
    for name, value in sorted(vars(args).items()):
        print("%s: %s" % (name, value))
    print("-" * 48)


def require(args, *names):
    """Fail with a usage error naming the first of `names` that is unset."""
    for name in names:
        if getattr(args, name, None) in (None, ""):
            raise UsageError("--%s is required" % name)

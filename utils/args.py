"""Command-line flags the 2019 way: grouped by purpose, booleans take an explicit value."""
import argparse
import math
import os
import re

from utils.errors import FALSE_WORDS, TRUE_WORDS, UsageError


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

    def add_arg(self, name, type, default, help, positional_arg=False, default_text=None,
                **kwargs):
        """`default_text` describes a default that depends on other flags (the value is then
        None, resolved after parsing)."""
        prefix = "" if positional_arg else "--"
        type = str2bool if type is bool else type
        self._group.add_argument(prefix + name, default=default, type=type,
                                 help=help + " Default: %s." % (default_text or "%(default)s"),
                                 **kwargs)


def print_arguments(args):
    print("-----------  Configuration Arguments -----------")
    for name, value in sorted(vars(args).items()):
        print("%s: %s" % (name, value))
    print("-" * 48)


# CPU inference precisions (utils.inference.Predictor); here so that parsers need no Paddle
PRECISIONS = ("fp32", "bf16", "int8")
MAX_SEED = 2 ** 32 - 1     # numpy's (and so the readers') seeds are unsigned 32-bit


def check_positive(args, *names):
    """Each named flag that is set must be a positive number (NaN is not)."""
    for name in names:
        value = getattr(args, name)
        if value is not None and not value > 0:
            raise UsageError("--%s must be positive, got %s" % (name, value))


def check_learning_rate(args):
    """--learning_rate must be a positive finite number (a NaN rate would only show later,
    as a NaN loss; a negative one climbs the loss)."""
    if not (math.isfinite(args.learning_rate) and args.learning_rate > 0):
        raise UsageError("--learning_rate must be a positive finite number, got %s"
                         % args.learning_rate)


def check_weight_decay(args):
    """--weight_decay must be a finite number >= 0 (NaN would show only as a NaN loss)."""
    decay = getattr(args, "weight_decay", 0.0)  # flags without it decay nothing
    if not (math.isfinite(decay) and decay >= 0):
        raise UsageError("--weight_decay must be a finite number >= 0, got %s" % decay)


def check_max_seq_len(max_seq_len, least=3):
    """--max_seq_len must hold `least` tokens: [CLS] a token [SEP] for the task readers and a
    model folder, a whole pair for pretraining data."""
    if max_seq_len < least:
        raise UsageError("--max_seq_len must be at least %d, got %d" % (least, max_seq_len))


def check_seed(args):
    """--random_seed, when given, must be in 0..2**32-1 (what numpy and Paddle accept)."""
    seed = getattr(args, "random_seed", None)
    if seed is not None and not 0 <= seed <= MAX_SEED:
        raise UsageError("--random_seed must be an integer in 0..%d, got %s" % (MAX_SEED, seed))


# --is_classify's help, where the flag is left to follow --is_regression
IS_CLASSIFY_DEFAULT = "true, or false when --is_regression true is given"


def resolve_is_classify(args):
    """--is_classify left out (None) is the opposite of --is_regression: a user who asks for a
    regression head does not also have to switch the classification head off. Both given true
    (or both false) is still refused, by the scripts' own checks."""
    if args.is_classify is None:
        args.is_classify = not args.is_regression
    return args


def check_head_flags(args):
    """Exactly one of the two heads, once --is_classify has been resolved."""
    if args.is_classify == args.is_regression:
        raise UsageError("exactly one of --is_classify and --is_regression must be true")


# the path flags that name a folder (a checkpoint, a parameter folder or a model folder); every
# other flag check_files is given names a file
FOLDER_FLAGS = ("init_checkpoint", "init_pretraining_params")


def check_files(args, *names):
    """Each named flag that is set must point at an existing path (comma lists allowed): a
    folder for FOLDER_FLAGS, a file for the others."""
    for name in names:
        value = getattr(args, name, None)
        if not value:
            continue
        for path in str(value).split(","):
            if not os.path.exists(path):
                raise UsageError("--%s: %s does not exist" % (name, path))
            if name not in FOLDER_FLAGS and os.path.isdir(path):
                raise UsageError("--%s: %s is a folder, not a file" % (name, path))

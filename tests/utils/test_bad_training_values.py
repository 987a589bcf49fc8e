"""Learning rates, warmup and seeds that make no sense are usage errors naming the flag, in
the shared checks (utils.args, finetune.runner) and in the optimizer itself (utils.optimization)."""
import argparse
import math

import pytest

from finetune.runner import check_finetune_args
from utils.args import MAX_SEED, check_learning_rate, check_positive, check_seed
from utils.errors import UsageError
from utils.optimization import make_lr_schedule
from utils.runtime import set_seed


def finetune_args(**change):
    args = dict(do_train=True, do_val=False, do_test=False, ernie_config_path="c.json",
                vocab_path="v.txt", train_set="t.tsv", dev_set=None, test_set=None,
                batch_size=2, predict_batch_size=None, epoch=1, max_seq_len=8, skip_steps=1,
                save_steps=1, validation_steps=1, in_tokens=False, learning_rate=5e-5,
                warmup_proportion=0.1, random_seed=None, init_checkpoint=None,
                init_pretraining_params=None, sentence_piece_model=None)
    args.update(change)
    return argparse.Namespace(**args)


@pytest.mark.parametrize("value", [-1e-3, 0.0, math.nan, math.inf, -math.inf])
def test_learning_rate_must_be_positive_and_finite(value):
    with pytest.raises(UsageError, match=r"^--learning_rate must be a positive finite number, "
                                         r"got %s$" % value):
        check_finetune_args(finetune_args(learning_rate=value))
    with pytest.raises(UsageError, match="--learning_rate"):
        check_learning_rate(argparse.Namespace(learning_rate=value))
    with pytest.raises(UsageError, match="--learning_rate"):
        make_lr_schedule(value, 10, 100)


@pytest.mark.parametrize("value", [-0.5, 5.0, 1.0001, math.nan])
def test_warmup_proportion_must_be_within_0_and_1(value):
    with pytest.raises(UsageError, match=r"^--warmup_proportion .* must be in \[0, 1\], got "
                                         r"%s$" % value):
        check_finetune_args(finetune_args(warmup_proportion=value))


@pytest.mark.parametrize("value", [0.0, 0.1, 1.0])
def test_warmup_proportions_that_make_sense(value, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for name in ("c.json", "v.txt", "t.tsv"):
        (tmp_path / name).write_text("x")
    check_finetune_args(finetune_args(warmup_proportion=value))


def test_negative_warmup_steps_in_the_optimizer():
    with pytest.raises(UsageError, match=r"^--warmup_steps must not be negative, got -2$"):
        make_lr_schedule(1e-3, -2, 100)
    assert make_lr_schedule(1e-3, 0, 100) == 1e-3


@pytest.mark.parametrize("seed", [-1, 2 ** 32, 2 ** 64])
def test_seeds_outside_32_bits(seed):
    message = r"^--random_seed must be an integer in 0\.\.4294967295, got %d$" % seed
    with pytest.raises(UsageError, match=message):
        set_seed(seed)
    with pytest.raises(UsageError, match=message):
        check_seed(argparse.Namespace(random_seed=seed))
    with pytest.raises(UsageError, match=message):
        check_finetune_args(finetune_args(random_seed=seed))


def test_seeds_at_the_ends_of_the_range():
    assert MAX_SEED == 2 ** 32 - 1
    for seed in (0, MAX_SEED, None):
        set_seed(seed)
        check_seed(argparse.Namespace(random_seed=seed))


def test_check_positive_rejects_nan():
    with pytest.raises(UsageError, match="--epoch must be positive, got nan"):
        check_positive(argparse.Namespace(epoch=math.nan), "epoch")

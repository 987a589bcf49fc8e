"""train.py (ERNIE 1.0 pretraining) --resume auto: a run killed with SIGKILL, twice, and resumed
ends with the same parameters, optimizer state and train state, bit for bit, as the
uninterrupted run (dropout on, validation during training). Data: the repository's 2019 demo
file and vocabulary, a tiny config."""
import re
import sys

import pytest

from ernie_testkit import (
    REPO,
    checkpoint_differences,
    kill_nine_after_checkpoint,
    run_ok,
    write_demo_filelists,
    write_tiny_pretraining_config,
)

TRAIN_STEP = re.compile(r"^epoch: \d+, progress: \d+/\d+, step: (\d+), ", re.M)
STEPS = 30


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    d = tmp_path_factory.mktemp("pretrain_resume")
    write_demo_filelists(d, valid_lines=40)
    write_tiny_pretraining_config(d / "ernie_config.json")
    return d


def command(d, checkpoints, *extra):
    return [sys.executable, str(REPO / "train.py"), "--use_cuda", "false",
            "--train_filelist", d / "train_filelist", "--valid_filelist", d / "valid_filelist",
            "--vocab_path", REPO / "config" / "vocab.txt",
            "--ernie_config_path", d / "ernie_config.json", "--max_seq_len", 160,
            "--batch_size", 2048, "--random_seed", 1, "--num_train_steps", STEPS,
            "--warmup_steps", 4, "--learning_rate", 5e-3, "--skip_steps", 2,
            "--save_steps", 4, "--validation_steps", 5, "--checkpoints", checkpoints] + \
        list(extra)


@pytest.mark.slow
def test_kill_nine_and_resume_is_bit_exact(setup):
    d = setup
    run_ok(command(d, d / "full"))
    checkpoints = d / "killed"
    resume = command(d, checkpoints, "--resume", "auto")
    # killed twice: once after its first checkpoint, once after the resumed run saved again
    first = kill_nine_after_checkpoint(resume, checkpoints)
    assert first is not None, "the run ended before it could be killed"
    second = kill_nine_after_checkpoint(resume, checkpoints, after=first, delay=0.05)
    assert second is not None, "the resumed run ended before it could be killed"
    killed_at = int(second.rsplit("_", 1)[1])
    assert killed_at < STEPS

    out = run_ok(resume)
    resumed = re.search(r"^Resuming at step (\d+) \(epoch (\d+), batch (\d+) of it\)$", out,
                        re.M)
    assert resumed and int(resumed.group(1)) == killed_at, out[-2000:]
    assert "replaying the %d batches already trained on" % killed_at in out
    steps = [int(s) for s in TRAIN_STEP.findall(out)]
    assert steps and min(steps) > killed_at and max(steps) == STEPS
    assert "[validation_set]" in out

    final = "step_%d" % STEPS
    assert (checkpoints / final).is_dir()
    assert len(list((checkpoints / final).iterdir())) > 20
    assert checkpoint_differences(d / "full" / final, checkpoints / final) == []
    # every checkpoint the resumed runs wrote is the uninterrupted run's
    for path in checkpoints.iterdir():
        assert re.fullmatch(r"step_\d+", path.name), path
        assert checkpoint_differences(d / "full" / path.name, path) == [], path.name

"""A run killed with SIGKILL at random moments and resumed with --resume auto ends with the
same parameters, optimizer state and train state, bit for bit, as the uninterrupted run
(dropout on); two runs with the same
seed agree; damaged checkpoints are refused or skipped."""
import os
import random
import re
import shutil
import subprocess

import numpy as np
import pytest

from ernie_testkit import (
    REPO,
    checkpoint_differences,
    kill_nine_after_checkpoint,
    review_classifier_command,
    write_review_task,
)
from utils.checkpoint import verify_checkpoint
from utils.errors import DataError
from utils.format_paddle2019 import read_legacy_dir
from utils.resume import latest_checkpoint


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    return write_review_task(tmp_path_factory.mktemp("resume"), 40)


def command(d, checkpoints, *extra):
    return review_classifier_command(d, checkpoints, 3, 5, 3, *extra)


def final_params(checkpoints):
    return read_legacy_dir(str(checkpoints / "step_60"))  # 80 examples / 4 x 3 epochs


def train_log(output):
    return [ln for ln in output.splitlines() if ln.startswith("epoch:") and "progress" in ln]


@pytest.fixture(scope="module")
def uninterrupted(setup):
    out = subprocess.run(command(setup, setup / "full"), capture_output=True, text=True,
                         timeout=300, cwd=REPO)
    assert out.returncode == 0, out.stderr[-2000:]
    return final_params(setup / "full"), out.stdout


@pytest.mark.slow
def test_same_seed_same_logs_and_parameters(setup, uninterrupted):
    params, stdout = uninterrupted
    again = subprocess.run(command(setup, setup / "again"), capture_output=True, text=True,
                           timeout=300, cwd=REPO)
    assert again.returncode == 0
    strip_speed = lambda lines: [ln.split(", speed:")[0] for ln in lines]  # noqa: E731
    assert strip_speed(train_log(again.stdout)) == strip_speed(train_log(stdout))
    other = final_params(setup / "again")
    assert all(np.array_equal(params[k], other[k]) for k in params)


@pytest.mark.slow
def test_kill_nine_and_resume_is_bit_exact(setup, uninterrupted):
    params, _ = uninterrupted
    checkpoints = setup / "killed"
    rng = random.Random(0)
    kills = 0
    while kills < 5:
        before = latest_checkpoint(str(checkpoints))
        # wait for progress past the last checkpoint, then kill at a random moment
        if kill_nine_after_checkpoint(command(setup, checkpoints, "--resume", "auto"),
                                      checkpoints, after=before,
                                      delay=rng.uniform(0.0, 0.1)) is None:
            break  # finished before we could kill it
        kills += 1
        # every step_N is a whole checkpoint; a save cut short is only a step_N.tmp-PID folder
        for path in checkpoints.iterdir():
            if re.fullmatch(r"step_\d+", path.name):
                verify_checkpoint(str(path))
            else:
                assert re.fullmatch(r"step_\d+\.tmp-\d+", path.name), path
    finish = subprocess.run(command(setup, checkpoints, "--resume", "auto"), cwd=REPO,
                            capture_output=True, text=True, timeout=300)
    assert finish.returncode == 0, finish.stderr[-2000:]
    assert kills >= 3, "the run finished before it could be interrupted often enough"
    # and the next run cleared what the killed ones left half-written
    assert all(re.fullmatch(r"step_\d+", p.name) for p in checkpoints.iterdir())
    resumed = final_params(checkpoints)
    assert sorted(resumed) == sorted(params)
    assert all(np.array_equal(params[k], resumed[k]) for k in params)
    # Adam's moments and beta powers, the learning-rate schedule, the step and data position
    assert checkpoint_differences(setup / "full" / "step_60", checkpoints / "step_60") == []


@pytest.mark.slow
def test_damaged_checkpoints(setup, uninterrupted, tmp_path):
    ckpt = tmp_path / "step_60"
    shutil.copytree(setup / "full" / "step_60", ckpt)
    with open(ckpt / "_cls_out_w", "r+b") as f:
        f.truncate(os.path.getsize(ckpt / "_cls_out_w") - 4)
    with pytest.raises(DataError, match="_cls_out_w"):
        verify_checkpoint(str(ckpt))
    # --resume auto passes over it to the newest whole one
    shutil.copytree(setup / "full" / "step_57", tmp_path / "step_57")
    assert latest_checkpoint(str(tmp_path)) == str(tmp_path / "step_57")
    # and --init_checkpoint refuses it with one line
    out = subprocess.run(command(setup, tmp_path / "new", "--init_checkpoint", str(ckpt)),
                         capture_output=True, text=True, timeout=300, cwd=REPO)
    assert out.returncode == 1 and out.stderr.strip().splitlines()[-1].startswith("error:")
    assert "Traceback" not in out.stderr

"""run_mrc.py --resume auto: a run killed with SIGKILL after its first checkpoint and resumed
ends with the same parameters and optimizer state, bit for bit, as the uninterrupted run
(dropout on, validation during training); --resume takes only `auto`."""
import json
import re
import subprocess
import sys

import pytest

import run_mrc
from ernie_testkit import REPO, checkpoint_differences, kill_nine_after_checkpoint, write_tiny_model
from tools.prepare_data import build_mrc
from utils.errors import run_cli
from utils.format_paddle2019 import read_legacy_dir


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    d = tmp_path_factory.mktemp("mrc_resume")
    build_mrc(str(d), seed=1, max_lines=30, verbose=False)
    texts = [p["context"] + q["question"]
             for name in ("train", "dev")
             for a in json.loads((d / "pd_qa" / ("%s.json" % name)).read_text("utf-8"))["data"]
             for p in a["paragraphs"] for q in p["qas"]]
    write_tiny_model(d / "model", texts, max_pos=64)   # dropout 0.1
    return d


def flags(d, checkpoints):
    return ["--use_cuda", "false", "--for_cn", "true", "--do_train", "true", "--do_val", "true",
            "--train_set", d / "pd_qa" / "train.json", "--dev_set", d / "pd_qa" / "dev.json",
            "--vocab_path", d / "model" / "vocab.txt",
            "--ernie_config_path", d / "model" / "ernie_config.json",
            "--max_seq_len", 64, "--doc_stride", 24, "--max_query_length", 16,
            "--batch_size", 8, "--epoch", 2, "--learning_rate", 1e-3,
            "--warmup_proportion", 0.2, "--skip_steps", 5, "--save_steps", 3,
            "--validation_steps", 4, "--random_seed", 7, "--checkpoints", checkpoints]


def command(d, checkpoints, *extra):
    return [sys.executable, str(REPO / "run_mrc.py")] + \
        [str(f) for f in flags(d, checkpoints) + list(extra)]


def final_checkpoint(checkpoints):
    return max(checkpoints.glob("step_*"), key=lambda p: int(p.name[5:]))


@pytest.fixture(scope="module")
def uninterrupted(setup):
    out = subprocess.run(command(setup, setup / "full"), capture_output=True, text=True,
                         timeout=300, cwd=REPO)
    assert out.returncode == 0, out.stderr[-2000:]
    return final_checkpoint(setup / "full")


@pytest.mark.slow
def test_kill_nine_and_resume_is_bit_exact(setup, uninterrupted):
    checkpoints = setup / "killed"
    killed = kill_nine_after_checkpoint(command(setup, checkpoints, "--resume", "auto"),
                                        checkpoints)
    assert killed is not None, "the run ended before it could be killed"
    killed_at = int(killed.rsplit("_", 1)[1])
    final_step = int(uninterrupted.name[5:])
    assert killed_at < final_step

    finish = subprocess.run(command(setup, checkpoints, "--resume", "auto"), cwd=REPO,
                            capture_output=True, text=True, timeout=300)
    assert finish.returncode == 0, finish.stderr[-2000:]
    # it continued from a checkpoint inside an epoch, so the data position matters
    resumed_line = re.search(r"^Resuming at step (\d+) \(epoch (\d+), batch (\d+) of it\)$",
                             finish.stdout, re.M)
    assert resumed_line and int(resumed_line.group(1)) == killed_at, finish.stdout[-2000:]
    assert int(resumed_line.group(3)) > 0
    # the resumed run saved only what came after the restored step
    train_steps = [int(m) for m in re.findall(r"^epoch: \d+, progress: \d+/\d+, step: (\d+),",
                                              finish.stdout, re.M)]
    assert train_steps and min(train_steps) > killed_at

    resumed = final_checkpoint(checkpoints)
    assert resumed.name == uninterrupted.name
    assert len(read_legacy_dir(str(uninterrupted))) > 10
    # parameters, optimizer tensors and LR schedule, train_state.json: bit for bit
    assert checkpoint_differences(uninterrupted, resumed) == []
    # and the final dev predictions agree
    assert (checkpoints / "dev_predictions.json").read_text("utf-8") == \
        (setup / "full" / "dev_predictions.json").read_text("utf-8")


def test_resume_takes_only_auto(setup, tmp_path, capsys):
    argv = [str(f) for f in flags(setup, tmp_path / "ckpt")] + ["--resume", "latest"]
    with pytest.raises(SystemExit) as e:
        run_cli(run_mrc.main, argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert e.value.code == 2 and len(err) == 1, err
    assert "--resume takes the value 'auto'" in err[0]
    assert not (tmp_path / "ckpt").exists()

"""run_sequence_labeling.py --resume auto: a run killed with SIGKILL in its first epoch, then
again inside a later one (whose shuffle the reader must restore), and resumed ends with the
same parameters, optimizer state and train state, bit for bit, as the uninterrupted run
(dropout on, validation during training), and evaluates the same."""
import re
import sys

import pytest

from ernie_testkit import (
    PEOPLE_DAILY,
    REPO,
    checkpoint_differences,
    kill_nine_after_checkpoint,
    run_ok,
    write_tiny_model,
)
from tools.prepare_data import build_ner

EVAL_LINE = re.compile(r"^\[dev evaluation\] f1: .*, steps: \d+$", re.M)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    d = tmp_path_factory.mktemp("ner_resume")
    build_ner(str(d), path=PEOPLE_DAILY, max_lines=120, verbose=False)
    rows = (d / "msra_ner" / "train.tsv").read_text(encoding="utf-8").splitlines()[1:]
    write_tiny_model(d / "model", [r.split("\t")[0].replace("\x02", "") for r in rows])
    return d   # dropout 0.1


def command(d, checkpoints, *extra):
    data = d / "msra_ner"
    return [sys.executable, str(REPO / "run_sequence_labeling.py"), "--use_cuda", "false",
            "--do_train", "true", "--do_val", "true", "--do_test", "false",
            "--train_set", data / "train.tsv", "--dev_set", data / "dev.tsv",
            "--label_map_config", data / "label_map.json", "--num_labels", 7,
            "--chunk_scheme", "IOB", "--vocab_path", d / "model" / "vocab.txt",
            "--ernie_config_path", d / "model" / "ernie_config.json", "--max_seq_len", 32,
            "--batch_size", 8, "--epoch", 3, "--learning_rate", 5e-3,
            "--warmup_proportion", 0.2, "--skip_steps", 5, "--save_steps", 3,
            "--validation_steps", 7, "--random_seed", 7, "--checkpoints", checkpoints] + \
        list(extra)


def last_step(checkpoints):
    return max(int(p.name[5:]) for p in checkpoints.glob("step_*"))


@pytest.mark.slow
def test_kill_nine_and_resume_is_bit_exact(setup):
    d = setup
    full_out = run_ok(command(d, d / "full"))
    final = last_step(d / "full")
    checkpoints = d / "killed"
    resume = command(d, checkpoints, "--resume", "auto")
    first = kill_nine_after_checkpoint(resume, checkpoints)
    assert first is not None, "the run ended before it could be killed"
    per_epoch = final // 3
    second = kill_nine_after_checkpoint(resume, checkpoints, at_least=per_epoch + 2,
                                        delay=0.05)
    assert second is not None, "the resumed run ended before it could be killed"
    killed_at = int(second.rsplit("_", 1)[1])
    assert per_epoch < killed_at < final

    out = run_ok(resume)
    resumed = re.search(r"^Resuming at step (\d+) \(epoch (\d+), batch (\d+) of it\)$", out,
                        re.M)
    assert resumed and int(resumed.group(1)) == killed_at, out[-2000:]
    # past the first epoch, inside one: the data position and that epoch's shuffle matter
    assert int(resumed.group(2)) >= 1 and int(resumed.group(3)) > 0
    steps = [int(s) for s in re.findall(r"^epoch: \d+, progress: \d+/\d+, step: (\d+),", out,
                                        re.M)]
    assert steps and min(steps) > killed_at

    assert last_step(checkpoints) == final
    assert len(list((checkpoints / ("step_%d" % final)).iterdir())) > 20
    # every checkpoint of the killed and resumed runs is the uninterrupted run's
    for path in checkpoints.iterdir():
        assert re.fullmatch(r"step_\d+", path.name), path
        assert checkpoint_differences(d / "full" / path.name, path) == [], path.name
    # and the final evaluation agrees
    strip = lambda line: re.sub(r", elapsed time: [\d.]+ s", "", line)  # noqa: E731
    assert strip(EVAL_LINE.findall(out)[-1]) == strip(EVAL_LINE.findall(full_out)[-1])

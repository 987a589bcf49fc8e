"""`kill PID` (SIGTERM) stops an entry point the way Ctrl-C does: one `error: terminated` line,
exit 143, the same clean-up (no partial step_N folder, no temporary leftovers), and none of
Paddle's own fatal-signal report (its "C++ Traceback" block), which Paddle's import installs."""
import re
import signal
import subprocess
import sys
import time

import pytest

from ernie_testkit import REPO, review_classifier_command, write_review_task


def terminate(proc, timeout):
    """SIGTERM to `proc`; its stderr once it has exited (killed if it does not in `timeout`)."""
    try:
        proc.send_signal(signal.SIGTERM)
        return proc.communicate(timeout=timeout)[1]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def assert_terminated(proc, stderr):
    assert proc.returncode == 128 + signal.SIGTERM, stderr[-3000:]
    lines = stderr.strip().splitlines()
    assert lines and lines[-1] == "error: terminated", stderr[-3000:]
    for text in ("C++ Traceback", "Error Message Summary", "Traceback (most recent"):
        assert text not in stderr, stderr[-3000:]


@pytest.mark.slow
def test_training_run_terminated(tmp_path):
    from utils.checkpoint import verify_checkpoint
    from utils.resume import latest_checkpoint

    d = write_review_task(tmp_path, 40)
    checkpoints = tmp_path / "checkpoints"
    # a checkpoint every step, so that the signal is as likely to come during a save as not
    proc = subprocess.Popen([str(c) for c in review_classifier_command(
        d, checkpoints, epoch=5, skip_steps=1, save_steps=1)], cwd=REPO,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 300
        while not list(checkpoints.glob("step_*/manifest.json")):
            assert proc.poll() is None, proc.stderr.read()[-3000:]
            assert time.time() < deadline, "no checkpoint after 5 minutes"
            time.sleep(0.05)
        time.sleep(0.3)
        assert proc.poll() is None, "the run ended before it could be terminated"
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    assert_terminated(proc, terminate(proc, 120))
    # what the run left: whole checkpoints, and no partial step_N. A signal that lands in the
    # instant a save's temporary folder is made or renamed can leave that folder (a `.tmp-`
    # name no run takes for a checkpoint); the next run's resume clears or restores it.
    latest_checkpoint(str(checkpoints))
    names = sorted(p.name for p in checkpoints.iterdir())
    assert not [n for n in names if re.search(r"\.(tmp|old|del)-\d+$", n)], names
    steps = [n for n in names if re.fullmatch(r"step_\d+", n)]
    assert steps, names
    for name in steps:
        verify_checkpoint(str(checkpoints / name))


@pytest.mark.slow
def test_paddle_imported_inside_main(tmp_path):
    """An entry point that imports Paddle only in main (after run_cli has set its handler,
    which Paddle's import replaces) is terminated the same way."""
    script = tmp_path / "lazy.py"
    script.write_text(
        "import sys, time\nsys.path.insert(0, %r)\nfrom utils.errors import run_cli\n\n\n"
        "def main(argv):\n    import paddle  # noqa: F401\n    print('ready', flush=True)\n"
        "    time.sleep(60)\n\n\nrun_cli(main)\n" % str(REPO))
    proc = subprocess.Popen([sys.executable, str(script)], cwd=tmp_path, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if proc.stdout.readline().strip() != "ready":
        proc.kill()
        pytest.fail(proc.communicate()[1][-3000:])
    assert_terminated(proc, terminate(proc, 60))

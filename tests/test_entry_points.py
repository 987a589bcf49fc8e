"""Every command a user runs answers --help with its usage and exit 0, in a process of its own
(so an import that fails only outside the test process would show)."""
import subprocess
import sys

import pytest

from ernie_testkit import REPO

SCRIPTS = ["run_classifier.py", "run_sequence_labeling.py", "run_mrc.py", "train.py",
           "ernie_encoder.py", "predict_classifier.py", "predict_sequence_labeling.py"]
MODULES = ["tools.prepare_data", "tools.pretrain_data", "tools.convert_params",
           "tools.plot_logs", "tools.demo_report", "utils.squad_eval", "utils.cmrc2018_eval",
           "serving.export", "serving.server"]


@pytest.mark.parametrize("command", [[s] for s in SCRIPTS] + [["-m", m] for m in MODULES],
                         ids=lambda c: c[-1])
@pytest.mark.slow
def test_help_prints_usage_and_exits_0(command):
    proc = subprocess.run([sys.executable, *command, "--help"], cwd=str(REPO),
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.startswith("usage: "), proc.stdout[:500]
    assert "Traceback" not in proc.stderr

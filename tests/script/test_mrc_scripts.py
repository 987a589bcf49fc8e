"""script/zh_task/ernie_{base,large}/run_{drcd,cmrc2018}.sh: the 2019 settings reach run_mrc.py,
extra arguments override them, a run writes its predictions, missing inputs stop it."""
import os
import shutil
import subprocess
import sys

import pytest

from ernie_testkit import REPO, write_random_params, write_tiny_model
from tools.prepare_data import build_mrc

SCRIPTS = REPO / "script" / "zh_task"


@pytest.fixture(scope="module")
def task_data(tmp_path_factory):
    """TASK_DATA_PATH with drcd/ and cmrc2018/ (People's Daily QA), MODEL_PATH with params/."""
    d = tmp_path_factory.mktemp("mrc_scripts")
    build_mrc(str(d / "build"), seed=1, max_lines=30, verbose=False)
    for task in ("drcd", "cmrc2018"):
        shutil.copytree(d / "build" / "pd_qa", d / "data" / task)
    texts = [p.read_text(encoding="utf-8") for p in (d / "build" / "pd_qa").iterdir()]
    write_tiny_model(d / "model", texts)
    write_random_params(d / "model")
    return d


def run_script(path, task_data, cwd, *extra):
    env = dict(os.environ, MODEL_PATH=str(task_data / "model"),
               TASK_DATA_PATH=str(task_data / "data"), PYTHON=sys.executable)
    env.pop("CUDA_VISIBLE_DEVICES", None)
    return subprocess.run(["sh", str(path)] + list(extra), cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("task,base_lr", [("drcd", "5e-5"), ("cmrc2018", "3e-5")])
def test_large_differs_from_base_by_cards_batch_and_rate(task, base_lr):
    """2019: Base 4 cards x 16, Large 8 cards x 8, both at 3e-5 except Base DRCD at 5e-5."""
    base = (SCRIPTS / "ernie_base" / ("run_%s.sh" % task)).read_text()
    large = (SCRIPTS / "ernie_large" / ("run_%s.sh" % task)).read_text()
    want = (base.replace("ERNIE 1.0 Base settings of 2019 (4 cards x 16)",
                         "ERNIE Large settings of 2019 (8 cards x 8)")
            .replace(":-0,1,2,3}", ":-0,1,2,3,4,5,6,7}")
            .replace("--batch_size 16 ", "--batch_size 8 ")
            .replace("--learning_rate %s " % base_lr, "--learning_rate 3e-5 "))
    assert want != base and large == want


@pytest.mark.slow
def test_drcd_script_runs_with_2019_settings(task_data, tmp_path):
    proc = run_script(SCRIPTS / "ernie_base" / "run_drcd.sh", task_data, tmp_path,
                      "--epoch", "1", "--max_seq_len", "64", "--max_query_length", "16")
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    args = dict(line.split(": ", 1) for line in proc.stdout.splitlines()
                if line.count(": ") == 1 and not line.startswith("["))
    expected = {"batch_size": "16", "learning_rate": "5e-05", "epoch": "1", "max_seq_len": "64",
                "doc_stride": "128", "weight_decay": "0.01", "warmup_proportion": "0.0",
                "validation_steps": "100", "save_steps": "1000", "skip_steps": "10",
                "do_lower_case": "True", "for_cn": "True", "max_query_length": "16"}
    assert {k: args.get(k) for k in expected} == expected
    assert args["test_set"].endswith("drcd/test.json")
    assert "Final validation result:" in proc.stdout and "Final test result:" in proc.stdout
    assert "[test evaluation] em: " in proc.stdout
    assert (tmp_path / "checkpoints" / "test_predictions.json").exists()


def test_cmrc2018_script_stops_without_inputs(task_data, tmp_path):
    env = dict(os.environ, PYTHON=sys.executable)
    env.pop("MODEL_PATH", None)
    env.pop("TASK_DATA_PATH", None)
    missing = subprocess.run(["sh", str(SCRIPTS / "ernie_base" / "run_cmrc2018.sh")], cwd=tmp_path,
                             env=env, capture_output=True, text=True, timeout=60)
    assert missing.returncode == 2 and "set MODEL_PATH" in missing.stderr
    own = tmp_path / "task_data"   # a copy: the module's task data stays whole for other tests
    shutil.copytree(task_data / "data", own / "data")
    (own / "model").symlink_to(task_data / "model")
    os.remove(own / "data" / "cmrc2018" / "dev.json")
    proc = run_script(SCRIPTS / "ernie_large" / "run_cmrc2018.sh", own, tmp_path)
    assert proc.returncode == 2 and "cmrc2018/dev.json not found" in proc.stderr
    assert not (tmp_path / "checkpoints").exists()
    assert (task_data / "data" / "cmrc2018" / "dev.json").exists()

"""script/zh_task/ernie_{base,large}/run_msra_ner.sh: the 2019 settings reach
run_sequence_labeling.py, extra arguments override them, and a run writes its test output."""
import os
import subprocess
import sys

import pytest

from ernie_testkit import PEOPLE_DAILY, REPO, write_random_params, write_tiny_model
from tools.prepare_data import build_ner


@pytest.fixture(scope="module")
def task_data(tmp_path_factory):
    """TASK_DATA_PATH with msra_ner/ from 60 corpus lines, and a MODEL_PATH with params/."""
    d = tmp_path_factory.mktemp("msra")
    build_ner(str(d / "data"), path=PEOPLE_DAILY, max_lines=60, verbose=False)
    texts = (d / "data" / "msra_ner" / "train.tsv").read_text(encoding="utf-8").splitlines()
    write_tiny_model(d / "model", [t.split("\t")[0].replace("\x02", "") for t in texts[1:]])
    write_random_params(d / "model")
    return d


def test_large_differs_from_base_by_the_learning_rate_only():
    base = (REPO / "script/zh_task/ernie_base/run_msra_ner.sh").read_text().splitlines()
    large = (REPO / "script/zh_task/ernie_large/run_msra_ner.sh").read_text().splitlines()
    diff = [(a, b) for a, b in zip(base, large) if a != b]
    assert len(base) == len(large) and len(diff) == 2, diff
    assert "Base" in diff[0][0] and "Large" in diff[0][1]
    assert diff[1][0].replace("--learning_rate 5e-5", "--learning_rate 1e-5") == diff[1][1]


@pytest.mark.slow
def test_msra_ner_script(task_data, tmp_path, size="base", lr="5e-05"):
    env = dict(os.environ, MODEL_PATH=str(task_data / "model"),
               TASK_DATA_PATH=str(task_data / "data"), PYTHON=sys.executable)
    env.pop("CUDA_VISIBLE_DEVICES", None)
    proc = subprocess.run(["sh", str(REPO / ("script/zh_task/ernie_%s/run_msra_ner.sh" % size)),
                           "--epoch", "1", "--max_seq_len", "32"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    args = dict(line.split(": ", 1) for line in proc.stdout.splitlines()
                if line.count(": ") == 1 and not line.startswith("["))
    expected = {"batch_size": "16", "learning_rate": lr, "epoch": "1", "max_seq_len": "32",
                "num_labels": "7", "chunk_scheme": "IOB", "weight_decay": "0.01",
                "warmup_proportion": "0.0", "validation_steps": "100", "save_steps": "100000",
                "random_seed": "1", "skip_steps": "10"}
    assert {k: args.get(k) for k in expected} == expected
    assert args["label_map_config"].endswith("msra_ner/label_map.json")
    assert "Final test result:" in proc.stdout
    assert list((tmp_path / "checkpoints").glob("test_result.0.*"))

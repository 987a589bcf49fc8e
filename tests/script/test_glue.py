"""script/en_glue: cvt.py on a raw-GLUE-shaped folder, then task.sh runs on its output."""
import os
import subprocess
import sys

import pytest

from ernie_testkit import GLUE_SENTS as SENTS
from ernie_testkit import REPO, raw_glue


@pytest.fixture(scope="module")
def glue(tmp_path_factory):
    root = tmp_path_factory.mktemp("glue")
    raw_glue(root / "raw")
    proc = subprocess.run(["sh", str(REPO / "script/en_glue/preprocess/cvt.sh"),
                           str(root / "raw")], cwd=root, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return root / "glue_data_processed"


def read(path):
    lines = path.read_text(encoding="utf-8").splitlines()
    return lines[0].split("\t"), [ln.split("\t") for ln in lines[1:]]


def test_cvt_layouts(glue):
    assert read(glue / "CoLA/train.tsv") == (["label", "text_a"],
                                             [[str(i % 2), t] for i, t in enumerate(SENTS)])
    head, rows = read(glue / "CoLA/test.tsv")
    assert head == ["qid", "text_a", "label"] and rows[1] == ["1", SENTS[1], "-1"]
    assert read(glue / "SST-2/dev.tsv")[1][0] == ["0", SENTS[0]]
    assert read(glue / "MRPC/train.tsv")[1][1] == [SENTS[1], SENTS[2], "1"]
    assert read(glue / "STS-B/train.tsv")[1][2] == [SENTS[2], SENTS[3], "1.8"]
    assert read(glue / "STS-B/test.tsv")[1][0] == ["0", SENTS[0], SENTS[1], "-1"]
    assert len(read(glue / "QQP/train.tsv")[1]) == 5  # the broken row is skipped
    assert read(glue / "MNLI/train.tsv")[1][:3] == [[SENTS[0], SENTS[1], "0"],
                                                   [SENTS[1], SENTS[2], "1"],
                                                   [SENTS[2], SENTS[3], "2"]]
    assert read(glue / "MNLI/m/dev.tsv")[1][0][2] == "1"  # gold label is the last column
    assert read(glue / "MNLI/mm/test.tsv")[0] == ["qid", "text_a", "text_b", "label"]
    assert read(glue / "QNLI/dev.tsv")[1][1][2] == "0"
    assert read(glue / "RTE/train.tsv")[1][0][2] == "1"
    assert read(glue / "WNLI/test.tsv")[1][0] == ["0", SENTS[0], SENTS[1], "-1"]
    assert read(glue / "MNLI/diagnostic.tsv")[1][0][-1] == "-1"


@pytest.mark.parametrize("task,outputs", [
    ("CoLA", ["output/test_out.1.3e-5.64.3.*.tsv.*"]),
    ("STS-B", ["output/test_out.1.5e-5.16.3.*.tsv.*"]),
    ("MNLI", ["output/test_out.1.m.tsv.*", "output/test_out.1.mm.tsv.*",
              "output/test_out.1.m.diagnostic.tsv"]),
])
@pytest.mark.slow
def test_task_script_runs(glue, english_model, tmp_path, task, outputs):
    env = dict(os.environ, MODEL_PATH=str(english_model), TASK_DATA_PATH=str(glue), RUNS="1",
               PYTHON=sys.executable)
    proc = subprocess.run(["sh", str(REPO / "script/en_glue/ernie_base" / task / "task.sh"),
                           "--epoch", "1", "--batch_size", "4", "--max_seq_len", "32"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "[dev evaluation]" in proc.stdout
    logs = list((tmp_path / "log").glob("job.1.*.log"))
    assert len(logs) == 1 and "[dev evaluation]" in logs[0].read_text()
    for pattern in outputs:
        assert list(tmp_path.glob(pattern)), (pattern, sorted(p.name for p in tmp_path.rglob("*")))

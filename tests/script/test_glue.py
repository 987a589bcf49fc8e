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


# ---- RUNS and the seed of each run (glue_task.sh), through the fake PYTHON (conftest.py) ----

MRPC = "en_glue/ernie_base/MRPC/task.sh"


def seeds(argv):
    """Every --random_seed value in argv, in order (argparse takes the last)."""
    return [argv[i + 1] for i, a in enumerate(argv) if a == "--random_seed"]


@pytest.mark.parametrize("runs", ["x", "0", "00", "-1", "2.5", " 3"])
def test_runs_must_be_a_positive_integer(fake, tmp_path, runs):
    proc, counts, runs_launched = fake(MRPC, RUNS=runs)
    assert (proc.returncode, proc.stderr) == (
        2, "error: RUNS must be a positive integer, got %s\n" % runs), proc.stdout
    assert counts == runs_launched == []
    assert not (tmp_path / "log").exists() and not (tmp_path / "output").exists()


def test_run_i_trains_with_seed_i_and_the_users_seed_wins(fake, tmp_path):
    proc, _, runs = fake(MRPC, RUNS="03")
    assert proc.returncode == 0, proc.stderr
    assert [seeds(run["argv"]) for run in runs] == [["1"], ["2"], ["3"]]
    # runs of different seeds are different runs: each has a checkpoint folder of its own
    assert [run["argv"][run["argv"].index("--checkpoints") + 1] for run in runs] == [
        "./checkpoints/run_1", "./checkpoints/run_2", "./checkpoints/run_3"]
    assert sorted(p.name.split(".")[1] for p in (tmp_path / "log").iterdir()) == ["1", "2", "3"]

    proc, _, runs = fake(MRPC, "--random_seed", "9", RUNS="3")
    assert proc.returncode == 0, proc.stderr
    assert [seeds(run["argv"])[-1] for run in runs] == ["9", "9", "9"]


@pytest.mark.slow
def test_runs_differ(glue, english_model, tmp_path):
    """Two runs of the real script on CPU: their test predictions are not the same numbers."""
    env = dict(os.environ, MODEL_PATH=str(english_model), TASK_DATA_PATH=str(glue), RUNS="2",
               PYTHON=sys.executable)
    proc = subprocess.run(["sh", str(REPO / "script/en_glue/ernie_base/SST-2/task.sh"),
                           "--epoch", "1", "--batch_size", "2", "--max_seq_len", "32"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    outputs = {}
    for path in (tmp_path / "output").glob("test_out.*"):
        outputs.setdefault(path.name.split(".")[1], []).append(path)
    assert sorted(outputs) == ["1", "2"], sorted(p.name for p in tmp_path.rglob("*"))
    first, second = (max(outputs[run], key=lambda p: int(p.name.rsplit(".", 1)[1]))
                     for run in ("1", "2"))
    assert first.read_text() != second.read_text()


# ---- cvt.sh on something that is not the GLUE download --------------------------------------

CVT = str(REPO / "script/en_glue/preprocess/cvt.sh")


def test_cvt_missing_folder(tmp_path):
    missing = tmp_path / "nonexistent"
    proc = subprocess.run(["sh", CVT, str(missing)], cwd=tmp_path, capture_output=True,
                          text=True)
    assert (proc.returncode, proc.stderr) == (
        2, "error: %s: no such folder (GLUE_DIR must be the raw GLUE download)\n" % missing)
    assert list(tmp_path.iterdir()) == []


def test_cvt_folder_without_glue_tasks(tmp_path):
    raw = tmp_path / "raw"
    (raw / "cola").mkdir(parents=True)    # not the download's CoLA
    work = tmp_path / "work"
    work.mkdir()
    proc = subprocess.run(["sh", CVT, str(raw)], cwd=work, capture_output=True, text=True)
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr == (
        "error: %s holds none of the GLUE tasks (CoLA, SST-2, MRPC, STS-B, QQP, MNLI, QNLI, "
        "RTE, WNLI, diagnostic); is it the raw GLUE download folder?\n" % raw)
    assert proc.stdout == "" and list(work.iterdir()) == []


def test_cvt_task_folder_missing_a_file(tmp_path):
    raw_glue(tmp_path / "raw")
    (tmp_path / "raw/SST-2/dev.tsv").unlink()
    work = tmp_path / "work"
    work.mkdir()
    proc = subprocess.run(["sh", CVT, str(tmp_path / "raw")], cwd=work, capture_output=True,
                          text=True)
    assert proc.returncode == 1
    assert proc.stderr == "error: %s: No such file or directory\n" % (
        tmp_path / "raw/SST-2/dev.tsv")
    # what was written is whole: no temporary file is left beside it
    assert not [p for p in work.rglob("*") if ".tmp-" in p.name]

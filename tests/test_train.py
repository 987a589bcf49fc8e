"""train.py on the real 2019 demo data with a tiny config: the masked LM loss falls, the 2019 log
lines parse, checkpoints (periodic and final), the MODEL_PATH export, --do_test, errors, and
script/zh_task/pretrain.sh."""
import contextlib
import gzip
import io
import json
import os
import subprocess
import sys

import pytest

import train
from ernie_testkit import PRETRAIN_TEST_LINE as TEST_LINE
from ernie_testkit import PRETRAIN_TRAIN_LINE as TRAIN_LINE
from ernie_testkit import PRETRAIN_VALID_LINE as VALID_LINE
from ernie_testkit import REPO, write_demo_filelists, write_tiny_pretraining_config
from utils.errors import DataError, UsageError
from utils.format_paddle2019 import read_legacy_dir


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """A tiny config and file lists of the 2019 demo data: (folder, the folder holding the 2019
    config/vocab.txt and data/, which is the checkout: it ships them)."""
    d = tmp_path_factory.mktemp("pretrain")
    write_demo_filelists(d, valid_lines=120)
    write_tiny_pretraining_config(d / "ernie_config.json")
    return d, REPO


def flags(d, ernie2019, *extra):
    return ["--use_cuda", "false", "--vocab_path", str(ernie2019 / "config" / "vocab.txt"),
            "--ernie_config_path", str(d / "ernie_config.json"), "--max_seq_len", "160",
            "--batch_size", "2048", "--random_seed", "1"] + list(extra)


def run_main(argv):
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        rc = train.main(argv)
    assert rc == 0
    return out.getvalue().splitlines()


def run_process(*argv):
    """train.py in a process of its own, as in use (optimizer state names are per process)."""
    proc = subprocess.run([sys.executable, str(REPO / "train.py"), *argv], capture_output=True,
                          text=True, timeout=300, cwd=str(REPO))
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout.splitlines()


@pytest.fixture(scope="module")
def trained(setup):
    d, ernie2019 = setup
    lines = run_main(flags(
        d, ernie2019, "--train_filelist", str(d / "train_filelist"), "--valid_filelist",
        str(d / "valid_filelist"), "--num_train_steps", "60", "--warmup_steps", "6",
        "--learning_rate", "5e-3", "--skip_steps", "10", "--validation_steps", "30",
        "--save_steps", "40", "--checkpoints", str(d / "ckpt"),
        "--export_model_dir", str(d / "model")))
    return d, ernie2019, lines


@pytest.mark.slow
def test_masked_lm_loss_falls_and_the_log_lines_parse(trained):
    d, ernie2019, lines = trained
    train_lines = [TRAIN_LINE.match(ln) for ln in lines if ln.startswith("epoch: ") and
                   "progress" in ln]
    valid = [VALID_LINE.match(ln) for ln in lines if ln.startswith("[validation_set]")]
    assert len(train_lines) == 6 and all(train_lines), lines[-20:]
    assert [int(m.group(4)) for m in train_lines] == [10, 20, 30, 40, 50, 60]
    # the 2019 line before each: the rate of that step (counter from 0, warmup 6, decay to 60)
    rates = [ln for i, ln in enumerate(lines[:-1]) if TRAIN_LINE.match(lines[i + 1])]
    assert rates == ["current learning_rate:%f" % (5e-3 * (1 - (s - 1) / 60))
                     for s in (10, 20, 30, 40, 50, 60)]
    first, last = train_lines[0], train_lines[-1]
    assert first.group(1) == "1" and first.group(2, 3) == ("1", "1")
    assert first.group(9).endswith("demo_train_set.gz") and first.group(10) == "mask_word"
    # masked LM perplexity (the loss also holds next sentence, which stays near ln 2)
    assert float(last.group(6)) < 0.5 * float(first.group(6)), (first.group(6), last.group(6))
    assert len(valid) == 2 and all(valid)
    assert [int(m.group(2)) for m in valid] == [30, 60]
    assert float(valid[1].group(3)) < float(valid[0].group(3))


@pytest.mark.slow
def test_checkpoints_and_model_folder(trained):
    d, _, _ = trained
    assert sorted(os.listdir(d / "ckpt")) == ["step_40", "step_60"]   # periodic + final
    params = read_legacy_dir(str(d / "ckpt" / "step_60"))
    for name in ("word_embedding", "mask_lm_trans_fc.w_0", "mask_lm_out_fc.b_0",
                 "next_sent_fc.w_0", "pooled_fc.w_0", "encoder_layer_1_ffn_fc_0.w_0"):
        assert name in params
    assert (d / "ckpt" / "step_60" / "optimizer.pdopt").exists()
    assert sorted(os.listdir(d / "model")) == ["ernie_config.json", "params", "vocab.txt"]
    exported = read_legacy_dir(str(d / "model" / "params"))
    assert sorted(exported) == sorted(k for k in params)
    assert (exported["word_embedding"] == params["word_embedding"]).all()
    # the folder is what --init_pretraining_params takes
    from model.ernie import ErnieConfig, ErnieModel
    from utils.checkpoint import init_pretraining_params
    loaded, missing, _ = init_pretraining_params(
        ErnieModel(ErnieConfig(str(d / "model" / "ernie_config.json"))),
        str(d / "model" / "params"))
    assert not missing and "word_embedding" in loaded


@pytest.mark.slow
def test_do_test_reproduces_the_last_validation(trained):
    d, ernie2019, lines = trained
    last_valid = [VALID_LINE.match(ln) for ln in lines if ln.startswith("[validation_set]")][-1]
    out = run_main(flags(d, ernie2019, "--do_test", "true", "--test_filelist",
                         str(d / "valid_filelist"), "--init_checkpoint",
                         str(d / "ckpt" / "step_60"), "--skip_steps", "2"))
    assert out.count("test begin") == 1 and "[test_set] steps: 2" in out
    result = TEST_LINE.match(out[-1])
    assert result, out[-3:]
    # same parameters, same data, same (seeded) masks as the validation at step 60
    assert abs(float(result.group(1)) - float(last_valid.group(3))) < 1e-4
    assert abs(float(result.group(2)) - float(last_valid.group(4))) < 1e-2


def test_usage_and_data_errors(setup, tmp_path):
    d, ernie2019 = setup
    with pytest.raises(UsageError, match=r"\[FATAL\] Please use --init_checkpoint"):
        train.main(flags(d, ernie2019, "--do_test", "true", "--test_filelist",
                         str(d / "valid_filelist")))
    with pytest.raises(UsageError, match="batch_size > 100"):   # the 2019 default of 16
        train.main(flags(d, ernie2019, "--train_filelist", str(d / "train_filelist"),
                         "--batch_size", "16"))
    with pytest.raises(UsageError, match="--train_filelist is required"):
        train.main(flags(d, ernie2019))
    with pytest.raises(UsageError, match="max_position_embeddings 160"):
        train.main(flags(d, ernie2019, "--train_filelist", str(d / "train_filelist"),
                         "--max_seq_len", "512"))
    bad = tmp_path / "bad.gz"
    with gzip.open(bad, "wt") as f:
        # one usable line, long enough that some token is masked (a run that trains no step
        # is an error), and a malformed one
        f.write("1 5 6 7 8 9 10 11 12 13 2;%s;%s;-1 %s -1;1\n" % (
            " ".join(["0"] * 11), " ".join(map(str, range(11))), " ".join(["0"] * 9)))
        f.write("1 5;0 0 0;0 1 2;-1 0 -1;1\n")
    (tmp_path / "filelist").write_text("bad.gz\t0.0\n")
    with pytest.raises(DataError, match=r"bad\.gz:2: token_ids, sentence_type_ids"):
        train.main(flags(d, ernie2019, "--train_filelist", str(tmp_path / "filelist"),
                         "--strict_data", "true", "--checkpoints", str(tmp_path / "c")))
    lines = run_main(flags(d, ernie2019, "--train_filelist", str(tmp_path / "filelist"),
                           "--epoch", "3", "--checkpoints", str(tmp_path / "c")))
    text = "\n".join(lines)
    assert "bad.gz:2: token_ids, sentence_type_ids, position_ids and seg_labels have " \
           "different lengths 2, 3, 3, 3; line skipped" in text
    assert text.count("line skipped") == 1          # reported once, counted once
    assert "1 malformed lines were skipped" in text


@pytest.mark.slow
def test_pretrain_sh_uses_the_2019_settings_and_forwards_flags(setup, tmp_path):
    d, ernie2019 = setup
    env = dict(os.environ, TRAIN_FILELIST=str(d / "train_filelist"), VALID_FILELIST="",
               VOCAB_PATH=str(ernie2019 / "config" / "vocab.txt"),
               ERNIE_CONFIG_PATH=str(d / "ernie_config.json"),
               CHECKPOINTS=str(tmp_path / "ckpt"), PYTHON=sys.executable)
    proc = subprocess.run(
        ["sh", str(REPO / "script" / "zh_task" / "pretrain.sh"), "--num_train_steps", "2",
         "--max_seq_len", "160", "--batch_size", "2048", "--skip_steps", "1"],
        cwd=str(tmp_path), env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = proc.stdout
    for setting in ("learning_rate: 0.0001", "weight_decay: 0.01", "in_tokens: True",
                    "validation_steps: 100", "save_steps: 10000", "warmup_steps: 5000",
                    "num_train_steps: 2", "batch_size: 2048", "use_fast_executor: True"):
        assert "\n%s\n" % setting in out, setting
    assert len([ln for ln in out.splitlines() if TRAIN_LINE.match(ln)]) == 2
    assert os.listdir(tmp_path / "ckpt") == ["step_2"]
    env["VOCAB_PATH"] = str(tmp_path / "missing.txt")
    proc = subprocess.run(["sh", str(REPO / "script" / "zh_task" / "pretrain.sh")],
                          cwd=str(tmp_path), env=env, capture_output=True, text=True)
    assert proc.returncode == 2 and "missing.txt not found (set VOCAB_PATH" in proc.stderr


@pytest.mark.slow
def test_pretrain_sh_runs_as_shipped_from_the_repository_root(tmp_path):
    """The 2019 README's command: the shipped data/ file lists, config/vocab.txt and (here a
    tiny stand-in for) config/ernie_config.json, run from the repository root."""
    config = tmp_path / "ernie_config.json"
    shipped = json.loads((REPO / "config" / "ernie_config.json").read_text())
    config.write_text(json.dumps(dict(shipped, hidden_size=32, num_hidden_layers=2,
                                      num_attention_heads=2)))
    env = dict(os.environ, VALID_FILELIST="", ERNIE_CONFIG_PATH=str(config),
               CHECKPOINTS=str(tmp_path / "checkpoints"), PYTHON=sys.executable)
    env.pop("TRAIN_FILELIST", None)
    env.pop("VOCAB_PATH", None)
    proc = subprocess.run(
        ["sh", "script/zh_task/pretrain.sh", "--num_train_steps", "3", "--save_steps", "3",
         "--skip_steps", "1"], cwd=str(REPO), env=env, capture_output=True, text=True,
        timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    train_lines = [m for m in map(TRAIN_LINE.match, proc.stdout.splitlines()) if m]
    assert [int(m.group(4)) for m in train_lines] == [1, 2, 3]
    assert train_lines[0].group(9) == "./data/demo_train_set.gz"
    assert "vocab_path: ./config/vocab.txt" in proc.stdout
    assert os.listdir(tmp_path / "checkpoints") == ["step_3"]
    assert "word_embedding" in read_legacy_dir(str(tmp_path / "checkpoints" / "step_3"))


@pytest.mark.slow
def test_resume_auto_continues_where_the_checkpoint_left(setup, tmp_path):
    """Killed after step 8 (only step_8 left): --resume auto ends where one run ends, bit for
    bit (parameters, optimizer state, train state; dropout on). Each run is a process of its
    own, as in use (optimizer state names are per process)."""
    d, ernie2019 = setup
    import shutil

    from ernie_testkit import checkpoint_differences
    common = flags(
        d, ernie2019, "--train_filelist", str(d / "train_filelist"), "--num_train_steps", "16",
        "--warmup_steps", "4", "--learning_rate", "5e-3", "--skip_steps", "4",
        "--save_steps", "8")

    run_process(*common, "--checkpoints", str(tmp_path / "one"))
    shutil.copytree(tmp_path / "one" / "step_8", tmp_path / "two" / "step_8")
    lines = run_process(*common, "--checkpoints", str(tmp_path / "two"), "--resume", "auto")
    text = "\n".join(lines)
    assert "--resume auto: continuing from" in text and "Resuming at step 8" in text
    assert [int(m.group(4)) for m in map(TRAIN_LINE.match, lines) if m] == [12, 16]
    assert checkpoint_differences(tmp_path / "one" / "step_16",
                                  tmp_path / "two" / "step_16") == []


@pytest.mark.slow
def test_longer_run_carries_on_from_a_constant_rate_checkpoint(setup, tmp_path):
    """A run without warmup has a constant rate, so its checkpoint holds no schedule state; a
    longer run with a schedule still carries on from it (step, data position) and places its
    own schedule at the saved step."""
    d, ernie2019 = setup
    import paddle

    from utils.optimization import make_optimizer
    from utils.resume import restore_training
    common = flags(
        d, ernie2019, "--train_filelist", str(d / "train_filelist"), "--learning_rate", "5e-3",
        "--skip_steps", "4")

    run_process(*common, "--num_train_steps", "4", "--warmup_steps", "0",
                "--checkpoints", str(tmp_path / "short"))
    ckpt = str(tmp_path / "short" / "step_4")
    lines = run_process(*common, "--num_train_steps", "8", "--warmup_steps", "2",
                        "--init_checkpoint", ckpt, "--checkpoints", str(tmp_path / "long"))
    assert "Resuming at step 4" in "\n".join(lines)
    assert [int(m.group(4)) for m in map(TRAIN_LINE.match, lines) if m] == [8]

    optimizer, lr = make_optimizer(paddle.nn.Linear(2, 2).parameters(), 5e-3, 2, 8, 0.01)
    assert restore_training(ckpt, optimizer, lr, {})["step"] == 4
    assert lr.last_epoch == 4 and optimizer.get_lr() == pytest.approx(5e-3 * (1 - 4 / 8))

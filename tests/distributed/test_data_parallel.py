"""Two CPU trainers under paddle.distributed.launch (gloo) with batch b per card end with the
same parameters as one trainer with batch 2b over the same data in the same order (dropout
off), for fine-tuning and for pretraining; a trainer that dies takes the whole job down with a
non-zero exit, and the launcher names it."""
import re
import subprocess
import sys

import numpy as np
import pytest

from ernie_testkit import REPO, launch
from ernie_testkit import data_parallel_classifier_args as classifier_args
from utils.format_paddle2019 import read_legacy_dir


@pytest.mark.slow
def test_two_trainers_equal_one_with_double_batch(setup, tmp_path):
    single = subprocess.run([sys.executable] + classifier_args(setup, 16, tmp_path / "one"),
                            capture_output=True, text=True, timeout=300, cwd=REPO)
    assert single.returncode == 0, single.stderr[-2000:]
    two = launch(2, classifier_args(setup, 8, tmp_path / "two"), tmp_path / "log")
    log0 = (tmp_path / "log" / "workerlog.0").read_text()
    assert two.returncode == 0, two.stdout[-2000:] + log0[-2000:]
    assert "Device count: 2" in log0
    a = read_legacy_dir(str(tmp_path / "one" / "step_8"))
    b = read_legacy_dir(str(tmp_path / "two" / "step_8"))
    assert sorted(a) == sorted(b)
    start = read_legacy_dir(str(setup / "model" / "params"))
    moved = max(np.abs(a[k] - start[k]).max() for k in start)
    assert moved > 1e-3  # training changed the encoder
    for name in a:
        rel = np.abs(a[name] - b[name]).max() / max(np.abs(a[name]).max(), 1e-12)
        assert rel <= 1e-5, (name, rel)
    # only trainer 0 writes checkpoints and logs
    assert "epoch:" in log0 and "epoch: 0, progress" not in (tmp_path / "log" /
                                                             "workerlog.1").read_text()


def pretraining_args(d, batch_tokens, checkpoints):
    return [str(REPO / "train.py"), "--use_cuda", "false",
            "--train_filelist", str(d / "pretrain_filelist"),
            "--vocab_path", str(d / "model" / "vocab.txt"),
            "--ernie_config_path", str(d / "model" / "ernie_config.json"),
            "--init_checkpoint", str(d / "model" / "params"),
            "--batch_size", str(batch_tokens), "--max_seq_len", "64", "--num_train_steps", "8",
            "--learning_rate", "1e-3", "--warmup_steps", "2", "--random_seed", "5",
            "--skip_steps", "2", "--save_steps", "100", "--checkpoints", str(checkpoints)]


@pytest.mark.slow
def test_two_pretraining_trainers_equal_one_with_double_batch(setup, tmp_path):
    """Token-budget batches of 4 samples per trainer against 8 in one process: knowledge and
    char masking drawn per sample, loss normalised over both trainers' tokens."""
    import gzip

    from reader.pretraining import format_sample
    vocab_size = len((setup / "model" / "vocab.txt").read_text(encoding="utf-8").splitlines())
    rng = np.random.RandomState(0)
    lines = []
    for i in range(64):  # [CLS] 14 [SEP] 15 [SEP]: every sample 32 tokens
        ids = [1] + list(rng.randint(4, vocab_size - 1, 14)) + [2] + \
            list(rng.randint(4, vocab_size - 1, 15)) + [2]
        segs = [-1] + [int(j % 3 != 0) for j in range(14)] + [-1] + \
            [int(j % 2 != 0) for j in range(15)] + [-1]
        lines.append(format_sample(ids, [0] * 16 + [1] * 16, list(range(32)), segs, i % 2))
    with gzip.open(setup / "pretrain.gz", "wt") as f:
        f.write("\n".join(lines) + "\n")
    (setup / "pretrain_filelist").write_text("%s\t0.5\n" % (setup / "pretrain.gz"))

    single = subprocess.run([sys.executable] + pretraining_args(setup, 256, tmp_path / "one"),
                            capture_output=True, text=True, timeout=300, cwd=REPO)
    assert single.returncode == 0, single.stdout[-2000:] + single.stderr[-2000:]
    two = launch(2, pretraining_args(setup, 128, tmp_path / "two"), tmp_path / "log")
    log0 = (tmp_path / "log" / "workerlog.0").read_text()
    assert two.returncode == 0, two.stdout[-2000:] + log0[-2000:]
    assert "Device count: 2" in log0 and "mask_type" in log0
    # trainer 0 logs the mean loss of its own batch (its tensor is only its share of the
    # two trainers' sum), near the one process' mean over both batches
    logged = [dict(re.findall(r"step: (\d+), loss: ([\d.]+)", text))
              for text in (single.stdout, log0)]
    assert sorted(logged[0]) == sorted(logged[1]) == ["2", "4", "6", "8"]
    for step, loss in logged[0].items():
        assert 0.8 < float(logged[1][step]) / float(loss) < 1.25, (step, logged)
    a = read_legacy_dir(str(tmp_path / "one" / "step_8"))
    b = read_legacy_dir(str(tmp_path / "two" / "step_8"))
    assert sorted(a) == sorted(b) and "mask_lm_trans_fc.w_0" in a
    start = read_legacy_dir(str(setup / "model" / "params"))
    assert max(np.abs(a[k] - start[k]).max() for k in start) > 1e-3
    for name in a:
        rel = np.abs(a[name] - b[name]).max() / max(np.abs(a[name]).max(), 1e-12)
        # softmax ignores a shift shared by all keys, so the key bias gradient is zero in
        # exact arithmetic and Adam turns its rounding noise into steps: a looser bound there
        assert rel <= (1e-4 if name.endswith("_key_fc.b_0") else 1e-5), (name, rel)


@pytest.mark.slow
def test_a_dead_trainer_fails_the_job(setup, tmp_path):
    args = classifier_args(setup, 8, tmp_path / "ckpt")
    # trainer 1 gets a training file that does not exist and stops at once
    bad = [a if a != str(setup / "train.tsv") else str(tmp_path / "missing_on_rank1.tsv")
           for a in args]
    script = tmp_path / "one_rank_fails.py"
    script.write_text(
        "import os, runpy, sys\n"
        "argv = %r if os.environ.get('PADDLE_TRAINER_ID') == '1' else %r\n"
        "sys.argv = argv\n"
        "sys.path.insert(0, %r)\n"
        "runpy.run_path(argv[0], run_name='__main__')\n" % (bad, args, str(REPO)))
    result = launch(2, [str(script)], tmp_path / "log", timeout=240)
    assert result.returncode != 0
    # Paddle's launcher names the trainer that died (its rank), its exit code and its log, and
    # prints the tail of that log: trainer 1's one error line, naming the file it lacked
    failed = re.findall(r"Container rank (\d+) status failed cmd .* code (-?\d+) log (\S+)",
                        result.stderr)
    assert failed == [("1", "2", str(tmp_path / "log" / "workerlog.1"))], result.stderr[-3000:]
    error = "error: --train_set: %s does not exist" % (tmp_path / "missing_on_rank1.tsv")
    assert error in (tmp_path / "log" / "workerlog.1").read_text()
    assert error in result.stdout, result.stdout[-3000:]
    assert not (tmp_path / "ckpt").exists() or not list((tmp_path / "ckpt").glob("step_*"))


@pytest.mark.slow
def test_two_trainers_refuse_a_checkpoints_folder_a_live_run_holds(setup, tmp_path):
    """Only trainer 0 takes the --checkpoints lock: it stops with the one-line error, and the
    launcher takes trainer 1 down with it (no trainer waits for it forever)."""
    from ernie_testkit import held_folder
    ckpt = tmp_path / "ckpt"
    with held_folder(ckpt) as holder:
        result = launch(2, classifier_args(setup, 8, ckpt), tmp_path / "log", timeout=240)
        assert holder.poll() is None  # the live run is untouched
    assert result.returncode != 0
    log0 = (tmp_path / "log" / "workerlog.0").read_text()
    error = "error: --checkpoints %s: in use by a live run (pid %d)" % (ckpt, holder.pid)
    assert error in log0, log0[-2000:]
    assert "Traceback" not in log0
    assert not list(ckpt.glob("step_*"))

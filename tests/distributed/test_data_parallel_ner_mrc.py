"""Sequence labeling and reading comprehension under data parallel: two CPU trainers under
paddle.distributed.launch (gloo) with batch b per trainer end with the same parameters as one
trainer with batch 2b over the same data in the same order (dropout off), as
test_data_parallel.py shows for classification and pretraining.

The NER sentences have different lengths, so the two trainers' batches hold different numbers
of labelled tokens: the mean over all of them, not the mean of the two trainers' means, is what
one trainer with 2b minimises. The MRC questions each fit one window (one feature a question)
and differ in length too: the start/end softmax runs over padded positions as well (2019), so
the trainers' batches must be padded as one trainer pads their union. run_mrc.py's head has a
fixed dropout of 0.1, which a wrapper turns off here."""
import json
import subprocess
import sys

import numpy as np
import pytest

from ernie_testkit import PEOPLE_DAILY, REPO, launch, write_random_params, write_tiny_model
from utils.format_paddle2019 import read_legacy_dir

# 32 examples, batch 16 (one trainer) or 8 + 8 (two): 2 steps an epoch, 2 epochs -> step_4
N_EXAMPLES, EPOCHS, STEPS = 32, 2, 4


def no_dropout_model(model_dir, texts, max_pos):
    write_tiny_model(model_dir, texts, max_pos=max_pos)
    config = json.loads((model_dir / "ernie_config.json").read_text())
    config.update(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    (model_dir / "ernie_config.json").write_text(json.dumps(config))
    write_random_params(model_dir, seed=0)


@pytest.fixture(scope="module")
def ner(tmp_path_factory):
    """The first 32 training sentences of the People's Daily NER set, 6 to 60 characters."""
    from tools.prepare_data import build_ner
    d = tmp_path_factory.mktemp("dp_ner")
    build_ner(str(d / "build"), path=PEOPLE_DAILY, max_lines=200, verbose=False)
    lines = (d / "build" / "msra_ner" / "train.tsv").read_text(encoding="utf-8").splitlines()
    rows = [ln for ln in lines[1:] if 6 <= len(ln.split("\t")[0].split("\x02")) <= 60]
    rows = rows[:N_EXAMPLES]
    assert len(rows) == N_EXAMPLES
    lengths = [len(r.split("\t")[0].split("\x02")) for r in rows]
    assert len(set(lengths)) > 10  # batches of different token counts
    (d / "train.tsv").write_text("\n".join([lines[0]] + rows) + "\n", encoding="utf-8")
    (d / "label_map.json").write_text(
        (d / "build" / "msra_ner" / "label_map.json").read_text())
    no_dropout_model(d / "model", [r.split("\t")[0].replace("\x02", "") for r in rows], 64)
    return d


def ner_args(d, batch_size, checkpoints):
    return [str(REPO / "run_sequence_labeling.py"), "--use_cuda", "false",
            "--do_train", "true", "--do_val", "false", "--do_test", "false",
            "--train_set", str(d / "train.tsv"), "--label_map_config", str(d / "label_map.json"),
            "--num_labels", "7", "--chunk_scheme", "IOB",
            "--vocab_path", str(d / "model" / "vocab.txt"),
            "--ernie_config_path", str(d / "model" / "ernie_config.json"),
            "--init_pretraining_params", str(d / "model" / "params"),
            "--batch_size", str(batch_size), "--epoch", str(EPOCHS), "--max_seq_len", "64",
            "--learning_rate", "1e-3", "--warmup_proportion", "0.25", "--random_seed", "3",
            "--skip_steps", "2", "--save_steps", "1000", "--checkpoints", str(checkpoints)]


@pytest.fixture(scope="module")
def mrc(tmp_path_factory):
    """32 People's Daily questions, one paragraph each, context and question in one window;
    and a wrapper that runs run_mrc.py with its head's fixed 0.1 dropout off."""
    from tools.prepare_data import build_mrc
    d = tmp_path_factory.mktemp("dp_mrc")
    build_mrc(str(d / "build"), seed=1, max_lines=200, verbose=False)
    data = json.loads((d / "build" / "pd_qa" / "train.json").read_text(encoding="utf-8"))
    paragraphs = []
    for article in data["data"]:
        for p in article["paragraphs"]:
            for q in p["qas"]:
                if len(p["context"]) + len(q["question"]) <= 90:
                    paragraphs.append({"context": p["context"], "qas": [q]})
    paragraphs = paragraphs[:N_EXAMPLES]
    assert len(paragraphs) == N_EXAMPLES
    (d / "train.json").write_text(json.dumps(
        {"version": "1.1", "data": [{"title": "t", "paragraphs": paragraphs}]},
        ensure_ascii=False), encoding="utf-8")
    no_dropout_model(d / "model", [p["context"] + p["qas"][0]["question"]
                                   for p in paragraphs], 128)
    (d / "run_mrc_no_dropout.py").write_text(
        "import runpy, sys\n"
        "sys.path.insert(0, %r)\n"
        "import finetune.mrc\n"
        "finetune.mrc.dropout = lambda x, rate, training: x\n"
        "sys.argv = [%r] + sys.argv[1:]\n"
        "runpy.run_path(sys.argv[0], run_name='__main__')\n"
        % (str(REPO), str(REPO / "run_mrc.py")))
    return d


def mrc_args(d, batch_size, checkpoints):
    return [str(d / "run_mrc_no_dropout.py"), "--use_cuda", "false",
            "--do_train", "true", "--do_val", "false", "--do_test", "false",
            "--train_set", str(d / "train.json"),
            "--vocab_path", str(d / "model" / "vocab.txt"),
            "--ernie_config_path", str(d / "model" / "ernie_config.json"),
            "--init_pretraining_params", str(d / "model" / "params"),
            "--batch_size", str(batch_size), "--epoch", str(EPOCHS), "--max_seq_len", "128",
            "--doc_stride", "128", "--max_query_length", "32",
            "--learning_rate", "1e-3", "--warmup_proportion", "0.25", "--random_seed", "3",
            "--skip_steps", "2", "--save_steps", "1000", "--checkpoints", str(checkpoints)]


def one_and_two(args_of, d, tmp_path):
    """Final parameters of 1 trainer x batch 16 and 2 trainers x batch 8, and worker 0's log."""
    single = subprocess.run([sys.executable] + args_of(d, 16, tmp_path / "one"),
                            capture_output=True, text=True, timeout=300, cwd=REPO)
    assert single.returncode == 0, single.stdout[-2000:] + single.stderr[-2000:]
    assert "Num train examples: %d" % N_EXAMPLES in single.stdout, single.stdout[-2000:]
    two = launch(2, args_of(d, 8, tmp_path / "two"), tmp_path / "log")
    log0 = (tmp_path / "log" / "workerlog.0").read_text()
    assert two.returncode == 0, two.stdout[-2000:] + log0[-3000:]
    assert "Device count: 2" in log0
    a = read_legacy_dir(str(tmp_path / "one" / ("step_%d" % STEPS)))
    b = read_legacy_dir(str(tmp_path / "two" / ("step_%d" % STEPS)))
    assert sorted(a) == sorted(b)
    start = read_legacy_dir(str(d / "model" / "params"))
    assert max(np.abs(a[k] - start[k]).max() for k in start) > 1e-3  # training moved them
    return a, b


def assert_close(a, b, shift_invariant=()):
    """The bounds of test_data_parallel.py. The two runs add the same float32 numbers in
    another order (one batch of 16 against two of 8 whose gradients gloo averages): ~1e-7
    relative a step, and here 4 Adam steps at lr 1e-3 end at most 3e-7 of each tensor's largest
    value apart (1e-6 for the key biases), so 1e-5 is a bound with margin; not averaging the
    gradients, not sharding the data, or the per-trainer token mean of sequence labeling, move
    parameters 1e-4 to 1e-1 relative. Parameters whose gradient is zero in exact arithmetic
    (the softmax ignores a shift they add to all of its inputs) get steps from rounding noise
    that Adam normalises: the attention key biases, and `shift_invariant`, get 1e-4."""
    for name in a:
        rel = np.abs(a[name] - b[name]).max() / max(np.abs(a[name]).max(), 1e-12)
        loose = name.endswith("_key_fc.b_0") or name in shift_invariant
        assert rel <= (1e-4 if loose else 1e-5), (name, rel)


@pytest.mark.slow
def test_sequence_labeling_two_trainers_equal_one_with_double_batch(ner, tmp_path):
    a, b = one_and_two(ner_args, ner, tmp_path)
    assert "cls_seq_label_out_w" in a
    assert_close(a, b)


@pytest.mark.slow
def test_mrc_two_trainers_equal_one_with_double_batch(mrc, tmp_path):
    a, b = one_and_two(mrc_args, mrc, tmp_path)
    assert "cls_mrc_out_w" in a
    # the start (end) logit of every position gets the same share of the head's bias and of
    # the last layer norm's bias: both shift the softmax's inputs alike. The head bias moves by
    # noise only (|value| ~ 1e-4, its relative difference means nothing): not compared.
    a.pop("cls_mrc_out_b"), b.pop("cls_mrc_out_b")
    assert_close(a, b, shift_invariant={"encoder_layer_1_post_ffn_layer_norm_bias"})

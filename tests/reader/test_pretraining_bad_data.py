"""Pretraining data that cannot train: file lists whose lines are all unusable fail before
training (naming the list and its files), malformed lines are counted once however many
epochs read them, and the file list's mask_word_prob must be a probability."""
import contextlib
import gzip
import io
import json
import os

import pytest

from reader.pretraining import ErnieDataReader, read_filelist, valid_mask_word_prob
from utils.errors import DataError, run_cli

GOOD = "1 5 6 2 7 8 2;0 0 0 0 1 1 1;0 1 2 3 4 5 6;-1 0 1 -1 0 0 -1;1"
BAD_LENGTHS = "1 5 6 2;0 0 0;0 1 2 3;-1 0 0 -1;1"          # 4 tokens, 3 sentence ids
BAD_LABEL = "1 5 2;0 0 0;0 1 2;-1 0 -1;7"                 # next_sentence_label 7
LONG = ";".join([" ".join(["5"] * 20)] * 4 + ["1"])      # 20 tokens


def write_vocab(directory):
    path = directory / "vocab.txt"
    tokens = ["[PAD]", "[CLS]", "[SEP]", "[MASK]", "a", "b", "c", "d", "e", "[UNK]"]
    path.write_text("".join("%s\t%d\n" % (t, i) for i, t in enumerate(tokens)))
    return str(path)


def write_gz(path, lines):
    with gzip.open(path, "wt", encoding="utf-8") as f:
        f.write("".join(line + "\n" for line in lines))
    return path


def write_list(path, entries):
    path.write_text("".join("%s\t%s\n" % (name, prob) for name, prob in entries))
    return str(path)


def reader(tmp_path, filelist, **kw):
    kw.setdefault("max_seq_len", 16)
    return ErnieDataReader(filelist, write_vocab(tmp_path), batch_size=4, in_tokens=False,
                           random_seed=1, **kw)


# ---- malformed lines: reported once, counted once -------------------------------------------

def test_malformed_lines_are_counted_once_over_many_epochs(tmp_path, capsys):
    write_gz(tmp_path / "part-0.gz", [GOOD, BAD_LENGTHS, GOOD, BAD_LABEL, GOOD])
    r = reader(tmp_path, write_list(tmp_path / "list", [("part-0.gz", 1.1)]), epoch=50)
    samples = list(r.samples())
    assert len(samples) == 3 * 50
    assert r.stats["malformed"] == 2               # 2 distinct lines, not 2 * 50
    out = capsys.readouterr().out
    assert out.count("line skipped") == 2
    assert "part-0.gz:2: " in out and "part-0.gz:4: " in out


def test_validation_passes_count_their_malformed_lines_once(tmp_path):
    write_gz(tmp_path / "valid-0.gz", [GOOD, BAD_LABEL])
    r = reader(tmp_path, write_list(tmp_path / "list", [("valid-0.gz", 0.0)]), is_test=True,
               verbose=False)
    for _ in range(4):          # train.py runs a validation pass every --validation_steps
        assert sum(1 for _ in r.data_generator()()) >= 0
    assert r.stats["malformed"] == 1


# ---- no usable line ---------------------------------------------------------------------------

def test_a_list_without_a_usable_line_fails_naming_the_list_and_its_files(tmp_path, capsys):
    write_gz(tmp_path / "bad-0.gz", [BAD_LENGTHS, BAD_LABEL])
    write_gz(tmp_path / "long-0.gz", [LONG, LONG, LONG])
    write_gz(tmp_path / "empty-0.gz", [])
    listing = write_list(tmp_path / "train_filelist",
                         [("bad-0.gz", 1.1), ("long-0.gz", 1.1), ("empty-0.gz", 0.5)])
    r = reader(tmp_path, listing)
    with pytest.raises(DataError) as err:
        r.check_usable("--train_filelist")
    message = str(err.value)
    assert message.startswith(listing + ": no usable line in the data files of "
                                        "--train_filelist: ")
    assert "bad-0.gz (2 malformed)" in message
    assert "long-0.gz (3 longer than --max_seq_len 16)" in message
    assert "empty-0.gz (empty)" in message
    assert "first malformed line: %s:1: " % (tmp_path / "bad-0.gz") in message
    assert "\n" not in message
    # a quiet check: nothing printed, nothing counted
    assert capsys.readouterr().out == "" and not r.stats


def test_one_usable_line_is_enough_and_is_found_quickly(tmp_path):
    write_gz(tmp_path / "bad-0.gz", [BAD_LENGTHS])
    write_gz(tmp_path / "good-0.gz", [LONG, GOOD] + [BAD_LABEL] * 5)
    r = reader(tmp_path, write_list(tmp_path / "list", [("bad-0.gz", 1.1), ("good-0.gz", 1)]))
    r.check_usable()
    assert not r.stats


def test_strict_data_stops_at_the_first_malformed_line(tmp_path):
    write_gz(tmp_path / "bad-0.gz", [LONG, BAD_LABEL])
    r = reader(tmp_path, write_list(tmp_path / "list", [("bad-0.gz", 1.1)]), strict_data=True)
    with pytest.raises(DataError, match=r"bad-0\.gz:2: next_sentence_label must be 0 or 1"):
        r.check_usable()


def test_negative_sampling_needs_positive_pairs(tmp_path):
    negative = GOOD[:-1] + "0"
    write_gz(tmp_path / "neg-0.gz", [negative, negative])
    r = reader(tmp_path, write_list(tmp_path / "list", [("neg-0.gz", 1.1)]),
               generate_neg_sample=True)
    with pytest.raises(DataError, match=r"neg-0\.gz \(2 malformed\).*positive pairs only"):
        r.check_usable()


# ---- train.py ---------------------------------------------------------------------------------

def tiny_config(directory):
    path = directory / "ernie_config.json"
    path.write_text(json.dumps(dict(
        attention_probs_dropout_prob=0.0, hidden_act="relu", hidden_dropout_prob=0.0,
        hidden_size=16, initializer_range=0.02, max_position_embeddings=32,
        num_attention_heads=2, num_hidden_layers=1, type_vocab_size=2, vocab_size=10)))
    return str(path)


def run_train(tmp_path, *extra):
    """(exit code, stdout, stderr) of train.py's main under run_cli, in an empty directory."""
    import train
    cwd = tmp_path / "cwd"
    cwd.mkdir(exist_ok=True)
    argv = ["--use_cuda", "false", "--vocab_path", write_vocab(tmp_path),
            "--ernie_config_path", tiny_config(tmp_path), "--max_seq_len", "16",
            "--in_tokens", "false", "--batch_size", "2", "--num_train_steps", "3",
            "--warmup_steps", "0", "--skip_steps", "1", "--save_steps", "100",
            "--checkpoints", str(cwd / "checkpoints"), "--random_seed", "1"] + list(extra)
    out, err = io.StringIO(), io.StringIO()
    old = os.getcwd()
    os.chdir(cwd)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                run_cli(train.main, argv)
                code = 0
            except SystemExit as e:
                code = e.code
    finally:
        os.chdir(old)
    return code, out.getvalue(), err.getvalue(), cwd


def test_train_with_no_usable_line_fails_before_training(tmp_path):
    write_gz(tmp_path / "bad-0.gz", [BAD_LENGTHS, BAD_LABEL])
    listing = write_list(tmp_path / "train_filelist", [("bad-0.gz", 1.1)])
    code, out, err, cwd = run_train(tmp_path, "--train_filelist", listing, "--epoch", "100")
    assert code == 1, err
    assert err.strip().splitlines() == [
        "error: %s: no usable line in the data files of --train_filelist: %s (2 malformed); "
        "first malformed line: %s:1: token_ids, sentence_type_ids, position_ids and seg_labels "
        "have different lengths 4, 3, 4, 4" % (listing, tmp_path / "bad-0.gz",
                                              tmp_path / "bad-0.gz")]
    assert "step_0" not in out and "pretraining finished" not in out
    assert os.listdir(cwd) == []


def test_train_with_an_unusable_valid_filelist_fails_before_training(tmp_path):
    write_gz(tmp_path / "good-0.gz", [GOOD] * 4)
    write_gz(tmp_path / "long-0.gz", [LONG])
    train_list = write_list(tmp_path / "train_filelist", [("good-0.gz", 1.1)])
    valid_list = write_list(tmp_path / "valid_filelist", [("long-0.gz", 0.0)])
    code, out, err, cwd = run_train(tmp_path, "--train_filelist", train_list,
                                    "--valid_filelist", valid_list)
    assert code == 1, err
    assert err.strip() == (
        "error: %s: no usable line in the data files of --valid_filelist: %s (1 longer than "
        "--max_seq_len 16)" % (valid_list, tmp_path / "long-0.gz"))
    assert "progress: " not in out and os.listdir(cwd) == []


def test_train_that_takes_no_step_fails_instead_of_naming_a_missing_step_0(tmp_path):
    # usable lines, but only [CLS]/[SEP]: nothing is ever selected for prediction
    write_gz(tmp_path / "cls-0.gz", ["1 2;0 0;0 1;-1 -1;1"] * 3)
    listing = write_list(tmp_path / "train_filelist", [("cls-0.gz", 0.5)])
    code, out, err, cwd = run_train(tmp_path, "--train_filelist", listing, "--epoch", "2")
    assert code == 1, err
    assert err.strip() == (
        "error: %s: no training batch: no token of the usable lines of --train_filelist was "
        "selected for masking (3 batches without a masked token); are the samples only "
        "[CLS]/[SEP]?" % listing)
    assert "pretraining finished" not in out and os.listdir(cwd) == []


def test_train_counts_each_malformed_line_once(tmp_path):
    write_gz(tmp_path / "part-0.gz", [GOOD, BAD_LENGTHS, BAD_LABEL])
    listing = write_list(tmp_path / "train_filelist", [("part-0.gz", 1.1)])
    # 1 usable line, batches of 2 sentences: 3 steps read the file 6 times, in 6 epochs
    code, out, err, cwd = run_train(tmp_path, "--train_filelist", listing, "--epoch", "100000")
    assert code == 0, err
    assert "WARNING: 2 malformed lines were skipped" in out
    assert out.count("line skipped") == 2
    assert "pretraining finished after 3 steps; checkpoint %s/step_3" % (cwd / "checkpoints") \
        in out
    assert os.listdir(cwd / "checkpoints") == ["step_3"]


# ---- the file list's mask_word_prob -----------------------------------------------------------

@pytest.mark.parametrize("value", ["0", "0.0", "0.25", "1", "1.0", "1.1"])
def test_probabilities_and_the_2019_always_value_are_accepted(tmp_path, value):
    write_gz(tmp_path / "part-0.gz", [GOOD])
    files = read_filelist(write_list(tmp_path / "list", [("part-0.gz", value)]))
    assert files == [(str(tmp_path / "part-0.gz"), float(value))]


@pytest.mark.parametrize("value", ["nan", "-1", "-0.1", "5", "1.5", "inf", "100"])
def test_other_mask_word_probs_are_rejected_naming_the_line(tmp_path, value):
    write_gz(tmp_path / "part-0.gz", [GOOD])
    listing = write_list(tmp_path / "list", [("part-0.gz", 1.1), ("part-0.gz", value)])
    with pytest.raises(DataError) as err:
        read_filelist(listing)
    assert str(err.value).startswith("%s:2: mask_word_prob %s is not a probability: it must "
                                     "be a number in [0, 1]" % (listing, value))
    assert not valid_mask_word_prob(float(value))


def test_the_shipped_file_lists_are_valid():
    from ernie_testkit import REPO
    for name in ("train_filelist", "valid_filelist"):
        for line in (REPO / "data" / name).read_text().splitlines():
            assert valid_mask_word_prob(float(line.split("\t")[1]))

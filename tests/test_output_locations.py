"""Output locations are checked before any work starts, and TSVs may start with a UTF-8 BOM.

Every entry point checks where it will write (--checkpoints, --test_save, --output_dir,
--output_file, --save_inference_model_path, --export_model_dir, --diagnostic_save,
convert_params' DST, pretrain_data's --output / --output_dir, prepare_data's --output_dir)
with utils.fileio.check_output_dir / check_output_file / check_output_prefix before it reads
training data or builds a model: a one-line usage error (exit 2) naming the flag and the path,
nothing created. tests/test_bad_inputs.py holds the cases that need no more than a path under
a regular file; here are the permission cases (the tests run as root, where os.access says
everything is writable, so it is monkeypatched), the "before any work" proofs, the commands
test_bad_inputs cannot run, and the BOM.
"""
import os
import subprocess
import sys
import time

import pytest

from ernie_testkit import (
    REPO,
    Env,
    check_failure,
    predict_classifier_argv,
    run_classifier_argv,
    run_in_process,
    train_argv,
)
from utils.errors import UsageError, run_cli
from utils.fileio import check_output_dir, check_output_file, check_output_prefix


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    return Env(tmp_path_factory.mktemp("inputs"))


@pytest.fixture
def cwd(tmp_path):
    path = tmp_path / "cwd"
    path.mkdir()
    return path


def read_only(monkeypatch, *places):
    """os.access answers False for writing under `places` (what a read-only place says)."""
    real = os.access
    places = [os.path.abspath(str(p)) for p in places]

    def access(path, mode, *args, **kwargs):
        full = os.path.abspath(os.fspath(path))
        if mode & os.W_OK and any(full == p or full.startswith(p + os.sep) for p in places):
            return False
        return real(path, mode, *args, **kwargs)
    monkeypatch.setattr(os, "access", access)


def usage_error(function, *args):
    with pytest.raises(UsageError) as info:
        function(*args)
    message = str(info.value)
    assert "\n" not in message
    return message


# ----------------------------------------------------------------------------------------------
# the checker itself

def test_check_output_dir(tmp_path):
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    check_output_dir("--checkpoints", str(tmp_path))                     # exists, writable
    check_output_dir("--checkpoints", str(tmp_path / "new" / "deeper"))  # creatable
    assert sorted(os.listdir(tmp_path)) == ["a_file"]                    # created nothing
    assert usage_error(check_output_dir, "--checkpoints", str(a_file)) == \
        "--checkpoints: %s is a file, expected a directory" % a_file
    assert usage_error(check_output_dir, "--output_dir", str(a_file / "x" / "y")) == \
        "--output_dir: cannot create %s: %s is a file, not a directory" % (a_file / "x" / "y",
                                                                         a_file)
    assert "--checkpoints" in usage_error(check_output_dir, "--checkpoints", "")


def test_check_output_file(tmp_path):
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    check_output_file("--output_file", str(a_file))                      # replaced
    check_output_file("--output_file", str(tmp_path / "new" / "out.tsv"))
    assert sorted(os.listdir(tmp_path)) == ["a_file"]
    assert usage_error(check_output_file, "--output_file", str(tmp_path)) == \
        "--output_file: %s is a directory, expected a file" % tmp_path
    assert usage_error(check_output_file, "--output_file", str(a_file / "out.tsv")) == \
        "--output_file: cannot create %s: %s is a file, not a directory" % (
            a_file / "out.tsv", a_file)
    assert "--output_file" in usage_error(check_output_file, "--output_file",
                                          str(tmp_path / "new") + "/")
    if os.path.exists("/dev/null"):
        assert usage_error(check_output_file, "--output_file", "/dev/null") == \
            "--output_file: /dev/null is not a regular file"


def test_check_output_prefix(tmp_path):
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    check_output_prefix("--test_save", str(tmp_path / "new" / "test_result"))
    check_output_prefix("--test_save", str(a_file))  # writes a_file.<epoch>.<steps> beside it
    assert usage_error(check_output_prefix, "--test_save", str(a_file / "test_result")) == \
        "--test_save: cannot create %s: %s is a file, not a directory" % (
            a_file / "test_result", a_file)


def test_read_only_locations(tmp_path, monkeypatch):
    ro = tmp_path / "ro"
    (ro / "existing").mkdir(parents=True)
    (ro / "file.tsv").write_text("x")
    read_only(monkeypatch, ro)
    assert usage_error(check_output_dir, "--checkpoints", str(ro)) == \
        "--checkpoints: %s is not writable" % ro
    assert usage_error(check_output_dir, "--checkpoints", str(ro / "existing")) == \
        "--checkpoints: %s is not writable" % (ro / "existing")
    assert usage_error(check_output_dir, "--checkpoints", str(ro / "a" / "b")) == \
        "--checkpoints: cannot create %s: %s is not writable" % (ro / "a" / "b", ro)
    assert usage_error(check_output_file, "--output_file", str(ro / "file.tsv")) == \
        "--output_file: %s is not writable" % (ro / "file.tsv")
    assert usage_error(check_output_file, "--output_file", str(ro / "new.tsv")) == \
        "--output_file: cannot create %s: %s is not writable" % (ro / "new.tsv", ro)
    assert usage_error(check_output_prefix, "--test_save", str(ro / "test_result")) == \
        "--test_save: cannot create %s: %s is not writable" % (ro / "test_result", ro)
    check_output_dir("--checkpoints", str(tmp_path / "elsewhere"))


def test_read_only_locations_of_the_entry_points(env, cwd, monkeypatch):
    """A read-only --checkpoints, convert_params DST or --output_dir: exit 2 at once."""
    ro = env.empty_dir("read_only")
    read_only(monkeypatch, ro)
    for entry, argv, names in (
            ("run_classifier", run_classifier_argv(env, checkpoints=ro / "ckpt"),
             ["--checkpoints", "read_only/ckpt", "not writable"]),
            ("train", train_argv(env, checkpoints=ro), ["--checkpoints", "read_only"]),
            ("convert_params", [env.params, ro / "out.pdparams", "--to", "pdparams"],
             ["DST", "read_only/out.pdparams", "not writable"]),
            ("convert_params", [env.params, ro / "params", "--to", "paddle2019"],
             ["DST", "read_only/params", "not writable"]),
            ("ernie_encoder", ["--use_cuda", "false", "--vocab_path", env.vocab,
                               "--ernie_config_path", env.config, "--max_seq_len", "16",
                               "--init_pretraining_params", env.params,
                               "--data_set", env.cls_predict, "--output_dir", ro / "emb"],
             ["--output_dir", "read_only/emb"]),
            ("predict_classifier", predict_classifier_argv(env, output_file=ro / "p.tsv"),
             ["--output_file", "read_only/p.tsv"])):
        code, stderr = run_in_process(entry, argv, cwd)
        check_failure(code, stderr, 2, names, cwd)
    assert os.listdir(ro) == []


# ----------------------------------------------------------------------------------------------
# before any work: a bad output location wins over bad training data, nothing is trained


def test_checked_before_reading_training_data(env, cwd):
    """The training data here would fail on its own (exit 1, naming its line) if it were
    read: the output check comes first, and no training line appears."""
    a_file = env.write("not_a_dir.txt", "x\n")
    bad_tsv = env.write("bad_train.tsv", "label\ttext_a\n1\t好\n0\n")
    bad_filelist = env.write("fl_bad_first", "nope-0.gz\t1.1\n")
    for entry, argv, flag in (
            ("run_classifier", run_classifier_argv(env, train_set=bad_tsv,
                                                   checkpoints=a_file / "ckpt"),
             "--checkpoints"),
            ("run_classifier", run_classifier_argv(env, train_set=bad_tsv, do_test="true",
                                                   test_set=bad_tsv,
                                                   test_save=a_file / "test_result"),
             "--test_save"),
            ("train", train_argv(env, train_filelist=bad_filelist, checkpoints=a_file),
             "--checkpoints"),
            ("train", train_argv(env, train_filelist=bad_filelist,
                                 export_model_dir=a_file / "model"), "--export_model_dir")):
        start = time.time()
        code, stderr = run_in_process(entry, argv, cwd)
        check_failure(code, stderr, 2, [flag, "not_a_dir.txt"], cwd)
        assert time.time() - start < 10
        assert "bad_train.tsv" not in stderr and "nope-0.gz" not in stderr


def test_command_line_stops_before_training(env, tmp_path):
    """The real command: `run_classifier.py --checkpoints <file>` ends with exit 2 and one
    line, and prints no training line (a run that trained would print `epoch: 0, progress:
    ...` with --skip_steps 1)."""
    a_file = env.write("not_a_dir.txt", "x\n")
    argv = run_classifier_argv(env, checkpoints=a_file, skip_steps="1")
    proc = subprocess.run([sys.executable, str(REPO / "run_classifier.py")]
                          + [str(a) for a in argv], cwd=tmp_path, capture_output=True,
                          text=True, timeout=120,
                          env=dict(os.environ, PYTHONPATH=str(REPO)))
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == \
        "error: --checkpoints: %s is a file, expected a directory" % a_file
    assert "Traceback" not in proc.stderr
    assert "progress:" not in proc.stdout and "Num train examples" not in proc.stdout
    assert os.listdir(tmp_path) == []


# ----------------------------------------------------------------------------------------------
# pretrain_data (not an entry of test_bad_inputs.CASES)

def run_pretrain_data(argv, cwd):
    import contextlib
    import io

    from tools import pretrain_data
    err = io.StringIO()
    old = os.getcwd()
    os.chdir(cwd)
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            try:
                run_cli(pretrain_data.main, [str(a) for a in argv])
                code = 0
            except SystemExit as e:
                code = e.code
    finally:
        os.chdir(old)
    return code, err.getvalue()


def test_pretrain_data_output_locations(env, cwd):
    a_file = env.write("not_a_dir.txt", "x\n")
    corpus = env.write("corpus.txt", "好的很。这个手机不错。\n质量差。\n")
    out_dir = env.empty_dir("vocab_out_is_a_dir")
    for argv, names in (
            (["text", "--input", corpus, "--output_dir", a_file],
             ["--output_dir", "not_a_dir.txt"]),
            (["text", "--input", corpus, "--output_dir", a_file / "data"],
             ["--output_dir", "not_a_dir.txt/data"]),
            (["vocab", "--input", corpus, "--output", out_dir],
             ["--output", "vocab_out_is_a_dir"]),
            (["vocab", "--input", corpus, "--output", a_file / "vocab.txt"],
             ["--output", "not_a_dir.txt/vocab.txt"])):
        code, stderr = run_pretrain_data(argv, cwd)
        check_failure(code, stderr, 2, names, cwd)


def test_pretrain_vocab_output_in_a_missing_folder(env, cwd):
    """A missing folder of --output is made, as --output_dir's is."""
    corpus = env.write("corpus.txt", "好的很。这个手机不错。\n质量差。\n")
    out = cwd / "new" / "vocab.txt"
    code, stderr = run_pretrain_data(["vocab", "--input", corpus, "--min_count", "1",
                                      "--output", out], cwd)
    assert code == 0, stderr
    assert "[CLS]" in out.read_text(encoding="utf-8")
    assert os.listdir(out.parent) == ["vocab.txt"]


# ----------------------------------------------------------------------------------------------
# a missing output folder is made (after the check passed), not a .tmp-PID error


def test_predict_output_file_in_a_missing_folder(env, cwd):
    out = cwd / "new" / "deeper" / "predictions.tsv"
    code, stderr = run_in_process("predict_classifier",
                                  predict_classifier_argv(env, output_file=out), cwd)
    assert code == 0, stderr
    lines = out.read_text().splitlines()
    assert len(lines) == 2
    assert os.listdir(out.parent) == ["predictions.tsv"]


# ----------------------------------------------------------------------------------------------
# a UTF-8 byte-order mark at the start of a TSV


BOM = b"\xef\xbb\xbf"


def test_read_tsv_drops_a_bom(tmp_path):
    from reader.task_reader import read_tsv
    path = tmp_path / "bom.tsv"
    path.write_bytes(BOM + "label\ttext_a\n1\t好\n".encode("utf-8"))
    assert read_tsv(str(path), ("label", "text_a")) == [(2, {"label": "1", "text_a": "好"})]
    path.write_bytes(BOM)
    with pytest.raises(Exception, match="empty file"):
        read_tsv(str(path))


def test_bom_tsv_entry_points(env, tmp_path):
    """A training set and a predict set saved with a BOM (as Windows editors do) work."""
    train = env.write("bom_train.tsv", BOM + "label\ttext_a\n1\t好的很\n0\t质量差\n".encode())
    predict = env.write("bom_predict.tsv", BOM + "text_a\n好的很\n质量差\n".encode())
    for entry, argv in (("run_classifier", run_classifier_argv(env, train_set=train)),
                        ("predict_classifier", predict_classifier_argv(env,
                                                                       predict_set=predict))):
        cwd = tmp_path / entry
        cwd.mkdir()
        code, stderr = run_in_process(entry, argv, cwd)
        assert code == 0, stderr

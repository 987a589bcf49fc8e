"""serving.folder without a model: telling a model folder from a checkpoint, checking the
manifest, and the flags a folder stands for (the exports themselves: tests/serving/test_api.py);
and what killed writes of a folder leave behind (utils.fileio)."""
import argparse
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from ernie_testkit import REPO, run_entry
from serving.folder import (
    FORMAT_VERSION,
    ExportPlan,
    check_replaceable,
    is_model_folder,
    label_names,
    manifest_digest,
    read_manifest,
    sha256,
    use_folder,
)
from utils.errors import DataError, UsageError
from utils.fileio import atomic_dir, atomic_write_text


def write_folder(d, task="classify", **changes):
    """A folder whose manifest lists vocab.txt and ernie_config.json (no programs)."""
    d.mkdir(parents=True, exist_ok=True)
    (d / "vocab.txt").write_text("[PAD]\n[CLS]\n[SEP]\n[UNK]\n")
    (d / "ernie_config.json").write_text('{"hidden_size": 16}')
    manifest = {"format_version": FORMAT_VERSION, "task": task, "num_labels": 2,
                "labels": ["neg", "pos"],
                "tokenizer": {"tokenizer": "FullTokenizer", "do_lower_case": True,
                              "for_cn": True, "max_seq_len": 128, "sentence_piece_model": None},
                "task_id": 0, "programs": {"task": "model", "encoder": "encoder"},
                "files": {n: sha256(d / n) for n in ("vocab.txt", "ernie_config.json")}}
    manifest.update(changes)
    (d / "manifest.json").write_text(json.dumps(manifest))
    return d


def test_a_training_checkpoint_is_not_a_model_folder(tmp_path):
    ckpt = tmp_path / "step_2"
    ckpt.mkdir()
    (ckpt / "manifest.json").write_text(json.dumps({"format": "ernie checkpoint", "version": 1,
                                                    "files": {}}))
    assert not is_model_folder(ckpt)
    with pytest.raises(DataError, match="not a model folder .a training checkpoint"):
        read_manifest(ckpt)
    assert not is_model_folder(tmp_path / "nothing") and not is_model_folder(None)
    assert is_model_folder(write_folder(tmp_path / "folder"))


def test_read_manifest_checks_every_listed_file(tmp_path):
    d = write_folder(tmp_path / "f")
    assert read_manifest(d)["labels"] == ["neg", "pos"]
    (d / "vocab.txt").write_text("[PAD]\n[CLS]\n[SEP]\nextra\n")
    with pytest.raises(DataError, match=r"vocab.txt: checksum does not match"):
        read_manifest(d)
    (d / "vocab.txt").unlink()
    with pytest.raises(DataError, match=r"vocab.txt: missing"):
        read_manifest(d)


@pytest.mark.parametrize("changes, said", [
    ({"format_version": 2}, "format_version 2"),
    ({"task": "summarise"}, "task 'summarise'"),
    ({"files": None}, "no \"files\""),
])
def test_a_manifest_of_another_kind_is_one_line_error(tmp_path, changes, said):
    d = write_folder(tmp_path / "f", **changes)
    with pytest.raises(DataError, match=said) as info:
        read_manifest(d)
    assert "\n" not in str(info.value)


def edit_manifest(d, edit):
    """Change the manifest.json of the folder `d` in place: edit(manifest dict)."""
    manifest = json.loads((d / "manifest.json").read_text())
    edit(manifest)
    (d / "manifest.json").write_text(json.dumps(manifest))
    return d


@pytest.mark.parametrize("edit, said", [
    (lambda m: m.pop("tokenizer"), r"tokenizer is missing"),
    (lambda m: m.update(labels=["neg"]),
     r"labels must be a list of 2 label names \(num_labels\), got \[\"neg\"\]"),
    (lambda m: m["tokenizer"].update(max_seq_len=None),
     r"tokenizer.max_seq_len must be an integer of at least 3, got null"),
    (lambda m: m["tokenizer"].update(max_seq_len=2), r"tokenizer.max_seq_len .* got 2"),
    (lambda m: m["tokenizer"].pop("for_cn"), r"tokenizer.for_cn is missing"),
    (lambda m: m["tokenizer"].update(sentence_piece_model="sp.model"),
     r"tokenizer.sentence_piece_model must be null or a file listed in \"files\", got "
     r"\"sp.model\""),
    (lambda m: m["programs"].pop("encoder"), r"programs.encoder is missing"),
    (lambda m: m.update(task="mrc", num_labels=None, labels=None, mrc={"doc_stride": "128"}),
     r"mrc.doc_stride must be a positive integer, got \"128\""),
])
def test_an_edited_manifest_field_is_one_line_error_naming_it(tmp_path, edit, said):
    d = edit_manifest(write_folder(tmp_path / "f"), edit)
    with pytest.raises(DataError, match=r"^%s: %s$" % (re.escape(str(d / "manifest.json")),
                                                       said)):
        read_manifest(d)


def test_a_damaged_manifest_beside_the_encoder_program_is_named_as_such(tmp_path):
    d = write_folder(tmp_path / "f")
    (d / "encoder.json").write_text("{}")
    (d / "manifest.json").write_text('{"format_version": 1,')
    assert is_model_folder(d)
    (tmp_path / "in.tsv").write_text("text_a\n好\n")
    code, _, err = run_entry("predict_classifier", [
        "--use_cuda", "false", "--init_checkpoint", d, "--predict_set", "in.tsv"], tmp_path)
    assert code == 1 and "manifest.json: not a json manifest (" in one_line_error(err)


def test_flags_come_from_the_folder_and_may_not_contradict_it(tmp_path):
    d = write_folder(tmp_path / "f")

    def args(**given):
        values = dict(init_checkpoint=str(d), max_seq_len=512, vocab_path=None,
                      ernie_config_path=None, do_lower_case=True, tokenizer="FullTokenizer",
                      num_labels=2, is_regression=False, label_map_config=None,
                      sentence_piece_model=None, for_cn=True)
        values.update(given)
        return argparse.Namespace(**values)

    a = args()
    use_folder(a, ["--init_checkpoint", str(d)], "init_checkpoint", ("classify",))
    assert a.max_seq_len == 128 and a.vocab_path == str(d / "vocab.txt")
    same_vocab = tmp_path / "v.txt"
    same_vocab.write_text((d / "vocab.txt").read_text())
    a = args(vocab_path=str(same_vocab), max_seq_len=128)
    use_folder(a, ["--vocab_path", str(same_vocab), "--max_seq_len=128"], "init_checkpoint",
               ("classify",))
    with pytest.raises(UsageError, match="--max_seq_len 64 contradicts the model folder"):
        use_folder(args(max_seq_len=64), ["--max_seq_len", "64"], "init_checkpoint",
                   ("classify",))
    with pytest.raises(UsageError, match="--vocab_path"):
        use_folder(args(vocab_path=str(tmp_path / "f" / "ernie_config.json")),
                   ["--vocab_path", "x"], "init_checkpoint", ("classify",))
    with pytest.raises(UsageError, match="task classify, not tag"):
        use_folder(args(), [], "init_checkpoint", ("tag",))


def test_label_names_follow_predict_classifier():
    # aliases on one id: the last one names it, as predict_classifier.py's --output_file
    assert label_names({"contradictory": 0, "contradiction": 0, "entailment": 1}, 3) == \
        ["contradiction", "entailment", "2"]
    assert label_names(None, 2) == ["0", "1"]


def one_line_error(err):
    """The stderr of a command-line failure: one line, no traceback."""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def test_a_file_or_a_manifest_directory_is_one_line_error(tmp_path):
    import serving.api
    file = tmp_path / "some_file.tsv"
    file.write_text("text_a\nx\n")
    for load in (read_manifest, serving.api.load):
        with pytest.raises(DataError, match="some_file.tsv is not a model folder") as info:
            load(file)
        assert "\n" not in str(info.value)
    d = write_folder(tmp_path / "f")
    (d / "manifest.json").unlink()
    (d / "manifest.json").mkdir()
    with pytest.raises(DataError, match="f: manifest.json is not a file"):
        read_manifest(d)
    assert not is_model_folder(d) and not is_model_folder(file)
    # the server's command line: a one-line error, before any model loads
    for target, said in ((file, "is not a model folder"), (d, "manifest.json is not a file")):
        proc = subprocess.run([sys.executable, "-m", "serving.server", str(target)], cwd=REPO,
                              capture_output=True, text=True, timeout=300)
        assert proc.returncode == 1 and said in one_line_error(proc.stderr), proc.stderr


def test_export_to_an_existing_file_is_one_line_error(tmp_path):
    d = write_folder(tmp_path / "src")
    file = tmp_path / "taken"
    file.write_text("not a folder")
    with pytest.raises(UsageError, match="taken is a file"):
        ExportPlan("encode", d, d / "ernie_config.json", d / "vocab.txt").write(str(file))
    proc = subprocess.run([sys.executable, "-m", "serving.export", "--init_checkpoint", str(d),
                           "--task", "encode", "--ernie_config_path",
                           str(d / "ernie_config.json"), "--vocab_path", str(d / "vocab.txt"),
                           "--output_dir", str(file)], cwd=REPO, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 2, proc.stderr
    assert "--output_dir" in one_line_error(proc.stderr) and "is a file" in proc.stderr
    assert file.read_text() == "not a folder"


def test_export_over_a_folder_of_other_files_is_refused(tmp_path):
    # (exports over an earlier model folder replace it: tests/serving/test_api.py)
    d = write_folder(tmp_path / "src")
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.md").write_text("keep me")
    plan = ExportPlan("encode", d, d / "ernie_config.json", d / "vocab.txt")
    with pytest.raises(UsageError, match="refusing to replace .*notes.md"):
        plan.write(str(mine))
    assert (mine / "notes.md").read_text() == "keep me"


def test_export_over_a_model_folder_holding_other_files_is_refused(tmp_path):
    d = write_folder(tmp_path / "src")
    mine = write_folder(tmp_path / "mine")
    (mine / "notes.txt").write_text("keep me")
    (mine / "results").mkdir()
    plan = ExportPlan("encode", d, d / "ernie_config.json", d / "vocab.txt")
    with pytest.raises(UsageError, match=r"^refusing to replace the model folder %s: it also "
                                         r"holds 'notes.txt', which is not part of it; move it "
                                         r"or choose another folder$" % re.escape(str(mine))):
        plan.write(str(mine))
    (mine / "notes.txt").unlink()
    with pytest.raises(UsageError, match="it also holds 'results'"):
        plan.write(str(mine))
    assert (mine / "results").is_dir() and read_manifest(mine)


def test_what_int8_calibration_adds_or_leaves_in_a_folder_may_be_replaced(tmp_path):
    mine = write_folder(tmp_path / "mine")
    # programs of a calibration killed before it listed them, and its manifest's copy
    for name in ("model_int8_ab12cd34_7.pdmodel", "encoder_int8_ab12cd34_7.int8.json",
                 "manifest.json.tmp-7"):
        (mine / name).write_text("x")
    check_replaceable(str(mine))
    # a damaged manifest lists nothing: the files an export writes may be replaced
    (mine / "encoder.json").write_text("{}")
    (mine / "manifest.json").write_text("{")
    check_replaceable(str(mine))
    (mine / "notes.txt").write_text("keep me")
    with pytest.raises(UsageError, match="it also holds 'notes.txt'"):
        check_replaceable(str(mine))


def sentencepiece_model(path):
    import io

    import sentencepiece
    model = io.BytesIO()
    sentencepiece.SentencePieceTrainer.train(
        sentence_iterator=iter(["这个手机不错", "质量差", "好的很"] * 5), model_writer=model,
        vocab_size=20, hard_vocab_limit=False, minloglevel=2, num_threads=1)
    path.write_bytes(model.getvalue())
    return path


def test_the_sentencepiece_model_is_stored_under_a_name_of_its_own(tmp_path):
    d = write_folder(tmp_path / "src")
    sp = tmp_path / "model.pdiparams"   # named like the task program's parameters
    sp.write_bytes(b"pieces")
    plan = ExportPlan("classify", d, d / "ernie_config.json", d / "vocab.txt",
                      tokenizer="SentencepieceTokenizer", sentence_piece_model=sp)
    assert plan.copies == {"vocab.txt": str(d / "vocab.txt"),
                           "ernie_config.json": str(d / "ernie_config.json"),
                           "sentencepiece.model": str(sp)}
    assert plan.manifest["tokenizer"]["sentence_piece_model"] == "sentencepiece.model"


def test_a_folder_with_the_sentencepiece_model_under_its_old_name_loads(tmp_path):
    import serving.api
    d = write_folder(tmp_path / "f")
    sp = sentencepiece_model(d / "spm.model")

    def old_name(manifest):
        manifest["files"]["spm.model"] = sha256(sp)
        manifest["tokenizer"].update(tokenizer="SentencepieceTokenizer",
                                     sentence_piece_model="spm.model")
    edit_manifest(d, old_name)
    model = serving.api.load(d, predictor=False)
    assert model.reader.tokenizer.model_file == str(sp)
    assert model.token_count("质量差") > 2


def test_the_manifest_digest_tells_one_export_from_another(tmp_path):
    d = write_folder(tmp_path / "f")
    digest = manifest_digest(read_manifest(d))
    assert digest == manifest_digest(read_manifest(d))
    assert manifest_digest(read_manifest(write_folder(d, task="tag"))) != digest
    # the same settings, another vocabulary
    manifest = json.loads((write_folder(d) / "manifest.json").read_text())
    (d / "vocab.txt").write_text("[PAD]\n[CLS]\n[SEP]\nnew\n")
    manifest["files"]["vocab.txt"] = sha256(d / "vocab.txt")
    (d / "manifest.json").write_text(json.dumps(manifest))
    assert manifest_digest(read_manifest(d)) != digest


# ---- what writes that were killed left behind (utils.fileio) ----------------------------------

def killed_writer(dest, kind):
    """The pid of a process killed (kill -9) in the middle of an atomic write to `dest`."""
    write = {"dir": "with atomic_dir(dest) as tmp:\n    open(tmp + '/half', 'w').write('x')",
             "file": "with atomic_path(dest) as tmp:\n    open(tmp, 'w').write('x')"}[kind]
    code = ("import os, sys\nfrom utils.fileio import atomic_dir, atomic_path\n"
            "dest = sys.argv[1]\n%s\n    os.kill(os.getpid(), 9)\n" % write)
    proc = subprocess.Popen([sys.executable, "-c", code, str(dest)], cwd=REPO)
    assert proc.wait(120) == -9
    return proc.pid


@pytest.fixture
def live_pid():
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    yield proc.pid
    proc.kill()
    proc.wait()


def test_a_later_write_removes_what_killed_writes_left(tmp_path, live_pid):
    dest = tmp_path / "model_dir"
    dead = killed_writer(dest, "dir")
    assert sorted(os.listdir(tmp_path)) == ["model_dir.tmp-%d" % dead]
    # a writer killed between atomic_dir's renames: the old copy moved aside
    (tmp_path / ("model_dir.old-%d" % dead)).mkdir()
    (tmp_path / ("model_dir.tmp-%d" % live_pid)).mkdir()   # a write under way
    (tmp_path / "model_dir.tmp-x").mkdir()                 # not a name atomic_dir makes
    (tmp_path / ("other.tmp-%d" % dead)).mkdir()             # another destination's
    with atomic_dir(str(dest)) as tmp:
        (Path(tmp) / "manifest.json").write_text("{}")
    assert sorted(os.listdir(tmp_path)) == sorted([
        "model_dir", "model_dir.tmp-%d" % live_pid, "model_dir.tmp-x", "other.tmp-%d" % dead])
    assert os.listdir(dest) == ["manifest.json"]


def test_a_failed_write_leaves_what_killed_writes_left(tmp_path):
    dest = tmp_path / "model_dir"
    dead = killed_writer(dest, "dir")
    with pytest.raises(RuntimeError):
        with atomic_dir(str(dest)):
            raise RuntimeError("export failed")
    # no model_dir: what the killed write left may be all there is of it
    assert sorted(os.listdir(tmp_path)) == ["model_dir.tmp-%d" % dead]


def test_a_later_file_write_removes_what_killed_writes_left(tmp_path):
    dest = tmp_path / "pred.tsv"
    dead = killed_writer(dest, "file")
    assert sorted(os.listdir(tmp_path)) == ["pred.tsv.tmp-%d" % dead]
    atomic_write_text(str(dest), "ok\n")
    assert sorted(os.listdir(tmp_path)) == ["pred.tsv"]


def test_adding_int8_programs_changes_the_digest_at_int8_only(tmp_path):
    d = write_folder(tmp_path / "f", source_checkpoint={"path": "a", "files": {}})
    manifest = read_manifest(d)
    moved = dict(manifest, source_checkpoint={"path": "b", "files": {}})
    assert manifest_digest(moved) == manifest_digest(manifest)   # where it came from
    int8 = dict(manifest, int8={"programs": {"task": "model_int8"}},
                files=dict(manifest["files"], **{"model_int8.pdiparams": "0" * 64}))
    assert manifest_digest(int8) == manifest_digest(manifest)
    assert manifest_digest(int8, "int8") != manifest_digest(manifest, "int8")

"""`python -m tools.pretrain_data text` on a corpus that gives no pretraining sample (empty,
blank lines only, or no line holding two sentences) stops with one error line naming the
input, and writes nothing (it used to write empty file lists, which training then refused)."""
import contextlib
import io
import os

import pytest

from tools import pretrain_data
from utils.errors import DataError, run_cli

pytest.importorskip("jieba")


def run(argv):
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        with pytest.raises(SystemExit) as exit_:
            run_cli(pretrain_data.main, argv)
    return exit_.value.code, err.getvalue()


@pytest.mark.parametrize("content,why", [
    ("", "no non-empty line"),
    ("\n   \n\t\n", "no non-empty line"),
    ("自然语言处理是人工智能的一个重要方向。\n北京大学位于海淀区\n",
     "no line holds two sentences")])
def test_a_corpus_without_samples_is_an_error(tmp_path, content, why):
    src = tmp_path / "corpus.txt"
    src.write_text(content, encoding="utf-8")
    out = tmp_path / "out"
    code, err = run(["text", "--input", str(src), "--output_dir", str(out), "--min_count", "1"])
    assert code == 1
    assert err.splitlines() == [
        "error: %s: no text to make pretraining samples from: %s (a sample pairs a sentence "
        "with the next one of the same line)" % (src, why)]
    assert not out.exists()


def test_every_input_is_named(tmp_path):
    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    a.write_text("", encoding="utf-8")
    b.write_text("一句话。\n", encoding="utf-8")
    with pytest.raises(DataError, match="^%s, %s: no text" % (a, b)):
        pretrain_data.main(["text", "--input", str(a), str(b), "--output_dir",
                            str(tmp_path / "out")])
    assert not (tmp_path / "out").exists()


def test_one_line_of_two_sentences_is_enough(tmp_path):
    src = tmp_path / "corpus.txt"
    src.write_text("北京大学位于海淀区。清华大学也在附近。\n", encoding="utf-8")
    out = tmp_path / "out"
    assert pretrain_data.main(["text", "--input", str(src), "--output_dir", str(out),
                               "--min_count", "1", "--valid_fraction", "0"]) == 0
    assert (out / "train_filelist").read_text().startswith("train/part-00000.gz\t1.1\n")
    assert os.path.getsize(out / "train" / "part-00000.gz") > 0

"""serving.folder without a model: telling a model folder from a checkpoint, checking the
manifest, and the flags a folder stands for (the exports themselves: tests/serving/test_api.py)."""
import argparse
import json

import pytest

from serving.folder import (
    FORMAT_VERSION,
    is_model_folder,
    label_names,
    read_manifest,
    sha256,
    use_folder,
)
from utils.errors import DataError, UsageError


def write_folder(d, task="classify", **changes):
    """A folder whose manifest lists vocab.txt and ernie_config.json (no programs)."""
    d.mkdir(parents=True, exist_ok=True)
    (d / "vocab.txt").write_text("[PAD]\n[CLS]\n[SEP]\n")
    (d / "ernie_config.json").write_text("{}")
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

"""No silent wrong answers from a checkpoint without its task head or a label map that merges
classes (the failing cases are in tests/test_bad_inputs.py, block "task heads and label maps").

Here: what still works and what is said. Training from a checkpoint without the head
initialises the head afresh and says so in one line; a 2019 sequence labelling or reading
comprehension checkpoint, which has no pooler (`pooled_fc`, unused by those tasks), still
predicts and evaluates; a label map whose aliases share an id (the 2019 XNLI map has
"contradictory" and "contradiction" both 0) still trains and predicts.
"""
import json
import os

import numpy as np
import pytest

from ernie_testkit import (
    Env,
    add_classifier_head,
    add_sequence_label_head,
    predict_classifier_argv,
    predict_ner_argv,
    run_classifier_argv,
    run_entry,
    run_mrc_argv,
    run_ner_argv,
)


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    return Env(tmp_path_factory.mktemp("heads"))


def run(name, argv, cwd):
    """(exit code, stdout lines, stderr lines) of `run_cli(<name>.main, argv)` in `cwd`."""
    cwd.mkdir(parents=True, exist_ok=True)
    code, out, err = run_entry(name, argv, cwd)
    return code, out.splitlines(), err.splitlines()


def without(*names):
    """Damage for `params_copy`: remove these parameter files."""
    def damage(directory):
        for name in names:
            (directory / name).unlink()
    return damage


def both(*damages):
    def damage(directory):
        for d in damages:
            d(directory)
    return damage


def add_mrc_head(hidden=16):
    def damage(directory):
        from utils.format_paddle2019 import write_legacy_tensor
        write_legacy_tensor(str(directory / "cls_mrc_out_w"), np.zeros((hidden, 2), "float32"))
        write_legacy_tensor(str(directory / "cls_mrc_out_b"), np.zeros((2,), "float32"))
    return damage


@pytest.mark.parametrize("entry, build, head", [
    ("run_classifier", run_classifier_argv, ["_cls_out_b", "_cls_out_w"]),
    ("run_sequence_labeling", run_ner_argv, ["cls_seq_label_out_b", "cls_seq_label_out_w"]),
    ("run_mrc", run_mrc_argv, ["cls_mrc_out_b", "cls_mrc_out_w"]),
])
def test_training_from_a_checkpoint_without_the_head_says_so_once(env, tmp_path, entry, build,
                                                                   head):
    ckpt = env.params_copy("params_nohead")
    code, out, err = run(entry, build(env, init_pretraining_params=None, init_checkpoint=ckpt),
                         tmp_path)
    assert code == 0, err
    said = [line for line in out if head[1] in line]
    assert said == ["task head initialised afresh (not in %s): %s" % (ckpt, ", ".join(head))], out


def test_a_2019_sequence_labelling_checkpoint_without_the_pooler_predicts_and_evaluates(
        env, tmp_path):
    """2019 built the NER program without the pooler: its checkpoints have no pooled_fc."""
    ckpt = env.params_copy("params_ner3_nopool", both(
        add_sequence_label_head(3), without("pooled_fc.w_0", "pooled_fc.b_0")))
    code, out, err = run("predict_sequence_labeling",
                         predict_ner_argv(env, init_checkpoint=ckpt), tmp_path / "predict")
    assert code == 0, err
    code, out, err = run("run_sequence_labeling", run_ner_argv(
        env, do_train="false", do_val="true", dev_set=env.ner_train,
        init_pretraining_params=None, init_checkpoint=ckpt), tmp_path / "eval")
    assert code == 0, err


def test_a_2019_mrc_checkpoint_without_the_pooler_evaluates(env, tmp_path):
    ckpt = env.params_copy("params_mrc_nopool", both(
        add_mrc_head(), without("pooled_fc.w_0", "pooled_fc.b_0")))
    code, out, err = run("run_mrc", run_mrc_argv(
        env, do_train="false", do_val="true", dev_set=env.mrc_train,
        init_pretraining_params=None, init_checkpoint=ckpt), tmp_path)
    assert code == 0, err


def test_a_classifier_checkpoint_needs_its_pooler(env, tmp_path):
    """The classifier reads the pooled [CLS] output: its pooler is part of what it predicts
    with."""
    ckpt = env.params_copy("params_cls2_nopool", both(
        add_classifier_head(2), without("pooled_fc.w_0", "pooled_fc.b_0")))
    code, out, err = run("predict_classifier", predict_classifier_argv(env, init_checkpoint=ckpt),
                         tmp_path)
    assert code == 1 and len(err) == 1, err
    assert str(ckpt) in err[0] and "pooled_fc.b_0, pooled_fc.w_0" in err[0], err
    assert os.listdir(tmp_path) == []


XNLI_MAP = {"contradictory": 0, "contradiction": 0, "entailment": 1, "neutral": 2}


def test_aliases_that_share_an_id_train_and_predict(env, tmp_path):
    """Two names of one class (XNLI's training data says "contradictory", its dev and test
    data "contradiction") may share an id while every one of the --num_labels outputs keeps
    a label: nothing is merged that the model could tell apart."""
    label_map = env.write("xnli_labels.json", json.dumps(XNLI_MAP))
    train = env.write("xnli_train.tsv", "label\ttext_a\ncontradictory\t好的很\n"
                      "contradiction\t质量差\nentailment\t这个手机不错\nneutral\tabc\n")
    code, out, err = run("run_classifier", run_classifier_argv(
        env, label_map_config=label_map, num_labels="3", train_set=train,
        checkpoints=tmp_path / "ckpt"), tmp_path)
    assert code == 0, err
    step = next((tmp_path / "ckpt").iterdir())
    code, out, err = run("predict_classifier", predict_classifier_argv(
        env, init_checkpoint=step, label_map_config=label_map, num_labels="3",
        output_file=tmp_path / "pred.tsv"), tmp_path)
    assert code == 0, err
    labels = [line.split("\t")[-1] for line in (tmp_path / "pred.tsv").read_text().splitlines()]
    assert labels and set(labels) <= set(XNLI_MAP), labels


def test_label_map_reader_rejects_duplicate_keys_and_shared_ids(tmp_path):
    from reader.task_reader import check_label_map_ids, load_label_map
    from utils.errors import DataError, UsageError
    path = tmp_path / "m.json"
    path.write_text('{"a": 0, "b": 1, "a": 2}')
    with pytest.raises(DataError, match=r"m.json: label 'a' appears twice"):
        load_label_map(str(path))
    path.write_text(json.dumps({"a": 0, "b": 0, "c": 1}))
    label_map = load_label_map(str(path))
    check_label_map_ids(label_map, str(path), 2)      # aliases: both outputs keep a label
    with pytest.raises(DataError, match=r"labels 'a' and 'b' share id 0.*no label has id 2"):
        check_label_map_ids(label_map, str(path), 3)
    with pytest.raises(UsageError, match=r"label 'c' has id 1.*--num_labels 1"):
        check_label_map_ids(label_map, str(path), 1)

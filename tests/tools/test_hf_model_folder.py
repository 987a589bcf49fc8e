"""`convert_params` and whole model folders: a 2019 MODEL_PATH (params/, vocab.txt,
ernie_config.json) -> HF folder (weights, config with label names, BertTokenizer files) ->
`--to paddle2019` MODEL_PATH again, with the same parameters, config and vocabulary; and the
one-line refusals that leave nothing behind."""
import json

import numpy as np
import pytest

from ernie_testkit import assert_same, ernie_config, ernie_params
from tokenization import load_vocab
from tools.convert_params import main
from utils.errors import run_cli
from utils.format_paddle2019 import read_legacy_dir, write_legacy_dir

pytest.importorskip("safetensors")


def cli(argv, capsys):
    with pytest.raises(SystemExit) as e:
        run_cli(main, [str(a) for a in argv])
    out, err = capsys.readouterr()
    return e.value.code, out, err


def model_dir(d, heads=("cls",), num_labels=3):
    """A 2019 MODEL_PATH with a `token<TAB>id` vocabulary of ernie_config's vocab_size."""
    params = ernie_params(False, heads, num_labels=num_labels)
    write_legacy_dir(params, d / "params")
    cfg = ernie_config(False)
    (d / "ernie_config.json").write_text(json.dumps(cfg))
    tokens = ["[PAD]", "[CLS]", "[SEP]", "[MASK]", "[UNK]"] + \
        ["t%d" % i for i in range(cfg["vocab_size"] - 5)]
    (d / "vocab.txt").write_text("".join("%s\t%d\n" % (t, i) for i, t in enumerate(tokens)))
    return params, cfg


def test_model_folder_round_trip(tmp_path, capsys):
    transformers = pytest.importorskip("transformers")
    params, cfg = model_dir(tmp_path / "m")
    (tmp_path / "labels.json").write_text(json.dumps({"b": 1, "a": 0, "c": 2, "cc": 2}))
    code, out, err = cli([tmp_path / "m", tmp_path / "hf", "--to", "hf", "--label_map_config",
                          tmp_path / "labels.json", "--do_lower_case", "false"], capsys)
    assert code == 0, err
    hf_cfg = json.loads((tmp_path / "hf" / "config.json").read_text())
    assert hf_cfg["id2label"] == {"0": "a", "1": "b", "2": "c"}      # "cc": an alias of 2
    assert hf_cfg["label2id"] == {"a": 0, "b": 1, "c": 2, "cc": 2}
    tok = transformers.AutoTokenizer.from_pretrained(str(tmp_path / "hf"))
    assert tok.do_lower_case is False and tok.model_max_length == cfg["max_position_embeddings"]
    assert tok("t3 T3 t9")["input_ids"] == [1, 8, 4, 14, 2]

    # HF -> a whole MODEL_PATH
    back = tmp_path / "back"
    code, out, err = cli([tmp_path / "hf", back, "--to", "paddle2019"], capsys)
    assert code == 0, err
    assert "note: " in err and "do_lower_case false" in err    # the cased tokenizer
    assert sorted(p.name for p in back.iterdir()) == ["ernie_config.json", "label_map.json",
                                                      "params", "vocab.txt"]
    # the label names come back as the 2019 label map, aliases too
    assert json.loads((back / "label_map.json").read_text()) == {"a": 0, "b": 1, "c": 2,
                                                                 "cc": 2}
    assert "label_map.json" in out
    assert_same(read_legacy_dir(back / "params"), params)
    assert json.loads((back / "ernie_config.json").read_text()) == cfg
    assert load_vocab(back / "vocab.txt") == load_vocab(tmp_path / "m" / "vocab.txt")
    # again over it: replaced; a DST `params` keeps the 2019 placement (config, vocab beside)
    code, out, err = cli([tmp_path / "hf", back, "--to", "paddle2019"], capsys)
    assert code == 0, err
    code, out, err = cli([tmp_path / "hf", tmp_path / "m2" / "params", "--to", "paddle2019"],
                         capsys)
    assert code == 0, err
    assert sorted(p.name for p in (tmp_path / "m2").iterdir()) == ["ernie_config.json",
                                                                    "params", "vocab.txt"]
    # a tagger without label names (LABEL_i) gets no label map
    model_dir(tmp_path / "ner", heads=("ner",), num_labels=4)
    assert cli([tmp_path / "ner", tmp_path / "ner_hf", "--to", "hf"], capsys)[0] == 0
    assert cli([tmp_path / "ner_hf", tmp_path / "ner_back", "--to", "paddle2019"], capsys)[0] == 0
    assert not (tmp_path / "ner_back" / "label_map.json").exists()
    assert (tmp_path / "m2" / "vocab.txt").read_bytes() == \
        (tmp_path / "hf" / "vocab.txt").read_bytes()
    # and to HF once more: the MODEL_PATH's label_map.json names the labels without the flag
    code, out, err = cli([back, tmp_path / "hf2", "--to", "hf"], capsys)
    assert code == 0, err
    assert "label_map.json" in out
    hf2 = json.loads((tmp_path / "hf2" / "config.json").read_text())
    assert hf2["id2label"] == hf_cfg["id2label"] and hf2["label2id"] == hf_cfg["label2id"]


def test_step_checkpoint_with_vocab_and_config_flags(tmp_path, capsys):
    params, cfg = model_dir(tmp_path / "m", heads=("ner",), num_labels=4)
    step = tmp_path / "checkpoints" / "step_7"
    write_legacy_dir(params, step)
    (step / "train_state.json").write_text("{}")
    code, out, err = cli([step, tmp_path / "hf", "--to", "hf"], capsys)
    assert code == 2 and "--ernie_config_path" in err
    code, out, err = cli([step, tmp_path / "hf", "--to", "hf", "--ernie_config_path",
                          tmp_path / "m" / "ernie_config.json"], capsys)
    assert code == 0 and "no vocab.txt" in err and "--vocab_path" in err  # a note, no tokenizer
    assert not (tmp_path / "hf" / "vocab.txt").exists()
    code, out, err = cli([step, tmp_path / "hf", "--to", "hf", "--ernie_config_path",
                          tmp_path / "m" / "ernie_config.json", "--vocab_path",
                          tmp_path / "m" / "vocab.txt"], capsys)
    assert code == 0, err
    assert "ErnieForTokenClassification and its tokenizer" in out
    hf_cfg = json.loads((tmp_path / "hf" / "config.json").read_text())
    assert hf_cfg["id2label"] == {str(i): "LABEL_%d" % i for i in range(4)}
    assert (tmp_path / "hf" / "vocab.txt").read_text().split("\n")[:3] == ["[PAD]", "[CLS]",
                                                                          "[SEP]"]


def test_refusals_are_one_line_and_write_nothing(tmp_path, capsys):
    model_dir(tmp_path / "m")
    (tmp_path / "labels.json").write_text(json.dumps({"a": 0, "z": 5}))
    code, out, err = cli([tmp_path / "m", tmp_path / "hf", "--to", "hf", "--label_map_config",
                          tmp_path / "labels.json"], capsys)
    assert code == 1 and err.count("\n") == 1 and "labels.json" in err and "'z'" in err
    assert not (tmp_path / "hf").exists()

    code, out, err = cli([tmp_path / "m", tmp_path / "x.pdparams", "--to", "pdparams",
                          "--label_map_config", tmp_path / "labels.json"], capsys)
    assert code == 2 and err.count("\n") == 1 and "--to hf" in err
    code, out, err = cli([tmp_path / "m", tmp_path / "x", "--to", "paddle2019", "--vocab_path",
                          tmp_path / "m" / "vocab.txt"], capsys)
    assert code == 2 and err.count("\n") == 1 and "--vocab_path" in err
    assert not (tmp_path / "x").exists() and not (tmp_path / "x.pdparams").exists()

    # a vocabulary bigger than the model's embedding
    big = tmp_path / "big_vocab.txt"
    big.write_text("\n".join(["[PAD]", "[CLS]", "[SEP]", "[UNK]"] +
                             ["w%d" % i for i in range(60)]) + "\n")
    code, out, err = cli([tmp_path / "m", tmp_path / "hf", "--to", "hf", "--vocab_path", big],
                         capsys)
    assert code == 1 and err.count("\n") == 1 and "big_vocab.txt" in err and "vocab_size" in err
    assert not (tmp_path / "hf").exists()

    # HF -> a DST folder holding something else is not replaced
    code, out, err = cli([tmp_path / "m", tmp_path / "hf", "--to", "hf"], capsys)
    assert code == 0, err
    dst = tmp_path / "busy"
    dst.mkdir()
    (dst / "notes.md").write_text("mine")
    code, out, err = cli([tmp_path / "hf", dst, "--to", "paddle2019"], capsys)
    assert code == 2 and err.count("\n") == 1 and "notes.md" in err
    assert [p.name for p in dst.iterdir()] == ["notes.md"]


def test_regression_head_is_not_squashed(tmp_path, capsys):
    params, _ = model_dir(tmp_path / "m", num_labels=1)
    code, out, err = cli([tmp_path / "m", tmp_path / "hf", "--to", "hf"], capsys)
    assert code == 0, err
    hf_cfg = json.loads((tmp_path / "hf" / "config.json").read_text())
    assert hf_cfg["problem_type"] == "regression" and hf_cfg["id2label"] == {"0": "LABEL_0"}
    assert np.asarray(params["_cls_out_w"]).shape[1] == 1

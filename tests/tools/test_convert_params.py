"""python -m tools.convert_params: conversions between the three formats, and one-line errors."""
import json
import subprocess
import sys

import numpy as np
import pytest

from ernie_testkit import REPO, assert_same, ernie_config, ernie_params
from tools.convert_params import main
from utils import checkpoint as ckpt
from utils import format_paddle2019, format_pdparams
from utils.errors import run_cli


def cli(argv, capsys):
    with pytest.raises(SystemExit) as e:
        run_cli(main, [str(a) for a in argv])
    out, err = capsys.readouterr()
    return e.value.code, out, err


def test_convert_2019_to_hf_and_back(tmp_path, capsys):
    import transformers
    model_dir = tmp_path / "ernie"
    params = ernie_params(True, ("pretraining",))
    format_paddle2019.write_legacy_dir(params, model_dir / "params")
    cfg = ernie_config(True)
    (model_dir / "ernie_config.json").write_text(json.dumps(cfg))

    # the config is found beside params/
    code, out, err = cli([model_dir, tmp_path / "hf", "--to", "hf"], capsys)
    assert code == 0, err
    assert "ErnieForPreTraining" in out
    _, info = transformers.ErnieForPreTraining.from_pretrained(str(tmp_path / "hf"),
                                                              output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"]

    # HF -> 2019 writes ernie_config.json beside the output
    out_dir = tmp_path / "back"
    out_dir.mkdir()
    code, out, err = cli([tmp_path / "hf", out_dir / "params", "--to", "paddle2019"], capsys)
    assert code == 0, err
    assert_same(format_paddle2019.read_legacy_dir(out_dir / "params"), params)
    assert json.loads((out_dir / "ernie_config.json").read_text()) == cfg

    # HF -> pdparams, then pdparams -> hf with an explicit config and base head
    code, _, err = cli([tmp_path / "hf", out_dir / "m.pdparams", "--to", "pdparams"], capsys)
    assert code == 0, err
    assert_same(format_pdparams.read_pdparams(out_dir / "m.pdparams"), params)
    code, _, err = cli([out_dir / "m.pdparams", tmp_path / "hf_base", "--to", "hf", "--head",
                        "base", "--ernie_config_path", out_dir / "ernie_config.json"], capsys)
    assert code == 0, err
    assert json.loads((tmp_path / "hf_base" / "config.json").read_text())["architectures"] == [
        "ErnieModel"]
    assert_same(ckpt.load_params(tmp_path / "hf_base"), params)


def test_cli_errors_are_one_line(tmp_path, capsys):
    code, out, err = cli([tmp_path / "nope", tmp_path / "out", "--to", "pdparams"], capsys)
    assert code == 2 and err.startswith("error: ") and "nope" in err and err.count("\n") == 1

    d = tmp_path / "params"
    format_paddle2019.write_legacy_dir({"a": np.ones((3, 4), np.float32)}, d)
    (d / "a").write_bytes((d / "a").read_bytes()[:-5])
    code, out, err = cli([d, tmp_path / "o.pdparams", "--to", "pdparams"], capsys)
    assert code == 1 and err.count("\n") == 1
    assert err.startswith("error: %s: truncated tensor file" % (d / "a"))
    assert not (tmp_path / "o.pdparams").exists()

    format_paddle2019.write_legacy_dir({"a": np.ones((3, 4), np.float32)}, d)
    code, out, err = cli([d, tmp_path / "hf", "--to", "hf"], capsys)
    assert code == 2 and "--ernie_config_path" in err and err.count("\n") == 1
    code, out, err = cli([d, tmp_path / "x", "--to", "onnx"], capsys)
    assert code == 2 and err.startswith("error: ") and err.count("\n") == 1


def test_cli_subprocess_no_traceback(tmp_path):
    bad = tmp_path / "params"
    bad.mkdir()
    (bad / "word_embedding").write_bytes(b"\x01\x02\x03\x04" * 10)
    r = subprocess.run([sys.executable, "-m", "tools.convert_params", str(bad),
                        str(tmp_path / "o"), "--to", "paddle2019"],
                       cwd=REPO, capture_output=True, text=True, timeout=120)
    assert r.returncode != 0
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "word_embedding" in lines[0]
    assert "Traceback" not in r.stderr and not (tmp_path / "o").exists()

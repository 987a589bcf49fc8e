"""Convert ERNIE parameters between the 2019 `params/` directory, `.pdparams` and HF.

    python -m tools.convert_params SRC DST --to {paddle2019,pdparams,hf}
                                   [--ernie_config_path JSON] [--head HEAD]

SRC is detected by content: a 2019 parameter directory (or a model directory holding
`params/`), a `.pdparams` file, or a transformers directory (`config.json` + weights).
`--to hf` needs the model's 2019 `ernie_config.json`: `--ernie_config_path`, else an
`ernie_config.json` found in SRC or beside it.  When SRC is a HF directory, its
`config.json` is converted back and written beside a 2019 output as `ernie_config.json`.
"""
import json
import os

from utils import paddle_env
from utils.args import ArgumentParser
from utils.checkpoint import detect_format, load_params, save_params
from utils.errors import UsageError, run_cli
from utils.fileio import atomic_write_text, check_output_dir, check_output_file
from utils.format_hf import HEADS, hf_to_ernie_config, load_ernie_config, read_hf_dir, write_hf_dir


def _parser():
    ap = ArgumentParser(prog="python -m tools.convert_params",
                        description="Convert ERNIE parameters between the 2019 params/ "
                                    "directory, .pdparams and HuggingFace transformers formats.")
    ap.add_argument("src", help="2019 params/ dir (or model dir holding params/), "
                                ".pdparams file, or HF directory")
    ap.add_argument("dst", help="output directory (paddle2019, hf) or file (pdparams)")
    ap.add_argument("--to", required=True, choices=["paddle2019", "pdparams", "hf"],
                    help="output format")
    ap.add_argument("--ernie_config_path", default=None,
                    help="2019 ernie_config.json of the model (needed for --to hf)")
    ap.add_argument("--head", default="auto", choices=("auto",) + HEADS,
                    help="HF class for --to hf: base=ErnieModel, pretraining, cls, ner, mrc "
                         "(default: from the parameters)")
    return ap


def _find_ernie_config(src):
    """ernie_config.json in SRC (a model dir) or beside it, or None."""
    src = os.path.abspath(src)
    cands = []
    if os.path.isdir(src):
        cands.append(os.path.join(src, "ernie_config.json"))
    cands.append(os.path.join(os.path.dirname(src), "ernie_config.json"))
    for c in cands:
        if os.path.isfile(c):
            return c
    return None


def main(argv):
    paddle_env.apply()
    args = _parser().parse_args(argv)
    src, dst = args.src, args.dst
    if not os.path.exists(src):
        raise UsageError("%s: no such file or directory" % src)
    if os.path.exists(dst) and os.path.realpath(src) == os.path.realpath(dst):
        raise UsageError("SRC and DST are the same path: %s" % src)
    # DST is written through a sibling and renamed into place: it and its folder must be
    # writable (or creatable), checked before anything is read
    if args.to == "pdparams":
        check_output_file("DST", dst)
    else:
        check_output_dir("DST", dst)
        check_output_dir("DST", os.path.dirname(os.path.normpath(dst)) or os.curdir)
    ernie_config = None
    if args.ernie_config_path:
        if not os.path.isfile(args.ernie_config_path):
            raise UsageError("--ernie_config_path %s: no such file" % args.ernie_config_path)
        ernie_config = load_ernie_config(args.ernie_config_path)
    fmt = detect_format(src)
    hf_cfg = None
    if fmt == "hf":
        params, hf_cfg = read_hf_dir(src)
    else:
        params = load_params(src)
    print("Read %d parameters from %s (%s)" % (len(params), src, fmt))

    if ernie_config is None and hf_cfg is not None:
        ernie_config = hf_to_ernie_config(hf_cfg)

    if args.to == "hf":
        if ernie_config is None:
            found = _find_ernie_config(src)
            if found is None:
                raise UsageError("--to hf needs the model's ernie_config.json: give "
                                 "--ernie_config_path")
            print("Using ernie config %s" % found)
            ernie_config = load_ernie_config(found)
        arch = write_hf_dir(params, ernie_config, dst,
                            head=None if args.head == "auto" else args.head)
        print("Wrote %s to %s" % (arch, dst))
        return 0

    # 2019 outputs: from a HF source, also write the converted ernie_config.json beside.
    cfg_path = cfg_text = None
    if hf_cfg is not None:
        cfg_path = os.path.join(os.path.dirname(os.path.abspath(dst)), "ernie_config.json")
        cfg_text = json.dumps(ernie_config, indent=2, sort_keys=True) + "\n"
        if os.path.exists(cfg_path):
            with open(cfg_path, encoding="utf-8") as f:
                old = f.read()
            if old == cfg_text:
                cfg_path = None
            else:
                raise UsageError("%s exists with other content; move it away first (the "
                                 "converted config is written there)" % cfg_path)
    save_params(params, dst, args.to)
    print("Wrote %d parameters to %s (%s)" % (len(params), dst, args.to))
    if cfg_path is not None:
        atomic_write_text(cfg_path, cfg_text)
        print("Wrote %s" % cfg_path)
    return 0


if __name__ == "__main__":
    run_cli(main)

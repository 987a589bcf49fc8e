"""Convert ERNIE parameters between the 2019 `params/` directory, `.pdparams` and HF.

    python -m tools.convert_params SRC DST --to {paddle2019,pdparams,hf}
                                   [--ernie_config_path JSON] [--head HEAD]
                                   [--vocab_path VOCAB] [--do_lower_case BOOL]
                                   [--label_map_config JSON]

SRC is detected by content: a 2019 parameter directory (or a model directory holding
`params/`), a `.pdparams` file, or a transformers directory (`config.json` + weights).

`--to hf` needs the model's 2019 `ernie_config.json`: `--ernie_config_path`, else an
`ernie_config.json` found in SRC or beside it. The vocabulary (`--vocab_path`, else a
`vocab.txt` in SRC or beside it) becomes a BertTokenizer beside the weights, so that
`AutoTokenizer` and `pipeline()` load DST; the label map names a classifier's or tagger's
outputs in config.json (LABEL_i without one).

From a HF directory, `--to paddle2019 DST` writes the model folder DST the task scripts take as
MODEL_PATH: DST/params, DST/ernie_config.json (config.json converted back), the HF vocab.txt
and, for a classifier or tagger whose config.json names its labels (id2label), label_map.json;
a DST named `params` is that folder's params/, config and vocabulary written beside it.
"""
import json
import os
import shutil
import sys

from reader.task_reader import load_label_map
from tokenization import load_vocab
from utils import paddle_env
from utils.args import ArgumentParser, str2bool
from utils.checkpoint import detect_format, load_params, save_params
from utils.errors import DataError, UsageError, run_cli, where
from utils.fileio import (
    atomic_dir,
    atomic_path,
    atomic_write_text,
    check_output_dir,
    check_output_file,
)
from utils.format_hf import (
    HEADS,
    hf_to_ernie_config,
    hf_tokenizer_files,
    load_ernie_config,
    read_hf_dir,
    write_hf_dir,
)
from utils.format_paddle2019 import check_model_dir_replaceable


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
    ap.add_argument("--vocab_path", default=None,
                    help="--to hf: the 2019 vocabulary (default: vocab.txt in SRC or beside it)")
    ap.add_argument("--do_lower_case", type=str2bool, default=True,
                    help="--to hf: whether the tokenizer lower-cases and strips accents, as "
                         "the toolkit's --do_lower_case (default true)")
    ap.add_argument("--label_map_config", default=None,
                    help="--to hf: the 2019 label map json {label: id} of a classifier or "
                         "tagger, for config.json's id2label / label2id (default: "
                         "label_map.json in SRC or beside it)")
    return ap


def _find_beside(src, fname):
    """`fname` in SRC (a model dir) or beside it, or None."""
    src = os.path.abspath(src)
    cands = []
    if os.path.isdir(src):
        cands.append(os.path.join(src, fname))
    cands.append(os.path.join(os.path.dirname(src), fname))
    for c in cands:
        if os.path.isfile(c):
            return c
    return None


def _find_ernie_config(src):
    """ernie_config.json in SRC (a model dir) or beside it, or None."""
    return _find_beside(src, "ernie_config.json")


def _tokenizer_files(args, src, ernie_config):
    """The HF tokenizer files for --to hf, or None (with a note) when there is no vocabulary."""
    path = args.vocab_path or _find_beside(src, "vocab.txt")
    if path is None:
        print("note: no vocab.txt in or beside %s (give --vocab_path): DST gets no tokenizer"
              % src, file=sys.stderr)
        return None
    vocab = load_vocab(path)
    size = int(ernie_config["vocab_size"])
    if max(vocab.values()) >= size:
        raise DataError("%s: token id %d is beyond the model's vocab_size %d"
                        % (where(path), max(vocab.values()), size))
    print("Using vocabulary %s" % path)
    return hf_tokenizer_files(vocab, args.do_lower_case,
                              ernie_config["max_position_embeddings"], source=where(path))


def _label_map(params, hf_cfg):
    """The 2019 label map {name: id} of a HF classifier or tagger, or None (no such head, or
    transformers' default names LABEL_0, ..., which name nothing): config.json's label2id,
    which keeps the aliases a 2019 map may have (several names of one id), when it agrees
    with id2label; else id2label turned round."""
    id2label = hf_cfg.get("id2label") or {}
    if not any(k in params for k in ("_cls_out_w", "cls_seq_label_out_w")) or not id2label:
        return None
    names = {int(i): str(name) for i, name in id2label.items()}
    if all(name == "LABEL_%d" % i for i, name in names.items()):
        return None
    label2id = hf_cfg.get("label2id") or {}
    if all(label2id.get(name) == i for i, name in names.items()) and \
            set(label2id.values()) <= set(names):
        return {str(k): int(v) for k, v in sorted(label2id.items(), key=lambda kv: kv[1])}
    return {name: i for i, name in sorted(names.items())}


def _write_model_dir(params, ernie_config, hf_cfg, src, dst):
    """A whole 2019 MODEL_PATH from a HF directory: DST/params, DST/ernie_config.json,
    SRC's vocab.txt and, for a classifier or tagger with label names, label_map.json (the
    --label_map_config of the task scripts), replacing a DST that holds nothing else."""
    dst = os.path.normpath(dst)
    check_model_dir_replaceable("DST", dst)
    vocab = os.path.join(src, "vocab.txt")
    if not os.path.isfile(vocab):
        vocab = None
        print("note: %s has no vocab.txt: %s gets none" % (src, dst), file=sys.stderr)
    else:
        load_vocab(vocab)  # a vocabulary the toolkit cannot read stops here, not in a task
    _note_cased(src)
    label_map = _label_map(params, hf_cfg)
    with atomic_dir(dst) as tmp:
        save_params(params, os.path.join(tmp, "params"), "paddle2019")
        with open(os.path.join(tmp, "ernie_config.json"), "w", encoding="utf-8") as f:
            f.write(json.dumps(ernie_config, indent=2, sort_keys=True) + "\n")
        if vocab:
            shutil.copyfile(vocab, os.path.join(tmp, "vocab.txt"))
        if label_map:
            with open(os.path.join(tmp, "label_map.json"), "w", encoding="utf-8") as f:
                f.write(json.dumps(label_map, ensure_ascii=False, indent=1) + "\n")
    written = ["ernie_config.json"] + ["vocab.txt"] * bool(vocab) + \
        ["label_map.json"] * bool(label_map)
    print("Wrote %d parameters, %s to %s" % (len(params), ", ".join(written), dst))
    return 0


def _note_cased(src):
    """A cased HF tokenizer: the toolkit lower-cases unless told not to."""
    try:
        with open(os.path.join(src, "tokenizer_config.json"), encoding="utf-8") as f:
            lower = json.load(f).get("do_lower_case", True)
    except (OSError, ValueError, AttributeError):
        return
    if lower is False:
        print("note: %s/tokenizer_config.json says do_lower_case false: run the toolkit with "
              "--do_lower_case false" % src, file=sys.stderr)


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
        # a checkpoint's (or model folder's) checksums, optimizer and train state belong to
        # its own parameters: writing others beside them would leave a folder that lies
        held = [f for f in ("manifest.json", "train_state.json", "optimizer.pdopt")
                if os.path.isfile(os.path.join(dst, f))]
        if held:
            raise UsageError("DST: refusing to write into %s: it holds %s, which belongs to the "
                             "parameters there (a training checkpoint or a model folder); "
                             "choose a new or empty directory" % (dst, held[0]))
    ernie_config = None
    if args.ernie_config_path:
        if not os.path.isfile(args.ernie_config_path):
            raise UsageError("--ernie_config_path %s: no such file" % args.ernie_config_path)
        ernie_config = load_ernie_config(args.ernie_config_path)
    for flag in ("label_map_config", "vocab_path"):
        if getattr(args, flag) and args.to != "hf":
            raise UsageError("--%s is for the HF tokenizer and config.json: it goes with "
                             "--to hf" % flag)
    if args.vocab_path and not os.path.isfile(args.vocab_path):
        raise UsageError("--vocab_path %s: no such file" % args.vocab_path)
    label_map = load_label_map(args.label_map_config) if args.label_map_config else None
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
        tokenizer = _tokenizer_files(args, src, ernie_config)
        label_map_source = args.label_map_config
        if label_map is None and fmt == "legacy_dir":
            # a MODEL_PATH folder (--to paddle2019 writes one) keeps its label names
            label_map_source = _find_beside(src, "label_map.json")
            if label_map_source:
                print("Using label map %s" % label_map_source)
                label_map = load_label_map(label_map_source)
        arch = write_hf_dir(params, ernie_config, dst,
                            head=None if args.head == "auto" else args.head,
                            tokenizer_files=tokenizer, label_map=label_map,
                            label_map_source=label_map_source)
        print("Wrote %s%s to %s" % (arch, " and its tokenizer" if tokenizer else "", dst))
        return 0

    if hf_cfg is not None and args.to == "paddle2019" and \
            os.path.basename(os.path.normpath(dst)) != "params":
        return _write_model_dir(params, ernie_config, hf_cfg, src, dst)

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
    # ... and the HF vocab.txt beside a params/ output, which makes its folder a MODEL_PATH
    vocab_src = vocab_dst = None
    if hf_cfg is not None and args.to == "paddle2019" and \
            os.path.isfile(os.path.join(src, "vocab.txt")):
        vocab_src = os.path.join(src, "vocab.txt")
        vocab_dst = os.path.join(os.path.dirname(os.path.abspath(dst)), "vocab.txt")
        if os.path.exists(vocab_dst):
            with open(vocab_src, "rb") as f, open(vocab_dst, "rb") as g:
                if f.read() == g.read():
                    vocab_dst = None
                else:
                    raise UsageError("%s exists with other content; move it away first (the "
                                     "HF vocab.txt is copied there)" % vocab_dst)
        load_vocab(vocab_src)
        _note_cased(src)
    save_params(params, dst, args.to)
    print("Wrote %d parameters to %s (%s)" % (len(params), dst, args.to))
    if cfg_path is not None:
        atomic_write_text(cfg_path, cfg_text)
        print("Wrote %s" % cfg_path)
    if vocab_dst is not None:
        with atomic_path(vocab_dst) as tmp:
            shutil.copyfile(vocab_src, tmp)
        print("Wrote %s" % vocab_dst)
    return 0


if __name__ == "__main__":
    run_cli(main)

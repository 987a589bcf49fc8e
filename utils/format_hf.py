"""HuggingFace transformers directories: `config.json` + `model.safetensors` (or the
`pytorch_model.bin` torch pickle, read when torch is installed; sharded weights through their
`*.index.json`), with ERNIE/BERT parameter names (`ernie.encoder.layer.0.attention.self.query.
weight`, ...). Fc weights are transposed: Paddle stores [in, out], torch [out, in].

Writing picks one HF class by the heads present (ErnieModel, ErnieForPreTraining,
ErnieForSequenceClassification, ErnieForTokenClassification, ErnieForQuestionAnswering);
parameters that class has no slot for (the pooler of a NER model, the pretraining heads of a
fine-tuned one) are kept, under their 2019 names, in `ernie2019_extra.safetensors` beside the
weights, which transformers ignores, so a conversion round trip is lossless. The 2019
`ernie_config.json` and the HF `config.json` convert into each other. Beside them go, when
given, a BertTokenizer over the 2019 vocabulary (hf_tokenizer_files) and the label names of a
classifier or tagger (hf_label_config), so that `transformers.pipeline()` loads the folder.
"""
import json
import os
import re
import sys

import numpy as np

from utils.errors import DataError, UsageError, where
from utils.fileio import atomic_dir
from utils.format_paddle2019 import check_replaceable, is_optimizer_state, name_list

# ---------------------------------------------------------------------------------------
# HF names
# ---------------------------------------------------------------------------------------

# (2019 name, HF name relative to ErnieModel, transpose)
_EMB_MAP = [
    ("word_embedding", "embeddings.word_embeddings.weight", False),
    ("pos_embedding", "embeddings.position_embeddings.weight", False),
    ("sent_embedding", "embeddings.token_type_embeddings.weight", False),
    ("task_embedding", "embeddings.task_type_embeddings.weight", False),
    ("pre_encoder_layer_norm_scale", "embeddings.LayerNorm.weight", False),
    ("pre_encoder_layer_norm_bias", "embeddings.LayerNorm.bias", False),
]
_POOLER_MAP = [
    ("pooled_fc.w_0", "pooler.dense.weight", True),
    ("pooled_fc.b_0", "pooler.dense.bias", False),
]
# (2019 suffix after `encoder_layer_{i}_`, HF suffix after `encoder.layer.{i}.`, transpose)
_LAYER_MAP = [
    ("multi_head_att_query_fc.w_0", "attention.self.query.weight", True),
    ("multi_head_att_query_fc.b_0", "attention.self.query.bias", False),
    ("multi_head_att_key_fc.w_0", "attention.self.key.weight", True),
    ("multi_head_att_key_fc.b_0", "attention.self.key.bias", False),
    ("multi_head_att_value_fc.w_0", "attention.self.value.weight", True),
    ("multi_head_att_value_fc.b_0", "attention.self.value.bias", False),
    ("multi_head_att_output_fc.w_0", "attention.output.dense.weight", True),
    ("multi_head_att_output_fc.b_0", "attention.output.dense.bias", False),
    ("post_att_layer_norm_scale", "attention.output.LayerNorm.weight", False),
    ("post_att_layer_norm_bias", "attention.output.LayerNorm.bias", False),
    ("ffn_fc_0.w_0", "intermediate.dense.weight", True),
    ("ffn_fc_0.b_0", "intermediate.dense.bias", False),
    ("ffn_fc_1.w_0", "output.dense.weight", True),
    ("ffn_fc_1.b_0", "output.dense.bias", False),
    ("post_ffn_layer_norm_scale", "output.LayerNorm.weight", False),
    ("post_ffn_layer_norm_bias", "output.LayerNorm.bias", False),
]
# Head parameters: HF names are top level (no `ernie.` prefix).
_HEAD_MAP = {
    "pretraining": [
        ("mask_lm_trans_fc.w_0", "cls.predictions.transform.dense.weight", True),
        ("mask_lm_trans_fc.b_0", "cls.predictions.transform.dense.bias", False),
        ("mask_lm_trans_layer_norm_scale", "cls.predictions.transform.LayerNorm.weight", False),
        ("mask_lm_trans_layer_norm_bias", "cls.predictions.transform.LayerNorm.bias", False),
        ("mask_lm_out_fc.b_0", "cls.predictions.bias", False),
        ("next_sent_fc.w_0", "cls.seq_relationship.weight", True),
        ("next_sent_fc.b_0", "cls.seq_relationship.bias", False),
    ],
    "cls": [("_cls_out_w", "classifier.weight", True), ("_cls_out_b", "classifier.bias", False)],
    "ner": [("cls_seq_label_out_w", "classifier.weight", True),
            ("cls_seq_label_out_b", "classifier.bias", False)],
    "mrc": [("cls_mrc_out_w", "qa_outputs.weight", True),
            ("cls_mrc_out_b", "qa_outputs.bias", False)],
}
# Untied MLM output weight (2019 `weight_sharing=False`): [H, V] -> decoder [V, H].
_MLM_OUT_W = ("mask_lm_out_fc.w_0", "cls.predictions.decoder.weight", True)

HEADS = ("base", "pretraining", "cls", "ner", "mrc")
HF_ARCH = {"base": "ErnieModel", "pretraining": "ErnieForPreTraining",
           "cls": "ErnieForSequenceClassification", "ner": "ErnieForTokenClassification",
           "mrc": "ErnieForQuestionAnswering"}
_HAS_POOLER = {"base": True, "pretraining": True, "cls": True, "ner": False, "mrc": False}

_LAYER_RE = re.compile(r"^encoder_layer_(\d+)_(.+)$")
_HF_LAYER_RE = re.compile(r"^encoder\.layer\.(\d+)\.(.+)$")


def _to_hf_table(num_layers, head, with_pooler):
    """[(2019 name, HF name as stored in the file, transpose)] for one HF class."""
    prefix = "" if head == "base" else "ernie."
    table = [(p, prefix + h, t) for p, h, t in _EMB_MAP]
    for i in range(num_layers):
        table += [("encoder_layer_%d_%s" % (i, p), "%sencoder.layer.%d.%s" % (prefix, i, h), t)
                  for p, h, t in _LAYER_MAP]
    if with_pooler:
        table += [(p, prefix + h, t) for p, h, t in _POOLER_MAP]
    if head != "base":
        table += list(_HEAD_MAP[head])
    return table


def _heads_present(params):
    return [h for h in ("pretraining", "cls", "ner", "mrc")
            if any(p in params for p, _, _ in _HEAD_MAP[h])]


def _choose_head(params):
    heads = _heads_present(params)
    finetune = [h for h in heads if h != "pretraining"]
    if len(finetune) > 1:
        raise DataError("parameters hold several fine-tune heads (%s); choose one with head="
                        % ", ".join(finetune))
    if finetune:
        return finetune[0]
    return "pretraining" if heads else "base"


def _num_layers(params):
    idx = {int(m.group(1)) for m in map(_LAYER_RE.match, params) if m}
    return max(idx) + 1 if idx else 0


def _cfg_get(cfg, key, required=True):
    v = cfg.get(key)
    if v is None and required:
        raise DataError("ernie config lacks %r" % key)
    return v


def ernie_to_hf_config(ernie_config, head="base", num_labels=None, dtype=None,
                       tie_word_embeddings=True):
    """transformers `ErnieConfig` dict for a 2019 ernie_config.json (see the module doc)."""
    c = ernie_config
    hidden = int(_cfg_get(c, "hidden_size"))
    type_vocab = c.get("sent_type_vocab_size") or c.get("type_vocab_size")
    if not type_vocab:
        raise DataError("ernie config lacks 'type_vocab_size' (or 'sent_type_vocab_size')")
    use_task_id = bool(c.get("use_task_id"))
    hf = {
        "architectures": [HF_ARCH[head]],
        "model_type": "ernie",
        "vocab_size": int(_cfg_get(c, "vocab_size")),
        "hidden_size": hidden,
        "num_hidden_layers": int(_cfg_get(c, "num_hidden_layers")),
        "num_attention_heads": int(_cfg_get(c, "num_attention_heads")),
        "intermediate_size": int(c.get("intermediate_size") or 4 * hidden),
        "hidden_act": _cfg_get(c, "hidden_act"),
        "hidden_dropout_prob": float(c.get("hidden_dropout_prob", 0.1) or 0.0),
        "attention_probs_dropout_prob": float(c.get("attention_probs_dropout_prob", 0.1) or 0.0),
        "max_position_embeddings": int(_cfg_get(c, "max_position_embeddings")),
        "type_vocab_size": int(type_vocab),
        "use_task_id": use_task_id,
        "task_type_vocab_size": int(c.get("task_type_vocab_size") or 3),
        "initializer_range": float(c.get("initializer_range", 0.02) or 0.02),
        "layer_norm_eps": 1e-5,
        "pad_token_id": 0,
        "tie_word_embeddings": bool(tie_word_embeddings),
    }
    if dtype:
        hf["dtype"] = dtype
    if num_labels is not None and head in ("cls", "ner"):
        hf["id2label"] = {str(i): "LABEL_%d" % i for i in range(num_labels)}
        hf["label2id"] = {"LABEL_%d" % i: i for i in range(num_labels)}
    return hf


def hf_to_ernie_config(hf_config):
    """A 2019-style ernie_config.json dict from a transformers config.json dict."""
    c = hf_config
    hidden = int(_cfg_get(c, "hidden_size"))
    inter = c.get("intermediate_size")
    eps = c.get("layer_norm_eps")
    if eps is not None and abs(float(eps) - 1e-5) > 1e-9:
        print("note: config.json has layer_norm_eps=%g; the 2019 ERNIE model uses 1e-5"
              % float(eps), file=sys.stderr)
    out = {
        "attention_probs_dropout_prob": c.get("attention_probs_dropout_prob", 0.1),
        "hidden_act": c.get("hidden_act", "gelu"),
        "hidden_dropout_prob": c.get("hidden_dropout_prob", 0.1),
        "hidden_size": hidden,
        "initializer_range": c.get("initializer_range", 0.02),
        "max_position_embeddings": int(_cfg_get(c, "max_position_embeddings")),
        "num_attention_heads": int(_cfg_get(c, "num_attention_heads")),
        "num_hidden_layers": int(_cfg_get(c, "num_hidden_layers")),
        "type_vocab_size": int(c.get("type_vocab_size", 2)),
        "vocab_size": int(_cfg_get(c, "vocab_size")),
    }
    if inter is not None and int(inter) != 4 * hidden:
        # the 2019 configs have no such key (FFN 4*hidden); written only when it differs
        out["intermediate_size"] = int(inter)
    if c.get("use_task_id"):
        out["sent_type_vocab_size"] = out["type_vocab_size"]
        out["use_task_id"] = True
        out["task_type_vocab_size"] = int(c.get("task_type_vocab_size", 3))
    return out


def _check_against_config(params, c):
    hidden = int(_cfg_get(c, "hidden_size"))
    type_vocab = c.get("sent_type_vocab_size") or c.get("type_vocab_size")
    expect = {
        "word_embedding": (int(_cfg_get(c, "vocab_size")), hidden),
        "pos_embedding": (int(_cfg_get(c, "max_position_embeddings")), hidden),
        "sent_embedding": (int(type_vocab or 0), hidden),
        "pre_encoder_layer_norm_scale": (hidden,),
    }
    if c.get("use_task_id"):
        expect["task_embedding"] = (int(c.get("task_type_vocab_size") or 3), hidden)
    for name, shape in expect.items():
        if name in params and tuple(params[name].shape) != shape:
            raise DataError("parameter %s has shape %s but the ernie config implies %s"
                            % (name, list(params[name].shape), list(shape)))
    if not c.get("use_task_id") and "task_embedding" in params:
        raise DataError("parameters hold task_embedding but the ernie config has no "
                        "use_task_id")
    n = int(_cfg_get(c, "num_hidden_layers"))
    if _num_layers(params) > n:
        raise DataError("parameters hold %d encoder layers but the ernie config says "
                        "num_hidden_layers=%d" % (_num_layers(params), n))


def params_to_hf(params, ernie_config, head=None):
    """(HF state dict, HF config dict, extra {2019 name: array}, dropped optimizer names)."""
    if head is None or head == "auto":
        head = _choose_head(params)
    if head not in HEADS:
        raise UsageError("unknown head %r (choose from %s)" % (head, ", ".join(HEADS)))
    _check_against_config(params, ernie_config)
    n = int(ernie_config["num_hidden_layers"])
    table = _to_hf_table(n, head, _HAS_POOLER[head])
    if ernie_config.get("use_task_id"):
        required = [p for p, _, _ in table]
    else:
        table = [row for row in table if row[0] != "task_embedding"]
        required = [p for p, _, _ in table]
    tie = True
    if head == "pretraining" and _MLM_OUT_W[0] in params:
        # untied output layer: HF then ties neither the decoder weight nor its bias
        table += [_MLM_OUT_W, ("mask_lm_out_fc.b_0", "cls.predictions.decoder.bias", False)]
        tie = False
    missing = [p for p in required if p not in params]
    if missing:
        raise DataError("cannot write %s: missing parameters %s"
                        % (HF_ARCH[head], name_list(missing)))
    state = {}
    for p, h, t in table:
        arr = np.asarray(params[p])
        state[h] = np.ascontiguousarray(arr.T if t else arr)
    used = {p for p, _, _ in table}
    dropped = sorted(k for k in params if k not in used and is_optimizer_state(k))
    extra = {k: np.ascontiguousarray(params[k]) for k in sorted(params)
             if k not in used and k not in dropped}
    num_labels = None
    if head in ("cls", "ner"):
        num_labels = int(params[_HEAD_MAP[head][0][0]].shape[1])
    dtype = params["word_embedding"].dtype.name
    hf_cfg = ernie_to_hf_config(ernie_config, head, num_labels,
                                dtype=dtype if dtype in ("float32", "float16", "float64",
                                                         "bfloat16") else None,
                                tie_word_embeddings=tie)
    return state, hf_cfg, extra, dropped


def hf_to_params(state, hf_config=None, source="HF state dict"):
    """{2019 name: array} from a HF ErnieModel/BertModel/ErnieFor* state dict."""
    hf_config = hf_config or {}
    archs = hf_config.get("architectures") or []
    token_cls = any("TokenClassification" in a for a in archs)
    tied = hf_config.get("tie_word_embeddings", True)
    emb = {h: (p, t) for p, h, t in _EMB_MAP + _POOLER_MAP}
    layer = {h: (p, t) for p, h, t in _LAYER_MAP}
    heads = {}
    for head in ("pretraining", "mrc"):
        heads.update({h: (p, t) for p, h, t in _HEAD_MAP[head]})
    cls_head = "ner" if token_cls else "cls"
    heads.update({h: (p, t) for p, h, t in _HEAD_MAP[cls_head]})
    out = {}
    unknown = []
    deferred = {}
    for key, arr in state.items():
        k = key
        for pre in ("ernie.", "bert."):
            if k.startswith(pre):
                k = k[len(pre):]
                break
        k = k.replace("LayerNorm.gamma", "LayerNorm.weight").replace("LayerNorm.beta",
                                                                    "LayerNorm.bias")
        if k in ("embeddings.position_ids", "embeddings.token_type_ids"):
            continue
        if k in ("cls.predictions.decoder.weight", "cls.predictions.decoder.bias"):
            deferred[k] = arr
            continue
        target = None
        m = _HF_LAYER_RE.match(k)
        if m and m.group(2) in layer:
            p, t = layer[m.group(2)]
            target = ("encoder_layer_%s_%s" % (m.group(1), p), t)
        elif k in emb:
            target = emb[k]
        elif k in heads:
            target = heads[k]
        if target is None:
            unknown.append(key)
            continue
        name, t = target
        if name in out:
            raise DataError("%s: two tensors map to parameter %s" % (source, name))
        arr = np.asarray(arr)
        out[name] = np.ascontiguousarray(arr.T) if t else arr
    if unknown:
        raise DataError("%s: unknown parameter names %s" % (source, name_list(unknown)))
    if "cls.predictions.decoder.bias" in deferred and "mask_lm_out_fc.b_0" not in out:
        out["mask_lm_out_fc.b_0"] = np.asarray(deferred["cls.predictions.decoder.bias"])
    dec = deferred.get("cls.predictions.decoder.weight")
    if dec is not None:
        dec = np.asarray(dec)
        we = out.get("word_embedding")
        if not tied or we is None or not np.array_equal(dec, we):
            out[_MLM_OUT_W[0]] = np.ascontiguousarray(dec.T)
    return out


# ---------------------------------------------------------------------------------------
# The tokenizer and the label names
# ---------------------------------------------------------------------------------------

# transformers' name of each special token the 2019 vocabularies hold
SPECIAL_TOKENS = (("unk_token", "[UNK]"), ("sep_token", "[SEP]"), ("pad_token", "[PAD]"),
                  ("cls_token", "[CLS]"), ("mask_token", "[MASK]"))
_NEEDED_TOKENS = ("[UNK]", "[SEP]", "[PAD]", "[CLS]")  # what the readers put in every batch


def hf_tokenizer_files(vocab, do_lower_case, model_max_length, source="vocabulary"):
    """{file name: text} of a transformers BertTokenizer over the 2019 vocabulary `vocab`
    ({token: id}, ids 0..N-1): vocab.txt one token a line (the line number is the id, where the
    Chinese 2019 file says `token<TAB>id`), tokenizer_config.json, special_tokens_map.json.

    The settings make BertTokenizer split as tokenization.FullTokenizer does: CJK characters
    one a token, accents stripped exactly when lower-casing (strip_accents None follows
    do_lower_case), control characters dropped."""
    ids = sorted(vocab.values())
    if ids != list(range(len(ids))):
        gap = next(i for i, v in enumerate(ids) if v != i)
        raise DataError("%s: token ids are not 0..%d (no token has id %d); BertTokenizer "
                        "numbers tokens by line" % (source, len(ids) - 1, gap))
    missing = [t for t in _NEEDED_TOKENS if t not in vocab]
    if missing:
        raise DataError("%s: has no %s token" % (source, " or ".join(missing)))
    by_id = sorted(vocab, key=vocab.get)
    special = {name: tok for name, tok in SPECIAL_TOKENS if tok in vocab}
    config = dict(special, tokenizer_class="BertTokenizer", do_lower_case=bool(do_lower_case),
                  tokenize_chinese_chars=True, strip_accents=None, do_basic_tokenize=True,
                  model_max_length=int(model_max_length), clean_up_tokenization_spaces=False)
    return {
        "vocab.txt": "".join(t + "\n" for t in by_id),
        "tokenizer_config.json": json.dumps(config, indent=2, sort_keys=True) + "\n",
        "special_tokens_map.json": json.dumps(special, indent=2, sort_keys=True) + "\n",
    }


def hf_label_config(label_map, num_labels, head, source="label map"):
    """config.json's label entries for a classifier (`head` 'cls') or tagger ('ner') with
    `num_labels` outputs: id2label / label2id from a 2019 label map {name: id} (names sharing
    an id are aliases of one class: the first in the file names it, all map to it), or
    LABEL_i for an id no name has. A one-output classifier is the toolkit's regression, which
    the pipeline must not squash: problem_type 'regression'."""
    label_map = label_map or {}
    over = sorted((i, n) for n, i in label_map.items() if i >= num_labels)
    if over:
        raise DataError("%s: label %r has id %d, but the %s head has %d outputs (ids 0..%d)"
                        % (source, over[0][1], over[0][0], head, num_labels, num_labels - 1))
    id2label = {}
    for name, i in label_map.items():
        id2label.setdefault(i, name)
    id2label = {str(i): id2label.get(i, "LABEL_%d" % i) for i in range(num_labels)}
    label2id = {name: int(i) for i, name in id2label.items()}
    label2id.update(label_map)
    out = {"id2label": id2label, "label2id": label2id}
    if head == "cls" and num_labels == 1:
        out["problem_type"] = "regression"
    return out


# ---------------------------------------------------------------------------------------
# HF directories
# ---------------------------------------------------------------------------------------

_HF_OWN_FILES = ("config.json", "model.safetensors", "pytorch_model.bin",
                 "model.safetensors.index.json", "pytorch_model.bin.index.json")
EXTRA_FILE = "ernie2019_extra.safetensors"


def _is_hf_side_file(fname):
    """Files of an existing HF directory a rewrite keeps (vocab, tokenizer files, notes)."""
    if fname in _HF_OWN_FILES or fname.endswith(".index.json"):
        return False
    return fname.startswith(".") or fname.endswith((".json", ".txt", ".model", ".md"))


def _is_weight_file(fname):
    return (fname in _HF_OWN_FILES or fname == EXTRA_FILE
            or fname.endswith((".safetensors", ".bin")))


def hf_weight_files(d):
    """[(kind, path)] of the weights of HF directory `d`, or [] if there are none."""
    def index_files(index_name):
        ip = os.path.join(d, index_name)
        try:
            with open(ip, encoding="utf-8") as f:
                wm = json.load(f)["weight_map"]
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise DataError("%s: unreadable weight index (%s)" % (where(ip), e)) from None
        return [os.path.join(d, fn) for fn in sorted(set(wm.values()))]

    if os.path.isfile(os.path.join(d, "model.safetensors")):
        return [("safetensors", os.path.join(d, "model.safetensors"))]
    if os.path.isfile(os.path.join(d, "model.safetensors.index.json")):
        return [("safetensors", p) for p in index_files("model.safetensors.index.json")]
    if os.path.isfile(os.path.join(d, "pytorch_model.bin")):
        return [("bin", os.path.join(d, "pytorch_model.bin"))]
    if os.path.isfile(os.path.join(d, "pytorch_model.bin.index.json")):
        return [("bin", p) for p in index_files("pytorch_model.bin.index.json")]
    return []


def _read_safetensors(path):
    from safetensors.numpy import load_file
    if not os.path.isfile(path):
        raise DataError("%s: no such file" % where(path))
    try:
        return load_file(path)
    except TypeError as e:
        if "bfloat16" in str(e):
            raise DataError("%s: holds bfloat16 tensors, which numpy cannot read; re-save it "
                            "as float32" % where(path)) from None
        raise DataError("%s: cannot read safetensors file (%s)" % (where(path), e)) from None
    except Exception as e:
        raise DataError("%s: cannot read safetensors file (%s)" % (where(path), e)) from None


def _read_torch_bin(path):
    try:
        import torch
    except ImportError:
        raise DataError("%s: reading pytorch_model.bin needs torch, which is not installed; "
                        "convert the model to model.safetensors instead" % where(path)) from None
    if not os.path.isfile(path):
        raise DataError("%s: no such file" % where(path))
    try:
        sd = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise DataError("%s: cannot read torch file (%s)" % (where(path), e)) from None
    if not isinstance(sd, dict):
        raise DataError("%s: holds a %s, not a state dict" % (where(path), type(sd).__name__))
    out = {}
    for k, v in sd.items():
        if not hasattr(v, "detach"):
            raise DataError("%s: entry %r is not a tensor" % (where(path), k))
        v = v.detach().cpu()
        if v.dtype == torch.bfloat16:
            v = v.float()
        out[k] = v.numpy().copy()
    return out


def _read_hf_config(d):
    cp = os.path.join(d, "config.json")
    try:
        with open(cp, encoding="utf-8") as f:
            cfg = json.load(f)
    except FileNotFoundError:
        raise DataError("%s: no such file" % where(cp)) from None
    except ValueError as e:
        raise DataError("%s: not valid JSON (%s)" % (where(cp), e)) from None
    if not isinstance(cfg, dict):
        raise DataError("%s: not a JSON object" % where(cp))
    return cfg


def read_hf_dir(d):
    """Read a transformers directory; return ({2019 name: array}, config.json dict)."""
    d = os.fspath(d)
    if not os.path.isdir(d):
        raise DataError("%s: no such directory" % where(d))
    cfg = _read_hf_config(d)
    files = hf_weight_files(d)
    if not files:
        raise DataError("%s: HF directory has neither model.safetensors nor pytorch_model.bin"
                        % where(d))
    state = {}
    for kind, path in files:
        part = _read_safetensors(path) if kind == "safetensors" else _read_torch_bin(path)
        state.update(part)
    params = hf_to_params(state, cfg, source=where(files[0][1]))
    extra_path = os.path.join(d, EXTRA_FILE)
    if os.path.isfile(extra_path):
        for k, v in _read_safetensors(extra_path).items():
            if k in params:
                raise DataError("%s: %s is also in the HF weights" % (where(extra_path), k))
            params[k] = v
    return params, cfg


def write_hf_dir(params, ernie_config, d, head=None, tokenizer_files=None, label_map=None,
                 label_map_source="label map"):
    """Write `config.json` + `model.safetensors` (+ extras) loadable by transformers.

    `head`: None/'auto' (from the parameters), 'base' (ErnieModel), 'pretraining',
    'cls', 'ner' or 'mrc'. `tokenizer_files`: {name: text} written beside
    (hf_tokenizer_files). `label_map`: a 2019 label map {name: id} naming the outputs of a
    'cls' or 'ner' head (hf_label_config). Returns the HF class name written.
    """
    from safetensors.numpy import save_file
    if isinstance(ernie_config, (str, os.PathLike)):
        ernie_config = load_ernie_config(ernie_config)
    state, hf_cfg, extra, dropped = params_to_hf(params, ernie_config, head)
    arch = hf_cfg["architectures"][0]
    if "id2label" in hf_cfg:
        written_head = {a: h for h, a in HF_ARCH.items()}[arch]
        hf_cfg.update(hf_label_config(label_map, len(hf_cfg["id2label"]), written_head,
                                      source=label_map_source))
    elif label_map:
        raise UsageError("a label map names the outputs of a classifier or tagger; %s has "
                         "neither" % arch)
    dest = os.path.normpath(os.fspath(d))
    if os.path.lexists(dest):
        check_replaceable(dest, lambda fname, full: (_is_hf_side_file(fname)
                                                     or _is_weight_file(fname)))
    with atomic_dir(dest, keep=_is_hf_side_file) as tmp:
        with open(os.path.join(tmp, "config.json"), "w", encoding="utf-8") as f:
            json.dump(hf_cfg, f, indent=2, sort_keys=True)
            f.write("\n")
        save_file(state, os.path.join(tmp, "model.safetensors"), metadata={"format": "pt"})
        for fname, text in sorted((tokenizer_files or {}).items()):
            with open(os.path.join(tmp, fname), "w", encoding="utf-8", newline="\n") as f:
                f.write(text)
        if extra:
            save_file(extra, os.path.join(tmp, EXTRA_FILE), metadata={"format": "np"})
    if dropped:
        print("%s: dropped %d optimizer-state variables" % (d, len(dropped)))
    if extra:
        print("%s: %s has no slot for %s; kept in %s"
              % (d, arch, name_list(sorted(extra)), EXTRA_FILE))
    return arch


def load_ernie_config(path):
    """Read a 2019 ernie_config.json into a dict."""
    path = os.fspath(path)
    try:
        with open(path, encoding="utf-8") as f:
            cfg = json.load(f)
    except FileNotFoundError:
        raise DataError("%s: no such file" % where(path)) from None
    except (OSError, ValueError) as e:
        raise DataError("%s: error in parsing ernie model config file (%s)"
                        % (where(path), e)) from None
    if not isinstance(cfg, dict):
        raise DataError("%s: ernie config is not a JSON object" % where(path))
    return cfg

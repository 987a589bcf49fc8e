"""Int8 post-training quantization of an ERNIE model for CPU inference with oneDNN.

What flows (B = batch, L = length, H = hidden size, F = FFN width):
    calibration: the fp32 dygraph model runs on `calibration_feeds` (dicts of numpy inputs:
        src_ids/sent_ids/pos_ids [B, L] int64, input_mask [B, L] float32, task_ids when the
        config uses them); a pre-hook on each encoder Linear records the largest |input|.
    export: an inference program where every encoder Linear (q/k/v/output [., H] -> [., H],
        FFN [., H] -> [., F] -> [., H]) is `quantize` (fp32 -> int8, or uint8 after a relu)
        followed by an oneDNN int8 `fc` (per-output-channel weight scales, fp32 output, but
        uint8 straight into the second FFN fc after a relu);
        embeddings, layer norms, attention matmuls, softmax, the pooler and the classifier
        head stay fp32. Outputs are those of the exported layer: ErnieModel -> sequence
        output [B, L, H] and pooled [B, H]; ErnieClassifier -> logits [B, C];
        ClassifierPredictor -> probabilities [B, C] (regression: scores [B, 1]).
    files: `<prefix>.pdmodel` + `<prefix>.pdiparams` (the program, with the scales in its op
        attributes, so loading it never recalibrates) and `<prefix>.int8.json` (what was
        calibrated, for people).

Why a program built op by op, in the old (ProgramDesc) format: Paddle 3's PIR inference
passes for oneDNN have no int8 step (quantize_linear/dequantize_linear pairs are deleted and
the model runs in fp32), and the int8 attributes of oneDNN ops are reset by its placement
pass; the old executor still runs oneDNN's int8 `quantize` and `fc` kernels from their
attributes. The old format cannot be traced from the dygraph model (its matmul is PIR-only),
hence the builder below, which mirrors model/ernie.py and model/transformer_encoder.py.

utils.inference.Predictor(prefix, precision="int8") runs it.
"""
import json
import os
import sys

import numpy as np
import paddle
from paddle.base.framework import convert_np_dtype_to_dtype_

from finetune.classifier import ClassifierPredictor, ErnieClassifier
from finetune.mrc import ErnieMRC
from finetune.sequence_label import SequenceLabelPredictor
from model.ernie import ErnieModel, encoder_input_names
from model.transformer_encoder import LAYER_NORM_EPS, Linear
from utils.errors import DataError
from utils.loop import eval_mode


def calibration_file(prefix):
    return prefix + ".int8.json"


def _parts(layer):
    """(ErnieModel, head layer or None, what the program returns) of an exported layer."""
    if isinstance(layer, SequenceLabelPredictor):
        return layer.labeler.ernie, layer.labeler.cls_seq_label_out, "tag_probs"
    if isinstance(layer, ErnieMRC):
        return layer.ernie, layer.cls_mrc_out, "span_logits"
    if isinstance(layer, ClassifierPredictor):
        head = layer.classifier
        return head.ernie, head, "scores" if head.is_regression else "probs"
    if isinstance(layer, ErnieClassifier):
        return layer.ernie, layer, "logits"
    if isinstance(layer, ErnieModel):
        return layer, None, "encoder"
    raise DataError("int8 export supports ErnieModel, ErnieClassifier, ClassifierPredictor, "
                    "SequenceLabelPredictor and ErnieMRC, not %s" % type(layer).__name__)


def calibrate(layer, ernie, feeds):
    """{weight name of each encoder Linear: largest |input| over `feeds`}, and the number of
    examples seen."""
    names = encoder_input_names(ernie.cfg)
    absmax, hooks = {}, []

    def record(name):
        def hook(_, inputs):
            value = float(paddle.abs(inputs[0]).max())
            absmax[name] = max(absmax.get(name, 0.0), value)
        return hook

    for sub in ernie.encoder.sublayers():
        if isinstance(sub, Linear):
            hooks.append(sub.register_forward_pre_hook(record(sub.weight.name)))
    count = 0
    try:
        with eval_mode(layer), paddle.no_grad():
            for i, feed in enumerate(feeds):
                missing = [n for n in names if n not in feed]
                if missing:
                    raise DataError("calibration batch %d: missing input %s" % (i, missing[0]))
                layer(*[paddle.to_tensor(np.asarray(feed[n])) for n in names])
                count += len(feed[names[0]])
    finally:
        for h in hooks:
            h.remove()
    if count == 0:
        raise DataError("int8 calibration needs at least one example; the calibration set is "
                        "empty")
    return absmax, count


class _Program:
    """Appends old-format ops to a block and puts parameter values into a scope."""

    def __init__(self, block, scope):
        self.block, self.scope, self.count = block, scope, 0

    def param(self, name, value):
        value = np.ascontiguousarray(value, dtype="float32")
        var = self.block.create_var(name=name, shape=value.shape, dtype="float32",
                                    persistable=True)
        self.scope.var(name).get_tensor().set(value, paddle.CPUPlace())
        return var

    def op(self, type, inputs, attrs=None, extra=(), dtype="float32"):
        """Append `type`; returns its "Out" (or first listed) output. `extra` names the
        outputs the op needs but nobody reads (XShape, Mean, ...)."""
        self.count += 1
        out_key = "Output" if type == "quantize" else ("Y" if type == "layer_norm" else "Out")
        outputs = {}
        for key in (out_key,) + tuple(extra):
            outputs[key] = [self.block.create_var(name="int8_tmp_%d_%s" % (self.count, key),
                                                  dtype=dtype)]
        self.block.append_op(type=type, inputs=inputs, outputs=outputs, attrs=attrs or {})
        out = outputs[out_key][0]
        # the op's own type inference would give an int8 fc an int8 output (force_fp32_output
        # is not in it): the caller says what each op returns
        out.desc.set_dtype(convert_np_dtype_to_dtype_(dtype))
        return out


def _builder_ops(p, ernie, head, output, absmax, data):
    """Append the model's forward pass; returns the fetch variables."""
    cfg = ernie.cfg
    hidden, heads = cfg["hidden_size"], cfg["num_attention_heads"]
    d_head = hidden // heads
    relu = cfg["hidden_act"] == "relu"

    def add(x, y):
        return p.op("elementwise_add", {"X": [x], "Y": [y]}, {"axis": -1})

    def layer_norm(x, norm):
        return p.op("layer_norm", {"X": [x], "Scale": [p.param(norm.weight.name, norm.weight)],
                                   "Bias": [p.param(norm.bias.name, norm.bias)]},
                    {"epsilon": LAYER_NORM_EPS, "begin_norm_axis": 2},
                    extra=("Mean", "Variance"))

    def fc(x, linear, num_col_dims, activation=""):
        w, b = p.param(linear.weight.name, linear.weight), p.param(linear.bias.name, linear.bias)
        return p.op("fc", {"Input": [x], "W": [w], "Bias": [b]},
                    {"in_num_col_dims": num_col_dims, "activation_type": activation})

    quantized = {}

    def int8_fc(x, linear, activation="", scale=1.0, unsigned=False, uint8_range=None):
        """fc on x quantized with its calibrated range; `scale` folds a constant factor on
        the output into the weights and bias (exact in real arithmetic). With `uint8_range`
        (after a relu) the fc writes uint8 of that range itself, the next fc's input."""
        weight = linear.weight.numpy() * scale
        bias = linear.bias.numpy() * scale
        w = p.param(linear.weight.name, weight)
        b = p.param(linear.bias.name, bias)
        levels = 255.0 if unsigned else 127.0
        scale_in = levels / max(absmax[linear.weight.name], 1e-8)
        key = (x.name, unsigned)
        if key not in quantized:  # q, k and v read the same x: quantize it once
            quantized[key] = p.op("quantize", {"Input": [x]},
                                  {"Scale": scale_in, "Shift": 0.0, "output_format": "NCHW",
                                   "is_negative_input": not unsigned, "bfloat16": False},
                                  dtype="uint8" if unsigned else "int8")
        channel = np.maximum(np.abs(weight).max(axis=0), 1e-8)
        scale_w = (127.0 / channel).astype("float32").tolist()
        scale_out = 255.0 / max(uint8_range, 1e-8) if uint8_range else 1.0
        # the old op carries the scales as Scale_*, the oneDNN kernel reads scale_*
        attrs = {"in_num_col_dims": 2, "activation_type": activation, "use_mkldnn": True,
                 "mkldnn_data_type": "int8", "force_fp32_output": not uint8_range}
        for name, value in (("scale_in", scale_in), ("scale_weights", scale_w),
                            ("scale_out", scale_out)):
            attrs[name] = attrs[name[0].upper() + name[1:]] = value
        out = p.op("fc", {"Input": [quantized[key]], "W": [w], "Bias": [b]}, attrs,
                   dtype="uint8" if uint8_range else "float32")
        if uint8_range:
            quantized[(out.name, True)] = out
        return out

    def heads_split(x):
        x = p.op("reshape2", {"X": [x]}, {"shape": [0, 0, heads, d_head]}, extra=("XShape",))
        return p.op("transpose2", {"X": [x]}, {"axis": [0, 2, 1, 3]}, extra=("XShape",))

    def emb(ids, table):
        return p.op("lookup_table_v2", {"Ids": [ids], "W": [p.param(table.weight.name,
                                                                     table.weight)]},
                    {"padding_idx": -1})

    x = add(add(emb(data["src_ids"], ernie.word_emb), emb(data["pos_ids"], ernie.pos_emb)),
            emb(data["sent_ids"], ernie.sent_emb))
    if ernie.task_emb is not None:
        x = add(x, emb(data["task_ids"], ernie.task_emb))
    x = layer_norm(x, ernie.pre_encoder_norm)

    # [B, L] mask -> [B, 1, L, L] additive bias, as model.ernie.attention_bias
    mask = data["input_mask"]
    rows = p.op("unsqueeze2", {"X": [mask]}, {"axes": [1, 3]}, extra=("XShape",))
    cols = p.op("unsqueeze2", {"X": [mask]}, {"axes": [1, 2]}, extra=("XShape",))
    pairs = p.op("elementwise_mul", {"X": [rows], "Y": [cols]}, {"axis": -1})
    attn_bias = p.op("scale", {"X": [pairs]},
                     {"scale": 10000.0, "bias": -10000.0, "bias_after_scale": True})

    for layer in ernie.encoder.layers:
        att = layer.attention
        q = heads_split(int8_fc(x, att.query_fc, scale=d_head ** -0.5))
        k = heads_split(int8_fc(x, att.key_fc))
        v = heads_split(int8_fc(x, att.value_fc))
        scores = p.op("matmul_v2", {"X": [q], "Y": [k]}, {"trans_x": False, "trans_y": True})
        weights = p.op("softmax", {"X": [add(scores, attn_bias)]}, {"axis": -1})
        ctx = p.op("matmul_v2", {"X": [weights], "Y": [v]}, {"trans_x": False, "trans_y": False})
        ctx = p.op("transpose2", {"X": [ctx]}, {"axis": [0, 2, 1, 3]}, extra=("XShape",))
        ctx = p.op("reshape2", {"X": [ctx]}, {"shape": [0, 0, hidden]}, extra=("XShape",))
        x = layer_norm(add(x, int8_fc(ctx, att.output_fc)), layer.post_att_norm)
        if relu:  # relu fused into the fc; its output is >= 0, so uint8 keeps one more bit
            inner = int8_fc(x, layer.ffn_fc_0, activation="relu",
                            uint8_range=absmax[layer.ffn_fc_1.weight.name])
            ffn = int8_fc(inner, layer.ffn_fc_1, unsigned=True)
        else:
            inner = p.op("gelu", {"X": [int8_fc(x, layer.ffn_fc_0)]}, {"approximate": False})
            ffn = int8_fc(inner, layer.ffn_fc_1)
        x = layer_norm(add(x, ffn), layer.post_ffn_norm)

    if output == "tag_probs":       # [B, L, C] label probabilities of every token
        return [p.op("softmax", {"X": [fc(x, head, 2)]}, {"axis": -1})]
    if output == "span_logits":     # start and end logits [B, L] each
        logits = fc(x, head, 2)
        return [p.op("slice", {"Input": [logits]}, {"axes": [2], "starts": [i], "ends": [i + 1],
                                                    "decrease_axis": [2]}) for i in (0, 1)]
    first = p.op("slice", {"Input": [x]}, {"axes": [1], "starts": [0], "ends": [1],
                                           "decrease_axis": [1]})
    pooled = p.op("tanh", {"X": [fc(first, ernie.pooled_fc, 1)]})
    if output == "encoder":
        return [x, pooled]
    logits = fc(pooled, head.cls_out, 1)
    if output == "probs":
        return [p.op("softmax", {"X": [logits]}, {"axis": -1})]
    return [logits]


def export_int8(layer, prefix, calibration_feeds, input_names=None, encoder_prefix=None):
    """Calibrate `layer` (ErnieModel, ErnieClassifier, ClassifierPredictor,
    SequenceLabelPredictor or ErnieMRC) on `calibration_feeds` (an iterable of {input name:
    numpy array}) and write its int8 inference program at `prefix` (the files of
    utils.inference.int8_model_files, and calibration_file); returns the prefix.

    `input_names` orders the program's inputs (default: encoder_input_names of the config,
    the order of model.ernie.encoder_input_spec). `encoder_prefix`: also write the int8
    program of the layer's encoder there, with the same calibration."""
    ernie, head, output = _parts(layer)
    absmax, count = calibrate(layer, ernie, calibration_feeds)
    names = list(input_names or encoder_input_names(ernie.cfg))
    _write_program(prefix, ernie, head, output, absmax, count, names)
    if encoder_prefix:
        _write_program(encoder_prefix, ernie, None, "encoder", absmax, count, names)
    return prefix


def _write_program(prefix, ernie, head, output, absmax, count, names):
    parent = os.path.dirname(prefix)
    if parent:
        os.makedirs(parent, exist_ok=True)
    scope = paddle.static.Scope()
    with paddle.pir_utils.OldIrGuard():
        main = paddle.static.Program()
        with paddle.static.program_guard(main, paddle.static.Program()):
            data = {n: paddle.static.data(n, [-1, -1],
                                          "float32" if n == "input_mask" else "int64")
                    for n in names}
            fetch = _builder_ops(_Program(main.global_block(), scope), ernie, head, output,
                                 absmax, data)
        with paddle.static.scope_guard(scope):
            exe = paddle.static.Executor(paddle.CPUPlace())
            # clip_extra=False keeps the int8 attributes (scales, force_fp32_output)
            paddle.static.save_inference_model(prefix, [data[n] for n in names], fetch, exe,
                                               program=main, clip_extra=False)
    with open(calibration_file(prefix), "w", encoding="utf-8") as f:
        json.dump({"method": "absmax", "examples": count, "output": output,
                   "inputs": names, "activation_absmax": absmax}, f, indent=1, sort_keys=True)


# ---- int8 programs in a model folder ---------------------------------------------------------

CALIBRATION_EXAMPLES = 300  # the first examples of a calibration set that are used


def folder_int8_prefix(folder, manifest, which="task"):
    """The prefix of the folder's int8 program (`which`: "task" or "encoder"), or None when
    the folder has none (python -m serving.export --precision int8 adds them)."""
    info = manifest.get("int8")
    return os.path.join(str(folder), info["programs"][which]) if info else None


def calibration_records(task, reader, path, limit=CALIBRATION_EXAMPLES):
    """The model inputs of the first `limit` examples of `path`, a file in the task's
    prediction input format, as `reader` (the task's batch reader) makes them; DataError
    when there are none."""
    if task == "tag":
        records = [r for ex in reader.examples(path)[:limit]
                   for _, _, r in reader.window_records(ex)]
    else:
        records = reader.records(path)[:limit]
    if not records:
        raise DataError("%s: no examples to calibrate int8 on" % path)
    return records


def _source_layer(folder, manifest):
    """The layer the folder's task program was exported from, rebuilt from its checkpoint."""
    from model.ernie import ErnieConfig
    from serving.folder import ExportPlan, checkpoint_fingerprint
    source = manifest["source_checkpoint"]
    path = source["path"]
    if not os.path.exists(path) or checkpoint_fingerprint(path) != source:
        raise DataError("%s: int8 calibration needs the checkpoint the folder was exported "
                        "from, %s, which is gone or changed; export the folder again with "
                        "--precision int8 --calibration_set FILE" % (folder, path))
    config_path = os.path.join(folder, "ernie_config.json")
    label_map = os.path.join(folder, "label_map.json")
    plan = ExportPlan(manifest["task"], path, config_path, os.path.join(folder, "vocab.txt"),
                      label_map_config=label_map if "label_map.json" in manifest["files"]
                      else None, num_labels=manifest["num_labels"])
    model, serving = plan.build_model(ErnieConfig(config_path))
    return serving or model


def ensure_int8(folder, calibration_path, make_records, pad_batch, batch_size=32,
                reuse_any=False, which="task"):
    """The prefix of the folder's int8 program (`which`: "task" or "encoder"): the one it has
    when that was calibrated on a file with the bytes of `calibration_path` (with `reuse_any`,
    whatever it was calibrated on), else one calibrated now on make_records()
    (pad_batch(records) -> model feed) and added to the folder with the encoder's, the
    manifest updated. Says which in one line. The caller has just checked the folder
    (serving.folder.read_manifest, or written it): its checksums are not computed again.

    The new files get names of their own, and the manifest switches to them last (atomically),
    so an interrupted calibration leaves the folder as it was."""
    from serving.folder import INT8_PREFIXES, MANIFEST, read_manifest
    from utils.fileio import atomic_write_text, remove_quietly, sha256
    folder = str(folder)
    manifest = read_manifest(folder, verify=False)
    info = manifest.get("int8")
    # (a reused default calibration set is the prediction input: not read for nothing)
    digest = None if info and reuse_any else sha256(calibration_path)
    if info and (reuse_any or info["calibration"]["sha256"] == digest):
        print("int8 program in %s (calibrated on %d examples of %s); not calibrated again"
              % (folder, info["calibration"]["examples"], info["calibration"]["file"]))
        return folder_int8_prefix(folder, manifest, which)
    records = make_records()
    if not records:
        raise DataError("%s: no examples to calibrate int8 on" % calibration_path)
    layer = _source_layer(folder, manifest)
    tag = "%s_%s" % (digest[:8], os.getpid())
    programs = {"task": INT8_PREFIXES[0] + tag, "encoder": INT8_PREFIXES[1] + tag}
    if manifest["task"] == "encode":
        programs["task"] = programs["encoder"]
    feeds = (pad_batch(records[i:i + batch_size]) for i in range(0, len(records), batch_size))
    print("calibrating int8 on %d examples of %s" % (len(records), calibration_path))
    try:
        export_int8(layer, os.path.join(folder, programs["task"]), feeds,
                    encoder_prefix=None if manifest["task"] == "encode"
                    else os.path.join(folder, programs["encoder"]))
        new = sorted(n for n in os.listdir(folder) if n.startswith(tuple(programs.values())))
        old = [n for n in manifest["files"] if info and
               n.startswith(tuple(info["programs"].values()))]
        files = {n: d for n, d in manifest["files"].items() if n not in old}
        files.update((n, sha256(os.path.join(folder, n))) for n in new)
        calibration = {"file": os.path.abspath(calibration_path), "sha256": digest,
                       "examples": len(records), "method": "absmax"}
        manifest = dict(manifest, files=dict(sorted(files.items())),
                        int8={"programs": programs, "calibration": calibration})
        atomic_write_text(os.path.join(folder, MANIFEST),
                          json.dumps(manifest, indent=1, ensure_ascii=False) + "\n")
    except BaseException:
        for name in os.listdir(folder):
            if name.startswith(tuple(programs.values())):
                remove_quietly(os.path.join(folder, name))
        raise
    for name in old:
        remove_quietly(os.path.join(folder, name))
    print("int8 program saved to %s" % folder)
    return folder_int8_prefix(folder, manifest, which)


def script_predictor(args, folder, prefix, task, reader, input_flag, input_records):
    """The Predictor of a prediction script: `prefix` (the task's fp32 program in the model
    folder `folder`) at --precision, as far as this CPU has it. For int8, the folder's int8
    program, calibrated first when it has none or --calibration_set is another file: on the
    first CALIBRATION_EXAMPLES of --calibration_set, else of the script's own input (the flag
    `input_flag`; input_records(n) gives the records of its first n examples)."""
    from utils.inference import Predictor, cpu_precision
    precision = cpu_precision(args.precision, args.use_cuda)
    if precision == "int8":
        if args.calibration_set:
            path = args.calibration_set

            def make_records():
                return calibration_records(task, reader, path)
        else:
            path = getattr(args, input_flag)

            def make_records():
                print("notice: no --calibration_set: int8 is calibrated on the first %d "
                      "examples of --%s" % (CALIBRATION_EXAMPLES, input_flag), file=sys.stderr)
                return input_records(CALIBRATION_EXAMPLES)
        prefix = ensure_int8(folder, path, make_records, reader.pad_batch, args.batch_size,
                             reuse_any=not args.calibration_set,
                             which="encoder" if task == "encode" else "task")
    return Predictor(prefix, use_cuda=args.use_cuda, num_threads=args.cpu_threads,
                     precision=precision)

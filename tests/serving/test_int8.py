"""Int8 export (serving/int8.py) of tiny random ERNIE models, run by Predictor.

Tolerances: activations are quantized per tensor to 127 (255 after a relu) steps of their
calibrated range and weights per output channel, so each int8 fc is off by about 1% of its
output range; over two layers the probabilities move by well under 0.02 and the encoder
outputs by a few percent of their largest value. A wrong scale (a factor of 127, signed data
read as unsigned, a quantize left out) moves them by tens of percent.
"""
import json

import numpy as np
import paddle
import pytest

from finetune.classifier import ClassifierPredictor, ErnieClassifier
from model.ernie import ErnieConfig, ErnieModel, encoder_input_names
from serving import int8
from utils.errors import DataError
from utils.inference import Predictor, int8_model_files

LENGTH, LABELS = 24, 3


def tiny_config(act="relu", task_ids=False):
    # initializer_range 0.1 (not 0.02) spreads the random model's probabilities, so that
    # argmax agreement is not decided by near-ties
    cfg = {"attention_probs_dropout_prob": 0.1, "hidden_act": act, "hidden_dropout_prob": 0.1,
           "hidden_size": 32, "initializer_range": 0.1, "max_position_embeddings": 64,
           "num_attention_heads": 4, "num_hidden_layers": 2, "type_vocab_size": 2,
           "vocab_size": 100}
    if task_ids:  # ERNIE 2.0
        cfg.update(use_task_id=True, task_type_vocab_size=3)
    return ErnieConfig(cfg)


def batch(size, seed):
    """Padded inputs with lengths from 4 to LENGTH."""
    rng = np.random.RandomState(seed)
    lengths = rng.randint(4, LENGTH + 1, size)
    mask = (np.arange(LENGTH)[None] < lengths[:, None]).astype("float32")
    return {"src_ids": (rng.randint(1, 100, (size, LENGTH)) * mask).astype("int64"),
            "sent_ids": (rng.randint(0, 2, (size, LENGTH)) * mask).astype("int64"),
            "pos_ids": np.tile(np.arange(LENGTH, dtype="int64"), (size, 1)),
            "input_mask": mask, "task_ids": rng.randint(0, 3, (size, LENGTH)).astype("int64")}


CALIBRATION = [batch(16, seed) for seed in range(4)]
EVAL = batch(256, 100)


def classifier(act="relu"):
    paddle.seed(7)
    model = ClassifierPredictor(ErnieClassifier(tiny_config(act), LABELS))
    model.eval()
    return model


def predict(prefix, feed, tokens=()):
    """The int8 program's outputs; those at the indices `tokens` (one row per position) cut
    from the padded length back to the inputs' (Predictor pads int8 inputs to a multiple of
    32 positions)."""
    length = feed["src_ids"].shape[1]
    outputs = Predictor(prefix, num_threads=2, precision="int8").run(feed)
    return [o[:, :length] if i in tokens else o for i, o in enumerate(outputs)]


def reference(model, cfg, feed):
    with paddle.no_grad():
        out = model(*[paddle.to_tensor(feed[n]) for n in encoder_input_names(cfg)])
    return [o.numpy() for o in (out if isinstance(out, (tuple, list)) else [out])]


def program_ops(prefix):
    """(type, {attribute: value}, dtype of the input of an fc, else None) of each op in the
    saved program."""
    with open(int8_model_files(prefix)[0], "rb") as f:
        desc = paddle.base.core.ProgramDesc(f.read())  # the block lives as long as desc
    block = desc.block(0)
    ops = []
    for op in (block.op(i) for i in range(block.op_size())):
        dtype = block.find_var(op.input("Input")[0].encode()).dtype() if op.type() == "fc" \
            else None
        # attr_names() leaves out the oneDNN ("extra") attributes; has_attr sees them
        names = ("Scale", "mkldnn_data_type", "force_fp32_output")
        ops.append((op.type(), {n: op.attr(n) for n in names if op.has_attr(n)}, dtype))
    return ops


@pytest.mark.parametrize("act", ["relu", "gelu"])
def test_int8_classifier_agrees_with_fp32(tmp_path, act):
    model = classifier(act)
    prefix = int8.export_int8(model, str(tmp_path / "model"), CALIBRATION)
    probs, = predict(prefix, EVAL)
    ref, = reference(model, model.classifier.ernie.cfg, EVAL)
    assert probs.shape == (256, LABELS)
    assert np.abs(ref[:, 0] - ref[:, 1]).mean() > 0.05  # the fixed set is not all near-ties
    assert np.abs(probs - ref).max() < 0.02
    assert (probs.argmax(1) == ref.argmax(1)).mean() >= 0.97

    # the encoder's fcs really run in int8: 6 per layer, fed by quantize ops (q/k/v share one;
    # after a relu the first FFN fc writes the second one's uint8 input itself)
    ops = program_ops(prefix)
    fcs = [op for op in ops if op[0] == "fc" and op[1].get("mkldnn_data_type") == "int8"]
    assert len(fcs) == 6 * 2
    assert sum(op[0] == "quantize" for op in ops) == (3 if act == "relu" else 4) * 2
    integer = {paddle.base.core.VarDesc.VarType.INT8, paddle.base.core.VarDesc.VarType.UINT8}
    assert all(dtype in integer for _, _, dtype in fcs)


@pytest.mark.parametrize("task_ids", [False, True])
def test_int8_encoder_outputs(tmp_path, task_ids):
    cfg = tiny_config(task_ids=task_ids)
    paddle.seed(3)
    model = ErnieModel(cfg)
    model.eval()
    prefix = int8.export_int8(model, str(tmp_path / "encoder"), CALIBRATION)
    seq, pooled = predict(prefix, EVAL, tokens=(0,))
    ref_seq, ref_pooled = reference(model, cfg, EVAL)
    assert seq.shape == (256, LENGTH, 32) and pooled.shape == (256, 32)
    real = EVAL["input_mask"] > 0  # padded positions' outputs mean nothing
    assert np.abs(seq - ref_seq)[real].max() < 0.05 * np.abs(ref_seq).max()
    assert np.abs(pooled - ref_pooled).max() < 0.05 * np.abs(ref_pooled).max()


def test_int8_token_heads_and_the_encoder_beside(tmp_path):
    """A tagger's label probabilities [B, L, C] and MRC's start/end logits [B, L], each with
    the encoder's int8 program written beside from the same calibration."""
    from finetune.mrc import ErnieMRC
    from finetune.sequence_label import ErnieSequenceLabeler, SequenceLabelPredictor
    cfg = tiny_config()
    real = EVAL["input_mask"] > 0
    paddle.seed(5)
    tagger = SequenceLabelPredictor(ErnieSequenceLabeler(cfg, LABELS))
    tagger.eval()
    prefix = int8.export_int8(tagger, str(tmp_path / "tag"), CALIBRATION,
                              encoder_prefix=str(tmp_path / "tag_encoder"))
    probs, = predict(prefix, EVAL, tokens=(0,))
    ref, = reference(tagger, cfg, EVAL)
    assert probs.shape == (256, LENGTH, LABELS)
    assert np.abs(probs - ref)[real].max() < 0.02
    assert (probs.argmax(-1) == ref.argmax(-1))[real].mean() >= 0.97
    # (at padded positions the outputs are meaningless: the program's padding differs)
    seq, pooled = predict(str(tmp_path / "tag_encoder"), EVAL, tokens=(0,))
    ref_seq, _ = reference(tagger.labeler.ernie, cfg, EVAL)
    assert np.abs(seq - ref_seq)[real].max() < 0.05 * np.abs(ref_seq).max()
    paddle.seed(6)
    mrc = ErnieMRC(cfg)
    mrc.eval()
    start, end = predict(int8.export_int8(mrc, str(tmp_path / "mrc"), CALIBRATION), EVAL,
                         tokens=(0, 1))
    for got, want in zip((start, end), reference(mrc, cfg, EVAL)):
        assert got.shape == (256, LENGTH)
        assert np.abs(got - want)[real].max() < 0.05 * np.abs(want).max()


def test_calibration_is_saved_and_reused(tmp_path, monkeypatch):
    model = classifier()
    prefix = int8.export_int8(model, str(tmp_path / "model"), CALIBRATION)
    with open(int8.calibration_file(prefix)) as f:
        saved = json.load(f)
    assert saved["examples"] == 64 and len(saved["activation_absmax"]) == 6 * 2

    # the program carries the calibrated ranges: the value/output fc of layer 0 read
    # quantize ops scaled by 127 / their range
    scales = [attrs["Scale"] for kind, attrs, _ in program_ops(prefix) if kind == "quantize"]
    absmax = saved["activation_absmax"]
    expected = 127.0 / absmax["encoder_layer_0_multi_head_att_output_fc.w_0"]
    assert any(abs(s - expected) < 1e-3 * expected for s in scales)

    # loading runs no calibration and gives the same numbers
    first, = predict(prefix, EVAL)
    monkeypatch.setattr(int8, "calibrate", lambda *a: pytest.fail("recalibrated"))
    again, = predict(prefix, EVAL)
    np.testing.assert_array_equal(first, again)


def test_bad_calibration_sets(tmp_path):
    model = classifier()
    with pytest.raises(DataError, match="calibration set is empty"):
        int8.export_int8(model, str(tmp_path / "m"), [])
    partial = {k: v for k, v in CALIBRATION[0].items() if k != "input_mask"}
    with pytest.raises(DataError, match="missing input input_mask"):
        int8.export_int8(model, str(tmp_path / "m"), [partial])
    with pytest.raises(DataError, match="not Linear"):
        int8.export_int8(paddle.nn.Linear(2, 2), str(tmp_path / "m"), CALIBRATION)


def test_int8_inputs_are_padded_to_a_few_shapes():
    """oneDNN keeps converted int8 weights per input shape for the life of the process, so a
    run must meet few shapes: lengths go up to a multiple of 32, batches to 1, 8, 32 or a
    multiple of 32; the padding is id 0 and input_mask 0."""
    from utils.inference import _int8_padded
    shapes = set()
    for batch in (1, 2, 7, 8, 9, 31, 32, 33):
        for length in (1, 5, 32, 33, 100, 128):
            feed = {"src_ids": np.ones((batch, length), "int64"),
                    "input_mask": np.ones((batch, length), "float32")}
            padded, given = _int8_padded(feed)
            assert given == batch
            assert padded["src_ids"][:batch, :length].all()
            assert padded["input_mask"].sum() == batch * length  # the padding is masked out
            shapes.add(padded["src_ids"].shape)
    assert {s[0] for s in shapes} == {1, 8, 32, 64} and {s[1] for s in shapes} == {32, 64, 128}

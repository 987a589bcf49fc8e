"""The fine-tuning heads agree with transformers' ErnieFor* classes on the same random weights
(converted by utils.checkpoint's HF writer): logits, the training loss as the toolkit computes
it (the `loss_and_stats` of each task), and the gradient of that loss for every parameter.

* classifier  <-> ErnieForSequenceClassification (cross entropy; num_labels 1: MSE regression)
* sequence labelling <-> ErnieForTokenClassification (labels -100 where label_mask is 0)
* reading comprehension <-> ErnieForQuestionAnswering (start/end cross entropy, halved)

The batches are padded (rows of 12, 9, 5 and 3 real tokens), but one: the QA loss of a padded
batch is not transformers' (see there), so the QA gradients are compared on full rows. Where the
toolkit deliberately differs from transformers, the comment at the assertion says how and what
is compared instead. Padded, eager and static (paddle.jit.to_static, as training runs).
"""
import numpy as np
import paddle
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from finetune import classifier, mrc, sequence_label  # noqa: E402
from model.ernie import ErnieConfig, encoder_feed, encoder_input_spec  # noqa: E402
from utils.checkpoint import model_params, save_params  # noqa: E402
from utils.format_hf import params_to_hf  # noqa: E402
from utils.runtime import compile_model  # noqa: E402

CONFIGS = {
    "relu_v1": dict(hidden_act="relu", type_vocab_size=2, max_position_embeddings=40),
    "gelu_task_v2": dict(hidden_act="gelu", sent_type_vocab_size=4, task_type_vocab_size=5,
                         use_task_id=True, max_position_embeddings=32),
}
LENS = [12, 9, 5, 3]
TOL = 1e-5


def make_config(kind):
    # dropout 0 in the config: the heads' dropout follows it (classifier, tagger), and in eval
    # mode no dropout runs anywhere, so both sides are deterministic
    base = dict(attention_probs_dropout_prob=0.0, hidden_dropout_prob=0.0, hidden_size=48,
                initializer_range=0.02, num_attention_heads=4, num_hidden_layers=2,
                vocab_size=120)
    base.update(CONFIGS[kind])
    return ErnieConfig(base)


def randomize(model, seed):
    """Random weights everywhere (head biases too); layer-norm scales near 1."""
    rng = np.random.RandomState(seed)
    for p in model.parameters():
        scale = 0.2 if p.name.startswith(("word_", "pos_", "sent_", "task_", "encoder_",
                                          "pre_", "pooled_")) else 0.5
        value = (1.0 + 0.1 * rng.randn(*p.shape) if p.name.endswith("_layer_norm_scale")
                 else scale * rng.randn(*p.shape))
        p.set_value(value.astype("float32"))


def make_batch(cfg, seed, lens=LENS):
    """A reader-style batch dict: the encoder inputs of padded rows, plus `seq_lens`."""
    rng = np.random.RandomState(seed)
    B, L = len(lens), max(lens)
    src = rng.randint(4, cfg["vocab_size"], size=(B, L)).astype("int64")
    mask = np.zeros((B, L), "float32")
    sent = np.zeros((B, L), "int64")
    for b, n in enumerate(lens):
        mask[b, :n] = 1
        src[b, 0], src[b, n - 1], src[b, n:] = 1, 2, 0      # [CLS] ... [SEP] [PAD]...
        sent[b, n // 2:n] = 1
    pos = np.where(mask > 0, np.arange(L)[None, :], 0).astype("int64")
    task = np.full((B, L), 3 if cfg.use_task_id else 0, "int64")
    return dict(src_ids=src, sent_ids=sent, pos_ids=pos, input_mask=mask, task_ids=task,
                seq_lens=np.array(lens, "int64"))


def torch_inputs(batch, attention_mask=None):
    mask = batch["input_mask"] if attention_mask is None else attention_mask
    return dict(input_ids=torch.tensor(batch["src_ids"]),
                token_type_ids=torch.tensor(batch["sent_ids"]),
                position_ids=torch.tensor(batch["pos_ids"]),
                task_type_ids=torch.tensor(batch["task_ids"]),
                attention_mask=torch.tensor(mask if mask.ndim == 4 else mask.astype("int64")))


def mask_2019(input_mask):
    """The toolkit's (2019's) additive attention mask [B, 1, L, L]: 0 where query and key are
    both real tokens, -10000 otherwise. transformers adds a 4-D float mask as it is."""
    m = input_mask.astype("float32")
    return (m[:, None, :, None] * m[:, None, None, :] - 1.0) * 10000.0


def to_hf(model, cfg, hf_class, tmp_path):
    save_params(model_params(model), str(tmp_path / "hf"), "hf", ernie_config=cfg)
    hf, info = hf_class.from_pretrained(str(tmp_path / "hf"), output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"], info
    hf.eval()
    return hf


def check_gradients(model, hf, cfg, head, zero=()):
    """The gradients of the toolkit loss (already back-propagated) against those of the HF
    loss, parameter by parameter (HF names through the converter). `zero`: names whose
    gradient is 0 in exact arithmetic."""
    # every parameter gets a gradient, but the pooler where the head does not read it
    no_grad = sorted(p.name for p in model.parameters() if p.grad is None)
    assert no_grad == ([] if head == "cls" else ["pooled_fc.b_0", "pooled_fc.w_0"])
    grads = {p.name: p.grad.numpy() for p in model.parameters() if p.grad is not None}
    ours, _, _, _ = params_to_hf(grads, cfg, head=head)
    theirs = {k: p.grad.numpy() for k, p in hf.named_parameters() if p.grad is not None}
    assert set(ours) == set(theirs)
    for name, g in ours.items():
        scale = np.abs(theirs[name]).max()
        if ".attention.self.key.bias" in name or name in zero:
            # zero in exact arithmetic (a shift shared by all keys, or by all positions of a
            # softmax over positions): both sides hold rounding noise only
            assert scale < 1e-6 and np.abs(g).max() < 1e-6, name
            continue
        assert scale > 1e-6, name       # a vanished gradient would compare trivially
        assert np.abs(g - theirs[name]).max() <= 1e-4 * scale, name


STATIC = pytest.mark.parametrize("static", [False, True], ids=["eager", "static"])
KINDS = pytest.mark.parametrize("kind", sorted(CONFIGS))


@STATIC
@KINDS
def test_classifier_matches_sequence_classification(kind, static, tmp_path):
    cfg = make_config(kind)
    model = classifier.ErnieClassifier(cfg, num_labels=3)
    randomize(model, seed=1)
    model.train()    # as in training; the config's dropout 0 makes it deterministic
    hf = to_hf(model, cfg, transformers.ErnieForSequenceClassification, tmp_path)
    batch = make_batch(cfg, seed=2)
    batch["labels"] = np.array([2, 0, 1, 2], "int64")
    forward = compile_model(model, static, encoder_input_spec(cfg))

    loss, stats = classifier.loss_and_stats(model, forward, batch)
    logits = forward(*encoder_feed(model.ernie.cfg, batch)).numpy()
    out = hf(**torch_inputs(batch), labels=torch.tensor(batch["labels"]))
    hf_logits = out.logits.detach().numpy()
    assert np.abs(logits - hf_logits).max() <= TOL
    assert abs(float(loss) - out.loss.item()) <= TOL
    assert float(stats["acc"]) == np.mean(hf_logits.argmax(1) == batch["labels"])
    # not vacuous: the logits differ across rows and classes, the loss is far from log(3)
    assert np.std(hf_logits) > 0.1 and abs(out.loss.item() - np.log(3)) > 0.05

    loss.backward()
    out.loss.backward()
    check_gradients(model, hf, cfg, "cls")


@KINDS
def test_regression_matches_sequence_classification_mse(kind, tmp_path):
    """num_labels 1: the toolkit's mean square error is transformers' MSELoss (regression)."""
    cfg = make_config(kind)
    model = classifier.ErnieClassifier(cfg, num_labels=1, is_regression=True)
    randomize(model, seed=3)
    model.train()
    hf = to_hf(model, cfg, transformers.ErnieForSequenceClassification, tmp_path)
    assert hf.num_labels == 1
    batch = make_batch(cfg, seed=4)
    batch["labels"] = np.array([0.5, 3.25, -1.0, 2.0], "float32")

    loss, _ = classifier.loss_and_stats(model, model, batch)
    scores = model(*encoder_feed(model.ernie.cfg, batch)).numpy()
    out = hf(**torch_inputs(batch), labels=torch.tensor(batch["labels"]))
    assert hf.config.problem_type == "regression"
    assert scores.shape == (4, 1)
    assert np.abs(scores - out.logits.detach().numpy()).max() <= TOL
    assert abs(float(loss) - out.loss.item()) <= TOL * max(1.0, out.loss.item())
    assert np.std(scores) > 0.1
    loss.backward()
    out.loss.backward()
    check_gradients(model, hf, cfg, "cls")


def ner_labels(batch, num_labels, seed):
    """Random labels everywhere, and the label mask of the reader ([CLS], [SEP] and padding
    0) with two more real positions left out of the loss (weight 0 / label -100)."""
    rng = np.random.RandomState(seed)
    labels = rng.randint(0, num_labels, size=batch["src_ids"].shape).astype("int64")
    label_mask = batch["input_mask"].copy()
    for b, n in enumerate(batch["seq_lens"]):
        label_mask[b, 0] = label_mask[b, n - 1] = 0
    label_mask[0, 3] = label_mask[1, 5] = 0
    return labels, label_mask


@STATIC
@KINDS
def test_sequence_labeler_matches_token_classification(kind, static, tmp_path):
    cfg = make_config(kind)
    id2label = {0: "B-PER", 1: "I-PER", 2: "B-LOC", 3: "I-LOC", 4: "O"}
    model = sequence_label.ErnieSequenceLabeler(cfg, num_labels=5)
    randomize(model, seed=5)
    model.train()    # dropout 0 (config)
    hf = to_hf(model, cfg, transformers.ErnieForTokenClassification, tmp_path)
    batch = make_batch(cfg, seed=6)
    batch["labels"], batch["label_mask"] = ner_labels(batch, 5, seed=7)
    forward = compile_model(model, static, encoder_input_spec(cfg))

    loss, _ = sequence_label.loss_and_stats(model, forward, batch, id2label, "IOB")
    logits = forward(*encoder_feed(model.ernie.cfg, batch)).numpy()
    hf_labels = np.where(batch["label_mask"] > 0, batch["labels"], -100)
    out = hf(**torch_inputs(batch), labels=torch.tensor(hf_labels))
    hf_logits = out.logits.detach().numpy()
    # logits agree at the real tokens; padded positions differ by design (the toolkit masks
    # padded queries as 2019 did, transformers does not) and carry no loss on either side
    real = batch["input_mask"] > 0
    assert np.abs(logits[real] - hf_logits[real]).max() <= TOL
    # The toolkit's loss is the mean over the label_mask positions (README, Differences from
    # 2019: 2019 divided by every padded position, B * L). transformers' CrossEntropyLoss
    # with the other positions at -100 is the same mean, so it is compared directly; the
    # same number again from the HF logits with torch, over the kept positions only.
    keep = batch["label_mask"] > 0
    expected = torch.nn.functional.cross_entropy(
        torch.tensor(hf_logits[keep]), torch.tensor(batch["labels"][keep]))
    assert abs(float(loss) - out.loss.item()) <= TOL
    assert abs(float(loss) - float(expected)) <= TOL
    # not vacuous: the 4 + 2 left-out positions matter (the mean over all real tokens differs)
    all_real = torch.nn.functional.cross_entropy(
        torch.tensor(hf_logits[real]), torch.tensor(batch["labels"][real]))
    assert abs(float(all_real) - float(loss)) > 1e-3 and np.std(hf_logits[real]) > 0.1

    loss.backward()
    out.loss.backward()
    check_gradients(model, hf, cfg, "ner")


def test_sequence_label_loss_with_nothing_to_label_is_zero():
    """A batch whose label_mask is all 0: the toolkit's loss is 0 (nothing to learn), where
    transformers' mean over no positions is NaN."""
    logits = np.random.RandomState(0).randn(2, 5, 3).astype("float32")
    labels = np.zeros((2, 5), "int64")
    loss = sequence_label.masked_loss(paddle.to_tensor(logits), paddle.to_tensor(labels),
                                      paddle.zeros([2, 5], "float32"))
    assert float(loss) == 0.0
    hf_loss = torch.nn.functional.cross_entropy(torch.tensor(logits).view(-1, 3),
                                                torch.full((10,), -100))
    assert torch.isnan(hf_loss)


def mrc_model(kind, tmp_path, seed):
    cfg = make_config(kind)
    model = mrc.ErnieMRC(cfg)
    randomize(model, seed=seed)
    # ErnieMRC's dropout is 0.1 whatever the config says (as 2019), so the comparison runs in
    # eval mode (a static program in eval mode has no backward: gradients only eagerly)
    model.eval()
    return cfg, model, to_hf(model, cfg, transformers.ErnieForQuestionAnswering, tmp_path)


def mrc_positions(batch, start, end):
    batch["start_positions"] = np.array(start, "int64")
    batch["end_positions"] = np.array(end, "int64")
    return dict(start_positions=torch.tensor(batch["start_positions"]),
                end_positions=torch.tensor(batch["end_positions"]))


@STATIC
@KINDS
def test_mrc_matches_question_answering_with_padding(kind, static, tmp_path):
    cfg, model, hf = mrc_model(kind, tmp_path, seed=8)
    batch = make_batch(cfg, seed=9)
    # given positions: inside the rows, the last real token ([SEP]) of row 3, and [CLS]
    # (position 0: the reader's target when the answer is not in the window)
    positions = mrc_positions(batch, [3, 8, 0, 2], [11, 8, 0, 2])
    forward = compile_model(model, static, encoder_input_spec(cfg))
    loss, _ = mrc.loss_and_stats(model, forward, batch)
    start, end = [t.numpy() for t in forward(*encoder_feed(model.ernie.cfg, batch))]
    real = batch["input_mask"] > 0
    with torch.no_grad():
        plain = hf(**torch_inputs(batch), **positions)
        hf_2019 = hf(**torch_inputs(batch, mask_2019(batch["input_mask"])), **positions)
    assert np.abs(start[real] - plain.start_logits.numpy()[real]).max() <= TOL
    assert np.abs(end[real] - plain.end_logits.numpy()[real]).max() <= TOL
    assert np.std(start[real]) > 0.1 and np.std(end[real]) > 0.1

    # The loss deliberately differs from transformers' in a padded batch. The start/end
    # softmax runs over every position, padding included, on both sides (as in 2019 and
    # BERT), but the logits at padded positions differ: the toolkit keeps 2019's attention
    # mask, which also masks padded *queries*, while transformers masks keys only.
    assert np.abs(start[~real] - plain.start_logits.numpy()[~real]).max() > 0.1
    # Given the 2019 mask as a 4-D additive mask, transformers computes the padded positions
    # as the toolkit does, to float32 rounding of the -10000 that 2019 adds to every score of
    # a padded query: float32 holds numbers of that size 1e-3 apart, so where a score of the
    # two sides differs in its last bit the shifted scores round apart and a padded logit
    # moves, by up to 5e-4 seen over 24 seeds (mostly 1e-6; real queries have bias 0 at
    # their real keys and agree to 1e-5). The ordinary mask is 0.3 to 5 away.
    for ours, theirs in ((start, hf_2019.start_logits), (end, hf_2019.end_logits)):
        theirs = theirs.numpy()
        assert np.abs(ours[real] - theirs[real]).max() <= TOL
        assert np.abs(ours[~real] - theirs[~real]).max() <= 2e-3
    assert abs(float(loss) - hf_2019.loss.item()) <= 2e-3
    # The loss formula, to 1e-5: transformers' logits at the real positions (ordinary mask)
    # with the padded positions as the toolkit computes them (checked just above), through
    # the mean of the start and end cross entropies, computed here with torch.
    def mixed(hf_logits, ours):
        return torch.tensor(np.where(real, hf_logits.numpy(), ours))
    expected = (torch.nn.functional.cross_entropy(mixed(plain.start_logits, start),
                                                  positions["start_positions"])
                + torch.nn.functional.cross_entropy(mixed(plain.end_logits, end),
                                                    positions["end_positions"])) / 2
    assert abs(float(loss) - expected.item()) <= TOL


@KINDS
def test_mrc_loss_and_gradients_match_question_answering_without_padding(kind, tmp_path):
    """Rows without padding: transformers' own QA loss is the toolkit's, and so are the
    gradients of every parameter."""
    cfg, model, hf = mrc_model(kind, tmp_path, seed=10)
    batch = make_batch(cfg, seed=11, lens=[12, 12, 12])
    positions = mrc_positions(batch, [3, 0, 11], [5, 0, 11])
    loss, _ = mrc.loss_and_stats(model, model, batch)
    start, end = [t.numpy() for t in model(*encoder_feed(model.ernie.cfg, batch))]
    out = hf(**torch_inputs(batch), **positions)
    assert np.abs(start - out.start_logits.detach().numpy()).max() <= TOL
    assert np.abs(end - out.end_logits.detach().numpy()).max() <= TOL
    assert abs(float(loss) - out.loss.item()) <= TOL
    assert abs(out.loss.item() - np.log(12)) > 0.05       # not the loss of flat logits
    loss.backward()
    out.loss.backward()
    # the start/end softmax runs over positions, so what shifts every position's logit alike
    # (the qa_outputs bias, the last layer norm's bias) gets no gradient
    check_gradients(model, hf, cfg, "mrc", zero={
        "qa_outputs.bias",
        "ernie.encoder.layer.%d.output.LayerNorm.bias" % (cfg["num_hidden_layers"] - 1)})

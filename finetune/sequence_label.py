"""Sequence labelling (NER) on the encoder's sequence output: one label per token, no CRF.

ErnieSequenceLabeler: encoder inputs -> logits [B, L, num_labels] (dropout at the config's
hidden_dropout_prob, then fc `cls_seq_label_out_w/_b`, decoded by a per-token argmax, as in
2019).

- `loss_and_stats`: the training objective, plus the chunk counts of the batch that the train
  log line turns into f1 / precision / recall;
- `predict_labels`: one predicted label per input token, with long inputs predicted in
  overlapping windows and stitched back (the same code serves training-time evaluation and
  the exported inference program of predict_sequence_labeling.py);
- `evaluate`: chunk F1 under `--chunk_scheme`, with the 2019 log line;
- `write_predictions`: the aligned prediction file.

Deliberate differences from 2019:

- the loss is the mean cross entropy over the real tokens of the batch ([CLS], [SEP] and
  padding have weight 0). 2019 multiplied by the input mask but divided by B * L, so padding
  (and a batch's longest length) diluted the loss and its gradient;
- evaluation scores chunks over the input tokens of the whole file: every sequence's positions
  1..len-2 ([CLS] and [SEP] skipped) are mapped back to label strings, then to the input
  tokens (the label of a token's first piece; "O" for a token with no pieces), and an input
  longer than max_seq_len is evaluated whole, in windows, not cut. For character input (the
  Chinese tasks: one piece per character) this is 2019's position-wise evaluation without
  the truncation; in every case the reported F1 is the one seqeval computes from the written
  prediction file against the gold file.
"""
import contextlib
import os
import time

import paddle
import paddle.nn as nn
import paddle.nn.functional as F

from finetune.metrics import chunk_counts, chunk_f1, format_chunk_line
from finetune.predict import run_in_length_order
from model.ernie import ErnieModel, encoder_feed, encoder_input_names, truncated_normal
from model.transformer_encoder import dropout
from reader.task_reader import best_window_of_pieces
from utils.fileio import atomic_write_text
from utils.loop import eval_mode


class ErnieSequenceLabeler(nn.Layer):
    def __init__(self, cfg, num_labels):
        super().__init__()
        self.ernie = ErnieModel(cfg)
        self.num_labels = num_labels
        with paddle.utils.unique_name.guard():
            self.cls_seq_label_out = nn.Linear(
                cfg["hidden_size"], num_labels,
                weight_attr=paddle.ParamAttr("cls_seq_label_out_w", truncated_normal(cfg)),
                bias_attr=paddle.ParamAttr("cls_seq_label_out_b", nn.initializer.Constant(0.0)))

    def forward(self, src_ids, sent_ids, pos_ids, input_mask, task_ids=None):
        seq_out, _ = self.ernie(src_ids, sent_ids, pos_ids, input_mask, task_ids)
        rate = self.ernie.cfg["hidden_dropout_prob"]  # 0.1 in every released config, as 2019
        return self.cls_seq_label_out(dropout(seq_out, rate, self.training))


class SequenceLabelPredictor(nn.Layer):
    """The exported inference program: encoder inputs -> label probabilities [B, L, C]."""

    def __init__(self, labeler):
        super().__init__()
        self.labeler = labeler

    def forward(self, src_ids, sent_ids, pos_ids, input_mask, task_ids=None):
        return F.softmax(self.labeler(src_ids, sent_ids, pos_ids, input_mask, task_ids))


def masked_loss(logits, labels, label_mask, num_trainers=1):
    """Mean cross entropy over the positions where label_mask is 1 (0 for an empty mask).

    With several trainers the sum is divided by the mean count of labelled positions over all
    trainers, not by this trainer's own count: the gradients DataParallel averages are then
    those of the mean over every trainer's tokens, so N trainers with batch b train exactly as
    one with batch N*b although their sentences differ in length (the value is the trainer's
    share of that mean)."""
    per_token = F.cross_entropy(logits, labels, reduction="none")       # [B, L]
    total = paddle.sum(per_token * label_mask)
    count = paddle.sum(label_mask)
    if num_trainers > 1:
        count = count.reshape([1])
        paddle.distributed.all_reduce(count)
        count = count[0] / num_trainers
    return total / paddle.clip(count, min=1.0)


def batch_chunk_counts(labels, preds, seq_lens, id2label, scheme):
    """(num_label, num_infer, num_correct) over positions 1..len-2 of every row."""
    gold, infer = [], []
    for row, n in enumerate(seq_lens):
        gold.append([id2label[k] for k in labels[row, 1:n - 1]])
        infer.append([id2label[k] for k in preds[row, 1:n - 1]])
    return chunk_counts(gold, infer, scheme)


def loss_and_stats(model, forward, batch, id2label, scheme, num_trainers=1):
    """Loss over the real tokens of the batch (of all trainers' batches: masked_loss), plus its
    chunk counts (num_label, num_infer, num_correct): summed over the log window, they give
    the train line's f1 / p / r."""
    logits = forward(*encoder_feed(model.ernie.cfg, batch))
    loss = masked_loss(logits, paddle.to_tensor(batch["labels"]),
                       paddle.to_tensor(batch["label_mask"]), num_trainers)
    preds = paddle.argmax(logits, axis=-1).numpy()
    counts = batch_chunk_counts(batch["labels"], preds, batch["seq_lens"], id2label, scheme)
    return loss, dict(zip(("num_label", "num_infer", "num_correct"), counts))


class EagerRunner(object):
    """`run(feed) -> [probs]` over the training-time model, like utils.inference.Predictor,
    so that evaluation during training and predict_sequence_labeling.py share one path."""

    def __init__(self, model, forward):
        self.model, self.forward = model, forward
        self.names = encoder_input_names(model.ernie.cfg)

    def run(self, feed):
        with paddle.no_grad():
            logits = self.forward(*[paddle.to_tensor(feed[n]) for n in self.names])
            return [F.softmax(logits).numpy()]


def predict_labels(reader, examples, runner, batch_size, quiet=False):
    """Per example, its predicted label strings: exactly one per input token (`quiet`: no
    progress bar).

    Each example is cut into windows of max_seq_len - 2 pieces (reader.window_records); the
    windows of all examples are predicted in batches of similar length; a piece takes its
    label from the window where it has the most context, a token the label of its first
    piece, and a token without pieces "O"."""
    windows, owners = [], []
    for index, example in enumerate(examples):
        for start, end, record in reader.window_records(example):
            windows.append(record)
            owners.append((index, start, end))

    def per_window(outputs, feed):
        ids = outputs[0].argmax(axis=-1)
        return [ids[row, 1:n - 1] for row, n in enumerate(feed["seq_lens"])]

    # an EagerRunner's model runs in eval mode; an exported program has no modes
    model = getattr(runner, "model", None)
    with eval_mode(model) if model is not None else contextlib.nullcontext():
        window_ids = run_in_length_order(runner, windows, batch_size, reader.pad_batch,
                                         per_window, quiet=quiet)

    results, w = [], 0
    for index, example in enumerate(examples):
        spans = []
        while w < len(owners) and owners[w][0] == index:
            spans.append((owners[w][1], owners[w][2], window_ids[w]))
            w += 1
        num_pieces = len(example.piece_ids)
        choice = best_window_of_pieces([(s, e) for s, e, _ in spans], num_pieces)
        piece_ids = [int(spans[choice[j]][2][j - spans[choice[j]][0]])
                     for j in range(num_pieces)]
        results.append([reader.id2label[piece_ids[p]] if p >= 0 else "O"
                        for p in example.first_piece])
    return results


def evaluate(reader, examples, runner, batch_size, scheme, phase):
    """Chunk F1 of the predictions against the examples' labels.

    Returns (metrics dict: precision, recall, f1, num_label, num_infer, num_correct; the 2019
    line `[phase evaluation] f1: ..., precision: ..., recall: ..., elapsed time: ... s`;
    the predicted labels, per example)."""
    start = time.time()
    preds = predict_labels(reader, examples, runner, batch_size)
    counts = chunk_counts([ex.labels for ex in examples], preds, scheme)
    precision, recall, f1 = chunk_f1(*counts)
    metrics = dict(zip(("num_label", "num_infer", "num_correct"), counts))
    metrics.update(precision=precision, recall=recall, f1=f1)
    return metrics, format_chunk_line(phase, precision, recall, f1, time.time() - start), preds


def write_predictions(path, examples, preds):
    """One line per example: its tokens joined by \\x02, a tab, the predicted labels joined by
    \\x02 (one per token). Written atomically."""
    lines = []
    for example, labels in zip(examples, preds):
        if len(labels) != len(example.tokens):
            raise AssertionError("line %d: %d tokens but %d predicted labels"
                                 % (example.line, len(example.tokens), len(labels)))
        lines.append("\x02".join(example.tokens) + "\t" + "\x02".join(labels))
    parent = os.path.dirname(path)
    if parent:
        os.makedirs(parent, exist_ok=True)
    atomic_write_text(path, "".join(line + "\n" for line in lines))

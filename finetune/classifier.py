"""Sentence (pair) classification and regression on the pooled [CLS] output.

ErnieClassifier: encoder inputs -> logits [B, num_labels] (dropout, fc `_cls_out_w/_b`). The
head's dropout rate is the config's hidden_dropout_prob: 0.1 in every released config, as
2019 hard-coded, and 0 turns all dropout off.
`loss_and_stats` is the training objective, `evaluate` the dev/test pass with the 2019
metrics and log line, `write_predictions` the 2019 `--do_test` output.
"""
import os
import time

import numpy as np
import paddle
import paddle.nn as nn
import paddle.nn.functional as F

from finetune.metrics import classification_metrics, format_eval_line
from model.ernie import ErnieModel, encoder_feed, truncated_normal
from model.transformer_encoder import dropout
from utils.fileio import atomic_write_text
from utils.loop import eval_mode


class ErnieClassifier(nn.Layer):
    def __init__(self, cfg, num_labels, is_regression=False):
        super().__init__()
        self.ernie = ErnieModel(cfg)
        self.is_regression = is_regression
        with paddle.utils.unique_name.guard():
            self.cls_out = nn.Linear(
                cfg["hidden_size"], 1 if is_regression else num_labels,
                weight_attr=paddle.ParamAttr("_cls_out_w", truncated_normal(cfg)),
                bias_attr=paddle.ParamAttr("_cls_out_b", nn.initializer.Constant(0.0)))

    def forward(self, src_ids, sent_ids, pos_ids, input_mask, task_ids=None):
        _, pooled = self.ernie(src_ids, sent_ids, pos_ids, input_mask, task_ids)
        rate = self.ernie.cfg["hidden_dropout_prob"]
        return self.cls_out(dropout(pooled, rate, self.training))

    def outputs(self, logits):
        """What prediction reports: class probabilities, or the regression score [B, 1]."""
        return logits if self.is_regression else F.softmax(logits)


class ClassifierPredictor(nn.Layer):
    """The exported inference program: encoder inputs -> probabilities (or scores)."""

    def __init__(self, classifier):
        super().__init__()
        self.classifier = classifier

    def forward(self, src_ids, sent_ids, pos_ids, input_mask, task_ids=None):
        return self.classifier.outputs(
            self.classifier(src_ids, sent_ids, pos_ids, input_mask, task_ids))


def loss_and_stats(model, forward, batch):
    """Mean loss over the batch, plus the running statistics that the train log prints."""
    logits = forward(*encoder_feed(model.ernie.cfg, batch))
    if model.is_regression:
        labels = paddle.to_tensor(batch["labels"]).reshape([-1, 1])
        return F.square_error_cost(logits, labels).mean(), {}
    labels = paddle.to_tensor(batch["labels"])
    loss = F.cross_entropy(logits, labels)
    acc = (paddle.argmax(logits, axis=-1) == labels).astype("float32").mean()
    return loss, {"acc": acc}


def run_inference(model, forward, batches):
    """Run eval-mode forward over batches; returns (outputs [N, C], labels or None, qids, loss
    sum weighted by batch size)."""
    outputs, labels, qids, loss_sum = [], [], [], 0.0
    with eval_mode(model), paddle.no_grad():
        for batch in batches:
            logits = forward(*encoder_feed(model.ernie.cfg, batch))
            outputs.append(model.outputs(logits).numpy())
            qids.extend(batch["qids"])
            if "labels" in batch:
                labels.append(batch["labels"])
                n = len(batch["labels"])
                if model.is_regression:
                    lab = paddle.to_tensor(batch["labels"]).reshape([-1, 1])
                    loss_sum += float(F.square_error_cost(logits, lab).mean()) * n
                elif batch["labels"].min() >= 0:  # GLUE test files carry the dummy label -1
                    loss_sum += float(F.cross_entropy(logits, paddle.to_tensor(
                        batch["labels"]))) * n
    return (np.concatenate(outputs), np.concatenate(labels) if labels else None, qids, loss_sum)


def predictions_of(model, outputs):
    return outputs[:, 0] if model.is_regression else outputs.argmax(axis=1)


def evaluate(model, forward, batches, phase, metric):
    """Dev/test evaluation: returns (metrics dict, the 2019 log line)."""
    start = time.time()
    outputs, labels, qids, loss_sum = run_inference(model, forward, batches)
    preds = predictions_of(model, outputs)
    has_qids = all(q not in (None, "") for q in qids)
    metrics = classification_metrics(metric, preds, labels, probs=outputs,
                                      qids=qids if has_qids else None)
    data_num = len(labels)
    line = format_eval_line(phase, metric, metrics, loss_sum / data_num,
                            None if model.is_regression else data_num, time.time() - start)
    return metrics, line


def format_probs(row):
    return np.array2string(row, separator=" ", max_line_width=10 ** 6, precision=8)


def write_predictions(model, forward, batches, path):
    """The 2019 `--do_test` file: `[qid\\t]pred\\tprobs` per example, in input order."""
    outputs, _, qids, _ = run_inference(model, forward, batches)
    preds = predictions_of(model, outputs)
    lines = []
    with_qid = any(qid is not None for qid in qids)  # the file has a qid column
    for qid, pred, row in zip(qids, preds, outputs):
        fields = [str(qid)] if with_qid else []
        fields += [repr(float(pred)), format_probs(row)]
        lines.append("\t".join(fields))
    parent = os.path.dirname(path)
    if parent:
        os.makedirs(parent, exist_ok=True)
    atomic_write_text(path, "\n".join(lines) + "\n")
    return outputs

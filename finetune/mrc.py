"""Reading comprehension (span extraction): start/end head, loss, n-best decoding, scoring.

ErnieMRC: encoder inputs -> (start_logits [B, L], end_logits [B, L]) from the sequence output
through dropout at the config's hidden_dropout_prob (0.1 in every released config, which 2019
hard-coded) and one fc `cls_mrc_out_w/_b` [H, 2] (column 0 start, column 1 end).
`loss_and_stats` is (CE(start) + CE(end)) / 2, over batches padded alike on every trainer.
`write_predictions` decodes the best answer of every question over all its windows (BERT's v1
n-best search) and writes `predictions.json` and `nbest_predictions.json`; `evaluate` scores
them with the SQuAD v1.1 logic (English) or the CMRC 2018 logic (Chinese) and returns the 2019
log line.

Mapping a span back to text:
  * English (`for_cn` false): BERT's `get_final_text` projects the normalised word pieces onto
    the original words (a substring of the context) with BasicTokenizer;
  * Chinese: the character spans of the first and last sub-token cut the answer out of the
    context.
Either way the answer is a substring of the context. Where 2019 answered "empty" (no candidate
among the top `n_best_size` starts and ends survived the checks), the best valid span over all
positions is taken instead, so every question gets a span of its context.
"""
import collections
import json
import math
import os
import time

import numpy as np
import paddle
import paddle.nn as nn
import paddle.nn.functional as F

from model.ernie import ErnieModel, encoder_feed, truncated_normal
from model.transformer_encoder import dropout
from tokenization import BasicTokenizer
from utils import cmrc2018_eval, squad_eval
from utils.errors import DataError
from utils.fileio import atomic_write_text
from utils.loop import eval_mode

RawResult = collections.namedtuple("RawResult", "unique_id start_logits end_logits")


class ErnieMRC(nn.Layer):
    def __init__(self, cfg):
        super().__init__()
        self.ernie = ErnieModel(cfg)
        with paddle.utils.unique_name.guard():
            self.cls_mrc_out = nn.Linear(
                cfg["hidden_size"], 2,
                weight_attr=paddle.ParamAttr("cls_mrc_out_w", truncated_normal(cfg)),
                bias_attr=paddle.ParamAttr("cls_mrc_out_b", nn.initializer.Constant(0.0)))

    def forward(self, src_ids, sent_ids, pos_ids, input_mask, task_ids=None):
        seq_out, _ = self.ernie(src_ids, sent_ids, pos_ids, input_mask, task_ids)
        rate = self.ernie.cfg["hidden_dropout_prob"]
        logits = self.cls_mrc_out(dropout(seq_out, rate, self.training))
        return logits[:, :, 0], logits[:, :, 1]


def pad_to_common_length(batch, pad_id, num_trainers=1):
    """With several trainers: the training batch padded to the longest of all trainers'
    batches, as one trainer with their union would pad it. The start/end softmax runs over the
    padded positions too (as in 2019), so a batch's loss depends on its padded length; padded
    alike, N trainers with batch b train exactly as one with batch N*b."""
    if num_trainers <= 1:
        return batch
    length = batch["src_ids"].shape[1]
    longest = paddle.to_tensor([length], "int64")
    paddle.distributed.all_reduce(longest, op=paddle.distributed.ReduceOp.MAX)
    extra = int(longest.numpy()[0]) - length
    if extra <= 0:
        return batch
    padded = dict(batch)
    for name in ("src_ids", "sent_ids", "pos_ids", "input_mask", "task_ids"):
        if name in batch:
            value = 0 if name == "input_mask" else pad_id
            mode = dict(mode="edge") if name == "task_ids" else dict(constant_values=value)
            padded[name] = np.pad(batch[name], ((0, 0), (0, extra)), **mode)
    return padded


def loss_and_stats(model, forward, batch, pad_id=0, num_trainers=1):
    """(CE(start) + CE(end)) / 2, each the mean over the batch; no extra statistics. With
    several trainers the batch is first padded to the longest of theirs (pad_to_common_length,
    with the reader's `pad_id`)."""
    batch = pad_to_common_length(batch, pad_id, num_trainers)
    start_logits, end_logits = forward(*encoder_feed(model.ernie.cfg, batch))
    start = F.cross_entropy(start_logits, paddle.to_tensor(batch["start_positions"]))
    end = F.cross_entropy(end_logits, paddle.to_tensor(batch["end_positions"]))
    return (start + end) / 2.0, {}


def predict(model, forward, batches):
    """Eval-mode forward over batches: [RawResult] with logits over each feature's real tokens."""
    results = []
    with eval_mode(model), paddle.no_grad():
        for batch in batches:
            start_logits, end_logits = forward(*encoder_feed(model.ernie.cfg, batch))
            start_logits, end_logits = start_logits.numpy(), end_logits.numpy()
            lengths = batch["input_mask"].sum(axis=1).astype("int64")
            for i, uid in enumerate(batch["unique_ids"]):
                n = lengths[i]
                results.append(RawResult(int(uid), start_logits[i, :n].tolist(),
                                         end_logits[i, :n].tolist()))
    return results


# ---- span -> text -------------------------------------------------------------------------
def _without_spaces(text):
    """(text without whitespace, index in it -> index in text)."""
    chars, index = [], []
    for i, char in enumerate(text):
        if not char.isspace():
            chars.append(char)
            index.append(i)
    return "".join(chars), index


def get_final_text(pred_text, orig_text, do_lower_case):
    """The part of `orig_text` that the normalised `pred_text` stands for (BERT's heuristic):
    tokenize `orig_text` with BasicTokenizer, find `pred_text` in it, and carry the match back
    character by character once spaces are ignored on both sides. Returns `orig_text` itself
    when that is not possible (different lengths, no match)."""
    tok_text = " ".join(BasicTokenizer(do_lower_case=do_lower_case).tokenize(orig_text))
    start = tok_text.find(pred_text)
    if start < 0:
        return orig_text
    end = start + len(pred_text) - 1
    orig_ns, orig_index = _without_spaces(orig_text)
    tok_ns, tok_index = _without_spaces(tok_text)
    if len(orig_ns) != len(tok_ns):
        return orig_text
    tok_to_ns = {t: k for k, t in enumerate(tok_index)}
    if start not in tok_to_ns or end not in tok_to_ns:
        return orig_text
    return orig_text[orig_index[tok_to_ns[start]]:orig_index[tok_to_ns[end]] + 1]


def span_text(example, feature, start, end, do_lower_case, for_cn):
    """The answer text of positions start..end (inclusive) of `feature`."""
    sub_start = feature.doc_start + start - feature.doc_offset
    sub_end = feature.doc_start + end - feature.doc_offset
    if for_cn:
        return example.context[example.sub_spans[sub_start][0]:example.sub_spans[sub_end][1]]
    orig_start = feature.token_to_orig_map[start]
    orig_end = feature.token_to_orig_map[end]
    orig_text = example.context[example.doc_spans[orig_start][0]:example.doc_spans[orig_end][1]]
    tok_text = " ".join(feature.tokens[start:end + 1]).replace(" ##", "").replace("##", "")
    tok_text = " ".join(tok_text.split())
    return get_final_text(tok_text, orig_text, do_lower_case)


def _best_indexes(logits, n):
    return np.argsort(-np.asarray(logits), kind="stable")[:n].tolist()


def _valid(feature, start, end, max_answer_length):
    return (start in feature.token_to_orig_map and end in feature.token_to_orig_map and
            feature.token_is_max_context.get(start, False) and start <= end and
            end - start + 1 <= max_answer_length)


def _softmax(scores):
    top = max(scores)
    exps = [math.exp(s - top) for s in scores]
    total = sum(exps)
    return [e / total for e in exps]


def decode(examples, features, results, n_best_size, max_answer_length, do_lower_case,
           for_cn):
    """(predictions {qid: text}, nbest {qid: [{text, probability, start_logit, end_logit}]})."""
    by_example = collections.defaultdict(list)
    for feature in features:
        by_example[feature.example_index].append(feature)
    result_of = {r.unique_id: r for r in results}
    predictions, nbest_json = collections.OrderedDict(), collections.OrderedDict()
    for index, example in enumerate(examples):
        feats = by_example[index]
        missing = [f.unique_id for f in feats if f.unique_id not in result_of]
        if missing:
            raise DataError("question %s: no model output for feature %d"
                            % (example.qas_id, missing[0]))
        candidates = []
        for fi, feature in enumerate(feats):
            result = result_of[feature.unique_id]
            starts = _best_indexes(result.start_logits, n_best_size)
            ends = _best_indexes(result.end_logits, n_best_size)
            for s in starts:
                for e in ends:
                    if _valid(feature, s, e, max_answer_length):
                        candidates.append((result.start_logits[s] + result.end_logits[e],
                                           fi, s, e))
        if not candidates:             # 2019 answered "empty"; take the best valid span
            for fi, feature in enumerate(feats):
                result = result_of[feature.unique_id]
                for s in feature.token_to_orig_map:
                    for e in range(s, min(s + max_answer_length, len(feature.tokens))):
                        if _valid(feature, s, e, max_answer_length):
                            candidates.append((result.start_logits[s] +
                                               result.end_logits[e], fi, s, e))
        candidates.sort(key=lambda c: c[0], reverse=True)
        nbest, seen = [], set()
        for _, fi, s, e in candidates:
            if len(nbest) >= n_best_size:
                break
            text = span_text(example, feats[fi], s, e, do_lower_case, for_cn)
            if text in seen:
                continue
            seen.add(text)
            result = result_of[feats[fi].unique_id]
            nbest.append((text, float(result.start_logits[s]), float(result.end_logits[e])))
        if not nbest:
            raise DataError("question %s: no answer span could be decoded" % example.qas_id)
        probs = _softmax([s + e for _, s, e in nbest])
        predictions[example.qas_id] = nbest[0][0]
        nbest_json[example.qas_id] = [
            collections.OrderedDict([("text", t), ("probability", p), ("start_logit", s),
                                     ("end_logit", e)])
            for (t, s, e), p in zip(nbest, probs)]
    return predictions, nbest_json


def write_predictions(examples, features, results, n_best_size, max_answer_length,
                      do_lower_case, for_cn, output_prediction_file, output_nbest_file):
    """Decode, then write both json files atomically (indent 4, UTF-8); returns predictions."""
    predictions, nbest = decode(examples, features, results, n_best_size, max_answer_length,
                                do_lower_case, for_cn)
    for path in (output_prediction_file, output_nbest_file):
        parent = os.path.dirname(path)
        if parent:
            os.makedirs(parent, exist_ok=True)
    print("Writing predictions to: %s" % output_prediction_file)
    atomic_write_text(output_prediction_file,
                      json.dumps(predictions, indent=4, ensure_ascii=False) + "\n")
    print("Writing nbest to: %s" % output_nbest_file)
    atomic_write_text(output_nbest_file, json.dumps(nbest, indent=4, ensure_ascii=False) + "\n")
    return predictions


def score_file(data_file, prediction_file, for_cn):
    """(EM, F1, avg, questions): CMRC 2018 logic for Chinese, SQuAD v1.1 logic for English."""
    return (cmrc2018_eval if for_cn else squad_eval).eval_file(data_file, prediction_file)


def evaluate(model, forward, batches, examples, features, phase, output_dir, data_file,
             n_best_size, max_answer_length, do_lower_case, for_cn, has_answers=True):
    """Predict, write `<output_dir>/<phase>_predictions.json` and `_nbest_predictions.json`,
    score against `data_file` when it has gold answers. Returns (metrics dict, log line)."""
    start = time.time()
    results = predict(model, forward, batches)
    pred_file = os.path.join(output_dir, "%s_predictions.json" % phase)
    nbest_file = os.path.join(output_dir, "%s_nbest_predictions.json" % phase)
    write_predictions(examples, features, results, n_best_size, max_answer_length,
                      do_lower_case, for_cn, pred_file, nbest_file)
    if not has_answers:
        line = ("[%s evaluation] no gold answers in %s: predictions written, not scored, "
                "question_num: %d, elapsed time: %f" % (phase, data_file, len(examples),
                                                        time.time() - start))
        return {"question_num": len(examples)}, line
    em, f1, avg, total = score_file(data_file, pred_file, for_cn)
    line = ("[%s evaluation] em: %f, f1: %f, avg: %f, question_num: %d, elapsed time: %f"
            % (phase, em, f1, avg, total, time.time() - start))
    return {"em": em, "f1": f1, "avg": avg, "question_num": total}, line

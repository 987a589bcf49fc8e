"""ERNIE 2.0 multi-task model: one shared encoder and one head per task.

2019 released no code for this (only the `get_task_output` hook of model/ernie.py); this is
our design, following the ERNIE 2.0 paper. The encoder is `ErnieModel` with task embeddings on
(every task feeds its own task id); each step runs one task's batch through the encoder and
that task's head (`TaskForward`). Heads (all TruncatedNormal(initializer_range) weights, zero
biases):

* knowledge_masking: the 2019 masked-LM head, `mask_lm_trans_fc.{w_0,b_0}`,
  `mask_lm_trans_layer_norm_{scale,bias}` and `mask_lm_out_fc.b_0`, output tied to
  `word_embedding`; logits over the vocabulary at the masked tokens.
* next_sentence: `next_sent_fc.{w_0,b_0}` (the 2019 name) on the pooled output, 2 classes.
* capitalization, token_document_relation: `<name>_fc.{w_0,b_0}` on every token, 2 classes.
* sentence_reordering, sentence_distance, sentence_pair: `<name>_fc.{w_0,b_0}` on the pooled
  output, the task's `num_labels` classes.

`<name>_fc` is what 2019's `get_task_output` named a task head. With these names a checkpoint
loads into ErnieModel, and a model of more tasks loads an earlier one (new heads start fresh).
The tasks, their data and the training schedule: pretraining/multitask.py.
"""
import collections

import paddle
import paddle.nn as nn

from model.ernie import ErnieModel, MaskedLMHead, truncated_normal
from model.transformer_encoder import named_linear

MLM_KINDS = ("knowledge_masking",)
TOKEN_KINDS = ("capitalization", "token_document_relation")


def head_name(name, kind):
    """The parameter-name prefix of task `name`'s head."""
    if kind in MLM_KINDS:
        return "mask_lm"
    if kind == "next_sentence":
        return "next_sent_fc"
    return name + "_fc"


def task_input_names(kind):
    """What TaskForward takes for a task of `kind`, in order (names for model.ernie.input_spec
    and feed): task ids always, as every ERNIE 2.0 task feeds its own; mask_pos for the
    masked LM."""
    names = ("src_ids", "sent_ids", "pos_ids", "input_mask", "task_ids")
    return names + ("mask_pos",) if kind in MLM_KINDS else names


class TaskForward(nn.Layer):
    """Encoder + one task's head: what one step of that task runs (compiled per task).
    Returns logits: [M, V] over the masked tokens, [B, L, C] for a token task, [B, C] else."""

    def __init__(self, ernie, head, kind):
        super().__init__()
        self.ernie, self.head, self.kind = ernie, head, kind

    def forward(self, src_ids, sent_ids, pos_ids, input_mask, task_ids, mask_pos=None):
        seq_out, pooled = self.ernie(src_ids, sent_ids, pos_ids, input_mask, task_ids)
        if self.kind in MLM_KINDS:
            return self.head(seq_out, mask_pos)
        if self.kind in TOKEN_KINDS:
            return self.head(seq_out)
        return self.head(pooled)


class ErnieMultiTask(nn.Layer):
    """The shared encoder and every task's head. `tasks` maps task names to objects with
    `kind` and `num_labels` (pretraining.multitask.Task); `model(name, *inputs)` runs task
    `name` (inputs in task_input_names order), `task_forward(name)` is that per-task model."""

    def __init__(self, cfg, tasks, weight_sharing=True):
        super().__init__()
        self.cfg = cfg
        self.ernie = ErnieModel(cfg)
        init = truncated_normal(cfg)
        heads = collections.OrderedDict()
        with paddle.utils.unique_name.guard():
            for name, task in tasks.items():
                if task.kind in MLM_KINDS:
                    heads[name] = MaskedLMHead(cfg, self.ernie.word_emb.weight,
                                               weight_sharing)
                else:
                    heads[name] = named_linear(cfg["hidden_size"], task.num_labels,
                                               head_name(name, task.kind), init)
        self.heads = nn.LayerDict(heads)
        # per-task forwards share the layers above; kept out of the sublayer tree
        self.__dict__["_forwards"] = {name: TaskForward(self.ernie, self.heads[name], t.kind)
                                      for name, t in tasks.items()}

    def task_forward(self, name):
        return self.__dict__["_forwards"][name]

    def set_task_forward(self, name, forward):
        """Run task `name` through `forward` (its TaskForward compiled) from now on, also when
        the model is called (paddle.DataParallel calls the model)."""
        self.__dict__["_forwards"][name] = forward

    def forward(self, name, *inputs):
        return self.task_forward(name)(*inputs)

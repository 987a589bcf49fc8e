"""ERNIE 1.0 / 2.0: config, encoder model and pretraining heads, with the 2019 parameter names.

Inputs (the readers produce them; B = batch, L = padded length, H = hidden size):
    src_ids   int64   [B, L]   token ids (padding id 0)
    sent_ids  int64   [B, L]   sentence (segment) ids
    pos_ids   int64   [B, L]   positions 0..n-1
    input_mask float32 [B, L]  1 for real tokens, 0 for padding
    task_ids  int64   [B, L]   only used when the config says `use_task_id`
Outputs of ErnieModel: sequence output [B, L, H] and pooled output [B, H] (tanh fc on [CLS]).
"""
import json

import paddle
import paddle.nn as nn
from paddle.static import InputSpec

from model.transformer_encoder import (
    TransformerEncoder,
    activation,
    dropout,
    named_layer_norm,
    named_linear,
)
from utils.errors import DataError, UsageError

REQUIRED_KEYS = ("attention_probs_dropout_prob", "hidden_act", "hidden_dropout_prob",
                 "hidden_size", "initializer_range", "max_position_embeddings",
                 "num_attention_heads", "num_hidden_layers", "vocab_size")

# the largest value each size may take (generous: ERNIE Large is hidden 1024, 24 layers,
# FFN 4096, vocab 18k-50k, 512 positions), and the largest model built, in parameters
SIZE_LIMITS = {"hidden_size": 2 ** 16, "intermediate_size": 2 ** 20,
               "num_hidden_layers": 2 ** 10, "num_attention_heads": 2 ** 16,
               "vocab_size": 2 ** 24, "max_position_embeddings": 2 ** 20,
               "type_vocab_size": 2 ** 20, "sent_type_vocab_size": 2 ** 20,
               "task_type_vocab_size": 2 ** 20}
MAX_PARAMETERS = 10 ** 11


class ErnieConfig(dict):
    """The `ernie_config.json` of ERNIE 1.0 (`type_vocab_size`) or 2.0 (`sent_type_vocab_size`,
    `task_type_vocab_size`, `use_task_id`). Missing optional keys read as None.
    `intermediate_size` (ours, optional) is the FFN width, 4*hidden_size when absent as in
    2019; converted transformers models with another width carry it."""

    def __init__(self, path_or_dict, source=None):
        if isinstance(path_or_dict, dict):
            data, self.source = dict(path_or_dict), source or "<config dict>"
        else:
            self.source = str(path_or_dict)
            try:
                with open(path_or_dict, encoding="utf-8") as f:
                    data = json.load(f)
            except FileNotFoundError:
                raise DataError("%s: ERNIE config file not found" % self.source) from None
            except (ValueError, UnicodeDecodeError) as e:
                raise DataError("%s: error in parsing Ernie model config file (%s)"
                                % (self.source, str(e).splitlines()[0])) from None
            if not isinstance(data, dict):
                raise DataError("%s: error in parsing Ernie model config file (not a json object)"
                                % self.source)
        super().__init__(data)
        self._validate()

    def __getitem__(self, key):
        return self.get(key)

    def _validate(self):
        for key in REQUIRED_KEYS:
            if key not in self:
                raise DataError("%s: required key '%s' is missing" % (self.source, key))
        if not (self.get("sent_type_vocab_size") or self.get("type_vocab_size")):
            raise DataError("%s: required key 'type_vocab_size' (or 'sent_type_vocab_size') is "
                            "missing" % self.source)
        if self.use_task_id and not self.get("task_type_vocab_size"):
            raise DataError("%s: 'use_task_id' is set but 'task_type_vocab_size' is missing"
                            % self.source)
        ints = ["hidden_size", "num_hidden_layers", "num_attention_heads", "vocab_size",
                "max_position_embeddings"] + [
            key for key in ("type_vocab_size", "sent_type_vocab_size", "task_type_vocab_size",
                            "intermediate_size")
            if self.get(key) is not None]
        for key in ints:
            if not isinstance(self[key], int) or isinstance(self[key], bool) or self[key] <= 0:
                raise DataError("%s: '%s' must be a positive integer, got %r"
                                % (self.source, key, self[key]))
        def number(value):
            return isinstance(value, (int, float)) and not isinstance(value, bool)

        for key in ("attention_probs_dropout_prob", "hidden_dropout_prob"):
            if not number(self[key]) or not 0 <= self[key] <= 1:
                raise DataError("%s: '%s' must be a number in [0, 1], got %r"
                                % (self.source, key, self[key]))
        if not number(self["initializer_range"]) or not 0 < self["initializer_range"] < 1e6:
            raise DataError("%s: 'initializer_range' must be a positive number, got %r"
                            % (self.source, self["initializer_range"]))
        if self["hidden_size"] % self["num_attention_heads"]:
            raise DataError("%s: hidden_size %d is not divisible by num_attention_heads %d"
                            % (self.source, self["hidden_size"], self["num_attention_heads"]))
        if self["hidden_act"] not in ("relu", "gelu"):
            raise DataError("%s: hidden_act must be 'relu' or 'gelu', got %r"
                            % (self.source, self["hidden_act"]))
        self._check_sizes()

    def _check_sizes(self):
        """Sizes a model can be built with: each key below its limit, and the parameter count
        of the whole encoder below MAX_PARAMETERS (ERNIE Large is 3.4e8), so that a typo
        (hidden_size 2**40) is an error naming the key, not an allocation failure."""
        for key, limit in SIZE_LIMITS.items():
            value = self.get(key)
            if value is not None and value > limit:
                raise DataError("%s: '%s' is %d, more than %d: not the size of a model this "
                                "toolkit can build (ERNIE Large: hidden_size 1024, "
                                "num_hidden_layers 24)" % (self.source, key, value, limit))
        count = self.num_parameters()
        if count > MAX_PARAMETERS:
            sizes = ", ".join("%s %d" % (key, self.get(key)) for key in (
                "hidden_size", "num_hidden_layers", "intermediate_size", "vocab_size",
                "max_position_embeddings") if self.get(key) is not None)
            raise DataError("%s: %s make a model of %.3g parameters (%.0f GB in float32); "
                            "this toolkit builds up to %.0e: check these keys"
                            % (self.source, sizes, count, count * 4 / 1e9, MAX_PARAMETERS))

    def num_parameters(self):
        """Parameters of the encoder this config builds (embeddings, layers, pooler)."""
        hidden, layers = self["hidden_size"], self["num_hidden_layers"]
        inner = self.get("intermediate_size") or 4 * hidden
        rows = self["vocab_size"] + self["max_position_embeddings"] + self.sent_types + (
            self.get("task_type_vocab_size") or 0 if self.use_task_id else 0)
        per_layer = 4 * (hidden * hidden + hidden) + 2 * hidden * inner + inner + 5 * hidden
        return rows * hidden + 2 * hidden + layers * per_layer + hidden * hidden + hidden

    @property
    def sent_types(self):
        return self.get("sent_type_vocab_size") or self.get("type_vocab_size")

    @property
    def use_task_id(self):
        return bool(self.get("use_task_id"))

    def print_config(self):
        for key in sorted(self):
            print("%s: %s" % (key, self[key]))
        print("-" * 48)


def check_against_config(args, config, vocab):
    """Before any model is built: --max_seq_len fits the config's position embeddings and
    every vocabulary id fits its vocab_size (the embedding table the checkpoint holds)."""
    if args.max_seq_len > config["max_position_embeddings"]:
        raise UsageError("--max_seq_len %d is longer than max_position_embeddings %d in %s"
                         % (args.max_seq_len, config["max_position_embeddings"],
                            args.ernie_config_path))
    size = max(vocab.values()) + 1 if vocab else 0
    if size > config["vocab_size"]:
        raise UsageError("%s has ids up to %d but vocab_size in %s is %d"
                         % (args.vocab_path, size - 1, args.ernie_config_path,
                            config["vocab_size"]))


def encoder_input_names(cfg):
    """The inputs a model built from `cfg` takes, in order (task ids only when it uses them)."""
    names = ("src_ids", "sent_ids", "pos_ids", "input_mask")
    return names + ("task_ids",) if cfg.use_task_id else names


def input_spec(names):
    """The static-graph signature of model inputs named as the readers name them: [B, L] with
    both dimensions dynamic (so one program serves every batch), except the flat mask_pos [M];
    input_mask is float32, everything else int64."""
    return [InputSpec([None] if n == "mask_pos" else [None, None],
                      "float32" if n == "input_mask" else "int64", name=n) for n in names]


def encoder_input_spec(cfg, extra=()):
    """input_spec of the encoder's inputs, then the `extra` names."""
    return input_spec(encoder_input_names(cfg) + tuple(extra))


def feed(batch, names):
    """The tensors of a reader batch (a dict of numpy arrays) in the order of `names`."""
    return [paddle.to_tensor(batch[n]) for n in names]


def encoder_feed(cfg, batch):
    """The encoder's inputs from a reader batch, in encoder_input_spec's order."""
    return feed(batch, encoder_input_names(cfg))


def truncated_normal(cfg):
    std = cfg["initializer_range"]
    return nn.initializer.TruncatedNormal(mean=0.0, std=std, a=-2 * std, b=2 * std)


def attention_bias(input_mask):
    """[B, L] mask -> [B, 1, L, L] additive bias: 0 where query and key are both real tokens,
    -10000 otherwise (the 2019 mask, which also masks padded queries).

    An outer product by broadcasting: the same numbers as 2019's [B, L, 1] x [B, 1, L] matmul,
    which oneDNN's inference kernels get wrong (K = 1)."""
    pairs = paddle.unsqueeze(input_mask, [1, 3]) * paddle.unsqueeze(input_mask, [1, 2])
    bias = (pairs - 1.0) * 10000.0
    bias.stop_gradient = True
    return bias


class ErnieModel(nn.Layer):
    """Embeddings (word + position + sentence [+ task]) -> layer norm -> dropout -> encoder."""

    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        hidden, init = cfg["hidden_size"], truncated_normal(cfg)
        with paddle.utils.unique_name.guard():  # the 2019 names may exist in another model
            self.word_emb = nn.Embedding(cfg["vocab_size"], hidden,
                                         weight_attr=paddle.ParamAttr("word_embedding", init))
            self.pos_emb = nn.Embedding(cfg["max_position_embeddings"], hidden,
                                        weight_attr=paddle.ParamAttr("pos_embedding", init))
            self.sent_emb = nn.Embedding(cfg.sent_types, hidden,
                                         weight_attr=paddle.ParamAttr("sent_embedding", init))
            self.task_emb = None
            if cfg.use_task_id:
                self.task_emb = nn.Embedding(cfg["task_type_vocab_size"], hidden,
                                             weight_attr=paddle.ParamAttr("task_embedding", init))
            self.pre_encoder_norm = named_layer_norm(hidden, "pre_encoder")
            self.encoder = TransformerEncoder(cfg, init)
            self.pooled_fc = named_linear(hidden, hidden, "pooled_fc", init)
        self.dropout = cfg["hidden_dropout_prob"]

    def forward(self, src_ids, sent_ids, pos_ids, input_mask, task_ids=None):
        emb = self.word_emb(src_ids) + self.pos_emb(pos_ids) + self.sent_emb(sent_ids)
        if self.task_emb is not None:
            emb = emb + self.task_emb(task_ids if task_ids is not None
                                      else paddle.zeros_like(src_ids))
        emb = dropout(self.pre_encoder_norm(emb), self.dropout, self.training)
        seq_out = self.encoder(emb, attention_bias(input_mask))
        pooled = paddle.tanh(self.pooled_fc(seq_out[:, 0]))
        return seq_out, pooled


class MaskedLMHead(nn.Layer):
    """Masked LM over gathered positions (ernie_v1 `get_pretraining_output`): fc + act + layer
    norm, output tied to the word embedding (or its own fc) + bias.

    mask_pos int64 [M] are flat indices into the padded batch (row * L + col), as 2019.
    Returns logits [M, V]. Build it inside a fresh `unique_name.guard()` (its names are fixed).
    """

    def __init__(self, cfg, word_embedding, weight_sharing=True):
        super().__init__()
        hidden, init = cfg["hidden_size"], truncated_normal(cfg)
        self.word_embedding = word_embedding if weight_sharing else None
        self.act = activation(cfg["hidden_act"])
        self.trans_fc = named_linear(hidden, hidden, "mask_lm_trans_fc", init)
        self.trans_norm = named_layer_norm(hidden, "mask_lm_trans")
        if weight_sharing:
            self.out_bias = self.create_parameter(
                [cfg["vocab_size"]], attr=paddle.ParamAttr(
                    "mask_lm_out_fc.b_0", initializer=nn.initializer.Constant(0.0)),
                is_bias=True)
        else:
            self.out_fc = named_linear(hidden, cfg["vocab_size"], "mask_lm_out_fc", init)

    def forward(self, seq_out, mask_pos):
        picked = paddle.gather(paddle.reshape(seq_out, [-1, seq_out.shape[-1]]), mask_pos)
        h = self.trans_norm(self.act(self.trans_fc(picked)))
        if self.word_embedding is not None:
            return paddle.matmul(h, self.word_embedding, transpose_y=True) + self.out_bias
        return self.out_fc(h)


class PretrainingHeads(nn.Layer):
    """ERNIE 1.0 pretraining: MaskedLMHead and next-sentence prediction (`next_sent_fc`).
    Returns mlm logits [M, V] and next-sentence logits [B, 2]."""

    def __init__(self, cfg, word_embedding, weight_sharing=True):
        super().__init__()
        with paddle.utils.unique_name.guard():
            self.mlm = MaskedLMHead(cfg, word_embedding, weight_sharing)
            self.next_sent_fc = named_linear(cfg["hidden_size"], 2, "next_sent_fc",
                                             truncated_normal(cfg))

    def forward(self, seq_out, pooled, mask_pos):
        return self.mlm(seq_out, mask_pos), self.next_sent_fc(pooled)


class ErnieForPretraining(nn.Layer):
    """ErnieModel + PretrainingHeads; forward returns (mlm logits [M, V], nsp logits [B, 2])."""

    def __init__(self, cfg, weight_sharing=True):
        super().__init__()
        self.ernie = ErnieModel(cfg)
        self.heads = PretrainingHeads(cfg, self.ernie.word_emb.weight, weight_sharing)

    def forward(self, src_ids, sent_ids, pos_ids, input_mask, mask_pos, task_ids=None):
        seq_out, pooled = self.ernie(src_ids, sent_ids, pos_ids, input_mask, task_ids)
        return self.heads(seq_out, pooled, mask_pos)

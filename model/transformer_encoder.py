"""The post-norm Transformer encoder of ERNIE 1.0/2.0, with the 2019 parameter names.

Shapes: B = batch, L = padded sequence length, H = hidden size, N = heads, D = H / N.
Every layer is `LN(x + Dropout(Sublayer(x)))` (the 2019 "dan" post-process), the FFN is
`intermediate_size` wide (4H when the config does not say, the only width of 2019) with no
dropout inside it, and layer norms use epsilon 1e-5 as Fluid did.
"""
import paddle
import paddle.nn as nn
import paddle.nn.functional as F

LAYER_NORM_EPS = 1e-5


def ffn_size(cfg):
    """Width of the FFN: the config's `intermediate_size` (converted models), else 4H."""
    return cfg.get("intermediate_size") or 4 * cfg["hidden_size"]


def dropout(x, p, training):
    """Upscale-in-train dropout (the 2019 `dropout_implementation`), as F.dropout computes it.

    On CPU, Paddle's dropout kernel draws one float per element from a single-threaded
    generator, which dominated the attention-map dropout; a mask from 24-bit random
    integers keeps each element with probability 1 - p (to 2^-24, the resolution of a float
    draw) with far less work. GPUs keep Paddle's kernel.
    """
    if not training or p == 0:
        return x
    if not paddle.get_device().startswith("cpu"):
        return F.dropout(x, p=p, training=True)
    keep = paddle.randint(0, 1 << 24, paddle.shape(x)) >= int(round(p * (1 << 24)))
    # under autocast x may be bf16/fp16: an fp32 mask keeps the factor 1 / (1 - p) exact and
    # makes the product fp32, which the residual sum after the encoder's dropouts needs anyway
    # (Paddle's CPU kernels for elementwise bf16 work are slow)
    low = x.dtype in (paddle.bfloat16, paddle.float16)
    return x * (keep.astype("float32" if low else x.dtype) * (1.0 / (1.0 - p)))


def _autocasting():
    """True inside paddle.amp.auto_cast (or utils.amp's CPU bf16 autocast), also while
    to_static traces a program under it."""
    return paddle.base.core._get_amp_attrs()._amp_level != paddle.base.core.AmpLevel.O0


def _amp_dtype():
    return paddle.base.core._get_amp_attrs()._amp_dtype


class Linear(nn.Linear):
    """nn.Linear whose bias gradient comes from a matmul while training.

    On CPU, Paddle reduces the gradient of a broadcast `x @ W + b` over the B*L rows with a
    kernel two orders of magnitude slower than the same sum as a matmul; adding
    the bias as the product `ones[..., 1] @ b[1, out]` gives the same numbers and lets the
    backward pass compute it as `ones^T @ grad`. Prediction keeps the plain add.

    Under autocast the output is fp32 (the bias product in fp32), as the heads' outputs must
    be (utils/amp.py), unless `low_precision_out`: the encoder's own layers, whose outputs
    only feed other ops, keep the matmul's bf16/fp16 and spare the casts back and forth.

    While training, inputs of more than two dimensions are multiplied as one [rows, in]
    matrix: the gradient of a [B, L, in] x [in, out] matmul takes Paddle's broadcasting path,
    one small product per batch row and a reduction, several times slower than one large
    product (in bf16, where the oneDNN kernel does it, it dominated the step). Prediction
    keeps the programs that the inference passes fuse.
    """

    low_precision_out = False

    def forward(self, x):
        if x.ndim <= 2 or not self.training:
            return self._forward_rows(x)
        # the leading dimensions are dynamic in a to_static program: take all but the last
        # from x and infer the last
        lead = [paddle.shape(x)[i] for i in range(x.ndim - 2)]
        y = self._forward_rows(paddle.reshape(x, [-1, x.shape[-1]]))
        return paddle.reshape(y, lead + [-1, y.shape[-1]])

    def _forward_rows(self, x):
        y = paddle.matmul(x, self.weight)
        if self.bias is None:
            return y
        if not self.training:
            return y + self.bias
        if not _autocasting() or self.low_precision_out:
            return y + paddle.matmul(paddle.ones_like(y[..., :1]), self.bias.unsqueeze(0))
        # the bias product outside autocast stays fp32, and so does its sum with y
        ones = paddle.ones_like(y[..., :1], dtype="float32")
        with paddle.amp.auto_cast(enable=False, dtype=_amp_dtype()):
            bias = paddle.matmul(ones, self.bias.unsqueeze(0))
        return y + bias


def named_linear(in_dim, out_dim, name, init, low_precision_out=False):
    """fc with weight `<name>.w_0` [in, out] and bias `<name>.b_0`, as fluid's fc named them;
    `low_precision_out`: see Linear."""
    layer = Linear(in_dim, out_dim,
                   weight_attr=paddle.ParamAttr(name=name + ".w_0", initializer=init),
                   bias_attr=paddle.ParamAttr(name=name + ".b_0",
                                              initializer=nn.initializer.Constant(0.0)))
    layer.low_precision_out = low_precision_out
    return layer


def named_layer_norm(dim, name):
    """layer norm with `<name>_layer_norm_scale` (ones) and `<name>_layer_norm_bias` (zeros)."""
    return nn.LayerNorm(dim, epsilon=LAYER_NORM_EPS,
                        weight_attr=paddle.ParamAttr(name=name + "_layer_norm_scale",
                                                     initializer=nn.initializer.Constant(1.0)),
                        bias_attr=paddle.ParamAttr(name=name + "_layer_norm_bias",
                                                   initializer=nn.initializer.Constant(0.0)))


def activation(name):
    if name == "relu":
        return F.relu
    if name == "gelu":
        return lambda x: F.gelu(x, approximate=False)  # the exact erf form, as Fluid's gelu
    raise ValueError("hidden_act must be relu or gelu, got %r" % name)


class MultiHeadAttention(nn.Layer):
    """Self-attention: [B, L, H] and an additive bias [B, 1, L, L] -> [B, L, H]."""

    def __init__(self, hidden, n_head, attn_dropout, name, init):
        super().__init__()
        self.n_head = n_head
        self.d_head = hidden // n_head
        self.query_fc = named_linear(hidden, hidden, name + "_query_fc", init)
        self.key_fc = named_linear(hidden, hidden, name + "_key_fc", init)
        self.value_fc = named_linear(hidden, hidden, name + "_value_fc", init)
        self.output_fc = named_linear(hidden, hidden, name + "_output_fc", init,
                                      low_precision_out=True)
        self.attn_dropout = attn_dropout

    def _split_heads(self, x):
        # [B, L, H] -> [B, N, L, D]; reshape with 0 keeps B and -1 infers L (both dynamic)
        return paddle.transpose(paddle.reshape(x, [0, -1, self.n_head, self.d_head]), [0, 2, 1, 3])

    def forward(self, x, attn_bias):
        if self.training and _autocasting():
            # one cast for the three projections (autocast would cast x for each); their
            # outputs are fp32, for the fp32 transposes that split the heads
            x = x.astype(_amp_dtype())
        # scaled before the split: on the contiguous [B, L, H] tensor, not a transposed view
        q = self._split_heads(self.query_fc(x) * (self.d_head ** -0.5))
        k = self._split_heads(self.key_fc(x))
        v = self._split_heads(self.value_fc(x))
        weights = F.softmax(paddle.matmul(q, k, transpose_y=True) + attn_bias)
        weights = dropout(weights, self.attn_dropout, self.training)
        ctx = paddle.matmul(weights, v)
        if ctx.dtype != paddle.float32:  # autocast: Paddle's CPU bf16 transpose is slow
            ctx = ctx.astype("float32")
        ctx = paddle.transpose(ctx, [0, 2, 1, 3])
        return self.output_fc(paddle.reshape(ctx, [0, -1, self.n_head * self.d_head]))


class EncoderLayer(nn.Layer):
    """One post-norm layer `encoder_layer_<i>`: attention then FFN, [B, L, H] -> [B, L, H]."""

    def __init__(self, cfg, i, init):
        super().__init__()
        name = "encoder_layer_%d" % i
        hidden = cfg["hidden_size"]
        self.attention = MultiHeadAttention(hidden, cfg["num_attention_heads"],
                                            cfg["attention_probs_dropout_prob"],
                                            name + "_multi_head_att", init)
        self.post_att_norm = named_layer_norm(hidden, name + "_post_att")
        inner = ffn_size(cfg)
        self.ffn_fc_0 = named_linear(hidden, inner, name + "_ffn_fc_0", init,
                                     low_precision_out=True)
        self.ffn_fc_1 = named_linear(inner, hidden, name + "_ffn_fc_1", init,
                                     low_precision_out=True)
        self.post_ffn_norm = named_layer_norm(hidden, name + "_post_ffn")
        self.act = activation(cfg["hidden_act"])
        self.dropout = cfg["hidden_dropout_prob"]

    def forward(self, x, attn_bias):
        att = self.attention(x, attn_bias)
        x = self.post_att_norm(x + dropout(att, self.dropout, self.training))
        ffn = self.ffn_fc_1(self.act(self.ffn_fc_0(x)))
        return self.post_ffn_norm(x + dropout(ffn, self.dropout, self.training))


class TransformerEncoder(nn.Layer):
    """`num_hidden_layers` EncoderLayers; returns the top layer's output [B, L, H]."""

    def __init__(self, cfg, init):
        super().__init__()
        self.layers = nn.LayerList([EncoderLayer(cfg, i, init)
                                    for i in range(cfg["num_hidden_layers"])])

    def forward(self, x, attn_bias):
        for layer in self.layers:
            x = layer(x, attn_bias)
        return x

"""Sequence layers: the masked LSTM, the masked pieces models build on it (pooling,
attention, convolutions), each exact under padding: values past a sequence's length never
change a result; and `LSTMCell`, the LSTM's step on its own for loops of one's own."""

from seqjax.layers.attention import MaskedSelfAttention, MultiHeadAttentionPool
from seqjax.layers.cell import LSTMCell
from seqjax.layers.conv import MultiScaleConv, sinusoidal_encoding
from seqjax.layers.lstm import LSTM, pytorch_uniform
from seqjax.layers.masking import check_sequence_inputs, length_mask, masked_softmax
from seqjax.layers.pooling import AttentionPool, last_valid, masked_max, masked_mean

__all__ = [
    "LSTM",
    "LSTMCell",
    "AttentionPool",
    "MaskedSelfAttention",
    "MultiHeadAttentionPool",
    "MultiScaleConv",
    "check_sequence_inputs",
    "last_valid",
    "length_mask",
    "masked_max",
    "masked_mean",
    "masked_softmax",
    "pytorch_uniform",
    "sinusoidal_encoding",
]

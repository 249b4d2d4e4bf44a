"""Sequence layers: the masked LSTM and the pieces models build on it."""

from seqjax.layers.lstm import LSTM, pytorch_uniform
from seqjax.layers.masking import check_sequence_inputs, length_mask

__all__ = ["LSTM", "check_sequence_inputs", "length_mask", "pytorch_uniform"]

"""A plain stacked LSTM regressor: the baseline the hybrid model is measured against."""

from __future__ import annotations

import dataclasses

import flax.linen as nn
import jax

from seqjax.layers import LSTM
from seqjax.layers.masking import check_sequence_inputs
from seqjax.models.lstm_options import LSTMOptions
from seqjax.suggest import names_unknown_options


@names_unknown_options
@dataclasses.dataclass(frozen=True)
class BaselineConfig(LSTMOptions):
    features: int = 9
    hidden_size: int = 128
    num_layers: int = 2
    outputs: int = 3
    dropout: float = 0.1


@names_unknown_options
class LSTMRegressor(nn.Module):
    """LSTM stack -> state at the last valid step -> dense. (B, T, F) -> (B, outputs)."""

    config: BaselineConfig = BaselineConfig()

    @nn.compact
    def __call__(self, inputs: jax.Array, lengths: jax.Array, *, train: bool = False):
        # a sequence to score needs a step: lengths in [1, T] (the LSTM alone takes 0)
        check_sequence_inputs(inputs, lengths, name=type(self).__name__)
        cfg = self.config
        lstm = LSTM(
            cfg.hidden_size,
            cfg.num_layers,
            dropout=cfg.dropout,
            **cfg.lstm_options(),
            name="lstm",
        )
        _, (h_n, _) = lstm(inputs, lengths, train=train)
        return nn.Dense(cfg.outputs, name="out")(h_n[-1])  # (B, outputs)

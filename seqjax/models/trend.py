"""Trend forecasting (seed "LSTMTrendPredictor"): 12 weeks x 62 features -> for each horizon
(7 and 30 days) a trend score in [-1, 1] and up/flat/down logits.

A 2-layer bidirectional LSTM (64 per direction), 4-head attention pooling over the valid
weeks, then one small head per horizon. Returns {"score": (B, 2), "logits": (B, 2, 3)}
(and "attention": (B, heads, T) with `return_details=True`).
"""

from __future__ import annotations

import dataclasses

import flax.linen as nn
import jax
import jax.numpy as jnp

from seqjax.layers import LSTM
from seqjax.layers.attention import MultiHeadAttentionPool
from seqjax.layers.dropout import Dropout
from seqjax.layers.masking import check_sequence_inputs
from seqjax.models.lstm_options import LSTMOptions
from seqjax.suggest import names_unknown_options


@names_unknown_options
@dataclasses.dataclass(frozen=True)
class TrendConfig(LSTMOptions):
    features: int = 62
    hidden_size: int = 64
    num_layers: int = 2
    num_heads: int = 4
    dropout: float = 0.2
    head_dim: int = 64
    num_horizons: int = 2

    def __post_init__(self):
        super().__post_init__()
        if (2 * self.hidden_size) % self.num_heads:
            raise ValueError(
                f"2 * hidden_size ({2 * self.hidden_size}) must be divisible by num_heads "
                f"({self.num_heads})"
            )
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must lie in [0, 1); got {self.dropout}")


@names_unknown_options
class TrendPredictor(nn.Module):
    config: TrendConfig = TrendConfig()

    @nn.compact
    def __call__(
        self,
        inputs: jax.Array,
        lengths: jax.Array,
        *,
        train: bool = False,
        return_details: bool = False,
    ):
        # a sequence to score needs a step: lengths in [1, T] (the LSTM alone takes 0)
        check_sequence_inputs(inputs, lengths, name=type(self).__name__)
        cfg = self.config
        x, _ = LSTM(
            cfg.hidden_size,
            cfg.num_layers,
            bidirectional=True,
            dropout=cfg.dropout,
            **cfg.lstm_options(),
            name="encoder",
        )(inputs, lengths, train=train)  # (B, T, 2H)
        pooled, weights = MultiHeadAttentionPool(cfg.num_heads, name="attention")(x, lengths)
        pooled = Dropout(cfg.dropout)(pooled, deterministic=not train)  # (B, 2H)
        scores, logits = [], []
        for k in range(cfg.num_horizons):
            h = nn.relu(nn.Dense(cfg.head_dim, name=f"head_{k}_hidden")(pooled))
            scores.append(jnp.tanh(nn.Dense(1, name=f"head_{k}_score")(h))[:, 0])  # (B,)
            logits.append(nn.Dense(3, name=f"head_{k}_direction")(h))  # (B, 3)
        out = {"score": jnp.stack(scores, axis=1), "logits": jnp.stack(logits, axis=1)}
        if return_details:
            out["attention"] = weights
        return out

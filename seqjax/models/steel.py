"""Defect detection (seed "SteelDefectLSTM"): a casting's sensor sequence -> P(defect).

Input (B, T, 5) with T up to 500 and per-sequence lengths. Optional input normalisation
(LayerNorm over channels), a stack of LSTM layers (uni- or bidirectional, dropout between
them), a masked pooling (last valid step, mean over valid steps, or additive attention whose
weights are returned), optional batch or layer normalisation of the pooled vector, and a
classifier MLP. Returns the defect logit (B,) (or class logits (B, K) with
`num_classes` K >= 3, as for multi-class real data); with `return_details=True` also the
attention weights (B, T) and every LSTM layer's outputs.

`residual` adds a skip connection around every layer after the first (the widths match
there): a 4-layer unidirectional stack without it does not learn the defect task at all,
because the gradient reaching the lower layers through three recurrent layers is too weak.

Layers are separate single-layer LSTMs named `lstm_0`, `lstm_1`, ... so a layer's outputs
can be returned and a layer frozen by path prefix (`optimizer.freeze: ["lstm_0/"]`).
Batch normalisation keeps running statistics in the `batch_stats` collection; unlike the
rest of the model its statistics do see zero-weight padding examples of a short last
batch, so prefer layer normalisation where that matters.
"""

from __future__ import annotations

import dataclasses

import flax.linen as nn
import jax

from seqjax.layers import LSTM
from seqjax.layers.dropout import Dropout
from seqjax.layers.masking import check_sequence_inputs
from seqjax.layers.pooling import AttentionPool, masked_mean
from seqjax.models.lstm_options import LSTMOptions
from seqjax.suggest import names_unknown_options

POOLINGS = ("last", "mean", "attention")
NORMS = ("none", "batch", "layer")


@names_unknown_options
@dataclasses.dataclass(frozen=True)
class SteelConfig(LSTMOptions):
    features: int = 5
    hidden_size: int = 64
    num_layers: int = 2
    bidirectional: bool = False
    dropout: float = 0.2
    classifier_dims: tuple[int, ...] = (64, 32)
    classifier_dropout: float = 0.2
    pooling: str = "attention"
    normalization: str = "none"  # of the pooled features: none | batch | layer
    input_norm: bool = False  # LayerNorm over the channels of every step
    unroll: int | None = None  # None: the platform's default (16 on GPU, 1 elsewhere)
    remat_chunk: int = 0  # > 0: rematerialise the recurrence in chunks (long sequences)
    residual: bool = False  # add each layer's input to its output from layer 2 on
    num_classes: int = 1  # 1: one defect logit (B,); K >= 3: class logits (B, K)

    def __post_init__(self):
        super().__post_init__()
        if self.num_classes < 1 or self.num_classes == 2:
            raise ValueError(
                f"num_classes must be 1 (binary, one logit) or >= 3; got {self.num_classes}"
            )
        if not 32 <= self.hidden_size <= 512:
            raise ValueError(f"hidden_size must lie in [32, 512]; got {self.hidden_size}")
        if not 1 <= self.num_layers <= 4:
            raise ValueError(f"num_layers must lie in [1, 4]; got {self.num_layers}")
        if self.pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}; got {self.pooling!r}")
        if self.normalization not in NORMS:
            raise ValueError(f"normalization must be one of {NORMS}; got {self.normalization!r}")
        if self.remat_chunk < 0:
            raise ValueError(f"remat_chunk must be >= 0; got {self.remat_chunk}")
        if self.remat_chunk and self.lstm_backward != "custom":
            raise ValueError(
                f"remat_chunk works with lstm_backward='custom'; got {self.lstm_backward!r}"
            )
        for p in (self.dropout, self.classifier_dropout):
            if not 0.0 <= p < 1.0:
                raise ValueError(f"dropout rates must lie in [0, 1); got {p}")


@names_unknown_options
class SteelDefectLSTM(nn.Module):
    config: SteelConfig = SteelConfig()

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
        x = inputs
        if cfg.input_norm:
            x = nn.LayerNorm(name="input_norm")(x)  # (B, T, F); padded rows are re-zeroed
        layer_outputs = []
        for k in range(cfg.num_layers):
            x_in = x
            x, (h_n, _) = LSTM(
                cfg.hidden_size,
                bidirectional=cfg.bidirectional,
                unroll=cfg.unroll,
                **cfg.lstm_options(),
                remat_chunk=cfg.remat_chunk,
                name=f"lstm_{k}",
            )(x, lengths, train=train)  # (B, T, D*H), zero past each length
            if cfg.residual and k > 0:
                x = x + x_in  # (B, T, D*H); both are zero past each length
            layer_outputs.append(x)
            h_last = h_n  # (D, B, H); the config holds 1-4 layers
            if k < cfg.num_layers - 1:
                x = Dropout(cfg.dropout)(x, deterministic=not train)
        weights = None
        if cfg.pooling == "last":
            # Forward state at the last valid step; backward state after reading t = 0.
            pooled = h_last.transpose(1, 0, 2).reshape(x.shape[0], -1)  # (B, D*H)
        elif cfg.pooling == "mean":
            pooled = masked_mean(x, lengths)  # (B, D*H)
        else:
            pooled, weights = AttentionPool(cfg.hidden_size, name="attention")(x, lengths)
        if cfg.normalization == "batch":
            pooled = nn.BatchNorm(use_running_average=not train, name="norm")(pooled)
        elif cfg.normalization == "layer":
            pooled = nn.LayerNorm(name="norm")(pooled)
        h = pooled
        for j, dim in enumerate(cfg.classifier_dims):
            h = nn.relu(nn.Dense(dim, name=f"classifier_{j}")(h))
            h = Dropout(cfg.classifier_dropout)(h, deterministic=not train)
        logits = nn.Dense(cfg.num_classes, name="output")(h)  # (B, K)
        if cfg.num_classes == 1:
            logits = logits[:, 0]  # (B,)
        if not return_details:
            return logits
        return logits, {"attention": weights, "layer_outputs": layer_outputs}

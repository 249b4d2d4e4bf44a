"""Trust scoring (seed "FreelancerTrustLSTM"): a freelancer profile -> P(trustworthy).

Input (B, 2, 768): step 0 is a 768-d description embedding, step 1 the six project
indicators zero-padded to 768. Three single-layer LSTMs 768 -> 256 -> 128 -> 64 with dropout
between them, the last valid step, then dense 64 -> 1. The model returns the logit; the
sigmoid lives in the loss (`sigmoid_binary_cross_entropy`) and in `probability`, which is
the numerically stable form of the seed's sigmoid-then-BCE.

Parameter count with PyTorch's layout (two biases per layer): 1,297,985.
"""

from __future__ import annotations

import dataclasses

import flax.linen as nn
import jax

from seqjax.layers import LSTM
from seqjax.layers.dropout import Dropout
from seqjax.layers.masking import check_sequence_inputs
from seqjax.models.lstm_options import LSTMOptions
from seqjax.suggest import names_unknown_options


@names_unknown_options
@dataclasses.dataclass(frozen=True)
class TrustConfig(LSTMOptions):
    features: int = 768
    hidden_sizes: tuple[int, ...] = (256, 128, 64)
    dropout: float = 0.4
    unroll: int | None = None  # None: the platform's default (16 on GPU, 1 elsewhere)

    def __post_init__(self):
        super().__post_init__()
        if not self.hidden_sizes or min(self.hidden_sizes) < 1:
            raise ValueError(
                f"hidden_sizes must be non-empty positive ints; got {self.hidden_sizes}"
            )
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must lie in [0, 1); got {self.dropout}")


@names_unknown_options
class TrustLSTM(nn.Module):
    """`__call__(inputs (B, T, F), lengths (B,), *, train) -> logits (B,)`."""

    config: TrustConfig = TrustConfig()

    @nn.compact
    def __call__(self, inputs: jax.Array, lengths: jax.Array, *, train: bool = False) -> jax.Array:
        # a sequence to score needs a step: lengths in [1, T] (the LSTM alone takes 0)
        check_sequence_inputs(inputs, lengths, name=type(self).__name__)
        cfg = self.config
        x = inputs
        h_last = None
        for k, hidden in enumerate(cfg.hidden_sizes):
            # Xavier-uniform input weights, orthogonal recurrent weights, zero biases, as the
            # seed initialises its LSTMs (PyTorch's defaults would be uniform +-1/sqrt(H)).
            x, (h_n, _) = LSTM(
                hidden,
                unroll=cfg.unroll,
                **cfg.lstm_options(),
                kernel_ih_init=nn.initializers.xavier_uniform(),
                kernel_hh_init=nn.initializers.orthogonal(),
                bias_init=nn.initializers.zeros,
                name=f"lstm{k + 1}",
            )(x, lengths, train=train)  # x (B, T, H_k)
            h_last = h_n[-1]  # (B, H_k): state at each sequence's last valid step
            if k < len(cfg.hidden_sizes) - 1:
                x = Dropout(cfg.dropout)(x, deterministic=not train)
        logits = nn.Dense(1, name="fc")(h_last)  # (B, 1)
        return logits[:, 0]  # (B,)


def probability(logits: jax.Array) -> jax.Array:
    """P(trustworthy) from the model's logits (B,)."""
    return jax.nn.sigmoid(logits)

"""Pooling a padded sequence (B, T, D) to one vector per sequence (B, D), masks from lengths.

Every pool ignores steps past a sequence's length, so padding never changes a result. A
sequence with no steps (length 0: a stream with nothing new in a chunk, which the LSTM
takes) pools to zeros, as the attention pools' do, rather than NaN, -inf or a padded step.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from seqjax.layers.masking import check_sequence_inputs, length_mask, masked_softmax
from seqjax.suggest import names_unknown_options


def last_valid(x: jax.Array, lengths: jax.Array) -> jax.Array:
    """x[b, lengths[b] - 1]: (B, T, D) -> (B, D)."""
    check_sequence_inputs(x, lengths, name="last_valid", min_length=0)  # lengths in [0, T]
    lengths = lengths.astype(jnp.int32)
    idx = jnp.maximum(lengths - 1, 0)[:, None, None]  # (B, 1, 1)
    last = jnp.take_along_axis(x, idx, axis=1)[:, 0]  # (B, D)
    return jnp.where((lengths > 0)[:, None], last, 0)


def masked_mean(x: jax.Array, lengths: jax.Array) -> jax.Array:
    """Mean over valid steps: (B, T, D) -> (B, D)."""
    check_sequence_inputs(x, lengths, name="masked_mean", min_length=0)  # lengths in [0, T]
    mask = length_mask(lengths, x.shape[1])[..., None]  # (B, T, 1)
    total = jnp.sum(jnp.where(mask, x, 0), axis=1)  # (B, D)
    return total / jnp.maximum(lengths, 1).astype(x.dtype)[:, None]


def masked_max(x: jax.Array, lengths: jax.Array) -> jax.Array:
    """Max over valid steps: (B, T, D) -> (B, D).

    Taken at its argmax, not by `jnp.max`: JAX differentiates a max by comparing the
    operand with the result for equality, and where XLA computes the operand twice (in
    two fusions, with other rounding) no step equals the max and the derivative divides
    by a count of zero. Seen as an inf tangent / NaN loss of the hybrid model's
    `jax.jvp` under jax 0.12 with LLVM at level 0; a gather's derivative has no such
    test. A tie sends the whole gradient to the first step, as torch's `max(dim)` does.
    """
    check_sequence_inputs(x, lengths, name="masked_max", min_length=0)  # lengths in [0, T]
    mask = length_mask(lengths, x.shape[1])[..., None]  # (B, T, 1)
    step = jnp.argmax(jnp.where(mask, x, -jnp.inf), axis=1, keepdims=True)  # (B, 1, D)
    top = jnp.take_along_axis(x, step, axis=1)[:, 0]  # (B, D)
    return jnp.where((lengths > 0)[:, None], top, 0)


@names_unknown_options
class AttentionPool(nn.Module):
    """Additive attention pooling (tanh MLP score per step, masked softmax over time).

    Returns the pooled vector (B, D) and the weights (B, T), which sum to 1 over each
    sequence's valid steps and are 0 past its length.
    """

    hidden: int = 64

    @nn.compact
    def __call__(self, x: jax.Array, lengths: jax.Array) -> tuple[jax.Array, jax.Array]:
        check_sequence_inputs(x, lengths, name=type(self).__name__, min_length=0)
        mask = length_mask(lengths, x.shape[1])  # (B, T)
        x = jnp.where(mask[..., None], x, 0)  # a weight of 0 times NaN padding is still NaN
        scores = nn.Dense(1, name="score")(jnp.tanh(nn.Dense(self.hidden, name="proj")(x)))
        weights = masked_softmax(scores[..., 0], mask)  # (B, T)
        pooled = jnp.einsum("bt,btd->bd", weights, x)  # (B, D)
        return pooled, weights

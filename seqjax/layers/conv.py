"""Masked multi-scale temporal convolutions and sinusoidal positional encodings.

Padding is zeroed before each convolution and after it, so a step near a sequence's end
sees zeros beyond it however much padding follows: the result never depends on padding.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from seqjax.layers.masking import check_sequence_inputs, length_mask
from seqjax.suggest import names_unknown_options


def sinusoidal_encoding(max_len: int, dim: int) -> jax.Array:
    """(T, D) sin/cos positional encoding of "Attention is all you need".

    A known length gets a float64 table rounded once to float32; a symbolic one (`jax.export`
    with shape polymorphism) is computed in float32 inside the program, whose rounded angles
    put it within 3.5e-6 of the table at 64 steps and 3e-5 at 500 (D = 128)."""
    rates = np.exp(-np.log(10000.0) * (np.arange(0, dim, 2) / dim))[None, :]  # (1, ceil(D/2))
    if not isinstance(max_len, int):
        angles = jnp.arange(max_len, dtype=jnp.float32)[:, None] * rates.astype(np.float32)
        enc = jnp.stack([jnp.sin(angles), jnp.cos(angles)], axis=-1)  # (T, ceil(D/2), 2)
        return enc.reshape(max_len, -1)[:, :dim]  # sin, cos interleaved
    pos = np.arange(max_len)[:, None]
    enc = np.zeros((max_len, dim), np.float32)
    enc[:, 0::2] = np.sin(pos * rates)
    enc[:, 1::2] = np.cos(pos * rates[:, : dim // 2])
    return jnp.asarray(enc)


@names_unknown_options
class MultiScaleConv(nn.Module):
    """Parallel 1-D convolutions with different kernel sizes, summed, then GELU.

    (B, T, D) -> (B, T, features), zero past each length.
    """

    features: int
    kernel_sizes: tuple[int, ...] = (3, 5, 7)

    @nn.compact
    def __call__(self, x: jax.Array, lengths: jax.Array) -> jax.Array:
        check_sequence_inputs(x, lengths, name=type(self).__name__, min_length=0)
        mask = length_mask(lengths, x.shape[1])[..., None]  # (B, T, 1)
        x = jnp.where(mask, x, 0)
        out = sum(
            nn.Conv(self.features, (k,), padding="SAME", name=f"conv_k{k}")(x)
            for k in self.kernel_sizes
        )  # (B, T, features)
        return jnp.where(mask, nn.gelu(out), 0)

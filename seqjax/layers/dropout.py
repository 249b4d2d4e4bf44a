"""Dropout whose mask takes the input's sharding.

Why not `flax.linen.Dropout` itself: on a mesh with explicit axes (`jax.make_mesh`'s
default) it draws its mask without a sharding, and selecting a batch-split input with it
fails to trace ("select `which` must be scalar or have the same sharding as cases"); Flax
fixed that in `nnx.Dropout` only (google/flax#5209). Everywhere else this is Linen's
Dropout: the same key draws the same mask, so every value is the same.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
from flax.linen.module import merge_param
from jax import lax

from seqjax.layers.explicit_sharding import typed_sharding


class Dropout(nn.Dropout):
    """`flax.linen.Dropout` (same fields, same call), its mask drawn with the input's
    sharding where the input's type has one. `broadcast_dims` must not name a split axis:
    a mask of size 1 there cannot be split."""

    @nn.compact
    def __call__(self, inputs, deterministic: bool | None = None, rng=None):
        deterministic = merge_param("deterministic", self.deterministic, deterministic)
        if self.rate == 0.0 or deterministic:
            return inputs
        if self.rate == 1.0:  # no division by a keep probability of 0
            return jnp.zeros_like(inputs)
        keep_prob = 1.0 - self.rate
        if rng is None:
            rng = self.make_rng(self.rng_collection)
        shape = list(inputs.shape)
        for dim in self.broadcast_dims:
            shape[dim] = 1
        sharding = typed_sharding(inputs)  # None on one device and on an Auto mesh
        mask = jax.random.bernoulli(rng, p=keep_prob, shape=shape, out_sharding=sharding)
        mask = jnp.broadcast_to(mask, inputs.shape)
        return lax.select(mask, inputs / keep_prob, jnp.zeros_like(inputs))

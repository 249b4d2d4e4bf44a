"""Multi-head attention pooling: learned per-head queries attend over valid time steps."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from seqjax.layers.masking import check_sequence_inputs, length_mask, masked_softmax
from seqjax.suggest import names_unknown_options


@names_unknown_options
class MultiHeadAttentionPool(nn.Module):
    """(B, T, D) -> pooled (B, D) and weights (B, heads, T).

    Each head has a learned query; keys and values are projections of the sequence. Padded
    steps get weight exactly 0 and each head's weights sum to 1 over the valid steps.
    """

    num_heads: int = 4

    @nn.compact
    def __call__(self, x: jax.Array, lengths: jax.Array) -> tuple[jax.Array, jax.Array]:
        check_sequence_inputs(x, lengths, name=type(self).__name__, min_length=0)
        batch, max_len, dim = x.shape
        if dim % self.num_heads:
            raise ValueError(f"feature size {dim} is not divisible by {self.num_heads} heads")
        head_dim = dim // self.num_heads
        valid = length_mask(lengths, max_len)  # (B, T)
        x = jnp.where(valid[..., None], x, 0)  # a weight of 0 times NaN padding is still NaN
        keys = nn.DenseGeneral((self.num_heads, head_dim), name="key")(x)  # (B, T, N, Dh)
        values = nn.DenseGeneral((self.num_heads, head_dim), name="value")(x)  # (B, T, N, Dh)
        query = self.param(
            "query", nn.initializers.normal(0.02), (self.num_heads, head_dim)
        )  # (N, Dh)
        scores = jnp.einsum("btnd,nd->bnt", keys, query) / jnp.sqrt(head_dim)  # (B, N, T)
        weights = masked_softmax(scores, valid[:, None, :])  # keys (B, 1, T) -> (B, N, T)
        pooled = jnp.einsum("bnt,btnd->bnd", weights, values).reshape(batch, dim)  # (B, D)
        return nn.Dense(dim, name="out")(pooled), weights


@names_unknown_options
class MaskedSelfAttention(nn.Module):
    """Multi-head self-attention over valid steps. (B, T, D) -> (B, T, D), weights
    (B, heads, T, T); keys past a length get weight 0 and outputs past it are zeroed."""

    num_heads: int = 8

    @nn.compact
    def __call__(self, x: jax.Array, lengths: jax.Array) -> tuple[jax.Array, jax.Array]:
        check_sequence_inputs(x, lengths, name=type(self).__name__, min_length=0)
        batch, max_len, dim = x.shape
        if dim % self.num_heads:
            raise ValueError(f"feature size {dim} is not divisible by {self.num_heads} heads")
        head_dim = dim // self.num_heads
        valid = length_mask(lengths, max_len)  # (B, T)
        x = jnp.where(valid[..., None], x, 0)  # a weight of 0 times NaN padding is still NaN
        qkv = nn.DenseGeneral((3, self.num_heads, head_dim), name="qkv")(x)  # (B, T, 3, N, Dh)
        q, k, v = qkv[:, :, 0], qkv[:, :, 1], qkv[:, :, 2]  # each (B, T, N, Dh)
        scores = jnp.einsum("bqnd,bknd->bnqk", q, k) / jnp.sqrt(head_dim)  # (B, N, T, T)
        weights = masked_softmax(scores, valid[:, None, None, :])  # keys (B, 1, 1, T)
        out = jnp.einsum("bnqk,bknd->bqnd", weights, v).reshape(batch, max_len, dim)
        out = nn.Dense(dim, name="out")(out)  # (B, T, D)
        queries = valid[:, None, :, None]  # (B, 1, T, 1)
        return jnp.where(valid[..., None], out, 0), jnp.where(queries, weights, 0.0)

"""Losses as pure functions of (outputs, batch), weighted so padding examples count zero."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

from seqjax.data.batch import Batch


def weighted_mean(values: jax.Array, weights: jax.Array) -> jax.Array:
    """Mean of values (B,) over examples with weight > 0; 0 when every weight is 0."""
    return jnp.sum(values * weights) / jnp.maximum(jnp.sum(weights), 1e-12)


def binary_cross_entropy(logits: jax.Array, batch: Batch) -> jax.Array:
    """BCE on logits (B,) against 0/1 targets (B,): the stable form of sigmoid + BCELoss."""
    per_example = optax.sigmoid_binary_cross_entropy(logits, batch.targets.astype(logits.dtype))
    return weighted_mean(per_example, batch.weights)


LOSSES = {"binary_cross_entropy": binary_cross_entropy}


def get_loss(name: str):
    if name not in LOSSES:
        raise ValueError(f"unknown loss {name!r}; known losses: {sorted(LOSSES)}")
    return LOSSES[name]

"""Losses as pure functions of (outputs, batch), weighted so padding examples count zero."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.typing import ArrayLike

from seqjax.data.batch import Batch


def weighted_mean(values: ArrayLike, weights: ArrayLike) -> jax.Array:
    """Mean of values (B,) weighted by `weights` (B,): 0 for a padding example, else 1 or
    the data's sample weight (`data.sample_weights`); 0 when every weight is 0."""
    return jnp.sum(values * weights) / jnp.maximum(jnp.sum(weights), 1e-12)


def binary_cross_entropy(
    logits: jax.Array,
    batch: Batch,
    pos_weight: float = 1.0,
    class_weights: tuple[float, float] | None = None,
) -> jax.Array:
    """BCE on logits (B,) against 0/1 targets (B,): the stable form of sigmoid + BCELoss.

    `pos_weight` is PyTorch's `BCEWithLogitsLoss(pos_weight=...)`: each positive's term
    counts that many times, and the mean is still over examples. Why: with rare positives
    (defects in a few percent of castings) the plain mean is met by predicting "no defect";
    n_negative / n_positive weighs the two classes alike. `class_weights` (w_0, w_1)
    weighs negatives too, as `cross_entropy`'s does (pos_weight W is (1, W))."""
    targets = batch.targets.astype(logits.dtype)
    if class_weights is not None and pos_weight != 1.0:
        raise ValueError("binary_cross_entropy: give pos_weight or class_weights, not both")
    negative_weight, pos_weight = class_weights or (1.0, pos_weight)
    if (negative_weight, pos_weight) == (1.0, 1.0):  # unweighted, bit for bit as before
        per_example = optax.sigmoid_binary_cross_entropy(logits, targets)
    else:
        positive = pos_weight * targets * jax.nn.log_sigmoid(logits)
        negative = negative_weight * (1.0 - targets) * jax.nn.log_sigmoid(-logits)
        per_example = -(positive + negative)
    return weighted_mean(per_example, batch.weights)


def mean_squared_error(outputs: jax.Array, batch: Batch) -> jax.Array:
    """Squared error averaged over each example's outputs ((B,) or (B, O, ...)), weighted
    over examples. The shapes must match: (B, 1) against (B,) would broadcast to (B, B),
    and a mean over every axis of (B,) would count the zero-weight padding examples."""
    if outputs.shape != batch.targets.shape:
        raise ValueError(
            f"mean_squared_error: outputs {outputs.shape} and targets "
            f"{batch.targets.shape} differ in shape"
        )
    err = (outputs - batch.targets) ** 2
    per_example = jnp.mean(err.reshape(err.shape[0], -1), axis=1)  # (B,)
    return weighted_mean(per_example, batch.weights)


def cross_entropy(
    logits: jax.Array, batch: Batch, class_weights: tuple[float, ...] | None = None
) -> jax.Array:
    """Softmax cross-entropy of logits (B, K) against integer labels (B,).

    `class_weights` (K,) multiplies each example's term by its class's weight, and the mean
    stays over examples: PyTorch's `CrossEntropyLoss(weight=w, reduction="none")` then
    `.mean()`, not its default reduction, which divides by the batch's sum of weights. Why:
    a mean over examples is a sum of per-example terms, so micro-batches, data-parallel
    shards and an epoch's batches add up to the whole batch's loss exactly, and "balanced"
    weights (mean 1 over the training split) keep the loss's scale and the learning rate's
    meaning."""
    labels = batch.targets.astype(jnp.int32)
    per_example = optax.softmax_cross_entropy_with_integer_labels(logits, labels)
    if class_weights is not None:
        per_example = per_example * jnp.asarray(class_weights, per_example.dtype)[labels]
    return weighted_mean(per_example, batch.weights)


# Each maps (model outputs: an array, or a dict of them, and the batch) to a scalar.
LOSSES: dict[str, Callable[[Any, Batch], jax.Array]] = {
    "binary_cross_entropy": binary_cross_entropy,
    "cross_entropy": cross_entropy,
    "mse": mean_squared_error,
}


def get_loss(name: str):
    if name not in LOSSES:
        raise ValueError(f"unknown loss {name!r}; known losses: {sorted(LOSSES)}")
    return LOSSES[name]


FLAT = 0.1  # |trend| below this is "flat"


def trend_class(trend: jax.Array | np.ndarray) -> jax.Array:
    """0 = down, 1 = flat, 2 = up from trend values in [-1, 1]."""
    return jnp.where(trend < -FLAT, 0, jnp.where(trend > FLAT, 2, 1))


def _trend_terms(outputs: dict, batch: Batch) -> jax.Array:
    """Per-example multi-task loss (B,): smooth L1 on the score + cross-entropy on the
    direction, summed over horizons. targets (B, horizons, 2) = [trend, volatility]."""
    trend = batch.targets[..., 0]  # (B, Hz)
    reg = optax.huber_loss(outputs["score"], trend, delta=1.0)  # smooth L1 = Huber(1)
    cls = optax.softmax_cross_entropy_with_integer_labels(outputs["logits"], trend_class(trend))
    return jnp.sum(reg + 0.5 * cls, axis=1)  # (B,)


def trend_multitask(outputs: dict, batch: Batch) -> jax.Array:
    """Weighted by the batch weights, which is also the per-sample weighted variant."""
    return weighted_mean(_trend_terms(outputs, batch), batch.weights)


def trend_volatility_aware(outputs: dict, batch: Batch) -> jax.Array:
    """Down-weights examples from volatile periods: weight / volatility (30-day horizon's),
    renormalised to mean 1 over the batch so the learning rate keeps its meaning."""
    vol = batch.targets[:, -1, 1]  # (B,)
    inv = batch.weights / jnp.maximum(vol, 1e-6)
    inv = inv * jnp.sum(batch.weights) / jnp.maximum(jnp.sum(inv), 1e-12)
    return weighted_mean(_trend_terms(outputs, batch), inv)


LOSSES.update(
    {"trend_multitask": trend_multitask, "trend_volatility_aware": trend_volatility_aware}
)

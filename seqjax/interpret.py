"""Model interpretation: feature-ablation importance."""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from seqjax.layers.masking import length_mask


def feature_ablation_importance(
    predict: Callable[[np.ndarray, np.ndarray], jax.Array | np.ndarray],
    inputs: np.ndarray,
    lengths: np.ndarray,
    score: Callable[[np.ndarray], float],
) -> np.ndarray:
    """Importance of each input feature (F,): how much `score` (e.g. a loss against the
    targets; higher = worse) rises when that feature is replaced by its mean over all valid
    steps, which removes its information without moving the input off its usual range.

    predict(inputs, lengths) -> outputs; score(outputs) -> float.
    """
    inputs = np.asarray(inputs, np.float32)
    valid = np.asarray(length_mask(jnp.asarray(lengths), inputs.shape[1]))  # (N, T)
    base = score(np.asarray(predict(inputs, lengths)))
    means = inputs[valid].mean(axis=0)  # (F,)
    out = np.zeros(inputs.shape[-1])
    for f in range(inputs.shape[-1]):
        ablated = inputs.copy()
        ablated[..., f] = np.where(valid, means[f], 0.0)
        out[f] = score(np.asarray(predict(ablated, lengths))) - base
    return out

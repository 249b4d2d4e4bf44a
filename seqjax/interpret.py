"""Model interpretation: feature-ablation importance."""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from seqjax.layers.masking import length_mask


def ablation_importance(
    score_of: Callable[[np.ndarray], float], inputs: np.ndarray, lengths: np.ndarray
) -> tuple[float, np.ndarray]:
    """`score_of(inputs)` (higher = worse, e.g. a loss) and each input feature's importance
    (F,): how much that score rises when the feature is replaced by its mean over all valid
    steps, which removes its information without moving the input off its usual range."""
    inputs = np.asarray(inputs, np.float32)
    valid = np.asarray(length_mask(jnp.asarray(lengths), inputs.shape[1]))  # (N, T)
    base = float(score_of(inputs))
    means = inputs[valid].mean(axis=0)  # (F,)
    out = np.zeros(inputs.shape[-1])
    for f in range(inputs.shape[-1]):
        ablated = inputs.copy()
        ablated[..., f] = np.where(valid, means[f], 0.0)
        out[f] = float(score_of(ablated)) - base
    return base, out


def feature_ablation_importance(
    predict: Callable[[np.ndarray, np.ndarray], jax.Array | np.ndarray],
    inputs: np.ndarray,
    lengths: np.ndarray,
    score: Callable[[np.ndarray], float],
) -> np.ndarray:
    """`ablation_importance` of score(predict(inputs, lengths)): predict -> outputs,
    score(outputs) -> float (e.g. a loss against the targets)."""
    return ablation_importance(lambda x: score(np.asarray(predict(x, lengths))), inputs, lengths)[1]

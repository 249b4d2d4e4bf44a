"""`Batch`: the one type that carries data from the loader through the train step.

Every batch has inputs (B, T, F), lengths (B,), targets (B, ...) and weights (B,). A weight
of 0 marks a padding example (added so a short last batch keeps the compiled shape and
divides over devices); losses and metrics are weighted, so such examples change nothing.
Real examples weigh 1, or the weight the data gave them (`data.sample_weights`): losses are
means weighted by it.
"""

from __future__ import annotations

import flax.struct
import jax
import numpy as np


@flax.struct.dataclass
class Batch:
    # Host (numpy) arrays from `make_batch`, device arrays once placed (`shard_batch`).
    inputs: jax.Array | np.ndarray  # (B, T, F) float
    lengths: jax.Array | np.ndarray  # (B,) int32, in [1, T]
    targets: jax.Array | np.ndarray  # (B, ...) labels or regression targets
    weights: jax.Array | np.ndarray  # (B,) float32, 0 for padding examples, else 1 or the data's

    @property
    def size(self) -> int:
        return int(self.inputs.shape[0])


def make_batch(
    inputs: np.ndarray,
    lengths: np.ndarray,
    targets: np.ndarray,
    weights: np.ndarray | None = None,
) -> Batch:
    """Validate host arrays and wrap them as a Batch; errors name the offending field."""
    inputs = np.asarray(inputs)
    lengths = np.asarray(lengths)
    targets = np.asarray(targets)
    if inputs.ndim != 3:
        raise ValueError(f"Batch: inputs must be (batch, time, features); got shape {inputs.shape}")
    if not np.issubdtype(inputs.dtype, np.floating):
        raise TypeError(f"Batch: inputs must be floating; got {inputs.dtype}")
    batch, max_len, _ = inputs.shape
    if lengths.shape != (batch,):
        raise ValueError(f"Batch: lengths must have shape ({batch},); got {lengths.shape}")
    if not np.issubdtype(lengths.dtype, np.integer):
        raise TypeError(f"Batch: lengths must be integers; got {lengths.dtype}")
    if batch and (lengths.min() < 1 or lengths.max() > max_len):
        raise ValueError(
            f"Batch: lengths must lie in [1, {max_len}]; got min {lengths.min()}, "
            f"max {lengths.max()}"
        )
    if targets.shape[:1] != (batch,):
        raise ValueError(
            f"Batch: targets must start with the batch size {batch}; got {targets.shape}"
        )
    if weights is None:
        weights = np.ones((batch,), np.float32)
    weights = np.asarray(weights, np.float32)
    if weights.shape != (batch,):
        raise ValueError(f"Batch: weights must have shape ({batch},); got {weights.shape}")
    return Batch(inputs=inputs, lengths=lengths.astype(np.int32), targets=targets, weights=weights)

"""Length masks and the input checks every sequence layer runs at its boundary.

Masks are derived from `lengths` here and nowhere else, so a model never re-implements
padding logic. Checks run at trace time (shapes, dtypes) and, when `lengths` is a concrete
array rather than a tracer, also on values; under `jit` the value checks belong to the host
side that builds the batch (`seqjax.data.Batch`).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np


def length_mask(lengths: jax.Array, max_len: int, *, time_major: bool = False) -> jax.Array:
    """Boolean validity mask: True on steps t < lengths[b].

    Returns (B, T), or (T, B) when `time_major`.
    """
    lengths = jnp.asarray(lengths).astype(jnp.int32)
    steps = jnp.arange(max_len, dtype=jnp.int32)
    if time_major:
        return steps[:, None] < lengths[None, :]  # (T, B)
    return steps[None, :] < lengths[:, None]  # (B, T)


def is_concrete(x) -> bool:
    """True when `x` holds values we can inspect (not an abstract tracer under jit/grad)."""
    return not isinstance(x, jax.core.Tracer)


def check_sequence_inputs(
    x: jax.Array,
    lengths: jax.Array | None,
    *,
    feature_size: int | None = None,
    name: str = "LSTM",
    min_length: int = 1,
) -> None:
    """Raise ValueError/TypeError naming the problem before any compute happens.

    x: (B, T, F) floating; lengths: (B,) integer with values in [min_length, T]. A layer
    that carries a state (the LSTM) takes `min_length=0`: a stream with no steps in this
    call keeps its state; one that pools over the steps needs at least one.
    """
    if not hasattr(x, "dtype"):  # a list: JAX takes arrays only, and so do the layers
        raise TypeError(
            f"{name}: inputs must be an array (B, T, F); got {type(x).__name__} (a list of "
            "sequences of their own lengths pads with seqjax.data.pad_sequences, which "
            "returns the lengths too)"
        )
    if getattr(x, "ndim", None) != 3:
        raise ValueError(
            f"{name}: inputs must have rank 3 (batch, time, features); got shape "
            f"{tuple(getattr(x, 'shape', ()))}"
        )
    if not jnp.issubdtype(x.dtype, jnp.floating):
        raise TypeError(f"{name}: inputs must be a floating dtype; got {x.dtype}")
    batch, max_len, features = x.shape
    if feature_size is not None and features != feature_size:
        raise ValueError(
            f"{name}: inputs have {features} features but the parameters were built for "
            f"{feature_size}"
        )
    if lengths is None:
        raise ValueError(f"{name}: lengths are required, shape ({batch},) integer")
    if not hasattr(lengths, "dtype"):
        raise TypeError(
            f"{name}: lengths must be an array of shape ({batch},) integer; got "
            f"{type(lengths).__name__}"
        )
    if getattr(lengths, "shape", None) != (batch,):
        raise ValueError(
            f"{name}: lengths must have shape ({batch},) to match the batch; got "
            f"{tuple(getattr(lengths, 'shape', ()))}"
        )
    if not jnp.issubdtype(lengths.dtype, jnp.integer):
        raise TypeError(f"{name}: lengths must be an integer dtype; got {lengths.dtype}")
    if is_concrete(lengths) and batch > 0:
        values = np.asarray(lengths)
        low, high = int(values.min()), int(values.max())
        if low < min_length or high > max_len:
            raise ValueError(
                f"{name}: lengths must lie in [{min_length}, {max_len}] (the padded length T); got "
                f"min {low}, max {high}"
            )


def masked_softmax(scores: jax.Array, mask: jax.Array) -> jax.Array:
    """Softmax over the last axis with masked-out entries weighted exactly 0.

    `mask` is boolean and broadcasts against `scores` (e.g. (B, 1, T) keys for (B, N, T)).
    """
    return jnp.where(mask, jax.nn.softmax(jnp.where(mask, scores, -jnp.inf), axis=-1), 0.0)

"""Naming forward-mode autodiff's failure inside the LSTM, with the option that avoids it.

Why: the scan's hand-written backward pass (`backward="custom"`, the default), cuDNN's
kernel (`jax.experimental.rnn`) and the Pallas kernel are each a `jax.custom_vjp`, which
has no forward mode. So `jax.jvp`, `jax.jacfwd`, `jax.linearize` and `jax.hessian` through
the layer stop with JAX's "can't apply forward-mode autodiff (jvp) to a custom_vjp
function", which names neither the layer nor the way out: `backward="autodiff"`, the scan
that JAX differentiates itself, in both modes (and which `backend="auto"` then picks).
`jax.linearize` traces the layer without the error and meets it only when its linear
function is called, outside the layer: that one keeps JAX's words.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

FIX = (
    "LSTM: forward-mode autodiff (jax.jvp, jax.jacfwd, jax.linearize, jax.hessian) cannot "
    "pass its hand-written backward pass (backward='custom', the default; the cuDNN and "
    "Pallas kernels too), a jax.custom_vjp; build it with LSTM(..., backward='autodiff') "
    "(backend 'auto' or 'scan', no remat_chunk; a seed model: model.lstm_backward="
    "autodiff), which JAX differentiates in both modes"
)


@contextlib.contextmanager
def forward_mode_named() -> Iterator[None]:
    """Re-raise JAX's forward-mode TypeError from a custom VJP inside the block as `FIX`."""
    try:
        yield
    except TypeError as error:
        if "forward-mode" not in str(error) or "custom_vjp" not in str(error):
            raise
        raise TypeError(FIX) from error

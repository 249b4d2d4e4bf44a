"""The names `LSTM`'s options may take, and their checks, which model configs share.

Why a module of their own: a model config (`seqjax.models.lstm_options`) checks its LSTM
keys when the YAML file loads, with the layer's own words, long before a layer is built;
both read the choices from here.
"""

from __future__ import annotations

import contextlib

import jax
from jax import lax

BACKENDS = ("auto", "scan", "cudnn", "pallas")
# `jax.default_matmul_precision`'s names: its levels, then the dot algorithms.
PRECISION_LEVELS = ("default", "high", "highest", "bfloat16", "tensorfloat32", "float32")
MATMUL_PRECISIONS = PRECISION_LEVELS + tuple(
    preset.name for preset in lax.DotAlgorithmPreset if preset.name != "DEFAULT"
)


def check_backend(backend: str) -> None:
    """Raise, naming the choices, unless `backend` is one of `BACKENDS`. Model configs call
    it too, so a typo in a YAML file fails when the config loads, not at the first step."""
    if backend not in BACKENDS:
        choices = ", ".join(repr(b) for b in BACKENDS)
        raise ValueError(f"LSTM: backend must be one of {choices}; got {backend!r}")


def check_precision(precision: str | None, name: str = "LSTM") -> None:
    """Raise, naming the choices, unless `precision` is None or a name in
    `MATMUL_PRECISIONS`; model configs call it too, so a YAML typo fails at load."""
    if precision is not None and precision not in MATMUL_PRECISIONS:
        levels = ", ".join(repr(p) for p in PRECISION_LEVELS)
        raise ValueError(
            f"{name}: precision must be None, one of {levels}, or a jax.lax.DotAlgorithmPreset "
            f"name; got {precision!r}"
        )


COMPUTE_DTYPES = ("float32", "bfloat16")  # what a model config's `lstm_dtype` may name


def check_compute_dtype(name: str) -> None:
    """Raise, naming the choices, unless `name` is in `COMPUTE_DTYPES` (model configs'
    `lstm_dtype`: the LSTM's matmul dtype; parameters and the carry stay float32)."""
    if name not in COMPUTE_DTYPES:
        raise ValueError(f"LSTM: lstm_dtype must be one of {COMPUTE_DTYPES}; got {name!r}")


BACKWARDS = ("custom", "autodiff")  # `LSTM(backward=...)`, a model config's `lstm_backward`


def check_backward(backward: str, key: str = "backward") -> None:
    """Raise, naming the option `key` and the choices, unless `backward` is in `BACKWARDS`."""
    if backward not in BACKWARDS:
        raise ValueError(f"LSTM: {key} must be 'custom' or 'autodiff'; got {backward!r}")


def matmul_precision(precision: str | None) -> contextlib.AbstractContextManager:
    """The context in which `LSTM` traces its dots. The hand-written backward pass, which
    JAX traces later, takes it too (`recurrence.custom_vjp_in_precision`)."""
    if precision is None:
        return contextlib.nullcontext()
    return jax.default_matmul_precision(precision)

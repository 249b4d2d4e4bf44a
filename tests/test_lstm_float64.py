"""The LSTM in float64 (under `jax.enable_x64`): values equal the NumPy float64 reference
to 1e-12, and every hand-written backward pass agrees with finite differences to 1e-8.

Why float64: in float32 a central difference carries rounding noise of ~1e-7 / eps, so a
float32 gradient check can only catch gross errors; in float64 it checks each custom VJP
(default, remat, projection chunks, length groups, fused directions) to eight digits,
initial state and length-0 rows included. The flag is set per test, so it does not leak
into other tests in the same worker.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from seqjax.interop import lstm_params_from_torch
from seqjax.layers import LSTM
from tests.lstm_reference import numpy_lstm, random_state_dict

B, T, F, H, LAYERS = 4, 7, 3, 5, 2
LENGTHS = np.array([7, 3, 0, 5], np.int32)  # full, partial, empty (state passes), partial


@pytest.fixture(autouse=True)
def x64():
    with jax.enable_x64(True):
        yield


def _problem(seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((B, T, F))  # (B, T, F) float64
    sd = random_state_dict(rng, F, H, num_layers=LAYERS, bidirectional=True)
    sd = {k: v.astype(np.float64) for k, v in sd.items()}
    shape = (LAYERS * 2, B, H)
    h0, c0 = rng.standard_normal((2, *shape))  # each (L*D, B, H)
    return x, sd, h0, c0


def _layer(**options):
    return LSTM(
        H, LAYERS, bidirectional=True, dtype=jnp.float64, param_dtype=jnp.float64, **options
    )


def test_float64_values_equal_the_float64_reference():
    x, sd, h0, c0 = _problem()
    v = lstm_params_from_torch(sd, num_layers=LAYERS, bidirectional=True, dtype=np.float64)
    out, (h, c) = _layer().apply(v, jnp.asarray(x), jnp.asarray(LENGTHS), initial_state=(h0, c0))
    assert out.dtype == h.dtype == c.dtype == jnp.float64
    ref, (ref_h, ref_c) = numpy_lstm(
        x, LENGTHS, sd, num_layers=LAYERS, bidirectional=True, initial_state=(h0, c0)
    )
    np.testing.assert_allclose(np.asarray(out), ref, atol=1e-12)
    np.testing.assert_allclose(np.asarray(h), ref_h, atol=1e-12)
    np.testing.assert_allclose(np.asarray(c), ref_c, atol=1e-12)


VARIANTS = {
    "default": {},
    "remat_chunk": {"remat_chunk": 3},
    "projection_chunks": {"projection_chunk": 3},
    "length_groups": {"length_groups": 3},
    "fused_directions": {"fused_directions": True},
    "autodiff": {"backward": "autodiff"},
}


@pytest.mark.parametrize("variant", VARIANTS, ids=list(VARIANTS))
def test_float64_gradients_equal_finite_differences(variant):
    """Reverse mode against central differences, through inputs, weights and initial
    state, with random cotangents on the outputs and both final states."""
    x, sd, h0, c0 = _problem(1)
    layer = _layer(**VARIANTS[variant])
    v = lstm_params_from_torch(sd, num_layers=LAYERS, bidirectional=True, dtype=np.float64)
    rng = np.random.default_rng(2)
    dy = rng.standard_normal((B, T, 2 * H))
    dh, dc = rng.standard_normal((2, LAYERS * 2, B, H))

    @jax.jit
    def loss(x, v, h0, c0):
        out, (h, c) = layer.apply(v, x, jnp.asarray(LENGTHS), initial_state=(h0, c0))
        return (out * dy).sum() + (h * dh).sum() + (c * dc).sum()

    check_grads(loss, (x, v, h0, c0), order=1, modes=["rev"], eps=1e-6, atol=1e-8, rtol=1e-8)


def test_float64_second_order_gradients_equal_finite_differences():
    """Grad of grad through the hand-written backward pass (a Hessian-vector product's
    reverse-over-reverse form), against central differences of the gradient."""
    x, sd, h0, c0 = _problem(3)
    layer = _layer()
    v = lstm_params_from_torch(sd, num_layers=LAYERS, bidirectional=True, dtype=np.float64)

    @jax.jit
    def loss(x, v):
        out, (h, _) = layer.apply(v, x, jnp.asarray(LENGTHS))
        return (out**2).sum() + jnp.tanh(h).sum()

    check_grads(loss, (x, v), order=2, modes=["rev"], eps=1e-5, atol=1e-6, rtol=1e-6)

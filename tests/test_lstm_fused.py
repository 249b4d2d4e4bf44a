"""`fused_directions=True` (both directions as one vmapped scan, the backward one over
time-flipped input) equals two separate scans in values, final states and gradients, with
every option that shapes the loop and garbage past each length."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from seqjax.layers import LSTM

OPTIONS = {
    "default": {},
    "in_step_projection": {"projection_chunk": 1},
    "chunked_projection": {"projection_chunk": 3},
    "remat": {"remat_chunk": 4},
    "autodiff": {"backward": "autodiff"},
}


def _batch():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((4, 11, 3)).astype(np.float32)  # (B, T, F)
    lengths = np.array([11, 1, 6, 9], np.int32)
    x[np.arange(11) >= lengths[:, None]] = 1e6  # garbage the padding must never reach
    state = rng.standard_normal((2, 2 * 2, 4, 5)).astype(np.float32)  # h0, c0 (L*D, B, H)
    return jnp.asarray(x), jnp.asarray(lengths), (jnp.asarray(state[0]), jnp.asarray(state[1]))


@pytest.mark.parametrize("option", sorted(OPTIONS))
def test_fused_directions_equal_separate_scans_with_gradients(option):
    x, lengths, state = _batch()
    kwargs = dict(hidden_size=5, num_layers=2, bidirectional=True, **OPTIONS[option])
    separate, fused = LSTM(**kwargs), LSTM(**kwargs, fused_directions=True)
    variables = jax.jit(separate.init)(jax.random.key(1), x, lengths)

    def loss(model):
        def f(v, x, state):
            out, (h, c) = model.apply(v, x, lengths, initial_state=state)
            return jnp.sum(out**2) + jnp.sum(h * c), (out, h, c)

        return jax.jit(jax.value_and_grad(f, argnums=(0, 1, 2), has_aux=True))

    (_, values), grads = loss(separate)(variables, x, state)
    (_, fused_values), fused_grads = loss(fused)(variables, x, state)
    chex.assert_trees_all_close(fused_values, values, rtol=1e-5, atol=1e-5)
    chex.assert_trees_all_close(fused_grads, grads, rtol=1e-4, atol=1e-5)
    assert float(jnp.abs(values[0][1, 1:]).max()) == 0.0  # zero past the length of 1
    assert float(jnp.abs(grads[1][1, 1:]).max()) == 0.0  # no gradient into the garbage

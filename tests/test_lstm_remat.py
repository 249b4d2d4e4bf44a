"""The chunked recurrences (`remat_chunk`, `projection_chunk`) change memory and speed,
never a value or a gradient: both against the whole-sequence custom-VJP path, which
tests/test_lstm_parity.py holds to a NumPy reference and torch.nn.LSTM."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from seqjax.layers import LSTM

RNG = np.random.default_rng(0)
X = jnp.asarray(RNG.standard_normal((3, 37, 4)).astype(np.float32))  # (B, T, F)
LENGTHS = jnp.array([37, 20, 5])


def _loss(model, variables, x, state):
    y, (h, c) = model.apply(variables, x, LENGTHS, initial_state=state)
    return jnp.sum(y**2) + jnp.sum(h * c) + jnp.sum(jnp.sin(c))


# 6 does not divide T = 37; 64 exceeds it; None is the default (per layer, under a gradient:
# inside the loop for the narrow first layer, the whole sequence for the second).
@pytest.mark.parametrize(
    ("bidirectional", "option"),
    [
        (False, {"remat_chunk": 64}),
        (True, {"remat_chunk": 6}),
        (True, {"projection_chunk": 6}),
        (True, {"projection_chunk": 1}),
        (False, {"projection_chunk": None}),
    ],
)
def test_values_and_gradients_equal_the_plain_recurrence(bidirectional, option):
    plain = LSTM(8, num_layers=2, bidirectional=bidirectional, projection_chunk=0)
    remat = LSTM(8, num_layers=2, bidirectional=bidirectional, **option)
    variables = jax.jit(plain.init)(jax.random.key(1), X, LENGTHS)
    dirs = 2 if bidirectional else 1
    state = tuple(
        jnp.asarray(RNG.standard_normal((2 * dirs, 3, 8)).astype(np.float32)) for _ in range(2)
    )
    ours = jax.jit(jax.value_and_grad(lambda v, x, s: _loss(remat, v, x, s), argnums=(0, 1, 2)))
    ref = jax.jit(jax.value_and_grad(lambda v, x, s: _loss(plain, v, x, s), argnums=(0, 1, 2)))
    (value, grads), (value_ref, grads_ref) = ours(variables, X, state), ref(variables, X, state)
    np.testing.assert_allclose(float(value), float(value_ref), rtol=1e-6)
    for g, g_ref in zip(jax.tree.leaves(grads), jax.tree.leaves(grads_ref), strict=True):
        np.testing.assert_allclose(np.asarray(g), np.asarray(g_ref), atol=1e-5, rtol=1e-5)
    y, _ = remat.apply(variables, X, LENGTHS)
    assert np.all(np.asarray(y)[2, 5:] == 0.0)  # padding stays exactly zero


def test_long_sequence_step_needs_far_less_memory():
    """XLA's buffer assignment for the gradient: the carry every 50 steps instead of every
    step's gate activations. At T = 2,000 that is several times less temporary memory."""
    x = jnp.ones((4, 2000, 3), jnp.float32)
    lengths = jnp.array([2000, 1500, 700, 30])

    def temp_bytes(chunk):
        model = LSTM(32, bidirectional=True, remat_chunk=chunk)
        variables = jax.jit(model.init)(jax.random.key(0), x[:, :4], jnp.minimum(lengths, 4))
        grad = jax.jit(jax.grad(lambda v: jnp.mean(model.apply(v, x, lengths)[0])))
        return grad.lower(variables).compile().memory_analysis().temp_size_in_bytes

    plain, remat = temp_bytes(0), temp_bytes(50)
    assert remat < plain / 3, (plain, remat)


def test_bad_settings_are_named():
    with pytest.raises(ValueError, match="projection_chunk must be >= 0"):
        LSTM(4, projection_chunk=-2).init(jax.random.key(0), X, LENGTHS)
    with pytest.raises(ValueError, match="remat_chunk must be >= 0"):
        LSTM(4, remat_chunk=-1).init(jax.random.key(0), X, LENGTHS)
    with pytest.raises(ValueError, match="remat_chunk works with backward='custom'"):
        LSTM(4, backward="autodiff", remat_chunk=8).init(jax.random.key(0), X, LENGTHS)

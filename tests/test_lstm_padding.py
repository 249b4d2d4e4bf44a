"""Padding never changes a result: values, final states and gradients."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from seqjax.layers import LSTM


def _setup(bidirectional, fused=False):
    model = LSTM(5, num_layers=2, bidirectional=bidirectional, fused_directions=fused)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 4, 3)).astype(np.float32)
    lengths = np.array([4, 1, 3], np.int32)
    variables = jax.jit(model.init)(jax.random.key(1), jnp.asarray(x), jnp.asarray(lengths))
    return model, variables, x, lengths


def _pad_with_garbage(x, lengths, extra):
    batch, max_len, features = x.shape
    padded = np.full((batch, max_len + extra, features), 1e30, np.float32)
    padded[:, :max_len] = x
    for b, n in enumerate(lengths):
        padded[b, n:] = np.where(np.arange(max_len + extra - n)[:, None] % 2, 1e30, -1e30)
    return padded


@pytest.mark.parametrize("bidirectional,fused", [(False, False), (True, False), (True, True)])
def test_extra_garbage_padding_changes_nothing(bidirectional, fused):
    model, variables, x, lengths = _setup(bidirectional, fused)
    clean = np.where(np.arange(4)[None, :, None] < lengths[:, None, None], x, 0.0)
    out, (h, c) = model.apply(variables, jnp.asarray(clean), jnp.asarray(lengths))
    garbage = _pad_with_garbage(x, lengths, extra=5)
    out_g, (h_g, c_g) = model.apply(variables, jnp.asarray(garbage), jnp.asarray(lengths))
    valid = np.arange(4)[None, :] < lengths[:, None]
    np.testing.assert_allclose(np.asarray(out_g)[:, :4][valid], np.asarray(out)[valid], atol=1e-6)
    np.testing.assert_allclose(np.asarray(h_g), np.asarray(h), atol=1e-6)
    np.testing.assert_allclose(np.asarray(c_g), np.asarray(c), atol=1e-6)
    past = np.arange(9)[None, :] >= lengths[:, None]
    assert np.all(np.asarray(out_g)[past] == 0.0)
    assert np.all(np.isfinite(np.asarray(out_g)))


@pytest.mark.parametrize("bidirectional", [False, True])
def test_gradients_wrt_padded_steps_are_exactly_zero(bidirectional):
    model, variables, x, lengths = _setup(bidirectional)
    garbage = jnp.asarray(_pad_with_garbage(x, lengths, extra=2))

    def loss(params, inputs):
        out, (h, c) = model.apply({"params": params}, inputs, jnp.asarray(lengths))
        return jnp.sum(out**2) + jnp.sum(h) + jnp.sum(c)

    g_params, g_x = jax.grad(loss, argnums=(0, 1))(variables["params"], garbage)
    past = np.arange(6)[None, :] >= lengths[:, None]
    assert np.all(np.asarray(g_x)[past] == 0.0)
    assert np.any(np.asarray(g_x)[~past] != 0.0)
    assert all(np.all(np.isfinite(np.asarray(g))) for g in jax.tree.leaves(g_params))


def test_reverse_direction_starts_at_each_last_valid_step():
    """A length-1 sequence's backward output equals one step from a zero state."""
    model, variables, x, lengths = _setup(True)
    short = LSTM(5, num_layers=2, bidirectional=True)
    out_b1, _ = short.apply(variables, jnp.asarray(x[1:2, :1]), jnp.asarray([1]))
    out, _ = model.apply(variables, jnp.asarray(x), jnp.asarray(lengths))
    np.testing.assert_allclose(np.asarray(out)[1, 0], np.asarray(out_b1)[0, 0], atol=1e-6)

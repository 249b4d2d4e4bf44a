"""The masked building blocks that `seqjax.layers` exports beside the LSTM: whatever lies
past a sequence's length (huge values, NaN, inf) changes neither a result nor a gradient,
and a sequence with no steps pools to zeros with finite gradients."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from seqjax.layers import (
    AttentionPool,
    MaskedSelfAttention,
    MultiHeadAttentionPool,
    MultiScaleConv,
    last_valid,
    masked_max,
    masked_mean,
)

RNG = np.random.default_rng(0)
X = RNG.standard_normal((3, 6, 8)).astype(np.float32)  # (B, T, D)
LENGTHS = np.array([6, 2, 4], np.int32)
VALID = np.arange(9)[None, :] < LENGTHS[:, None]  # (B, T + 3)

MODULES = {
    "AttentionPool": AttentionPool(16),
    "MultiHeadAttentionPool": MultiHeadAttentionPool(2),
    "MaskedSelfAttention": MaskedSelfAttention(2),
    "MultiScaleConv": MultiScaleConv(4),
}
POOLS = {"last_valid": last_valid, "masked_max": masked_max, "masked_mean": masked_mean}


def _padded(fill: float) -> np.ndarray:
    """X's valid steps, then `fill` everywhere past each length, 3 steps longer."""
    longer = np.concatenate([X, np.zeros((3, 3, 8), np.float32)], axis=1)  # (B, T+3, D)
    return np.where(VALID[..., None], longer, fill).astype(np.float32)


CLEAN = _padded(0.0)


def _valid_part(y: jax.Array) -> np.ndarray:
    """A per-step output with its padded steps zeroed; a pooled output as it is."""
    y = np.asarray(y)
    return np.where(VALID[..., None], y, 0.0) if y.ndim == 3 else y


FILLS = (1e30, np.nan, np.inf)


@pytest.mark.parametrize("name", list(MODULES))
def test_module_results_and_gradients_ignore_the_padding(name):
    module = MODULES[name]
    variables = jax.jit(module.init)(jax.random.key(0), CLEAN, LENGTHS)

    @jax.jit
    def value_and_grad(x):
        def loss(params):
            out = module.apply({"params": params}, x, LENGTHS)
            y = out[0] if isinstance(out, tuple) else out
            return jnp.sum(jnp.where(jnp.isfinite(y), y, 0.0) ** 2), y

        return jax.value_and_grad(loss, has_aux=True)(variables["params"])

    (_, clean), g_clean = value_and_grad(CLEAN)
    for fill in FILLS:
        (_, padded), g_padded = value_and_grad(_padded(fill))
        assert np.all(np.isfinite(np.asarray(padded))), fill
        np.testing.assert_allclose(_valid_part(padded), _valid_part(clean), rtol=1e-5, atol=1e-5)
        for a, b in zip(jax.tree.leaves(g_padded), jax.tree.leaves(g_clean), strict=True):
            np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", list(POOLS))
def test_pools_ignore_the_padding(name):
    pool = POOLS[name]
    clean = pool(jnp.asarray(CLEAN), jnp.asarray(LENGTHS))
    for fill in FILLS:
        padded = pool(jnp.asarray(_padded(fill)), jnp.asarray(LENGTHS))
        np.testing.assert_allclose(np.asarray(padded), np.asarray(clean), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("name", [*POOLS, "AttentionPool", "MultiHeadAttentionPool"])
def test_a_sequence_with_no_steps_pools_to_zeros_with_finite_gradients(name):
    """A chunk of streams where one had nothing new (the LSTM takes length 0) must not put
    NaN, -inf or a padded step into a pooled batch, nor NaN into the gradients."""
    lengths = np.array([6, 0, 4], np.int32)
    x = jnp.asarray(_padded(np.nan)[:, :6])  # (B, T, D), NaN past each length
    if name in POOLS:
        variables, pool = {}, lambda v, x: POOLS[name](x, lengths)
    else:
        variables = jax.jit(MODULES[name].init)(jax.random.key(0), CLEAN, LENGTHS)
        pool = lambda v, x: MODULES[name].apply(v, x, lengths)[0]  # noqa: E731
    pooled = pool(variables, x)  # (B, D)
    np.testing.assert_array_equal(np.asarray(pooled)[1], 0.0)
    assert np.all(np.isfinite(np.asarray(pooled)))
    grads = jax.grad(lambda v, x: jnp.sum(pool(v, x) ** 2), argnums=(0, 1))(variables, x)
    d_x = np.asarray(grads[1])
    assert np.all(np.isfinite(d_x[VALID[:, :6]])) and not np.any(d_x[1])
    assert all(np.all(np.isfinite(np.asarray(g))) for g in jax.tree.leaves(grads[0]))


def test_masked_max_differentiates_through_the_one_step_it_took():
    """The max's derivative is its argmax step's, by a gather: no equality test of the
    operand against the max (which a twice-computed operand can fail, giving 0/0), and a
    tie sends it all to the first step, as torch's `max(dim)` does, not half to each."""
    x = jnp.array([[[1.0], [3.0], [3.0], [2.0], [9.0]]])  # (1, T=5, 1): a tie, then padding
    lengths = jnp.array([4])
    grad = jax.grad(lambda x: masked_max(x, lengths).sum())(x)
    assert grad[0, :, 0].tolist() == [0.0, 1.0, 0.0, 0.0, 0.0]
    tangent = jnp.arange(5.0).reshape(1, 5, 1)
    _, along = jax.jvp(lambda x: masked_max(x, lengths), (x,), (tangent,))
    assert along.tolist() == [[1.0]]

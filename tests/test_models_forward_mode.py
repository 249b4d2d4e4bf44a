"""Forward-mode autodiff through the seed models: `lstm_backward: autodiff` in a model's
config gives `jax.jvp` and forward-over-reverse Hessian-vector products, equal to reverse
mode through the default hand-written backward pass; with that default, forward mode is
refused with a message naming the option."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from seqjax.config import load_config
from seqjax.models import build_model
from tests.seed_models import SMALL


def _setup(name):
    kw = SMALL[name]
    steps = 2 if name == "trust" else 5
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.standard_normal((2, steps, kw["features"])), jnp.float32)  # (B, T, F)
    lengths = jnp.array([steps, steps - 1])  # (B,)
    custom = build_model(name, **kw)
    autodiff = build_model(name, **kw, lstm_backward="autodiff")
    variables = jax.jit(custom.init)(jax.random.key(0), x, lengths)  # the same parameters

    def score(model):
        def f(x):  # a scalar of the task's output (logits, forecasts, regressions)
            out = model.apply(variables, x, lengths)
            return jnp.sum(jnp.tanh(jax.tree.leaves(out)[0]))

        return f

    return x, score(custom), score(autodiff)


@pytest.mark.parametrize("name", sorted(SMALL))
def test_forward_mode_runs_through_every_seed_model_with_autodiff(name):
    """`lstm_backward` reaches every LSTM of the model: one left with the custom backward
    would stop `jax.jvp` (the values are checked on trust below, and on the layer in
    test_lstm_transforms.py)."""
    x, _, autodiff = _setup(name)
    tangent = jnp.ones_like(x)  # (B, T, F)
    _, forward = jax.jit(lambda x, v: jax.jvp(autodiff, (x,), (v,)))(x, tangent)
    assert np.isfinite(float(forward)) and float(forward) != 0


def test_forward_mode_values_equal_reverse_mode_through_the_custom_backward():
    """On trust: a directional derivative by jax.jvp equals the gradient's (reverse mode
    through the hand-written backward) along it, and a Hessian-vector product forward
    over reverse equals reverse over reverse."""
    x, custom, autodiff = _setup("trust")
    v = jnp.asarray(np.random.default_rng(1).standard_normal(x.shape), jnp.float32)

    @jax.jit
    def both(x):
        _, forward = jax.jvp(autodiff, (x,), (v,))
        hvp = jax.jvp(jax.grad(autodiff), (x,), (v,))[1]  # (B, T, F)
        hvp_rev = jax.grad(lambda x: jnp.vdot(jax.grad(custom)(x), v))(x)
        return forward, jnp.vdot(jax.grad(custom)(x), v), hvp, hvp_rev

    forward, reverse, hvp, hvp_rev = both(x)
    assert float(jnp.max(jnp.abs(hvp_rev))) > 0
    np.testing.assert_allclose(float(forward), float(reverse), rtol=1e-4)
    np.testing.assert_allclose(np.asarray(hvp), np.asarray(hvp_rev), rtol=1e-4, atol=1e-5)


def test_forward_mode_through_the_default_backward_names_the_option():
    x, custom, _ = _setup("trend")
    with pytest.raises(TypeError, match=r"backward='autodiff'.*model\.lstm_backward=autodiff"):
        jax.jvp(custom, (x,), (x,))


def test_a_config_names_a_bad_backward_and_remat_without_the_custom_one():
    with pytest.raises(ValueError, match="lstm_backward must be 'custom' or 'autodiff'; got 'au"):
        load_config("trend", ["model.lstm_backward=auto"])
    with pytest.raises(ValueError, match="remat_chunk works with lstm_backward='custom'"):
        load_config("steel_standard", ["model.remat_chunk=10", "model.lstm_backward=autodiff"])

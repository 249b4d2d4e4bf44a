"""Every seed model with the loop a GPU or TPU runs by default, patched in on this CPU:
unroll 16 (4 here: it compiles faster and runs any factor alike), the whole sequence
projected at once, a bidirectional layer's two directions in one scan and one length
group (`loop_defaults`, `fused_directions_default`, `length_groups_default`). Its
predictions, and the gradients of a training step with dropout on, equal the CPU loop's:
on a CPU-only machine this is the check of what `seqjax train` computes on an
accelerator, model by model (the layer's own options: tests/test_lstm_fused.py,
tests/test_lstm_defaults.py)."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from seqjax.layers import lstm
from seqjax.models import build_model
from tests.seed_models import SMALL


def _accelerator_loop(monkeypatch):
    monkeypatch.setattr(lstm, "loop_defaults", lambda platform, features, hidden, steps: (4, 0, 0))
    monkeypatch.setattr(lstm, "fused_directions_default", lambda platform: True)
    monkeypatch.setattr(lstm, "length_groups_default", lambda platform, steps: 1)


def _outputs_and_grads(model, variables, x, lengths):
    """Predictions with dropout off, and a dropout-on training step's loss and gradients
    with respect to the parameters and the inputs."""
    others = [name for name in variables if name != "params"]  # batch statistics, if any

    def loss(params, x):
        out = model.apply(
            {**variables, "params": params}, x, lengths, train=True,
            rngs={"dropout": jax.random.key(2)}, mutable=others,
        )[0]  # fmt: skip
        return sum(jnp.sum(jnp.tanh(leaf)) for leaf in jax.tree.leaves(out))

    predictions = jax.jit(lambda v, x: model.apply(v, x, lengths))(variables, x)
    grads = jax.jit(jax.value_and_grad(loss, argnums=(0, 1)))(variables["params"], x)
    return predictions, grads


@pytest.mark.parametrize("name", sorted(SMALL))
def test_a_seed_model_computes_on_the_accelerator_loop_what_it_does_on_the_cpu_one(
    name, monkeypatch
):
    kw = SMALL[name]
    steps = 2 if name == "trust" else 9  # 9: unroll 4 leaves a remainder
    rng = np.random.default_rng(1)
    x = jnp.asarray(rng.standard_normal((3, steps, kw["features"])), jnp.float32)  # (B, T, F)
    lengths = jnp.array([steps, 1, max(steps - 3, 1)])  # (B,)
    model = build_model(name, **kw, dropout=0.25)
    variables = jax.jit(model.init)(jax.random.key(0), x, lengths)
    on_cpu = _outputs_and_grads(model, variables, x, lengths)
    assert not lstm.fused_directions_default("cpu")  # the CPU loop is two scans
    _accelerator_loop(monkeypatch)
    layer = lstm.LSTM(4, bidirectional=True)
    assert layer._fused(groups=1) and layer._loop_shape(3, steps) == (4, 0, 0)  # patched in
    on_accelerator = _outputs_and_grads(model, variables, x, lengths)
    chex.assert_trees_all_close(on_accelerator, on_cpu, rtol=1e-4, atol=1e-5)

"""`jax.export` with shape polymorphism: a layer exported once for a symbolic batch size
and sequence length runs any batch and length, equal to the jitted layer at that shape;
the options that need a known length say so."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import export

from seqjax.layers import LSTM
from seqjax.layers.conv import sinusoidal_encoding

F = 3


def _export(model, variables):
    """The layer's outputs and final states, exported for inputs (b, t, F), lengths (b,)."""
    b, t = export.symbolic_shape("b, t")
    fn = jax.jit(lambda v, x, n: model.apply(v, x, n))
    shapes = (jax.ShapeDtypeStruct((b, t, F), jnp.float32), jax.ShapeDtypeStruct((b,), jnp.int32))
    return fn, export.export(fn)(variables, *shapes)


@pytest.mark.parametrize("fused", [None, True], ids=["default", "fused_directions"])
def test_one_export_runs_every_batch_and_length(fused):
    """At T = 200 the jitted layer takes the CPU's length groups and chunked projection,
    which need the length; the export runs one group and projects at once, to the same
    values. With fused directions, a GPU's or TPU's default, the backward direction's
    flipped time is a symbolic length's too."""
    model = LSTM(8, num_layers=2, bidirectional=True, fused_directions=fused)
    rng = np.random.default_rng(0)
    variables = jax.jit(model.init)(jax.random.key(0), jnp.zeros((2, 5, F)), jnp.array([5, 2]))
    jitted, exported = _export(model, variables)
    for batch, steps in ((3, 5), (5, 200)):
        x = jnp.asarray(rng.standard_normal((batch, steps, F)).astype(np.float32))
        lengths = jnp.asarray(rng.integers(1, steps + 1, batch).astype(np.int32))
        got, want = exported.call(variables, x, lengths), jitted(variables, x, lengths)
        for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want), strict=True):
            assert a.shape == b.shape
            np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-6)


def test_an_export_without_lengths_runs_every_row_all_its_steps():
    """Lengths left out of the exported call: each row's T is the symbolic length."""
    model = LSTM(8, num_layers=1, bidirectional=True)
    variables = jax.jit(model.init)(jax.random.key(0), jnp.zeros((2, 5, F)))
    b, t = export.symbolic_shape("b, t")
    fn = jax.jit(lambda v, x: model.apply(v, x))
    exported = export.export(fn)(variables, jax.ShapeDtypeStruct((b, t, F), jnp.float32))
    x = jnp.asarray(np.random.default_rng(1).standard_normal((3, 7, F)).astype(np.float32))
    full = jnp.full((3,), 7, jnp.int32)
    for a, b in zip(
        jax.tree.leaves(exported.call(variables, x)),
        jax.tree.leaves(model.apply(variables, x, full)),
        strict=True,
    ):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-6)


@pytest.mark.parametrize(
    "options,named",
    [
        ({"remat_chunk": 4}, "remat_chunk=4 needs a known sequence length"),
        ({"unroll": 4}, "unroll=4 needs a known sequence length"),
        ({"length_groups": 2}, "length_groups=2 needs a known batch size and sequence length"),
    ],
)
def test_options_that_need_the_length_name_themselves(options, named):
    model = LSTM(8, **options)
    variables = jax.jit(model.init)(jax.random.key(0), jnp.zeros((2, 5, F)), jnp.array([5, 2]))
    with pytest.raises(ValueError, match=named + ".*symbolic shape"):
        _export(model, variables)


def test_the_positional_encoding_of_a_symbolic_length():
    """The hybrid model's encoding, computed in the program for a symbolic length, stays
    within float32 angle rounding of the float64 table that a known length gets."""
    (t,) = export.symbolic_shape("t")
    fn = jax.jit(lambda x: sinusoidal_encoding(x.shape[0], 128))
    exported = export.export(fn)(jax.ShapeDtypeStruct((t,), jnp.float32))
    for steps in (5, 64):
        got = np.asarray(exported.call(jnp.zeros((steps,))))
        np.testing.assert_allclose(got, np.asarray(sinusoidal_encoding(steps, 128)), atol=4e-6)

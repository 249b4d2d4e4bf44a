"""Length groups (seqjax/layers/length_groups.py): the stack, its rows sorted by length and
run in phases that stop computing groups whose sequences have ended, equals the padded loop
in values and gradients, in the rows' own order; the default turns it on where it pays."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from seqjax.layers import LSTM
from seqjax.layers.length_groups import group_rows, sort_rows
from seqjax.layers.loop_defaults import length_groups_default

B, T, F, H = 6, 11, 3, 5
LENGTHS = jnp.array([4, 11, 1, 7, 11, 2], jnp.int32)  # unsorted, ties, a length of one


def _inputs():
    keys = jax.random.split(jax.random.key(7), 4)
    x = jax.random.normal(keys[0], (B, T, F))
    state = (2 * 2, B, H)  # two layers, two directions
    return x, (jax.random.normal(keys[1], state), jax.random.normal(keys[2], state)), keys[3]


@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("groups", [4, 50])  # 3 groups of 2 rows; one row each
def test_grouped_stack_equals_the_padded_loop_in_values_and_gradients(groups, bidirectional):
    x, init, probe_key = _inputs()
    init = tuple(s[: 2 * (2 if bidirectional else 1)] for s in init)
    models = {
        g: LSTM(H, num_layers=2, bidirectional=bidirectional, length_groups=g) for g in (1, groups)
    }
    variables = jax.jit(models[1].init)(jax.random.key(0), x, LENGTHS)
    probe = jax.random.normal(probe_key, (B, T, H * (2 if bidirectional else 1)))

    def loss(v, x, init, model):
        ys, (h_n, c_n) = model.apply(v, x, LENGTHS, initial_state=init)
        return jnp.sum(ys * probe) + jnp.sum(h_n * jnp.cos(c_n)), (ys, h_n, c_n)

    results = {
        g: jax.value_and_grad(loss, argnums=(0, 1, 2), has_aux=True)(variables, x, init, m)
        for g, m in models.items()
    }
    (_, want), want_grads = results[1]
    (_, got), got_grads = results[groups]
    pairs = zip(jax.tree.leaves((got, got_grads)), jax.tree.leaves((want, want_grads)), strict=True)
    for a, b in pairs:
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)
    ys = np.asarray(got[0])
    padded = np.arange(T)[None, :] >= np.asarray(LENGTHS)[:, None]  # (B, T)
    assert np.all(ys[padded] == 0.0)


def test_rows_sort_longest_first_and_back():
    order, inverse = sort_rows(LENGTHS)
    assert list(np.asarray(LENGTHS)[np.asarray(order)]) == [11, 11, 7, 4, 2, 1]
    assert list(np.asarray(order)[:2]) == [1, 4]  # ties keep their order
    assert list(np.asarray(order)[np.asarray(inverse)]) == list(range(B))
    assert group_rows(6, 4) == [2, 4, 6]  # groups of ceil(6/4) = 2 rows
    assert group_rows(6, 50) == [1, 2, 3, 4, 5, 6]
    assert group_rows(6, 1) == [6]


def _sorts(model, steps: int) -> bool:
    """Whether `model` over `steps` steps sorts its rows, i.e. runs in length groups."""
    x, lengths = jnp.ones((4, steps, F)), jnp.full((4,), steps, jnp.int32)
    variables = jax.jit(model.init)(jax.random.key(0), x, lengths)
    return "sort" in str(jax.make_jaxpr(model.apply)(variables, x, lengths))


def test_the_default_groups_long_sequences_on_cpu_only():
    assert length_groups_default("cpu", 128) == 4
    assert length_groups_default("cpu", 127) == 1  # trust's 2, trend's 12, hybrid's 64 steps
    assert length_groups_default("gpu", 500) == length_groups_default("tpu", 500) == 1
    on_cpu = jax.default_backend() == "cpu"
    assert _sorts(LSTM(H), 128) == on_cpu
    assert not _sorts(LSTM(H), 127)
    assert not _sorts(LSTM(H, length_groups=1), 128)
    assert _sorts(LSTM(H, length_groups=2), 8)  # asked for: any length, any platform
    # options the phased loops cannot serve keep the padded loop by default
    assert not _sorts(LSTM(H, unroll=4), 128)
    assert not _sorts(LSTM(H, bidirectional=True, fused_directions=True), 128)
    assert not _sorts(LSTM(H, backward="autodiff"), 128)


@pytest.mark.parametrize(
    "options, message",
    [
        (dict(length_groups=0), "length_groups must be >= 1; got 0"),
        (dict(length_groups=4, unroll=4), r"length_groups=4 does not work with unroll=4"),
        (
            dict(length_groups=4, bidirectional=True, fused_directions=True),
            "does not work with fused_directions",
        ),
        (dict(length_groups=2, backward="autodiff"), "does not work with backward='autodiff'"),
        (
            dict(length_groups=4, backend="pallas", pallas_interpret=True),
            "backend='pallas' cannot run here: .*length_groups > 1 is a scan loop",
        ),
    ],
)
def test_options_that_cannot_run_in_groups_are_named(options, message):
    x, lengths = jnp.ones((2, 8, F)), jnp.array([8, 3], jnp.int32)
    with pytest.raises(ValueError, match=message):
        LSTM(16, **options).init(jax.random.key(0), x, lengths)


def test_vmap_over_batches_of_different_lengths_equals_a_loop():
    """Under jax.vmap the phases' bounds differ per mapped batch; each equals its own call."""
    x, _, _ = _inputs()
    xs = jnp.stack([x, x[::-1]])  # (2, B, T, F)
    lengths = jnp.stack([LENGTHS, jnp.array([1, 2, 3, 4, 5, 6], jnp.int32)])
    model = LSTM(H, length_groups=3)
    variables = jax.jit(model.init)(jax.random.key(0), x, LENGTHS)
    mapped = jax.vmap(lambda x, n: model.apply(variables, x, n)[0])(xs, lengths)
    for i in range(2):
        want = LSTM(H, length_groups=1).apply(variables, xs[i], lengths[i])[0]
        np.testing.assert_allclose(mapped[i], want, rtol=1e-5, atol=1e-6)


def test_flax_lifted_transforms_compose_with_groups():
    """nn.remat and an nn.vmap ensemble of a grouped stack equal the padded loop."""
    x, _, _ = _inputs()
    plain = LSTM(H, length_groups=1)
    variables = jax.jit(plain.init)(jax.random.key(0), x, LENGTHS)
    remat = nn.remat(LSTM)(H, length_groups=3)

    def loss(module):
        return lambda v: jnp.sum(module.apply(v, x, LENGTHS)[0] ** 2)

    got, want = jax.grad(loss(remat))(variables), jax.grad(loss(plain))(variables)
    for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)

    ensemble = nn.vmap(
        LSTM,
        variable_axes={"params": 0},
        split_rngs={"params": True},
        in_axes=(None, None),
        axis_size=2,
    )(H, length_groups=3)
    members = jax.jit(ensemble.init)(jax.random.key(1), x, LENGTHS)
    outs, _ = ensemble.apply(members, x, LENGTHS)  # (2, B, T, H)
    for m in range(2):
        member = jax.tree.map(lambda p, m=m: p[m], members)
        want = LSTM(H, length_groups=1).apply(member, x, LENGTHS)[0]
        np.testing.assert_allclose(outs[m], want, rtol=1e-5, atol=1e-6)

"""The layer under jit, grad, forward mode, vmap, bf16 compute, dropout, an initial state
and Flax's lifted transforms."""

import contextlib

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax
from jax.extend.core import ClosedJaxpr, Jaxpr

from seqjax.layers import LSTM

X = jnp.asarray(np.random.default_rng(0).standard_normal((2, 3, 4)).astype(np.float32))
LENGTHS = jnp.array([3, 2])


def _init(model):
    return jax.jit(model.init)(jax.random.key(0), X, LENGTHS)


def test_jit_equals_eager():
    model = LSTM(5, num_layers=2, bidirectional=True)
    v = _init(model)
    eager = model.apply(v, X, LENGTHS)
    jitted = jax.jit(lambda v, x, n: model.apply(v, x, n))(v, X, LENGTHS)
    np.testing.assert_allclose(np.asarray(jitted[0]), np.asarray(eager[0]), atol=1e-6)


def test_grad_matches_finite_difference():
    model = LSTM(3, bidirectional=True)
    v = _init(model)

    def f(scale):
        out, _ = model.apply(v, X * scale, LENGTHS)
        return jnp.sum(out**2)

    g = jax.grad(f)(1.0)
    eps = 1e-3
    fd = (f(1.0 + eps) - f(1.0 - eps)) / (2 * eps)
    np.testing.assert_allclose(float(g), float(fd), rtol=2e-3)


def test_vmap_over_an_ensemble_axis_equals_a_loop():
    model = LSTM(5, num_layers=2)
    v = _init(model)
    xs = jnp.stack([X, 2 * X])  # (E, B, T, F)
    batched = jax.vmap(lambda x: model.apply(v, x, LENGTHS)[0])(xs)
    for e in range(2):
        np.testing.assert_allclose(
            np.asarray(batched[e]), np.asarray(model.apply(v, xs[e], LENGTHS)[0]), atol=1e-6
        )


def test_bf16_compute_keeps_f32_params_and_carry():
    model = LSTM(8, num_layers=2, dtype=jnp.bfloat16)
    v = _init(model)
    assert all(p.dtype == jnp.float32 for p in jax.tree.leaves(v))
    out, (h, c) = model.apply(v, X, LENGTHS)
    assert out.dtype == jnp.bfloat16
    assert h.dtype == jnp.float32 and c.dtype == jnp.float32
    ref, _ = LSTM(8, num_layers=2).apply(v, X, LENGTHS)
    np.testing.assert_allclose(np.asarray(out, np.float32), np.asarray(ref), atol=3e-2)


def test_dropout_between_layers_only_and_only_in_training():
    model = LSTM(16, num_layers=2, dropout=0.5)
    v = _init(model)
    eval_out = model.apply(v, X, LENGTHS)[0]
    assert np.array_equal(np.asarray(eval_out), np.asarray(model.apply(v, X, LENGTHS)[0]))
    a = model.apply(v, X, LENGTHS, train=True, rngs={"dropout": jax.random.key(1)})[0]
    b = model.apply(v, X, LENGTHS, train=True, rngs={"dropout": jax.random.key(2)})[0]
    assert not np.allclose(np.asarray(a), np.asarray(b))
    # One layer: nothing to drop between layers, so training equals evaluation.
    single = LSTM(16, dropout=0.5)
    vs = _init(single)
    np.testing.assert_array_equal(
        np.asarray(
            single.apply(vs, X, LENGTHS, train=True, rngs={"dropout": jax.random.key(1)})[0]
        ),
        np.asarray(single.apply(vs, X, LENGTHS)[0]),
    )


def test_initial_state_is_used():
    model = LSTM(5, num_layers=2, bidirectional=True)
    v = _init(model)
    h0 = jnp.ones((4, 2, 5)) * 0.5
    out0, _ = model.apply(v, X, LENGTHS)
    out1, _ = model.apply(v, X, LENGTHS, initial_state=(h0, h0))
    assert not np.allclose(np.asarray(out0), np.asarray(out1))


def test_custom_backward_equals_autodiff_of_the_scan():
    lengths = jnp.array([3, 1])
    grads = {}
    for backward in ("custom", "autodiff"):
        model = LSTM(6, num_layers=2, bidirectional=True, backward=backward)
        v = jax.jit(model.init)(jax.random.key(3), X, lengths)

        def loss(v, x, model=model):
            out, (h, c) = model.apply(v, x, lengths)
            return jnp.sum(out * jnp.cos(out)) + jnp.sum(h**2) + jnp.sum(c)

        grads[backward] = jax.grad(loss, argnums=(0, 1))(v, X)
    for a, b in zip(
        jax.tree.leaves(grads["custom"]), jax.tree.leaves(grads["autodiff"]), strict=True
    ):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-6)


def test_forward_mode_needs_the_autodiff_backward():
    """A custom VJP has no forward mode, so jax.jvp / jacfwd / linearize through the layer
    need backward="autodiff", whose Jacobian equals reverse mode through the custom one."""
    custom = LSTM(4, num_layers=2, bidirectional=True)
    v = _init(custom)
    with pytest.raises(
        TypeError, match=r"forward-mode autodiff .* LSTM\(\.\.\., backward='autodiff'\)"
    ):
        jax.jvp(lambda x: custom.apply(v, x, LENGTHS)[0], (X,), (X,))
    autodiff = LSTM(4, num_layers=2, bidirectional=True, backward="autodiff")
    forward = jax.jit(jax.jacfwd(lambda x: autodiff.apply(v, x, LENGTHS)[0].sum(axis=(1, 2))))(X)
    reverse = jax.jit(jax.jacrev(lambda x: custom.apply(v, x, LENGTHS)[0].sum(axis=(1, 2))))(X)
    np.testing.assert_allclose(np.asarray(forward), np.asarray(reverse), rtol=1e-5, atol=1e-6)


def _dot_precisions(jaxpr) -> list:
    """The precision of every dot_general in `jaxpr` and the jaxprs inside it (loops,
    remat, jit), in order."""
    found = []
    for eqn in jaxpr.eqns:
        if eqn.primitive.name == "dot_general":
            found.append(eqn.params["precision"])
        for value in eqn.params.values():
            for sub in value if isinstance(value, tuple | list) else (value,):
                if isinstance(sub, ClosedJaxpr):
                    found += _dot_precisions(sub.jaxpr)
                elif isinstance(sub, Jaxpr):
                    found += _dot_precisions(sub)
    return found


OPTIONS = [{}, {"remat_chunk": 2}, {"fused_directions": True}, {"length_groups": 2}]


@pytest.mark.parametrize("options", OPTIONS, ids=["scan", "remat", "fused", "length_groups"])
def test_precision_reaches_the_custom_backward_dots(options):
    """`precision` sets every dot, the hand-written backward pass's included (JAX traces
    that later, outside the forward call), and so does a user's own
    `jax.default_matmul_precision` around the forward call; None leaves JAX's default."""
    highest = (lax.Precision.HIGHEST, lax.Precision.HIGHEST)
    lengths = jnp.array([3, 1])

    def grad_dots(model, context=contextlib.nullcontext):
        v = jax.eval_shape(model.init, jax.random.key(0), X, lengths)  # traced, not run

        def loss(v, x):
            with context():
                out, (h, c) = model.apply(v, x, lengths)
            return jnp.sum(out**2) + jnp.sum(c)

        return _dot_precisions(jax.make_jaxpr(jax.grad(loss, argnums=(0, 1)))(v, X).jaxpr)

    set_on_layer = grad_dots(LSTM(4, 2, bidirectional=True, precision="highest", **options))
    around_call = grad_dots(
        LSTM(4, 2, bidirectional=True, **options),
        lambda: jax.default_matmul_precision("highest"),
    )
    default = grad_dots(LSTM(4, 2, bidirectional=True, **options))
    forward = 8 if not options.get("fused_directions") else 4  # projection + step, per scan
    assert len(set_on_layer) > 2 * forward  # the backward dots are there
    assert set_on_layer == around_call == [highest] * len(set_on_layer)
    assert default == [None] * len(set_on_layer)


def _values_and_grads(model, variables, x, lengths, device):
    """The outputs, final states and gradients of a loss of them, computed on `device`."""

    def loss(v, x):
        out, (h, c) = model.apply(v, x, lengths)
        return jnp.sum(out * jnp.cos(out)) + jnp.sum(h * c), out

    placed = jax.device_put((variables, x), device)
    (_, out), grads = jax.jit(jax.value_and_grad(loss, argnums=(0, 1), has_aux=True))(*placed)
    return jax.device_get((out, grads))


@pytest.mark.skipif(jax.default_backend() != "gpu", reason="a GPU's default rounds to TF32")
def test_precision_highest_on_a_gpu_equals_the_cpu_forward_and_backward():
    """Where JAX's default matmul precision rounds float32 to TF32 (an NVIDIA GPU; set here
    even when the run asks for "highest" everywhere), `precision="highest"` keeps every dot
    of the layer, the hand-written backward pass's included, in float32: outputs and
    gradients over 200 steps equal the CPU's, whose float32 dots are exact."""
    rng = np.random.default_rng(5)
    x = jnp.asarray(rng.standard_normal((8, 200, 16)).astype(np.float32))
    lengths = jnp.asarray(rng.integers(100, 201, 8).astype(np.int32))
    model = LSTM(64, num_layers=2, bidirectional=True, precision="highest")
    variables = jax.jit(model.init)(jax.random.key(0), x, lengths)
    with jax.default_matmul_precision("default"):
        on_gpu = _values_and_grads(model, variables, x, lengths, jax.devices("gpu")[0])
    on_cpu = _values_and_grads(model, variables, x, lengths, jax.devices("cpu")[0])
    for a, b in zip(jax.tree.leaves(on_gpu), jax.tree.leaves(on_cpu), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_custom_backward_under_vmap_of_grad():
    model = LSTM(4)
    v = _init(model)
    per_example = jax.vmap(
        lambda x, n: jax.grad(lambda x: jnp.sum(model.apply(v, x[None], n[None])[0]))(x)
    )(X, LENGTHS)
    assert per_example.shape == X.shape
    assert np.all(np.asarray(per_example)[1, 2] == 0.0)  # padded step of the length-2 example


def test_flax_lifted_transforms_compose_with_the_layer():
    """Research code wraps layers in Flax's lifted transforms: nn.scan over segments with
    shared parameters and the state carried across, nn.vmap over an ensemble with
    separate parameters, nn.remat. Each equals the same computation written out."""
    segments = jnp.stack([X, X[:, ::-1]])  # (S, B, T, F)
    full = jnp.full((2,), 3)  # each segment full length, so the state carries on

    class Segment(nn.Module):
        @nn.compact
        def __call__(self, state, x):
            out, state = LSTM(5, name="lstm")(x, full, initial_state=state)
            return state, out

    scan = nn.scan(Segment, variable_broadcast="params", split_rngs={"params": False}, in_axes=0)()
    state0 = (jnp.zeros((1, 2, 5)), jnp.zeros((1, 2, 5)))
    v = jax.jit(scan.init)(jax.random.key(0), state0, segments)
    final, outs = scan.apply(v, state0, segments)  # outs (S, B, T, H)
    layer, params = LSTM(5), {"params": v["params"]["lstm"]}
    state = state0
    for s in range(2):
        out, state = layer.apply(params, segments[s], full, initial_state=state)
        np.testing.assert_allclose(np.asarray(outs[s]), np.asarray(out), atol=1e-6)
    np.testing.assert_allclose(np.asarray(final[0]), np.asarray(state[0]), atol=1e-6)

    ensemble = nn.vmap(
        LSTM, variable_axes={"params": 0}, split_rngs={"params": True}, in_axes=(0, None)
    )(5, bidirectional=True)
    ve = jax.jit(ensemble.init)(jax.random.key(1), segments, LENGTHS)
    out_e, _ = ensemble.apply(ve, segments, LENGTHS)  # (S, B, T, 2H)
    for s in range(2):
        member = jax.tree.map(lambda p, s=s: p[s], ve)
        out, _ = LSTM(5, bidirectional=True).apply(member, segments[s], LENGTHS)
        np.testing.assert_allclose(np.asarray(out_e[s]), np.asarray(out), atol=1e-6)
    assert not np.allclose(np.asarray(out_e[0]), np.asarray(out_e[1]))  # members differ

    model = LSTM(5, num_layers=2, bidirectional=True)
    vr = _init(model)
    remat = nn.remat(LSTM)(5, num_layers=2, bidirectional=True)

    def loss(module):
        return lambda v: jnp.sum(module.apply(v, X, LENGTHS)[0] ** 2)

    for a, b in zip(
        jax.tree.leaves(jax.grad(loss(remat))(vr)),
        jax.tree.leaves(jax.grad(loss(model))(vr)),
        strict=True,
    ):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-6)

"""The fused Pallas backend: the kernels' arithmetic everywhere, their speed nowhere here.

On CPU the kernels run in Pallas's interpreter (`pallas_interpret=True`), which executes
the same kernel bodies, grid and block indexing, and must agree with the scan in values and
gradients; their lowering to Triton is checked by lowering for CUDA without a GPU. The
compiled kernels themselves only run on a GPU; there the equality test runs them and
elsewhere it is skipped, never imitated.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from seqjax.layers import LSTM
from seqjax.layers.pallas_lstm import pallas_layer
from seqjax.layers.recurrence import scan_direction

RNG = np.random.default_rng(0)
F, H = 3, 16
X = RNG.standard_normal((5, 9, F)).astype(np.float32)  # (B, T, F); B pads to a block of 16
LENGTHS = np.array([9, 3, 7, 1, 5], np.int32)
on_gpu = jax.default_backend() == "gpu"


def _results(model, variables, x, init):
    """Outputs, final state and gradients of a loss touching all of them, jitted."""

    def loss(v, init):
        y, (h, c) = model.apply(v, x, LENGTHS, initial_state=init)
        return jnp.sum(y**2) + jnp.sum(h * c) + jnp.sum(jnp.sin(y)), (y, h, c)

    with jax.default_matmul_precision("highest"):  # the GPU default rounds to TF32
        return jax.jit(jax.value_and_grad(loss, argnums=(0, 1), has_aux=True))(variables, init)


def _assert_same_as_scan(layers, bidirectional, interpret, precision="float32"):
    dirs = 2 if bidirectional else 1
    scan = LSTM(H, layers, bidirectional, backend="scan")
    pallas = LSTM(
        H, layers, bidirectional, backend="pallas", pallas_interpret=interpret,
        pallas_precision=precision,
    )  # fmt: skip
    variables = scan.init(jax.random.key(1), X, LENGTHS)
    init = tuple(
        jnp.asarray(RNG.standard_normal((layers * dirs, len(X), H)), jnp.float32) for _ in "hc"
    )
    garbage = X.copy()
    garbage[np.arange(9)[None, :] >= LENGTHS[:, None]] = 1e6  # padding must not matter
    (v_s, (y_s, h_s, c_s)), g_s = _results(scan, variables, X, init)
    (v_p, (y_p, h_p, c_p)), g_p = _results(pallas, variables, garbage, init)
    for a, b in ((y_p, y_s), (h_p, h_s), (c_p, c_s)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-5)
    np.testing.assert_allclose(float(v_p), float(v_s), rtol=1e-5)
    for a, b in zip(jax.tree.leaves(g_p), jax.tree.leaves(g_s), strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-5, rtol=1e-4)
    assert np.all(np.asarray(y_p)[np.arange(9)[None, :] >= LENGTHS[:, None]] == 0.0)


@pytest.mark.parametrize("layers,bidirectional", [(1, False), (2, True)])
def test_interpreted_kernels_equal_the_scan_in_values_and_gradients(layers, bidirectional):
    _assert_same_as_scan(layers, bidirectional, interpret=True)


@pytest.mark.skipif(not on_gpu, reason="the compiled kernels need a GPU")
@pytest.mark.parametrize("precision", ["float32", "tf32x3"])
@pytest.mark.parametrize("layers,bidirectional", [(1, False), (2, True)])
def test_compiled_kernels_equal_the_scan_on_a_gpu(layers, bidirectional, precision):
    _assert_same_as_scan(layers, bidirectional, interpret=False, precision=precision)


def test_register_tiles_of_a_wide_hidden_state_equal_the_scan():
    """H = 32 held as two tiles of 16 units, as H = 256 is held as two of 128 on a GPU."""
    d, t, b, h = 2, 6, 5, 32
    shapes = ((d, t, b, 4 * h), (d, h, 4 * h), (d, b, h), (d, b, h))
    xproj, w, h0, c0 = (jnp.asarray(RNG.standard_normal(s), jnp.float32) for s in shapes)
    w = 0.3 * w
    lengths = jnp.asarray([6, 2, 1, 4, 5])
    mask = (jnp.arange(t)[:, None] < lengths[None])[..., None]

    def reference(xproj, w, h0, c0):
        runs = [
            scan_direction(xproj[i], w[i], mask, (h0[i], c0[i]), reverse=i == 1) for i in (0, 1)
        ]
        finals = tuple(jnp.stack([r[0][j] for r in runs]) for j in (0, 1))
        return finals, jnp.stack([r[1] for r in runs])

    def tiled(xproj, w, h0, c0):
        return pallas_layer(xproj, w, lengths, h0, c0, interpret=True, unit=16)

    def results(fn):
        def loss(*args):
            (h_n, c_n), ys = fn(*args)
            return jnp.sum(ys**2) + jnp.sum(h_n * c_n), ys

        grad = jax.value_and_grad(loss, argnums=(0, 1, 2, 3), has_aux=True)
        with jax.default_matmul_precision("highest"):
            return jax.jit(grad)(xproj, w, h0, c0)

    (v_r, y_r), g_r = results(reference)
    (v_t, y_t), g_t = results(tiled)
    np.testing.assert_allclose(np.asarray(y_t), np.asarray(y_r), atol=1e-5)
    np.testing.assert_allclose(float(v_t), float(v_r), rtol=1e-5)
    for a, b in zip(g_t, g_r, strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("precision", ["float32", "tf32x3"])
def test_both_kernels_lower_to_triton_for_cuda(precision):
    """Pallas's Triton lowering runs at lowering time, so an unsupported operation in a
    kernel (a register slice, a non-power-of-two tile) fails here, without a GPU. H = 256:
    two register tiles of 128 units."""
    d, t, b, h = 2, 20, 32, 256
    xproj, w, h0 = jnp.zeros((d, t, b, 4 * h)), jnp.zeros((d, h, 4 * h)), jnp.zeros((d, b, h))
    lengths = jnp.full((b,), t)

    def loss(xproj, w, h0):
        (h_n, c_n), ys = pallas_layer(xproj, w, lengths, h0, h0, precision=precision)
        return jnp.sum(ys) + jnp.sum(h_n * c_n)

    grad = jax.jit(jax.grad(loss, argnums=(0, 1, 2)))
    text = grad.trace(xproj, w, h0).lower(lowering_platforms=("cuda",)).as_text()
    assert text.count("xla.gpu.triton") == 2  # the forward and the backward kernel


def test_what_the_kernels_cannot_do_is_named():
    variables = LSTM(6, backend="scan").init(jax.random.key(0), X, LENGTHS)
    with pytest.raises(ValueError, match="power of two >= 16 \\(got 6\\)"):
        LSTM(6, backend="pallas", pallas_interpret=True).apply(variables, X, LENGTHS)
    with pytest.raises(ValueError, match="pallas_precision must be one of"):
        LSTM(H, backend="pallas", pallas_interpret=True, pallas_precision="tf32").init(
            jax.random.key(0), X, LENGTHS
        )
    with pytest.raises(ValueError, match="float32 only"):
        LSTM(H, backend="pallas", dtype=jnp.bfloat16).init(jax.random.key(0), X, LENGTHS)
    with pytest.raises(ValueError, match="remat_chunk needs the scan"):
        LSTM(H, backend="pallas", remat_chunk=4, pallas_interpret=True).init(
            jax.random.key(0), X, LENGTHS
        )


@pytest.mark.skipif(on_gpu, reason="checks the behaviour without a GPU")
def test_without_a_gpu_compiling_the_kernels_is_refused_by_name():
    with pytest.raises(ValueError, match="compiles for a GPU .*pallas_interpret=True"):
        LSTM(H, backend="pallas").init(jax.random.key(0), X, LENGTHS)

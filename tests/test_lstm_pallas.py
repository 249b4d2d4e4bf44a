"""The fused Pallas backend: the kernels' arithmetic everywhere, their speed nowhere here.

On CPU the kernels run in Pallas's interpreter (`pallas_interpret=True`), which executes
the same kernel bodies, grid and block indexing, and must agree with the scan in values and
gradients; their lowering to Triton is checked by lowering for CUDA without a GPU. The
compiled kernels themselves only run on a GPU; there the equality test runs them and
elsewhere it is skipped, never imitated.
"""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from seqjax.layers import LSTM, pallas_units
from seqjax.layers.pallas_lstm import LAYOUTS, pallas_layer
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


def _assert_same_as_scan(layers, bidirectional, interpret, precision="float32", layout="rows"):
    dirs = 2 if bidirectional else 1
    scan = LSTM(H, layers, bidirectional, backend="scan")
    pallas = LSTM(
        H, layers, bidirectional, backend="pallas", pallas_interpret=interpret,
        pallas_precision=precision, pallas_layout=layout,
    )  # fmt: skip
    variables = jax.jit(scan.init)(jax.random.key(1), X, LENGTHS)
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


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("layers,bidirectional", [(1, False), (2, True)])
def test_interpreted_kernels_equal_the_scan_in_values_and_gradients(layers, bidirectional, layout):
    _assert_same_as_scan(layers, bidirectional, interpret=True, layout=layout)


@pytest.mark.skipif(not on_gpu, reason="the compiled kernels need a GPU")
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("precision", ["float32", "tf32x3"])
@pytest.mark.parametrize("layers,bidirectional", [(1, False), (2, True)])
def test_compiled_kernels_equal_the_scan_on_a_gpu(layers, bidirectional, precision, layout):
    _assert_same_as_scan(layers, bidirectional, False, precision, layout)


def _assert_tiles_equal_the_scan(
    h, unit, interpret, precision="float32", batch=5, steps=6, layout="rows"
):  # fmt: skip
    """pallas_layer with H held as H/unit tiles against two scans, values and gradients,
    over lengths from 1 to T (the batch padded to whole blocks of rows inside)."""
    d = 2
    shapes = ((d, steps, batch, 4 * h), (d, h, 4 * h), (d, batch, h), (d, batch, h))
    xproj, w, h0, c0 = (jnp.asarray(RNG.standard_normal(s), jnp.float32) for s in shapes)
    w = w * 2.0 * h**-0.5
    lengths = jnp.asarray(RNG.integers(1, steps + 1, batch)).at[0].set(steps)
    mask = (jnp.arange(steps)[:, None] < lengths[None])[..., None]

    def reference(xproj, w, h0, c0):
        runs = [
            scan_direction(xproj[i], w[i], mask, (h0[i], c0[i]), reverse=i == 1) for i in (0, 1)
        ]
        finals = tuple(jnp.stack([r[0][j] for r in runs]) for j in (0, 1))
        return finals, jnp.stack([r[1] for r in runs])

    def tiled(xproj, w, h0, c0):
        return pallas_layer(
            xproj, w, lengths, h0, c0, interpret=interpret, unit=unit, precision=precision,
            layout=layout,
        )  # fmt: skip

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


def test_tiles_of_a_wide_hidden_state_equal_the_scan():
    """H = 32 as two tiles of 16 units: each step's loops over tiles run twice, as they
    run twice for steel's H = 128 (tiles of 64) on a GPU."""
    _assert_tiles_equal_the_scan(32, 16, interpret=True)


@pytest.mark.skipif(not on_gpu, reason="the compiled kernels need a GPU")
@pytest.mark.parametrize("precision", ["float32", "tf32x3"])
@pytest.mark.parametrize("h,unit", [(128, 64), (128, 32), (256, 64)])
def test_compiled_tiles_equal_the_scan_on_a_gpu(h, unit, precision):
    """Several tiles, threads and batch blocks: where the kernels' barriers between a
    step's stores and the next step's loads matter (the interpreter has none to test)."""
    _assert_tiles_equal_the_scan(h, unit, False, precision, batch=40, steps=50)


def test_units_layout_tiles_and_launches_equal_the_scan(monkeypatch):
    """The units layout with H = 32 as two tiles of 16 units, which the interpreter runs
    in turn inside one program per row block; and a batch of 40 as 64 padded rows in two
    launches of 32, as a GPU with 4 multiprocessors would run it (2 directions x 2 tiles
    fill one launch of one row block)."""
    _assert_tiles_equal_the_scan(32, 16, interpret=True, layout="units")
    monkeypatch.setattr(pallas_units, "resident_programs", lambda: 4)
    assert pallas_units.rows_per_launch(pallas_units.ROWS, 2, 2, 4) == 32
    _assert_tiles_equal_the_scan(32, 16, interpret=True, batch=40, layout="units")


def test_units_layout_refuses_a_group_that_cannot_be_resident(monkeypatch):
    """A row block's programs meet at a barrier, so they must all run at once: 2 directions
    x 2 tiles on a device of 3 multiprocessors cannot, and is refused by name rather than
    left to wait (and give up, with NaN)."""
    monkeypatch.setattr(pallas_units, "resident_programs", lambda: 3)
    with pytest.raises(ValueError, match="2 direction\\(s\\) x 2 tiles = 4 programs .* 3 multi"):
        _assert_tiles_equal_the_scan(32, 16, interpret=True, layout="units")


@pytest.mark.skipif(not on_gpu, reason="the compiled kernels need a GPU")
@pytest.mark.parametrize("precision", ["float32", "tf32x3"])
@pytest.mark.parametrize("h,batch", [(128, 32), (64, 70), (256, 40)])
def test_compiled_units_layout_equals_the_scan_on_a_gpu(h, batch, precision):
    """The barrier between programs, which no interpreter runs: several tiles (8 at steel's
    H = 128), several row blocks (70 rows: 3), and lengths from 1 to T."""
    _assert_tiles_equal_the_scan(h, 16, False, precision, batch=batch, steps=50, layout="units")


def test_units_barrier_orders_memory_at_gpu_scope():
    """What the barrier relies on, read from the Triton IR lowered for CUDA: the counter's
    atomic adds are acquire/release at GPU scope (so the h another multiprocessor stored
    before its add is visible after ours), and the whole h of the step before is read
    with volatile loads, past the multiprocessor's own L1."""
    from benchmarks.triton_compile import triton_modules
    from seqjax.layers.pallas_lstm import KernelOptions

    modules = triton_modules(128, KernelOptions(unit=16, num_warps=4, layout="units"))
    assert set(modules) == {"units_forward_kernel", "units_backward_kernel"}
    for name, text in modules.items():
        adds = [line for line in text.splitlines() if "tt.atomic_rmw" in line]
        assert len(adds) == 2, (name, adds)  # arriving, and each read while waiting
        assert all("acq_rel" in line and "gpu" in line for line in adds), adds
        assert "isVolatile = true" in text, name


def test_kernels_compile_for_hopper_without_spilling(tmp_path):
    """`benchmarks.triton_compile --quick`: both kernels, at the default tiling and both
    precisions, compiled for sm_90 offline. The first kernels, with the carry in registers
    and the tiles unrolled, had 27-29 KB of spill stores in their code at H=128 (a 9-11 KB
    stack per thread); a few spilled words are tolerable, kilobytes through local memory
    every step are not."""
    pytest.importorskip("triton", reason="the kernels extra (pip install -e '.[kernels]')")
    from benchmarks.triton_compile import main

    out = tmp_path / "triton.json"
    main(["--quick", "--out", str(out)])
    result = json.loads(out.read_text())
    assert result["environment"]["target"] == "sm_90" and result["defaults"]["num_warps"] == 8
    rows = result["rows"]
    assert {(r["hidden"], r["precision"]) for r in rows} == {
        (h, p) for h in (64, 128, 256) for p in ("float32", "tf32x3")
    }
    for row in rows:
        for kernel in ("forward_kernel", "backward_kernel"):
            figures = row[kernel]
            assert figures["fits_shared"] and figures["shared_bytes"] > 0, (row, kernel)
            assert figures["spill_store_bytes"] <= 128, (row, kernel)
            assert 0 < figures["registers"] <= 255
        mma = row["forward_kernel"]["ptx_mma"]  # tf32x3 runs on tensor cores, float32 not
        assert (mma > 0) == (row["precision"] == "tf32x3")


def test_units_kernels_compile_for_hopper_at_steels_size_without_spilling(tmp_path):
    """`benchmarks.triton_compile --layout units` at steel's H = 128 in float32, the
    layout's default: each program's W_hh slice (32 KB) stays on chip, and neither kernel
    spills a register. (tf32x3 and H = 256 spill at these defaults:
    benchmarks/results/triton_sm90_units.json.)"""
    pytest.importorskip("triton", reason="the kernels extra (pip install -e '.[kernels]')")
    from benchmarks.triton_compile import main

    out = tmp_path / "units.json"
    argv = ["--quick", "--layout", "units", "--hidden", "128", "--precision", "float32"]
    main([*argv, "--out", str(out)])
    result = json.loads(out.read_text())
    assert result["layout"] == "units" and result["defaults"] == {"unit": 16, "num_warps": 4}
    (row,) = result["rows"]
    for kernel in ("units_forward_kernel", "units_backward_kernel"):
        figures = row[kernel]
        assert figures["fits_shared"] and not figures["spills"], (kernel, figures)
        assert figures["ptx_mma"] == 0 and figures["ptx_fma_f32"] > 0  # float32: CUDA cores


@pytest.mark.parametrize("precision", ["float32", "tf32x3"])
def test_both_kernels_lower_to_triton_for_cuda(precision):
    """Pallas's Triton lowering runs at lowering time, so an unsupported operation in a
    kernel (a register slice, a non-power-of-two tile) fails here, without a GPU. H = 256:
    four tiles of 64 units."""
    d, t, b, h = 2, 20, 32, 256
    xproj, w, h0 = jnp.zeros((d, t, b, 4 * h)), jnp.zeros((d, h, 4 * h)), jnp.zeros((d, b, h))
    lengths = jnp.full((b,), t)

    def loss(xproj, w, h0):
        (h_n, c_n), ys = pallas_layer(xproj, w, lengths, h0, h0, precision=precision)
        return jnp.sum(ys) + jnp.sum(h_n * c_n)

    from benchmarks.triton_compile import lowered_for_hopper

    grad = jax.jit(jax.grad(loss, argnums=(0, 1, 2)))
    text = lowered_for_hopper(grad, xproj, w, h0).as_text()
    assert text.count("xla.gpu.triton") == 2  # the forward and the backward kernel


def test_what_the_kernels_cannot_do_is_named():
    variables = jax.jit(LSTM(6, backend="scan").init)(jax.random.key(0), X, LENGTHS)
    with pytest.raises(ValueError, match="power of two >= 16 \\(got 6\\)"):
        LSTM(6, backend="pallas", pallas_interpret=True).apply(variables, X, LENGTHS)
    with pytest.raises(ValueError, match="pallas_precision must be one of"):
        LSTM(H, backend="pallas", pallas_interpret=True, pallas_precision="tf32").init(
            jax.random.key(0), X, LENGTHS
        )
    with pytest.raises(ValueError, match="pallas_layout must be one of \\['rows', 'units'\\]"):
        LSTM(H, backend="pallas", pallas_interpret=True, pallas_layout="cols").init(
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

"""The recurrence functions on their own, below the `LSTM` module: the hand-written
backward passes against autodiff of the plain scan, for any output cotangent (padded steps
included, which `LSTM` itself never sends), and the padded outputs."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from seqjax.layers import recurrence

T, B, F, H = 9, 3, 4, 5


def _inputs():
    keys = jax.random.split(jax.random.key(3), 7)
    lengths = jnp.array([9, 4, 1])
    mask = (jnp.arange(T)[:, None] < lengths[None, :])[..., None]  # (T, B, 1)
    return {
        "seq": jax.random.normal(keys[0], (T, B, F)),
        "w_ih": jax.random.normal(keys[1], (F, 4 * H)) * 0.5,
        "bias": jax.random.normal(keys[2], (4 * H,)) * 0.1,
        "w_hh": jax.random.normal(keys[3], (H, 4 * H)) * 0.5,
        "mask": mask,
        "init": (jax.random.normal(keys[4], (B, H)), jax.random.normal(keys[5], (B, H))),
        "probe": jax.random.normal(keys[6], (T, B, H)),  # cotangent of the outputs
    }


def _plain(seq, w_ih, bias, w_hh, mask, init, reverse, groups=1):
    xproj = recurrence.project(seq, w_ih, bias)
    return recurrence.scan_direction(xproj, w_hh, mask, init, reverse=reverse, groups=groups)


def _fast(seq, w_ih, bias, w_hh, mask, init, reverse, groups=1):
    xproj = recurrence.project(seq, w_ih, bias)
    return recurrence.scan_direction_fast(xproj, w_hh, mask, init, reverse, 1, groups)


def _chunked(seq, w_ih, bias, w_hh, mask, init, reverse, groups=1):
    return recurrence.lstm_direction(seq, w_ih, bias, w_hh, mask, init, reverse, 1, 4, 4, groups)


def _whole(seq, w_ih, bias, w_hh, mask, init, reverse, groups=1):
    return recurrence.lstm_direction(seq, w_ih, bias, w_hh, mask, init, reverse, 1, 0, 0, groups)


def _in_step(seq, w_ih, bias, w_hh, mask, init, reverse, groups=1):
    return recurrence.lstm_direction(seq, w_ih, bias, w_hh, mask, init, reverse, 1, 1, 1, groups)


def _mixed(seq, w_ih, bias, w_hh, mask, init, reverse, groups=1):
    """Whole-sequence projection under a gradient, chunks of 4 steps without one."""
    return recurrence.lstm_direction(seq, w_ih, bias, w_hh, mask, init, reverse, 1, 0, 4, groups)


def _remat(seq, w_ih, bias, w_hh, mask, init, reverse, groups=1):
    return recurrence.lstm_direction_remat(seq, w_ih, bias, w_hh, mask, init, reverse, 1, 4, groups)


# groups: the rows' lengths 9, 4, 1 are sorted longest first, as length groups need; 2
# groups is one of two rows and one of one, 3 one row each (seqjax/layers/length_groups.py)
@pytest.mark.parametrize("groups", [1, 2, 3])
@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize(
    "fn",
    [_fast, _chunked, _whole, _in_step, _mixed, _remat],
    ids=["fast", "chunked", "whole", "in_step", "mixed", "remat"],
)
def test_gradients_equal_autodiff_with_cotangents_on_padded_steps(fn, reverse, groups):
    """Loss and gradients of every path, in length groups or not, against autodiff of the
    plain scan."""
    a = _inputs()

    def loss(impl, seq, w_ih, bias, w_hh, init, groups=1):
        (h_n, c_n), ys = impl(seq, w_ih, bias, w_hh, a["mask"], init, reverse, groups)
        return jnp.sum(ys * a["probe"]) + jnp.sum(h_n * c_n)

    args = (a["seq"], a["w_ih"], a["bias"], a["w_hh"], a["init"])
    want = jax.value_and_grad(lambda *x: loss(_plain, *x), argnums=range(5))(*args)
    got = jax.value_and_grad(lambda *x: loss(fn, *x, groups), argnums=range(5))(*args)
    for g, w in zip(jax.tree.leaves(got), jax.tree.leaves(want), strict=True):
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("groups", [1, 2, 3])
@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize(
    "fn",
    [_plain, _fast, _chunked, _whole, _in_step, _mixed, _remat],
    ids=["plain", "fast", "chunked", "whole", "in_step", "mixed", "remat"],
)
def test_padded_steps_output_exactly_zero(fn, reverse, groups):
    """Exactly zero past each length on every path, and nowhere else; without a gradient
    (each path's primal, which for `_mixed` projects differently) equal to the plain scan."""
    a = _inputs()
    args = (a["seq"], a["w_ih"], a["bias"], a["w_hh"], a["mask"], a["init"], reverse)
    (h_n, c_n), ys = fn(*args, groups)
    (want_h, want_c), want_ys = _plain(*args)
    np.testing.assert_allclose(ys, want_ys, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(h_n, want_h, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(c_n, want_c, rtol=1e-5, atol=1e-6)
    padded = ~np.asarray(a["mask"][..., 0])  # (T, B)
    assert padded.any()
    assert np.all(np.asarray(ys)[padded] == 0.0)
    assert np.all(np.asarray(ys)[~padded] != 0.0)

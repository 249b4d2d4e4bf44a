"""The recurrence functions on their own, below the `LSTM` module.

The scans emit their carry at padded steps and `LSTM` zeroes those steps, so through the
module a padded step's output never has a gradient. Called directly, it can: these check
the hand-written backward passes against autodiff of the plain scan for any cotangent.
"""

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


def _plain(seq, w_ih, bias, w_hh, mask, init, reverse):
    xproj = recurrence.project(seq, w_ih, bias)
    return recurrence.scan_direction(xproj, w_hh, mask, init, reverse=reverse)


def _fast(seq, w_ih, bias, w_hh, mask, init, reverse):
    xproj = recurrence.project(seq, w_ih, bias)
    return recurrence.scan_direction_fast(xproj, w_hh, mask, init, reverse, 1)


def _chunked(seq, w_ih, bias, w_hh, mask, init, reverse):
    return recurrence.lstm_direction(seq, w_ih, bias, w_hh, mask, init, reverse, 1, 4)


def _remat(seq, w_ih, bias, w_hh, mask, init, reverse):
    return recurrence.lstm_direction_remat(seq, w_ih, bias, w_hh, mask, init, reverse, 1, 4)


@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("fn", [_fast, _chunked, _remat], ids=["fast", "chunked", "remat"])
def test_gradients_equal_autodiff_with_cotangents_on_padded_steps(fn, reverse):
    a = _inputs()

    def loss(impl, seq, w_ih, bias, w_hh, init):
        (h_n, c_n), ys = impl(seq, w_ih, bias, w_hh, a["mask"], init, reverse)  # ys (T, B, H)
        return jnp.sum(ys * a["probe"]) + jnp.sum(h_n * c_n)

    args = (a["seq"], a["w_ih"], a["bias"], a["w_hh"], a["init"])
    want = jax.grad(lambda *x: loss(_plain, *x), argnums=range(5))(*args)
    got = jax.grad(lambda *x: loss(fn, *x), argnums=range(5))(*args)
    for g, w in zip(jax.tree.leaves(got), jax.tree.leaves(want), strict=True):
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-5)


def test_padded_steps_emit_the_frozen_carry():
    a = _inputs()
    (h_n, _), ys = _plain(a["seq"], a["w_ih"], a["bias"], a["w_hh"], a["mask"], a["init"], False)
    # sequence 1 has length 4: steps 4.. repeat the state after step 3, which is h_n
    np.testing.assert_array_equal(ys[4:, 1], np.broadcast_to(ys[3, 1], (T - 4, H)))
    np.testing.assert_array_equal(h_n[1], ys[3, 1])

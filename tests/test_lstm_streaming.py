"""Streams fed to the LSTM chunk by chunk, each call continuing from the last call's state
(`initial_state`), compute what one call over the whole sequences computes. A stream with
nothing new in a chunk has length 0 there: zero outputs and its state passed through
unchanged, in values and gradients. Every scan variant and the Pallas kernels (interpreted)
here; cuDNN in tests/test_lstm_cudnn.py, on a GPU."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from seqjax.layers import LSTM

RNG = np.random.default_rng(0)
CUT = 8  # the first chunk's steps
X = RNG.standard_normal((4, 20, 3)).astype(np.float32)  # (B, T, F)
LENGTHS = np.array([20, 8, 5, 13], np.int32)
FIRST = np.minimum(LENGTHS, CUT)  # (B,): [8, 8, 5, 8]
SECOND = LENGTHS - FIRST  # (B,): [12, 0, 0, 5]; rows 1 and 2 ended in the first chunk
EMPTY = SECOND == 0
H = 16  # the Pallas kernels' smallest hidden size

VARIANTS = {
    "default": {},
    "remat": {"remat_chunk": 3},
    "length_groups": {"length_groups": 3},
    "whole_projection_unrolled": {"projection_chunk": 0, "unroll": 4},
    "pallas": {"backend": "pallas", "pallas_interpret": True},
}


def chunks_equal_the_whole(atol=1e-6, **options):
    """A 2-layer stack over the whole sequences and over two chunks, jitted."""
    model = LSTM(H, num_layers=2, **options)
    variables = jax.jit(LSTM(H, num_layers=2).init)(jax.random.key(0), X, LENGTHS)
    apply = jax.jit(model.apply)
    y, (h, c) = apply(variables, X, LENGTHS)
    y1, state = apply(variables, X[:, :CUT], FIRST)
    y2, (h2, c2) = apply(variables, X[:, CUT:], SECOND, initial_state=state)
    np.testing.assert_allclose(np.concatenate([y1, y2], axis=1), y, atol=atol)
    np.testing.assert_allclose(h2, h, atol=atol)
    np.testing.assert_allclose(c2, c, atol=atol)
    assert np.all(np.asarray(y2)[EMPTY] == 0.0)


def empty_rows_pass_their_state_through(**options):
    """Bidirectional, 2 layers, the second chunk alone from a random state: the empty rows'
    final state is their initial state, and their gradients go straight through it."""
    model = LSTM(H, num_layers=2, bidirectional=True, **options)
    x = X[:, CUT:]
    variables = jax.jit(LSTM(H, num_layers=2, bidirectional=True).init)(
        jax.random.key(0), x, SECOND
    )
    h0, c0, w_h, w_c = RNG.standard_normal((4, 4, 4, H)).astype(np.float32)  # (L*D, B, H)

    def loss(x, h0, c0, lengths):
        y, (h, c) = model.apply(variables, x, lengths, initial_state=(h0, c0))
        return jnp.sum(y**2) + jnp.sum(h * w_h) + jnp.sum(c * w_c), (h, c)

    grad = jax.jit(jax.grad(loss, argnums=(0, 1, 2), has_aux=True))
    (d_x, d_h0, d_c0), (h, c) = grad(x, h0, c0, SECOND)
    np.testing.assert_array_equal(np.asarray(h)[:, EMPTY], h0[:, EMPTY])
    np.testing.assert_array_equal(np.asarray(c)[:, EMPTY], c0[:, EMPTY])
    np.testing.assert_array_equal(np.asarray(d_h0)[:, EMPTY], w_h[:, EMPTY])
    np.testing.assert_array_equal(np.asarray(d_c0)[:, EMPTY], w_c[:, EMPTY])
    assert np.all(np.asarray(d_x)[EMPTY] == 0.0)
    assert np.all(np.asarray(d_h0)[:, ~EMPTY] != 0.0)  # the other rows do use their state


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_chunks_with_the_carried_state_equal_the_whole_sequence(variant):
    chunks_equal_the_whole(**VARIANTS[variant])


@pytest.mark.parametrize("variant", ["default", "fused", "pallas"])
def test_a_stream_with_nothing_new_keeps_its_state_in_values_and_gradients(variant):
    options = {"fused": {"fused_directions": True}}.get(variant, VARIANTS.get(variant))
    empty_rows_pass_their_state_through(**options)


def test_a_length_of_zero_is_accepted_outside_jit_too():
    model = LSTM(H)
    variables = jax.jit(model.init)(jax.random.key(0), X, LENGTHS)
    y, (h, c) = model.apply(variables, X, np.zeros(4, np.int32))
    assert not np.any(np.asarray(y)) and not np.any(np.asarray(h)) and not np.any(np.asarray(c))


def test_one_step_calls_in_a_users_scan_equal_the_whole_pass():
    """Autoregressive decoding's loop: the layer called on one step at a time inside a
    `lax.scan` that carries (h, c), in values and parameter gradients."""
    model = LSTM(H, num_layers=2)
    x = X[:, :10]  # (B, T, F)
    full = np.full(4, 10, np.int32)
    variables = jax.jit(model.init)(jax.random.key(0), x, full)

    def whole(v):
        return model.apply(v, x, full)[0]

    def stepwise(v):
        def step(state, x_t):  # x_t (B, F)
            y, state = model.apply(v, x_t[:, None], np.ones(4, np.int32), initial_state=state)
            return state, y[:, 0]

        zeros = jnp.zeros((2, 4, H))
        _, ys = jax.lax.scan(step, (zeros, zeros), jnp.swapaxes(x, 0, 1))  # ys (T, B, H)
        return jnp.swapaxes(ys, 0, 1)

    np.testing.assert_allclose(jax.jit(stepwise)(variables), jax.jit(whole)(variables), atol=1e-6)
    grads = [
        jax.jit(jax.grad(lambda v, f=f: jnp.sum(f(v) ** 2)))(variables) for f in (whole, stepwise)
    ]
    for a, b in zip(*(jax.tree.leaves(g) for g in grads), strict=True):
        np.testing.assert_allclose(b, a, atol=1e-5, rtol=1e-5)

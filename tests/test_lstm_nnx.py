"""The Linen layer inside a Flax NNX model, through `flax.nnx.bridge.ToNNX`: NNX is Flax's
newer API, and research code written in it should take the layer as it is, with its
custom backward pass, its masking and its dropout."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx
from flax.nnx import bridge

from benchmarks.side_by_side import max_abs_diff
from seqjax.interop import lstm_params_from_torch, lstm_params_to_torch
from seqjax.layers import LSTM

LAYER = LSTM(8, num_layers=2, bidirectional=True, dropout=0.5)


def _inputs():
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.standard_normal((4, 7, 3)), jnp.float32)  # (B, T, F)
    lengths = jnp.array([7, 3, 5, 1], jnp.int32)  # (B,)
    return x, lengths


def _wrapped(seed: int = 0) -> nnx.Module:
    x, lengths = _inputs()
    lstm = bridge.ToNNX(LAYER, rngs=nnx.Rngs(params=seed, dropout=seed + 1))
    bridge.lazy_init(lstm, x, lengths)
    return lstm


def test_values_and_gradients_equal_the_linen_layer_on_the_same_parameters():
    x, lengths = _inputs()
    lstm = _wrapped()
    params = nnx.to_pure_dict(nnx.state(lstm, nnx.Param))
    # the same parameter tree as Linen's init: torch-importable names, same shapes
    linen = jax.jit(LAYER.init)(jax.random.key(0), x, lengths)["params"]
    assert jax.tree.map(jnp.shape, params) == jax.tree.map(jnp.shape, linen)
    torch_names = lstm_params_to_torch(params)  # the interop takes the tree as it is
    back = lstm_params_from_torch(torch_names, num_layers=2, bidirectional=True)
    assert max_abs_diff(back["params"], params) == 0.0

    def nnx_loss(lstm):
        y, (h, c) = lstm(x, lengths)  # (B, T, 2H); (2L, B, H) each
        return jnp.sum(y**2) + jnp.sum(h) + 0.5 * jnp.sum(c), y

    def linen_loss(params):
        y, (h, c) = LAYER.apply({"params": params}, x, lengths)
        return jnp.sum(y**2) + jnp.sum(h) + 0.5 * jnp.sum(c), y

    (loss, y), grads = nnx.jit(nnx.value_and_grad(nnx_loss, has_aux=True))(lstm)
    (want_loss, want_y), want_grads = jax.jit(jax.value_and_grad(linen_loss, has_aux=True))(params)
    assert abs(float(loss - want_loss)) < 1e-5 and max_abs_diff(y, want_y) < 1e-6
    assert max_abs_diff(nnx.to_pure_dict(grads), want_grads) < 1e-5
    assert float(jnp.max(jnp.abs(y[1, 3:]))) == 0.0  # past its length of 3: zeros


def test_dropout_draws_from_the_models_dropout_stream():
    x, lengths = _inputs()
    lstm = _wrapped()
    plain, _ = lstm(x, lengths)
    first, _ = lstm(x, lengths, train=True)
    second, _ = lstm(x, lengths, train=True)
    assert max_abs_diff(first, plain) > 1e-3  # a mask between the layers
    assert max_abs_diff(second, first) > 1e-3  # a new mask each call
    same = _wrapped()  # the same Rngs and the same calls draw the same masks
    same(x, lengths)  # every call advances the stream, training or not
    again, _ = same(x, lengths, train=True)
    np.testing.assert_array_equal(again, first)
    assert float(jnp.max(jnp.abs(first[3, 1:]))) == 0.0  # masking holds in training


def test_an_nnx_model_around_the_layer_trains():
    """An nnx.Module holding the layer and a Linear head, trained by nnx.Optimizer in an
    nnx.jit step, fits a small target: the custom backward pass reaches the layer's
    weights through NNX's transforms."""
    x, lengths = _inputs()
    target = jnp.asarray([[1.0], [-1.0], [0.5], [0.0]])  # (B, 1)

    class Model(nnx.Module):
        def __init__(self, rngs: nnx.Rngs):
            self.lstm = bridge.ToNNX(LSTM(8, bidirectional=True), rngs=rngs)
            bridge.lazy_init(self.lstm, x, lengths)
            self.head = nnx.Linear(16, 1, rngs=rngs)

        def __call__(self, x, lengths):
            _, (h_n, _) = self.lstm(x, lengths)  # (2, B, H): each direction's last state
            return self.head(jnp.concatenate([h_n[0], h_n[1]], axis=-1))  # (B, 1)

    model = Model(nnx.Rngs(0))
    before = nnx.to_pure_dict(nnx.state(model.lstm, nnx.Param))
    # SGD: Adam's bias correction mixes a float with its int32 count, which the strict
    # dtype promotion the layer tests run under (tests/conftest.py) refuses
    optimizer = nnx.Optimizer(model, optax.sgd(0.05, momentum=0.9), wrt=nnx.Param)

    @nnx.jit
    def step(model, optimizer):
        def loss(model):
            return jnp.mean((model(x, lengths) - target) ** 2)

        value, grads = nnx.value_and_grad(loss)(model)
        optimizer.update(model, grads)
        return value

    losses = [float(step(model, optimizer)) for _ in range(60)]
    assert losses[-1] < 0.1 * losses[0], losses[::10]
    after = nnx.to_pure_dict(nnx.state(model.lstm, nnx.Param))
    moved = jax.tree.map(lambda a, b: bool(jnp.any(a != b)), before, after)
    assert all(jax.tree.leaves(moved))  # every LSTM weight and bias was trained

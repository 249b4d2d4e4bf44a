"""`LSTMCell`, one step of the layer in Flax's cell API: `torch.nn.LSTMCell`'s steps and
gradients, `nn.RNN` of it equal to the layer with the very same variables, decoding on
from a layer's final state, the carry's dtype, and the errors."""

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from seqjax.interop import lstm_cell_params_from_torch, lstm_cell_params_to_torch
from seqjax.layers import LSTM, LSTMCell

B, T, F, H = 3, 7, 4, 5
LENGTHS = np.array([7, 2, 5], np.int32)


@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no_bias"])
def test_steps_and_gradients_equal_torch_lstm_cell(bias):
    """Four steps from a random (h, c): every step's h, the last c, and the gradients of
    the weights and of every step's input."""
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    ref = torch.nn.LSTMCell(F, H, bias=bias)
    rng = np.random.default_rng(0)
    xs = rng.standard_normal((4, B, F)).astype(np.float32)  # (steps, B, F)
    h0, c0 = rng.standard_normal((2, B, H)).astype(np.float32)

    xt = torch.from_numpy(xs).requires_grad_()
    h, c = torch.from_numpy(h0), torch.from_numpy(c0)
    hs = []
    for step in xt:
        h, c = ref(step, (h, c))
        hs.append(h)
    want_hs = torch.stack(hs)
    ((want_hs**2).sum() + c.sum()).backward()
    want_grads = {k: v.grad.numpy() for k, v in ref.named_parameters()}

    sd = {k: v.detach().numpy() for k, v in ref.state_dict().items()}
    variables = lstm_cell_params_from_torch(sd, bias=bias)
    cell = LSTMCell(H, use_bias=bias)

    def loss(v, xs):
        (c, _), hs = jax.lax.scan(lambda carry, x: cell.apply(v, carry, x), (c0, h0), xs)
        return jnp.sum(hs**2) + jnp.sum(c), (hs, c)  # hs (steps, B, H)

    (_, got), (grads, dxs) = jax.value_and_grad(loss, (0, 1), has_aux=True)(variables, xs)
    want = [want_hs.detach().numpy(), c.detach().numpy()]
    chex.assert_trees_all_close([np.asarray(a) for a in got], want, rtol=1e-5, atol=1e-5)
    got_grads = lstm_cell_params_to_torch(grads)
    assert sorted(got_grads) == sorted(want_grads)
    chex.assert_trees_all_close(got_grads, want_grads, rtol=1e-5, atol=1e-5)
    chex.assert_trees_all_close(np.asarray(dxs), xt.grad.numpy(), rtol=1e-5, atol=1e-5)


def test_nn_rnn_of_the_cell_is_the_layer_with_its_variables():
    """The layer's own initial variables drive `nn.RNN(LSTMCell(H))` over seq_lengths:
    the same outputs on every valid step, the same final (h, c), and the same parameter
    gradients, tree for tree."""
    rng = np.random.default_rng(1)
    x = jnp.asarray(rng.standard_normal((B, T, F)), jnp.float32)
    layer = LSTM(H)
    variables = jax.jit(layer.init)(jax.random.key(0), x, LENGTHS)
    rnn = nn.RNN(LSTMCell(H), return_carry=True)
    valid = jnp.asarray(np.arange(T)[None, :, None] < LENGTHS[:, None, None])  # (B, T, 1)

    def layer_loss(params):
        out, (h_n, c_n) = layer.apply({"params": params}, x, LENGTHS)
        return jnp.sum(out**2) + jnp.sum(c_n), (out, h_n[0], c_n[0])

    def rnn_loss(params):
        (c, h), out = rnn.apply({"params": {"cell": params}}, x, seq_lengths=LENGTHS)
        out = jnp.where(valid, out, 0.0)  # nn.RNN leaves its own values past a length
        return jnp.sum(out**2) + jnp.sum(c), (out, h, c)

    grad = jax.value_and_grad(layer_loss, has_aux=True)
    (_, want), want_grads = grad(variables["params"])
    (_, got), got_grads = jax.value_and_grad(rnn_loss, has_aux=True)(variables["params"])
    assert jax.tree.structure(got_grads) == jax.tree.structure(want_grads)
    chex.assert_trees_all_close((got, got_grads), (want, want_grads), rtol=1e-5, atol=1e-5)


def test_the_cell_decodes_on_from_the_layers_final_state():
    """A layer over the first 4 steps, then the cell over the last 3 from its (h_n, c_n):
    the layer's outputs over all 7 steps, as a decoder continuing an encoder computes."""
    rng = np.random.default_rng(2)
    x = jnp.asarray(rng.standard_normal((B, T, F)), jnp.float32)
    layer = LSTM(H)
    variables = jax.jit(layer.init)(jax.random.key(3), x)
    whole, _ = layer.apply(variables, x)  # (B, T, H)
    _, (h_n, c_n) = layer.apply(variables, x[:, :4])
    step = jax.jit(LSTMCell(H).apply)
    carry, outputs = (c_n[0], h_n[0]), []
    for t in range(4, T):
        carry, y = step(variables, carry, x[:, t])
        outputs.append(y)
    chex.assert_trees_all_close(jnp.stack(outputs, 1), whole[:, 4:], rtol=1e-5, atol=1e-5)


def test_precision_reaches_every_dot_forward_and_backward():
    """As the layer's: "highest" on every dot of a gradient through three steps, JAX's
    default (None) without it; a name JAX does not know is refused."""
    from tests.test_lstm_transforms import _dot_precisions

    xs = jnp.ones((3, B, F))  # (steps, B, F)

    def dots(cell):
        carry = cell.initialize_carry(jax.random.key(0), xs.shape[1:])
        v = jax.eval_shape(cell.init, jax.random.key(0), carry, xs[0])

        def loss(v, xs):
            (c, _), hs = jax.lax.scan(lambda s, x: cell.apply(v, s, x), carry, xs)
            return jnp.sum(hs**2) + jnp.sum(c)

        return _dot_precisions(jax.make_jaxpr(jax.grad(loss, argnums=(0, 1)))(v, xs).jaxpr)

    highest = dots(LSTMCell(H, precision="highest"))
    assert len(highest) >= 6  # two forward dots, and their backward dots
    assert highest == [(jax.lax.Precision.HIGHEST,) * 2] * len(highest)
    assert dots(LSTMCell(H)) == [None] * len(highest)
    with pytest.raises(ValueError, match=r"LSTMCell: precision must be None, one of .*got 'max'"):
        bad = LSTMCell(H, precision="max")
        bad.init(jax.random.key(0), bad.initialize_carry(jax.random.key(0), (B, F)), xs[0])


def test_bfloat16_matmuls_keep_a_float32_carry_and_parameters():
    cell = LSTMCell(H, dtype=jnp.bfloat16)
    x = jnp.ones((B, F), jnp.bfloat16)
    carry = cell.initialize_carry(jax.random.key(0), x.shape)
    assert [a.shape for a in carry] == [(B, H)] * 2
    variables = jax.jit(cell.init)(jax.random.key(1), carry, x)
    (c, h), y = cell.apply(variables, carry, x)
    assert c.dtype == h.dtype == y.dtype == jnp.float32
    assert {a.dtype for a in jax.tree.leaves(variables)} == {jnp.dtype(jnp.float32)}


def test_bad_cell_inputs_and_weights_are_named():
    cell = LSTMCell(H)
    x = jnp.ones((B, F))
    carry = cell.initialize_carry(jax.random.key(0), x.shape)
    variables = jax.jit(cell.init)(jax.random.key(1), carry, x)
    with pytest.raises(
        ValueError, match=r"inputs have 3 features but the parameters were built for 4"
    ):
        cell.apply(variables, carry, x[:, :3])
    with pytest.raises(ValueError, match=r"carry h must have shape \(3, 5\) .* got \(3, 4\)"):
        cell.apply(variables, (carry[0], carry[1][:, :4]), x)
    with pytest.raises(ValueError, match=r"carry must be \(c, h\); got Array"):
        cell.apply(variables, carry[0], x)
    with pytest.raises(TypeError, match=r"inputs must be a floating array"):
        cell.apply(variables, carry, jnp.ones((B, F), jnp.int32))
    sd = lstm_cell_params_to_torch(variables)
    assert sorted(sd) == ["bias_hh", "bias_ih", "weight_hh", "weight_ih"]
    with pytest.raises(ValueError, match=r"nn.LSTMCell with bias=True; missing \['bias_hh'\]"):
        lstm_cell_params_from_torch({k: v for k, v in sd.items() if k != "bias_hh"})
    bad = {**sd, "weight_hh": sd["weight_hh"][:, :3]}
    with pytest.raises(ValueError, match=r"lstm_cell_params_from_torch: weight_hh must have shape"):
        lstm_cell_params_from_torch(bad)

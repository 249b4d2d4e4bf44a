"""`LSTM(time_major=True)`: inputs (T, B, F) and outputs (T, B, D*H), the layout of
`torch.nn.LSTM`'s default `batch_first=False` and of `nn.RNN(time_major=True)`, so code
ported from either needs no transposes. The same results as the batch-major layer on the
transposed batch, with and without a projection, PyTorch's own results over a packed time-major
batch, and the errors named in the time-major layout."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from seqjax.interop import lstm_params_from_torch
from seqjax.layers import LSTM

B, T, F, H = 4, 7, 3, 5
LENGTHS = np.array([7, 2, 0, 5], np.int32)  # a stream with no new step keeps its state

# The layout changes only at the layer's edges, around every scan variant alike; a
# projection changes the outputs' width.
VARIANTS = {"default": {}, "proj_size": {"proj_size": 3}}


@pytest.mark.parametrize("variant", VARIANTS, ids=list(VARIANTS))
def test_time_major_equals_the_batch_major_layer_on_the_transposed_batch(variant):
    """Two bidirectional layers from an initial state: outputs, h_n, c_n and every
    gradient, the input's included, the same values (to float rounding) in the other
    layout."""
    options = VARIANTS[variant]
    p = options.get("proj_size", H)
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.standard_normal((B, T, F)), jnp.float32)  # (B, T, F)
    h0 = jnp.asarray(rng.standard_normal((4, B, p)), jnp.float32)
    c0 = jnp.asarray(rng.standard_normal((4, B, H)), jnp.float32)
    batch_major = LSTM(H, 2, bidirectional=True, **options)
    time_major = LSTM(H, 2, bidirectional=True, time_major=True, **options)
    variables = jax.jit(batch_major.init)(jax.random.key(1), x, LENGTHS)

    def results(model, xs):
        def loss(v, xs):
            out, (h_n, c_n) = model.apply(v, xs, LENGTHS, initial_state=(h0, c0))
            return jnp.sum(out**2) + jnp.sum(h_n) + 0.5 * jnp.sum(c_n), (out, h_n, c_n)

        return jax.jit(jax.value_and_grad(loss, (0, 1), has_aux=True))(variables, xs)

    (_, (out, h_n, c_n)), (grads, dx) = results(batch_major, x)
    (_, (out_t, h_t, c_t)), (grads_t, dx_t) = results(time_major, jnp.swapaxes(x, 0, 1))
    assert out_t.shape == (T, B, 2 * p) and h_t.shape == (4, B, p) and c_t.shape == (4, B, H)
    chex.assert_trees_all_close(
        (jnp.swapaxes(out_t, 0, 1), h_t, c_t, grads_t, jnp.swapaxes(dx_t, 0, 1)),
        (out, h_n, c_n, grads, dx),
        rtol=1e-6,
        atol=1e-6,
    )


@pytest.mark.parametrize("packed", [True, False], ids=["packed", "unpadded"])
def test_time_major_equals_torch_with_its_default_layout(packed):
    """PyTorch's `nn.LSTM(F, H, 2, bidirectional=True)` as it is most often written: no
    `batch_first`, over `pack_padded_sequence` of a (T, B, F) batch, or over the tensor
    itself with every sequence T long (no lengths given on either side)."""
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    ref = torch.nn.LSTM(F, H, num_layers=2, bidirectional=True)
    lengths = np.array([7, 2, 1, 5], np.int32) if packed else None
    x = np.random.default_rng(2).standard_normal((T, B, F)).astype(np.float32)  # (T, B, F)
    with torch.no_grad():
        xt = torch.from_numpy(x)
        if packed:
            seq = torch.nn.utils.rnn.pack_padded_sequence(
                xt, torch.from_numpy(lengths.astype(np.int64)), enforce_sorted=False
            )
            out_p, (want_h, want_c) = ref(seq)
            want, _ = torch.nn.utils.rnn.pad_packed_sequence(out_p, total_length=T)
        else:
            want, (want_h, want_c) = ref(xt)
    sd = {k: v.detach().numpy() for k, v in ref.state_dict().items()}
    variables = lstm_params_from_torch(sd, num_layers=2, bidirectional=True)
    model = LSTM(H, 2, bidirectional=True, time_major=True)
    out, (h_n, c_n) = model.apply(variables, jnp.asarray(x), lengths)
    assert out.shape == (T, B, 2 * H)  # (T, B, D*H), zero past each length
    chex.assert_trees_all_close(
        (np.asarray(out), np.asarray(h_n), np.asarray(c_n)),
        (want.numpy(), want_h.numpy(), want_c.numpy()),
        rtol=1e-5,
        atol=1e-5,
    )


def test_bad_time_major_inputs_are_named_in_its_layout():
    model = LSTM(H, time_major=True)
    x = jnp.zeros((T, B, F))  # (T, B, F)
    with pytest.raises(ValueError, match=r"rank 3 \(time, batch, features\); got shape \(7, 4\)"):
        model.init(jax.random.key(0), x[:, :, 0], LENGTHS)
    with pytest.raises(ValueError, match=r"lengths must have shape \(4,\) to match the batch"):
        model.init(jax.random.key(0), x, LENGTHS[:3])  # B is the second axis here
    with pytest.raises(ValueError, match=r"lengths must lie in \[0, 7\]"):
        model.init(jax.random.key(0), x, np.array([8, 1, 1, 1], np.int32))

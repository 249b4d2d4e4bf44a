"""seqjax.layers.LSTM against a NumPy reference and, where installed, torch.nn.LSTM."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from seqjax.interop import lstm_params_from_torch, lstm_params_to_torch
from seqjax.layers import LSTM
from tests.lstm_reference import numpy_lstm, random_state_dict

CASES = [(1, False), (1, True), (2, False), (2, True), (3, True)]


def _inputs(rng, batch=3, max_len=6, features=4):
    x = rng.standard_normal((batch, max_len, features)).astype(np.float32)
    lengths = np.array([max_len, 2, 4][:batch], np.int32)
    return x, lengths


@pytest.mark.parametrize("num_layers,bidirectional", CASES)
@pytest.mark.parametrize("fused", [False, True])
def test_matches_numpy_reference(num_layers, bidirectional, fused):
    rng = np.random.default_rng(num_layers)
    x, lengths = _inputs(rng)
    sd = random_state_dict(rng, 4, 5, num_layers=num_layers, bidirectional=bidirectional)
    variables = lstm_params_from_torch(sd, num_layers=num_layers, bidirectional=bidirectional)
    model = LSTM(5, num_layers, bidirectional, fused_directions=fused)
    out, (h, c) = model.apply(variables, jnp.asarray(x), jnp.asarray(lengths))
    ref_out, (ref_h, ref_c) = numpy_lstm(
        x, lengths, sd, num_layers=num_layers, bidirectional=bidirectional
    )
    chex.assert_trees_all_close(
        (np.asarray(out), np.asarray(h), np.asarray(c)),
        (ref_out.astype(np.float32), ref_h.astype(np.float32), ref_c.astype(np.float32)),
        rtol=1e-5,
        atol=1e-5,
    )


def test_long_wide_input_matches_numpy_reference():
    """T = 70 with inputs wider than the hidden state: without a gradient the default
    projects them in chunks of 24 steps (both layers), under one all at once."""
    rng = np.random.default_rng(11)
    x, lengths = _inputs(rng, max_len=70, features=12)
    sd = random_state_dict(rng, 12, 5, num_layers=2, bidirectional=True)
    variables = lstm_params_from_torch(sd, num_layers=2, bidirectional=True)
    model = LSTM(5, 2, True)
    out, (h, c) = model.apply(variables, jnp.asarray(x), jnp.asarray(lengths))
    ref_out, (ref_h, ref_c) = numpy_lstm(x, lengths, sd, num_layers=2, bidirectional=True)
    chex.assert_trees_all_close(
        (np.asarray(out), np.asarray(h), np.asarray(c)),
        (ref_out.astype(np.float32), ref_h.astype(np.float32), ref_c.astype(np.float32)),
        rtol=1e-5,
        atol=1e-5,
    )


@pytest.mark.parametrize("num_layers,bidirectional", CASES)
def test_matches_torch_packed(num_layers, bidirectional):
    torch = pytest.importorskip("torch")
    torch.manual_seed(num_layers)
    ref = torch.nn.LSTM(4, 5, num_layers=num_layers, bidirectional=bidirectional, batch_first=True)
    x, lengths = _inputs(np.random.default_rng(7))
    packed = torch.nn.utils.rnn.pack_padded_sequence(
        torch.from_numpy(x),
        torch.from_numpy(lengths.astype(np.int64)),
        batch_first=True,
        enforce_sorted=False,
    )
    with torch.no_grad():
        out_p, (h_t, c_t) = ref(packed)
        out_t, _ = torch.nn.utils.rnn.pad_packed_sequence(out_p, batch_first=True, total_length=6)
    sd = {k: v.numpy() for k, v in ref.state_dict().items()}
    variables = lstm_params_from_torch(sd, num_layers=num_layers, bidirectional=bidirectional)
    out, (h, c) = LSTM(5, num_layers, bidirectional).apply(
        variables, jnp.asarray(x), jnp.asarray(lengths)
    )
    chex.assert_trees_all_close(
        (np.asarray(out), np.asarray(h), np.asarray(c)),
        (out_t.numpy(), h_t.numpy(), c_t.numpy()),
        rtol=1e-5,
        atol=1e-5,
    )


def test_without_lengths_matches_torch_on_a_plain_tensor():
    """`lengths` left out: every row runs all T steps, as `torch.nn.LSTM` does on a tensor
    that is not packed. T = 130 on a CPU would take 4 length groups with lengths given; left
    out, one group (nothing ends early), with the same values and gradients."""
    torch = pytest.importorskip("torch")
    torch.manual_seed(3)
    ref = torch.nn.LSTM(4, 5, num_layers=2, bidirectional=True, batch_first=True)
    x = np.random.default_rng(8).standard_normal((3, 130, 4)).astype(np.float32)
    with torch.no_grad():
        out_t, (h_t, c_t) = ref(torch.from_numpy(x))
    sd = {k: v.numpy() for k, v in ref.state_dict().items()}
    variables = lstm_params_from_torch(sd, num_layers=2, bidirectional=True)
    model = LSTM(5, 2, True)
    out, (h, c) = model.apply(variables, jnp.asarray(x))
    chex.assert_trees_all_close(
        (np.asarray(out), np.asarray(h), np.asarray(c)),
        (out_t.numpy(), h_t.numpy(), c_t.numpy()),
        rtol=1e-5,
        atol=1e-5,
    )
    full = jnp.full((3,), 130, jnp.int32)

    def loss(v, *lengths):
        out, (h, c) = model.apply(v, jnp.asarray(x), *lengths)
        return jnp.sum(out**2) + jnp.sum(h * c)

    chex.assert_trees_all_close(
        jax.grad(loss)(variables), jax.grad(loss)(variables, full), rtol=1e-5, atol=1e-6
    )
    groups = jax.make_jaxpr(lambda v, *n: model.apply(v, jnp.asarray(x), *n))
    # the sort that length groups start with appears only where lengths were given
    assert "sort" not in str(groups(variables)) and "sort" in str(groups(variables, full))


def test_without_biases_matches_torch_bias_false():
    """`LSTM(use_bias=False)` is `nn.LSTM(bias=False)`: the same parameters, none of them
    biases, and the same packed outputs; the weights go both ways by name."""
    torch = pytest.importorskip("torch")
    torch.manual_seed(5)
    ref = torch.nn.LSTM(4, 5, num_layers=2, bidirectional=True, batch_first=True, bias=False)
    x, lengths = _inputs(np.random.default_rng(9))
    packed = torch.nn.utils.rnn.pack_padded_sequence(
        torch.from_numpy(x), torch.from_numpy(lengths.astype(np.int64)), batch_first=True,
        enforce_sorted=False,
    )  # fmt: skip
    with torch.no_grad():
        out_p, (h_t, c_t) = ref(packed)
        out_t, _ = torch.nn.utils.rnn.pad_packed_sequence(out_p, batch_first=True, total_length=6)
    sd = {k: v.numpy() for k, v in ref.state_dict().items()}
    variables = lstm_params_from_torch(sd, num_layers=2, bidirectional=True, bias=False)
    model = LSTM(5, 2, True, use_bias=False)
    built = jax.jit(model.init)(jax.random.key(0), jnp.asarray(x), jnp.asarray(lengths))
    assert jax.tree.structure(built) == jax.tree.structure(variables)
    assert sum(np.size(p) for p in jax.tree.leaves(built)) == sum(
        p.numel() for p in ref.parameters()
    )
    out, (h, c) = model.apply(variables, jnp.asarray(x), jnp.asarray(lengths))
    chex.assert_trees_all_close(
        (np.asarray(out), np.asarray(h), np.asarray(c)),
        (out_t.numpy(), h_t.numpy(), c_t.numpy()),
        rtol=1e-5,
        atol=1e-5,
    )
    back = lstm_params_to_torch(variables)
    assert sorted(back) == sorted(sd)
    with pytest.raises(ValueError, match=r"bias=True, proj_size=0; missing \['bias_hh_l0', "):
        lstm_params_from_torch(sd, num_layers=2, bidirectional=True)


def test_parameter_count_matches_torch_layout():
    model = LSTM(7, num_layers=2, bidirectional=True)
    variables = jax.jit(model.init)(jax.random.key(0), jnp.zeros((1, 3, 4)), jnp.array([3]))
    count = sum(int(np.size(p)) for p in jax.tree.leaves(variables))
    # torch: per layer-direction 4H*(F + H) + 8H; layer 1 sees 2H inputs.
    expected = 2 * (4 * 7 * (4 + 7) + 8 * 7) + 2 * (4 * 7 * (14 + 7) + 8 * 7)
    assert count == expected


def test_export_round_trip():
    rng = np.random.default_rng(0)
    sd = random_state_dict(rng, 3, 2, num_layers=2, bidirectional=True)
    back = lstm_params_to_torch(lstm_params_from_torch(sd, num_layers=2, bidirectional=True))
    assert set(back) == set(sd)
    for k in sd:
        np.testing.assert_array_equal(back[k], sd[k])


def test_import_rejects_missing_extra_and_misshaped():
    sd = random_state_dict(np.random.default_rng(0), 3, 2, num_layers=1, bidirectional=False)
    with pytest.raises(ValueError, match=r"missing \['bias_hh_l0'\]"):
        lstm_params_from_torch(
            {k: v for k, v in sd.items() if k != "bias_hh_l0"}, num_layers=1, bidirectional=False
        )
    with pytest.raises(ValueError, match=r"unexpected \['weight_ih_l1'\]"):
        lstm_params_from_torch(
            {**sd, "weight_ih_l1": sd["weight_ih_l0"]}, num_layers=1, bidirectional=False
        )
    with pytest.raises(ValueError, match=r"bias_ih_l0 must have shape \(8,\)"):
        lstm_params_from_torch(
            {**sd, "bias_ih_l0": np.zeros(5, np.float32)}, num_layers=1, bidirectional=False
        )

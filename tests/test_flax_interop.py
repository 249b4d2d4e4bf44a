"""Stock Flax LSTM stacks (`nn.RNN` of `nn.OptimizedLSTMCell` or `nn.LSTMCell`, in
`nn.Bidirectional` pairs: the side-by-side benchmark's `FlaxStack`) converted to seqjax's
`LSTM` compute the same outputs and final states on variable-length batches, and convert
back exactly."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from benchmarks.side_by_side import FlaxStack
from seqjax.flax_interop import lstm_params_from_flax_cells, lstm_params_to_flax_cells
from seqjax.layers import LSTM

B, T, F, H = 3, 7, 4, 5
LENGTHS = np.array([7, 2, 5], np.int32)


def _cells(params, layers: int, bi: bool, cell: type = nn.OptimizedLSTMCell) -> list:
    """The stack's cell parameters in PyTorch's order (each layer forward, then backward),
    which is the order the stack made its cells in: a cell made in a compact method and
    handed to nn.RNN is the method's module's, named by its class and a count."""
    return [params[f"{cell.__name__}_{k}"] for k in range(layers * (2 if bi else 1))]


def _valid(a):
    """Outputs (B, T, ...) with the steps past each length zeroed."""
    return np.where(np.arange(T)[None, :, None] < LENGTHS[:, None, None], np.asarray(a), 0.0)


@pytest.mark.parametrize(
    "layers,bi,cell",
    [(2, True, nn.OptimizedLSTMCell), (1, False, nn.LSTMCell), (2, False, nn.OptimizedLSTMCell)],
)
def test_a_flax_stack_converts_to_the_same_function(layers, bi, cell):
    x = np.random.default_rng(0).standard_normal((B, T, F)).astype(np.float32)
    stack = FlaxStack((H,), layers, bi, cell)
    flax_params = jax.jit(stack.init)(jax.random.key(1), x, LENGTHS)["params"]
    want = stack.apply({"params": flax_params}, x, LENGTHS)  # (B, T, D*H)
    cells = _cells(flax_params, layers, bi, cell)
    variables = lstm_params_from_flax_cells(cells, num_layers=layers, bidirectional=bi)
    out, (h_n, c_n) = LSTM(H, layers, bidirectional=bi).apply(variables, x, LENGTHS)
    np.testing.assert_allclose(np.asarray(out), _valid(want), atol=1e-5)
    if not bi:  # the last layer's final carry, (c, h) in Flax, at each sequence's length
        below = FlaxStack((H,), layers - 1, bi, cell)
        below_params = {f"{cell.__name__}_{k}": cells[k] for k in range(layers - 1)}
        inputs = below.apply({"params": below_params}, x, LENGTHS) if layers > 1 else x
        top = nn.RNN(cell(H), return_carry=True)
        (c_last, h_last), _ = top.apply(
            {"params": {"cell": cells[-1]}}, inputs, seq_lengths=LENGTHS
        )
        np.testing.assert_allclose(np.asarray(h_n[-1]), np.asarray(h_last), atol=1e-5)
        np.testing.assert_allclose(np.asarray(c_n[-1]), np.asarray(c_last), atol=1e-5)
    # the other way from seqjax's own initialisation, whose two biases are both drawn
    own = jax.jit(LSTM(H, layers, bidirectional=bi).init)(jax.random.key(2), x, LENGTHS)
    out, _ = LSTM(H, layers, bidirectional=bi).apply(own, x, LENGTHS)
    as_flax = {f"{cell.__name__}_{k}": c for k, c in enumerate(lstm_params_to_flax_cells(own))}
    np.testing.assert_allclose(
        _valid(stack.apply({"params": as_flax}, x, LENGTHS)), np.asarray(out), atol=1e-5
    )
    back = lstm_params_to_flax_cells(variables)
    assert len(back) == len(cells)
    pairs = zip(jax.tree.leaves(back), jax.tree.leaves(cells), strict=True)
    assert all(np.array_equal(a, b) for a, b in pairs)


def test_a_bidirectional_layers_own_subtrees_convert():
    """An `nn.Bidirectional` whose cells are its RNNs' own (made unbound, outside a compact
    method) keeps them under `forward_rnn/cell` and `backward_rnn/cell`: those subtrees
    convert as they are."""
    x = np.random.default_rng(3).standard_normal((B, T, F)).astype(np.float32)
    layer = nn.Bidirectional(nn.RNN(nn.OptimizedLSTMCell(H)), nn.RNN(nn.OptimizedLSTMCell(H)))
    params = jax.jit(layer.init)(jax.random.key(4), x, seq_lengths=LENGTHS)["params"]
    assert set(params) == {"forward_rnn", "backward_rnn"} and "cell" in params["forward_rnn"]
    want = layer.apply({"params": params}, x, seq_lengths=LENGTHS)
    cells = [params["forward_rnn"], params["backward_rnn"]]
    variables = lstm_params_from_flax_cells(cells, num_layers=1, bidirectional=True)
    out, _ = LSTM(H, bidirectional=True).apply(variables, x, LENGTHS)
    np.testing.assert_allclose(np.asarray(out), _valid(want), atol=1e-5)


def test_bad_cells_and_projections_are_named():
    x = np.zeros((B, T, F), np.float32)
    params = jax.jit(FlaxStack((H,), 2, True).init)(jax.random.key(0), x, LENGTHS)["params"]
    cells = _cells(params, 2, True)
    with pytest.raises(ValueError, match="need 4 cells; got 3"):
        lstm_params_from_flax_cells(cells[:3], num_layers=2, bidirectional=True)
    broken = [*cells[:2], {k: v for k, v in cells[2].items() if k != "hf"}]
    with pytest.raises(ValueError, match=r"cell 2 is not .*missing \['hf'\]"):
        lstm_params_from_flax_cells([*broken, cells[3]], num_layers=2, bidirectional=True)
    # a second layer that reads H inputs, not the 2H a bidirectional first layer gives
    narrow = jax.jit(FlaxStack((H,), 1, False).init)(
        jax.random.key(0), np.zeros((B, T, H)), LENGTHS
    )
    wrong = [*cells[:2], narrow["params"]["OptimizedLSTMCell_0"], cells[3]]
    with pytest.raises(ValueError, match=r"cell 2 \(layer 1\) has input kernels .*\(10, 5\)"):
        lstm_params_from_flax_cells(wrong, num_layers=2, bidirectional=True)
    projected = jax.jit(LSTM(H, proj_size=2).init)(jax.random.key(0), jnp.zeros((B, T, F)), LENGTHS)
    with pytest.raises(ValueError, match="l0 has a projection"):
        lstm_params_to_flax_cells(projected)

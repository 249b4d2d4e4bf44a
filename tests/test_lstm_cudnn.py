"""The cuDNN backend: its weight layout everywhere, its numerics where a CUDA GPU exists.

On CPU the packing is checked against `jax.experimental.rnn`'s own reference LSTM
(`lstm_ref`, which reads the flat cuDNN layout); the cuDNN kernel itself only runs, and is
only tested, on an NVIDIA GPU; elsewhere those tests are skipped, never imitated.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.experimental import rnn

from seqjax.layers import LSTM
from seqjax.layers.cudnn import cudnn_available, pack_weights
from tests.test_lstm_streaming import chunks_equal_the_whole, empty_rows_pass_their_state_through

RNG = np.random.default_rng(0)
F, H = 4, 6
X = RNG.standard_normal((5, 9, F)).astype(np.float32)  # (B, T, F)
LENGTHS = np.array([9, 3, 7, 1, 5], np.int32)
needs_cuda = pytest.mark.skipif(not cudnn_available(), reason="no NVIDIA GPU under CUDA")


def _layers(params, num_layers, dirs):
    return [
        [params[f"l{k}" + ("_reverse" if d else "")] for d in range(dirs)]
        for k in range(num_layers)
    ]


@pytest.mark.parametrize("num_layers,bidirectional", [(1, False), (2, True)])
def test_packed_weights_drive_jax_reference_to_our_outputs(num_layers, bidirectional):
    dirs = 2 if bidirectional else 1
    model = LSTM(H, num_layers, bidirectional, backend="scan")
    variables = model.init(jax.random.key(1), X, LENGTHS)
    flat = pack_weights(_layers(variables["params"], num_layers, dirs))
    assert flat.shape == (rnn.get_num_params_in_lstm(F, H, num_layers, bidirectional),)
    w_ih, w_hh, b_ih, b_hh = rnn.unpack_lstm_weights(flat, F, H, num_layers, bidirectional)
    zeros = jnp.zeros((num_layers * dirs, len(X), H))
    y_ref, h_ref, c_ref = rnn.lstm_ref(
        jnp.asarray(X), zeros, zeros, w_ih, w_hh, b_ih, b_hh, jnp.asarray(LENGTHS),
        F, H, num_layers, 0.0, bidirectional,
    )  # fmt: skip
    y, (h, c) = model.apply(variables, X, LENGTHS)
    np.testing.assert_allclose(np.asarray(y), np.asarray(y_ref), atol=1e-5)
    np.testing.assert_allclose(np.asarray(h), np.asarray(h_ref), atol=1e-5)
    np.testing.assert_allclose(np.asarray(c), np.asarray(c_ref), atol=1e-5)


@pytest.mark.skipif(cudnn_available(), reason="checks the CPU/TPU behaviour")
def test_without_cuda_auto_is_the_scan_and_cudnn_says_why():
    variables = LSTM(H, backend="scan").init(jax.random.key(0), X, LENGTHS)
    auto = LSTM(H).apply(variables, X, LENGTHS)
    scan = LSTM(H, backend="scan").apply(variables, X, LENGTHS)
    np.testing.assert_array_equal(np.asarray(auto[0]), np.asarray(scan[0]))
    with pytest.raises(ValueError, match="backend='cudnn' cannot run here: it needs an NVIDIA"):
        LSTM(H, backend="cudnn").apply(variables, X, LENGTHS)


def test_unknown_backend_and_bfloat16_are_named():
    choices = "'auto', 'scan', 'cudnn', 'pallas'"
    with pytest.raises(ValueError, match=f"backend must be one of {choices}; got 'fast'"):
        LSTM(H, backend="fast").init(jax.random.key(0), X, LENGTHS)
    with pytest.raises(ValueError, match="float32 only"):
        LSTM(H, backend="cudnn", dtype=jnp.bfloat16).init(jax.random.key(0), X, LENGTHS)


def _loss(model, variables, x, train=False):
    y, (h, c) = model.apply(variables, x, LENGTHS, train=train, rngs={"dropout": jax.random.key(3)})
    return jnp.sum(y**2) + jnp.sum(h * c), y


@needs_cuda
@pytest.mark.parametrize("train", [False, True])  # True: train mode; one layer, so no dropout
def test_cudnn_equals_the_scan_on_variable_length_bidirectional_input(train):
    layers, dropout = (1, 0.3) if train else (2, 0.0)
    scan = LSTM(H, num_layers=layers, bidirectional=True, dropout=dropout, backend="scan")
    cudnn = LSTM(H, num_layers=layers, bidirectional=True, dropout=dropout, backend="cudnn")
    variables = scan.init(jax.random.key(1), X, LENGTHS)
    garbage = X.copy()
    garbage[np.arange(9)[None, :] >= LENGTHS[:, None]] = 1e6  # padding must not matter
    results = []
    for model, x in ((scan, X), (cudnn, garbage)):
        fn = jax.jit(jax.value_and_grad(lambda v, x, m=model: _loss(m, v, x, train), has_aux=True))
        with jax.default_matmul_precision("highest"):  # the GPU default rounds to TF32
            results.append(fn(variables, x))
    ((v_s, y_s), g_s), ((v_c, y_c), g_c) = results
    np.testing.assert_allclose(np.asarray(y_c), np.asarray(y_s), atol=1e-5)
    np.testing.assert_allclose(float(v_c), float(v_s), rtol=1e-5)
    for a, b in zip(jax.tree.leaves(g_c), jax.tree.leaves(g_s), strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-5, rtol=1e-4)
    assert np.all(np.asarray(y_c)[np.arange(9)[None, :] >= LENGTHS[:, None]] == 0.0)


@needs_cuda
def test_auto_keeps_the_scan_on_cuda():  # measured faster there; cuDNN is opt-in
    model = LSTM(H, bidirectional=True)
    variables = model.init(jax.random.key(1), X, LENGTHS)
    text = jax.jit(lambda v: model.apply(v, X, LENGTHS)).lower(variables).as_text()
    assert "cudnn" not in text.lower()


def test_cudnn_names_dropout_between_layers_in_training():
    model = LSTM(H, num_layers=2, dropout=0.2, backend="cudnn")
    variables = LSTM(H, num_layers=2, backend="scan").init(jax.random.key(0), X, LENGTHS)
    with pytest.raises(ValueError, match="dropout between layers in training needs the scan"):
        model.apply(variables, X, LENGTHS, train=True, rngs={"dropout": jax.random.key(1)})


@needs_cuda
def test_cudnn_streams_chunks_and_keeps_an_empty_streams_state():
    """tests/test_lstm_streaming.py's checks on cuDNN: a row of length 0 must not reach
    cuDNN as an empty sequence, and its state and gradients pass through exactly."""
    chunks_equal_the_whole(atol=1e-5, backend="cudnn")  # cuDNN against itself; it may
    empty_rows_pass_their_state_through(backend="cudnn")  # pick kernels per shape

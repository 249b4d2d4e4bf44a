"""Hypothesis-generated shapes and lengths for the LSTM layer and the Batch constructor."""

import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from seqjax.data.batch import make_batch
from seqjax.interop import lstm_params_from_torch
from seqjax.layers import LSTM
from tests.lstm_reference import numpy_lstm, random_state_dict


@st.composite
def sequences(draw, min_length=1):
    batch = draw(st.integers(1, 4))
    max_len = draw(st.integers(1, 7))
    features = draw(st.integers(1, 4))
    lengths = draw(st.lists(st.integers(min_length, max_len), min_size=batch, max_size=batch))
    seed = draw(st.integers(0, 2**16))
    return batch, max_len, features, np.asarray(lengths, np.int32), seed


@settings(max_examples=12, deadline=None)
@given(sequences(min_length=0), st.integers(1, 4), st.integers(1, 2), st.booleans(), st.booleans())
def test_layer_matches_the_reference_on_any_shape(seq, hidden, layers, bidirectional, state):
    """Lengths from 0 (a stream with nothing new: its state passes through), with or
    without an initial state."""
    batch, max_len, features, lengths, seed = seq
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch, max_len, features)).astype(np.float32)
    sd = random_state_dict(rng, features, hidden, num_layers=layers, bidirectional=bidirectional)
    v = lstm_params_from_torch(sd, num_layers=layers, bidirectional=bidirectional)
    shape = (layers * (1 + bidirectional), batch, hidden)
    initial = tuple(rng.standard_normal((2, *shape)).astype(np.float32)) if state else None
    out, (h, c) = LSTM(hidden, layers, bidirectional).apply(
        v, jnp.asarray(x), jnp.asarray(lengths), initial_state=initial
    )
    ref, (ref_h, ref_c) = numpy_lstm(
        x, lengths, sd, num_layers=layers, bidirectional=bidirectional, initial_state=initial
    )
    np.testing.assert_allclose(np.asarray(out), ref, atol=1e-5)
    np.testing.assert_allclose(np.asarray(h), ref_h, atol=1e-5)
    np.testing.assert_allclose(np.asarray(c), ref_c, atol=1e-5)
    past = np.arange(max_len)[None, :] >= lengths[:, None]
    assert np.all(np.asarray(out)[past] == 0.0)


@settings(max_examples=50, deadline=None)
@given(sequences(), st.integers(-3, 10))
def test_batch_accepts_exactly_the_valid_lengths(seq, bad):
    batch, max_len, features, lengths, _ = seq
    x = np.zeros((batch, max_len, features), np.float32)
    b = make_batch(x, lengths, np.zeros(batch))
    assert b.lengths.dtype == np.int32 and b.weights.shape == (batch,)
    broken = lengths.copy()
    broken[0] = bad
    if 1 <= bad <= max_len:
        make_batch(x, broken, np.zeros(batch))
    else:
        with pytest.raises(ValueError, match=rf"lengths must lie in \[1, {max_len}\]"):
            make_batch(x, broken, np.zeros(batch))

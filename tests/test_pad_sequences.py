"""`seqjax.data.pad_sequences` and `unpad_sequences` against PyTorch's `pad_sequence` and
`unpad_sequence`, and a list of sequences through them and the LSTM against PyTorch's LSTM
over `pack_sequence`."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from seqjax.data import pad_sequences, unpad_sequences
from seqjax.interop import lstm_params_from_torch
from seqjax.layers import LSTM

STEPS = [5, 1, 0, 7, 3]  # one empty sequence, as a stream with no steps yet


def _sequences(rng, feature_shape=(3,), dtype=np.float32):
    return [rng.standard_normal((t, *feature_shape)).astype(dtype) for t in STEPS]


@pytest.mark.parametrize("feature_shape", [(3,), (2, 3)])
def test_equals_torch_pad_sequence_and_keeps_the_lengths(feature_shape):
    torch = pytest.importorskip("torch")
    sequences = _sequences(np.random.default_rng(0), feature_shape)
    padded, lengths = pad_sequences(sequences, padding_value=-1.5)
    want = torch.nn.utils.rnn.pad_sequence(
        [torch.from_numpy(s) for s in sequences], batch_first=True, padding_value=-1.5
    )
    np.testing.assert_array_equal(padded, want.numpy())
    assert padded.dtype == np.float32 and padded.shape == (5, 7, *feature_shape)
    np.testing.assert_array_equal(lengths, STEPS)
    assert lengths.dtype == np.int32
    longer, same = pad_sequences(sequences, length=10)  # one T for every batch
    assert longer.shape == (5, 10, *feature_shape) and not longer[:, 7:].any()
    np.testing.assert_array_equal(longer[:, :7], pad_sequences(sequences)[0])
    np.testing.assert_array_equal(same, STEPS)
    back = unpad_sequences(longer, same)  # the sequences as they were, as PyTorch unpads
    unpadded = torch.nn.utils.rnn.unpad_sequence(want, torch.tensor(STEPS), batch_first=True)
    assert len(back) == len(sequences) == len(unpadded)
    for got, original, theirs in zip(back, sequences, unpadded, strict=True):
        np.testing.assert_array_equal(got, original)
        np.testing.assert_array_equal(got, theirs.numpy())


def test_dtypes_follow_the_sequences_unless_given():
    rng = np.random.default_rng(1)
    assert pad_sequences([np.ones((2, 1), np.int8), np.ones((1, 1), np.int64)])[0].dtype == (
        np.int64
    )
    mixed = [rng.standard_normal((2, 3)), rng.standard_normal((4, 3)).astype(np.float32)]
    assert pad_sequences(mixed)[0].dtype == np.float64
    padded, _ = pad_sequences(mixed, dtype=jnp.float32)
    assert padded.dtype == np.float32
    np.testing.assert_array_equal(padded[0, :2], mixed[0].astype(np.float32))
    # jax arrays and nested lists are sequences too
    padded, lengths = pad_sequences([jnp.ones((2, 3)), [[1.0, 2.0, 3.0]]])
    assert padded.shape == (2, 2, 3) and lengths.tolist() == [2, 1]


def test_a_list_through_the_lstm_equals_torch_over_pack_sequence():
    """The pair the padding returns is what the layer takes: two bidirectional layers over
    it give PyTorch's outputs, h_n and c_n over the packed list, within 1e-5."""
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    sequences = _sequences(np.random.default_rng(2))
    kept = [s for s in sequences if len(s)]  # PyTorch packs no empty sequence
    ref = torch.nn.LSTM(3, 4, num_layers=2, bidirectional=True, batch_first=True)
    packed = torch.nn.utils.rnn.pack_sequence(
        [torch.from_numpy(s) for s in kept], enforce_sorted=False
    )
    with torch.no_grad():
        out_p, (h_t, c_t) = ref(packed)
        out_t, _ = torch.nn.utils.rnn.pad_packed_sequence(out_p, batch_first=True)
    sd = {k: v.numpy() for k, v in ref.state_dict().items()}
    variables = lstm_params_from_torch(sd, num_layers=2, bidirectional=True)
    padded, lengths = pad_sequences(sequences)  # (5, 7, 3), (5,)
    out, (h, c) = jax.jit(LSTM(4, 2, bidirectional=True).apply)(variables, padded, lengths)
    rows = [i for i, t in enumerate(STEPS) if t]
    np.testing.assert_allclose(np.asarray(out)[rows], out_t.numpy(), atol=1e-5)
    per_sequence = unpad_sequences(out, lengths)  # (T_i, 2H) each
    assert [len(o) for o in per_sequence] == STEPS
    for i, want in zip(rows, torch.nn.utils.rnn.unpack_sequence(out_p), strict=True):
        np.testing.assert_allclose(per_sequence[i], want.numpy(), atol=1e-5)
    np.testing.assert_allclose(np.asarray(h)[:, rows], h_t.numpy(), atol=1e-5)
    np.testing.assert_allclose(np.asarray(c)[:, rows], c_t.numpy(), atol=1e-5)
    empty = STEPS.index(0)  # no steps: zero outputs, and the zero initial state
    assert not np.asarray(out)[empty].any() and not np.asarray(h)[:, empty].any()


@pytest.mark.parametrize(
    "sequences,kwargs,error,match",
    [
        (
            np.zeros((2, 3, 1)),
            {},
            TypeError,
            r"a list or tuple of \(T_i, \*F\) arrays; got ndarray",
        ),
        ([], {}, ValueError, "need at least one sequence; got none"),
        ([np.zeros((2, 1)), np.float32(1.0)], {}, ValueError, "sequence 1 has no time axis"),
        (
            [np.zeros((2, 3)), np.zeros((4, 2))],
            {},
            ValueError,
            r"sequence 1 has shape \(4, 2\), but sequence 0 has features of shape \(3,\)",
        ),
        (
            [np.zeros((2, 3)), np.zeros((6, 3))],
            {"length": 5},
            ValueError,
            r"length 5 is shorter than the longest sequence \(sequence 1, 6 steps\)",
        ),
    ],
    ids=["an_array", "empty", "scalar", "features", "length"],
)
def test_bad_input_is_named(sequences, kwargs, error, match):
    with pytest.raises(error, match=match):
        pad_sequences(sequences, **kwargs)


@pytest.mark.parametrize(
    "padded,lengths,match",
    [
        (np.zeros(3), [1, 2, 3], r"padded must have shape \(N, T, ...\); got shape \(3,\)"),
        (np.zeros((2, 4, 1)), [1, 2, 3], r"lengths must be integers of shape \(2,\); got int64"),
        (np.zeros((2, 4, 1)), [1.0, 2.0], r"lengths must be integers of shape \(2,\); got float64"),
        (np.zeros((2, 4, 1)), [5, 2], r"lengths must lie in \[0, 4\] .* got min 2, max 5"),
    ],
    ids=["rank_1", "another_batch", "float", "past_T"],
)
def test_bad_unpadding_is_named(padded, lengths, match):
    with pytest.raises(ValueError, match=match):
        unpad_sequences(padded, np.asarray(lengths))

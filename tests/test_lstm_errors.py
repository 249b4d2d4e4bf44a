"""Each bad input gets a clear error before any compute."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from seqjax.layers import LSTM

MODEL = LSTM(4, num_layers=1)
VARIABLES = jax.jit(MODEL.init)(jax.random.key(0), jnp.zeros((2, 3, 5)), jnp.array([3, 2]))
X = jnp.zeros((2, 3, 5))
LENGTHS = jnp.array([3, 2])

CASES = [
    ("rank 2 inputs", jnp.zeros((2, 3)), LENGTHS, ValueError, r"rank 3 .* got shape \(2, 3\)"),
    ("rank 4 inputs", jnp.zeros((2, 3, 5, 1)), LENGTHS, ValueError, r"rank 3"),
    ("integer inputs", jnp.zeros((2, 3, 5), jnp.int32), LENGTHS, TypeError, r"floating dtype"),
    (
        "wrong features",
        jnp.zeros((2, 3, 6)),
        LENGTHS,
        ValueError,
        r"6 features but the parameters were built for 5",
    ),
    ("length < 0", X, jnp.array([3, -1]), ValueError, r"lengths must lie in \[0, 3\].*min -1"),
    ("length > T", X, jnp.array([4, 2]), ValueError, r"lengths must lie in \[0, 3\].*max 4"),
    ("lengths (B, 1)", X, jnp.array([[3], [2]]), ValueError, r"lengths must have shape \(2,\)"),
    (
        "lengths for another batch",
        X,
        jnp.array([3, 2, 1]),
        ValueError,
        r"lengths must have shape \(2,\).*\(3,\)",
    ),
    ("float lengths", X, jnp.array([3.0, 2.0]), TypeError, r"lengths must be an integer dtype"),
    ("lengths a list", X, [3, 2], TypeError, r"lengths must be an array .* got list"),
    (
        "inputs a list",
        np.zeros((2, 3, 5)).tolist(),
        LENGTHS,
        TypeError,
        r"an array .* got list \(a list of sequences .* pads with seqjax.data.pad_sequences",
    ),
]


@pytest.mark.parametrize("name,x,lengths,error,message", CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_named(name, x, lengths, error, message):
    with pytest.raises(error, match=message):
        MODEL.apply(VARIABLES, x, lengths)


def test_value_checks_also_hold_under_jit_shapes():
    """Under jit only trace-time checks can run; shape and dtype errors still fire."""
    with pytest.raises(ValueError, match="built for 5"):
        jax.jit(lambda v, x, n: MODEL.apply(v, x, n))(VARIABLES, jnp.zeros((2, 3, 6)), LENGTHS)


def test_bad_settings_are_named():
    with pytest.raises(ValueError, match=r"dropout must lie in \[0, 1\); got 1.5"):
        LSTM(4, dropout=1.5).init(jax.random.key(0), X, LENGTHS)
    with pytest.raises(ValueError, match="unroll must be >= 1; got 0"):
        LSTM(4, unroll=0).init(jax.random.key(0), X, LENGTHS)
    with pytest.raises(ValueError, match="initial_state parts must have shape"):
        MODEL.apply(VARIABLES, X, LENGTHS, initial_state=(np.zeros((1, 2, 3)),) * 2)
    with pytest.raises(ValueError, match="precision must be None, one of 'default'.*got 'max'"):
        LSTM(4, precision="max").init(jax.random.key(0), X, LENGTHS)
    with pytest.raises(ValueError, match="precision sets the scan's dots.*pallas_precision"):
        LSTM(16, backend="pallas", pallas_interpret=True, precision="highest").init(
            jax.random.key(0), X, LENGTHS
        )

"""seqjax's Dropout is Linen's on one device: the same key gives the same mask, for every
rate and broadcast. (Its reason to exist, a mask split as the input is on an explicit
mesh, is tests/test_lstm_explicit_mesh.py's.)"""

import flax.linen as nn
import jax
import numpy as np
import pytest

from seqjax.layers.dropout import Dropout


@pytest.mark.parametrize("rate", [0.0, 0.3, 1.0])
@pytest.mark.parametrize("broadcast_dims", [(), (1,)])
def test_the_same_key_drops_what_linens_dropout_drops(rate, broadcast_dims):
    x = jax.random.normal(jax.random.key(0), (4, 6, 5))  # (B, T, F)
    rngs = {"dropout": jax.random.key(1)}
    ours = Dropout(rate, broadcast_dims=broadcast_dims).apply({}, x, False, rngs=rngs)
    linen = nn.Dropout(rate, broadcast_dims=broadcast_dims).apply({}, x, False, rngs=rngs)
    np.testing.assert_array_equal(ours, linen)
    assert Dropout(rate).apply({}, x, True) is x  # deterministic: the input itself

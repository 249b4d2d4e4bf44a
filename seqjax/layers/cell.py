"""`LSTMCell`: one step of `seqjax.layers.LSTM`, in Flax's cell API.

Why a cell beside the layer: decoders, autoregressive forecasts and beam searches feed
each step's output back in, so the sequence is not there to hand to a layer, and code
ported from PyTorch writes them with `nn.LSTMCell`. Its parameters are exactly those of a
one-layer `LSTM(H)` (`{"l0": {kernel_ih, kernel_hh, bias_ih, bias_hh}}`), so a layer
trained over whole sequences (teacher forcing) generates step by step with its own
variables, and a layer's parameters and a cell's load from PyTorch alike
(`seqjax.interop.lstm_cell_params_from_torch` reads an `nn.LSTMCell`'s). The step is the
layer's (`seqjax/layers/recurrence.py`: PyTorch's gate order and two biases, one tanh
over all four gates), differentiated by JAX; it does not mask: `nn.RNN(LSTMCell(H))`
with `seq_lengths` keeps each sequence's state past its length, as Flax's cells do.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from seqjax.layers.lstm import Initializer, LSTMWeights, built_features
from seqjax.layers.lstm_choices import check_precision, matmul_precision
from seqjax.layers.recurrence import carry_dtype, lstm_step
from seqjax.suggest import names_unknown_options

Carry = tuple[jax.Array, jax.Array]


@names_unknown_options
class LSTMCell(nn.RNNCellBase):
    """`(c, h), y = LSTMCell(H).apply(variables, (c, h), x)`: x (..., F) -> h = y (..., H).

    The carry is (c, h), Flax's order for its LSTM cells (`torch.nn.LSTMCell` returns
    (h, c)), float32 (float64 for a float64 `dtype`) whatever the matmuls' `dtype`, as in
    the layer; `initialize_carry(key, x.shape)` gives zeros. `precision` is its dots'
    float32 precision, forward and backward, as the layer's (None: JAX's default, which
    on a GPU may round to TF32). Works as the cell of `nn.RNN`, `nn.Bidirectional` and
    Flax's lifted `nn.scan`.
    """

    features: int  # H, Flax's name for it (`hidden_size` in PyTorch)
    use_bias: bool = True
    dtype: Any = jnp.float32
    param_dtype: Any = jnp.float32
    kernel_ih_init: Initializer | None = None
    kernel_hh_init: Initializer | None = None
    bias_init: Initializer | None = None
    precision: str | None = None  # the dots' float32 precision, as `LSTM(precision=...)`

    @nn.compact
    def __call__(self, carry: Carry, x: jax.Array) -> tuple[Carry, jax.Array]:
        if self.features < 1:
            raise ValueError(f"LSTMCell: features must be >= 1; got {self.features}")
        check_precision(self.precision, "LSTMCell")
        if not hasattr(x, "dtype") or not jnp.issubdtype(x.dtype, jnp.floating):
            what = getattr(x, "dtype", type(x).__name__)
            raise TypeError(f"LSTMCell: inputs must be a floating array (..., F); got {what}")
        if x.ndim < 1:
            raise ValueError(f"LSTMCell: inputs must have a feature axis; got shape {x.shape}")
        if not isinstance(carry, tuple | list) or len(carry) != 2:
            raise ValueError(f"LSTMCell: carry must be (c, h); got {type(carry).__name__}")
        c, h = carry
        state = (*x.shape[:-1], self.features)
        for name, part in (("c", c), ("h", h)):
            if getattr(part, "shape", None) != state:
                raise ValueError(
                    f"LSTMCell: carry {name} must have shape {state} for inputs of shape "
                    f"{x.shape}; got {getattr(part, 'shape', None)}"
                )
        built = built_features(self)
        if built is not None and built != x.shape[-1]:
            raise ValueError(
                f"LSTMCell: inputs have {x.shape[-1]} features but the parameters were "
                f"built for {built}"
            )
        w = LSTMWeights(
            x.shape[-1],
            self.features,
            self.kernel_ih_init,
            self.kernel_hh_init,
            self.bias_init,
            self.param_dtype,
            self.use_bias,
            name="l0",  # a one-layer LSTM's name, so the two share their variables
        )()
        acc = carry_dtype(self.dtype)
        bias = (w["bias_ih"] + w["bias_hh"]).astype(acc)  # (4H,)
        batch = x.reshape(-1, x.shape[-1]).astype(self.dtype)  # (N, F), N = prod(...)
        with matmul_precision(self.precision):  # autodiff's dots keep the forward's
            h_new, c_new = lstm_step(
                batch,
                h.reshape(-1, self.features).astype(acc),
                c.reshape(-1, self.features).astype(acc),
                w["kernel_ih"].astype(self.dtype),
                w["kernel_hh"].astype(self.dtype),
                bias,
            )  # (N, H) each
        h_new, c_new = h_new.reshape(state), c_new.reshape(state)
        return (c_new, h_new), h_new

    @nn.nowrap
    def initialize_carry(self, rng: jax.Array, input_shape: tuple[int, ...]) -> Carry:
        """Zeros (c, h), each (..., H) for inputs of shape (..., F); `rng` is unused."""
        del rng
        zeros = jnp.zeros((*input_shape[:-1], self.features), carry_dtype(self.dtype))
        return zeros, zeros

    @property
    def num_feature_axes(self) -> int:
        return 1

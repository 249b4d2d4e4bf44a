"""The `seqjax.layers.LSTM` options every system's config carries, in one base class, so a
new LSTM option reaches every system's YAML keys, checks and call by one edit here.

A system's config subclasses `LSTMOptions`; its `__post_init__` calls this one's first,
so a typo in `model.lstm_backend` fails when the YAML loads, not at the first step. The
options are keyword-only, so a config's own fields keep their positions
(`SteelConfig(5, 64)` is features 5, hidden 64) and come first wherever options are listed
(`seqjax.suggest.option_names`).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from seqjax.layers.lstm_choices import (
    check_backend,
    check_backward,
    check_compute_dtype,
    check_precision,
)
from seqjax.layers.pallas_lstm import LAYOUTS


@dataclasses.dataclass(frozen=True, kw_only=True)
class LSTMOptions:
    lstm_backend: str = "auto"  # auto | scan | cudnn | pallas: `seqjax.layers.LSTM` backend
    lstm_precision: str | None = None  # the scan's matmul precision, e.g. "highest"
    lstm_dtype: str = "float32"  # the LSTM's matmul dtype: float32 | bfloat16
    lstm_backward: str = "custom"  # custom | autodiff (forward mode: jax.jvp, jacfwd)
    lstm_fused_directions: bool | None = None  # None: one scan for both on GPU/TPU
    lstm_pallas_layout: str = "rows"  # rows | units: backend="pallas"'s kernels

    def __post_init__(self):
        # lstm_fused_directions (a bool or None) is checked by the config's loader
        check_backend(self.lstm_backend)
        if self.lstm_pallas_layout not in LAYOUTS:
            raise ValueError(
                f"LSTM: lstm_pallas_layout must be one of {list(LAYOUTS)}; "
                f"got {self.lstm_pallas_layout!r}"
            )
        check_precision(self.lstm_precision)
        check_compute_dtype(self.lstm_dtype)
        check_backward(self.lstm_backward, key="lstm_backward")

    def lstm_options(self) -> dict[str, Any]:
        """These options as `seqjax.layers.LSTM` keywords."""
        return {
            "backend": self.lstm_backend,
            "precision": self.lstm_precision,
            "dtype": self.lstm_dtype,
            "backward": self.lstm_backward,
            "fused_directions": self.lstm_fused_directions,
            "pallas_layout": self.lstm_pallas_layout,
        }

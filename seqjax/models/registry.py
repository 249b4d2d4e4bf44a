"""`build_model(name, **overrides)`: one place that maps a system name to its module.

Each model file registers its module class and its config dataclass; later systems
("steel", "hybrid", "trend") add themselves here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import flax.linen as nn
import jax
import numpy as np

from seqjax.models.baseline import BaselineConfig, LSTMRegressor
from seqjax.models.hybrid import HybridConfig, HybridSequenceModel
from seqjax.models.steel import SteelConfig, SteelDefectLSTM
from seqjax.models.trend import TrendConfig, TrendPredictor
from seqjax.models.trust import TrustConfig, TrustLSTM
from seqjax.suggest import did_you_mean, option_names

MODELS: dict[str, tuple[type[nn.Module], type]] = {
    "trust": (TrustLSTM, TrustConfig),
    "steel": (SteelDefectLSTM, SteelConfig),
    "trend": (TrendPredictor, TrendConfig),
    "hybrid": (HybridSequenceModel, HybridConfig),
    "lstm_baseline": (LSTMRegressor, BaselineConfig),
}


def model_config(name: str, overrides: Mapping[str, Any] | None = None):
    """The config dataclass of model `name` with `overrides` applied; unknown keys fail."""
    if name not in MODELS:
        raise ValueError(
            f"unknown model {name!r}{did_you_mean(name, MODELS)}; known models: {sorted(MODELS)}"
        )
    _, config_cls = MODELS[name]
    overrides = dict(overrides or {})
    valid = option_names(config_cls)
    unknown = sorted(set(overrides) - set(valid))
    if unknown:
        raise ValueError(
            f"unknown key(s) {unknown} for model {name!r}{did_you_mean(unknown[0], valid)}; "
            f"valid keys: {valid}"
        )
    return config_cls(**overrides)


def build_model(name: str, config=None, **overrides) -> nn.Module:
    """Build model `name` from a config dataclass, or its defaults plus keyword overrides."""
    if config is not None and overrides:
        raise ValueError("pass either config or keyword overrides, not both")
    if config is None:
        config = model_config(name, overrides)
    module_cls, _ = MODELS[name]
    return module_cls(config=config)


def count_params(variables) -> int:
    """Number of scalar parameters in `variables["params"]`."""
    return int(sum(np.prod(np.shape(p)) for p in jax.tree.leaves(variables["params"])))

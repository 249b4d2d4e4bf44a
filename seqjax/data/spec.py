"""`DataSpec`: what a run's model takes in and its task scores, saved with the run.

Predicting and exporting need the input shape (to build the state a checkpoint restores
into), the per-example target shape and dtype (the eval step that predictions come from
computes the task's loss too) and, for users' data, the scaler that turned raw channels
into model inputs, the names of its classes and its regression targets' statistics.
Reading them from data_spec.json keeps a run directory self-contained: `seqjax predict`
works on a machine that has the run but not the training data.
"""

from __future__ import annotations

import dataclasses
import json
import os

import numpy as np

from seqjax.data.dataset import SequenceDataset
from seqjax.data.splits import StandardScaler
from seqjax.io import atomic_write_json

SPEC_FILE = "data_spec.json"


@dataclasses.dataclass(frozen=True)
class DataSpec:
    steps: int  # T of the training inputs
    features: int  # F
    target_shape: tuple[int, ...]  # one example's
    target_dtype: str
    scaler: StandardScaler | None  # users' data: raw channels -> model inputs
    classes: tuple[str, ...] | None = None  # the class indices' names, where data named them
    target_scaler: StandardScaler | None = None  # users' regression targets: own units

    def channel_names(self) -> list[str]:
        """The input channels' names: a CSV's columns where the data had them, else
        channel_0, channel_1, ..."""
        if self.scaler is not None and self.scaler.names is not None:
            return list(self.scaler.names)
        return [f"channel_{i}" for i in range(self.features)]

    @classmethod
    def of(cls, data: SequenceDataset) -> DataSpec:
        targets = np.asarray(data.targets)
        return cls(
            steps=int(data.inputs.shape[1]),
            features=int(data.inputs.shape[2]),
            target_shape=tuple(int(d) for d in targets.shape[1:]),
            target_dtype=str(targets.dtype),
            scaler=data.scaler,
            classes=data.classes,
            target_scaler=data.target_scaler,
        )

    def placeholder_targets(self, n: int) -> np.ndarray:
        """Zeros of the task's target shape: the loss needs them, predictions ignore them."""
        return np.zeros((n, *self.target_shape), self.target_dtype)

    def sample(self) -> SequenceDataset:
        """One zero sequence of the training shape: enough to build a state to restore."""
        inputs = np.zeros((1, self.steps, self.features), np.float32)
        return SequenceDataset(
            inputs, np.full(1, self.steps, np.int32), self.placeholder_targets(1)
        )

    def to_json(self) -> dict:
        return {
            "steps": self.steps,
            "features": self.features,
            "target_shape": list(self.target_shape),
            "target_dtype": self.target_dtype,
            "scaler": None if self.scaler is None else self.scaler.to_json(),
            "classes": None if self.classes is None else list(self.classes),
            "target_scaler": None if self.target_scaler is None else self.target_scaler.to_json(),
        }

    @classmethod
    def from_json(cls, obj: dict) -> DataSpec:
        scaler, classes, targets = obj.get("scaler"), obj.get("classes"), obj.get("target_scaler")
        return cls(
            steps=int(obj["steps"]),
            features=int(obj["features"]),
            target_shape=tuple(obj["target_shape"]),
            target_dtype=str(obj["target_dtype"]),
            scaler=None if scaler is None else StandardScaler.from_json(scaler),
            classes=None if classes is None else tuple(classes),
            target_scaler=None if targets is None else StandardScaler.from_json(targets),
        )


def save_data_spec(run_dir: str, data: SequenceDataset) -> None:
    atomic_write_json(os.path.join(run_dir, SPEC_FILE), DataSpec.of(data).to_json())


def load_data_spec(run_dir: str) -> DataSpec | None:
    """The run's spec, or None for a run directory written before data_spec.json."""
    path = os.path.join(run_dir, SPEC_FILE)
    if not os.path.exists(path):
        return None
    try:
        with open(path, encoding="utf-8") as f:
            return DataSpec.from_json(json.load(f))
    except (KeyError, ValueError, TypeError, AttributeError) as err:  # JSON errors too
        raise ValueError(f"{path} is damaged ({type(err).__name__}: {err})") from None

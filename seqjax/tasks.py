"""A task ties a model's raw outputs to its loss, its predictions and its metrics, so the
training engine stays model-agnostic."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import jax
import numpy as np

from seqjax import losses, metrics


@dataclasses.dataclass(frozen=True)
class Task:
    loss: Callable  # (outputs, batch) -> scalar, weighted over the batch
    predict: Callable  # outputs -> predictions (e.g. probabilities)
    evaluate: Callable[[np.ndarray, np.ndarray], dict]  # (predictions, targets) -> metrics


TASKS = {
    "binary_cross_entropy": Task(
        loss=losses.binary_cross_entropy,
        predict=jax.nn.sigmoid,
        evaluate=metrics.binary_classification,
    ),
}


def get_task(loss_name: str) -> Task:
    if loss_name not in TASKS:
        raise ValueError(f"unknown loss {loss_name!r}; known losses: {sorted(TASKS)}")
    return TASKS[loss_name]

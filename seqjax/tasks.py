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


def _trend_predictions(outputs: dict) -> jax.Array:
    """(B, Hz, 4): the score and the three direction probabilities of each horizon."""
    probs = jax.nn.softmax(outputs["logits"], axis=-1)  # (B, Hz, 3)
    return jax.numpy.concatenate([outputs["score"][..., None], probs], axis=-1)


TASKS = {
    "binary_cross_entropy": Task(
        loss=losses.binary_cross_entropy,
        predict=jax.nn.sigmoid,
        evaluate=metrics.binary_classification,
    ),
    "cross_entropy": Task(
        loss=losses.cross_entropy,
        predict=lambda logits: jax.nn.softmax(logits, axis=-1),
        evaluate=metrics.multiclass_classification,
    ),
    "mse": Task(
        loss=losses.mean_squared_error,
        predict=lambda outputs: outputs,
        evaluate=metrics.multi_output_regression,
    ),
    **{
        name: Task(
            loss=losses.LOSSES[name], predict=_trend_predictions, evaluate=metrics.trend_forecast
        )
        for name in ("trend_multitask", "trend_volatility_aware")
    },
}


def get_task(loss_name: str) -> Task:
    if loss_name not in TASKS:
        raise ValueError(f"unknown loss {loss_name!r}; known losses: {sorted(TASKS)}")
    return TASKS[loss_name]

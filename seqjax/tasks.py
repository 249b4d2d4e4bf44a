"""A task ties a model's raw outputs to its loss, its predictions and its metrics, so the
training engine stays model-agnostic."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable

import jax
import numpy as np

from seqjax import losses, metrics
from seqjax.class_weights import WEIGHED_BY_CLASS


@dataclasses.dataclass(frozen=True)
class Task:
    loss: Callable  # (outputs, batch) -> scalar, weighted over the batch
    predict: Callable  # outputs -> predictions (e.g. probabilities)
    evaluate: Callable[[np.ndarray, np.ndarray], dict]  # (predictions, targets) -> metrics
    # one example's prediction shape -> a name per value in C order (the CSV's columns)
    columns: Callable[[tuple[int, ...]], list[str]]


def _named(prefix: str, scalar: str | None = None) -> Callable[[tuple[int, ...]], list[str]]:
    """Columns `scalar` for one value per example, else `prefix` + the value's index."""

    def columns(shape: tuple[int, ...]) -> list[str]:
        if shape == () and scalar is not None:
            return [scalar]
        return [prefix + "_".join(map(str, index)) for index in np.ndindex(*shape)]

    return columns


def horizon_names(count: int) -> list[str]:
    """The trend forecaster's horizons as its metrics name them: d7, d30; h0, h1, ... for
    another number of horizons."""
    return ["d7", "d30"] if count == 2 else [f"h{k}" for k in range(count)]


def _trend_columns(shape: tuple[int, ...]) -> list[str]:
    """d7_score, d7_p_down, d7_p_flat, d7_p_up, then d30_... (`horizon_names`)."""
    horizons, _ = shape
    values = ("score", "p_down", "p_flat", "p_up")
    return [f"{h}_{v}" for h in horizon_names(horizons) for v in values]


def _trend_predictions(outputs: dict) -> jax.Array:
    """(B, Hz, 4): the score and the three direction probabilities (down, flat, up: the
    classes of `losses.trend_class`) of each horizon."""
    probs = jax.nn.softmax(outputs["logits"], axis=-1)  # (B, Hz, 3)
    return jax.numpy.concatenate([outputs["score"][..., None], probs], axis=-1)


TASKS = {
    "binary_cross_entropy": Task(
        loss=losses.binary_cross_entropy,
        predict=jax.nn.sigmoid,
        evaluate=metrics.binary_classification,
        columns=_named("probability_", "probability"),
    ),
    "cross_entropy": Task(
        loss=losses.cross_entropy,
        predict=lambda logits: jax.nn.softmax(logits, axis=-1),
        evaluate=metrics.multiclass_classification,
        columns=_named("p_class_"),
    ),
    "mse": Task(
        loss=losses.mean_squared_error,
        predict=lambda outputs: outputs,
        evaluate=metrics.multi_output_regression,
        columns=_named("y", "y"),
    ),
    **{
        name: Task(
            loss=losses.LOSSES[name],
            predict=_trend_predictions,
            evaluate=metrics.trend_forecast,
            columns=_trend_columns,
        )
        for name in ("trend_multitask", "trend_volatility_aware")
    },
}


@functools.lru_cache(maxsize=32)
def get_task(
    loss_name: str, pos_weight: float = 1.0, class_weights: tuple[float, ...] | None = None
) -> Task:
    """The task of loss `loss_name`; with `pos_weight` (binary_cross_entropy only), its
    loss weighs positives that many times (`losses.binary_cross_entropy`); with
    `class_weights`, one weight per class (`losses.cross_entropy`). Cached, so one
    (loss, weights) is one Task object, and `compile_steps`'s cache, keyed by it, compiles
    its steps once."""
    if loss_name not in TASKS:
        raise ValueError(f"unknown loss {loss_name!r}; known losses: {sorted(TASKS)}")
    if pos_weight == 1.0 and class_weights is None:
        return TASKS[loss_name]
    if pos_weight != 1.0 and loss_name != "binary_cross_entropy":
        raise ValueError(
            f"pos_weight weighs the positives of loss binary_cross_entropy; loss "
            f"{loss_name!r} has none (got pos_weight {pos_weight})"
        )
    if class_weights is not None and loss_name not in WEIGHED_BY_CLASS:
        raise ValueError(
            f"class_weights weighs the classes of a classifier's loss {WEIGHED_BY_CLASS}; "
            f"loss {loss_name!r} has none (got class_weights {class_weights})"
        )
    options: dict = {"class_weights": class_weights} if class_weights else {}
    if pos_weight != 1.0:
        options["pos_weight"] = pos_weight
    weighted = functools.partial(losses.LOSSES[loss_name], **options)
    return dataclasses.replace(TASKS[loss_name], loss=weighted)


def prediction_columns(
    loss_name: str, shape: tuple[int, ...], classes: tuple[str, ...] | None = None
) -> list[str]:
    """The task's names for one example's predictions of `shape`; where the data named its
    classes, a classifier's probabilities are `p_<class>` (two classes: the probability
    of the second, index 1, in sorted order)."""
    if classes is not None and loss_name == "cross_entropy" and shape == (len(classes),):
        return [f"p_{c}" for c in classes]
    if classes is not None and loss_name == "binary_cross_entropy" and shape == ():
        return [f"p_{classes[-1]}"]
    return get_task(loss_name).columns(shape)

"""`train.class_weights`: a classifier's loss weighing each example by its class.

Checked at three moments, because each knows more: the YAML key at load (no JAX, no
data: its form and its loss), the number of weights once the model's classes are known
(a steel config switches to softmax over the data's classes), and "balanced" resolved
from the training split before a run writes its config.yaml, so that a resume, `evaluate`
and `predict` read the numbers the run trained with, not a rule to apply to other data.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

BALANCED = "balanced"
WEIGHED_BY_CLASS = ("binary_cross_entropy", "cross_entropy")  # the losses it applies to


def check_class_weights_option(value: Any, loss: str, pos_weight: float) -> None:
    """The key's form, at load: a list of positive weights or "balanced", for a
    classifier's loss, and not beside a `pos_weight`."""
    if value is None:
        return
    if isinstance(value, str):
        if value != BALANCED:
            raise ValueError(
                "train.class_weights must be a list of weights, one per class, or "
                f"'{BALANCED}'; got {value!r}"
            )
    elif len(value) < 2 or not all(w > 0 for w in value):
        raise ValueError(
            f"train.class_weights needs one weight > 0 per class (2 or more); got {list(value)}"
        )
    if loss not in WEIGHED_BY_CLASS:
        raise ValueError(
            f"train.class_weights weighs the classes of a classifier's loss "
            f"({', '.join(WEIGHED_BY_CLASS)}); train.loss {loss!r} has none"
        )
    if pos_weight != 1.0:
        raise ValueError(
            f"train.class_weights and train.pos_weight both weigh the classes; give one "
            f"(pos_weight W is class_weights [1, W]); got pos_weight {pos_weight}"
        )


def class_count(loss: str, prediction_shape: tuple[int, ...]) -> int:
    """The classes the loss tells apart: two for binary cross-entropy's one logit, K for
    softmax cross-entropy's predictions (K,)."""
    return 2 if loss == "binary_cross_entropy" else int(prediction_shape[-1])


def class_labels(loss: str, targets: np.ndarray) -> np.ndarray:
    """Each example's class index (N,): binary targets are 0/1 values, softmax's labels."""
    if loss == "binary_cross_entropy":
        return (np.asarray(targets) > 0.5).astype(np.int64)
    return np.asarray(targets).astype(np.int64)


def balanced_weights(loss: str, targets: np.ndarray, k: int) -> tuple[float, ...]:
    """n / (K * n_k) for each class k of the training split's N examples (scikit-learn's
    "balanced"): every class then carries the same total weight, and the weights' mean
    over the split's examples is 1, so the loss keeps its scale."""
    labels = class_labels(loss, targets)
    counts = np.bincount(labels, minlength=k)
    if (counts == 0).any():
        by_class = {c: int(n) for c, n in enumerate(counts)}
        raise ValueError(
            f"train.class_weights '{BALANCED}' weighs class k by n / (K * n_k) of the "
            f"training split, which has no example of class "
            f"{', '.join(str(c) for c in np.flatnonzero(counts == 0))} (its examples by "
            f"class: {by_class}); give the weights as a list, or give the split other "
            "examples (data.splits, data.seed)"
        )
    return tuple(float(len(labels) / (k * n)) for n in counts)


def resolve_class_weights(cfg, train_targets: np.ndarray, prediction_shape: tuple[int, ...]):
    """`cfg`, whose class weights are "balanced", with their numbers from the training
    split's targets (`seqjax.train.loop.with_class_weights` decides when)."""
    k = class_count(cfg.train.loss, prediction_shape)
    weights = balanced_weights(cfg.train.loss, train_targets, k)
    return dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, class_weights=weights))


def check_class_weights(train_cfg, prediction_shape: tuple[int, ...]) -> None:
    """As many weights as the model's loss has classes (a list only: "balanced" is
    resolved to as many)."""
    weights = train_cfg.class_weights
    if weights is None or weights == BALANCED:
        return
    k = class_count(train_cfg.loss, prediction_shape)
    if len(weights) != k:
        raise ValueError(
            f"train.class_weights has {len(weights)} weights, but the run's loss "
            f"{train_cfg.loss} tells {k} classes apart here; give {k}, one per class "
            "index 0..K-1 (or 'balanced')"
        )


def class_weights_note(weights: Any) -> str:
    """For a run's first line: the weights it trains with, "balanced" as its numbers."""
    if weights is None:
        return ""
    return "; class weights " + ", ".join(f"{w:.4g}" for w in weights)

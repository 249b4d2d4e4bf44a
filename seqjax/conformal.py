"""Prediction sets and intervals that hold the true answer at a stated rate, from the
validation split (split conformal prediction).

A probability says how sure the model is on average; a defect inspector or a forecaster
also asks, for this one sequence, which answers are still possible. Split conformal
prediction answers with a guarantee that needs no model assumption: score how wrong the
model is on each of the n validation sequences, take the ceil((n + 1) c)-th smallest
score q, and for a new sequence keep every answer that scores at most q. If the new
sequence and the validation split are exchangeable (drawn alike, in any order), the kept
answers hold the truth with probability at least c (and below c + 1 / (n + 1) where the
scores do not tie). An ordered (time) split is not exchangeable: later weeks may drift.

- Classes: the score is 1 - p(true class), so a sequence's set is every class whose
  probability is at least 1 - q (Sadinle et al. 2019's least-ambiguous sets: of all
  sets with the guarantee, the smallest on average where the probabilities are right),
  and its top class. A set of two classes says the model cannot tell them apart at that
  rate. Why the top class: where the model is right more often than C, those sets leave
  the least sure sequences empty to come down to C (steel_lightweight, 99.6% accurate,
  left 7.1% of its test split with no class at 0.9), which reads as "no answer" where
  it means "the least sure"; a set that holds more covers more, so the guarantee stays,
  as a floor: such a model covers about as often as it is right.
- Values (a regression's outputs, the trend forecaster's scores): the score is |target -
  prediction|, one q per value, so each interval is prediction +- q.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from seqjax.calibration import TREND_LOSSES, class_heads


@dataclasses.dataclass(frozen=True)
class Conformal:
    """The fitted thresholds of one run at one coverage."""

    coverage: float  # c: the rate at which a set or an interval holds the truth
    # per class head, per class: class k is in a set where p_k >= its threshold (one
    # threshold for all K, or each class's own with `by_class`)
    class_thresholds: tuple[tuple[float, ...], ...]
    halfwidths: tuple[float, ...]  # per value: the interval is prediction +- this
    calibration_size: int  # n, the validation sequences that fitted them
    by_class: bool = False  # each class's thresholds from its own validation sequences


def check_coverage(coverage: float) -> None:
    if not 0.0 < coverage < 1.0:
        raise ValueError(f"--coverage must lie strictly between 0 and 1; got {coverage}")


def conformal_quantile(
    scores: np.ndarray, coverage: float, *, of: str = "the validation split"
) -> float:
    """The ceil((n + 1) c)-th smallest of the n `scores`: the finite-sample quantile that
    makes the guarantee hold (the plain c-quantile falls short by up to 1 / n)."""
    check_coverage(coverage)
    n = len(scores)
    rank = math.ceil((n + 1) * coverage - 1e-9)  # (n + 1) c is often a whole number
    if rank > n:
        least = math.ceil(coverage / (1 - coverage) - 1e-9)
        raise ValueError(
            f"coverage {coverage} needs at least {least} validation sequences to take a "
            f"quantile from; {of} has {n}"
        )
    return float(np.sort(np.asarray(scores, np.float64))[rank - 1])


def _values(loss: str, predictions: np.ndarray, targets: np.ndarray | None) -> list[tuple]:
    """The task's predicted values as (prediction (N,), target (N,) or None): every output
    of a regression, each horizon's score of the trend forecaster, none for a classifier."""
    n = len(predictions)
    if loss in TREND_LOSSES:  # (N, Hz, 4) against (N, Hz, 2): score against trend
        return [
            (predictions[:, h, 0], None if targets is None else targets[:, h, 0])
            for h in range(predictions.shape[1])
        ]
    if loss == "mse":
        flat = predictions.reshape(n, -1)  # (N, M)
        truth = None if targets is None else np.asarray(targets).reshape(n, -1)
        return [(flat[:, j], None if truth is None else truth[:, j]) for j in range(flat.shape[1])]
    return []


def _heads(loss: str, predictions: np.ndarray, targets: np.ndarray | None) -> list[tuple]:
    """(probabilities (N, K), labels (N,) or None) of each class head; none for a
    regression."""
    if loss == "mse":
        return []
    return [(np.asarray(p, np.float64), y) for p, y, _ in class_heads(loss, predictions, targets)]


def fit(
    loss: str,
    predictions: np.ndarray,
    targets: np.ndarray,
    coverage: float,
    *,
    by_class: bool = False,
) -> Conformal:
    """The thresholds of task `loss` at `coverage`, from the validation split's
    `predictions` (N, ...) and `targets` (N, ...) in their units. With `by_class`, each
    class's threshold comes from the validation sequences of that class alone (Vovk's
    label-conditional, "Mondrian", conformal prediction), so that each class is covered
    at rate c, not only all of them together: a rare class (a defect) can fall well
    short of c while the common one makes up the average. Each class then needs
    c / (1 - c) validation sequences of its own."""
    predictions, targets = np.asarray(predictions), np.asarray(targets)
    thresholds = []
    for p, y in _heads(loss, predictions, targets):
        y = np.asarray(y).astype(int)
        scores = 1.0 - p[np.arange(len(y)), y]  # (N,): how unlikely the true class looked
        k = p.shape[-1]
        if not by_class:
            thresholds.append((1.0 - conformal_quantile(scores, coverage),) * k)
            continue
        per_class = []
        for c in range(k):
            of = f"class {c} of the validation split"
            per_class.append(1.0 - conformal_quantile(scores[y == c], coverage, of=of))
        thresholds.append(tuple(per_class))
    halfwidths = [
        conformal_quantile(np.abs(np.asarray(t, np.float64) - v), coverage)
        for v, t in _values(loss, predictions, targets)
    ]
    return Conformal(
        coverage, tuple(thresholds), tuple(halfwidths), len(predictions), by_class=by_class
    )


def sets_and_intervals(
    loss: str, predictions: np.ndarray, conformal: Conformal
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Each class head's sets (N, K) bool and each value's intervals (N, 2): low, high."""
    predictions = np.asarray(predictions)
    sets = []
    heads = _heads(loss, predictions, None)
    for (p, _), threshold in zip(heads, conformal.class_thresholds, strict=True):
        member = p >= np.asarray(threshold) - 1e-12  # a class exactly at its threshold is in
        member[np.arange(len(p)), p.argmax(-1)] = True  # and the top class always
        sets.append(member)
    values = _values(loss, predictions, None)
    intervals = [
        np.stack([v - width, v + width], -1)
        for (v, _), width in zip(values, conformal.halfwidths, strict=True)
    ]
    return sets, intervals


def _names(
    loss: str, predictions: np.ndarray, classes: tuple[str, ...] | None
) -> tuple[list[str], list[list[str]], list[str]]:
    """Each class head's key prefix ("" for a classifier's one head, "d7_" ...) and its
    classes' names (the data's where it named them), and each value's name (a
    regression's columns `y0`, ...; the trend forecaster's `d7_score`, ...)."""
    from seqjax.tasks import get_task, horizon_names

    if loss in TREND_LOSSES:
        horizons = horizon_names(predictions.shape[1])
        down_flat_up = ["down", "flat", "up"]
        return (
            [f"{h}_" for h in horizons],
            [down_flat_up] * len(horizons),
            [f"{h}_score" for h in horizons],
        )
    if loss == "mse":
        return [], [], get_task(loss).columns(predictions.shape[1:])
    k = 2 if loss == "binary_cross_entropy" else predictions.shape[-1]
    return [""], [list(classes) if classes else [str(c) for c in range(k)]], []


def columns(
    loss: str, predictions: np.ndarray, conformal: Conformal, classes: tuple[str, ...] | None
) -> tuple[list[str], np.ndarray, list[bool]]:
    """The columns `seqjax predict --coverage` adds, their values (N, M), and which of
    them are a set's 1 or 0: each class of each head (`set_<class>`, `d7_set_down`, ...),
    then each value's interval (`y0_lo`, `y0_hi`, `d7_score_lo`, ...)."""
    sets, intervals = sets_and_intervals(loss, predictions, conformal)
    prefixes, class_names, value_names = _names(loss, predictions, classes)
    names, values = [], []
    for prefix, labels, member in zip(prefixes, class_names, sets, strict=True):
        names += [f"{prefix}set_{c}" for c in labels]
        values.append(member.astype(np.float64))
    in_sets = len(names)
    for name, bounds in zip(value_names, intervals, strict=True):
        names += [f"{name}_lo", f"{name}_hi"]
        values.append(bounds)
    return names, np.concatenate(values, -1), [k < in_sets for k in range(len(names))]


def achieved(loss: str, predictions: np.ndarray, targets: np.ndarray, conformal: Conformal) -> dict:
    """How the sets and intervals did on labelled data: for each class head the share of
    sequences whose class is in their set, overall and for each class's sequences (None
    for a class the data lacks), the mean set size and the share of single classes; for
    each value the share inside its interval and the interval's width."""
    predictions, targets = np.asarray(predictions), np.asarray(targets)
    sets, intervals = sets_and_intervals(loss, predictions, conformal)
    prefixes, _, value_names = _names(loss, predictions, None)
    out: dict = {"coverage": conformal.coverage, "calibration_size": conformal.calibration_size}
    heads = _heads(loss, predictions, targets)
    for prefix, member, (_, y) in zip(prefixes, sets, heads, strict=True):
        y = np.asarray(y).astype(int)
        size = member.sum(-1)
        key = prefix + ("direction_" if prefix else "")  # d7_direction_covered
        hit = member[np.arange(len(y)), y]  # (N,): the true class is in the set
        out[f"{key}covered"] = float(np.mean(hit))
        out[f"{key}covered_by_class"] = [
            float(np.mean(hit[y == c])) if np.any(y == c) else None for c in range(member.shape[1])
        ]
        out[f"{key}mean_set_size"] = float(np.mean(size))
        out[f"{key}single"] = float(np.mean(size == 1))
    values = _values(loss, predictions, targets)
    one = len(values) == 1 and loss == "mse"  # a scalar regression: `covered`, `width`
    for name, width, bounds, (_, t) in zip(
        value_names, conformal.halfwidths, intervals, values, strict=True
    ):
        key = "" if one else f"{name}_"
        out[f"{key}covered"] = float(np.mean((bounds[:, 0] <= t) & (t <= bounds[:, 1])))
        out[f"{key}width"] = 2 * width
    return out

"""The warning a run ends with when validation never told its model from guessing, or
never saw it beat a constant prediction.

Why: a run can end on its starting plateau. Steel's model sits at chance until it finds
the ordered pair of events that marks a defect, and the epoch it does so varies with the
seed (README, "Plateaus at the start"); a run cut short before then still writes a model,
a checkpoint and test metrics, and nothing in them says the model guesses. So the fit
loop compares the best validation AUC-ROC of any epoch with the spread AUC-ROC has under
guessing on that split: for scores unrelated to the labels, n1 positives and n0
negatives, AUC-ROC is the Mann-Whitney statistic over n0 * n1, with mean 0.5 and variance
(n0 + n1 + 1) / (12 n0 n1). Within `SPREADS` standard deviations of 0.5 is a model
validation cannot tell from a coin: steel_standard at train.seed 1 without its plateau
keys peaked at 0.513 in epoch 1, against a standard deviation of 0.037 on its 72
positives and 378 negatives, and its runs that learn reach 0.99. The check looks only:
it changes no decision of the loop.

A regression run has its own null spread: the Pearson correlation of predictions
unrelated to n targets has mean 0 and standard deviation about 1 / sqrt(n - 1), so each
output whose best validation correlation never rose `SPREADS` of those above 0 is named;
the trend forecaster's horizons are such outputs, each its score against its trend.
A multi-class run has no such line (see the README), so its check is plainer: its best
validation loss against the loss of the best constant prediction its training objective
allows, the training split's class shares (as its class weights or a balanced sampler
weigh them), scored by the run's own loss on the validation split, with a margin of `SPREADS`
standard errors of the kept model's per-sequence loss less the constant's
(`loss_difference_spread`), so that luck on a small split does not pass. A regression run
that passes the correlation test, or that it cannot score (predictions that never vary),
gets the same check against the training split's mean, without the margin. A model that
never beats that has learned nothing validation can see.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

from seqjax.class_weights import class_labels
from seqjax.data.batch import Batch
from seqjax.data.dataset import SequenceDataset

SPREADS = 3.0  # standard deviations above 0.5 that a model's AUC-ROC must reach once


def auc_spread_under_guessing(positives: int, negatives: int) -> float:
    """AUC-ROC's standard deviation for scores unrelated to labels, without ties."""
    return math.sqrt((positives + negatives + 1) / (12.0 * positives * negatives))


def guessing_warning(history: list[dict], val_targets: np.ndarray) -> str | None:
    """The warning for a binary run whose `history` (rows with `val_auc_roc`) never rose
    `SPREADS` standard deviations above chance on a split with `val_targets` (0 or 1
    each), else None; None too where the split lacks a class (AUC-ROC is then NaN)."""
    labels = np.asarray(val_targets).reshape(-1)
    positives, negatives = int(np.sum(labels == 1)), int(np.sum(labels == 0))
    scores = [
        (row["val_auc_roc"], row["epoch"])
        for row in history
        if not math.isnan(row.get("val_auc_roc", math.nan))
    ]
    if not scores or positives == 0 or negatives == 0:
        return None
    best, epoch = max(scores, key=lambda score: score[0])  # the first epoch of the best
    spread = auc_spread_under_guessing(positives, negatives)
    if best > 0.5 + SPREADS * spread:
        return None
    return (
        f"warning: validation never told this model from guessing: its best val_auc_roc, "
        f"{best:.3f} at epoch {epoch}, lies within {SPREADS:g} standard deviations of "
        f"chance (0.5 +- {spread:.3f} for {positives} positives and {negatives} negatives). "
        "A model can sit at chance for a number of epochs that varies with the seed "
        '(README, "Plateaus at the start"): train longer (train.epochs, train.min_epochs, '
        "optimizer.plateau_after) or with another train.seed; or the inputs may hold "
        "nothing that predicts the labels"
    )


CONSTANT_GUESSES = ("cross_entropy", "mse")  # the losses `constant_guess` is known for


def _best_constant(loss: str, train: SequenceDataset, k: int, class_weights, sampler: str):
    """The constant output that minimises the training objective, and what it is in
    words: the log of the `k` classes' shares (each class's examples, sample-weighted,
    times its class weight; equal shares under a balanced sampler), or the targets' mean."""
    weights = np.ones(len(train)) if train.weights is None else np.asarray(train.weights)
    targets = np.asarray(train.targets, np.float64)
    if loss == "mse":
        flat = targets.reshape(len(targets), -1)  # (N, outputs)
        mean = (weights[:, None] * flat).sum(0) / weights.sum()  # (outputs,)
        return mean.reshape(targets.shape[1:]), "the training split's mean"
    labels = class_labels(loss, targets)
    shares: np.ndarray
    if sampler == "balanced":
        shares, said = np.ones(k), "equal class shares (its balanced sampler's)"
    else:
        shares = np.bincount(labels, weights=weights, minlength=k)  # (K,)
        said = "the training split's class shares"
    if class_weights is not None:
        shares, said = shares * np.asarray(class_weights), said + " times its class weights"
    shares = shares / shares.sum()
    return np.log(np.maximum(shares, 1e-7)), said  # (K,) logits whose softmax is the shares


def constant_guess(
    loss: str, train: SequenceDataset, val: SequenceDataset, class_weights, sampler: str
) -> tuple[np.ndarray, str]:
    """The best constant output of the training objective (`_best_constant`), over the
    classes of both splits, and what it is in words."""
    k = 0  # the classes a logit row spans: every label of either split, and every weight
    if loss != "mse":
        k = 1 + int(max(np.max(train.targets), np.max(np.asarray(val.targets))))
        k = max(k, len(class_weights) if class_weights is not None else 0)
    return _best_constant(loss, train, k, class_weights, sampler)


def loss_difference_spread(task, outputs, constant: np.ndarray, val: SequenceDataset) -> float:
    """The standard error of the run's validation loss minus the constant's: per sequence,
    the model's loss (`task.loss` of its `outputs`, (N, K) logits) less the constant
    output's, averaged with the split's weights as the loss averages them. A val_loss
    below the constant's by less than a few of these is one a split this size can give a
    model that learned nothing."""
    targets = jnp.asarray(val.targets)
    weights = np.ones(len(val)) if val.weights is None else np.asarray(val.weights, np.float64)

    def per_sequence(rows):  # (N, K) -> (N,): each sequence's loss alone
        def one(row, target):
            batch = Batch(jnp.zeros((1, 1, 1)), jnp.ones(1, jnp.int32), target[None], jnp.ones(1))
            return task.loss(row[None], batch)

        return jax.vmap(one)(rows, targets)

    rows = jnp.asarray(outputs, jnp.float32)  # (N, K)
    guess = jnp.asarray(constant, jnp.float32)  # (K',): the classes the splits hold
    constants = jnp.broadcast_to(guess, (len(rows), *guess.shape))  # (N, K')
    gaps = np.asarray(per_sequence(rows) - per_sequence(constants), np.float64)  # (N,)
    mean = np.sum(weights * gaps) / np.sum(weights)
    return float(np.sqrt(np.sum(weights**2 * (gaps - mean) ** 2)) / np.sum(weights))


def constant_loss(task, loss: str, val: SequenceDataset, constant: np.ndarray) -> float:
    """`task.loss` on split `val` of predicting `constant` for every sequence."""
    n = len(val)
    targets = np.asarray(val.targets)
    outputs = np.broadcast_to(constant, (n, *np.shape(constant)))  # (N, K) or (N, ...)
    if loss == "mse":
        outputs = outputs.reshape(targets.shape)
    weights = np.ones(n, np.float32) if val.weights is None else np.asarray(val.weights)
    batch = Batch(
        inputs=np.zeros((n, 1, 1), np.float32),  # the loss reads targets and weights only
        lengths=np.ones(n, np.int32),
        targets=targets,
        weights=weights.astype(np.float32),
    )
    return float(task.loss(jnp.asarray(outputs, jnp.float32), batch))


def constant_guess_warning(
    history: list[dict], guess: float, said: str, spread: float = 0.0, n: int = 0
) -> str | None:
    """The warning for a run whose best `val_loss` in `history` is not below `guess`, the
    loss of the constant prediction `said` describes, by more than `SPREADS` times
    `spread` (`loss_difference_spread` over the split's `n` sequences; 0: not known), else
    None."""
    losses = [
        (row["val_loss"], row["epoch"])
        for row in history
        if math.isfinite(row.get("val_loss", math.nan))
    ]
    if not losses or not math.isfinite(guess):
        return None
    best, epoch = min(losses, key=lambda item: item[0])  # the first epoch of the best
    margin = SPREADS * spread if math.isfinite(spread) else 0.0
    if best < guess - margin:
        return None
    if best < guess:
        words = (
            f"lies within {SPREADS:g} standard errors of {guess:.4g} (+- {spread:.3g} for "
            f"{n} validation sequences)"
        )
    else:
        words = f"is no lower than {guess:.4g}"
    return (
        f"warning: validation never beat a constant guess: the best val_loss, {best:.4g} at "
        f"epoch {epoch}, {words}, the loss of predicting {said} for "
        "every sequence. Train longer (train.epochs, train.min_epochs, "
        "optimizer.plateau_after), at another optimizer.lr or train.seed; or the inputs may "
        "hold nothing that predicts the targets"
    )


def correlation_spread_under_guessing(n: int) -> float:
    """Pearson correlation's standard deviation over n pairs of unrelated values."""
    return 1.0 / math.sqrt(n - 1)


def correlation_warning(history: list[dict], n: int) -> str | None:
    """The warning for a regression run some of whose outputs never had a validation
    correlation (`val_correlation`, or `val_y<k>_correlation` for several outputs) above
    `SPREADS` standard deviations of 0 over the split's n sequences, else None; None too
    where no epoch's correlation is defined (predictions that never vary) or n < 3."""
    keys = sorted({k for row in history for k in row if k.endswith("correlation")})
    if n < 3:
        return None
    spread = correlation_spread_under_guessing(n)
    stuck = []
    for key in keys:
        values = [
            (row[key], row["epoch"]) for row in history if math.isfinite(row.get(key, math.nan))
        ]
        if not values:
            continue
        best, epoch = max(values, key=lambda value: value[0])  # the first epoch of the best
        if best <= SPREADS * spread:
            output = key.removeprefix("val_").removesuffix("correlation").rstrip("_")
            stuck.append(f"{output + ' ' if output else ''}{best:.3f} at epoch {epoch}")
    if not stuck:
        return None
    return (
        f"warning: validation never told this model from guessing: the best correlation of "
        f"its predictions with the targets ({'; '.join(stuck)}) lies within {SPREADS:g} "
        f"standard deviations of 0 (+- {spread:.3f} for {n} validation sequences). Train "
        "longer (train.epochs, train.min_epochs, optimizer.plateau_after), at another "
        "optimizer.lr or train.seed; or the inputs may hold nothing that predicts the targets"
    )

"""The warning a binary classifier's run ends with when validation never told it from
guessing.

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
"""

from __future__ import annotations

import math

import numpy as np

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

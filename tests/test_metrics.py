"""Metrics against scikit-learn (and NumPy) on random data."""

import numpy as np
import pytest

from seqjax.metrics import (
    average_precision,
    best_f1_threshold,
    binary_classification,
    regression,
    roc_auc,
)

sk = pytest.importorskip("sklearn.metrics")


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_binary_metrics_match_sklearn(seed):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, 200)
    probs = np.clip(labels * 0.3 + rng.uniform(0, 0.7, 200), 0, 1)
    probs[:20] = np.round(probs[:20], 1)  # ties
    pred = (probs >= 0.5).astype(int)
    m = binary_classification(probs, labels)
    assert m["accuracy"] == pytest.approx(sk.accuracy_score(labels, pred))
    assert m["precision"] == pytest.approx(sk.precision_score(labels, pred))
    assert m["recall"] == pytest.approx(sk.recall_score(labels, pred))
    assert m["f1"] == pytest.approx(sk.f1_score(labels, pred))
    assert m["auc_roc"] == pytest.approx(sk.roc_auc_score(labels, probs))
    assert m["auc_pr"] == pytest.approx(sk.average_precision_score(labels, probs))
    assert m["confusion_matrix"] == sk.confusion_matrix(labels, pred).tolist()


def test_auc_edge_cases():
    assert roc_auc([0.1, 0.9], [0, 1]) == 1.0
    assert roc_auc([0.9, 0.1], [0, 1]) == 0.0
    assert roc_auc([0.5, 0.5], [0, 1]) == 0.5
    assert np.isnan(roc_auc([0.2, 0.3], [1, 1]))
    assert np.isnan(average_precision([0.2, 0.3], [0, 0]))


def test_regression_metrics_match_sklearn_and_numpy():
    rng = np.random.default_rng(0)
    true = rng.standard_normal(300)
    pred = true + 0.5 * rng.standard_normal(300)
    m = regression(pred, true)
    assert m["mse"] == pytest.approx(sk.mean_squared_error(true, pred))
    assert m["rmse"] == pytest.approx(np.sqrt(sk.mean_squared_error(true, pred)))
    assert m["mae"] == pytest.approx(sk.mean_absolute_error(true, pred))
    assert m["correlation"] == pytest.approx(np.corrcoef(pred, true)[0, 1])
    assert m["direction_accuracy"] == pytest.approx(np.mean(np.sign(pred) == np.sign(true)))


def test_shape_mismatch_is_named():
    with pytest.raises(ValueError, match=r"differ in shape"):
        regression(np.zeros(3), np.zeros(4))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_best_f1_threshold_is_the_best_of_every_score_tried_one_by_one(seed):
    """Against `binary_classification` at each distinct score (ties in the scores, and a
    rounded copy with more); of equal F1s the highest threshold."""
    rng = np.random.default_rng(seed)
    labels = (rng.random(200) < 0.2).astype(int)
    scores = np.clip(0.3 * labels + rng.random(200) * 0.8, 0, 1)
    for p in (scores, np.round(scores, 1)):
        f1 = {t: binary_classification(p, labels, threshold=t)["f1"] for t in np.unique(p)}
        best = max(f1.values())
        assert best_f1_threshold(p, labels) == max(t for t, v in f1.items() if v == best)
    with pytest.raises(ValueError, match="the labels hold no positive"):
        best_f1_threshold(scores, np.zeros(200))


def _ece_by_loop(confidence, outcome, bins=15):
    """The ECE as Guo et al. write it, bin by bin (a confidence of 1.0 in the last bin)."""
    total = 0.0
    for b in range(bins):
        lo, hi = b / bins, (b + 1) / bins
        inside = (confidence >= lo) & ((confidence < hi) | ((b == bins - 1) & (confidence <= hi)))
        if inside.any():
            total += inside.mean() * abs(confidence[inside].mean() - outcome[inside].mean())
    return total


@pytest.mark.parametrize("seed", [0, 1])
def test_brier_and_ece_match_sklearn_and_the_binned_definition(seed):
    from seqjax.metrics import brier_score, calibration_error, multiclass_classification

    rng = np.random.default_rng(seed)
    p = rng.random(500)
    p[:10] = [0.0, 1.0, 1 / 15, 2 / 15, 0.5, 0.5, 14 / 15, 1.0, 0.0, 0.2]  # bin edges
    y = (rng.random(500) < p**2).astype(int)  # overconfident: p comes true less often
    m = binary_classification(p, y)
    assert m["brier"] == pytest.approx(sk.brier_score_loss(y, p))
    assert m["ece"] == pytest.approx(_ece_by_loop(p, y.astype(float)))
    assert m["ece"] > 0.1  # P(y) = p^2 is far from p
    assert calibration_error(y.astype(float), y) == 0.0  # certain and right
    probs = rng.dirichlet(np.ones(4), 300)
    labels = np.array([rng.choice(4, p=q) for q in probs])  # calibrated by construction
    mc = multiclass_classification(probs, labels)
    top = probs.argmax(-1)
    assert mc["ece"] == pytest.approx(_ece_by_loop(probs.max(-1), (top == labels) * 1.0))
    onehot = np.eye(4)[labels]
    assert mc["brier"] == pytest.approx(np.mean(np.sum((probs - onehot) ** 2, -1)))
    # two classes given as (N, 2) score Brier's sum: twice the (N,) form
    assert brier_score(np.c_[1 - p, p], y) == pytest.approx(2 * m["brier"])

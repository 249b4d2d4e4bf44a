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

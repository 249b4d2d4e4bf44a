import numpy as np
import pytest

from seqjax.metrics import binary_classification


def test_binary_metrics_match_sklearn():
    sk = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 200)
    probs = np.clip(labels * 0.3 + rng.uniform(0, 0.7, 200), 0, 1)
    pred = (probs >= 0.5).astype(int)
    m = binary_classification(probs, labels)
    assert m["accuracy"] == pytest.approx(sk.accuracy_score(labels, pred))
    assert m["precision"] == pytest.approx(sk.precision_score(labels, pred))
    assert m["recall"] == pytest.approx(sk.recall_score(labels, pred))
    assert m["f1"] == pytest.approx(sk.f1_score(labels, pred))
    assert m["confusion_matrix"] == sk.confusion_matrix(labels, pred).tolist()

"""Recalibration (seqjax.calibration) against scikit-learn's logistic regression and
against the parameters that generated the labels."""

import numpy as np
import pytest

from seqjax.calibration import Recalibration, fit, fit_head, recalibrate
from seqjax.metrics import brier_score, calibration_error

lm = pytest.importorskip("sklearn.linear_model")


def _nll(p, y):
    return -np.mean(np.log(np.clip(p[np.arange(len(y)), y], 1e-300, 1)))


def _objective(theta, log_p, y):
    """The fit's objective as its docstring says it: the summed NLL of the labels under
    softmax(scale * log p + bias), plus 1/2 x the squared distance from (1, 0, ...)."""
    logits = theta[0] * log_p + np.r_[0.0, theta[1:]]
    logits -= logits.max(-1, keepdims=True)
    log_q = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    start = np.r_[1.0, np.zeros(len(theta) - 1)]
    return -log_q[np.arange(len(y)), y].sum() + 0.5 * np.sum((theta - start) ** 2)


def test_the_fit_is_the_minimum_scipy_finds_for_the_objective_it_documents():
    from scipy.optimize import minimize

    rng = np.random.default_rng(0)
    z = 2.5 * rng.standard_normal((300, 3))
    y = (
        rng.random(300)[:, None]
        > np.cumsum(np.exp(0.4 * z) / np.exp(0.4 * z).sum(-1, keepdims=True), -1)
    ).sum(-1)
    p = np.exp(z) / np.exp(z).sum(-1, keepdims=True)
    head = fit_head(p, y)
    log_p = np.log(p)
    reference = minimize(
        _objective, np.r_[1.0, 0.0, 0.0], args=(log_p, y), method="BFGS", options={"gtol": 1e-10}
    )
    np.testing.assert_allclose([head.scale, *head.bias[1:]], reference.x, atol=1e-5)
    assert head.bias[0] == 0.0


def test_two_classes_fit_platts_sigmoid_as_a_logistic_regression_does():
    """On many examples the prior fades: an unpenalised logistic regression on the
    model's log-odds finds the same scale and bias, and both the generating ones."""
    rng = np.random.default_rng(0)
    z = 2.5 * rng.standard_normal(4000)
    y = (rng.random(4000) < 1 / (1 + np.exp(-(0.4 * z - 1.0)))).astype(int)
    p = (1 / (1 + np.exp(-z))).astype(np.float32)  # the model's float32 probabilities
    head = fit_head(np.stack([1 - p, p], -1), y)
    logit = np.log(p.astype(np.float64)) - np.log1p(-p.astype(np.float64))
    reference = lm.LogisticRegression(C=np.inf, tol=1e-10, max_iter=1000).fit(logit[:, None], y)
    assert head.scale == pytest.approx(reference.coef_[0, 0], abs=3e-3)
    assert head.bias[1] == pytest.approx(reference.intercept_[0], abs=3e-3)
    assert head.scale == pytest.approx(0.4, abs=0.05)  # the generating parameters
    assert head.bias[1] == pytest.approx(-1.0, abs=0.1)


def test_a_model_that_separates_the_split_gets_a_finite_fit_short_of_certainty():
    """The likelihood alone would drive the scale to infinity here; the prior stops it."""
    p = np.r_[np.linspace(0.6, 0.9, 20), np.linspace(0.1, 0.4, 20)]
    y = np.r_[np.ones(20, int), np.zeros(20, int)]
    head = fit_head(np.stack([1 - p, p], -1), y)
    q = head.apply(np.stack([1 - p, p], -1))[:, 1]
    assert np.isfinite(head.scale) and 1 < head.scale < 20
    assert q[y == 1].mean() > 0.9 > p[y == 1].mean()  # surer than the model
    assert q.max() < 1 - 1e-6 and q.min() > 1e-6  # and not certain


def test_the_fit_scores_no_worse_than_the_model_on_its_own_data():
    """No change is one candidate of the convex fit, at no cost from the prior: even on 30
    examples the fitted likelihood is at least the model's."""
    rng = np.random.default_rng(3)
    for _ in range(20):
        p = rng.dirichlet(np.ones(3), 30)
        y = (rng.random(30)[:, None] > np.cumsum(p, -1)).sum(-1)  # drawn from p
        head = fit_head(p, y)
        assert _nll(head.apply(p), y) <= _nll(p, y) + 1e-12


def test_k_classes_recover_the_temperature_and_biases_that_drew_the_labels():
    rng = np.random.default_rng(1)
    n, k = 20000, 4
    logits = 3.0 * rng.standard_normal((n, k))
    bias = np.array([0.0, 0.8, -0.5, 0.3])
    true = np.exp(0.5 * logits + bias)
    true /= true.sum(-1, keepdims=True)
    y = (rng.random(n)[:, None] > np.cumsum(true, -1)).sum(-1)  # draws from `true`
    model = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    head = fit_head(model, y)
    assert head.scale == pytest.approx(0.5, abs=0.03)
    np.testing.assert_allclose(head.bias, bias, atol=0.06)
    q = head.apply(model)
    assert _nll(q, y) < _nll(model, y)
    assert calibration_error(q, y) < 0.02 < calibration_error(model, y)
    assert brier_score(q, y) < brier_score(model, y)


def test_calibrated_probabilities_stay_nearly_as_they_are():
    rng = np.random.default_rng(2)
    p = rng.random(5000)
    y = (rng.random(5000) < p).astype(int)
    head = fit_head(np.stack([1 - p, p], -1), y)
    assert head.scale == pytest.approx(1.0, abs=0.1)
    assert head.bias[1] == pytest.approx(0.0, abs=0.1)


def test_a_trend_run_recalibrates_each_horizons_directions_and_keeps_its_scores():
    rng = np.random.default_rng(4)
    n = 3000
    trend = rng.uniform(-1, 1, (n, 2))
    targets = np.stack([trend, np.zeros_like(trend)], -1)  # (N, Hz, 2): trend, volatility
    cls = np.where(trend < -0.1, 0, np.where(trend > 0.1, 2, 1))
    said = np.where(rng.random((n, 2)) < 0.3, rng.integers(0, 3, (n, 2)), cls)  # 80% right
    sharp = np.full((n, 2, 3), 0.02)
    np.put_along_axis(sharp, said[..., None], 0.96, -1)  # and 96% sure
    preds = np.concatenate([rng.standard_normal((n, 2, 1)), sharp], -1).astype(np.float32)
    heads = fit("trend_multitask", preds, targets)
    assert len(heads) == 2 and all(h.scale < 1 for h in heads)  # softened
    out = recalibrate("trend_multitask", preds, heads)
    assert out.dtype == np.float32 and out.shape == preds.shape
    np.testing.assert_array_equal(out[..., 0], preds[..., 0])
    np.testing.assert_allclose(out[..., 1:].sum(-1), 1, rtol=1e-6)
    for h in range(2):
        assert calibration_error(out[:, h, 1:], cls[:, h]) < 0.03
        assert calibration_error(preds[:, h, 1:], cls[:, h]) > 0.14  # 0.96 said, 0.8 right


def test_a_binary_run_recalibrates_its_column_and_keeps_its_ranking():
    rng = np.random.default_rng(5)
    p = rng.random(1000).astype(np.float32)
    y = (rng.random(1000) < 0.3 * p).astype(float)  # shifted: weighted training, say
    heads = fit("binary_cross_entropy", p, y)
    out = recalibrate("binary_cross_entropy", p, heads)
    assert out.shape == p.shape and out.dtype == np.float32
    assert np.mean(out) == pytest.approx(np.mean(y), abs=0.01)  # the likelihood's score equation
    order = np.argsort(p, kind="stable")
    assert np.all(np.diff(out[order]) >= 0)  # the same ranking


def test_what_cannot_be_recalibrated_is_named():
    with pytest.raises(ValueError, match="loss 'mse' predicts values"):
        fit("mse", np.zeros((4, 3)), np.zeros((4, 3)))
    with pytest.raises(ValueError, match=r"labels must be classes 0..2; got 0..3"):
        fit_head(np.full((4, 3), 1 / 3), np.array([0, 1, 2, 3]))
    with pytest.raises(ValueError, match="probabilities hold 1 NaN or infinite values"):
        fit_head(np.array([[0.5, 0.5], [np.nan, 0.5]]), np.array([0, 1]))
    with pytest.raises(ValueError, match="no labelled examples"):
        fit_head(np.zeros((0, 2)), np.zeros(0))
    p = np.linspace(0.05, 0.95, 200)
    reversed_labels = (p < 0.5).astype(int)  # the model has them backwards
    with pytest.raises(ValueError, match="no better than reversed"):
        fit_head(np.stack([1 - p, p], -1), reversed_labels)
    with pytest.raises(ValueError, match="1 recalibrations for 2 heads"):
        recalibrate("trend_multitask", np.zeros((3, 2, 4)), (Recalibration(1.0, (0, 0, 0)),))

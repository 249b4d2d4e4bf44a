"""The warning a binary run ends with when validation never told its model from guessing,
and a multi-class or regression run's when its validation loss never beat the best
constant prediction."""

import math

import numpy as np
import pytest

from seqjax.config import load_config
from seqjax.data.dataset import SequenceDataset
from seqjax.metrics import roc_auc
from seqjax.tasks import get_task
from seqjax.train.chance import (
    SPREADS,
    auc_spread_under_guessing,
    constant_guess,
    constant_guess_warning,
    constant_loss,
    correlation_spread_under_guessing,
    correlation_warning,
    guessing_warning,
    loss_difference_spread,
)


def constant_guess_loss(task, loss, train, val, class_weights, sampler):
    """The run's validation loss of the best constant prediction, and what it is in words:
    the two steps `fit` takes (`constant_guess`, then `constant_loss`)."""
    constant, said = constant_guess(loss, train, val, class_weights, sampler)
    return constant_loss(task, loss, val, constant), said


def _rows(values):
    return [{"epoch": e, "val_auc_roc": v} for e, v in enumerate(values, start=1)]


def _labels(positives=72, negatives=378):
    return np.r_[np.ones(positives, np.int32), np.zeros(negatives, np.int32)]


def test_the_spread_is_that_of_auc_roc_over_random_scores():
    """steel_standard's validation split: 72 positives, 378 negatives."""
    rng = np.random.default_rng(0)
    labels = _labels()
    draws = [roc_auc(rng.uniform(size=labels.size), labels) for _ in range(2000)]
    np.testing.assert_allclose(np.mean(draws), 0.5, atol=0.003)
    np.testing.assert_allclose(np.std(draws), auc_spread_under_guessing(72, 378), rtol=0.05)


def test_a_run_at_chance_is_named_with_its_best_epoch_and_the_spread():
    """steel_standard's history at train.seed 1 without its plateau keys (`seqjax train
    --config steel_standard --set train.seed=1 train.min_epochs=0
    optimizer.plateau_after=0`, which stops at epoch 7 and tests at AUC-ROC 0.515)."""
    history = _rows([0.5126, 0.4441, 0.4538, 0.4656, 0.448, 0.4576, 0.4449])
    warning = guessing_warning(history, _labels())
    assert warning is not None
    assert "best val_auc_roc, 0.513 at epoch 1" in warning
    assert "chance (0.5 +- 0.037 for 72 positives and 378 negatives)" in warning
    assert "train.seed" in warning


def test_a_run_that_learned_once_is_not_warned_about():
    threshold = 0.5 + SPREADS * auc_spread_under_guessing(72, 378)  # 0.612
    assert guessing_warning(_rows([0.5, 0.52, threshold + 0.002, 0.5]), _labels()) is None
    assert guessing_warning(_rows([0.5, threshold - 0.002]), _labels()) is not None
    # a small split spreads wider: 0.65 is within 3 of its standard deviations of 0.5
    assert guessing_warning(_rows([0.65]), _labels(10, 20)) is not None


def test_no_warning_where_auc_roc_is_undefined():
    assert guessing_warning(_rows([float("nan")] * 3), _labels()) is None
    assert guessing_warning(_rows([0.5]), np.ones(40, np.int32)) is None
    assert guessing_warning([{"epoch": 1, "val_loss": 0.7}], _labels()) is None


def _split(targets, weights=None) -> SequenceDataset:
    n = len(targets)
    return SequenceDataset(
        np.zeros((n, 1, 1), np.float32), np.ones(n, np.int32), np.asarray(targets), weights=weights
    )


def test_the_constant_guess_is_the_best_constant_of_the_training_objective():
    train = _split(np.repeat([0, 1, 2], [60, 30, 10]))  # shares 0.6, 0.3, 0.1
    val = _split(np.array([0, 0, 1, 2]))
    ce = get_task("cross_entropy")
    loss, said = constant_guess_loss(ce, "cross_entropy", train, val, None, "shuffle")
    expected = -(2 * math.log(0.6) + math.log(0.3) + math.log(0.1)) / 4
    assert loss == pytest.approx(expected, rel=1e-6) and said == "the training split's class shares"
    # a balanced sampler's model learns equal shares: -log(1/3) for every sequence
    loss, said = constant_guess_loss(ce, "cross_entropy", train, val, None, "balanced")
    assert loss == pytest.approx(math.log(3), rel=1e-6) and "balanced sampler" in said
    # class weights (1, 2, 6) tilt the shares to 60 : 60 : 60 and weigh the loss as the run's
    weights = (1.0, 2.0, 6.0)
    weighted = get_task("cross_entropy", class_weights=weights)
    loss, _ = constant_guess_loss(weighted, "cross_entropy", train, val, weights, "shuffle")
    assert loss == pytest.approx((1 + 1 + 2 + 6) * math.log(3) / 4, rel=1e-6)
    # regression: the training split's (sample-weighted) mean, for each output
    targets = np.array([[1.0, 10.0], [3.0, 30.0]])
    train = _split(targets, weights=np.array([1.0, 3.0], np.float32))  # means 2.5, 25
    val = _split(np.array([[2.5, 20.0], [4.5, 25.0]]))
    loss, said = constant_guess_loss(get_task("mse"), "mse", train, val, None, "shuffle")
    assert (
        loss == pytest.approx((0 + 25 + 4 + 0) / 4, rel=1e-6)
        and said == "the training split's mean"
    )


def test_a_loss_that_never_beat_the_constant_is_named_and_one_below_it_is_not():
    rows = [{"epoch": e, "val_loss": v} for e, v in enumerate([1.20, 1.09, math.nan, 1.10], 1)]
    warning = constant_guess_warning(rows, 1.067, "the training split's class shares")
    assert warning is not None
    assert (
        "best val_loss, 1.09 at epoch 2, is no lower than 1.067, the loss of predicting " in warning
    )
    assert constant_guess_warning(rows, 1.095, "the training split's mean") is None
    assert constant_guess_warning(rows, math.nan, "the training split's mean") is None


def test_a_loss_below_the_constant_by_less_than_its_noise_is_named():
    """With the loss difference's standard error known (multi-class runs), beating the
    constant by less than 3 of them is still named, in words that say so."""
    rows = [{"epoch": 1, "val_loss": 1.30}, {"epoch": 2, "val_loss": 1.25}]
    warning = constant_guess_warning(rows, 1.30, "the training split's class shares", 0.02, 90)
    assert warning is not None
    assert "1.25 at epoch 2, lies within 3 standard errors of 1.3 (+- 0.02 for 90 " in warning
    assert constant_guess_warning(rows, 1.30, "shares", 0.016, 90) is None  # 0.05 > 3 x 0.016
    assert "no lower than 1.2" in constant_guess_warning(rows, 1.2, "shares", 0.02, 90)


def test_the_loss_difference_spread_is_the_weighted_mean_differences_standard_error():
    """Against NumPy: per-sequence cross-entropy of the model's logits less the constant's,
    averaged with sample weights, and that average's standard error."""
    rng = np.random.default_rng(0)
    n, k = 50, 4
    labels, weights = rng.integers(0, k, n), rng.uniform(0.5, 2.0, n)
    val = _split(labels, weights=weights)
    logits = rng.standard_normal((n, k))  # (N, K)
    constant = np.log([0.4, 0.3, 0.2, 0.1])  # (K,)

    def ce(z):  # (N, K) -> (N,)
        z = z - z.max(1, keepdims=True)
        return np.log(np.exp(z).sum(1)) - z[np.arange(n), labels]

    gaps = ce(logits) - ce(np.broadcast_to(constant, (n, k)))
    mean = np.sum(weights * gaps) / weights.sum()
    expected = np.sqrt(np.sum(weights**2 * (gaps - mean) ** 2)) / weights.sum()
    spread = loss_difference_spread(get_task("cross_entropy"), logits, constant, val)
    assert spread == pytest.approx(expected, rel=1e-5)
    # the constant spans only the classes the splits hold; the model's rows may span more
    wider = np.concatenate([logits, np.full((n, 1), -30.0)], axis=1)  # (N, K + 1)
    spread = loss_difference_spread(get_task("cross_entropy"), wider, constant, val)
    assert spread == pytest.approx(expected, rel=1e-4)


def test_the_correlation_spread_is_that_of_unrelated_predictions():
    rng = np.random.default_rng(0)
    draws = [
        np.corrcoef(rng.standard_normal(45), rng.exponential(size=45))[0, 1] for _ in range(2000)
    ]
    np.testing.assert_allclose(np.mean(draws), 0.0, atol=0.01)
    np.testing.assert_allclose(np.std(draws), correlation_spread_under_guessing(45), rtol=0.05)


def test_each_output_that_never_correlated_beyond_noise_is_named():
    """45 validation sequences: 3 sd of a correlation under guessing is 0.452."""
    rows = [
        {"epoch": 1, "val_y0_correlation": 0.30, "val_y1_correlation": 0.10, "val_loss": 1.0},
        {"epoch": 2, "val_y0_correlation": 0.70, "val_y1_correlation": 0.45, "val_loss": 0.9},
        {"epoch": 3, "val_y0_correlation": 0.69, "val_y1_correlation": math.nan, "val_loss": 0.9},
    ]
    warning = correlation_warning(rows, 45)
    assert warning is not None and "(y1 0.450 at epoch 2)" in warning
    assert "+- 0.151 for 45 validation sequences" in warning
    rows[0]["val_y1_correlation"] = 0.46  # one epoch beyond the line: none
    assert correlation_warning(rows, 45) is None
    one = [{"epoch": 1, "val_correlation": 0.15}, {"epoch": 2, "val_correlation": math.nan}]
    assert "(0.150 at epoch 1)" in correlation_warning(one, 45)
    assert correlation_warning([{"epoch": 1, "val_correlation": math.nan}], 45) is None
    assert correlation_warning(one, 2) is None


@pytest.mark.parametrize(
    "classes, said",
    [(2, "warning: validation never told"), (4, "warning: validation never beat a constant")],
)
def test_a_run_on_sequences_that_carry_no_signal_ends_with_the_warning(tmp_path, classes, said):
    """The fit loop's wiring: every sequence the same, so the model's output is one
    constant whatever it learns, and stratified splits, so no constant beats the training
    split's class shares on validation by more than rounding; two classes are scored by
    AUC-ROC's spread, four by the constant guess's loss."""
    from seqjax.train.run import run_experiment

    rng = np.random.default_rng(0)
    n, steps = 240, 20
    one = rng.standard_normal((steps, 5)).astype(np.float32)  # (T, F)
    inputs = np.broadcast_to(one, (n, steps, 5)).copy()  # (N, T, F), every sequence alike
    shares = [0.7, 0.3] if classes == 2 else [0.55, 0.25, 0.15, 0.05]
    targets = rng.choice(classes, n, p=shares).astype(np.int32)
    np.savez(tmp_path / "same.npz", inputs=inputs, targets=targets)
    sets = [
        f"data.source=npz:{tmp_path / 'same.npz'}",
        "data.split=stratified",
        "train.epochs=2",
        "train.batch_size=16",
        "train.plots=false",
        "checkpoint.enabled=false",
        "model.hidden_size=32",
    ]
    cfg = load_config("configs/steel_lightweight.yaml", sets)
    lines = []
    run_experiment(cfg, str(tmp_path / "run"), log=lines.append)
    assert any(line.startswith(said) for line in lines), lines


def test_a_regression_on_targets_that_carry_no_signal_ends_with_the_warning(tmp_path):
    """The wiring for `train.loss=mse`: random inputs, targets drawn apart from them."""
    from seqjax.train.run import run_experiment

    rng = np.random.default_rng(0)
    inputs = rng.standard_normal((240, 20, 5)).astype(np.float32)  # (N, T, F)
    targets = 50 + 10 * rng.standard_normal(240)  # (N,) values in units of their own
    np.savez(tmp_path / "noise.npz", inputs=inputs, targets=targets)
    sets = [f"data.source=npz:{tmp_path / 'noise.npz'}", "train.loss=mse", "train.epochs=2"]
    sets += ["train.batch_size=16", "train.plots=false", "checkpoint.enabled=false"]
    cfg = load_config("configs/steel_lightweight.yaml", sets)
    lines = []
    run_experiment(cfg, str(tmp_path / "run"), log=lines.append)
    said = [line for line in lines if line.startswith("warning: validation never told")]
    assert len(said) == 1 and "best correlation of its predictions" in said[0], lines


def test_a_trend_forecast_on_noise_names_each_horizon_that_never_correlated(tmp_path):
    """The wiring for the trend's multi-task losses: each horizon's score is tested as a
    regression output is (`val_d7_correlation`, `val_d30_correlation`)."""
    from seqjax.train.run import run_experiment

    rng = np.random.default_rng(0)
    n = 240
    inputs = rng.standard_normal((n, 12, 4)).astype(np.float32)  # (N, T, F)
    trend = 0.05 * rng.standard_normal((n, 2))  # (N, horizons), drawn apart from the inputs
    volatility = 0.01 + 0.02 * np.abs(rng.standard_normal((n, 2)))  # (N, horizons)
    targets = np.stack([trend, volatility], -1)  # (N, horizons, 2)
    np.savez(tmp_path / "noise.npz", inputs=inputs, targets=targets)
    sets = [f"data.source=npz:{tmp_path / 'noise.npz'}", "train.epochs=2"]
    sets += ["train.plots=false", "checkpoint.enabled=false"]
    cfg = load_config("configs/trend.yaml", sets)
    lines = []
    run_experiment(cfg, str(tmp_path / "run"), log=lines.append)
    said = [line for line in lines if line.startswith("warning: validation never told")]
    assert len(said) == 1 and "(d30 " in said[0] and "; d7 " in said[0], lines


def test_a_multi_class_run_that_learns_is_not_named(tmp_path):
    """Three classes a channel's level gives away: the kept model beats the constant by
    far more than its noise, so no warning, where the margin could have made one."""
    from seqjax.train.run import run_experiment

    rng = np.random.default_rng(0)
    n, steps = 240, 20
    targets = rng.integers(0, 3, n).astype(np.int32)
    inputs = rng.standard_normal((n, steps, 5)).astype(np.float32)  # (N, T, F)
    inputs[:, :, 0] += 2.0 * targets[:, None]  # channel 0's level is the class
    np.savez(tmp_path / "easy.npz", inputs=inputs, targets=targets)
    sets = [f"data.source=npz:{tmp_path / 'easy.npz'}", "train.epochs=4"]
    sets += ["train.batch_size=16", "train.plots=false", "checkpoint.enabled=false"]
    sets += ["model.hidden_size=32", "optimizer.lr=0.01"]
    cfg = load_config("configs/steel_lightweight.yaml", sets)
    lines = []
    metrics = run_experiment(cfg, str(tmp_path / "run"), log=lines.append)
    assert metrics["test"]["accuracy"] > 0.8, lines
    assert not any(line.startswith("warning:") for line in lines), lines

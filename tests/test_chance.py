"""The warning a binary run ends with when validation never told its model from guessing."""

import numpy as np

from seqjax.config import load_config
from seqjax.metrics import roc_auc
from seqjax.train.chance import SPREADS, auc_spread_under_guessing, guessing_warning


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


def test_a_run_on_labels_that_carry_no_signal_ends_with_the_warning(tmp_path):
    """The fit loop's wiring: labels drawn apart from the inputs leave nothing to learn."""
    from seqjax.train.run import run_experiment

    rng = np.random.default_rng(0)
    n, steps = 240, 20
    inputs = rng.standard_normal((n, steps, 5)).astype(np.float32)
    lengths = rng.integers(5, steps + 1, n).astype(np.int32)
    targets = (rng.uniform(size=n) < 0.3).astype(np.int32)
    np.savez(tmp_path / "coin.npz", inputs=inputs, lengths=lengths, targets=targets)
    sets = [
        f"data.source=npz:{tmp_path / 'coin.npz'}",
        "train.epochs=2",
        "train.batch_size=16",
        "train.plots=false",
        "checkpoint.enabled=false",
        "model.hidden_size=32",
    ]
    cfg = load_config("configs/steel_lightweight.yaml", sets)
    lines = []
    run_experiment(cfg, str(tmp_path / "run"), log=lines.append)
    assert any(line.startswith("warning: validation never told") for line in lines), lines

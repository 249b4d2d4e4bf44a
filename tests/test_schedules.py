"""Early stopping and reduce-on-plateau decisions between epochs."""

import dataclasses

import jax
import numpy as np
import pytest

from seqjax.config import load_config
from seqjax.models import build_model
from seqjax.train.loop import _update_schedules, initial_loop_state
from seqjax.train.optim import learning_rate, make_optimizer
from seqjax.train.state import create_state


def _cfg(**train):
    cfg = load_config("configs/trust.yaml")
    return dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, **train))


def _state(cfg):
    model = build_model("trust", hidden_sizes=(2, 2, 2), features=3)
    return create_state(
        model,
        make_optimizer(cfg.optimizer),
        np.zeros((1, 2, 3), np.float32),
        np.array([2]),
        seed=0,
    )


def _run(cfg, values):
    loop, state, lrs = initial_loop_state(), _state(cfg), []
    for v in values:
        loop["epoch"] += 1
        state = _update_schedules(cfg, loop, state, v)
        lrs.append(learning_rate(jax.device_get(state.opt_state)))
        if loop["stopped"]:
            break
    return loop, lrs


def test_early_stopping_waits_patience_epochs_after_the_best():
    loop, _ = _run(_cfg(patience=3), [1.0, 0.9, 0.95, 0.91, 0.92, 0.5])
    assert loop["stopped"] and loop["epoch"] == 5 and loop["best_epoch"] == 2


def test_min_epochs_holds_early_stopping_off_until_that_epoch():
    """A monitor at chance for its first epochs (a plateau), then a model that learns: with
    patience 3 alone the run stops at epoch 5, before it learns; min_epochs 8 keeps it on."""
    values = [0.5, 0.52, 0.49, 0.51, 0.5, 0.48, 0.8, 0.95, 0.96, 0.96, 0.96, 0.96]
    early, _ = _run(_cfg(patience=3, mode="max"), values)
    assert early["stopped"] and early["epoch"] == 5 and early["best_epoch"] == 2
    held, _ = _run(_cfg(patience=3, mode="max", min_epochs=8), values)
    assert held["stopped"] and held["epoch"] == 12 and held["best_epoch"] == 9
    # past min_epochs, patience counts from the best as before
    late, _ = _run(_cfg(patience=3, mode="max", min_epochs=4), values)
    assert late["epoch"] == 5 and late["best_epoch"] == 2


def test_min_delta_and_max_mode():
    loop, _ = _run(_cfg(patience=2, mode="max", min_delta=0.05), [0.5, 0.52, 0.54, 0.7])
    assert loop["stopped"] and loop["best_epoch"] == 1 and loop["epoch"] == 3


def test_auto_mode_goes_the_way_the_monitors_name_says():
    values = [0.5, 0.52, 0.54, 0.7, 0.6]
    higher, _ = _run(_cfg(patience=0, mode="auto", monitor="val_accuracy"), values)
    lower, _ = _run(_cfg(patience=0, mode="auto", monitor="val_loss"), values)
    assert higher["best_epoch"] == 4 and lower["best_epoch"] == 1


def test_plateau_halves_the_rate_after_patience_epochs():
    cfg = _cfg(patience=0)  # optimizer.plateau_patience 5, factor 0.5 in configs/trust.yaml
    loop, lrs = _run(cfg, [1.0] + [2.0] * 10)
    assert not loop["stopped"]
    assert lrs[4] == pytest.approx(1e-3) and lrs[5] == pytest.approx(5e-4)
    assert lrs[10] == pytest.approx(2.5e-4)


def test_plateau_after_keeps_the_rate_through_a_starting_plateau():
    """A monitor at chance for six epochs: with plateau patience 3 alone the rate halves
    after epoch 4 (three epochs below epoch 1's 0.5); plateau_after 6 counts from epoch 7
    on, and the model that learns at epoch 7 keeps its full rate. After it, a plateau
    halves the rate as before."""
    values = [0.5, 0.45, 0.48, 0.49, 0.47, 0.46, 0.9, 0.9, 0.9, 0.9]
    cfg = _cfg(patience=0, mode="max")
    plateau = dataclasses.replace(cfg.optimizer, plateau_patience=3)
    _, alone = _run(dataclasses.replace(cfg, optimizer=plateau), values)
    assert alone[2] == pytest.approx(1e-3) and alone[3] == pytest.approx(5e-4)
    held = dataclasses.replace(plateau, plateau_after=6)
    _, lrs = _run(dataclasses.replace(cfg, optimizer=held), values)
    assert lrs[:9] == pytest.approx([1e-3] * 9)  # epoch 7 improved; 8, 9 count
    assert lrs[9] == pytest.approx(5e-4)  # epoch 10: the third without improvement


@pytest.mark.parametrize("mode", ["min", "max"])
def test_a_nan_epoch_is_never_the_best_once_a_number_comes(mode):
    """A correlation of constant predictions is NaN; before, a first NaN stayed the best
    epoch for good (nothing compares greater or less than it), and early stopping kept it."""
    nan = float("nan")
    loop, _ = _run(_cfg(patience=3, mode=mode, monitor="val_loss"), [nan, 0.5, nan, nan])
    assert loop["best_epoch"] == 2 and not loop["stopped"]
    alone, _ = _run(_cfg(patience=2, mode=mode, monitor="val_loss"), [nan, nan, nan])
    assert alone["best_epoch"] == 1 and alone["stopped"] and alone["epoch"] == 3


def test_nan_epochs_count_toward_the_plateau():
    nan = float("nan")
    loop, lrs = _run(_cfg(patience=0), [1.0] + [nan] * 5)
    assert lrs[4] == pytest.approx(1e-3) and lrs[5] == pytest.approx(5e-4)

"""`data.split: ordered` and `data.gap`: a user's npz or CSV split in its own order (the
first fraction trains, then validation, then test), with `gap` sequences left out after
each cut, so that time-ordered windows train on the past and are tested on the future."""

import numpy as np
import pytest

from seqjax.config import load_config
from seqjax.data.external import csv_splits, npz_splits
from seqjax.data.splits import SplitPlan, split_indices

SPLITS = (0.6, 0.2, 0.2)
N, T = 30, 3


def test_ordered_parts_are_consecutive_and_the_gap_is_left_out_after_each_cut():
    train, val, test = split_indices(N, SPLITS, ordered=True)
    np.testing.assert_array_equal(np.concatenate([train, val, test]), np.arange(N))
    assert (len(train), len(val), len(test)) == (18, 6, 6)
    train, val, test = split_indices(N, SPLITS, ordered=True, gap=2)
    np.testing.assert_array_equal(train, np.arange(18))
    np.testing.assert_array_equal(val, np.arange(20, 24))  # 18 and 19 left out
    np.testing.assert_array_equal(test, np.arange(26, 30))  # 24 and 25 left out
    shuffled = split_indices(N, SPLITS, seed=0)
    assert not np.array_equal(np.concatenate(shuffled), np.arange(N))  # as before: random
    with pytest.raises(ValueError, match=r"with a gap of 6 after each cut leaves an empty part"):
        split_indices(N, SPLITS, ordered=True, gap=6)


def _ids(part):
    """The sequence numbers a split holds, from its first channel (sequence i: value i)."""
    return np.rint(part.scaler.mean[0] + part.inputs[:, 0, 0] * part.scaler.std[0]).astype(int)


@pytest.mark.parametrize("kind", ["npz", "csv"])
def test_a_users_file_splits_in_its_order(tmp_path, kind):
    """The npz's array order; the CSV's first-seen order of its sequences (here the
    reverse of their names' order, so neither sorting nor shuffling could pass)."""
    order = np.arange(N)[::-1] if kind == "csv" else np.arange(N)
    if kind == "npz":
        path = tmp_path / "d.npz"
        inputs = np.repeat(np.arange(N, dtype=np.float32)[:, None, None], T, axis=1)
        np.savez(path, inputs=inputs, targets=np.arange(N) % 2)
        load = npz_splits
    else:
        path = tmp_path / "d.csv"
        rows = [f"s{i:02d},{i % 2},{i}" for i in order for _ in range(T)]
        path.write_text("sequence,target,a\n" + "\n".join(rows) + "\n")
        load = csv_splits
    splits = load(str(path), SplitPlan(seed=0, fractions=SPLITS, split="ordered", gap=1))
    np.testing.assert_array_equal(_ids(splits["train"]), order[:18])
    np.testing.assert_array_equal(_ids(splits["val"]), order[19:24])
    np.testing.assert_array_equal(_ids(splits["test"]), order[25:])


def test_the_config_names_what_cannot_be_ordered(tmp_path):
    path = tmp_path / "d.npz"
    np.savez(path, inputs=np.zeros((10, 2, 1)), targets=np.arange(10) % 2)
    with pytest.raises(ValueError, match=r"data.gap \(4\) leaves out sequences at the cuts of an"):
        load_config("configs/steel_lightweight.yaml", [f"data.source=npz:{path}", "data.gap=4"])
    with pytest.raises(ValueError, match=r"data.source 'steel' splits itself"):
        load_config("configs/steel_lightweight.yaml", ["data.split=ordered"])
    with pytest.raises(
        ValueError, match=r"data.split must be one of \('random', 'ordered', 'stratified'\)"
    ):
        load_config("configs/steel_lightweight.yaml", ["data.split=time"])
    with pytest.raises(ValueError, match=r"data.gap must be >= 0; got -1"):
        load_config("configs/steel_lightweight.yaml", ["data.gap=-1"])
    with pytest.raises(ValueError, match=r"d.npz: a split of 10 examples .* with a gap of 2"):
        npz_splits(str(path), SplitPlan(seed=0, fractions=SPLITS, split="ordered", gap=2))


def test_a_forecaster_trains_on_its_own_ordered_windows_with_targets_in_their_units(tmp_path):
    """Trend on a user's npz: its targets (N, horizons, [trend, volatility]) stay in their
    own units, since the direction classes are cut at +-0.1 of the trend score (they were
    standardised as regression targets, and the run failed at its test split with a
    broadcasting error); `mse` targets are still standardised. The run's test metrics are
    what `evaluate` scores on the split it reloads."""
    from seqjax.data.sources import load_splits
    from seqjax.train.restore import evaluate_run, load_run_config, restore_state
    from seqjax.train.run import run_experiment

    rng = np.random.default_rng(0)
    inputs = rng.normal(size=(80, 6, 3)).astype(np.float32)
    trend = np.tanh(inputs[:, -2:, :1].mean(1) * np.array([[1.0, 0.5]]))  # (N, 2)
    volatility = 0.05 + 0.1 * np.abs(rng.normal(size=(80, 2)))
    targets = np.stack([trend, volatility], -1).astype(np.float32)  # (N, 2, 2)
    path = tmp_path / "weeks.npz"
    np.savez(path, inputs=inputs, targets=targets)
    sets = [f"data.source=npz:{path}", "data.split=ordered", "data.gap=6"]
    run = [*sets, "train.epochs=1", "train.batch_size=8", "train.plots=false"]
    run += ["model.hidden_size=8", "model.head_dim=8"]  # a small model compiles faster
    cfg = load_config("configs/trend.yaml", run)
    splits = load_splits(cfg.data, cfg.train.loss)
    assert splits["train"].target_scaler is None
    np.testing.assert_array_equal(splits["train"].targets, targets[:56])
    assert load_splits(cfg.data, "mse")["train"].target_scaler is not None

    result = run_experiment(cfg, str(tmp_path / "run"), log=lambda _: None)
    saved = load_run_config(str(tmp_path / "run"))
    reloaded = load_splits(saved.data, saved.train.loss)
    state, _ = restore_state(str(tmp_path / "run"), saved, reloaded["train"])
    again = evaluate_run(saved, state, reloaded["test"])
    assert again["d7_direction_accuracy"] == result["test"]["d7_direction_accuracy"]
    assert again["loss"] == pytest.approx(result["test"]["loss"], rel=1e-6)

"""Users' data: the UEA/UCR datasets shipped in aeon, .npz and CSV files, and their errors."""

import json
import os

import numpy as np
import pytest

from seqjax.config import load_config
from seqjax.data.external import aeon_data_dir, csv_splits, npz_splits
from seqjax.data.sources import adapt_to_data, load_splits
from seqjax.data.splits import SplitPlan
from seqjax.data.ts_format import read_ts
from seqjax.metrics import multiclass_classification
from seqjax.train.loop import check_outputs_fit_targets
from seqjax.train.monitor import logged_names
from seqjax.train.run import run_experiment

pytest.importorskip("aeon", reason="the aeon extra ships the UEA/UCR files")
SPLITS = (0.7, 0.15, 0.15)


def test_variable_length_multivariate_ts_file_parses_exactly():
    path = os.path.join(aeon_data_dir(), "JapaneseVowels", "JapaneseVowels_TRAIN.ts")
    data = read_ts(path)
    assert data.inputs.shape == (270, 26, 12) and data.inputs.dtype == np.float32
    assert data.lengths.min() == 7 and data.lengths.max() == 26
    assert data.class_names == tuple(str(k) for k in range(1, 10))
    with open(path) as f:
        first = next(line for line in f if line[:1] not in "#@\n").strip()
    *dims, label = first.split(":")
    expected = np.array([d.split(",") for d in dims], np.float32).T  # (T, 12)
    n = data.lengths[0]
    assert n == len(expected) and data.class_names[data.labels[0]] == label
    np.testing.assert_array_equal(data.inputs[0, :n], expected)
    assert not data.inputs[0, n:].any()


def test_aeon_source_keeps_the_official_test_split_and_scales_on_train_only():
    cfg = load_config("configs/steel_lightweight.yaml", ["data.source=aeon:JapaneseVowels"])
    splits = load_splits(cfg.data)
    assert [len(splits[k]) for k in ("train", "val", "test")] == [222, 48, 370]
    train = splits["train"]
    valid = np.arange(train.inputs.shape[1]) < train.lengths[:, None]
    np.testing.assert_allclose(train.inputs[valid].mean(0), 0, atol=1e-4)
    assert abs(splits["test"].inputs[np.arange(29) < splits["test"].lengths[:, None]].mean()) > 0
    adapted = adapt_to_data(cfg, splits)
    assert (adapted.model.features, adapted.model.num_classes) == (12, 9)
    assert adapted.train.loss == "cross_entropy" and adapted.train.monitor == "val_accuracy"


def test_a_classifier_config_trains_on_an_aeon_dataset_by_name(tmp_path):
    cfg = load_config(
        "configs/steel_lightweight.yaml",
        [
            "data.source=aeon:UnitTest",
            "train.epochs=2",
            "train.batch_size=8",
            "checkpoint.enabled=false",
            "train.plots=false",
        ],
    )
    metrics = run_experiment(cfg, str(tmp_path / "run"), log=lambda _: None)
    assert set(metrics["test"]) >= {"auc_roc", "accuracy"}
    saved = (tmp_path / "run" / "config.yaml").read_text()
    assert "features: 1\n" in saved and "num_classes: 1\n" in saved


def test_unknown_aeon_dataset_lists_the_shipped_ones():
    cfg = load_config("configs/steel_lightweight.yaml", ["data.source=aeon:NoSuchSet"])
    with pytest.raises(ValueError, match="unknown aeon dataset 'NoSuchSet'.*JapaneseVowels"):
        load_splits(cfg.data)


def _npz(path, **arrays):
    np.savez(path, **arrays)
    return str(path)


def test_npz_source_with_integer_labels_is_multiclass(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((30, 8, 2)).astype(np.float32)
    lengths = rng.integers(2, 9, 30).astype(np.int32)
    x[np.arange(8) >= lengths[:, None]] = 0
    labels = np.arange(30) % 3
    splits = npz_splits(
        _npz(tmp_path / "d.npz", inputs=x, lengths=lengths, targets=labels),
        SplitPlan(seed=0, fractions=SPLITS),
    )
    assert sum(len(s) for s in splits.values()) == 30
    assert splits["train"].targets.dtype == np.int32
    assert set(np.concatenate([s.lengths for s in splits.values()])) == set(lengths)


@pytest.mark.parametrize(
    "arrays, message",
    [
        (
            {
                "inputs": np.array([np.zeros((3, 2)), np.zeros((5, 2))], dtype=object),
                "targets": np.zeros(2),
            },
            "without pickle.*zero-padded.*seqjax.data.pad_sequences",
        ),
        ({"inputs": np.zeros((10, 3, 2))}, r"missing arrays \['targets'\]"),
        ({"inputs": np.full((10, 3, 2), np.nan), "targets": np.zeros(10)}, "NaN or Inf"),
        ({"inputs": np.zeros((10, 3)), "targets": np.zeros(10)}, r"\(N, T, C\)"),
        (
            {"inputs": np.zeros((10, 3, 2)), "lengths": np.full(10, 2.5), "targets": np.zeros(10)},
            "lengths must be integers",
        ),
        (
            {"inputs": np.zeros((10, 3, 2)), "lengths": np.full(10, 5), "targets": np.zeros(10)},
            r"lengths must lie in \[1, 3\]",
        ),
        (
            {"inputs": np.zeros((10, 3, 2)), "targets": np.array([0, 1, -1, 2] * 2 + [0, 0])},
            "class labels must be 0..K-1",
        ),
        (
            {"inputs": np.zeros((10, 3, 2)), "targets": np.ones(10)},
            r"every target is class 1; a classifier needs two classes or more",
        ),
    ],
)
def test_bad_npz_data_is_named(tmp_path, arrays, message):
    with pytest.raises(ValueError, match=message):
        npz_splits(_npz(tmp_path / "bad.npz", **arrays), SplitPlan(seed=0, fractions=SPLITS))


def test_a_csv_of_one_class_name_is_refused_naming_it(tmp_path):
    rows = "".join(f"s{i},{t}.0,good\n" for i in range(10) for t in range(3))
    (tmp_path / "one.csv").write_text("sequence,a,target\n" + rows)
    with pytest.raises(ValueError, match=r"every target is class 'good'; a classifier needs"):
        csv_splits(str(tmp_path / "one.csv"), SplitPlan(seed=0, fractions=SPLITS))


def test_csv_long_form_groups_rows_into_sequences(tmp_path):
    rows = ["sequence,a,b,target"]
    for s, n in enumerate([3, 5, 2, 4, 6, 3]):
        rows += [f"s{s},{t},{-t},{s % 2}" for t in range(n)]
    path = tmp_path / "d.csv"
    path.write_text("\n".join(rows) + "\n")
    splits = csv_splits(str(path), SplitPlan(seed=0, fractions=(0.5, 0.25, 0.25)))
    lengths = sorted(np.concatenate([s.lengths for s in splits.values()]).tolist())
    assert lengths == [2, 3, 3, 4, 5, 6]
    assert splits["train"].inputs.shape[1:] == (6, 2)
    assert splits["train"].targets.dtype == np.float32  # two classes: 0/1 for one logit
    path.write_text("sequence,a,target\ns0,1,0\ns0,2,1\n")
    with pytest.raises(ValueError, match="target of sequence 's0' changes"):
        csv_splits(str(path), SplitPlan(seed=0, fractions=SPLITS))


def test_configs_that_cannot_classify_users_labels_say_so(tmp_path):
    x = np.ones((12, 4, 2), np.float32)
    path = _npz(tmp_path / "d.npz", inputs=x, targets=np.arange(12) % 3)
    cfg = load_config("configs/trust.yaml", [f"data.source=npz:{path}"])
    with pytest.raises(ValueError, match="model 'trust' gives one logit.*3 classes"):
        adapt_to_data(cfg, load_splits(cfg.data))
    cfg = load_config("configs/trend.yaml", [f"data.source=npz:{path}"])
    with pytest.raises(ValueError, match="'trend_multitask' is not a classifier config"):
        adapt_to_data(cfg, load_splits(cfg.data))


def test_multiclass_metrics_and_majority_baseline():
    probs = np.eye(3)[[0, 1, 2, 2, 0]]
    m = multiclass_classification(probs, np.array([0, 1, 2, 1, 0]))
    assert m["accuracy"] == pytest.approx(0.8) and m["majority_accuracy"] == pytest.approx(0.4)
    assert m["confusion_matrix"][1] == [0, 1, 1]
    assert m["macro_f1"] == pytest.approx((1 + 2 / 3 + 2 / 3) / 3)
    assert m["balanced_accuracy"] == pytest.approx((1 + 1 / 2 + 1) / 3)


@pytest.mark.filterwarnings("ignore:y_pred contains classes not in y_true")
def test_balanced_accuracy_is_scikit_learns_on_imbalanced_labels():
    """The mean recall over the classes the labels hold: a class never among the labels
    (3 here) does not count, and predicting the majority class scores 1 / K."""
    from sklearn.metrics import balanced_accuracy_score

    rng = np.random.default_rng(0)
    labels = rng.choice(3, size=200, p=[0.8, 0.15, 0.05])
    probs = rng.dirichlet(np.ones(4), size=200)
    m = multiclass_classification(probs, labels)
    assert m["balanced_accuracy"] == pytest.approx(
        balanced_accuracy_score(labels, probs.argmax(-1))
    )
    majority = multiclass_classification(np.eye(4)[np.zeros(200, int)], labels)
    assert majority["balanced_accuracy"] == pytest.approx(1 / 3)
    assert majority["accuracy"] == pytest.approx(np.mean(labels == 0))


def test_npz_regression_targets_train_with_mse_and_score_every_example_once(tmp_path):
    """Real-valued targets (N,) with train.loss=mse: one output, val_loss monitored,
    standardised targets with metrics in their own units, and a loss that weighs each
    example once (the short last batch's zero-weight copies out)."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((60, 10, 2)).astype(np.float32)
    y = 100 + x[:, :, 0].mean(1) + 0.1 * rng.standard_normal(60)  # in units near 100
    cfg = load_config(
        "configs/steel_lightweight.yaml",
        [
            f"data.source=npz:{_npz(tmp_path / 'r.npz', inputs=x, targets=y)}",
            "train.loss=mse",
            "train.epochs=2",
            "train.batch_size=5",  # the 9 test examples leave a batch of 4 and 1 copy
            "checkpoint.enabled=false",
            "train.plots=false",
        ],
    )
    adapted = adapt_to_data(cfg, load_splits(cfg.data))
    assert (adapted.model.num_classes, adapted.train.monitor, adapted.train.mode) == (
        1,
        "val_loss",
        "min",
    )
    test = run_experiment(cfg, str(tmp_path / "run"), log=lambda _: None)["test"]
    assert {"mse", "rmse", "mae", "correlation"} <= set(test)
    # the names the monitor check accepts are the logged row's, scaled targets and all
    history = json.loads((tmp_path / "run" / "history.json").read_text())
    splits = load_splits(cfg.data)
    shape = check_outputs_fit_targets(adapted, splits["train"])  # one example's predictions
    names = logged_names("mse", adapted.train.nonfinite, splits["val"], shape)
    assert splits["val"].target_scaler is not None
    assert sorted(history[0]) == names and "val_rmse" in names
    # trained on standardised targets, scored in their own units: one output's MSE is the
    # loss times its variance
    spec = json.loads((tmp_path / "run" / "data_spec.json").read_text())["target_scaler"]
    assert spec["mean"] == [pytest.approx(float(y[:42].mean()), abs=0.5)]
    assert test["mse"] == pytest.approx(test["loss"] * spec["std"][0] ** 2, rel=1e-5)
    cfg = load_config(
        "configs/steel_lightweight.yaml", [cfg_source := f"data.source=npz:{tmp_path / 'r2.npz'}"]
    )
    _npz(tmp_path / "r2.npz", inputs=x, targets=np.stack([y, y], 1))
    with pytest.raises(ValueError, match=r"targets of shape \(2,\) per sequence; model 'steel'"):
        adapt_to_data(
            load_config("configs/steel_lightweight.yaml", [cfg_source, "train.loss=mse"]),
            load_splits(cfg.data),
        )


def test_integer_targets_are_values_to_regress_when_the_config_says_so(tmp_path):
    """Days to failure (integers, negatives too) are classes by default, named as such
    for a regression config; data.targets=values makes them standardised values."""
    x = np.random.default_rng(0).standard_normal((30, 5, 2)).astype(np.float32)
    days = np.arange(30) % 7 - 2  # -2..4
    path = _npz(tmp_path / "d.npz", inputs=x, targets=days)
    cfg = load_config("configs/steel_lightweight.yaml", [f"data.source=npz:{path}"])
    with pytest.raises(ValueError, match="class labels must be 0..K-1; got -2"):
        load_splits(cfg.data)
    cfg = load_config(
        "configs/steel_lightweight.yaml",
        [f"data.source=npz:{path}", "data.targets=values", "train.loss=mse"],
    )
    splits = load_splits(cfg.data)
    assert splits["train"].targets.dtype == np.float32 and splits["train"].target_scaler
    assert adapt_to_data(cfg, splits).model.num_classes == 1
    path = _npz(tmp_path / "c.npz", inputs=x, targets=np.arange(30) % 3)
    cfg = load_config(
        "configs/steel_lightweight.yaml", [f"data.source=npz:{path}", "train.loss=mse"]
    )
    with pytest.raises(ValueError, match="or --set data.targets=values if the integers"):
        adapt_to_data(cfg, load_splits(cfg.data))
    with pytest.raises(ValueError, match="data.targets must be 'auto', 'classes' or 'values'"):
        load_config("configs/steel_lightweight.yaml", ["data.targets=numbers"])

"""What `seqjax evaluate` and `seqjax predict` fit on a trained run's validation split:
`--calibrate` scores and writes what `seqjax.calibration` fits there, applied to the
run's own predictions, and `--coverage` the sets and intervals of `seqjax.conformal`;
what cannot be fitted is refused before anything runs."""

import json

import numpy as np
import pytest

from seqjax import conformal
from seqjax.calibration import fit, recalibrate
from seqjax.cli import main
from seqjax.data.sources import load_splits
from seqjax.metrics import binary_classification
from seqjax.train.restore import load_run_config, predict, restore_state
from tests.approx_tree import approx_tree
from tests.runs import train_run

# One xdist worker runs this file (`--dist loadgroup`), so its module fixture, a trained
# run, is trained once.
pytestmark = pytest.mark.xdist_group("cli_validation_fits")

# positives weighed 4 times: the model's probabilities lean to the positive class
TINY = ["data.size=600", "train.epochs=6", "model.hidden_sizes=[32, 16, 8]", "train.pos_weight=4"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return train_run(tmp_path_factory.mktemp("calibrate") / "run", "configs/trust.yaml", *TINY)


def test_evaluate_scores_the_test_split_recalibrated_on_the_validation_split(run_dir, capsys):
    cfg = load_run_config(str(run_dir))
    splits = load_splits(cfg.data)
    state, _ = restore_state(str(run_dir), cfg, splits["test"])
    val = predict(cfg, state, splits["val"])
    heads = fit(cfg.train.loss, val, splits["val"].targets)
    test = predict(cfg, state, splits["test"])
    ours = binary_classification(recalibrate(cfg.train.loss, test, heads), splits["test"].targets)

    capsys.readouterr()
    assert main(["evaluate", str(run_dir), "--calibrate"]) == 0
    line = json.loads(capsys.readouterr().out)
    assert line["recalibration"] == {"fitted_on": "val", "heads": [heads[0].to_json()]}
    assert "loss" not in line  # recalibrated probabilities are not the model's output
    for key in ("accuracy", "f1", "auc_roc", "auc_pr", "brier", "ece"):
        assert line[key] == pytest.approx(ours[key], rel=1e-6), key
    assert main(["evaluate", str(run_dir)]) == 0
    plain = json.loads(capsys.readouterr().out)
    assert plain["auc_roc"] == line["auc_roc"]  # the ranking stays
    assert line["ece"] < plain["ece"]
    # the positives weighed up in training: recalibration pulls their share back down
    assert heads[0].bias[1] < 0
    assert np.mean(recalibrate(cfg.train.loss, test, heads)) < np.mean(test)

    # scored where it was fitted: said on stderr, since its figures are optimistic
    assert main(["evaluate", str(run_dir), "--calibrate", "--split", "val"]) == 0
    assert "fitted on the validation split, the split scored here" in capsys.readouterr().err

    # with --threshold val-f1, the threshold is the recalibrated validation split's best
    assert main(["evaluate", str(run_dir), "--calibrate", "--threshold", "val-f1"]) == 0
    line = json.loads(capsys.readouterr().out)
    from seqjax.metrics import best_f1_threshold

    chosen = best_f1_threshold(recalibrate(cfg.train.loss, val, heads), splits["val"].targets)
    assert line["threshold"] == pytest.approx(chosen, rel=1e-6)


def test_predict_writes_the_recalibrated_probabilities(run_dir, tmp_path, capsys):
    cfg = load_run_config(str(run_dir))
    splits = load_splits(cfg.data)
    test = splits["test"]
    np.savez(tmp_path / "in.npz", inputs=test.inputs, lengths=test.lengths)
    argv = ["predict", str(run_dir), "--input", str(tmp_path / "in.npz")]
    capsys.readouterr()
    assert main([*argv, "--output", str(tmp_path / "raw.csv")]) == 0
    assert main([*argv, "--output", str(tmp_path / "cal.csv"), "--calibrate"]) == 0
    said = capsys.readouterr().out.strip().splitlines()[-1]
    assert "recalibrated on the validation split (scale " in said
    raw = np.loadtxt(tmp_path / "raw.csv", delimiter=",", skiprows=1)
    cal = np.loadtxt(tmp_path / "cal.csv", delimiter=",", skiprows=1)
    state, _ = restore_state(str(run_dir), cfg, test)
    heads = fit(cfg.train.loss, predict(cfg, state, splits["val"]), splits["val"].targets)
    expected = recalibrate(cfg.train.loss, raw.astype(np.float32), heads)
    np.testing.assert_allclose(cal, expected, atol=1e-6)
    assert np.abs(cal - raw).max() > 1e-2  # it moved them


def test_a_run_predicting_values_is_refused_before_it_is_read(tmp_path, capsys):
    """The hybrid regresses three values: no probabilities to recalibrate. Its config is
    all the refusal reads: the run has no data spec or checkpoint."""
    run = tmp_path / "hybrid"
    run.mkdir()
    capsys.readouterr()
    assert main(["configs", "hybrid"]) == 0
    (run / "config.yaml").write_text(capsys.readouterr().out)
    for argv in (
        ["evaluate", str(run), "--calibrate"],
        [
            "predict",
            str(run),
            "--calibrate",
            "--input",
            "x.npz",
            "--output",
            str(tmp_path / "o.csv"),
        ],
    ):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert "recalibration applies to a classifier's probabilities" in err, argv
        assert "this run's loss 'mse' predicts values" in err


def test_coverage_sets_are_fitted_on_the_validation_split_and_scored_on_the_test_split(
    run_dir, tmp_path, capsys
):
    cfg = load_run_config(str(run_dir))
    splits = load_splits(cfg.data)
    val, test = splits["val"], splits["test"]
    state, _ = restore_state(str(run_dir), cfg, test)
    fitted = conformal.fit(cfg.train.loss, predict(cfg, state, val), val.targets, 0.9)
    probabilities = predict(cfg, state, test)

    capsys.readouterr()
    assert main(["evaluate", str(run_dir), "--coverage", "0.9"]) == 0
    line = json.loads(capsys.readouterr().out)
    ours = conformal.achieved(cfg.train.loss, probabilities, test.targets, fitted)
    assert line["conformal"] == approx_tree(ours)
    assert line["conformal"]["calibration_size"] == len(val) == 90
    assert "loss" in line  # the model's own probabilities: its loss stands

    np.savez(tmp_path / "in.npz", inputs=test.inputs, lengths=test.lengths)
    argv = ["predict", str(run_dir), "--input", str(tmp_path / "in.npz"), "--coverage", "0.9"]
    assert main([*argv, "--output", str(tmp_path / "sets.csv")]) == 0
    said = capsys.readouterr().out
    assert "with sets or intervals at coverage 0.9 from 90 validation sequences" in said
    lines = (tmp_path / "sets.csv").read_text().splitlines()
    assert lines[0] == "probability,set_0,set_1"
    sets = np.array([[int(v) for v in row.split(",")[1:]] for row in lines[1:]])  # whole 0/1
    threshold = fitted.class_thresholds[0][0]  # one for both classes
    expected = np.stack([1 - probabilities >= threshold, probabilities >= threshold], -1)
    expected[np.arange(len(expected)), (probabilities > 0.5).astype(int)] = True  # the top
    np.testing.assert_array_equal(sets, expected)
    assert main([*argv, "--output", str(tmp_path / "sets.npz")]) == 0
    with np.load(tmp_path / "sets.npz") as f:
        assert list(f["conformal_columns"]) == ["set_0", "set_1"]
        np.testing.assert_array_equal(f["conformal"], expected)

    # --by-class: each class's threshold from its own validation sequences
    capsys.readouterr()
    assert main(["evaluate", str(run_dir), "--coverage", "0.9", "--by-class"]) == 0
    each = json.loads(capsys.readouterr().out)["conformal"]
    by_class = conformal.fit(
        cfg.train.loss, predict(cfg, state, val), val.targets, 0.9, by_class=True
    )
    assert len(set(by_class.class_thresholds[0])) == 2  # two thresholds, one per class
    assert each == approx_tree(
        conformal.achieved(cfg.train.loss, probabilities, test.targets, by_class)
    )
    assert len(each["covered_by_class"]) == 2
    assert main([*argv, "--output", str(tmp_path / "each.csv"), "--by-class"]) == 0
    assert "at coverage 0.9 for each class from 90" in capsys.readouterr().out

    for extra, message in (
        (["--calibrate"], "--coverage and --calibrate both fit on the validation split"),
        (["--coverage", "1.0"], "--coverage must lie strictly between 0 and 1; got 1.0"),
    ):
        capsys.readouterr()
        assert main(["evaluate", str(run_dir), "--coverage", "0.9", *extra]) == 2
        assert message in capsys.readouterr().err


def test_a_regression_gets_an_interval_per_output(tmp_path, capsys):
    """The LSTM baseline regresses three values: one width per value, each its own
    validation residuals' quantile."""
    run = tmp_path / "baseline"
    tiny = ["data.size=200", "train.epochs=1", "model.hidden_size=8", "model.num_layers=1"]
    argv = ["train", "--config", "configs/lstm_baseline.yaml", "--run-dir", str(run)]
    assert main([*argv, "--set", *tiny]) == 0
    cfg = load_run_config(str(run))
    splits = load_splits(cfg.data, cfg.train.loss)
    val, test = splits["val"], splits["test"]
    state, _ = restore_state(str(run), cfg, test)
    residuals = np.abs(val.targets_in_units() - predict(cfg, state, val))  # (30, 3)
    rank = int(np.ceil(31 * 0.8))  # the 25th smallest of 30
    widths = 2 * np.sort(residuals, axis=0)[rank - 1]
    capsys.readouterr()
    assert main(["evaluate", str(run), "--coverage", "0.8"]) == 0
    scored = json.loads(capsys.readouterr().out)["conformal"]
    for j in range(3):
        assert scored[f"y{j}_width"] == pytest.approx(widths[j], rel=1e-6)
    np.savez(tmp_path / "in.npz", inputs=test.inputs, lengths=test.lengths)
    out = tmp_path / "intervals.csv"
    argv = ["predict", str(run), "--input", str(tmp_path / "in.npz"), "--output", str(out)]
    assert main([*argv, "--coverage", "0.8"]) == 0
    header = out.read_text().splitlines()[0].split(",")
    assert header == ["y0", "y1", "y2", "y0_lo", "y0_hi", "y1_lo", "y1_hi", "y2_lo", "y2_hi"]
    rows = np.loadtxt(out, delimiter=",", skiprows=1)
    np.testing.assert_allclose(rows[:, 4] - rows[:, 3], widths[0], rtol=1e-6)
    np.testing.assert_allclose((rows[:, 3] + rows[:, 4]) / 2, rows[:, 0], rtol=1e-5, atol=1e-6)
    capsys.readouterr()
    assert main(["evaluate", str(run), "--coverage", "0.8", "--by-class"]) == 2
    assert "--by-class fits a classifier's sets class by class" in capsys.readouterr().err
    assert main(["evaluate", str(run), "--by-class"]) == 2
    assert "give --coverage" in capsys.readouterr().err
    assert main([*argv, "--by-class"]) == 2  # predict, likewise
    assert "give --coverage" in capsys.readouterr().err

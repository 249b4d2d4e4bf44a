"""`seqjax evaluate --calibrate` and `seqjax predict --calibrate` on a trained run: they
score and write what `seqjax.calibration` fits on the run's validation split, applied to
the run's own predictions; what cannot be recalibrated is refused before anything runs."""

import json

import numpy as np
import pytest

from seqjax.calibration import fit, recalibrate
from seqjax.cli import main
from seqjax.data.sources import load_splits
from seqjax.metrics import binary_classification
from seqjax.train.restore import load_run_config, predict, restore_state

# One xdist worker runs this file (`--dist loadgroup`), so its module fixture, a trained
# run, is trained once.
pytestmark = pytest.mark.xdist_group("cli_calibrate")

# positives weighed 4 times: the model's probabilities lean to the positive class
TINY = ["data.size=600", "train.epochs=6", "model.hidden_sizes=[32, 16, 8]", "train.pos_weight=4"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("calibrate") / "run"
    argv = ["train", "--config", "configs/trust.yaml", "--run-dir", str(run_dir)]
    assert main([*argv, "--set", *TINY]) == 0
    return run_dir


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

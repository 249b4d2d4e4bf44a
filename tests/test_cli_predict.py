"""`seqjax predict` beyond one probability per sequence: a multi-horizon run (trend, whose
targets are (N, 2, 2) and predictions (N, 2, 4)) predicts what `evaluate` scores, with a
named column per value; every task names its columns.

Before, predict built (N,) placeholder targets, and the eval step's loss failed on the
trend's and the hybrid's target shapes, so only the binary systems could predict."""

import json

import numpy as np
import pytest

from seqjax.cli import main
from seqjax.data.sources import load_splits
from seqjax.tasks import TASKS, get_task
from seqjax.train.restore import load_run_config

HORIZON = ["score", "p_down", "p_flat", "p_up"]  # a horizon's columns
TINY_TREND = ["data.size=10", "train.epochs=1", "model.hidden_size=8", "model.head_dim=8"]


@pytest.fixture(scope="module")
def trend_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("trend") / "run"
    argv = ["train", "--config", "configs/trend.yaml", "--run-dir", str(run_dir)]
    assert main([*argv, "--set", *TINY_TREND]) == 0
    return run_dir


def test_a_trend_run_predicts_what_evaluate_scores_with_named_columns(trend_run, tmp_path, capsys):
    cfg = load_run_config(str(trend_run))
    test = load_splits(cfg.data)["test"]
    np.savez(tmp_path / "in.npz", inputs=test.inputs, lengths=test.lengths)
    for out in ("out.csv", "out.npz"):
        argv = ["predict", str(trend_run), "--input", str(tmp_path / "in.npz")]
        assert main([*argv, "--output", str(tmp_path / out)]) == 0
    header = (tmp_path / "out.csv").read_text().splitlines()[0].split(",")
    assert header == [f"{h}_{v}" for h in ("d7", "d30") for v in HORIZON]
    rows = np.loadtxt(tmp_path / "out.csv", delimiter=",", skiprows=1)  # (N, 8)
    with np.load(tmp_path / "out.npz", allow_pickle=False) as f:
        preds, columns = f["predictions"], list(f["columns"])
    assert preds.shape == (len(test.inputs), 2, 4) and columns == header
    np.testing.assert_array_equal(rows, preds.reshape(len(preds), -1))
    np.testing.assert_allclose(preds[..., 1:].sum(-1), 1.0, rtol=1e-5)  # per horizon

    capsys.readouterr()
    assert main(["evaluate", str(trend_run), "--split", "test"]) == 0
    scored = json.loads(capsys.readouterr().out)
    ours = get_task(cfg.train.loss).evaluate(preds, test.targets)
    for key in ("d7_rmse", "d30_rmse", "d7_class_accuracy", "d30_direction_accuracy"):
        assert ours[key] == pytest.approx(scored[key], rel=1e-6), key


@pytest.mark.parametrize(
    "loss,shape,expected",
    [
        ("binary_cross_entropy", (), ["probability"]),
        ("cross_entropy", (3,), ["p_class_0", "p_class_1", "p_class_2"]),
        ("mse", (3,), ["y0", "y1", "y2"]),
        ("mse", (), ["y"]),
        ("trend_volatility_aware", (2, 4), get_task("trend_multitask").columns((2, 4))),
        ("trend_multitask", (3, 4), [f"h{k}_{v}" for k in range(3) for v in HORIZON]),
    ],
)
def test_every_task_names_one_column_per_value(loss, shape, expected):
    assert TASKS[loss].columns(shape) == expected

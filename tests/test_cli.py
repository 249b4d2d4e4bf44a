"""The README's main job, shrunk: `seqjax train` writes a complete run directory."""

import json
import os

from seqjax.cli import main


def test_train_writes_a_run_directory(tmp_path, capsys):
    run_dir = tmp_path / "run"
    rc = main(
        [
            "train",
            "--config",
            "configs/trust.yaml",
            "--run-dir",
            str(run_dir),
            "--set",
            "data.size=300",
            "train.epochs=1",
            "model.hidden_sizes=[8, 8, 4]",
        ]
    )
    assert rc == 0
    assert sorted(os.listdir(run_dir)) == [
        "checkpoints",
        "config.yaml",
        "history.csv",
        "history.json",
        "metrics.json",
        "timings.json",
    ]
    assert os.listdir(run_dir / "checkpoints") == ["1"]
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert set(metrics["test"]) >= {"accuracy", "precision", "recall", "f1", "confusion_matrix"}
    assert sum(map(sum, metrics["test"]["confusion_matrix"])) == 45
    assert "test metrics" in capsys.readouterr().out


def test_usage_errors_exit_2_with_one_line(tmp_path, capsys):
    rc = main(
        [
            "train",
            "--config",
            "configs/trust.yaml",
            "--run-dir",
            str(tmp_path / "r"),
            "--set",
            "train.epoch=1",
        ]
    )
    assert rc == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "unknown key train.'epoch'" in err[0]
    assert not (tmp_path / "r").exists()

"""The experiment scripts run end to end, at a few examples and one epoch each: train,
evaluate, restore the best checkpoint and draw their plots. They are what a user runs on a
GPU or TPU, and nothing else in the suite imported them.

Not here: train_hybrid.py, which compiles two models of ~1.9M parameters (43 s at these
sizes with the suite's compiler settings; its feature ablation is tested in
test_hybrid.py), and train_trust.py, which is `seqjax train --config trust`
(test_cli.py). The hybrid's smoke run took 70 s on the AMD machine:
`python experiments/train_hybrid.py --set train.epochs=1 data.size=60 train.batch_size=8`."""

import runpy
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
TINY = ["train.epochs=1", "train.plots=true"]
RUNS = {
    "steel": (
        ["--variant", "standard", "--set", *TINY, "data.size=60", "train.batch_size=8"],
        ["metrics.json", "dataset.json", "plots/attention.png"],
    ),
    "trend": (
        ["--set", *TINY, "data.size=10", "model.hidden_size=8", "model.head_dim=8"],
        ["metrics.json", "plots/predicted_vs_actual.png", "plots/attention.png"],
    ),
}


@pytest.mark.parametrize("name", sorted(RUNS))
def test_an_experiment_script_trains_evaluates_and_plots(name, tmp_path, monkeypatch, capsys):
    args, written = RUNS[name]
    monkeypatch.chdir(tmp_path)  # not the repository: the scripts load shipped configs by name
    script = REPO / "experiments" / f"train_{name}.py"
    monkeypatch.setattr(sys, "argv", [str(script), *args, "--run-dir", str(tmp_path / "run")])
    runpy.run_path(str(script), run_name="__main__")
    for path in written:
        assert (tmp_path / "run" / path).is_file(), path
    assert f"run directory {tmp_path / 'run'}" in capsys.readouterr().out

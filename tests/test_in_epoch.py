"""Stops inside an epoch, in-process (`fit(..., stop=...)`): the step is saved and a
resume goes on to the history of a run never stopped; a stop at an epoch's last step
waits for that epoch's own checkpoint. tests/test_resume.py does the same with real
signals and SIGKILL in subprocesses."""

import os
import signal

import pytest

from seqjax.config import load_config
from seqjax.data.sources import load_splits
from seqjax.train.interrupt import TrainingStopped
from seqjax.train.loop import fit

# 280 training examples in batches of 32: 9 steps an epoch
SETS = ["data.size=400", "train.epochs=2", "model.hidden_sizes=[8, 4, 4]", "train.plots=false"]


@pytest.fixture(scope="module")
def run():
    cfg = load_config("configs/trust.yaml", SETS)
    splits = load_splits(cfg.data)
    return cfg, splits, fit(cfg, splits, log=lambda _: None).history


def _stop_at(step):
    return lambda at: signal.SIGTERM if at == step else None


@pytest.mark.parametrize(
    "step, message, folder",
    [
        (5, "at step 5, in epoch 1 (step 5 saved)", "checkpoints_in_epoch"),
        (9, "after epoch 1 (epoch 1 saved)", None),  # an epoch's last step
    ],
)
def test_a_stop_saves_its_step_and_the_resume_matches_a_run_never_stopped(
    tmp_path, run, step, message, folder
):
    cfg, splits, reference = run
    with pytest.raises(TrainingStopped) as stopped:
        fit(cfg, splits, run_dir=str(tmp_path), log=lambda _: None, stop=_stop_at(step))
    assert str(stopped.value) == f"stopped by SIGTERM {message}"
    in_epoch = tmp_path / "checkpoints_in_epoch"
    assert (os.listdir(in_epoch) == [str(step)]) if folder else not in_epoch.exists()
    logged = []
    result = fit(cfg, splits, run_dir=str(tmp_path), resume=True, log=logged.append)
    assert result.history == reference
    assert (f"resumed from step {step}, in epoch {1 + step // 9}" in logged) == bool(folder)

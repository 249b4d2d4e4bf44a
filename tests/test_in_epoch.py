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
    "step, message, folder, every_steps",
    [
        (5, "at step 5, in epoch 1 (step 5 saved)", "checkpoints_in_epoch", 0),
        (9, "after epoch 1 (epoch 1 saved)", None, 0),  # an epoch's last step
        # a step that checkpoint.every_steps has just saved (asynchronously) is not saved
        # again: the second save deleted the first under its writer
        (6, "at step 6, in epoch 1 (step 6 saved)", "checkpoints_in_epoch", 3),
    ],
)
def test_a_stop_saves_its_step_and_the_resume_matches_a_run_never_stopped(
    tmp_path, run, step, message, folder, every_steps
):
    _, splits, reference = run
    cfg = load_config("configs/trust.yaml", [*SETS, f"checkpoint.every_steps={every_steps}"])
    with pytest.raises(TrainingStopped) as stopped:
        fit(cfg, splits, run_dir=str(tmp_path), log=lambda _: None, stop=_stop_at(step))
    assert str(stopped.value) == f"stopped by SIGTERM {message}"
    in_epoch = tmp_path / "checkpoints_in_epoch"
    assert (os.listdir(in_epoch) == [str(step)]) if folder else not in_epoch.exists()
    logged = []
    result = fit(cfg, splits, run_dir=str(tmp_path), resume=True, log=logged.append)
    assert result.history == reference
    assert (f"resumed from step {step}, in epoch {1 + step // 9}" in logged) == bool(folder)


def test_a_save_never_starts_while_the_other_checkpointers_save_is_pending(tmp_path, monkeypatch):
    """With several processes each Orbax manager ends an asynchronous save with barriers
    of fixed names in a background thread, so overlapping saves of the epoch and in-epoch
    checkpoints hung a 2-process run (in_epoch.py). Every step is saved here, asynchronously,
    and each save checks that no other manager's save is still in flight."""
    import seqjax.train.checkpoint as checkpoint

    managers, overlaps = [], []
    real_save = checkpoint.Manager.save

    def save(self, step, *args, **kwargs):
        if self not in managers:
            managers.append(self)
        pending = [
            m.directory.name for m in managers if m is not self and m.is_saving_in_progress()
        ]
        if pending:
            overlaps.append((self.directory.name, step, pending))
        return real_save(self, step, *args, **kwargs)

    monkeypatch.setattr(checkpoint.Manager, "save", save)
    sets = [*SETS, "train.epochs=3", "checkpoint.every_steps=1", "checkpoint.async_save=true"]
    cfg = load_config("configs/trust.yaml", sets)
    fit(cfg, load_splits(cfg.data), run_dir=str(tmp_path), log=lambda _: None)
    assert len(managers) == 2 and overlaps == []

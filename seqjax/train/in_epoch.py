"""A checkpoint of the running epoch at a step, so a stop loses no steps.

Why: the epoch checkpoints (`checkpoint.py`) are written as each epoch ends, so a run
stopped inside an epoch went back to that epoch's start. For the seed systems on a CPU
an epoch is seconds; on users' data an epoch can be hours, and a preemptible machine's
SIGTERM then threw most of one away. Here a stop at a signal (and, with
`checkpoint.every_steps` N, every N steps, for a SIGKILL) saves the state at that step
with the epoch's bookkeeping so far: the step the epoch began at, its steps' losses,
weights and finiteness, and its elapsed time. `--resume` continues the epoch from the
next batch of the same order (`iterate_batches(start=...)`) and writes the history an
uninterrupted run writes, bit for bit (tests/test_resume.py).

These live beside the epoch checkpoints, in RUN/checkpoints_in_epoch, one at a time
(Orbax's max_to_keep 1); `predict` and `evaluate` never read them. One whose epoch has
since ended and been saved is stale and ignored.

With several processes, saves here and of the epoch checkpoints that overlapped hung the run
until the shutdown barrier's 5-minute timeout: each Orbax manager ends an asynchronous save
with coordination-service barriers of fixed names, in a background thread, and two saves in
flight met at each other's barriers or were refused ("Barrier
ThreadSaveMultiHostValueHolder:set_value_start is already ongoing"); two processes with
`checkpoint.every_steps=1` hung in three runs of eight. So each manager names its barriers
apart (`checkpoint.barrier_names`), and each waits for the pending save of the other,
`beside` it, before it starts one.
"""

from __future__ import annotations

import os

import jax
import orbax.checkpoint as ocp

from seqjax.train.checkpoint import (
    Checkpointer,
    CorruptCheckpointError,
    Manager,
    barrier_names,
)

DIRECTORY = "checkpoints_in_epoch"


def epoch_so_far(epoch: int, step0: int, metrics: list, seconds: float, first: float | None):
    """The JSON record of a running epoch: its index (0-based), the step it began at, and
    each step's loss, weight and finiteness so far (a host sync, at a save only)."""
    host = jax.device_get(metrics)
    return {
        "epoch": epoch,
        "step0": step0,
        "metrics": [[float(m["loss"]), float(m["weight"]), bool(m["finite"])] for m in host],
        "seconds": seconds,
        "first_step_seconds": first,
    }


def restored_metrics(record: dict) -> list[dict]:
    """The epoch's per-step metrics as the loop keeps them, from `epoch_so_far`'s record."""
    return [{"loss": loss, "weight": w, "finite": ok} for loss, w, ok in record["metrics"]]


class InEpochCheckpointer(Checkpointer):
    """The newest in-epoch checkpoint of a run, numbered by its global step."""

    unit = "step"

    def __init__(self, run_dir: str, *, async_save: bool = True):
        self.directory = os.path.abspath(os.path.join(run_dir, DIRECTORY))
        self.async_save = async_save
        self._start(self.directory)
        # Opened, and its directory made, at the first save: a run that never stops
        # inside an epoch leaves no trace of this.
        self._manager = self._open() if os.path.isdir(self.directory) else None
        self._saved_step: int | None = None  # the newest step this object has saved

    def _open(self) -> Manager:
        options = ocp.CheckpointManagerOptions(
            max_to_keep=1,
            enable_async_checkpointing=self.async_save,
            cleanup_tmp_directories=True,
            create=True,
            multiprocessing_options=barrier_names("seqjax_steps"),
        )
        return Manager(self.directory, options=options, item_names=("state", "loop"))

    @property
    def manager(self) -> Manager:  # type: ignore[override]  # (opened on first use)
        if self._manager is None:
            self._manager = self._open()
        return self._manager

    def latest_step(self) -> int | None:
        return None if self._manager is None else self._manager.latest_step()

    def wait(self) -> None:
        if self._manager is not None:
            super().wait()

    def close(self, *, after_error: bool = False) -> None:
        if self._manager is not None:
            super().close(after_error=after_error)

    def save_step(self, step: int, state, loop: dict, record: dict) -> None:
        """Save `state` at global `step` with the loop as of the last ended epoch and the
        running epoch's `record`. A step this run has just saved is not saved again: a stop
        at a step `checkpoint.every_steps` saved deleted that save while it was being
        written, under its writer."""
        if step == self._saved_step:
            return
        self.wait_beside()
        for old in self.manager.all_steps():
            if old >= step:  # left by a run that went back past it: make way
                self.manager.delete(old)
        with self._reporting_disk_full(step):
            self.manager.save(
                step,
                args=ocp.args.Composite(
                    state=ocp.args.StandardSave(state),
                    loop=ocp.args.JsonSave({**loop, "in_epoch": record}),
                ),
            )
        self._saved_step = step

    def restore_running(self, epoch: int, like_state, warn):
        """(state, loop, record) of the newest in-epoch checkpoint if it is of `epoch` (the
        next epoch the restored run would start), else None. A damaged one is reported
        and deleted; the epoch checkpoints then decide, as before."""
        step = self.latest_step()
        if step is None:
            return None
        try:
            state, loop = self.restore(step, like_state)
        except CorruptCheckpointError as err:
            warn(f"warning: skipping and deleting {err}")
            self.manager.delete(step)
            return None
        record = loop.pop("in_epoch")
        if record["epoch"] != epoch:
            return None
        return state, loop, record

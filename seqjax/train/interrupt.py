"""Stopping a training run cleanly on SIGINT (Ctrl-C) or SIGTERM (a scheduler's notice).

Without this, Ctrl-C raised KeyboardInterrupt at whatever bytecode was running (a traceback,
possibly inside a checkpoint call) and SIGTERM, which Slurm, Kubernetes and preemptible
VMs send before they kill, ended the process at once, dropping an asynchronous checkpoint
still being written. Here the signal only sets a flag; the fit loop reads it between steps
and between epochs (`TrainingStopped`), the pending checkpoint is finished, and the command
line names the epoch that `--resume` continues from.

A second signal while stopping acts as it would have without this module (KeyboardInterrupt,
or death by SIGTERM), for a user who does not want to wait. Handlers are set only in the
main thread.

With several processes (`jax.distributed`) a process cannot stop on its own: the others
would wait for it in the next collective. JAX's preemption service, on by default there,
already catches SIGTERM in every process (so before this, a multi-process run ignored
SIGTERM until the SIGKILL that follows it) and agrees on a step at which all of them stop;
the fit loop asks it at every step (`multihost_utils.reached_preemption_sync_point`).
SIGINT keeps Python's behaviour there.

A run can also stop at a non-finite loss or gradient (`TrainingDiverged`, under
`train.nonfinite=stop`); like a signal's stop, its message names the checkpoint saved and the
command that resumes, there with `train.nonfinite=skip`, which a resume may change.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Callable, Iterator

import jax
from jax.experimental import multihost_utils

SIGNALS = (signal.SIGINT, signal.SIGTERM)

# Given the number of steps done (the same on every process), a signal's number once the
# run should stop there, else None.
StopAsked = Callable[[int], "int | None"]


class TrainingStopped(Exception):
    """A run stopped at a signal; `saved_epoch` is the newest epoch checkpoint, if any, and
    `saved_step` the step saved inside the running epoch, if it was. Once `run_dir` is set
    (`run_experiment` sets it) the message names the command that resumes."""

    def __init__(
        self, signum: int, where: str, saved_epoch: int | None, saved_step: int | None = None
    ):
        super().__init__(signum, where, saved_epoch, saved_step)
        self.signum, self.where, self.saved_epoch = signum, where, saved_epoch
        self.saved_step = saved_step  # a stop inside an epoch saves its step (in_epoch.py)
        self.run_dir: str | None = None

    def __str__(self) -> str:
        name = signal.Signals(self.signum).name
        if self.saved_step is not None:
            text = f"stopped by {name} {self.where} (step {self.saved_step} saved)"
        elif self.saved_epoch is None:
            return f"stopped by {name} {self.where} (no checkpoint saved yet)"
        else:
            text = f"stopped by {name} {self.where} (epoch {self.saved_epoch} saved)"
        if self.run_dir is None:
            return text
        return f"{text}; continue with: {resume_command(self.run_dir)}"

    @property
    def exit_code(self) -> int:
        """128 + the signal's number, as a shell reports a process the signal ended."""
        return 128 + self.signum


class TrainingDiverged(FloatingPointError):
    """A step's loss or gradient was NaN or infinite under `train.nonfinite=stop`: nothing
    after the newest checkpoint (the step `saved_step` inside the epoch, else the epoch
    `saved_epoch`, if any) was saved. Once `run_dir` is set the message names the command
    that resumes from it, skipping such updates."""

    def __init__(
        self, step: int, epoch: int, saved_epoch: int | None, saved_step: int | None = None
    ):
        super().__init__(step, epoch, saved_epoch, saved_step)
        self.step, self.epoch, self.saved_epoch = step, epoch, saved_epoch
        self.saved_step = saved_step
        self.run_dir: str | None = None

    def __str__(self) -> str:
        text = f"non-finite training loss or gradient at step {self.step} (epoch {self.epoch}); "
        if self.saved_step is not None:
            text += f"nothing after step {self.saved_step} was saved"
        elif self.saved_epoch is not None:
            text += f"nothing after epoch {self.saved_epoch}'s checkpoint was saved"
        else:
            return text + "no checkpoint saved yet (train.nonfinite=skip skips such updates)"
        if self.run_dir is None:
            return text + " (train.nonfinite=skip skips such updates)"
        return f"{text}; skip such updates and go on with: " + resume_command(
            self.run_dir, "train.nonfinite=skip"
        )


def resume_command(run_dir: str, *sets: str) -> str:
    """The command line that continues the run in `run_dir`, with `--set` overrides."""
    config = os.path.join(run_dir, "config.yaml")
    command = f"seqjax train --config {config} --run-dir {run_dir} --resume"
    if sets:
        command += " --set " + " ".join(sets)
    if jax.process_count() > 1:  # the same processes again (seqjax/train/distributed.py)
        command += ", in every process with its --distributed or --coordinator options"
    return command


def never(step: int) -> int | None:
    return None


def preemption_sync_point(step: int) -> int | None:
    """SIGTERM once every process has reached the step JAX's preemption service chose."""
    return signal.SIGTERM if multihost_utils.reached_preemption_sync_point(step) else None


@contextlib.contextmanager
def stop_on_signals() -> Iterator[StopAsked]:
    """Within the block SIGINT and SIGTERM set a flag instead of ending the process; with
    several processes, SIGTERM to any of them stops all at one step."""
    if jax.process_count() > 1:
        service = getattr(jax.config, "jax_enable_preemption_service", False)
        yield preemption_sync_point if service else never
        return
    if threading.current_thread() is not threading.main_thread():
        yield never
        return
    received: list[int] = []
    previous = {s: signal.getsignal(s) for s in SIGNALS}

    def restore() -> None:
        for s, handler in previous.items():
            signal.signal(s, handler)

    def handler(signum: int, frame) -> None:
        received.append(signum)
        restore()  # a second signal acts at once, as without this block

    for s in SIGNALS:
        signal.signal(s, handler)
    try:
        yield lambda step: received[0] if received else None
    finally:
        restore()

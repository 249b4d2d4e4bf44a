"""Stopping a training run cleanly on SIGINT (Ctrl-C) or SIGTERM (a scheduler's notice).

Without this, Ctrl-C raised KeyboardInterrupt at whatever bytecode was running (a traceback,
possibly inside a checkpoint call) and SIGTERM, which Slurm, Kubernetes and preemptible
VMs send before they kill, ended the process at once, dropping an asynchronous checkpoint
still being written. Here the signal only sets a flag; the fit loop reads it between steps
and between epochs (`TrainingStopped`), the pending checkpoint is finished, and the command
line names the epoch that `--resume` continues from.

A second signal while stopping acts as it would have without this module (KeyboardInterrupt,
or death by SIGTERM), for a user who does not want to wait. Handlers are set only in the
main thread of a single-process run: with several processes (`jax.distributed`) each one
would stop at its own step and leave the others waiting in a collective, so they keep the
default behaviour.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Callable, Iterator

import jax

SIGNALS = (signal.SIGINT, signal.SIGTERM)

StopAsked = Callable[[], "int | None"]  # the first signal's number once one came, else None


class TrainingStopped(Exception):
    """A run stopped at a signal; `saved_epoch` is the newest checkpoint, if any. Once
    `run_dir` is set (`run_experiment` sets it) the message names the command that resumes."""

    def __init__(self, signum: int, where: str, saved_epoch: int | None):
        super().__init__(signum, where, saved_epoch)
        self.signum, self.where, self.saved_epoch = signum, where, saved_epoch
        self.run_dir: str | None = None

    def __str__(self) -> str:
        name = signal.Signals(self.signum).name
        if self.saved_epoch is None:
            return f"stopped by {name} {self.where} (no checkpoint saved yet)"
        text = f"stopped by {name} {self.where} (epoch {self.saved_epoch} saved)"
        if self.run_dir is None:
            return text
        config = os.path.join(self.run_dir, "config.yaml")
        return (
            f"{text}; continue with: seqjax train --config {config} --run-dir {self.run_dir} "
            "--resume"
        )

    @property
    def exit_code(self) -> int:
        """128 + the signal's number, as a shell reports a process the signal ended."""
        return 128 + self.signum


def never() -> int | None:
    return None


@contextlib.contextmanager
def stop_on_signals() -> Iterator[StopAsked]:
    """Within the block SIGINT and SIGTERM set a flag instead of ending the process."""
    if threading.current_thread() is not threading.main_thread() or jax.process_count() > 1:
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
        yield lambda: received[0] if received else None
    finally:
        restore()

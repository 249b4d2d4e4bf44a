"""A live progress bar (rich) with the loss and throughput, shown only on a terminal.

Reading the loss forces the host to wait for that step, so the bar samples it every
`every` steps rather than each one; off a terminal nothing is drawn and nothing is synced.
"""

from __future__ import annotations

import sys
import time


class EpochProgress:
    def __init__(
        self, total: int, epoch: int, *, enabled: bool | None = None, every: int = 10, done: int = 0
    ):
        """`done`: steps of the epoch already trained (a run resumed inside the epoch)."""
        self.enabled = sys.stderr.isatty() if enabled is None else enabled
        self.total, self.every, self.done, self.first = total, every, done, done
        self.start = time.perf_counter()
        self._bar = None
        if self.enabled:
            from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

            self._bar = Progress(
                TextColumn(f"epoch {epoch}"),
                BarColumn(),
                TextColumn("{task.completed}/{task.total}"),
                TextColumn("{task.fields[info]}"),
                TimeRemainingColumn(),
                transient=True,
            )
            self._bar.start()
            self._task = self._bar.add_task("train", total=total, completed=done, info="")

    def step(self, loss) -> None:
        self.done += 1
        if self._bar is None:
            return
        if self.done % self.every == 0 or self.done == self.total:
            rate = (self.done - self.first) / (time.perf_counter() - self.start)
            info = f"loss {float(loss):.4f}  {rate:.1f} steps/s"
            self._bar.update(self._task, advance=1, info=info)
        else:
            self._bar.update(self._task, advance=1)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()

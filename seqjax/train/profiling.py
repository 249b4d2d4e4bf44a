"""A profile of chosen training steps (`train.profile_steps: [first, last]`), with
`jax.profiler`, into RUN_DIR/profile (RUN_DIR/profile/process_I with several processes).

Why: the benchmarks time whole steps; where a step's time goes (the recurrence's loop,
its launches on a GPU, the optimizer, host work between steps) needs the trace. Steps
after the first are the ones worth tracing, since the first compiles. Each traced step is
a `StepTraceAnnotation` named "train" with its global step number, and the loop waits
for each traced step to finish, so a step's span holds its device work rather than only
its dispatch (steps outside the range are not synchronised). The trace is XProf's
.xplane.pb (TensorBoard's profile plugin, or `xprof`) and a Perfetto trace
(`perfetto_trace.json.gz`, opened at ui.perfetto.dev without installing anything).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable

import jax


def check_profile_steps(steps: tuple[int, int], total: int | None = None) -> None:
    """Raise, naming the key, unless `steps` is (0, 0) (off) or a range of steps that
    starts within the run's `total` steps (when known)."""
    first, last = steps
    if (first, last) == (0, 0):
        return
    if not 1 <= first <= last:
        raise ValueError(
            f"train.profile_steps must be [first, last] with 1 <= first <= last, or [0, 0] "
            f"(off); got {list(steps)}"
        )
    if total is not None and first > total:
        raise ValueError(
            f"train.profile_steps starts at step {first}, past the run's {total} steps"
        )


def profile_directory(run_dir: str) -> str:
    """RUN_DIR/profile, and with several processes RUN_DIR/profile/process_I: JAX names a
    trace's files after the host, so processes sharing one (one per GPU) would overwrite
    each other's trace."""
    directory = os.path.join(run_dir, "profile")
    if jax.process_count() > 1:
        return os.path.join(directory, f"process_{jax.process_index()}")
    return directory


class StepProfiler:
    """Traces the global steps `first`..`last` (1-based) of a run into `directory`."""

    def __init__(self, steps: tuple[int, int], directory: str, log: Callable[[str], None]):
        self.first, self.last = steps
        self.directory, self.log = directory, log
        self.tracing = False

    def annotation(self, step: int):
        """The context to run `step` in: a step annotation while tracing, else nothing. A
        run resumed inside the range starts tracing at its first step there."""
        if not self.tracing and self.first <= step <= self.last and self.first > 0:
            os.makedirs(self.directory, exist_ok=True)
            jax.profiler.start_trace(self.directory, create_perfetto_trace=True)
            self.tracing = True
        if self.tracing:
            return jax.profiler.StepTraceAnnotation("train", step_num=step)
        return contextlib.nullcontext()

    def finished(self, step: int, outputs) -> None:
        """After `step` was dispatched: wait for it while tracing, and end at `last`."""
        if not self.tracing:
            return
        jax.block_until_ready(outputs)
        if step == self.last:
            self.close()

    def close(self) -> None:
        """Stop a trace still running (the run ended or failed inside the range)."""
        if not self.tracing:
            return
        jax.profiler.stop_trace()
        self.tracing = False
        self.log(
            f"profile of steps {self.first}-{self.last}: {self.directory} (TensorBoard's "
            "profile plugin, or its perfetto_trace.json.gz at ui.perfetto.dev)"
        )

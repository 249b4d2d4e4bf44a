"""Timing helpers shared by the benchmarks: medians and p90 over repeated calls."""

from __future__ import annotations

import platform
import resource
import time
from collections.abc import Callable

import jax
import numpy as np


def time_calls(fn: Callable[[], object], *, warmup: int = 2, repeats: int = 15) -> dict:
    """Median and p90 wall time in ms of `fn()`, which must block until its result is ready."""
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1e3)
    arr = np.asarray(samples)
    return {
        "median_ms": float(np.median(arr)),
        "p90_ms": float(np.percentile(arr, 90)),
        "repeats": repeats,
    }


def peak_rss_bytes() -> int:
    """This process's own peak resident memory.

    Why not getrusage alone: Linux carries ru_maxrss across exec, so a child spawned from
    a large benchmark process reports at least its parent's size at the fork. /proc's
    VmHWM belongs to the current address space, which exec replaced.
    """
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024  # kB
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # kB on Linux


def environment() -> dict:
    """Device and library versions to store next to every figure."""
    import flax
    import optax

    env = {
        "device": str(jax.devices()[0].device_kind),
        "platform": jax.default_backend(),
        "device_count": jax.device_count(),
        "cpu": platform.processor() or platform.machine(),
        "python": platform.python_version(),
        "jax": jax.__version__,
        "flax": flax.__version__,
        "optax": optax.__version__,
    }
    try:
        import torch

        env["torch"] = torch.__version__
        env["torch_threads"] = torch.get_num_threads()
    except ImportError:
        env["torch"] = None
    return env

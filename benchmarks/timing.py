"""Timing helpers shared by the benchmarks: medians and p90 over repeated calls."""

from __future__ import annotations

import glob
import os
import platform
import resource
import time
from collections.abc import Callable

import jax
import numpy as np

from seqjax.io import proc_status


def time_calls(fn: Callable[[], object], *, warmup: int = 2, repeats: int = 15) -> dict:
    """Median and p90 wall time in ms of `fn()`, which must block until its result is ready."""
    return time_interleaved({"fn": fn}, warmup=warmup, repeats=repeats)["fn"]


def time_interleaved(
    fns: dict[str, Callable[[], object]],
    *,
    warmup: int = 2,
    repeats: int = 15,
    min_seconds: float = 0.0,
) -> dict[str, dict]:
    """`time_calls` for several implementations at once, one call of each per round.

    Why: timed one block after another, a change in the machine's load between blocks
    lands on one implementation only and skews the ratio; interleaved, every
    implementation sees the same load, so ratios of medians survive a noisy machine.
    Rounds go on past `repeats` until `min_seconds` have passed (at most 20x `repeats`):
    15 rounds of millisecond calls last a fraction of a second, short enough for one
    busy moment of a shared machine to move a median. Each round calls the
    implementations in a fresh random order (seeded, so a run is repeatable), so each
    follows every other about equally often: a call can find the cores still busy with
    the one before it (PyTorch's OpenMP threads spin-wait after their work). Rotating one
    fixed order, as this did before, still put the same implementation right after
    PyTorch in all but one call per cycle: identical stacks timed that way read 0.92-0.95
    against each other on trend's 5 ms training calls (`python -m benchmarks.stack_ab HEAD
    --only trend` at 48709bc~1), within 2% once PyTorch left the rounds.
    """
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    names = list(fns)
    order = np.random.default_rng(0)
    samples: dict[str, list[float]] = {name: [] for name in fns}
    began, rounds = time.perf_counter(), 0
    while rounds < repeats or (time.perf_counter() - began < min_seconds and rounds < 20 * repeats):
        for k in order.permutation(len(names)):
            name = names[k]
            start = time.perf_counter()
            fns[name]()
            samples[name].append((time.perf_counter() - start) * 1e3)
        rounds += 1
    return {name: _stats(np.asarray(s), rounds) for name, s in samples.items()}


def _stats(arr: np.ndarray, repeats: int) -> dict:
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
    hwm = proc_status("VmHWM")  # kB
    if hwm is not None:
        return int(hwm) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # kB on Linux


def _read(path: str) -> str:
    with open(path) as f:
        return f.read().strip()


def cpu_model() -> str:
    """The host CPU, e.g. "Intel(R) Xeon(R) Processor (family 6, model 207; L2 2M, L3 300M)":
    the machines this suite runs on differ from run to run (an AMD EPYC one session, an
    Intel Xeon the next), and a figure read without the machine cannot be compared. Under
    a hypervisor the model name can be generic, hence the family, model and caches."""
    fields = {}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                fields.setdefault(key.strip(), value.strip())
    except OSError:
        return platform.processor() or platform.machine()
    caches = []
    for index in sorted(glob.glob("/sys/devices/system/cpu/cpu0/cache/index*")):
        try:
            level, kind, size = (_read(os.path.join(index, n)) for n in ("level", "type", "size"))
        except OSError:
            continue
        if kind != "Instruction" and level != "1":
            caches.append(f"L{level} {size}")
    detail = f"family {fields.get('cpu family', '?')}, model {fields.get('model', '?')}"
    if caches:
        detail += "; " + ", ".join(caches)
    return f"{fields.get('model name', platform.machine())} ({detail})"


def environment() -> dict:
    """Device and library versions to store next to every figure."""
    import flax
    import optax

    env = {
        "device": str(jax.devices()[0].device_kind),
        "platform": jax.default_backend(),
        "device_count": jax.device_count(),
        "cpu": cpu_model(),
        "cpu_cores": os.cpu_count(),
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

"""Timing helpers shared by the benchmarks: medians and p90 over repeated calls."""

from __future__ import annotations

import glob
import math
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
    block_ms: float = 50.0,
) -> dict[str, dict]:
    """`time_calls` for several implementations at once, in interleaved rounds.

    Why rounds: timed one after another, a change in the machine's load between them
    lands on one implementation only and skews the ratio; interleaved, every
    implementation sees the same load, so ratios of medians survive a noisy machine.
    Rounds go on past `repeats` until `min_seconds` have passed (at most 20x `repeats`):
    15 rounds of millisecond calls last a fraction of a second, short enough for one
    busy moment of a shared machine to move a median. Each round takes the
    implementations in a fresh random order (seeded, so a run is repeatable).

    Why blocks: on a 2-core machine a millisecond call depends on the call before it.
    PyTorch's OpenMP threads spin-wait after their work and hold the cores a moment;
    XLA's CPU runtime hands each call to a worker thread that is awake only if it ran
    recently. `python -m benchmarks.call_order trend` measured trend's batch-32 inference
    (AMD machine, four runs) at 1.82-1.95 ms for seqjax back to back and 2.03-2.21 right
    after PyTorch, and at 1.47-1.63 ms for PyTorch's padded stack back to back and
    1.69-2.00 right after seqjax: a call after another framework's is one no user of either makes,
    and its penalty differs between frameworks. So within a round an implementation whose
    warm-up call took t ms runs 1 + ceil(`block_ms` / t) calls in a row (at most 10), and
    the first of them, the one that follows another implementation, is not timed. Calls
    of `block_ms` or more (and a lone implementation) run one call a round, where the
    neighbour's fraction of a millisecond is lost in the call.
    """
    calls_per_block = {}
    for name, fn in fns.items():
        took = 0.0
        for _ in range(warmup):
            start = time.perf_counter()
            fn()
            took = (time.perf_counter() - start) * 1e3
        calls_per_block[name] = _block(took, block_ms) if len(fns) > 1 and warmup else 1
    names = list(fns)
    order = np.random.default_rng(0)
    samples: dict[str, list[float]] = {name: [] for name in fns}
    began, rounds = time.perf_counter(), 0
    while rounds < repeats or (time.perf_counter() - began < min_seconds and rounds < 20 * repeats):
        for k in order.permutation(len(names)):
            name = names[k]
            block = calls_per_block[name]
            for i in range(block):
                start = time.perf_counter()
                fns[name]()
                if i > 0 or block == 1:
                    samples[name].append((time.perf_counter() - start) * 1e3)
        rounds += 1
    return {
        name: {**_stats(np.asarray(s), rounds), "calls_per_block": calls_per_block[name]}
        for name, s in samples.items()
    }


def _block(call_ms: float, block_ms: float) -> int:
    """Calls in a row per round for a call that took `call_ms`: 1 when it lasts `block_ms`
    or more, else enough for the timed ones to fill about `block_ms`, at most 10."""
    if call_ms >= block_ms:
        return 1
    return min(10, 1 + math.ceil(block_ms / max(call_ms, 1e-3)))


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

"""Keeping freed host memory in the process, so XLA's CPU calls do not fault it in again.

Why: XLA's CPU runtime allocates each call's temporary buffers when the call starts and
frees them when it ends. glibc's malloc serves a block above its mmap threshold (at most
32 MB), and on a thread other than the main one any block larger than its 64 MB arena
heaps, with a fresh mapping from the kernel, and unmaps it at free. So every call's first
write to each 4 KB page of such a block is a page fault that the kernel answers with a
zeroed page. The side-by-side's steel stack (B=32, T=500, H=128, 2 bidirectional layers)
needs 42 MB of temporaries for inference and 476 MB for a train step: 10,194 and 116,121
page faults a call.

`reuse_freed_memory` sets glibc's malloc to one arena, no separate mappings and no
trimming, so a freed block stays in the process and the next call's same-sized block
reuses its pages. On the 2-vCPU AMD machine (`python -m benchmarks.host_memory`,
benchmarks/results/host_memory_cpu_amd-epyc.json, medians of three fresh processes each):
steel's stack trained 1.42x as fast (638 against 450 ms) and inferred 1.08x, the hybrid
block's trained 1.11x; but trust's (T=2) trained 0.87x and trend's (T=12) 0.92x, whose
calls fault nothing either way and whose threads now share the one arena's lock. It also
makes the process keep its peak host memory until it exits. So it is a config key,
`host.reuse_freed_memory`, on in the configs whose calls fault (steel_standard, _deep and
_bidirectional, the hybrid and its LSTM baseline: train steps 1.19-1.38x as fast, `python
-m benchmarks.config_ab`, benchmarks/results/config_ab_host_memory_cpu_amd-epyc.json) and
off in the others (trust, trend, and steel_lightweight, whose H=32 step gained 1.07x while
its batch-1 inference lost 0.70x); `run_experiment` applies it before JAX first runs, and
SEQJAX_REUSE_FREED_MEMORY=1 turns it on for any config and for the `seqjax` command's
other subcommands. The settings are the process's: once on, they stay on. JAX research
code calls `reuse_freed_memory()` once at the top of a script, before JAX's first
computation (the threads XLA starts then take their memory from the one arena).

PyTorch's padded stacks, timed in the same processes, gained more (steel's trained 1.65x
as fast) and lost more on short calls (trend's 0.65x); its CPU performance guides give
the same advice in another form: preload jemalloc or tcmalloc, allocators that keep freed
memory for reuse.
"""

from __future__ import annotations

import ctypes
import os
import sys

ENV = "SEQJAX_REUSE_FREED_MEMORY"  # "1": on for any config, command or experiment

# glibc's mallopt parameters (malloc.h)
M_TRIM_THRESHOLD = -1
M_MMAP_MAX = -4
M_ARENA_MAX = -8
SETTINGS = (
    (M_ARENA_MAX, 1),  # every thread allocates from the main arena, which grows without bound
    (M_MMAP_MAX, 0),  # no block gets a mapping of its own, which free would unmap
    (M_TRIM_THRESHOLD, 2**31 - 1),  # the arena's free top is never handed back
)

_in_effect = False


def _glibc() -> ctypes.CDLL | None:
    """The process's C library where it is glibc, whose mallopt takes these settings."""
    if not sys.platform.startswith("linux"):
        return None
    libc = ctypes.CDLL(None)
    if not hasattr(libc, "gnu_get_libc_version"):  # musl and others: mallopt does nothing
        return None
    return libc


def in_effect() -> bool:
    """Whether `reuse_freed_memory` has set this process's malloc up."""
    return _in_effect


def reuse_freed_memory() -> bool:
    """Keep freed host memory in this process for reuse (see the module docstring).

    Returns whether the settings took effect: False off glibc (macOS, Windows, musl),
    which is left as it is.
    """
    global _in_effect
    libc = _glibc()
    if libc is None:
        return False
    libc.mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    _in_effect = all(libc.mallopt(param, value) == 1 for param, value in SETTINGS)
    return _in_effect


def reuse_freed_memory_if_asked(configured: bool = False) -> bool:
    """`reuse_freed_memory` where a config's `host.reuse_freed_memory` (`configured`) or
    SEQJAX_REUSE_FREED_MEMORY=1 asks for it; what `run_experiment` and the `seqjax`
    command call before JAX first runs. Returns whether the settings are in effect."""
    if configured or os.environ.get(ENV) == "1":
        return reuse_freed_memory()
    return _in_effect

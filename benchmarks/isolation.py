"""Running one measurement in a fresh process.

Why: a process's peak memory (device peak bytes on a GPU, peak RSS on CPU) is a running
maximum, so a figure is one system's own only if nothing else ran in its process; and
XLA reads its flags (such as the CPU device count) once, when the backend starts.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor

from seqjax.host_memory import reuse_freed_memory_if_asked


def no_preallocation() -> None:
    """Child initializer: do not preallocate GPU memory, as the parent may already hold
    JAX's usual share of it."""
    os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")


def as_seqjax_command() -> None:
    """Child initializer: `no_preallocation`, and host memory set up as the `seqjax`
    command sets it before reading a config (`seqjax.host_memory`: freed memory kept where
    the child inherits SEQJAX_REUSE_FREED_MEMORY=1), for figures of a seed system as
    `seqjax train` runs it; `benchmarks.systems.measure` then applies the config's
    `host.reuse_freed_memory`, as `run_experiment` does."""
    no_preallocation()
    reuse_freed_memory_if_asked()


def one_device_per_core() -> None:
    """Child initializer: `no_preallocation`, and XLA's CPU client shows one device per core
    (a device count already in XLA_FLAGS wins). On a GPU this only adds host devices that
    nothing uses."""
    no_preallocation()
    flags = os.environ.get("XLA_FLAGS", "")
    if "xla_force_host_platform_device_count" not in flags:
        count = os.cpu_count() or 1
        os.environ["XLA_FLAGS"] = f"{flags} --xla_force_host_platform_device_count={count}".strip()


def in_fresh_process(
    fn: Callable, /, *args, initializer: Callable[[], None] = no_preallocation, **kwargs
):
    """`fn(*args, **kwargs)` in a spawned process that ran `initializer` before JAX started
    a backend there; `fn` must be importable (a module-level function)."""
    context = multiprocessing.get_context("spawn")  # never fork a process that runs JAX
    with ProcessPoolExecutor(1, mp_context=context, initializer=initializer) as pool:
        return pool.submit(fn, *args, **kwargs).result()

"""The device mesh and how batches and state are laid out on it.

Data parallel is expressed as `jax.jit` with shardings rather than an explicit `shard_map`
step: the batch is sharded along the `data` axis, parameters and optimizer state are
replicated, and XLA's SPMD partitioner inserts the gradient all-reduce itself. The same
step function then runs unchanged on 1 device, 8, or several hosts, and the weighted-mean
loss over the *global* batch makes the gradient identical to the single-device one.
Steps are traced with the mesh as the context mesh (`on_mesh`), so a kernel that cannot
be auto-partitioned, the cuDNN RNN call, maps itself over the `data` axis with shard_map
(`seqjax.layers.per_shard`) while the rest of the step stays auto-partitioned.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from seqjax.data.batch import Batch
from seqjax.layers.per_shard import BATCH_AXIS

DATA = BATCH_AXIS  # the batch axis of the mesh


def on_mesh(fn: Callable, mesh: Mesh) -> Callable:
    """`fn` traced with `mesh` as the context (abstract) mesh; usable inside `jax.jit`."""

    @functools.wraps(fn)
    def traced(*args):
        with jax.sharding.use_abstract_mesh(mesh.abstract_mesh):
            return fn(*args)

    return traced


def use_cpu_devices(count: int) -> None:
    """Have XLA's CPU client show the CPU as `count` devices (0: leave JAX's default, one).

    Why: one XLA CPU device runs an LSTM's recurrence on one core (README, "Performance"
    and "Every core of a CPU"), while a mesh of one device per core gives each core its own shard
    of the batch. That pays for large recurrences and fails small ones: on 2 cores the
    side-by-side's steel stack (H=128, bidirectional) trained 1.22x as fast per core as on
    one device, trust's 0.41x (benchmarks/results/cpu.json). Whole training runs of the
    seed configs, whose stacks are smaller, went 0.58x (trust) to 1.08x (steel_standard)
    (`python -m benchmarks.cpu_devices`), so it is off unless asked for.
    It must happen before JAX first runs anything in the process; a process already
    showing `count` CPU devices (e.g. through XLA_FLAGS) is accepted as it is.
    """
    if count == 0:
        return
    try:
        jax.config.update("jax_num_cpu_devices", count)
    except RuntimeError:  # the backend is up: fine if it already has that many CPU devices
        have = len(jax.devices("cpu"))
        if have != count:
            raise ValueError(
                f"mesh.cpu_devices={count} must take effect before JAX first runs in this "
                f"process, which already shows {have} CPU device(s); set it first (the CLI "
                "does), or call jax.config.update('jax_num_cpu_devices', N) right after "
                "importing jax"
            ) from None


def make_mesh(devices: Sequence[jax.Device] | None = None) -> Mesh:
    """A 1-D mesh named `data` over `devices` (default: every device of every process)."""
    devices = list(devices if devices is not None else jax.devices())
    return Mesh(np.asarray(devices), (DATA,))


def data_sharding(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, PartitionSpec(DATA))


def replicated(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, PartitionSpec())


def check_divisible(batch_size: int, mesh: Mesh) -> None:
    devices = mesh.devices.size
    if batch_size % devices:
        raise ValueError(
            f"batch size {batch_size} is not divisible by the {devices} devices of the mesh; "
            f"use a multiple of {devices}"
        )


def check_micro_batches(batch_size: int, micro_batches: int, mesh: Mesh) -> None:
    """Each device's rows must split into `micro_batches` equal micro-batches, so that every
    micro-batch is split over every device (`step.split_micro_batches`)."""
    devices = mesh.devices.size
    if batch_size % (devices * micro_batches):
        raise ValueError(
            f"train.batch_size {batch_size} does not split into train.micro_batches="
            f"{micro_batches} equal micro-batches on each of the mesh's {devices} devices; "
            f"use a multiple of {devices * micro_batches}"
        )


def process_rows(global_batch: int) -> slice:
    """The contiguous rows of every global batch that this process feeds."""
    count, index = jax.process_count(), jax.process_index()
    if global_batch % count:
        raise ValueError(f"batch size {global_batch} is not divisible by the {count} processes")
    per = global_batch // count
    return slice(index * per, (index + 1) * per)


def shard_batch(batch: Batch, mesh: Mesh) -> Batch:
    """Place a global host batch on the mesh, split along the batch axis.

    Every process iterates the same global batches (the order is a function of seed and
    epoch); with several processes each one transfers only its own rows, and the global
    array is assembled from the process-local pieces without any host-to-host copy.
    """
    check_divisible(batch.size, mesh)
    return shard_rows(batch, batch.size, mesh)


def shard_rows(tree, rows: int, mesh: Mesh):
    """`tree`'s host arrays, each with `rows` leading rows and the same on every process,
    placed on the mesh split along those rows (`shard_batch`'s placement, for any tree)."""
    sharding = data_sharding(mesh)
    if jax.process_count() > 1:
        mine = process_rows(rows)
        return jax.tree.map(
            lambda x: jax.make_array_from_process_local_data(sharding, np.asarray(x)[mine]),
            tree,
        )
    return jax.device_put(tree, sharding)


def replicate(tree, mesh: Mesh):
    """Replicate on every device of the mesh (through host memory, which also works when
    the mesh spans processes and `tree` lives on one local device)."""
    return jax.device_put(jax.device_get(tree), replicated(mesh))

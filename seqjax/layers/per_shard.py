"""Run a batch-wise function once per data shard when its rows are split over a mesh.

Why: some kernels (the cuDNN RNN custom call) have neither a batching rule nor an SPMD
partitioning rule, and the length-grouped scan takes its loops' bounds from the rows it
holds, so under a jitted data-parallel step XLA would gather the whole batch onto every
device. This wrapper maps such a function over the mesh's `data` axis with `shard_map`, so
each device runs it on its own rows. Gradients of the replicated arguments (weights) are
summed across shards by shard_map's transpose.

Which mesh: the context mesh, under which the training engine traces its steps
(`jax.sharding.use_abstract_mesh`); else, in a plain `jax.jit` of arrays placed on a mesh
(README, "Every core of a CPU"), the mesh the batch argument's type carries, when it has
a `data` axis. Inside a `shard_map` that is already manual over `data` the function runs
as it is, on the rows it was given. Rows that do not split evenly over the `data` axis
(one sequence to a model whose weights lie on a mesh of two) run whole: XLA then gathers
them, and the values are the same. A caller whose calls must agree on the split, as a sort
and the unsort that undoes it must, decides once (`batch_mesh`) and passes `mesh=`: the
weights mixed in between can give later rows' types a mesh the first rows' lacked.
An array moved with `jax.device_put` straight from a mesh to one device keeps that mesh in
its type (jax 0.10.2, jax-ml/jax#31793), and a function of rows mixed with it would be
mapped over a mesh the program does not run on, which fails when it runs: move such
arrays through host memory (`jax.device_get` first), or put them where they will run in
the first place, as `seqjax.load_run` restores its checkpoint (`restore_state(mesh=...)`).
"""

from __future__ import annotations

from collections.abc import Callable

import jax
from jax.sharding import AxisType, PartitionSpec

BATCH_AXIS = "data"  # the mesh axis that splits the batch


def _mesh_of(x: jax.Array | None):
    """The context mesh or, without one, the mesh x's type carries (maybe empty)."""
    mesh = jax.sharding.get_abstract_mesh()
    if mesh.empty and x is not None:
        sharding = getattr(jax.typeof(x), "sharding", None)
        mesh = getattr(sharding, "mesh", mesh)
    return mesh


def rows_whole_per_device(x: jax.Array) -> bool:
    """Whether a function of x's rows, run through `per_shard`, sees each device's rows
    whole: x is on one device, is a shard's own, or is split over a `data` axis. False on
    a multi-device mesh without one, where such a function would gather the batch."""
    mesh = _mesh_of(x)
    return mesh.empty or mesh.size == 1 or BATCH_AXIS in mesh.axis_names


def batch_mesh(x: jax.Array | None = None, batch_dim: int | None = None):
    """The abstract mesh whose `data` axis splits the rows of x (module docstring), or
    None when they are on one device, already a shard's own, or (with `batch_dim`, the
    axis of x that holds the rows) not a whole number per device."""
    mesh = _mesh_of(x)
    if mesh.empty or BATCH_AXIS not in mesh.axis_names or mesh.shape[BATCH_AXIS] == 1:
        return None
    if mesh.axis_types[mesh.axis_names.index(BATCH_AXIS)] == AxisType.Manual:
        return None  # inside shard_map over `data`: these rows are one shard's
    if batch_dim is not None and x is not None and x.shape[batch_dim] % mesh.shape[BATCH_AXIS]:
        return None
    return mesh


_FROM_ROWS = object()  # per_shard's default: each call's batch rows decide the mesh


def per_shard(
    fn: Callable,
    batch_dims: tuple,
    out_batch_dims: tuple,
    *,
    check_vma: bool = True,
    mesh=_FROM_ROWS,
) -> Callable:
    """`fn` run per shard of the `data` axis its batch arguments are split over (module
    docstring); `fn` itself where they are not.

    batch_dims / out_batch_dims: for each positional argument / output, the axis that holds
    the batch, or None for a replicated one (weights). `check_vma=False` turns off
    shard_map's varying-axes types, for code that cannot carry them (see pallas_lstm.py).
    `mesh`: the caller's one decision (`batch_mesh`; None runs `fn` whole), where the
    default lets the first batch argument decide.
    """

    def spec(dim):
        if dim is None:
            return PartitionSpec()
        return PartitionSpec(*([None] * dim), BATCH_AXIS)

    def run(*args):
        split = mesh
        if split is _FROM_ROWS:
            rows, dim = next((a, d) for a, d in zip(args, batch_dims, strict=True) if d is not None)
            split = batch_mesh(rows, dim)
        if split is None:
            return fn(*args)
        return jax.shard_map(
            fn,
            mesh=split,
            in_specs=tuple(spec(d) for d in batch_dims),
            out_specs=tuple(spec(d) for d in out_batch_dims),
            check_vma=check_vma,
        )(*args)

    return run

"""Run a batch-wise function once per data shard when a mesh is in context.

Why: some kernels (the cuDNN RNN custom call) have neither a batching rule nor an SPMD
partitioning rule, so under a jitted data-parallel step XLA would gather the whole batch
onto every device. The training engine traces its steps under the mesh
(`jax.sharding.use_abstract_mesh`); this wrapper then maps the kernel over the mesh's
`data` axis with `shard_map`, so each device runs it on its own rows. Gradients of the
replicated arguments (weights) are summed across shards by shard_map's transpose.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
from jax.sharding import PartitionSpec

BATCH_AXIS = "data"  # the mesh axis that splits the batch


def batch_axis_size() -> int:
    """Shards along `data` of the context mesh (1 when there is none)."""
    mesh = jax.sharding.get_abstract_mesh()
    if mesh.empty or BATCH_AXIS not in mesh.axis_names:
        return 1
    return mesh.shape[BATCH_AXIS]


def per_shard(
    fn: Callable, batch_dims: tuple, out_batch_dims: tuple, *, check_vma: bool = True
) -> Callable:
    """`fn` run per shard of the context mesh's `data` axis; `fn` itself without one.

    batch_dims / out_batch_dims: for each positional argument / output, the axis that holds
    the batch, or None for a replicated one (weights). `check_vma=False` turns off
    shard_map's varying-axes types, for code that cannot carry them (see pallas_lstm.py).
    """
    if batch_axis_size() == 1:
        return fn

    def spec(dim):
        if dim is None:
            return PartitionSpec()
        return PartitionSpec(*([None] * dim), BATCH_AXIS)

    return jax.shard_map(
        fn,
        mesh=jax.sharding.get_abstract_mesh(),
        in_specs=tuple(spec(d) for d in batch_dims),
        out_specs=tuple(spec(d) for d in out_batch_dims),
        check_vma=check_vma,
    )

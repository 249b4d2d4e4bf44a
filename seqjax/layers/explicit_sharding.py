"""Sharding in types: the batch split over a mesh whose axes are `AxisType.Explicit`.

`jax.make_mesh` makes such meshes by default (jax 0.10), and `jax.set_mesh` with arrays
placed on one is how JAX's own docs write data parallelism now. There every array's type
carries its sharding, and JAX checks it where an implicit (`Auto`) mesh lets XLA decide:
a loop's carry must keep its sharding from step to step, so a zero initial state built
unsharded does not match the steps computed from a sharded batch; and a matmul that
contracts the sharded batch (a weight gradient) must be told how to shard its result. These
helpers do both for the recurrences, and nothing on one device, on an `Auto` mesh or inside
`shard_map`, where no type names a batch axis.
"""

from __future__ import annotations

import jax
from jax.sharding import NamedSharding, PartitionSpec


def typed_sharding(x: jax.Array) -> NamedSharding | None:
    """x's sharding where its type splits some dimension over explicit mesh axes; None
    where it names none (one device, an `Auto` mesh, a manual axis inside shard_map)."""
    sharding = getattr(jax.typeof(x), "sharding", None)
    spec = getattr(sharding, "spec", None)
    if sharding is None or spec is None or all(axes is None for axes in spec):
        return None
    return sharding


def _batch_split(x: jax.Array, batch_dim: int):
    """(mesh, axes): the mesh of x's type and the explicit axes it splits x's dimension
    `batch_dim` over; None where its type names none."""
    sharding = typed_sharding(x)
    if sharding is None or len(sharding.spec) <= batch_dim or sharding.spec[batch_dim] is None:
        return None
    return sharding.mesh, sharding.spec[batch_dim]


def shard_batch_like(tree, ref: jax.Array, *, batch_dim: int = 1, ref_batch_dim: int = 0):
    """Each array of `tree` resharded so its dimension `batch_dim` is split as `ref`'s
    `ref_batch_dim` is and the rest replicated, where `ref`'s type names that split (an
    explicit mesh); `tree` as it is otherwise. For a scan's initial carry: (L*D, B, H)
    states by default, against a (B, T, F) batch."""
    split = _batch_split(ref, ref_batch_dim)
    if split is None:
        return tree
    mesh, axes = split

    def cast(x):
        spec = [None] * x.ndim
        spec[batch_dim] = axes
        # the type's mesh, not a bare spec: arrays placed on a mesh need no `jax.set_mesh`
        return jax.sharding.reshard(x, NamedSharding(mesh, PartitionSpec(*spec)))

    return jax.tree.map(cast, tree)


def batch_sum_sharding(x: jax.Array, batch_dim: int = 1) -> NamedSharding | None:
    """`out_sharding` for a matmul that sums x's batch dimension away (a weight gradient):
    replicated, like the weight, where x's type names the batch's split; None (XLA's
    choice, as without a mesh) otherwise."""
    split = _batch_split(x, batch_dim)
    return None if split is None else NamedSharding(split[0], PartitionSpec())

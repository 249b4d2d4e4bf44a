"""Varying-manual-axes (vma) types for code that runs inside `shard_map`.

Inside `shard_map` every value carries the manual mesh axes it varies over; a loop's
carry must keep its type, and a custom VJP rule must sum a replicated weight's gradient
over the shards itself. These helpers are what the recurrences need for both, and do
nothing outside `shard_map`.
"""

from __future__ import annotations

import jax
from jax import lax


def _varying_axes(x) -> frozenset:
    """The manual mesh axes that x varies over (empty outside shard_map)."""
    aval = jax.typeof(x)
    manual = getattr(aval, "manual_axis_type", None)  # jax >= 0.10
    if manual is not None:
        return frozenset(manual.varying)
    return frozenset(getattr(aval, "vma", frozenset()))  # jax 0.6-0.9


def match_vma(tree, ref: jax.Array):
    """`tree` made device-varying over the manual mesh axes that `ref` varies over.

    Inside `shard_map` a scan's carry must have the same varying-axes type going in and
    coming out; a zero initial state is replicated while the steps computed from a sharded
    batch are varying, so without this the scan does not type-check there.
    """
    vma = _varying_axes(ref)

    def cast(x):
        missing = tuple(vma - _varying_axes(x))
        return lax.pcast(x, missing, to="varying") if missing else x

    return jax.tree.map(cast, tree)


def sum_to_vma(ct: jax.Array, primal: jax.Array) -> jax.Array:
    """A cotangent summed over the manual mesh axes its primal does not vary over.

    Inside `shard_map` a replicated weight used by every shard's rows gets the sum of the
    shards' gradients; autodiff does this itself, a custom VJP rule has to.
    """
    extra = tuple(_varying_axes(ct) - _varying_axes(primal))
    return lax.psum(ct, extra) if extra else ct

"""Length buckets: batches of similar lengths, each padded only to its own bucket.

A recurrence runs one loop step per padded time step, whatever the lengths in the batch,
so a batch of steel's sequences (lengths 100-500) drawn at random runs ~490 steps even
though its sequences average 300. Sorting examples by length within pools of a few
batches and padding each batch to the next multiple of a bucket width cuts the steps run
to ~340 (width 50, the generated steel data) while batches still mix examples at random
within each pool. Every distinct padded length is a shape of its own, compiled once, so
the width trades steps saved against compilations: T / width shapes at most.

This pays where a loop step costs its launch whatever the batch (GPUs and TPUs). A CPU
already stops computing rows whose sequences have ended (`seqjax/layers/length_groups.py`),
so there it saves little and adds compilations.
"""

from __future__ import annotations

import numpy as np

POOL_BATCHES = 16
"""Batches per sorting pool. Larger pools give batches closer in length (fewer padded
steps) but batches whose members repeat from epoch to epoch; 16 batches of steel's
generated data padded to multiples of 50 run 342 steps per batch on average, where a sort of
the whole epoch runs 331 and unsorted batches 491."""


def padded_length(longest: int, width: int, steps: int) -> int:
    """The time steps a batch whose longest sequence has `longest` steps is padded to:
    the next multiple of `width`, at most the data's `steps`."""
    return min(-(-longest // width) * width, steps)


def length_sorted_order(lengths: np.ndarray, batch_size: int, rng: np.random.Generator):
    """A permutation of the examples whose consecutive `batch_size` chunks are batches of
    similar lengths, in random order; a short last batch, if any, stays last.

    Examples are shuffled, cut into pools of `POOL_BATCHES` batches, each pool sorted by
    length (ties keep the shuffled order), cut into batches, and the full batches shuffled.
    """
    pool = POOL_BATCHES * batch_size
    order = rng.permutation(len(lengths))
    pools = [order[p : p + pool] for p in range(0, len(order), pool)]
    order = np.concatenate([p[np.argsort(lengths[p], kind="stable")] for p in pools])
    full = len(order) // batch_size
    batches = order[: full * batch_size].reshape(full, batch_size)[rng.permutation(full)]
    return np.concatenate([batches.reshape(-1), order[full * batch_size :]])

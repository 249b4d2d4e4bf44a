"""`SequenceDataset` (host NumPy arrays) and fixed-shape batch iteration over it."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import numpy as np

from seqjax.data.batch import Batch, make_batch


@dataclasses.dataclass(frozen=True)
class SequenceDataset:
    inputs: np.ndarray  # (N, T, F) float32, zero past each length
    lengths: np.ndarray  # (N,) int32
    targets: np.ndarray  # (N, ...)

    def __post_init__(self):
        n = len(self.inputs)
        if len(self.lengths) != n or len(self.targets) != n:
            raise ValueError(
                f"SequenceDataset: inputs, lengths and targets must have the same length; got "
                f"{n}, {len(self.lengths)}, {len(self.targets)}"
            )
        if not np.all(np.isfinite(self.inputs)):
            raise ValueError("SequenceDataset: inputs contain NaN or Inf")
        if np.issubdtype(np.asarray(self.targets).dtype, np.floating) and not np.all(
            np.isfinite(self.targets)
        ):
            raise ValueError("SequenceDataset: targets contain NaN or Inf")
        lengths = np.asarray(self.lengths)
        if n and (lengths.min() < 1 or lengths.max() > self.inputs.shape[1]):
            raise ValueError(
                f"SequenceDataset: lengths must lie in [1, {self.inputs.shape[1]}]; got min "
                f"{lengths.min()}, max {lengths.max()}"
            )

    def __len__(self) -> int:
        return len(self.inputs)

    def subset(self, index: np.ndarray) -> SequenceDataset:
        return SequenceDataset(self.inputs[index], self.lengths[index], self.targets[index])


def num_batches(n: int, batch_size: int, *, drop_remainder: bool) -> int:
    return n // batch_size if drop_remainder else -(-n // batch_size)


def iterate_batches(
    data: SequenceDataset,
    batch_size: int,
    *,
    shuffle: bool,
    seed: int = 0,
    epoch: int = 0,
    drop_remainder: bool = False,
) -> Iterator[Batch]:
    """Batches of exactly `batch_size` examples.

    The order is a pure function of (seed, epoch), so a resumed run sees the same data.
    A short last batch is completed with zero-weight copies of example 0 (not zeros, so
    every padded example still has a valid length) unless `drop_remainder`.
    """
    n = len(data)
    if n == 0:
        raise ValueError("iterate_batches: the dataset is empty")
    if batch_size < 1:
        raise ValueError(f"iterate_batches: batch_size must be >= 1; got {batch_size}")
    order = np.arange(n)
    if shuffle:
        order = np.random.default_rng([seed, epoch]).permutation(n)
    for b in range(num_batches(n, batch_size, drop_remainder=drop_remainder)):
        idx = order[b * batch_size : (b + 1) * batch_size]
        weights = np.ones((batch_size,), np.float32)
        if len(idx) < batch_size:
            weights[len(idx) :] = 0.0
            idx = np.concatenate([idx, np.full(batch_size - len(idx), order[0])])
        yield make_batch(data.inputs[idx], data.lengths[idx], data.targets[idx], weights)

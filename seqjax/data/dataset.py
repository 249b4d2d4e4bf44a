"""`SequenceDataset` (host NumPy arrays) and fixed-shape batch iteration over it."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import numpy as np

from seqjax.data.batch import Batch, make_batch
from seqjax.data.buckets import length_sorted_order, padded_length
from seqjax.data.sampler import balanced_draw
from seqjax.data.splits import StandardScaler


@dataclasses.dataclass(frozen=True)
class SequenceDataset:
    inputs: np.ndarray  # (N, T, F) float32, zero past each length
    lengths: np.ndarray  # (N,) int32
    targets: np.ndarray  # (N, ...)
    # How users' raw channels became `inputs` (aeon/npz/csv sources; None for generated
    # data, whose generators emit model inputs): a run saves it, so that `seqjax predict`
    # scales new raw data as the training data was scaled.
    scaler: StandardScaler | None = None
    # The names of the class indices where the data named them (a CSV's text labels, an
    # aeon file's classes), so that predictions and new labels use the names.
    classes: tuple[str, ...] | None = None
    # Users' regression targets are standardised for training (a target near 1,500 would
    # take an output layer thousands of steps to reach); predictions and metrics are put
    # back in the targets' own units with this.
    target_scaler: StandardScaler | None = None
    # Each example's weight in the loss (N,) >= 0, where the data gave them
    # (`data.sample_weights`); None: every example 1.
    weights: np.ndarray | None = None
    # Each example's name in the user's file (N,): a CSV's `sequence` value, an npz's row
    # number; None for generated and aeon data. A split's predictions (a cross-validation's
    # out-of-fold ones) map back to the file's sequences by them.
    ids: np.ndarray | None = None

    def __post_init__(self):
        n = len(self.inputs)
        if len(self.lengths) != n or len(self.targets) != n:
            raise ValueError(
                f"SequenceDataset: inputs, lengths and targets must have the same length; got "
                f"{n}, {len(self.lengths)}, {len(self.targets)}"
            )
        if self.ids is not None and len(self.ids) != n:
            raise ValueError(f"SequenceDataset: {len(self.ids)} ids for {n} examples")
        if self.weights is not None:
            check_sample_weights(self.weights, n, "SequenceDataset")
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

    def targets_in_units(self) -> np.ndarray:
        """The targets in the data's own units (N, ...), as metrics score them: standardised
        regression targets put back with `target_scaler`."""
        if self.target_scaler is None:
            return np.asarray(self.targets)
        return self.target_scaler.inverse_rows(self.targets)

    def subset(self, index: np.ndarray) -> SequenceDataset:
        return dataclasses.replace(
            self,
            inputs=self.inputs[index],
            lengths=self.lengths[index],
            targets=self.targets[index],
            weights=None if self.weights is None else self.weights[index],
            ids=None if self.ids is None else self.ids[index],
        )


def check_sample_weights(weights: np.ndarray, n: int, where: str) -> None:
    """Per-example loss weights: (N,) numbers, finite, >= 0, not all 0 (a split of zero
    weight has no loss to learn from or to monitor)."""
    weights = np.asarray(weights)
    if weights.shape != (n,) or not np.issubdtype(weights.dtype, np.number):
        raise ValueError(
            f"{where}: sample weights must be numbers of shape ({n},); got {weights.dtype} "
            f"{weights.shape}"
        )
    bad = ~np.isfinite(weights) | (weights < 0)
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"{where}: sample weights must be finite and >= 0; sequence {first} has "
            f"{weights[first]}"
        )
    if n and not weights.any():
        raise ValueError(f"{where}: every sample weight is 0; the loss would weigh nothing")


def num_batches(n: int, batch_size: int, *, drop_remainder: bool) -> int:
    return n // batch_size if drop_remainder else -(-n // batch_size)


def batch_order(
    data: SequenceDataset,
    batch_size: int,
    *,
    shuffle: bool,
    seed: int = 0,
    epoch: int = 0,
    bucket_width: int = 0,
    balance: np.ndarray | None = None,
) -> np.ndarray:
    """The examples in the order `iterate_batches` takes them, `batch_size` a batch: a
    pure function of (seed, epoch), so a resumed run sees the same data. With
    `bucket_width`, batches hold examples of similar lengths (`seqjax/data/buckets.py`):
    in random order when shuffling, else sorted by length (ties in data order). With
    `balance`, each example's class (N,), a shuffled epoch is N examples drawn so that
    every class is equally common (`seqjax/data/sampler.py`), repeats included."""
    n = len(data)
    if shuffle and balance is not None:
        rng = np.random.default_rng([seed, epoch])
        drawn = balanced_draw(balance, rng)  # (N,) indices, with repeats
        if not bucket_width:
            return drawn
        return drawn[length_sorted_order(np.asarray(data.lengths)[drawn], batch_size, rng)]
    if not bucket_width:
        return np.random.default_rng([seed, epoch]).permutation(n) if shuffle else np.arange(n)
    lengths = np.asarray(data.lengths)
    if shuffle:
        return length_sorted_order(lengths, batch_size, np.random.default_rng([seed, epoch]))
    return np.argsort(lengths, kind="stable")


def iterate_batches(
    data: SequenceDataset,
    batch_size: int,
    *,
    shuffle: bool,
    seed: int = 0,
    epoch: int = 0,
    drop_remainder: bool = False,
    bucket_width: int = 0,
    start: int = 0,
    balance: np.ndarray | None = None,
) -> Iterator[Batch]:
    """Batches of exactly `batch_size` examples, in `batch_order` (`balance`: its classes
    drawn equally often), from batch `start` on (a run resumed in the middle of an epoch;
    the batches before it are not built).

    A short last batch is completed with zero-weight copies of its first example (not
    zeros, so every padded example still has a valid length) unless `drop_remainder`.
    Real examples weigh 1, or their `data.weights`.
    With `bucket_width` > 0 each batch's time axis is cut to its longest sequence rounded
    up to a multiple of `bucket_width` (at most the data's T): one compiled shape per
    width step, and no loop steps past the bucket.
    """
    n = len(data)
    if n == 0:
        raise ValueError("iterate_batches: the dataset is empty")
    if batch_size < 1:
        raise ValueError(f"iterate_batches: batch_size must be >= 1; got {batch_size}")
    if bucket_width < 0:
        raise ValueError(f"iterate_batches: bucket_width must be >= 0; got {bucket_width}")
    order = batch_order(
        data,
        batch_size,
        shuffle=shuffle,
        seed=seed,
        epoch=epoch,
        bucket_width=bucket_width,
        balance=balance,
    )
    steps = data.inputs.shape[1]
    for b in range(start, num_batches(n, batch_size, drop_remainder=drop_remainder)):
        idx = order[b * batch_size : (b + 1) * batch_size]
        weights = np.zeros((batch_size,), np.float32)  # padding examples stay 0
        weights[: len(idx)] = 1.0 if data.weights is None else data.weights[idx]
        if len(idx) < batch_size:
            idx = np.concatenate([idx, np.full(batch_size - len(idx), idx[0])])
        lengths = data.lengths[idx]
        if bucket_width:
            steps = padded_length(int(lengths.max()), bucket_width, data.inputs.shape[1])
        yield make_batch(data.inputs[idx, :steps], lengths, data.targets[idx], weights)

"""A synthetic three-target regression task where each part of the hybrid model matters.

Inputs (N, T, 9) are standard normal noise over lengths 32-64, with three planted signals:
  y0  motif density (what the convolutions and mean pooling see): 0-4 copies of a 5-step
      joint shape (a bump in x0 while x1 dips) are planted, plus 0-2 decoys (the x0 bump
      alone); y0 = 10 x true motifs / length.
  y1  content-based retrieval (what attention sees): one marker step m where x3 spikes to
      +4 and x2 carries a value v ~ U(-3, 3); y1 = v. The marker sits anywhere, so the
      value has to be found by content.
  y2  a global extreme of a per-step state (what the BiLSTMs plus max pooling see): the
      longest run of consecutive valid steps with x5 > x6.
Channels 7-8 are pure noise. Targets are standardised with train-split statistics.
Every target is carried by signs and ratios between channels, not by one step's overall
scale, which the model's per-step LayerNorms remove: a previous y2, the max of a smoothed
channel, was an amplitude, and the hybrid lost it to the plain LSTM (0.295 vs 0.131 MSE)
while neither model learned a previous y1 whose value was N(0, 1) noise.
A first version (pair counts of thresholded noise, a product of the first and last
values) was so sparse that every model memorised 1,400 examples without generalising.
"""

from __future__ import annotations

import numpy as np

from seqjax.data.dataset import SequenceDataset
from seqjax.data.splits import split_indices

MIN_LEN, MAX_LEN, FEATURES = 32, 64, 9
MOTIF = np.array([0.5, 1.0, 1.0, 1.0, 0.5], np.float32) * 2.5  # (5,)
MARKER = 4.0


def _slots(rng: np.random.Generator, length: int, count: int) -> list[int]:
    """Start steps of `count` non-overlapping 5-step windows inside [0, length)."""
    starts = rng.choice(length // 5, size=count, replace=False) * 5
    return sorted(int(s) for s in starts)


def longest_run(flags: np.ndarray) -> int:
    """Length of the longest run of True in a 1-D boolean array."""
    best = run = 0
    for flag in flags:
        run = run + 1 if flag else 0
        best = max(best, run)
    return best


def generate(n: int, *, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    lengths = rng.integers(MIN_LEN, MAX_LEN + 1, n).astype(np.int32)
    x = rng.standard_normal((n, MAX_LEN, FEATURES)).astype(np.float32)
    y = np.zeros((n, 3), np.float32)
    for i, length in enumerate(lengths):
        motifs, decoys = int(rng.integers(0, 5)), int(rng.integers(0, 3))
        starts = _slots(rng, int(length), motifs + decoys)
        for j, s in enumerate(rng.permutation(starts)):
            x[i, s : s + 5, 0] += MOTIF
            if j < motifs:
                x[i, s : s + 5, 1] -= MOTIF
        marker = int(rng.integers(0, length))
        x[i, marker, 3] = MARKER
        x[i, marker, 2] = rng.uniform(-3.0, 3.0)
        y[i] = (
            10.0 * motifs / length,
            x[i, marker, 2],
            longest_run(x[i, :length, 5] > x[i, :length, 6]),
        )
    valid = np.arange(MAX_LEN)[None, :] < lengths[:, None]  # (N, T)
    x = np.where(valid[..., None], x, 0.0).astype(np.float32)
    return x, lengths, y


def hybrid_splits(n: int = 1500, *, seed: int = 0, fractions=(0.7, 0.15, 0.15)):
    x, lengths, y = generate(n, seed=seed)
    parts = split_indices(n, fractions, seed=seed + 1)
    mean, std = y[parts[0]].mean(0), y[parts[0]].std(0)
    y = ((y - mean) / std).astype(np.float32)
    return {
        name: SequenceDataset(x[idx], lengths[idx], y[idx])
        for name, idx in zip(("train", "val", "test"), parts, strict=True)
    }

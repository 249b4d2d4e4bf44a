"""A synthetic three-target regression task where each part of the hybrid model matters.

Inputs (N, T, 9) are i.i.d. standard normal over lengths 32-64; the targets are
  y0  local motifs (what the convolutions see): the number of steps t with x0[t] > 1 and
      x1[t+1] > 1, times 10 / length;
  y1  a long-range interaction (what attention and the backward direction see):
      x2 at the first step times x3 at the last valid step;
  y2  a global extreme (what max pooling sees): the max over valid steps of x4 + x5.
Targets are standardised with train-split statistics.
"""

from __future__ import annotations

import numpy as np

from seqjax.data.dataset import SequenceDataset
from seqjax.data.splits import split_indices

MIN_LEN, MAX_LEN, FEATURES = 32, 64, 9


def generate(n: int, *, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    lengths = rng.integers(MIN_LEN, MAX_LEN + 1, n).astype(np.int32)
    x = rng.standard_normal((n, MAX_LEN, FEATURES)).astype(np.float32)
    valid = np.arange(MAX_LEN)[None, :] < lengths[:, None]  # (N, T)
    x = np.where(valid[..., None], x, 0.0).astype(np.float32)
    pair = (x[:, :-1, 0] > 1) & (x[:, 1:, 1] > 1) & valid[:, 1:]  # (N, T-1)
    y0 = pair.sum(1) * 10.0 / lengths
    y1 = x[:, 0, 2] * x[np.arange(n), lengths - 1, 3]
    y2 = np.where(valid, x[..., 4] + x[..., 5], -np.inf).max(1)
    return x, lengths, np.stack([y0, y1, y2], axis=1).astype(np.float32)


def hybrid_splits(n: int = 1500, *, seed: int = 0, fractions=(0.7, 0.15, 0.15)):
    x, lengths, y = generate(n, seed=seed)
    parts = split_indices(n, fractions, seed=seed + 1)
    mean, std = y[parts[0]].mean(0), y[parts[0]].std(0)
    y = ((y - mean) / std).astype(np.float32)
    return {
        name: SequenceDataset(x[idx], lengths[idx], y[idx])
        for name, idx in zip(("train", "val", "test"), parts, strict=True)
    }

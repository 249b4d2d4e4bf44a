"""Deterministic generator of casting sensor sequences for defect detection.

Five channels per step, in this order: temperature, pressure, flow, vibration, speed.
Each is a slow process (a smoothed random walk around a per-casting set point) plus
sensor noise; lengths are uniform in [100, 500].

What makes a casting defective (about 15%): a *cold shut* signature, a pressure dip
followed 4 to 12 steps later by a vibration burst and a small temperature drop. Normal
castings carry as many events (one to three) as decoys: a lone pressure dip, a lone
vibration burst, or both in the wrong order or too far apart. Per-channel summary
statistics are therefore nearly identical across the classes (a logistic regression on
per-channel mean, energy, max and min stays below test AUC-ROC 0.65, as
tests/test_steel.py checks); a model has to find the
events in time and read their order and spacing, which is what a recurrent model is for.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from seqjax.data.dataset import SequenceDataset
from seqjax.data.splits import StandardScaler, split_indices

CHANNELS = ("temperature", "pressure", "flow", "vibration", "speed")
MIN_LEN, MAX_LEN = 100, 500


@dataclasses.dataclass(frozen=True)
class SteelData:
    inputs: np.ndarray  # (N, 500, 5) float32, physical units, zero past each length
    lengths: np.ndarray  # (N,) int32 in [100, 500]
    labels: np.ndarray  # (N,) int32, 1 = defective


def _smooth_walk(rng, n, t, scale, smooth=0.95):
    noise = rng.standard_normal((n, t)) * scale
    out = np.empty((n, t))
    out[:, 0] = noise[:, 0] / (1 - smooth)
    for i in range(1, t):
        out[:, i] = smooth * out[:, i - 1] + noise[:, i]
    return out


def _bump(t, start, width):
    """A smooth (raised-cosine) pulse of `width` steps starting at `start`: (T,)."""
    x = (np.arange(t) - start) / width
    return np.where((x >= 0) & (x <= 1), 0.5 - 0.5 * np.cos(2 * np.pi * x), 0.0)


def generate(n: int = 3000, *, seed: int = 0, defect_rate: float = 0.15) -> SteelData:
    rng = np.random.default_rng(seed)
    lengths = rng.integers(MIN_LEN, MAX_LEN + 1, n).astype(np.int32)
    labels = (rng.random(n) < defect_rate).astype(np.int32)
    set_points = np.array([1530.0, 12.0, 40.0, 0.5, 1.2])  # C, bar, L/min, g, m/min
    spreads = np.array([8.0, 0.6, 2.0, 0.05, 0.05])
    x = np.zeros((n, MAX_LEN, len(CHANNELS)))
    for c in range(len(CHANNELS)):
        base = set_points[c] + spreads[c] * rng.standard_normal(n)[:, None]
        x[:, :, c] = base + _smooth_walk(rng, n, MAX_LEN, 0.2 * spreads[c])
        x[:, :, c] += 0.3 * spreads[c] * rng.standard_normal((n, MAX_LEN))
    for k in range(n):
        length = lengths[k]
        dip = 4.0 * spreads[1]
        burst = 5.0 * spreads[3]
        if labels[k]:
            for _ in range(rng.integers(1, 4)):  # one to three cold shuts
                s = rng.integers(5, length - 30)
                gap = rng.integers(4, 13)
                x[k, :, 1] -= dip * _bump(MAX_LEN, s, 10)
                x[k, :, 3] += burst * _bump(MAX_LEN, s + gap, 8)
                x[k, :, 0] -= 2.0 * spreads[0] * _bump(MAX_LEN, s + gap, 10)
        else:
            for _ in range(rng.integers(1, 4)):  # as many decoy events
                kind = rng.integers(0, 4)
                s = rng.integers(5, length - 30)
                if kind == 0:  # lone pressure dip
                    x[k, :, 1] -= dip * _bump(MAX_LEN, s, 10)
                elif kind == 1:  # lone vibration burst with its temperature drop
                    x[k, :, 3] += burst * _bump(MAX_LEN, s, 8)
                    x[k, :, 0] -= 2.0 * spreads[0] * _bump(MAX_LEN, s, 10)
                elif kind == 2:  # wrong order: burst first, dip after
                    gap = rng.integers(4, 13)
                    x[k, :, 3] += burst * _bump(MAX_LEN, s, 8)
                    x[k, :, 0] -= 2.0 * spreads[0] * _bump(MAX_LEN, s, 10)
                    x[k, :, 1] -= dip * _bump(MAX_LEN, s + gap + 8, 10)
                else:  # both, too far apart
                    s = rng.integers(5, max(6, length - 90))
                    gap = rng.integers(40, 60)
                    x[k, :, 1] -= dip * _bump(MAX_LEN, s, 10)
                    x[k, :, 3] += burst * _bump(MAX_LEN, s + gap, 8)
                    x[k, :, 0] -= 2.0 * spreads[0] * _bump(MAX_LEN, s + gap, 10)
    valid = np.arange(MAX_LEN)[None, :] < lengths[:, None]
    x = np.where(valid[..., None], x, 0.0)
    return SteelData(x.astype(np.float32), lengths, labels)


def statistics(data: SteelData) -> dict:
    """Length histogram (bins of 50) and class balance, for reports and sanity checks."""
    edges = np.arange(MIN_LEN, MAX_LEN + 1, 50)  # numpy's last bin is closed: [450, 500]
    counts, _ = np.histogram(data.lengths, bins=edges)
    return {
        "examples": int(len(data.labels)),
        "defective": int(data.labels.sum()),
        "defect_rate": float(data.labels.mean()),
        "length_min": int(data.lengths.min()),
        "length_max": int(data.lengths.max()),
        "length_histogram": {
            f"{a}-{b if b == MAX_LEN else b - 1}": int(c)
            for a, b, c in zip(edges[:-1], edges[1:], counts, strict=True)
        },
    }


def steel_splits(
    n: int = 3000, *, seed: int = 0, fractions: tuple[float, float, float] = (0.7, 0.15, 0.15)
) -> dict[str, SequenceDataset]:
    """Train / val / test; a per-channel scaler fitted on the training split's valid steps."""
    data = generate(n, seed=seed)
    parts = split_indices(n, fractions, seed=seed + 1)
    train = parts[0]
    scaler = StandardScaler.fit(data.inputs[train], data.lengths[train])
    out = {}
    for name, idx in zip(("train", "val", "test"), parts, strict=True):
        valid = np.arange(MAX_LEN)[None, :] < data.lengths[idx][:, None]
        x = np.where(valid[..., None], scaler.transform(data.inputs[idx]), 0.0)
        out[name] = SequenceDataset(
            x.astype(np.float32), data.lengths[idx], data.labels[idx].astype(np.float32)
        )
    return out

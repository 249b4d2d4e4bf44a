"""Deterministic generator of weekly trend series with multi-horizon labels.

Each of `n_series` series has a latent level that drifts (the drift itself is a slow AR(1)
process) plus yearly seasonality and noise. Every week has 62 features: the observed
volume, its causal 4/8/12-week moving averages, week-of-year sin/cos, 20 noisy *leading*
indicators of the drift 1-4 weeks ahead (what makes the future partly predictable, like
upstream demand signals) and 36 distractor features.

A sample is 12 consecutive weeks ending at week t; its labels, for the 7-day (1 week) and
30-day (4 weeks) horizons, are [trend, volatility]: trend = tanh(change / (2 * vol)) in
(-1, 1), with change = mean volume over the horizon minus the volume at t and vol the std of
the last 12 weekly differences (known at t).

Splits are time-ordered (train weeks, then validation, then test) with a 4-week embargo
between them, so no training label reads a week that a later split's inputs or labels use;
the scaler is fitted on the weeks the training inputs cover and nothing later.
"""

from __future__ import annotations

import numpy as np

from seqjax.data.dataset import SequenceDataset
from seqjax.data.splits import StandardScaler

FEATURES = 62
WINDOW = 12
HORIZONS = (1, 4)  # weeks: the 7-day and 30-day heads
EMBARGO = max(HORIZONS)


def generate_series(n_series: int = 60, weeks: int = 260, *, seed: int = 0):
    """(series, weeks, 62) features and (series, weeks) observed volume."""
    rng = np.random.default_rng(seed)
    drift = np.zeros((n_series, weeks))
    for t in range(1, weeks):
        drift[:, t] = 0.92 * drift[:, t - 1] + 0.25 * rng.standard_normal(n_series)
    level = 50 + np.cumsum(drift, axis=1)
    week = np.arange(weeks)
    season = 3.0 * np.sin(2 * np.pi * (week[None, :] / 52.0 + rng.random((n_series, 1))))
    volume = level + season + 0.8 * rng.standard_normal((n_series, weeks))
    feats = np.zeros((n_series, weeks, FEATURES))
    feats[:, :, 0] = volume
    for j, w in enumerate((4, 8, 12), start=1):
        csum = np.cumsum(np.pad(volume, ((0, 0), (w, 0)), mode="edge"), axis=1)
        feats[:, :, j] = (csum[:, w:] - csum[:, :-w]) / w  # causal mean of the last w weeks
    feats[:, :, 4] = np.sin(2 * np.pi * week / 52.0)[None]
    feats[:, :, 5] = np.cos(2 * np.pi * week / 52.0)[None]
    for j in range(20):
        lead = 1 + j % 4
        future = np.concatenate([drift[:, lead:], np.zeros((n_series, lead))], axis=1)
        feats[:, :, 6 + j] = future + 0.5 * rng.standard_normal((n_series, weeks))
    feats[:, :, 26:] = rng.standard_normal((n_series, weeks, FEATURES - 26))
    return feats.astype(np.float32), volume


def _labels(volume: np.ndarray, t: int) -> np.ndarray:
    """(series, len(HORIZONS), 2) [trend, volatility] for windows ending at week t."""
    diffs = np.diff(volume[:, t - WINDOW : t + 1], axis=1)
    vol = diffs.std(axis=1) + 1e-6
    out = []
    for h in HORIZONS:
        change = volume[:, t + 1 : t + 1 + h].mean(axis=1) - volume[:, t]
        out.append(np.stack([np.tanh(change / (2 * vol)), vol], axis=-1))
    return np.stack(out, axis=1)


def split_weeks(weeks: int, fractions=(0.7, 0.15, 0.15)) -> list[range]:
    """Window end-weeks of each split, time-ordered, separated by EMBARGO weeks."""
    first, last = WINDOW, weeks - 1 - EMBARGO  # need WINDOW history and EMBARGO future
    span = last - first + 1
    cuts = np.round(np.cumsum(fractions) * span).astype(int)
    starts = [first, first + cuts[0], first + cuts[1]]
    ends = [first + cuts[0] - EMBARGO, first + cuts[1] - EMBARGO, last + 1]
    return [range(a, b) for a, b in zip(starts, ends, strict=True)]


def trend_splits(
    n_series: int = 60, weeks: int = 260, *, seed: int = 0, fractions=(0.7, 0.15, 0.15)
) -> dict[str, SequenceDataset]:
    feats, volume = generate_series(n_series, weeks, seed=seed)
    ranges = split_weeks(weeks, fractions)
    train_last_input_week = ranges[0][-1]
    scaler = StandardScaler.fit(feats[:, : train_last_input_week + 1].reshape(-1, FEATURES))
    scaled = scaler.transform(feats)
    out = {}
    for name, weeks_range in zip(("train", "val", "test"), ranges, strict=True):
        xs = [scaled[:, t - WINDOW + 1 : t + 1] for t in weeks_range]  # each (S, 12, 62)
        ys = [_labels(volume, t) for t in weeks_range]  # each (S, 2, 2)
        x = np.concatenate(xs).astype(np.float32)
        y = np.concatenate(ys).astype(np.float32)
        out[name] = SequenceDataset(x, np.full(len(x), WINDOW, np.int32), y)
    return out

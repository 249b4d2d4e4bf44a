"""`load_splits(DataConfig)`: the named data sources, each returning train/val/test."""

from __future__ import annotations

from seqjax.data.dataset import SequenceDataset
from seqjax.data.hybrid import hybrid_splits
from seqjax.data.steel import steel_splits
from seqjax.data.trend import trend_splits
from seqjax.data.trust import trust_splits

SOURCES = ("trust", "steel", "trend", "hybrid")


def load_splits(cfg) -> dict[str, SequenceDataset]:
    if cfg.source == "trust":
        return trust_splits(cfg.size, seed=cfg.seed, fractions=tuple(cfg.splits))
    if cfg.source == "steel":
        return steel_splits(cfg.size, seed=cfg.seed, fractions=tuple(cfg.splits))
    if cfg.source == "hybrid":
        return hybrid_splits(cfg.size, seed=cfg.seed, fractions=tuple(cfg.splits))
    if cfg.source == "trend":
        # data.size counts series of 260 weeks each (about 240 windows per series).
        return trend_splits(cfg.size, seed=cfg.seed, fractions=tuple(cfg.splits))
    raise ValueError(f"unknown data.source {cfg.source!r}; known sources: {list(SOURCES)}")

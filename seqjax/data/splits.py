"""Splits (random, time-ordered or stratified by class; or the train / val / test of one
cross-validation fold) and a standard scaler fitted on the training split only."""

from __future__ import annotations

import dataclasses

import numpy as np


def split_indices(
    n: int,
    fractions: tuple[float, ...] = (0.7, 0.15, 0.15),
    *,
    seed: int = 0,
    ordered: bool = False,
    gap: int = 0,
    labels: np.ndarray | None = None,
    groups: np.ndarray | None = None,
) -> list[np.ndarray]:
    """Index arrays with the given fractions (they must sum to 1): shuffled, or with
    `ordered` in data order, the first fraction first, so that time-ordered data trains on
    its past and is tested on its future. `gap` indices after each cut are left out: where
    sequences are overlapping windows of one series, the last training window and the
    first validation one would otherwise share steps (a random split leaks that way).
    With class `labels` (N,) each class is cut by the fractions on its own (stratified):
    a rare class of 5% is then 5% of every part, where a random cut of a small file may
    leave a test split with none of it. With `groups` (N,), the examples of a group (one
    subject's, one machine's, one series' windows) all go to one part, the groups shuffled
    and cut where the parts' shares of the examples come nearest the fractions: a model is
    then tested on groups it never saw, not on near-copies of its training examples. With
    labels or groups, each part lists its indices in data order."""
    if abs(sum(fractions) - 1.0) > 1e-6 or min(fractions) <= 0:
        raise ValueError(f"split fractions must be positive and sum to 1; got {fractions}")
    if groups is not None:
        rank = _group_ranks(groups, seed)  # (N,) each example's group, shuffled
        sizes = np.bincount(rank)  # (G,) examples per group, in that order
        middles = np.cumsum(sizes) - sizes / 2  # where each group sits among the examples
        part = np.searchsorted(np.cumsum(fractions)[:-1] * n, middles)  # (G,)
        parts = [np.flatnonzero(part[rank] == p) for p in range(len(fractions))]
    elif labels is not None:
        order = _shuffled(n, seed, labels)
        labels = np.asarray(labels)
        per_class = [_cut(order[labels[order] == c], fractions) for c in np.unique(labels)]
        parts = [np.sort(np.concatenate(part)) for part in zip(*per_class, strict=True)]
    else:
        order = np.arange(n) if ordered else np.random.default_rng(seed).permutation(n)
        parts = _cut(order, fractions)
    parts = [parts[0], *(part[gap:] for part in parts[1:])]
    if any(len(p) == 0 for p in parts):
        gapped = f" with a gap of {gap} after each cut" if gap else ""
        grouped = "" if groups is None else f" in {len(np.unique(groups))} groups"
        raise ValueError(
            f"a split of {n} examples{grouped} by {fractions}{gapped} leaves an empty part "
            f"(sizes {[len(p) for p in parts]})"
        )
    return parts


def _cut(order: np.ndarray, fractions: tuple[float, ...]) -> list[np.ndarray]:
    """`order` cut into consecutive parts of the given fractions of its length."""
    cuts = np.round(np.cumsum(fractions)[:-1] * len(order)).astype(int)
    return np.split(order, cuts)


def _shuffled(n: int, seed: int, labels: np.ndarray | None) -> np.ndarray:
    """0..n-1 shuffled; with `labels`, grouped by class, each class shuffled in itself, so
    that cutting or dealing each class alike keeps its share in every part."""
    order = np.random.default_rng(seed).permutation(n)
    if labels is None:
        return order
    return order[np.argsort(np.asarray(labels)[order], kind="stable")]


def _group_ranks(groups: np.ndarray, seed: int) -> np.ndarray:
    """Each example's group as its place (0..G-1) in a shuffled order of the groups."""
    _, group = np.unique(np.asarray(groups), return_inverse=True)  # (N,) 0..G-1 sorted
    shuffled = np.random.default_rng(seed).permutation(group.max() + 1)  # rank -> group
    rank = np.empty_like(shuffled)
    rank[shuffled] = np.arange(len(shuffled))  # group -> rank
    return rank[group]


def _grouped_folds(groups: np.ndarray, folds: int, seed: int) -> np.ndarray:
    """Each example's fold (N,), every group whole in one fold: the largest groups first,
    each to the fold with the fewest examples so far (scikit-learn's GroupKFold, its ties
    broken by the shuffled order)."""
    rank = _group_ranks(groups, seed)
    sizes = np.bincount(rank)  # (G,)
    if len(sizes) < folds:
        raise ValueError(f"{len(sizes)} groups cannot be dealt into {folds} folds")
    fold_of = np.empty(len(sizes), np.int64)
    filled = np.zeros(folds, np.int64)
    for group in np.argsort(-sizes, kind="stable"):
        fold_of[group] = int(np.argmin(filled))
        filled[fold_of[group]] += sizes[group]
    return fold_of[rank]


def fold_indices(
    n: int,
    folds: int,
    fold: int,
    *,
    seed: int = 0,
    labels: np.ndarray | None = None,
    groups: np.ndarray | None = None,
    ordered: bool = False,
    gap: int = 0,
) -> list[np.ndarray]:
    """Train, val and test index arrays of cross-validation fold `fold` of `folds`: the
    examples shuffled and dealt into `folds` folds whose sizes differ by at most one (with
    class `labels`, each class dealt in turn, so every fold holds its share of each class
    to within one example). Fold `fold` tests, the next one validates (early stopping and
    the plateau schedule need a split the test never sees) and the rest train; over the
    folds every example is tested once and validated once. With `groups` (N,), each group
    lies whole in one fold instead (`_grouped_folds`), and the folds' sizes differ by up to
    a group's. With `ordered`, the folds walk forward through time-ordered data instead
    (`_forward_fold`). Indices in data order."""
    if folds < 3:
        raise ValueError(f"cross-validation needs 3 folds or more (test, val, train); got {folds}")
    if not 0 <= fold < folds:
        raise ValueError(f"fold {fold} is not one of the {folds} folds 0..{folds - 1}")
    if n < folds:
        raise ValueError(f"{n} examples cannot be dealt into {folds} folds")
    if ordered:
        return _forward_fold(n, folds, fold, gap)
    if groups is not None:
        dealt = _grouped_folds(groups, folds, seed)
    else:
        dealt = np.empty(n, np.int64)  # each example's fold
        dealt[_shuffled(n, seed, labels)] = np.arange(n) % folds
    test, val = fold, (fold + 1) % folds
    return [
        np.flatnonzero((dealt != test) & (dealt != val)),
        np.flatnonzero(dealt == val),
        np.flatnonzero(dealt == test),
    ]


def _forward_fold(n: int, folds: int, fold: int, gap: int) -> list[np.ndarray]:
    """Fold `fold` of a walk forward through data in time order (scikit-learn's
    TimeSeriesSplit, with a validation block): the data cut into `folds` + 2 consecutive
    blocks, fold k trains on blocks 0..k, validates on block k+1 and tests on block k+2,
    so every model is tested on the future of all it learnt from, and the folds together
    test every block but the first two. `gap` examples after each cut are left out, as in
    an ordered split."""
    blocks = np.array_split(np.arange(n), folds + 2)
    parts = [np.concatenate(blocks[: fold + 1]), blocks[fold + 1][gap:], blocks[fold + 2][gap:]]
    if any(len(part) == 0 for part in parts):
        raise ValueError(
            f"fold {fold} of a walk forward through {n} examples in {folds + 2} blocks of "
            f"about {n // (folds + 2)}, with a gap of {gap} after each cut, leaves an empty "
            f"part (sizes {[len(part) for part in parts]})"
        )
    return parts


@dataclasses.dataclass(frozen=True)
class SplitPlan:
    """How a user's file is cut into train / val / test: the config's `data.seed`,
    `data.splits` (`fractions`), `data.split`, `data.gap`, `data.folds` and `data.fold` in
    one value, so that the readers of each file format pass it on whole and `indices` is
    the one place that chooses between a split and a fold."""

    seed: int = 0
    fractions: tuple[float, ...] = (0.7, 0.15, 0.15)
    split: str = "random"  # or "ordered", "stratified"
    gap: int = 0
    folds: int = 0  # 0: `fractions`; else fold `fold` of a cross-validation
    fold: int = 0

    def indices(
        self, n: int, labels: np.ndarray | None = None, groups: np.ndarray | None = None
    ) -> list[np.ndarray]:
        """Train, val and test index arrays of `n` examples; `labels` (class indices) are
        used where the split is stratified, `groups` wherever given."""
        stratify = labels if self.split == "stratified" else None
        ordered = self.split == "ordered"
        if self.folds:
            return fold_indices(
                n,
                self.folds,
                self.fold,
                seed=self.seed,
                labels=stratify,
                groups=groups,
                ordered=ordered,
                gap=self.gap,
            )
        return split_indices(
            n,
            tuple(self.fractions),
            seed=self.seed,
            ordered=ordered,
            gap=self.gap,
            labels=stratify,
            groups=groups,
        )


RANDOM_SPLIT = SplitPlan()  # seed 0, 70/15/15 at random


@dataclasses.dataclass(frozen=True)
class StandardScaler:
    """Per-feature (x - mean) / std; constant features get std 1. `names` are the features'
    names where the data had them (a CSV's channel columns), so that data read later can
    be matched to them by name."""

    mean: np.ndarray
    std: np.ndarray
    names: tuple[str, ...] | None = None

    @classmethod
    def fit(cls, x: np.ndarray, lengths: np.ndarray | None = None) -> StandardScaler:
        """Fit on (N, F) rows or (N, T, F) sequences; with `lengths`, valid steps only."""
        if x.ndim == 3 and lengths is not None:
            valid = np.arange(x.shape[1])[None, :] < lengths[:, None]  # (N, T)
            flat = x[valid]  # (sum(lengths), F)
        else:
            flat = x.reshape(-1, x.shape[-1])  # (N * T, F)
        flat = flat.astype(np.float64)  # float32 sums lose 1e-3 on values like 1530 C
        std = flat.std(axis=0)
        return cls(mean=flat.mean(axis=0), std=np.where(std > 0, std, 1.0))

    def transform(self, x: np.ndarray) -> np.ndarray:
        return ((x - self.mean) / self.std).astype(np.float32)

    @classmethod
    def fit_rows(cls, y: np.ndarray) -> StandardScaler:
        """Fit on per-example values (N,) or (N, ...), each example's values flattened: one
        mean and deviation per value, as for regression targets."""
        return cls.fit(np.asarray(y).reshape(len(y), -1))

    def transform_rows(self, y: np.ndarray) -> np.ndarray:
        """`transform` of per-example values (N, ...) scaled as `fit_rows` saw them."""
        return self.transform(np.asarray(y).reshape(len(y), -1)).reshape(np.shape(y))

    def inverse_rows(self, y: np.ndarray) -> np.ndarray:
        """Back to the data's own units, in float64 (a target near 1e6 keeps its digits)."""
        flat = np.asarray(y, np.float64).reshape(len(y), -1)
        return (flat * self.std + self.mean).reshape(np.shape(y))

    def transform_sequences(self, x: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        """(N, T, F) -> (N, T, F) float32 scaled, and zero past each length as padding is."""
        valid = np.arange(x.shape[1])[None, :] < np.asarray(lengths)[:, None]  # (N, T)
        return np.where(valid[..., None], self.transform(x), 0.0).astype(np.float32)

    def to_json(self) -> dict:
        return {
            "mean": [float(v) for v in self.mean],
            "std": [float(v) for v in self.std],
            "names": None if self.names is None else list(self.names),
        }

    @classmethod
    def from_json(cls, obj: dict) -> StandardScaler:
        names = obj.get("names")
        return cls(
            np.asarray(obj["mean"], np.float64),
            np.asarray(obj["std"], np.float64),
            None if names is None else tuple(names),
        )

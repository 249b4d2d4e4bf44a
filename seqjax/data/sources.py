"""`load_splits(DataConfig)`: the named data sources, each returning train/val/test, and
`adapt_to_data`, which sizes a model's inputs and classes from users' data."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from seqjax.data.dataset import SequenceDataset
from seqjax.data.external import aeon_splits, csv_splits, npz_splits
from seqjax.data.hybrid import hybrid_splits
from seqjax.data.splits import SplitPlan
from seqjax.data.steel import steel_splits
from seqjax.data.trend import trend_splits
from seqjax.data.trust import trust_splits
from seqjax.suggest import did_you_mean

if TYPE_CHECKING:  # seqjax.config reads this module's options
    from seqjax.config import DataConfig

Splits = dict[str, SequenceDataset]

GENERATORS: dict[str, Callable[..., Splits]] = {
    "trust": trust_splits,
    "steel": steel_splits,
    "hybrid": hybrid_splits,
    # data.size counts series of 260 weeks each (about 240 windows per series).
    "trend": trend_splits,
}
USERS_FILES: dict[str, Callable[..., Splits]] = {"npz": npz_splits, "csv": csv_splits}
EXTERNAL = ("aeon", *USERS_FILES)
SOURCES = (*GENERATORS, *(f"{k}:..." for k in EXTERNAL))


def check_source(source: str) -> None:
    kind, sep, arg = source.partition(":")
    if (not sep and source in GENERATORS) or (sep and kind in EXTERNAL and arg):
        return
    raise ValueError(
        f"unknown data.source {source!r}{did_you_mean(source, GENERATORS)}; known sources: "
        f"{list(GENERATORS)}, or aeon:NAME, "
        "npz:PATH, csv:PATH"
    )


RESERVED_NAMES = ("inputs", "lengths", "targets", "sequence", "target")


def _users_file(source: str) -> bool:
    """npz:PATH or csv:PATH: a file of the user's own, in an order and with columns of
    theirs."""
    kind, sep, _ = source.partition(":")
    return bool(sep) and kind in USERS_FILES


def check_sample_weights_option(name: str, source: str) -> None:
    """`data.sample_weights` names an array or column of the user's own npz or CSV file:
    generated data and aeon's files have none."""
    if not name:
        return
    if not _users_file(source):
        raise ValueError(
            f"data.sample_weights reads each sequence's weight from an npz array or a CSV "
            f"column (data.source npz:PATH or csv:PATH); data.source {source!r} has none"
        )
    if name in RESERVED_NAMES:
        raise ValueError(
            f"data.sample_weights {name!r} names the data's own {name}; name the array or "
            "column of the weights"
        )


def check_groups_option(name: str, source: str, split: str, sample_weights: str) -> None:
    """`data.groups` names an array or column of the user's own npz or CSV file, and
    groups a random split or the folds: an ordered split is cut by the file's order, and a
    stratified one by class."""
    if not name:
        return
    if not _users_file(source):
        raise ValueError(
            f"data.groups reads each sequence's group from an npz array or a CSV column "
            f"(data.source npz:PATH or csv:PATH); data.source {source!r} has none"
        )
    if name in RESERVED_NAMES or name == sample_weights:
        what = "sample weights" if name == sample_weights else f"data's own {name}"
        raise ValueError(f"data.groups {name!r} names the {what}; name the groups' array or column")
    if split != "random":
        raise ValueError(
            f"data.groups keeps each group whole in a random split or a fold; data.split={split} "
            "cuts by " + ("the file's order" if split == "ordered" else "class") + " instead"
        )


SPLITS = ("random", "ordered", "stratified")
DEFAULT_FRACTIONS = (0.7, 0.15, 0.15)  # DataConfig.splits


TIME_ORDERED_SOURCES = ("trend",)  # generated data whose splits are weeks in order


def splits_follow_time(data: DataConfig) -> bool:
    """Whether the validation and test splits come later in time than training (and the
    test after the validation): a user's file with `data.split=ordered`, or the trend
    data, which splits its windows by week. Statistics fitted on one split then carry to
    the next only as far as the series stays alike."""
    return data.split == "ordered" or data.source in TIME_ORDERED_SOURCES


def check_split_option(split: str, gap: int, source: str) -> None:
    """`data.split` "ordered" (and its `data.gap`) orders the user's own npz or CSV file,
    and "stratified" cuts its classes one by one: generated data splits itself (trend's
    windows in time order, with an embargo), and aeon's TEST file is its test split."""
    if split not in SPLITS:
        raise ValueError(f"data.split must be one of {SPLITS}; got {split!r}")
    if gap < 0:
        raise ValueError(f"data.gap must be >= 0; got {gap}")
    if gap and split != "ordered":
        raise ValueError(
            f"data.gap ({gap}) leaves out sequences at the cuts of an ordered split; "
            "set data.split=ordered, or data.gap=0"
        )
    if split != "random" and not _users_file(source):
        how = "in its order" if split == "ordered" else "class by class"
        raise ValueError(
            f"data.split={split} splits an npz or CSV file of your own {how} "
            f"(data.source npz:PATH or csv:PATH); data.source {source!r} splits itself"
        )


def check_folds_option(folds: int, fold: int, fractions: tuple[float, ...], source: str) -> None:
    """`data.folds` and `data.fold`: cross-validation of the user's own npz or CSV file,
    whose folds replace the fractions of `data.splits` (with an ordered split, folds that
    walk forward in time). Generated data has as many sequences as asked for
    (`data.size`), so it needs no folds."""
    if not folds:
        if fold:
            raise ValueError(
                f"data.fold ({fold}) picks a cross-validation fold; set data.folds too "
                "(seqjax cv trains every fold)"
            )
        return
    if folds < 3:
        raise ValueError(
            f"data.folds must be 0 (no cross-validation) or 3 or more: one fold tests, the "
            f"next validates and the others train; got {folds}"
        )
    if not 0 <= fold < folds:
        raise ValueError(f"data.fold must be one of the folds 0..{folds - 1}; got {fold}")
    if not _users_file(source):
        raise ValueError(
            "data.folds cross-validates an npz or CSV file of your own (data.source "
            f"npz:PATH or csv:PATH); data.source {source!r} generates as many sequences "
            "as data.size asks"
        )
    if tuple(fractions) != DEFAULT_FRACTIONS:
        raise ValueError(
            f"data.splits {tuple(fractions)} and data.folds {folds} both size the splits: "
            "with folds, one fold tests, one validates and the rest train; leave data.splits "
            "at its default"
        )


UNSCALED_TARGETS = ("trend_multitask", "trend_volatility_aware")


def load_splits(cfg, loss: str | None = None) -> dict[str, SequenceDataset]:
    """The splits of `cfg` (a DataConfig). `loss`, the loss the targets feed: users'
    regression targets are standardised for training (a target near 1,500 would take an
    output layer thousands of steps to reach), except for a loss whose targets mean
    something in their own units: the trend losses' scores in [-1, 1], whose direction
    classes are cut at +-0.1, and their volatilities."""
    check_source(cfg.source)
    kind, sep, arg = cfg.source.partition(":")
    if kind == "aeon":  # its TEST file is its test split: no plan of ours
        return aeon_splits(arg, seed=cfg.seed, fractions=tuple(cfg.splits), targets=cfg.targets)
    if sep:
        plan = SplitPlan(cfg.seed, tuple(cfg.splits), cfg.split, cfg.gap, cfg.folds, cfg.fold)
        return USERS_FILES[kind](
            arg,
            plan,
            targets=cfg.targets,
            sample_weights=cfg.sample_weights,
            groups=cfg.groups,
            scale_targets=loss not in UNSCALED_TARGETS,
        )
    return GENERATORS[cfg.source](cfg.size, seed=cfg.seed, fractions=tuple(cfg.splits))


def num_classes(splits: dict[str, SequenceDataset]) -> int:
    """K for class-label targets (int32 indices, or 0/1 floats for two classes), else 0."""
    targets = [np.asarray(s.targets) for s in splits.values()]
    if any(t.ndim != 1 for t in targets):
        return 0
    if all(np.issubdtype(t.dtype, np.integer) for t in targets):
        return int(max(t.max() for t in targets)) + 1
    if all(np.isin(t, (0.0, 1.0)).all() for t in targets):
        return 2
    return 0


def adapt_to_data(cfg, splits: dict[str, SequenceDataset]):
    """For users' data (aeon/npz/csv), take the channel count and the number of classes
    from the data: the model's `features` and `num_classes`, and the loss. Generated
    sources are returned unchanged. A model that cannot take such data is named."""
    if ":" not in cfg.data.source:
        return cfg
    channels = splits["train"].inputs.shape[-1]
    fields = {f.name for f in dataclasses.fields(cfg.model)}
    if "features" not in fields:
        raise ValueError(
            f"model {cfg.model_name!r} has a fixed input layout and cannot train on "
            f"{cfg.data.source}; use a sequence classifier such as steel"
        )
    model = {"features": channels}
    train = cfg.train
    k = 0 if cfg.data.targets == "values" else num_classes(splits)  # 0/1 values stay values
    if k and train.loss not in ("binary_cross_entropy", "cross_entropy"):
        raise ValueError(
            f"{cfg.data.source} holds class labels, but model {cfg.model_name!r} with loss "
            f"{train.loss!r} is not a classifier config; use steel (or trust for two classes), "
            "or --set data.targets=values if the integers are values to regress"
        )
    if k >= 3:
        if "num_classes" not in fields:
            raise ValueError(
                f"model {cfg.model_name!r} gives one logit (two classes); {cfg.data.source} "
                f"has {k} classes: use steel, which has num_classes"
            )
        model["num_classes"] = k
        if train.pos_weight != 1.0:
            raise ValueError(
                f"{cfg.data.source} has {k} classes, so the run trains with softmax "
                f"cross-entropy; train.pos_weight ({train.pos_weight}) weighs the positives "
                "of two classes only"
            )
        monitor = "val_accuracy" if train.monitor.startswith("val_auc") else train.monitor
        train = dataclasses.replace(train, loss="cross_entropy", monitor=monitor)
    elif k == 2:
        if "num_classes" in fields:
            model["num_classes"] = 1
        train = dataclasses.replace(train, loss="binary_cross_entropy")
    elif train.loss in ("binary_cross_entropy", "cross_entropy"):
        raise ValueError(
            f"{cfg.data.source}: targets are not class labels 0..K-1 but train.loss is "
            f"{train.loss!r}; for regression, --set train.loss=mse"
        )
    elif train.loss == "mse":  # regression: one output per target value
        shape = splits["train"].targets.shape[1:]
        if "num_classes" in fields:  # a classifier's head: one logit is one value
            if shape:
                raise ValueError(
                    f"{cfg.data.source}: targets of shape {shape} per sequence; model "
                    f"{cfg.model_name!r} regresses one value per sequence, targets (N,)"
                )
            model["num_classes"] = 1
        if not train.monitor.endswith("loss"):  # a classifier's metric is not logged
            train = dataclasses.replace(train, monitor="val_loss", mode="min")
    return dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, **model), train=train)


def check_class_targets(cfg, targets: np.ndarray, path: str) -> None:
    """New labelled data for a classifier run: labels its model can score, named if not
    (a label past the model's classes would otherwise read as a wrong prediction)."""
    if cfg.train.loss == "binary_cross_entropy" and not np.isin(targets, (0.0, 1.0)).all():
        raise ValueError(f"{path!r}: a two-class run takes targets 0 and 1")
    k = getattr(cfg.model, "num_classes", 0)
    if cfg.train.loss == "cross_entropy" and k and targets.max() >= k:
        raise ValueError(
            f"{path!r}: class {int(targets.max())} is past the run's {k} classes 0..{k - 1}"
        )

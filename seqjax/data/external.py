"""Users' own sequences: UEA/UCR datasets shipped inside the aeon package, .npz and CSV.

Every loader returns train/val/test `SequenceDataset`s with channels standardised by a
scaler fitted on the training split's valid steps only. Classification labels become 0/1
float targets for two classes (one logit, binary cross-entropy) and int32 class indices
for more (softmax cross-entropy); `adapt_to_data` in sources.py reads that back.
"""

from __future__ import annotations

import csv
import dataclasses
import importlib.util
import os
from typing import NamedTuple

import numpy as np

from seqjax.data.dataset import SequenceDataset, check_sample_weights
from seqjax.data.files import open_csv_text, open_npz
from seqjax.data.padding import pad_sequences
from seqjax.data.splits import RANDOM_SPLIT, SplitPlan, StandardScaler, split_indices
from seqjax.data.ts_format import LabelledSequences, read_ts


def aeon_data_dir() -> str:
    """The folder of datasets shipped in aeon, found without importing aeon (numba)."""
    spec = importlib.util.find_spec("aeon")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(
            "data.source aeon:NAME reads the datasets shipped in the aeon package, which is "
            "not installed: pip install 'seqjax[aeon]'"
        )
    return os.path.join(list(spec.submodule_search_locations)[0], "datasets", "data")


def aeon_datasets() -> list[str]:
    root = aeon_data_dir()
    return sorted(
        n for n in os.listdir(root) if os.path.exists(os.path.join(root, n, f"{n}_TRAIN.ts"))
    )


def aeon_splits(
    name: str, *, seed: int, fractions, targets: str = "auto"
) -> dict[str, SequenceDataset]:
    """aeon's TRAIN file split into train/val in the ratio fractions[0]:fractions[1];
    its TEST file, untouched, is the test split. Its labels are always classes."""
    if targets == "values":
        raise ValueError(f"aeon:{name} holds class labels; data.targets=values is for regression")
    known = aeon_datasets()
    if name not in known:
        raise ValueError(f"unknown aeon dataset {name!r}; shipped in aeon: {known}")
    root = os.path.join(aeon_data_dir(), name)
    train = read_ts(os.path.join(root, f"{name}_TRAIN.ts"))
    test = read_ts(os.path.join(root, f"{name}_TEST.ts"), train.class_names)
    n = len(train.labels)
    val_share = fractions[1] / (fractions[0] + fractions[1])
    train_idx, val_idx = split_indices(n, (1 - val_share, val_share), seed=seed)
    k = len(train.class_names)
    return standardised(
        {
            "train": _subset(train, train_idx),
            "val": _subset(train, val_idx),
            "test": (test.inputs, test.lengths, _targets(test.labels, k)),
        },
        k,
        classes=train.class_names,
    )


def _subset(data: LabelledSequences, idx: np.ndarray):
    k = len(data.class_names)
    return data.inputs[idx], data.lengths[idx], _targets(data.labels[idx], k)


def _targets(labels: np.ndarray, num_classes: int) -> np.ndarray:
    return labels.astype(np.float32 if num_classes == 2 else np.int32)


def npz_splits(
    path: str,
    plan: SplitPlan = RANDOM_SPLIT,
    *,
    targets: str = "auto",
    sample_weights: str = "",
    groups: str = "",
    scale_targets: bool = True,
) -> dict[str, SequenceDataset]:
    """A .npz with `inputs` (N, T, C) padded, `lengths` (N,) and `targets` (N,) or (N, O),
    and with `sample_weights` an array of that name (N,): each sequence's weight in the
    loss; with `groups`, one (N,) of each sequence's group. Without `lengths` every
    sequence is taken to fill all T steps. Read with allow_pickle=False: a ragged (object)
    array is refused, never unpickled."""
    archive = open_npz(path)  # outside the `try`: its own errors name the file as it is
    try:
        with archive as f:
            arrays = {k: f[k] for k in f.files}
    except ValueError as err:
        raise ValueError(
            f"{path}: cannot read without pickle ({err}); store ragged sequences zero-padded "
            "as inputs (N, T, C) with their lengths (N,): inputs, lengths = "
            "seqjax.data.pad_sequences(list_of_sequences)"
        ) from None
    weighed = [name for name in (sample_weights, groups) if name]
    missing = sorted({"inputs", "targets", *weighed} - set(arrays))
    if missing:
        expected = ", ".join(["inputs", "lengths", "targets", *weighed])
        raise ValueError(
            f"{path}: missing arrays {missing}; expected {expected} (it holds {sorted(arrays)})"
        )
    inputs = arrays["inputs"]
    if inputs.ndim != 3 or not np.issubdtype(inputs.dtype, np.number):
        raise ValueError(
            f"{path}: inputs must be a numeric (N, T, C) array; got {inputs.dtype} {inputs.shape}"
        )
    lengths = arrays.get("lengths", np.full(len(inputs), inputs.shape[1]))
    return _split_labelled(
        path,
        inputs.astype(np.float32),
        lengths,
        arrays["targets"],
        plan,
        targets,
        weights=arrays[sample_weights] if sample_weights else None,
        groups=arrays[groups] if groups else None,
        ids=np.arange(len(inputs)),
        scale_targets=scale_targets,
    )


class LongCsv(NamedTuple):
    sequences: list[str]  # the sequence names, in first-seen order
    channels: list[str]  # the channel columns' names
    inputs: np.ndarray  # (N, T, C) zero-padded
    lengths: np.ndarray  # (N,)
    labels: list[str] | None  # each sequence's target text (N,); None without `targets`
    weights: np.ndarray | None  # (N,) float32 from `weight_column`; None without it
    groups: list[str] | None  # each sequence's `group_column` text (N,); None without it


def read_long_csv(
    path: str, *, targets: bool = True, weight_column: str = "", group_column: str = ""
) -> LongCsv:
    """A CSV in long form with a header: one row per time step, a `sequence` column naming
    the sequence, every column but `sequence`, `target`, `weight_column` and
    `group_column` a channel, and (with `targets`) a `target` column constant within a
    sequence, as are the weight and group columns. Rows of a sequence are in time order;
    sequences may differ in length. Without `targets` (new data to predict) the `target`,
    weight and group columns are ignored."""
    extra = [name for name in (weight_column, group_column) if name]
    with open_csv_text(path) as f:
        reader = csv.reader(f)
        header = next(reader, None)
        if header is None:
            raise ValueError(f"{path}: empty CSV")
        constant = ["target", *extra] if targets else []  # one value per sequence
        missing = sorted({"sequence", *constant} - set(header))
        if missing:
            raise ValueError(f"{path}: missing columns {missing}; header is {header}")
        seq_col = header.index("sequence")
        not_channels = {"sequence", "target", *extra}
        channels = [i for i, name in enumerate(header) if name not in not_channels]
        columns = {name: header.index(name) for name in constant}
        rows: dict[str, list[list[float]]] = {}
        values: dict[str, dict[str, str]] = {name: {} for name in constant}  # per sequence
        for number, row in enumerate(reader, 2):
            if len(row) != len(header):
                raise ValueError(f"{path}:{number}: {len(row)} fields, header has {len(header)}")
            key = row[seq_col]
            for name, col in columns.items():
                if values[name].setdefault(key, row[col]) != row[col]:
                    raise ValueError(
                        f"{path}:{number}: {name} of sequence {key!r} changes over time"
                    )
            try:
                rows.setdefault(key, []).append([float(row[i]) for i in channels])
            except ValueError as err:
                raise ValueError(f"{path}:{number}: unreadable value ({err})") from None
    if not rows:
        raise ValueError(f"{path}: no data rows (an empty dataset)")
    inputs, lengths = pad_sequences(list(rows.values()), dtype=np.float32)
    sample_weights = None
    if targets and weight_column:
        try:
            sample_weights = np.array([float(values[weight_column][k]) for k in rows], np.float32)
        except ValueError as err:
            raise ValueError(f"{path}: unreadable {weight_column} ({err})") from None
    return LongCsv(
        list(rows),
        [header[i] for i in channels],
        inputs,
        lengths,
        [values["target"][k] for k in rows] if targets else None,
        sample_weights,
        [values[group_column][k] for k in rows] if targets and group_column else None,
    )


def csv_splits(
    path: str,
    plan: SplitPlan = RANDOM_SPLIT,
    *,
    targets: str = "auto",
    sample_weights: str = "",
    groups: str = "",
    scale_targets: bool = True,
) -> dict[str, SequenceDataset]:
    """Train / val / test from a long-form CSV (`read_long_csv`); the channels' names are
    kept with the scaler, so that `seqjax predict` matches a later CSV's columns to them.
    Targets that are not all numbers are class names, indexed in sorted order. With
    `sample_weights`, that column is each sequence's weight in the loss, and with `groups`
    that column its group; an ordered `plan` takes the sequences in first-seen order."""
    read = read_long_csv(path, weight_column=sample_weights, group_column=groups)
    labels = read.labels or []
    classes = None
    try:
        y = np.array([float(label) for label in labels])
    except ValueError as err:  # text labels: classes, indexed in sorted order
        if targets == "values":
            raise ValueError(f"{path}: data.targets=values, but a target is text ({err})") from None
        classes = tuple(sorted(set(labels)))
        y = np.array([classes.index(label) for label in labels])
    return _split_labelled(
        path,
        read.inputs,
        read.lengths,
        y,
        plan,
        targets,
        names=tuple(read.channels),
        classes=classes,
        weights=read.weights,
        groups=None if read.groups is None else np.array(read.groups),
        ids=np.array(read.sequences),
        scale_targets=scale_targets,
    )


def _split_labelled(
    path,
    inputs,
    lengths,
    targets,
    plan: SplitPlan,
    kind="auto",
    *,
    names=None,
    classes=None,
    weights=None,
    groups=None,
    ids=None,
    scale_targets=True,
):
    """With `kind` "auto" (data.targets), integer-valued targets (N,) are class labels
    0..K-1 and anything else is regression; "classes" requires labels, "values" makes any
    targets regression (counts, days, negative integers). `weights` (N,), where the data
    has them, and the sequences' names `ids` (N,) go with them into every split; `groups`
    (N,), where given, keep each group in one split. `plan` cuts them (a stratified one
    needs class labels). `scale_targets` False leaves regression targets in their units."""
    if len(inputs) < 3:
        raise ValueError(f"{path}: {len(inputs)} sequences; at least 3 are needed to split")
    if not np.all(np.isfinite(inputs)):
        bad = np.argwhere(~np.isfinite(inputs))[0]
        raise ValueError(
            f"{path}: inputs contain NaN or Inf (first at sequence {bad[0]}, step {bad[1]}, "
            f"channel {bad[2]})"
        )
    lengths = np.asarray(lengths)
    if lengths.shape != (len(inputs),) or not np.issubdtype(lengths.dtype, np.integer):
        raise ValueError(
            f"{path}: lengths must be integers of shape ({len(inputs)},); got "
            f"{lengths.dtype} {lengths.shape}"
        )
    if lengths.min() < 1 or lengths.max() > inputs.shape[1]:
        raise ValueError(
            f"{path}: lengths must lie in [1, {inputs.shape[1]}]; got min {lengths.min()}, "
            f"max {lengths.max()}"
        )
    targets = np.asarray(targets)
    if len(targets) != len(inputs):
        raise ValueError(f"{path}: {len(targets)} targets for {len(inputs)} sequences")
    k, labels = 0, None
    integral = np.all(np.isfinite(targets)) and np.all(targets == np.round(targets))
    if kind == "classes" and not (targets.ndim == 1 and integral):
        raise ValueError(f"{path}: data.targets=classes needs integer labels (N,) 0..K-1")
    if kind != "values" and targets.ndim == 1 and integral:
        if targets.min() < 0:
            raise ValueError(f"{path}: class labels must be 0..K-1; got {int(targets.min())}")
        if len(np.unique(targets)) < 2:  # it trains, to a NaN AUC and nothing learned
            only = classes[int(targets[0])] if classes else int(targets[0])
            raise ValueError(
                f"{path}: every target is class {only!r}; a classifier needs two "
                "classes or more (data.targets=values makes them values to regress)"
            )
        k = int(targets.max()) + 1
        labels = targets.astype(np.int64)
        targets = _targets(labels, max(k, 2))
    elif kind == "values":
        targets = targets.astype(np.float32)
    if weights is not None:
        check_sample_weights(weights, len(inputs), path)
        weights = np.asarray(weights, np.float32)
    if plan.split == "stratified" and not k:
        raise ValueError(
            f"{path}: data.split=stratified cuts each class on its own, but the targets are "
            "values, not class labels 0..K-1"
        )
    if groups is not None:
        groups = np.asarray(groups)
        if groups.shape != (len(inputs),):
            raise ValueError(
                f"{path}: groups must be one per sequence, ({len(inputs)},); got {groups.shape}"
            )
        if np.issubdtype(groups.dtype, np.floating) and not np.all(np.isfinite(groups)):
            raise ValueError(f"{path}: groups contain NaN or Inf; name every sequence's group")
    try:
        parts = plan.indices(len(inputs), labels, groups)
    except ValueError as err:
        raise ValueError(f"{path}: {err}") from None
    data = {
        name: (inputs[idx], lengths[idx].astype(np.int32), targets[idx])
        for name, idx in zip(("train", "val", "test"), parts, strict=True)
    }
    split_ids = (
        None if ids is None else {name: ids[idx] for name, idx in zip(data, parts, strict=True)}
    )
    split_weights = None
    if weights is not None:
        split_weights = {name: weights[idx] for name, idx in zip(data, parts, strict=True)}
        for name, w in split_weights.items():
            if not w.any():
                raise ValueError(
                    f"{path}: every sample weight of the {name} split ({len(w)} sequences) "
                    "is 0, so its loss weighs nothing; give it weighted sequences "
                    "(data.splits, data.seed)"
                )
    return standardised(
        data,
        k,
        names=names,
        classes=classes,
        weights=split_weights,
        ids=split_ids,
        scale_targets=scale_targets,
    )


def standardised(
    parts: dict,
    num_classes: int,
    *,
    names=None,
    classes=None,
    weights=None,
    ids=None,
    scale_targets=True,
) -> dict[str, SequenceDataset]:
    """Scale every split with the training split's per-channel statistics, and regression
    targets (`num_classes` 0) with the training split's per-output ones; each split keeps
    the scalers (and the class names, if any), which a run saves for `seqjax predict`.
    `weights` and `ids`: each split's sample weights and sequence names, by split name,
    where the data has them; `scale_targets` False keeps regression targets in their own
    units."""
    x, lengths, y = parts["train"]
    scaler = dataclasses.replace(StandardScaler.fit(x, lengths), names=names)
    scaled = scale_targets and not num_classes
    target_scaler = StandardScaler.fit_rows(y) if scaled else None  # per output
    out = {}
    for name, (x, lengths, y) in parts.items():
        if target_scaler is not None:
            y = target_scaler.transform_rows(y)
        out[name] = SequenceDataset(
            scaler.transform_sequences(x, lengths),
            lengths.astype(np.int32),
            y,
            scaler=scaler,
            classes=classes,
            target_scaler=target_scaler,
            weights=None if weights is None else weights[name],
            ids=None if ids is None else ids[name],
        )
    return out

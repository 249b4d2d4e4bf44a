"""New sequences to predict on, read and scaled as a run's training data was.

A run trained on users' data (aeon/npz/csv) saw channels standardised with its training
split's statistics. Raw data given to `seqjax predict` must go through the same scaling,
or the model sees values in other units and predicts confidently wrong (a channel around
1,500 C reads as 1,500 standard deviations). So the run saves its scaler in
data_spec.json (`seqjax/data/spec.py`), and `read_prediction_inputs` applies it; runs of
generated data, whose generators emit model inputs, have none and take inputs as they are.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from seqjax.data.dataset import SequenceDataset
from seqjax.data.external import read_long_csv
from seqjax.data.files import open_npz
from seqjax.data.spec import DataSpec


def _read_npz(
    path: str, labelled: bool, weight_column: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None]:
    with open_npz(path) as f:
        weighed = [weight_column] if weight_column else []
        needed = ["inputs", *(["targets", *weighed] if labelled else [])]
        missing = [k for k in needed if k not in f]
        if missing:
            raise ValueError(f"{path!r} has no {missing} array; it holds {sorted(f.files)}")
        inputs = np.asarray(f["inputs"], np.float32)  # (N, T, F)
        if inputs.ndim != 3:
            raise ValueError(f"{path!r}: inputs must be (N, T, F); got shape {inputs.shape}")
        lengths = (
            np.asarray(f["lengths"])
            if "lengths" in f
            else np.full(len(inputs), inputs.shape[1], np.int32)
        )  # (N,)
        targets = np.asarray(f["targets"]) if labelled else None  # (N, ...)
        weights = np.asarray(f[weight_column]) if labelled and weight_column else None  # (N,)
    if not np.issubdtype(lengths.dtype, np.integer):
        raise ValueError(f"{path!r}: lengths must be integers; got {lengths.dtype}")
    return inputs, lengths, targets, weights


def _read_csv(
    path: str, spec: DataSpec, labelled: bool, weight_column: str, group_column: str
) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None]:
    """A long-form CSV's sequence names, inputs, lengths and (`labelled`) targets and
    sample weights, with its channels put in the training data's order and its labels
    turned into the training classes' indices where the run knows their names. The group
    column, where the run had one, is not a channel."""
    scaler = spec.scaler
    read = read_long_csv(
        path, targets=labelled, weight_column=weight_column, group_column=group_column
    )
    sequences, names, inputs, lengths = read.sequences, read.channels, read.inputs, read.lengths
    labels, weights = read.labels, read.weights
    if scaler is not None and scaler.names is not None:
        missing = [n for n in scaler.names if n not in names]
        extra = [n for n in names if n not in scaler.names]
        if missing or extra:
            raise ValueError(
                f"{path!r}: channel columns differ from the training data's "
                f"{list(scaler.names)}: missing {missing}, unexpected {extra}"
            )
        inputs = inputs[..., [names.index(n) for n in scaler.names]]
    targets = None
    if labels is not None and spec.classes is not None:
        unknown = sorted(set(labels) - set(spec.classes))
        if unknown:
            raise ValueError(
                f"{path!r}: labels {unknown} are not among the run's classes {list(spec.classes)}"
            )
        targets = np.array([spec.classes.index(label) for label in labels])
    elif labels is not None:
        try:
            targets = np.array([float(label) for label in labels])
        except ValueError as err:
            raise ValueError(f"{path!r}: non-numeric target ({err})") from None
    return sequences, inputs, lengths, targets, weights


def _as_spec_targets(path: str, targets: np.ndarray, spec: DataSpec) -> np.ndarray:
    """`targets` in the form training gave them: the spec's per-example shape and dtype,
    class indices as integers >= 0."""
    if targets.shape[1:] != spec.target_shape:
        raise ValueError(
            f"{path!r}: targets of shape {targets.shape[1:]} per sequence; the run's are "
            f"{spec.target_shape}"
        )
    if np.issubdtype(targets.dtype, np.number) and not np.all(np.isfinite(targets)):
        raise ValueError(f"{path!r}: targets contain NaN or Inf")
    if np.issubdtype(np.dtype(spec.target_dtype), np.integer) and not (
        np.all(targets == np.round(targets)) and targets.min() >= 0
    ):
        raise ValueError(f"{path!r}: targets must be class indices 0..K-1, as in training")
    return targets.astype(spec.target_dtype)


def read_prediction_inputs(
    path: str,
    spec: DataSpec,
    *,
    scaled: bool = False,
    labelled: bool = False,
    weight_column: str = "",
    group_column: str = "",
) -> tuple[SequenceDataset, list[str] | None]:
    """The .npz (`inputs` (N, T, F), optional `lengths` (N,)) or long-form .csv (a
    `sequence` column, one column per channel) at `path`, scaled with the run's scaler
    unless `scaled` (the inputs are model inputs already). With `labelled` the targets
    are read too (an .npz's `targets`, a CSV's `target` column) in the run's target form;
    without, a CSV's `target` column is ignored and the targets are the spec's
    placeholders (the eval step that predictions come from also computes a loss, which
    needs the task's target shape, and drops it). `weight_column`: the run's
    `data.sample_weights`, read with the targets (the loss weighs as training's did) and
    ignored without them; `group_column`, the run's `data.groups`, is a CSV column that is
    not a channel. Also returns a CSV's sequence names, in first-seen order."""
    scaler = spec.scaler
    sequences = None
    if path.endswith(".npz"):
        inputs, lengths, targets, weights = _read_npz(path, labelled, weight_column)
    elif path.endswith(".csv"):
        sequences, inputs, lengths, targets, weights = _read_csv(
            path, spec, labelled, weight_column, group_column
        )
    else:
        raise ValueError(f"--input must be an .npz or a long-form .csv file; got {path!r}")
    if inputs.shape[-1] != spec.features:
        raise ValueError(
            f"{path!r}: inputs have {inputs.shape[-1]} features; the model expects {spec.features}"
        )
    if len(inputs) == 0:
        raise ValueError(f"{path!r} holds no sequences (inputs of shape {inputs.shape})")
    lengths = lengths.astype(np.int32)
    if targets is None:
        targets = spec.placeholder_targets(len(inputs))
    else:
        targets = _as_spec_targets(path, targets, spec)
        if spec.target_scaler is not None:  # the loss is the standardised objective's
            targets = spec.target_scaler.transform_rows(targets).astype(spec.target_dtype)
    try:  # checks NaN, Inf and lengths; predictions (and metrics) in the targets' units
        data = SequenceDataset(
            inputs, lengths, targets, target_scaler=spec.target_scaler, weights=weights
        )
    except ValueError as err:
        raise ValueError(f"{path!r}: {str(err).removeprefix('SequenceDataset: ')}") from None
    if scaler is not None and not scaled:
        data = dataclasses.replace(data, inputs=scaler.transform_sequences(inputs, lengths))
    return data, sequences


def longer_than_trained(where: str, lengths: np.ndarray, spec: DataSpec) -> str | None:
    """A note where `lengths` (N,) of the sequences in `where` (a file's name, quoted)
    run longer than the run's training sequences, else None. Not an error: an LSTM takes
    any length, and a user may mean it. But a model trained on 12-week windows (trend)
    that is handed 20 weeks predicts from a state it never reached in training, and said
    nothing of it before."""
    longer = np.asarray(lengths) > spec.steps
    if not longer.any():
        return None
    return (
        f"{int(longer.sum())} of {len(longer)} sequences in {where} are longer than the run "
        f"trained on ({spec.steps} steps; the longest here has {int(np.max(lengths))}); its "
        f"predictions there come from states training never reached"
    )

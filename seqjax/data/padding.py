"""A list of variable-length sequences -> the padded batch and lengths the layers take.

`torch.nn.utils.rnn.pad_sequence(seqs, batch_first=True)` gives the padded tensor and
leaves the lengths to the caller; `pack_sequence` keeps them inside a PackedSequence.
seqjax's layers take both as plain arrays, so this returns both. It works on the host in
NumPy: where the batch goes (one device, or split over a mesh) is the caller's choice.
"""

from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike, DTypeLike


def pad_sequences(
    sequences: Sequence[ArrayLike],
    *,
    length: int | None = None,
    padding_value: float = 0.0,
    dtype: DTypeLike | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(T_i, *F) arrays -> padded (N, T, *F) and lengths (N,) int32, each row's steps first.

    T is the longest T_i, or `length` when given: under `jax.jit` each new T traces and
    compiles the model again, so batches padded to one `length` (or to a few bucket
    lengths) compile once. Padding goes after each sequence's steps only (PyTorch's
    `padding_side="right"`), since the layers read steps [0, length) of each row.
    `dtype` defaults to the sequences' common NumPy type.
    """
    if isinstance(sequences, np.ndarray) or not isinstance(sequences, Sequence):
        raise TypeError(
            "pad_sequences: sequences must be a list or tuple of (T_i, *F) arrays; got "
            f"{type(sequences).__name__}"
        )
    if not sequences:
        raise ValueError("pad_sequences: need at least one sequence; got none")
    arrays = [np.asarray(s) for s in sequences]
    for i, a in enumerate(arrays):
        if a.ndim == 0:
            raise ValueError(f"pad_sequences: sequence {i} has no time axis (a scalar)")
    feature_shape = arrays[0].shape[1:]
    for i, a in enumerate(arrays):
        if a.shape[1:] != feature_shape:
            raise ValueError(
                f"pad_sequences: sequence {i} has shape {a.shape}, but sequence 0 has "
                f"features of shape {feature_shape}: every sequence needs the same shape "
                "past its time axis"
            )
    lengths = np.array([len(a) for a in arrays], np.int32)  # (N,)
    longest = int(lengths.max())
    if length is None:
        length = longest
    elif length < longest:
        raise ValueError(
            f"pad_sequences: length {length} is shorter than the longest sequence "
            f"(sequence {int(lengths.argmax())}, {longest} steps)"
        )
    out_dtype = np.dtype(dtype) if dtype is not None else np.result_type(*arrays)
    padded = np.full((len(arrays), length, *feature_shape), padding_value, out_dtype)
    for i, a in enumerate(arrays):
        padded[i, : len(a)] = a
    return padded, lengths  # (N, T, *F), (N,)


def unpad_sequences(padded: ArrayLike, lengths: ArrayLike) -> list[np.ndarray]:
    """Padded (N, T, *F) and lengths (N,) -> N arrays (length_i, *F): a layer's outputs back
    to one array per sequence (views of `padded`), as PyTorch's
    `unpad_sequence(batch_first=True)`."""
    padded, lengths = np.asarray(padded), np.asarray(lengths)
    if padded.ndim < 2:
        raise ValueError(
            f"unpad_sequences: padded must have shape (N, T, ...); got shape {padded.shape}"
        )
    if lengths.shape != padded.shape[:1] or not np.issubdtype(lengths.dtype, np.integer):
        raise ValueError(
            f"unpad_sequences: lengths must be integers of shape ({padded.shape[0]},); got "
            f"{lengths.dtype} of shape {lengths.shape}"
        )
    if lengths.size and (lengths.min() < 0 or lengths.max() > padded.shape[1]):
        raise ValueError(
            f"unpad_sequences: lengths must lie in [0, {padded.shape[1]}] (the padded length "
            f"T); got min {lengths.min()}, max {lengths.max()}"
        )
    return [row[:n] for row, n in zip(padded, lengths.tolist(), strict=True)]

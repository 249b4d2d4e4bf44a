"""A reader for the `.ts` format of the UEA/UCR time-series classification archive.

Own parser, not aeon's: importing aeon pulls numba and pandas (seconds of start-up),
and the format is small. Header lines start with '@', comments with '#'; after '@data'
each line is one case: its dimensions separated by ':', values by ',', and the class
label last. Cases may differ in length (variable-length problems); the dimensions of
one case may not.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from seqjax.data.padding import pad_sequences


@dataclasses.dataclass(frozen=True)
class LabelledSequences:
    inputs: np.ndarray  # (N, T, C) float32, zero past each length
    lengths: np.ndarray  # (N,) int32
    labels: np.ndarray  # (N,) int32 indices into class_names
    class_names: tuple[str, ...]


def read_ts(path: str, class_names: tuple[str, ...] | None = None) -> LabelledSequences:
    """Parse a `.ts` file. `class_names` fixes the label order (pass the TRAIN file's to
    read its TEST file); by default it is the header's `@classLabel true ...` list."""
    header: dict[str, str] = {}
    cases: list[np.ndarray] = []
    raw_labels: list[str] = []
    in_data = False
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            if not in_data:
                if line.lower() == "@data":
                    in_data = True
                    _check_header(header, path)
                elif line.startswith("@"):
                    key, _, value = line[1:].partition(" ")
                    header[key.lower()] = value.strip()
                continue
            cases.append(_parse_case(line, path, number, raw_labels))
    if not cases:
        raise ValueError(f"{path}: no cases after @data (an empty dataset)")
    channels = {c.shape[1] for c in cases}
    if len(channels) > 1:
        raise ValueError(f"{path}: cases have different numbers of dimensions {sorted(channels)}")
    if class_names is None:
        declared = header.get("classlabel", "").split()
        class_names = tuple(declared[1:]) if declared[:1] == ["true"] else ()
        class_names = class_names or tuple(sorted(set(raw_labels)))
    unknown = sorted(set(raw_labels) - set(class_names))
    if unknown:
        raise ValueError(f"{path}: labels {unknown} are not among the classes {list(class_names)}")
    index = {name: i for i, name in enumerate(class_names)}
    inputs, lengths = pad_sequences(cases, dtype=np.float32)
    labels = np.array([index[label] for label in raw_labels], np.int32)
    return LabelledSequences(inputs, lengths, labels, tuple(class_names))


def _check_header(header: dict[str, str], path: str) -> None:
    if header.get("timestamps", "false").lower() == "true":
        raise ValueError(f"{path}: time-stamped .ts files are not supported")
    if header.get("targetlabel", "false").lower() == "true":
        raise ValueError(
            f"{path}: a regression problem (@targetLabel); only classification is read"
        )


def _parse_case(line: str, path: str, number: int, labels: list[str]) -> np.ndarray:
    """One data line -> (T, C); appends its label to `labels`."""
    *dims, label = line.split(":")
    if not dims:
        raise ValueError(f"{path}:{number}: a case needs values and a class label")
    try:
        values = [np.array(d.replace("?", "nan").split(","), np.float64) for d in dims]  # C x (T,)
    except ValueError as err:
        raise ValueError(f"{path}:{number}: unreadable value ({err})") from None
    if len({len(v) for v in values}) > 1:
        raise ValueError(
            f"{path}:{number}: the dimensions of one case differ in length "
            f"{[len(v) for v in values]}"
        )
    # Trailing missing values ('?' parses as NaN) are how some files pad; anything else is
    # reported by the dataset's NaN check.
    case = np.stack(values, axis=1)  # (T, C)
    keep = len(case)
    while keep > 1 and np.isnan(case[keep - 1]).all():
        keep -= 1
    labels.append(label.strip())
    return case[:keep].astype(np.float32)

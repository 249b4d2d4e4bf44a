"""A user's data file, checked before it is read. Read as it is, a CSV given as an .npz
is refused by numpy as "pickled data" (allow_pickle=False's refusal, which then sends the
user to pad ragged sequences), an .npz given as a CSV fails on its first byte with a
codec error, and a directory gives the OS's "Is a directory": none names the mix-up."""

from __future__ import annotations

import io
import os
import zipfile

import numpy as np


def check_data_file(path: str, kind: str) -> None:
    """Raises, naming what `path` is, where it cannot be a `kind` ("npz" or "csv") file."""
    if os.path.isdir(path):
        raise ValueError(f"{path!r} is a directory, not a .{kind} file")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no .{kind} file {path!r}")
    archive = zipfile.is_zipfile(path)
    if kind == "npz" and not archive:
        raise ValueError(
            f"{path!r} is not an .npz archive (the zip of .npy arrays numpy.savez writes)"
        )
    if kind == "csv" and archive:
        raise ValueError(f"{path!r} is a zip archive (an .npz?), not a CSV text file")


def open_npz(path: str) -> np.lib.npyio.NpzFile:
    """`np.load(path, allow_pickle=False)` of a file checked to be an .npz archive: a
    ragged (object) array in it is refused when read, never unpickled."""
    check_data_file(path, "npz")
    return np.load(path, allow_pickle=False)


def open_csv_text(path: str) -> io.StringIO:
    """The CSV file at `path` as text, read whole, so that bytes that are not UTF-8 are
    named here rather than by a codec error from inside the csv reader's loop. A leading
    byte-order mark (Excel's "CSV UTF-8") is dropped, not read into the first column's name."""
    check_data_file(path, "csv")
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            return io.StringIO(f.read(), newline="")
    except UnicodeDecodeError as err:
        raise ValueError(f"{path!r} is not UTF-8 text (byte {err.start}: {err.reason})") from None

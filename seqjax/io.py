"""Atomic file writes: a crash leaves either the old file or the new one, never half of one."""

from __future__ import annotations

import json
import math
import os
import tempfile

import numpy as np


def proc_status(field: str) -> str | None:
    """The first word of `field` in /proc/self/status (e.g. "VmHWM", "Umask"); None where
    there is no such file or field (not Linux)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return line.split()[1]
    except OSError:
        pass
    return None


def _umask() -> int:
    """The process's umask, read without setting it: os.umask() can only be read by
    changing it, which would race with other threads creating files (Orbax's, say)."""
    mask = proc_status("Umask")
    return int(mask, 8) if mask is not None else 0o022


def atomic_write_text(path: str, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def atomic_write_bytes(path: str, data: bytes) -> None:
    """Write `data` to `path` through a temporary file in the same directory.

    A failure names `path`: an error from write() or fsync() carries no file name, so a
    full disk would otherwise read as a bare "[Errno 28] No space left on device"."""
    directory = os.path.dirname(os.path.abspath(path))
    try:
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=directory)
    except OSError as err:
        if err.errno is None:
            raise
        raise OSError(err.errno, f"{err.strerror}: cannot write {path}") from None
    try:
        # mkstemp makes the file owner-only (0600); give it the mode a plain open() would
        os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as err:
        if os.path.exists(tmp):
            os.unlink(tmp)
        if isinstance(err, OSError) and err.errno is not None:
            # OSError(errno, ...) builds the same subclass (PermissionError, ...) again
            raise OSError(err.errno, f"{err.strerror} while writing {path}") from None
        raise


def nan_as_null(obj):
    """`obj` with every NaN or infinite float, in nested dicts, lists and tuples, as None.

    Why: Python's json writes them as the bare words NaN and Infinity, which JSON has not:
    JavaScript's JSON.parse, Go, Rust's serde and strict readers refuse the whole file. An
    AUC over targets of one class is NaN (undefined), so a run's metrics.json had them."""
    if isinstance(obj, float | np.floating):  # numpy's too (a metric of np.mean)
        return float(obj) if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: nan_as_null(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [nan_as_null(v) for v in obj]
    return obj


def json_text(obj, *, indent: int | None = None, default=None) -> str:
    """Standard JSON: an undefined (NaN) or infinite figure is written as null; `default`
    as `json.dumps` takes it, for other objects."""
    return json.dumps(nan_as_null(obj), indent=indent, allow_nan=False, default=default)


def atomic_write_json(path: str, obj) -> None:
    atomic_write_text(path, json_text(obj, indent=2) + "\n")


def history_csv(history: list[dict]) -> str:
    """CSV text with one row per epoch; columns are the union of keys, in first-seen order."""
    columns: list[str] = []
    for row in history:
        columns += [k for k in row if k not in columns]
    lines = [",".join(columns)]
    lines += [
        ",".join("" if row.get(c) is None else repr(row.get(c)) for c in columns) for row in history
    ]
    return "\n".join(lines) + "\n"

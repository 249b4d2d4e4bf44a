"""Atomic writes: the new file whole, with a plain file's permissions, and no leftovers."""

import json
import os
import re
import stat

import numpy as np
import pytest

from seqjax.io import atomic_write_json, atomic_write_text, json_text


def test_written_file_has_the_mode_open_would_give(tmp_path):
    path = tmp_path / "result.json"
    atomic_write_json(str(path), {"a": 1})
    assert json.loads(path.read_text()) == {"a": 1}
    umask = os.umask(0o022)
    os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask
    assert [p.name for p in tmp_path.iterdir()] == ["result.json"]


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    path = tmp_path / "notes.txt"
    atomic_write_text(str(path), "old")

    def fail(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", fail)
    named = re.escape(f"No space left on device while writing {path}")
    with pytest.raises(OSError, match=named) as err:
        atomic_write_text(str(path), "new")
    assert err.value.errno == 28
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]


def test_a_missing_directory_is_named_and_keeps_its_error_class(tmp_path):
    path = tmp_path / "missing" / "x.txt"
    with pytest.raises(FileNotFoundError, match=re.escape(f"cannot write {path}")):
        atomic_write_text(str(path), "new")


def _strict(text: str):
    """json.loads refusing the bare NaN and Infinity that Python writes and JSON has not."""

    def refuse(word):
        raise ValueError(f"not JSON: {word}")

    return json.loads(text, parse_constant=refuse)


def test_undefined_figures_are_written_as_null(tmp_path):
    path = tmp_path / "metrics.json"
    nan, inf = float("nan"), float("inf")
    atomic_write_json(str(path), {"auc": nan, "rows": [{"r": -inf}, (1.5, nan)], "n": 3})
    assert _strict(path.read_text()) == {"auc": None, "rows": [{"r": None}, [1.5, None]], "n": 3}
    assert json_text({"x": np.float32("nan")}, default=float) == '{"x": null}'

"""`pytest.approx` for a nested result (dicts of lists of numbers): pytest 9.2 refuses
nested dicts in `approx` itself, where 9.0 compared them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pytest


def approx_tree(expected: Any, **tolerance) -> Any:
    """`expected` with every number wrapped in `pytest.approx(number, **tolerance)`, so
    `actual == approx_tree(expected)` compares the structure exactly and the numbers
    within the tolerance."""
    if isinstance(expected, Mapping):
        return {key: approx_tree(value, **tolerance) for key, value in expected.items()}
    if isinstance(expected, list | tuple | np.ndarray):
        return [approx_tree(value, **tolerance) for value in expected]
    if isinstance(expected, bool | str) or expected is None:
        return expected
    return pytest.approx(expected, **tolerance)

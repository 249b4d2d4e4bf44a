"""`compare_cross_validations`: two cross-validations of the same folds, fold by fold.

Why paired: two configs' folds share their test sequences, so a config that is better on
every fold shows it in the per-fold differences even where each config's spread over the
folds is wider than the gain (the folds differ in how hard their sequences are, for both
configs alike). Comparing the two means with their standard deviations throws that away.
"""

from __future__ import annotations

import json
import os

import numpy as np

from seqjax.train.cross_validation import CV_FILE, fold_dir
from seqjax.train.monitor import by_name
from seqjax.train.restore import load_run_config
from seqjax.train.run import config_differences


def _summary(run_dir: str) -> dict:
    path = os.path.join(run_dir, CV_FILE)
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"{run_dir!r} holds no finished cross-validation ({CV_FILE}); seqjax cv writes it "
            "once every fold has trained"
        )
    with open(path) as f:
        return json.load(f)


def check_same_folds(first: str, second: str) -> None:
    """The two cross-validations split the same file the same way: every `data` key of
    their runs equal (source, seed, split, groups, folds...), else their fold k would test
    other sequences and the differences pair nothing."""
    differ = [
        key
        for key in config_differences(
            load_run_config(fold_dir(first, 0)), load_run_config(fold_dir(second, 0))
        )
        if key.startswith("data.")
    ]
    if differ:
        raise ValueError(
            f"{first!r} and {second!r} are not cross-validations of the same folds: "
            f"{', '.join(differ)} differ"
        )


def compare_cross_validations(first: str, second: str) -> dict:
    """Metric by metric, each test figure's mean in the first and the second
    cross-validation, the second's per-fold figures minus the first's (their mean, their
    standard deviation, ddof 1, and the values), and in how many folds the second is
    better, by the way the metric's name says it improves (None where it says not)."""
    a, b = _summary(first), _summary(second)
    if a["folds"] != b["folds"]:
        raise ValueError(
            f"{first!r} has {a['folds']} folds and {second!r} {b['folds']}: not the same folds"
        )
    check_same_folds(first, second)
    compared = {}
    for key, one in a["test"].items():
        other = b["test"].get(key)
        if not (isinstance(one, dict) and "folds" in one and isinstance(other, dict)):
            continue  # the confusion matrices, and a metric only one of them logs
        difference = np.asarray(other["folds"], np.float64) - np.asarray(one["folds"])  # (K,)
        better = by_name(key)
        wins = None
        if better is not None:
            wins = int(np.sum(difference < 0 if better == "min" else difference > 0))
        compared[key] = {
            "first": one["mean"],
            "second": other["mean"],
            "difference": {
                "mean": float(difference.mean()),
                "std": float(difference.std(ddof=1)),
                "folds": difference.tolist(),
            },
            "second_better_in": wins,
        }
    return {"folds": a["folds"], "first": first, "second": second, "test": compared}

"""Class weights on imbalanced classes, judged by 5-fold stratified cross-validation
rather than by one split.

    python experiments/imbalanced_cv.py [--out experiments/results/imbalanced_cv_cpu.json]

The data: 1,500 generated sequences of 40 steps and 4 channels, classes 0/1/2 in
proportions 85/10/5, where classes 1 and 2 add a 5-step bump to channel 0 or 1 at a random
time, written as an npz: a user's file, as `seqjax cv` takes it. steel_lightweight trains
on it with `train.class_weights` null and then balanced, both monitoring val_macro_f1, and
the two are compared fold by fold (`seqjax compare`).

Why: one split's test set holds about 13 sequences of class 2, so its macro F1 moves by
several points with the seed; the folds' spread shows which differences outlast that.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile

import numpy as np

from seqjax.config import load_config
from seqjax.environment import experiment_header
from seqjax.io import atomic_write_json
from seqjax.train.cross_validation import cross_validate
from seqjax.train.cv_compare import compare_cross_validations

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WEIGHTS = {"none": "null", "balanced": "balanced"}
KEYS = ("accuracy", "balanced_accuracy", "macro_f1")


def write_data(path: str, size: int) -> np.ndarray:
    """The imbalanced npz at `path`; returns its labels (N,)."""
    rng = np.random.default_rng(1)
    labels = rng.choice(3, size=size, p=[0.85, 0.1, 0.05])  # (N,)
    inputs = rng.normal(size=(size, 40, 4))  # (N, T, C)
    for i in np.flatnonzero(labels):
        start = rng.integers(0, 35)
        inputs[i, start : start + 5, labels[i] - 1] += 1.0
    np.savez(path, inputs=inputs, lengths=np.full(size, 40), targets=labels)
    return labels


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--out", default=os.path.join(REPO, "experiments", "results", "imbalanced_cv_cpu.json")
    )
    parser.add_argument("--size", type=int, default=1500)
    parser.add_argument("--folds", type=int, default=5)
    args = parser.parse_args(argv)
    results = {}
    with tempfile.TemporaryDirectory() as scratch:
        data = os.path.join(scratch, "imbalanced.npz")
        counts = np.bincount(write_data(data, args.size)).tolist()
        for name, weights in WEIGHTS.items():
            cfg = load_config(
                "steel_lightweight",
                [
                    f"data.source=npz:{data}",
                    "data.split=stratified",
                    f"data.folds={args.folds}",
                    "train.monitor=val_macro_f1",
                    f"train.class_weights={weights}",
                    "train.plots=false",
                ],
            )
            summary = cross_validate(cfg, os.path.join(scratch, name), log=lambda _: None)
            test = summary["test"]
            confusion = np.asarray(test["confusion_matrix"])  # every sequence, once
            results[name] = {
                **{key: test[key] for key in KEYS},
                "pooled": {key: summary["pooled"][key] for key in KEYS},  # out-of-fold
                "recall_per_class": (np.diag(confusion) / confusion.sum(axis=1)).tolist(),
                "confusion_matrix": test["confusion_matrix"],
            }
            print(name, {key: round(test[key]["mean"], 4) for key in KEYS}, flush=True)
        paired = compare_cross_validations(*(os.path.join(scratch, name) for name in WEIGHTS))
        compared = {key: paired["test"][key] for key in KEYS}  # balanced minus none, per fold
    atomic_write_json(
        args.out,
        {
            **experiment_header("experiments/imbalanced_cv.py", argv or sys.argv[1:]),
            "class_counts": counts,
            "folds": args.folds,
            "class_weights": results,
            "balanced_minus_none": compared,
        },
    )


if __name__ == "__main__":
    main()

"""How far random folds overstate a model that meets new subjects: 5-fold cross-validation
of one file, its folds dealt at random and then by subject (`data.groups`).

    python experiments/grouped_cv.py [--out experiments/results/grouped_cv_cpu.json]

The data: 40 subjects of 25 sequences each (30 steps, 4 channels). Each subject adds its
own constant offset to every channel and mostly carries one label (90% of its sequences);
a positive sequence also has a 5-step bump in channel 0 at a random time, the one signal
that holds for subjects never seen. Random folds put each subject's sequences in training
and in test, so a model can score test sequences by recognising their subject; grouped
folds test every subject on a model that never saw it, as deployment would.
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

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KEYS = ("accuracy", "f1", "auc_roc")


def write_data(path: str, subjects: int = 40, per_subject: int = 25) -> None:
    """The npz at `path`: inputs, targets and `subject` (N,)."""
    rng = np.random.default_rng(0)
    subject = np.repeat(np.arange(subjects), per_subject)  # (N,)
    subject_label = rng.permutation(np.arange(subjects) % 2)  # (S,) half of them positive
    flipped = rng.random(len(subject)) < 0.1
    labels = np.where(flipped, 1 - subject_label[subject], subject_label[subject])  # (N,)
    offsets = rng.normal(size=(subjects, 4))  # (S, C) each subject's signature
    inputs = rng.normal(size=(len(subject), 30, 4)) + offsets[subject][:, None, :]  # (N, T, C)
    for i in np.flatnonzero(labels):
        start = rng.integers(0, 25)
        inputs[i, start : start + 5, 0] += 1.0
    np.savez(path, inputs=inputs, targets=labels, subject=subject)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--out", default=os.path.join(REPO, "experiments", "results", "grouped_cv_cpu.json")
    )
    args = parser.parse_args(argv)
    results = {}
    with tempfile.TemporaryDirectory() as scratch:
        data = os.path.join(scratch, "subjects.npz")
        write_data(data)
        sets = [f"data.source=npz:{data}", "data.folds=5", "train.plots=false"]
        for name, grouped in (("random_folds", []), ("grouped_folds", ["data.groups=subject"])):
            cfg = load_config("steel_lightweight", [*sets, *grouped])
            summary = cross_validate(cfg, os.path.join(scratch, name), log=lambda _: None)
            results[name] = {key: summary["test"][key] for key in KEYS}
            results[name]["pooled"] = {key: summary["pooled"][key] for key in KEYS}
            print(name, {key: round(summary["test"][key]["mean"], 4) for key in KEYS}, flush=True)
    atomic_write_json(
        args.out,
        {
            **experiment_header("experiments/grouped_cv.py", argv or sys.argv[1:]),
            "folds": results,
        },
    )


if __name__ == "__main__":
    main()

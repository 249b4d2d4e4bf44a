"""`cross_validate`: every fold of `data.folds` trained as a run of its own, in
RUN_DIR/fold_K, and the folds' test metrics summarised into RUN_DIR/cv.json.

Why a command of its own rather than a loop of `seqjax train` calls: a small file's test
split of 15% is a few dozen sequences, so one split's F1 or AUC moves by several points
with the seed; K folds test every sequence once, and their spread says how far one split's
figure can be trusted. Each fold is an ordinary run directory (`evaluate`, `predict`,
`importance` and `--resume` read it as any run), so the summary is all this module adds.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable

import numpy as np

from seqjax.config import ExperimentConfig
from seqjax.io import atomic_write_json
from seqjax.train.run import run_experiment

CV_FILE = "cv.json"


def fold_dir(run_dir: str, fold: int) -> str:
    return os.path.join(run_dir, f"fold_{fold}")


def check_cv_dir(run_dir: str, folds: int, *, resume: bool) -> None:
    """Refuse, before anything is written, to train into a directory holding anything but
    this cross-validation's own folds (with `resume`) or anything at all (without)."""
    held = sorted(os.listdir(run_dir)) if os.path.isdir(run_dir) else []
    if held and not resume:
        raise ValueError(
            f"{run_dir!r} is not empty; pass --resume to continue the cross-validation in "
            "it (the same config and --set), or choose a new --run-dir"
        )
    ours = {CV_FILE, *(os.path.basename(fold_dir(run_dir, k)) for k in range(folds))}
    others = [name for name in held if name not in ours]
    if others:
        raise ValueError(
            f"--resume: {run_dir!r} holds {', '.join(others)}, which a cross-validation of "
            f"{folds} folds does not write (its folds are fold_0..fold_{folds - 1})"
        )


def summarise_folds(tests: list[dict]) -> dict:
    """The folds' test metrics, key by key: each number's mean, standard deviation over the
    folds (ddof 1: the folds are a sample of the splits one could have drawn) and per-fold
    values; confusion matrices summed, since the test folds partition the file, so their
    sum is the whole file's, each sequence scored by the one model that never saw it."""
    summary: dict = {}
    for key, first in tests[0].items():
        values = [test[key] for test in tests]
        if key == "confusion_matrix":
            summary[key] = np.sum(np.asarray(values), axis=0).tolist()
        elif isinstance(first, dict):
            summary[key] = summarise_folds(values)
        elif isinstance(first, int | float) and not isinstance(first, bool):
            folds = np.asarray(values, np.float64)  # (K,); NaN where a fold's is undefined
            summary[key] = {
                "mean": float(folds.mean()),
                "std": float(folds.std(ddof=1)),
                "folds": folds.tolist(),
            }
    return summary


def cross_validate(
    cfg: ExperimentConfig,
    run_dir: str,
    *,
    resume: bool = False,
    log: Callable[[str], None] = print,
) -> dict:
    """Train `cfg` once per fold of `cfg.data.folds` (its `data.fold` set to each in turn)
    into RUN_DIR/fold_K and write the summary of their test metrics (`summarise_folds`) as
    RUN_DIR/cv.json. With `resume`, each fold that has a directory resumes it as `seqjax
    train --resume` would: a finished fold trains no further and scores its best checkpoint
    again, a stopped one continues, so an interrupted cross-validation ends as one run
    through would have."""
    folds = cfg.data.folds
    if folds < 3:
        raise ValueError(
            f"cross-validation needs data.folds of 3 or more (seqjax cv --folds K); got {folds}"
        )
    if cfg.data.fold:
        raise ValueError(
            f"data.fold ({cfg.data.fold}) picks one fold for seqjax train; a cross-validation "
            "trains every fold: leave it at 0"
        )
    check_cv_dir(run_dir, folds, resume=resume)
    results = []
    for fold in range(folds):
        directory = fold_dir(run_dir, fold)
        log(f"cross-validation fold {fold} of 0..{folds - 1}: {directory}")
        fold_cfg = dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, fold=fold))
        again = resume and os.path.isdir(directory)
        results.append(run_experiment(fold_cfg, directory, resume=again, log=log))
    summary = {
        "folds": folds,
        "runs": [os.path.basename(fold_dir(run_dir, k)) for k in range(folds)],
        "best_epoch": [metrics["best_epoch"] for metrics in results],
        "test": summarise_folds([metrics["test"] for metrics in results]),
    }
    if "classes" in results[0]:  # the confusion matrix's rows and columns
        summary["classes"] = results[0]["classes"]
    atomic_write_json(os.path.join(run_dir, CV_FILE), summary)
    return summary

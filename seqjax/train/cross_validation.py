"""`cross_validate`: every fold of `data.folds` trained as a run of its own, in
RUN_DIR/fold_K; the folds' test metrics summarised into RUN_DIR/cv.json, beside the metrics
of every sequence's out-of-fold prediction together ("pooled"), and those predictions in
RUN_DIR/predictions.csv.

Why a command of its own rather than a loop of `seqjax train` calls: a small file's test
split of 15% is a few dozen sequences, so one split's F1 or AUC moves by several points
with the seed; K folds test every sequence once, and their spread says how far one split's
figure can be trusted. Each fold is an ordinary run directory (`evaluate`, `predict`,
`importance` and `--resume` read it as any run), so the summary and the out-of-fold
predictions are all this module adds. Pooled metrics differ from the folds' mean where a
metric is not a mean over sequences: an AUC ranks every sequence against every other, a
fold's only against its own fold's. With several processes (`seqjax cv --distributed`),
every process trains and scores each fold, as `seqjax train --distributed` trains a run,
and process 0 writes the summary and the predictions.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import os
from collections.abc import Callable

import numpy as np

from seqjax.config import ExperimentConfig
from seqjax.data.dataset import SequenceDataset
from seqjax.data.sources import load_splits
from seqjax.io import atomic_write_json, atomic_write_text
from seqjax.tasks import prediction_columns
from seqjax.train.distributed import wait_for_processes, writes_run_files
from seqjax.train.loop import task_for
from seqjax.train.restore import load_run_config, predict, restore_state
from seqjax.train.run import ConfigChanged, run_experiment

CV_FILE = "cv.json"
PREDICTIONS_FILE = "predictions.csv"
CV_FILES = (CV_FILE, PREDICTIONS_FILE)  # what a cross-validation writes beside its folds


def fold_dir(run_dir: str, fold: int) -> str:
    return os.path.join(run_dir, f"fold_{fold}")


def ensemble_members(run_dir: str) -> list[str]:
    """The runs whose predictions `seqjax predict RUN_DIR` averages: RUN_DIR itself, or,
    for a finished cross-validation (its cv.json written), its folds' K models, each of
    which trained on K-2 of the K folds; together they saw all of the file."""
    path = os.path.join(run_dir, CV_FILE)
    if not os.path.isfile(path):
        return [run_dir]
    with open(path) as f:
        folds = json.load(f)["folds"]
    return [fold_dir(run_dir, k) for k in range(folds)]


def fold_mean(outputs: list[np.ndarray]) -> np.ndarray:
    """The folds' predictions (K of (N, ...)) as one: their mean, taken in float64 and
    returned in their dtype, as `seqjax predict` writes it and `seqjax.load_cv` gives it."""
    return np.mean(np.asarray(outputs, np.float64), axis=0).astype(outputs[0].dtype)


def check_cv_dir(run_dir: str, folds: int, *, resume: bool) -> None:
    """Refuse, before anything is written, to train into a directory holding anything but
    this cross-validation's own folds (with `resume`) or anything at all (without)."""
    held = sorted(os.listdir(run_dir)) if os.path.isdir(run_dir) else []
    if held and not resume:
        raise ValueError(
            f"{run_dir!r} is not empty; pass --resume to continue the cross-validation in "
            "it (the same config and --set), or choose a new --run-dir"
        )
    ours = {*CV_FILES, *(os.path.basename(fold_dir(run_dir, k)) for k in range(folds))}
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
        elif isinstance(first, int | float) and not isinstance(first, bool):
            folds = np.asarray(values, np.float64)  # (K,); NaN where a fold's is undefined
            summary[key] = {
                "mean": float(folds.mean()),
                "std": float(folds.std(ddof=1)),
                "folds": folds.tolist(),
            }
    return summary


def out_of_fold(run_dir: str) -> tuple[ExperimentConfig, SequenceDataset, np.ndarray]:
    """A fold's config, its test split and its best checkpoint's predictions for that
    split (in the targets' own units), read back from its run directory as `seqjax
    predict` reads a run."""
    cfg = load_run_config(run_dir)
    test = load_splits(cfg.data, cfg.train.loss)["test"]
    state, _ = restore_state(run_dir, cfg, test, which="best")
    return cfg, test, predict(cfg, state, test)


def predictions_csv(cfg: ExperimentConfig, tests: list[SequenceDataset], preds: list) -> str:
    """Every sequence's out-of-fold prediction, one row each: its name in the file (a CSV's
    sequence, an npz's row), its fold, its target (a class's name where the data named
    them) and the task's prediction columns, as `seqjax predict` names them. Rows by fold,
    each fold's sequences in file order."""
    shape = preds[0].shape[1:]
    classes = tests[0].classes
    targets = [test.targets_in_units() for test in tests]
    width = int(np.prod(targets[0].shape[1:], dtype=np.int64))
    target_names = ["target"] if width == 1 else [f"target_{j}" for j in range(width)]
    header = [
        "sequence",
        "fold",
        *target_names,
        *prediction_columns(cfg.train.loss, shape, classes),
    ]
    rows = [header]
    classifier = cfg.train.loss in ("binary_cross_entropy", "cross_entropy")
    for fold, (test, target, pred) in enumerate(zip(tests, targets, preds, strict=True)):
        target = target.reshape(len(target), -1)  # (N, width)
        assert test.ids is not None  # folds split users' files, which name their sequences
        for name, y, p in zip(test.ids, target, pred.reshape(len(pred), -1), strict=True):
            if classifier:
                shown = [classes[int(y[0])] if classes else str(int(y[0]))]
            else:
                shown = [repr(float(v)) for v in y]
            rows.append([str(name), str(fold), *shown, *(repr(float(v)) for v in p)])
    text = io.StringIO()
    csv.writer(text, lineterminator="\n").writerows(rows)
    return text.getvalue()


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
    # every process sees which folds exist before process 0 makes the next (distributed.py)
    begun = [resume and os.path.isdir(fold_dir(run_dir, fold)) for fold in range(folds)]
    wait_for_processes(f"seqjax cv: {run_dir} checked")
    main = writes_run_files()  # with several processes, process 0 writes and prints
    results = []
    for fold, again in enumerate(begun):
        directory = fold_dir(run_dir, fold)
        if main:
            log(f"cross-validation fold {fold} of 0..{folds - 1}: {directory}")
        fold_cfg = dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, fold=fold))
        try:
            results.append(run_experiment(fold_cfg, directory, resume=again, log=log))
        except ConfigChanged as changed:  # its words name `seqjax train` and the fold's file
            raise ValueError(
                f"--resume: the cross-validation in {run_dir!r} trained {directory} with "
                f"another {', '.join(changed.keys)}; resume it with the config and --set it "
                "began with, or start a new one in another --run-dir"
            ) from None
    wait_for_processes(f"seqjax cv: {run_dir} folds written")  # process 0's files, read below
    scored = [out_of_fold(fold_dir(run_dir, fold)) for fold in range(folds)]
    tests, preds = [test for _, test, _ in scored], [pred for _, _, pred in scored]
    saved = scored[0][0]  # the run's config as training resolved it (loss, class weights)
    pooled = task_for(saved).evaluate(
        np.concatenate(preds), np.concatenate([test.targets_in_units() for test in tests])
    )
    summary = {
        "folds": folds,
        "runs": [os.path.basename(fold_dir(run_dir, k)) for k in range(folds)],
        "best_epoch": [metrics["best_epoch"] for metrics in results],
        "test": summarise_folds([metrics["test"] for metrics in results]),
        "pooled": pooled,
        "predictions": PREDICTIONS_FILE,
    }
    if "classes" in results[0]:  # the confusion matrix's rows and columns
        summary["classes"] = results[0]["classes"]
    if not main:
        return summary
    atomic_write_text(os.path.join(run_dir, PREDICTIONS_FILE), predictions_csv(saved, tests, preds))
    atomic_write_json(os.path.join(run_dir, CV_FILE), summary)
    return summary

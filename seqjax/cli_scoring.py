"""The `seqjax` commands that score a trained run (or a cross-validation's folds):
`evaluate`, `predict` and `importance`, and what they fit on a run's validation split
(`--threshold val-f1`, `--calibrate`, `--coverage`). `seqjax.cli` parses their options."""

from __future__ import annotations

import argparse
import csv
import functools
import io
import os
import sys
from collections.abc import Callable
from typing import Any, NamedTuple

from seqjax.cli_processes import join_processes
from seqjax.io import json_text
from seqjax.train.distributed import writes_run_files


def _check_scored_args(args) -> None:
    """What `_scored_data` is asked, checked before the run directory is read."""
    if args.inputs_scaled and args.input is None:
        raise ValueError("--inputs-scaled applies to --input data; a split is scaled already")


def _scored_data(args, cfg, spec, splits: Callable[[], dict], *, note: bool = True) -> tuple:
    """The labelled data `evaluate` and `importance` score: a split of the run's data
    (`--split`, from `splits()`), or a file of the user's (`--input`), read as training
    read its own; and the line's key naming it. `note`: say on stderr where the input's
    sequences are longer than training's (once, where several models read it)."""
    from seqjax.data.raw_inputs import read_prediction_inputs
    from seqjax.data.sources import check_class_targets

    if args.input is not None:
        data, _ = read_prediction_inputs(
            args.input,
            spec,
            scaled=args.inputs_scaled,
            labelled=True,
            weight_column=cfg.data.sample_weights,
            group_column=cfg.data.groups,
        )
        if note:
            _note_longer_than_trained(args.input, data, spec)
        check_class_targets(cfg, data.targets, args.input)
        return data, {"input": args.input}
    loaded = splits()
    if args.split not in loaded:
        raise ValueError(f"--split must be one of {sorted(loaded)}; got {args.split!r}")
    return loaded[args.split], {"split": args.split}


VAL_F1 = "val-f1"  # --threshold: the validation split's best-F1 threshold


def threshold_option(text: str) -> float | str:
    """--threshold: a probability, or val-f1."""
    if text == VAL_F1:
        return text
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"a probability in [0, 1] or {VAL_F1}; got {text!r}"
        ) from None


CALIBRATE_HELP = (
    "recalibrate the run's probabilities: one scale and a bias per class, fitted on its "
    "validation split (a cross-validation: each fold's model on its own)"
)


def _recalibration_line(fitted: list) -> dict:
    """The printed record of what `--calibrate` fitted: each head's scale and biases, one
    list per model where a cross-validation's folds fitted their own."""
    heads = [[head.to_json() for head in model] for model in fitted]
    if len(heads) == 1:
        return {"fitted_on": "val", "heads": heads[0]}
    return {"fitted_on": "each fold's val", "folds": heads}


def evaluate_command(args) -> int:
    from seqjax.calibration import check_loss, recalibrate
    from seqjax.calibration import fit as fit_recalibration
    from seqjax.conformal import achieved
    from seqjax.conformal import fit as fit_conformal
    from seqjax.data.sources import load_splits
    from seqjax.metrics import best_f1_threshold
    from seqjax.train.cross_validation import ensemble_members
    from seqjax.train.restore import (
        check_threshold,
        load_run_config,
        metrics_of,
        predict,
        predict_and_loss,
        restore_state,
        run_data_spec,
        scoring_config,
    )

    join_processes(args, "evaluate one run")  # before JAX runs anything
    _check_scored_args(args)
    members = ensemble_members(args.run_dir)  # the run, or a cross-validation's folds
    if len(members) > 1:
        return _evaluate_folds_together(args, members)
    cfg = load_run_config(args.run_dir)
    scoring = scoring_config(cfg, args.batch_size)  # the passes' batches (--batch-size)
    threshold = args.threshold
    if threshold is not None:  # before the run's data and checkpoint are read
        check_threshold(cfg, None if threshold == VAL_F1 else threshold)
    if args.calibrate:
        check_loss(cfg.train.loss)
    _check_coverage_args(args, cfg)
    spec = run_data_spec(args.run_dir, cfg)
    splits = functools.cache(lambda: load_splits(cfg.data, cfg.train.loss))  # read once
    data, scored = _scored_data(args, cfg, spec, splits)
    if spec.classes is not None:  # the confusion matrix's rows and columns
        scored["classes"] = list(spec.classes)
    state, epoch = restore_state(args.run_dir, cfg, spec.sample(), which=args.checkpoint)
    loss_name = cfg.train.loss
    predictions, loss = predict_and_loss(scoring, state, data)  # one pass over the data
    if args.calibrate or threshold == VAL_F1 or args.coverage is not None:
        val = splits()["val"]  # one pass over it, for whatever is fitted there
        val_predictions = predict(scoring, state, val)
    covered = None
    if args.coverage is not None:  # on the model's own probabilities (not with --calibrate)
        truth, by_class = val.targets_in_units(), args.by_class
        fitted = fit_conformal(loss_name, val_predictions, truth, args.coverage, by_class=by_class)
        covered = achieved(loss_name, predictions, data.targets_in_units(), fitted)
    if args.calibrate:
        heads = fit_recalibration(loss_name, val_predictions, val.targets_in_units())
        val_predictions = recalibrate(loss_name, val_predictions, heads)
        predictions = recalibrate(loss_name, predictions, heads)
        scored["recalibration"] = _recalibration_line([heads])
        if scored.get("split") == "val":
            print(_SCORED_WHERE_FITTED, file=sys.stderr)
    if threshold == VAL_F1:  # the validation split's best, for the split scored here
        threshold = best_f1_threshold(val_predictions, val.targets)
        scored["threshold_from"] = "the validation split's best F1"
    if threshold is not None:
        scored["threshold"] = threshold
    # as `seqjax train` scores a split, but recalibrated probabilities are no model's
    # output, so no loss of the run's scores them
    metrics = metrics_of(cfg, predictions, data.targets_in_units(), threshold=threshold)
    if not args.calibrate:
        metrics = {"loss": loss, **metrics}
    if covered is not None:  # after the metrics
        metrics["conformal"] = covered
    if writes_run_files():
        line = {"checkpoint": args.checkpoint, "epoch": epoch, **scored, **metrics}
        print(json_text(line, default=float))
    return 0


COVERAGE_HELP = (
    "C in (0, 1): prediction sets (classes) and intervals (values) fitted on the run's "
    "validation split to hold the truth at rate C on data drawn alike (split conformal)"
)
BATCH_SIZE_HELP = (
    "rows per pass of the model (default the run's train.batch_size): the predictions are "
    "the same to float rounding; larger batches score faster on a GPU, where memory allows"
)
BY_CLASS_HELP = (
    "with --coverage: each class's sets from its own validation sequences, so that each "
    "class is covered at rate C (a rare class can fall short of it otherwise)"
)


def _check_coverage_args(args, cfg) -> None:
    """`--coverage` is a rate, on the run's own probabilities, of a run with a validation
    split that is exchangeable with new data (else said on stderr)."""
    if args.coverage is None:
        if args.by_class:
            raise ValueError("--by-class fits --coverage's sets class by class: give --coverage")
        return
    from seqjax.conformal import check_coverage
    from seqjax.data.sources import splits_follow_time

    check_coverage(args.coverage)
    if args.by_class and cfg.train.loss == "mse":
        raise ValueError(
            f"--by-class fits a classifier's sets class by class; this run's loss "
            f"{cfg.train.loss!r} predicts values, whose intervals have no classes"
        )
    if args.calibrate:
        raise ValueError(
            "--coverage and --calibrate both fit on the validation split, and a set fitted "
            "on probabilities recalibrated on the same sequences loses its guarantee: give one"
        )
    if splits_follow_time(cfg.data):
        print(_ORDERED_COVERAGE, file=sys.stderr)


_ORDERED_COVERAGE = (
    "note: --coverage holds where new sequences are drawn as the validation split was; "
    "this run's splits follow time, so later data may be covered less often"
)

_SCORED_WHERE_FITTED = (
    "note: --calibrate fitted on the validation split, the split scored here, so its "
    "calibration figures (brier, ece) are optimistic; score --split test for held-out ones"
)


class RunPredictions(NamedTuple):
    """What `_predictions_of` gives: each run's predictions, the last run's config, data
    spec and data with `read`'s second value, and the fits asked for (empty otherwise)."""

    outputs: list  # each run's (N, ...) predictions
    cfg: Any
    spec: Any
    data: Any
    extra: Any  # `read`'s second value: the scored line's keys, or a CSV's sequence names
    recalibrations: list  # each run's, with `calibrate`
    conformals: list  # each run's, with `coverage`


def _predictions_of(
    members: list[str],
    checkpoint: str,
    read: Callable,
    *,
    calibrate: bool = False,
    coverage: float | None = None,
    by_class: bool = False,
    batch_size: int | None = None,
) -> RunPredictions:
    """Each run's predictions (N, ...) for the data `read(cfg, spec, first)` gives it,
    read again for each run, since each scales raw inputs as it trained. With
    `calibrate`, each run's predictions are recalibrated on its own validation split;
    with `coverage`, each run's conformal thresholds are fitted there (each class's
    apart, `by_class`). `batch_size`: rows a pass (None: each run's `train.batch_size`)."""
    from seqjax.calibration import fit as fit_recalibration
    from seqjax.calibration import recalibrate
    from seqjax.conformal import fit as fit_conformal
    from seqjax.data.sources import load_splits
    from seqjax.train.restore import (
        load_run_config,
        predict,
        restore_state,
        run_data_spec,
        scoring_config,
    )

    outputs: list = []
    fitted: list = []
    conformals: list = []
    for run_dir in members:
        cfg = load_run_config(run_dir)
        scoring = scoring_config(cfg, batch_size)
        spec = run_data_spec(run_dir, cfg)
        data, extra = read(cfg, spec, not outputs)
        state, _ = restore_state(run_dir, cfg, spec.sample(), which=checkpoint)
        predictions = predict(scoring, state, data)
        if calibrate or coverage is not None:  # fitted on this run's validation split
            val = load_splits(cfg.data, cfg.train.loss)["val"]
            val_predictions, truth = predict(scoring, state, val), val.targets_in_units()
        if calibrate:
            heads = fit_recalibration(cfg.train.loss, val_predictions, truth)
            predictions = recalibrate(cfg.train.loss, predictions, heads)
            fitted.append(heads)
        if coverage is not None:
            fitted_sets = fit_conformal(
                cfg.train.loss, val_predictions, truth, coverage, by_class=by_class
            )
            conformals.append(fitted_sets)
        outputs.append(predictions)
    return RunPredictions(outputs, cfg, spec, data, extra, fitted, conformals)


def _refuse_coverage_of_folds(args) -> None:
    if args.coverage is not None or args.by_class:
        raise ValueError(
            "--coverage fits on a run's validation split, and the folds' mean has none "
            "(each fold's validation split trained the other folds): give one fold"
        )


def _evaluate_folds_together(args, members: list[str]) -> int:
    """`evaluate` of a finished cross-validation: the metrics of its fold models' mean
    prediction (as `seqjax predict` gives it) on --input data. No loss: the models' mean
    is not one model's output, so no loss function of the run scores it."""
    import numpy as np

    from seqjax.calibration import check_loss
    from seqjax.train.restore import check_threshold, metrics_of

    if args.input is None:
        raise ValueError(
            f"{args.run_dir!r} is a cross-validation, whose folds test a fold each (cv.json "
            f"holds their figures): give --input to score labelled data with its {len(members)} "
            f"models together, or evaluate one fold ({members[0]})"
        )
    if args.threshold == VAL_F1:
        raise ValueError(
            "--threshold val-f1 takes a run's validation split, and each fold has its own: "
            "give the probability"
        )
    _refuse_coverage_of_folds(args)

    def read(cfg, spec, first: bool) -> tuple:
        if args.threshold is not None:
            check_threshold(cfg, args.threshold)
        if args.calibrate:
            check_loss(cfg.train.loss)
        return _scored_data(args, cfg, spec, dict, note=first)

    runs = _predictions_of(
        members, args.checkpoint, read, calibrate=args.calibrate, batch_size=args.batch_size
    )
    cfg, spec, data, scored = runs.cfg, runs.spec, runs.data, runs.extra
    together = np.mean(np.asarray(runs.outputs, np.float64), axis=0)  # the folds' mean
    if args.threshold is not None:
        scored["threshold"] = args.threshold
    if args.calibrate:
        scored["recalibration"] = _recalibration_line(runs.recalibrations)
    if spec.classes is not None:  # the confusion matrix's rows and columns
        scored["classes"] = list(spec.classes)
    result = {"checkpoint": args.checkpoint, "models": len(members), **scored}
    metrics = metrics_of(cfg, together, data.targets_in_units(), threshold=args.threshold)
    if writes_run_files():
        print(json_text({**result, **metrics}, default=float))
    return 0


def _check_output(output: str, suffixes: tuple[str, ...], input_path: str, run_dir: str) -> None:
    """`--output` ends in one of `suffixes`, in a directory that exists, and is neither the
    `--input` file nor one of the files the run (or a cross-validation) wrote (`RUN_FILES`:
    history.csv; `CV_FILES`): what it writes would replace the data or the run's record."""
    from seqjax.train.cross_validation import CV_FILE, CV_FILES
    from seqjax.train.run import RUN_FILES

    if not output.endswith(suffixes):
        raise ValueError(f"--output must end in {' or '.join(suffixes)}; got {output!r}")
    out_dir = os.path.dirname(os.path.abspath(output))
    if not os.path.isdir(out_dir):
        raise FileNotFoundError(f"output directory {out_dir!r} does not exist")
    if not os.path.exists(output):
        return
    if os.path.exists(input_path) and os.path.samefile(output, input_path):
        raise ValueError(
            f"--output {output!r} is the --input file; writing it would replace the inputs"
        )
    cross_validation = os.path.isfile(os.path.join(run_dir, CV_FILE))
    for name in CV_FILES if cross_validation else RUN_FILES:
        ours = os.path.join(run_dir, name)
        if os.path.exists(ours) and os.path.samefile(output, ours):
            raise ValueError(f"--output {output!r} would replace the run's {name}")


def _note_longer_than_trained(path: str, data, spec) -> None:
    from seqjax.data.raw_inputs import longer_than_trained

    note = longer_than_trained(repr(path), data.lengths, spec)
    if note is not None:
        print(f"seqjax: note: {note}", file=sys.stderr)


def importance_command(args) -> int:
    from seqjax.data.sources import load_splits
    from seqjax.io import atomic_write_text
    from seqjax.train.restore import (
        importance_run,
        load_run_config,
        restore_state,
        run_data_spec,
        scoring_config,
    )

    join_processes(args, "score one run")  # before JAX runs anything
    _check_scored_args(args)
    if args.top < 0:
        raise ValueError(f"--top must be >= 0 (0: every channel); got {args.top}")
    if args.output is not None:  # before the passes over the data, which take a while
        _check_output(args.output, (".csv",), args.input or "", args.run_dir)
    cfg = load_run_config(args.run_dir)
    scoring = scoring_config(cfg, args.batch_size)
    spec = run_data_spec(args.run_dir, cfg)
    data, scored = _scored_data(args, cfg, spec, lambda: load_splits(cfg.data, cfg.train.loss))
    state, epoch = restore_state(args.run_dir, cfg, spec.sample(), which=args.checkpoint)
    loss, importance = importance_run(scoring, state, data)
    names = spec.channel_names()
    ranked = sorted(zip(names, importance.tolist(), strict=True), key=lambda p: -p[1])
    if not writes_run_files():
        return 0
    if args.output is not None:  # csv quotes a CSV's channel name that holds a comma
        text = io.StringIO()
        csv.writer(text, lineterminator="\n").writerows([("channel", "importance"), *ranked])
        atomic_write_text(args.output, text.getvalue())
    line = {"checkpoint": args.checkpoint, "epoch": epoch, **scored, "loss": loss}
    print(json_text({**line, "importance": dict(ranked[: args.top or None])}))
    return 0


def predict_command(args) -> int:
    import numpy as np

    from seqjax.data.raw_inputs import read_prediction_inputs
    from seqjax.io import atomic_write_bytes, atomic_write_text
    from seqjax.tasks import prediction_columns
    from seqjax.train.cross_validation import ensemble_members, fold_mean

    join_processes(args, "predict with one run")  # before JAX runs anything
    _check_output(args.output, (".npz", ".csv"), args.input, args.run_dir)
    members = ensemble_members(args.run_dir)  # the run, or a cross-validation's folds

    def read(cfg, spec, first: bool) -> tuple:
        data, sequences = read_prediction_inputs(
            args.input,
            spec,
            scaled=args.inputs_scaled,
            weight_column=cfg.data.sample_weights,
            group_column=cfg.data.groups,
        )
        if first:
            _note_longer_than_trained(args.input, data, spec)
        return data, sequences

    if args.calibrate or args.coverage is not None or args.by_class:  # before any model runs
        from seqjax.calibration import check_loss
        from seqjax.train.restore import load_run_config

        first = load_run_config(members[0])
        if args.calibrate:
            check_loss(first.train.loss)
        if len(members) > 1:
            _refuse_coverage_of_folds(args)
        _check_coverage_args(args, first)

    runs = _predictions_of(
        members,
        args.checkpoint,
        read,
        calibrate=args.calibrate,
        coverage=args.coverage,
        by_class=args.by_class,
        batch_size=args.batch_size,
    )
    if not writes_run_files():
        return 0
    cfg, spec, sequences, conformals = runs.cfg, runs.spec, runs.extra, runs.conformals
    outputs = runs.outputs
    preds = fold_mean(outputs)  # a run's own, or the mean of a cross-validation's folds
    columns = prediction_columns(cfg.train.loss, preds.shape[1:], spec.classes)  # C order
    flat = preds.reshape(len(preds), -1)  # (N, M): a row per sequence
    whole = [False] * len(columns)  # a set's 0 or 1 is written whole, not as 0.0 or 1.0
    extra: dict[str, Any] = {}
    if conformals:  # one run: its sets or intervals, after its predictions
        from seqjax.conformal import columns as conformal_columns

        names, values, sets = conformal_columns(cfg.train.loss, preds, conformals[0], spec.classes)
        extra = {"conformal": values, "conformal_columns": np.array(names)}
        columns, flat = [*columns, *names], np.concatenate([flat, values], -1)
        whole += sets
    if args.output.endswith(".npz"):
        buf = io.BytesIO()
        arrays: dict[str, Any] = {"predictions": preds, "columns": np.array(columns), **extra}
        if sequences is not None:
            arrays["sequence"] = np.array(sequences)
        np.savez(buf, **arrays)
        atomic_write_bytes(args.output, buf.getvalue())
    else:
        rows = [
            [str(int(v)) if w else repr(float(v)) for v, w in zip(row, whole, strict=True)]
            for row in flat
        ]
        if sequences is not None:  # the CSV's own names first, quoted where they need it
            columns = ["sequence", *columns]
            rows = [[name, *row] for name, row in zip(sequences, rows, strict=True)]
        text = io.StringIO()
        csv.writer(text, lineterminator="\n").writerows([columns, *rows])
        atomic_write_text(args.output, text.getvalue())
    by = f", the mean of {len(members)} folds' models" if len(members) > 1 else ""
    if runs.recalibrations:
        fitted = runs.recalibrations
        scales = ", ".join(f"{head.scale:.3g}" for model in fitted for head in model)
        where = "each fold's validation split" if len(fitted) > 1 else "the validation split"
        by += f", recalibrated on {where} (scale {scales})"
    if conformals:
        each = " for each class" if args.by_class else ""
        by += (
            f", with sets or intervals at coverage {args.coverage}{each} from "
            f"{conformals[0].calibration_size} validation sequences"
        )
    print(f"wrote {len(preds)} predictions to {args.output}{by}")
    return 0

"""The `seqjax` command line.

    seqjax train --config FILE|NAME [--set k=v ...] [--run-dir DIR] [--resume]
    seqjax train --run-dir DIR --resume [--set train.epochs=N ...]
    seqjax train ... --run-dir DIR --distributed   (several processes; or, for each of N:
                 --coordinator HOST:PORT --num-processes N --process-id I)
    seqjax cv --config FILE|NAME --folds K [--set k=v ...] [--run-dir DIR] [--resume]
    seqjax compare CV_DIR CV_DIR [--json]
    seqjax configs [NAME]
    seqjax evaluate RUN_DIR [--checkpoint best|latest] [--split test | --input FILE]
    seqjax predict RUN_DIR --input FILE.npz|.csv --output FILE.npz|.csv [--inputs-scaled]

Usage errors exit with code 2 and one line on stderr (a traceback only with --debug). A
training run stopped by SIGINT or SIGTERM exits with 128 + the signal's number and one line
naming the saved step or epoch and the --resume command (seqjax/train/interrupt.py); Ctrl-C
anywhere else exits with 130 and "seqjax: interrupted". A run stopped by a non-finite loss
or gradient (`train.nonfinite=stop`) exits with 1 and one line naming the step, the last
checkpoint before it and the --resume command that skips such updates.
"""

from __future__ import annotations

import argparse
import csv
import functools
import io
import os
import signal
import sys
import time
from collections.abc import Callable
from typing import Any

from seqjax.config import load_config
from seqjax.host_memory import reuse_freed_memory_if_asked
from seqjax.io import json_text


def _train(args) -> int:
    import jax

    from seqjax.train.distributed import (
        failed_among_processes,
        leave_after_failed_step,
        writes_run_files,
    )
    from seqjax.train.distributed import start as start_distributed
    from seqjax.train.interrupt import TrainingDiverged, TrainingStopped
    from seqjax.train.run import run_experiment

    if args.resume and args.run_dir is None:  # a run named by its clock is always new
        raise ValueError("--resume continues the run in --run-dir: give --run-dir RUN")
    config = args.config
    if config is None:  # `--run-dir RUN --resume` alone: the run's own config
        if not (args.resume and args.run_dir):
            raise ValueError("seqjax train needs --config (or --run-dir RUN --resume)")
        config = os.path.join(args.run_dir, "config.yaml")
        if not os.path.isfile(config):
            raise ValueError(f"--resume: {args.run_dir!r} has no config.yaml to resume from")
    cfg = load_config(config, args.set)
    explicit = (args.coordinator, args.num_processes, args.process_id)
    if args.distributed or any(value is not None for value in explicit):
        if args.run_dir is None:  # each process would name its own by its clock
            raise ValueError("several processes train one run: give them --run-dir")
        start_distributed(
            coordinator=args.coordinator,
            num_processes=args.num_processes,
            process_id=args.process_id,
        )
    run_dir = args.run_dir or f"runs/{cfg.model_name}-{time.strftime('%Y%m%d-%H%M%S')}"
    try:
        metrics = run_experiment(cfg, run_dir, resume=args.resume)
    except TrainingStopped as stopped:  # names the --resume command
        print(f"seqjax: {stopped}", file=sys.stderr)
        return stopped.exit_code
    except TrainingDiverged as diverged:  # names the --resume command that skips such steps
        if args.debug:
            raise
        print(f"seqjax: error: {diverged}", file=sys.stderr)
        return 1
    except jax.errors.JaxRuntimeError as error:  # several processes: another one ended?
        if args.debug or not failed_among_processes(error):
            raise
        leave_after_failed_step(error, run_dir)
    if not writes_run_files():  # process 0 prints the run's outcome
        return 0
    test = metrics["test"]
    print(f"run directory: {run_dir}")
    print("test metrics: " + json_text(test, default=str))
    return 0


def _cv(args) -> int:
    from seqjax.train.cross_validation import CV_FILE, cross_validate
    from seqjax.train.interrupt import TrainingStopped

    if args.resume and args.run_dir is None:
        raise ValueError("--resume continues the cross-validation in --run-dir: give --run-dir")
    sets = list(args.set)
    if args.folds is not None:
        if any(item.startswith("data.folds=") for item in sets):
            raise ValueError("give the folds once: --folds K or --set data.folds=K")
        sets.append(f"data.folds={args.folds}")
    cfg = load_config(args.config, sets)
    if not cfg.data.folds:
        raise ValueError("seqjax cv needs --folds K (3 or more), or data.folds in the config")
    run_dir = args.run_dir or f"runs/{cfg.model_name}-cv-{time.strftime('%Y%m%d-%H%M%S')}"
    try:
        summary = cross_validate(cfg, run_dir, resume=args.resume)
    except TrainingStopped as stopped:
        stopped.run_dir = None  # its own command would continue the one fold
        command = _cv_resume_command(args, run_dir)
        print(f"seqjax: {stopped}; continue with: {command}", file=sys.stderr)
        return stopped.exit_code
    print(f"cross-validation of {summary['folds']} folds: {os.path.join(run_dir, CV_FILE)}")
    print(_cv_table(summary["test"], summary["pooled"]))
    print(f"out-of-fold predictions: {os.path.join(run_dir, summary['predictions'])}")
    return 0


def _cv_resume_command(args, run_dir: str) -> str:
    """The `seqjax cv` command line that continues this cross-validation."""
    import shlex

    words = ["seqjax", "cv", "--config", args.config]
    if args.folds is not None:
        words += ["--folds", str(args.folds)]
    words += ["--run-dir", run_dir]
    if args.set:
        words += ["--set", *args.set]
    return shlex.join([*words, "--resume"])


def _cv_table(test: dict, pooled: dict) -> str:
    """The folds' test metrics as lines of name, mean, standard deviation, the pooled
    out-of-fold figure and per-fold values, then the confusion matrix summed over the
    folds."""
    lines = [f"{'test':<24}{'mean':>9}{'std':>9}{'pooled':>9}  folds"]
    for key, value in test.items():
        if key == "confusion_matrix":
            lines.append(f"confusion matrix, every fold's test sequences: {value}")
            continue
        together = pooled.get(key)
        shown = f"{together:>9.4f}" if isinstance(together, float) else f"{'':>9}"
        folds = " ".join(f"{v:.4f}" for v in value["folds"])
        lines.append(f"{key:<24}{value['mean']:>9.4f}{value['std']:>9.4f}{shown}  {folds}")
    return "\n".join(lines)


def _compare(args) -> int:
    from seqjax.train.cv_compare import compare_cross_validations

    compared = compare_cross_validations(args.first, args.second)
    if args.json:
        print(json_text(compared, default=float))
        return 0
    k = compared["folds"]
    print(f"first: {args.first}; second: {args.second}; {k} folds, the same")
    print(f"{'test':<24}{'first':>9}{'second':>9}{'diff':>9}{'std':>9}  second better in")
    for key, row in compared["test"].items():
        diff = row["difference"]
        wins = "-" if row["second_better_in"] is None else f"{row['second_better_in']} of {k}"
        print(
            f"{key:<24}{row['first']:>9.4f}{row['second']:>9.4f}{diff['mean']:>+9.4f}"
            f"{diff['std']:>9.4f}  {wins}"
        )
    return 0


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


def _threshold(text: str) -> float | str:
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


def _evaluate(args) -> int:
    from seqjax.calibration import check_loss, recalibrate
    from seqjax.data.sources import load_splits
    from seqjax.metrics import best_f1_threshold
    from seqjax.train.cross_validation import ensemble_members
    from seqjax.train.restore import (
        check_threshold,
        conformal_on_val,
        evaluate_run,
        load_run_config,
        metrics_of,
        predict,
        recalibrated_on_val,
        restore_state,
        run_data_spec,
    )

    _check_scored_args(args)
    members = ensemble_members(args.run_dir)  # the run, or a cross-validation's folds
    if len(members) > 1:
        return _evaluate_folds_together(args, members)
    cfg = load_run_config(args.run_dir)
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
    heads = None
    if args.calibrate or threshold == VAL_F1:
        val = splits()["val"]
        if args.calibrate:
            heads, val_predictions = recalibrated_on_val(cfg, state, val)
            scored["recalibration"] = _recalibration_line([heads])
            if scored.get("split") == "val":
                print(_SCORED_WHERE_FITTED, file=sys.stderr)
        else:
            val_predictions = predict(cfg, state, val)
    if threshold == VAL_F1:  # the validation split's best, for the split scored here
        threshold = best_f1_threshold(val_predictions, val.targets)
        scored["threshold_from"] = "the validation split's best F1"
    if heads is None:
        metrics = evaluate_run(cfg, state, data, threshold=threshold)
    else:
        predictions = recalibrate(cfg.train.loss, predict(cfg, state, data), heads)
        metrics = metrics_of(cfg, predictions, data.targets_in_units(), threshold=threshold)
    if threshold is not None:
        scored["threshold"] = threshold
    if args.coverage is not None:  # the sets' or intervals' record on the data scored
        from seqjax.conformal import achieved

        fitted = conformal_on_val(cfg, state, splits()["val"], args.coverage)
        predictions = predict(cfg, state, data)
        metrics["conformal"] = achieved(
            cfg.train.loss, predictions, data.targets_in_units(), fitted
        )
    print(
        json_text(
            {"checkpoint": args.checkpoint, "epoch": epoch, **scored, **metrics}, default=float
        )
    )
    return 0


COVERAGE_HELP = (
    "C in (0, 1): prediction sets (classes) and intervals (values) fitted on the run's "
    "validation split to hold the truth at rate C on data drawn alike (split conformal)"
)


def _check_coverage_args(args, cfg) -> None:
    """`--coverage` is a rate, on the run's own probabilities, of a run with a validation
    split that is exchangeable with new data (else said on stderr)."""
    if args.coverage is None:
        return
    from seqjax.conformal import check_coverage

    check_coverage(args.coverage)
    if args.calibrate:
        raise ValueError(
            "--coverage and --calibrate both fit on the validation split, and a set fitted "
            "on probabilities recalibrated on the same sequences loses its guarantee: give one"
        )
    if cfg.data.split == "ordered":
        print(_ORDERED_COVERAGE, file=sys.stderr)


_ORDERED_COVERAGE = (
    "note: --coverage holds where new sequences are drawn as the validation split was; "
    "this run splits by time (data.split ordered), so later data may be covered less often"
)

_SCORED_WHERE_FITTED = (
    "note: --calibrate fitted on the validation split, the split scored here, so its "
    "calibration figures (brier, ece) are optimistic; score --split test for held-out ones"
)


def _predictions_of(
    members: list[str],
    checkpoint: str,
    read: Callable,
    *,
    calibrate: bool = False,
    coverage: float | None = None,
) -> tuple:
    """Each run's predictions (N, ...) for the data `read(cfg, spec, first)` gives it,
    read again for each run, since each scales raw inputs as it trained; with the last
    run's config, data spec, data and `read`'s second value. With `calibrate`, each run's
    predictions are recalibrated on its own validation split; with `coverage`, each
    run's conformal thresholds are fitted there. Last, the recalibrations and the
    conformal fits (empty lists where not asked)."""
    from seqjax.calibration import recalibrate
    from seqjax.data.sources import load_splits
    from seqjax.train.restore import (
        conformal_on_val,
        load_run_config,
        predict,
        recalibrated_on_val,
        restore_state,
        run_data_spec,
    )

    outputs: list = []
    fitted: list = []
    conformals: list = []
    for run_dir in members:
        cfg = load_run_config(run_dir)
        spec = run_data_spec(run_dir, cfg)
        data, extra = read(cfg, spec, not outputs)
        state, _ = restore_state(run_dir, cfg, spec.sample(), which=checkpoint)
        predictions = predict(cfg, state, data)
        if calibrate or coverage is not None:
            val = load_splits(cfg.data, cfg.train.loss)["val"]
        if calibrate:
            heads, _ = recalibrated_on_val(cfg, state, val)
            predictions = recalibrate(cfg.train.loss, predictions, heads)
            fitted.append(heads)
        if coverage is not None:
            conformals.append(conformal_on_val(cfg, state, val, coverage))
        outputs.append(predictions)
    return outputs, cfg, spec, data, extra, fitted, conformals


def _refuse_coverage_of_folds(args) -> None:
    if args.coverage is not None:
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

    preds, cfg, spec, data, scored, fitted, _ = _predictions_of(
        members, args.checkpoint, read, calibrate=args.calibrate
    )
    together = np.mean(np.asarray(preds, np.float64), axis=0)  # the folds' mean
    if args.threshold is not None:
        scored["threshold"] = args.threshold
    if args.calibrate:
        scored["recalibration"] = _recalibration_line(fitted)
    if spec.classes is not None:  # the confusion matrix's rows and columns
        scored["classes"] = list(spec.classes)
    result = {"checkpoint": args.checkpoint, "models": len(members), **scored}
    metrics = metrics_of(cfg, together, data.targets_in_units(), threshold=args.threshold)
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

    note = longer_than_trained(path, data, spec)
    if note is not None:
        print(note, file=sys.stderr)


def _importance(args) -> int:
    from seqjax.data.sources import load_splits
    from seqjax.io import atomic_write_text
    from seqjax.train.restore import importance_run, load_run_config, restore_state, run_data_spec

    _check_scored_args(args)
    if args.top < 0:
        raise ValueError(f"--top must be >= 0 (0: every channel); got {args.top}")
    if args.output is not None:  # before the passes over the data, which take a while
        _check_output(args.output, (".csv",), args.input or "", args.run_dir)
    cfg = load_run_config(args.run_dir)
    spec = run_data_spec(args.run_dir, cfg)
    data, scored = _scored_data(args, cfg, spec, lambda: load_splits(cfg.data, cfg.train.loss))
    state, epoch = restore_state(args.run_dir, cfg, spec.sample(), which=args.checkpoint)
    loss, importance = importance_run(cfg, state, data)
    names = spec.channel_names()
    ranked = sorted(zip(names, importance.tolist(), strict=True), key=lambda p: -p[1])
    if args.output is not None:  # csv quotes a CSV's channel name that holds a comma
        text = io.StringIO()
        csv.writer(text, lineterminator="\n").writerows([("channel", "importance"), *ranked])
        atomic_write_text(args.output, text.getvalue())
    line = {"checkpoint": args.checkpoint, "epoch": epoch, **scored, "loss": loss}
    print(json_text({**line, "importance": dict(ranked[: args.top or None])}))
    return 0


def _predict(args) -> int:
    import numpy as np

    from seqjax.data.raw_inputs import read_prediction_inputs
    from seqjax.io import atomic_write_bytes, atomic_write_text
    from seqjax.tasks import prediction_columns
    from seqjax.train.cross_validation import ensemble_members

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

    if args.calibrate or args.coverage is not None:  # before any model runs
        from seqjax.calibration import check_loss
        from seqjax.train.restore import load_run_config

        first = load_run_config(members[0])
        if args.calibrate:
            check_loss(first.train.loss)
        if len(members) > 1:
            _refuse_coverage_of_folds(args)
        _check_coverage_args(args, first)

    outputs, cfg, spec, _, sequences, fitted, conformals = _predictions_of(
        members, args.checkpoint, read, calibrate=args.calibrate, coverage=args.coverage
    )
    preds = np.mean(np.asarray(outputs, np.float64), axis=0).astype(outputs[0].dtype)  # folds
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
    if fitted:
        scales = ", ".join(f"{head.scale:.3g}" for model in fitted for head in model)
        where = "each fold's validation split" if len(fitted) > 1 else "the validation split"
        by += f", recalibrated on {where} (scale {scales})"
    if conformals:
        by += (
            f", with sets or intervals at coverage {args.coverage} from "
            f"{conformals[0].calibration_size} validation sequences"
        )
    print(f"wrote {len(preds)} predictions to {args.output}{by}")
    return 0


def _import_torch(args) -> int:
    from seqjax.config import load_config
    from seqjax.train.torch_import import default_config, import_torch

    if args.config:
        cfg = load_config(args.config, args.set)
        if cfg.model_name != args.model:
            raise ValueError(f"--model {args.model!r} but {args.config} is for {cfg.model_name!r}")
    else:
        cfg = default_config(args.model, args.set)
    val = import_torch(args.weights, args.run_dir, cfg)
    shown = {k: v for k, v in val.items() if isinstance(v, float)}
    print(f"imported {args.weights} into {args.run_dir}; validation: {json_text(shown)}")
    return 0


def _export_torch(args) -> int:
    from seqjax.train.torch_import import export_torch

    count = export_torch(args.run_dir, args.weights, which=args.checkpoint)
    print(f"wrote {count} tensors to {args.weights}")
    return 0


def _configs(args) -> int:
    from seqjax.config_files import config_file, shipped_configs, summary

    if args.name is not None:
        with open(config_file(args.name)) as f:
            print(f.read(), end="")
        return 0
    shipped = shipped_configs()
    width = max(map(len, shipped))
    for name, path in shipped.items():
        print(f"{name:<{width}}  {summary(path)}")
    return 0


def _versions() -> str:
    """seqjax's version and the libraries it runs on, read without importing them."""
    from seqjax import __version__
    from seqjax.environment import package_version

    names = ("jax", "jaxlib", "flax", "optax")
    libraries = (f"{n} {package_version(n) or 'not installed'}" for n in names)
    return f"seqjax {__version__} ({', '.join(libraries)})"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="seqjax", description="Fast masked LSTMs in JAX/Flax")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    parser.add_argument("--version", action="version", version=_versions())
    sub = parser.add_subparsers(dest="command", required=True)
    train = sub.add_parser("train", help="train a model from a YAML config")
    train.add_argument(
        "--config",
        default=None,
        help="YAML file, e.g. configs/trust.yaml, or a shipped config's name, e.g. trust "
        "(seqjax configs lists them); with --run-dir RUN --resume, RUN/config.yaml by default",
    )
    train.add_argument(
        "--set",
        nargs="*",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="override config values, e.g. train.epochs=5",
    )
    train.add_argument("--run-dir", default=None, help="output directory (default runs/NAME-TIME)")
    train.add_argument(
        "--resume",
        action="store_true",
        help="continue the run in --run-dir from its latest checkpoint",
    )
    several = train.add_argument_group(
        "several processes",
        "one process per host, each given the same command (seqjax/train/distributed.py); "
        "the run directory must be on a filesystem every host sees",
    )
    several.add_argument(
        "--distributed",
        action="store_true",
        help="join the other processes of a Cloud TPU pod, Slurm or Open MPI job, which "
        "JAX finds itself; elsewhere give the three options below instead",
    )
    several.add_argument("--coordinator", metavar="HOST:PORT", help="process 0's address")
    several.add_argument("--num-processes", type=int, metavar="N")
    several.add_argument("--process-id", type=int, metavar="I", help="0 .. N-1")
    train.set_defaults(func=_train)

    cv = sub.add_parser(
        "cv", help="cross-validate a config on your own data: one run per fold, and a summary"
    )
    cv.add_argument("--config", required=True, help="YAML file or a shipped config's name")
    cv.add_argument("--set", nargs="*", default=[], metavar="SECTION.KEY=VALUE")
    cv.add_argument(
        "--folds",
        type=int,
        default=None,
        help="K >= 3: fold k tests, fold k+1 validates, the rest train (data.folds); with "
        "data.split=ordered, K folds that walk forward in time",
    )
    cv.add_argument(
        "--run-dir", default=None, help="its folds go to RUN_DIR/fold_K (default runs/NAME-cv-TIME)"
    )
    cv.add_argument(
        "--resume",
        action="store_true",
        help="continue the cross-validation in --run-dir, given the same config and --set",
    )
    cv.set_defaults(func=_cv)

    compare = sub.add_parser(
        "compare", help="two cross-validations of the same folds, fold by fold"
    )
    compare.add_argument("first", help="a finished seqjax cv directory")
    compare.add_argument("second", help="another, of the same data and folds")
    compare.add_argument("--json", action="store_true", help="one JSON line instead of a table")
    compare.set_defaults(func=_compare)

    configs = sub.add_parser("configs", help="list the shipped configs, or print one")
    configs.add_argument("name", nargs="?", help="print this config's YAML, to copy and edit")
    configs.set_defaults(func=_configs)

    evaluate = sub.add_parser("evaluate", help="metrics of a trained run on one split")
    evaluate.add_argument("run_dir")
    evaluate.add_argument("--checkpoint", choices=["best", "latest"], default="best")
    scored = evaluate.add_mutually_exclusive_group()  # one or the other was silently dropped
    scored.add_argument("--split", default="test", help="train, val or test (default)")
    scored.add_argument(
        "--input",
        default=None,
        help="score labelled data of your own instead of a split: an .npz with inputs, "
        "targets [, lengths] or a long-form .csv with sequence and target columns",
    )
    evaluate.add_argument(
        "--inputs-scaled",
        action="store_true",
        help="the --input inputs are already standardised model inputs",
    )
    evaluate.add_argument(
        "--threshold",
        type=_threshold,
        default=None,
        help="a two-class run: the probability from which a sequence counts as positive in "
        "accuracy, precision, recall, F1 and the confusion matrix (default 0.5); val-f1: "
        "the one that gives the validation split its best F1",
    )
    evaluate.add_argument(
        "--calibrate", action="store_true", help=CALIBRATE_HELP + "; the metrics have no loss"
    )
    evaluate.add_argument("--coverage", type=float, default=None, help=COVERAGE_HELP)
    evaluate.set_defaults(func=_evaluate)

    imp_parser = sub.add_parser(
        "importance",
        help="how much a run's loss rises when each input channel is replaced by its mean",
    )
    imp_parser.add_argument("run_dir")
    imp_parser.add_argument("--checkpoint", choices=["best", "latest"], default="best")
    where = imp_parser.add_mutually_exclusive_group()
    where.add_argument("--split", default="test", help="train, val or test (default)")
    where.add_argument("--input", default=None, help="labelled data of your own, as evaluate's")
    imp_parser.add_argument(
        "--inputs-scaled",
        action="store_true",
        help="the --input inputs are already standardised model inputs",
    )
    imp_parser.add_argument(
        "--top", type=int, default=0, help="print the N most important channels (default all)"
    )
    imp_parser.add_argument("--output", default=None, help="a .csv of every channel's importance")
    imp_parser.set_defaults(func=_importance)

    pred = sub.add_parser("predict", help="predictions of a trained run for new sequences")
    pred.add_argument("run_dir")
    pred.add_argument(
        "--input",
        required=True,
        help=".npz with inputs (N, T, F) [, lengths (N,)], or a long-form .csv with a "
        "sequence column; raw values, scaled as the run's training data was",
    )
    pred.add_argument("--output", required=True, help=".npz or .csv")
    pred.add_argument("--checkpoint", choices=["best", "latest"], default="best")
    pred.add_argument(
        "--inputs-scaled",
        action="store_true",
        help="the inputs are already standardised model inputs: skip the run's input scaler",
    )
    pred.add_argument("--calibrate", action="store_true", help=CALIBRATE_HELP)
    pred.add_argument("--coverage", type=float, default=None, help=COVERAGE_HELP)
    pred.set_defaults(func=_predict)

    imp = sub.add_parser("import-torch", help="PyTorch weights (safetensors) -> a run directory")
    imp.add_argument("--model", required=True, help="trust, steel, trend, hybrid, lstm_baseline")
    imp.add_argument("--weights", required=True, help="safetensors file of state-dict names")
    imp.add_argument("--run-dir", required=True)
    imp.add_argument("--config", default=None, help="YAML config (default: the model's own)")
    imp.add_argument("--set", nargs="*", default=[], metavar="SECTION.KEY=VALUE")
    imp.set_defaults(func=_import_torch)

    exp = sub.add_parser("export-torch", help="a run's weights -> PyTorch-named safetensors")
    exp.add_argument("run_dir")
    exp.add_argument("--weights", required=True, help="output .safetensors file")
    exp.add_argument("--checkpoint", choices=["best", "latest"], default="best")
    exp.set_defaults(func=_export_torch)
    return parser


def main(argv: list[str] | None = None) -> int:
    reuse_freed_memory_if_asked()  # before JAX runs anything: seqjax/host_memory.py
    parser = build_parser()
    args = parser.parse_args(argv)  # argparse itself exits 2 on malformed command lines
    try:
        return args.func(args)
    except (ValueError, TypeError, OSError) as e:  # OSError: files, permissions, disk full
        if args.debug:
            raise
        print(f"seqjax: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # Ctrl-C outside training's own handling (or a second one)
        if args.debug:
            raise
        print("seqjax: interrupted", file=sys.stderr)
        return 128 + signal.SIGINT


if __name__ == "__main__":
    sys.exit(main())

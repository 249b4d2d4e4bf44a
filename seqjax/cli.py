"""The `seqjax` command line.

    seqjax train --config FILE|NAME [--set k=v ...] [--run-dir DIR] [--resume]
    seqjax train --run-dir DIR --resume [--set train.epochs=N ...]
    seqjax train ... --run-dir DIR --distributed   (several processes; or, for each of N:
                 --coordinator HOST:PORT --num-processes N --process-id I)
    seqjax cv --config FILE|NAME --folds K [--set k=v ...] [--run-dir DIR] [--resume]
                 [--distributed | --coordinator ... as train]
    seqjax compare CV_DIR CV_DIR [--json]
    seqjax configs [NAME]
    seqjax evaluate RUN_DIR [--checkpoint best|latest] [--split test | --input FILE]
                 [--threshold P|val-f1] [--calibrate | --coverage C [--by-class]]
    seqjax predict RUN_DIR --input FILE.npz|.csv --output FILE.npz|.csv [--inputs-scaled]
                 [--calibrate | --coverage C [--by-class]]
    seqjax importance RUN_DIR [--split test | --input FILE] [--output FILE.csv]
    (evaluate, predict and importance: [--batch-size N], rows per pass; and the several
    processes' options of train, where a run trained across hosts is scored across them)

Usage errors exit with code 2 and one line on stderr (a traceback only with --debug). A
training run stopped by SIGINT or SIGTERM exits with 128 + the signal's number and one line
naming the saved step or epoch and the --resume command (seqjax/train/interrupt.py); Ctrl-C
anywhere else exits with 130 and "seqjax: interrupted". A run stopped by a non-finite loss
or gradient (`train.nonfinite=stop`) exits with 1 and one line naming the step, the last
checkpoint before it and the --resume command that skips such updates.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time

from seqjax.cli_processes import add_process_options, join_processes
from seqjax.cli_scoring import (
    BATCH_SIZE_HELP,
    BY_CLASS_HELP,
    CALIBRATE_HELP,
    COVERAGE_HELP,
    evaluate_command,
    importance_command,
    predict_command,
    threshold_option,
)
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
    join_processes(args, "train one run")
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
    import jax

    from seqjax.train.cross_validation import CV_FILE, cross_validate
    from seqjax.train.distributed import (
        failed_among_processes,
        leave_after_failed_step,
        writes_run_files,
    )
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
    join_processes(args, "cross-validate into one directory")
    run_dir = args.run_dir or f"runs/{cfg.model_name}-cv-{time.strftime('%Y%m%d-%H%M%S')}"
    try:
        summary = cross_validate(cfg, run_dir, resume=args.resume)
    except TrainingStopped as stopped:
        stopped.run_dir = None  # its own command would continue the one fold
        command = _cv_resume_command(args, run_dir)
        print(f"seqjax: {stopped}; continue with: {command}", file=sys.stderr)
        return stopped.exit_code
    except jax.errors.JaxRuntimeError as error:  # several processes: another one ended?
        if args.debug or not failed_among_processes(error):
            raise
        leave_after_failed_step(error, run_dir, _cv_resume_command(args, run_dir))
    if not writes_run_files():  # process 0 prints the summary
        return 0
    print(f"cross-validation of {summary['folds']} folds: {os.path.join(run_dir, CV_FILE)}")
    print(_cv_table(summary["test"], summary["pooled"]))
    print(f"out-of-fold predictions: {os.path.join(run_dir, summary['predictions'])}")
    return 0


def _cv_resume_command(args, run_dir: str) -> str:
    """The `seqjax cv` command line that continues this cross-validation."""
    import shlex

    import jax

    words = ["seqjax", "cv", "--config", args.config]
    if args.folds is not None:
        words += ["--folds", str(args.folds)]
    words += ["--run-dir", run_dir]
    if args.set:
        words += ["--set", *args.set]
    command = shlex.join([*words, "--resume"])
    if jax.process_count() > 1:  # the same processes again (seqjax/train/distributed.py)
        command += ", in every process with its --distributed or --coordinator options"
    return command


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
    add_process_options(train)
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
    add_process_options(cv)
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
        type=threshold_option,
        default=None,
        help="a two-class run: the probability from which a sequence counts as positive in "
        "accuracy, precision, recall, F1 and the confusion matrix (default 0.5); val-f1: "
        "the one that gives the validation split its best F1",
    )
    evaluate.add_argument(
        "--calibrate", action="store_true", help=CALIBRATE_HELP + "; the metrics have no loss"
    )
    evaluate.add_argument("--coverage", type=float, default=None, help=COVERAGE_HELP)
    evaluate.add_argument("--by-class", action="store_true", help=BY_CLASS_HELP)
    evaluate.add_argument("--batch-size", type=int, default=None, metavar="N", help=BATCH_SIZE_HELP)
    add_process_options(evaluate)
    evaluate.set_defaults(func=evaluate_command)

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
    imp_parser.add_argument(
        "--batch-size", type=int, default=None, metavar="N", help=BATCH_SIZE_HELP
    )
    add_process_options(imp_parser)
    imp_parser.set_defaults(func=importance_command)

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
    pred.add_argument("--by-class", action="store_true", help=BY_CLASS_HELP)
    pred.add_argument("--batch-size", type=int, default=None, metavar="N", help=BATCH_SIZE_HELP)
    add_process_options(pred)
    pred.set_defaults(func=predict_command)

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

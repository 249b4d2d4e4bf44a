"""The `seqjax` command line: `seqjax train --config FILE [--set k=v ...] [--run-dir DIR]`."""

from __future__ import annotations

import argparse
import json
import sys
import time

from seqjax.config import load_config


def _train(args) -> int:
    from seqjax.train.run import run_experiment

    cfg = load_config(args.config, args.set)
    run_dir = args.run_dir or f"runs/{cfg.model_name}-{time.strftime('%Y%m%d-%H%M%S')}"
    metrics = run_experiment(cfg, run_dir, resume=args.resume)
    test = metrics["test"]
    print(f"run directory: {run_dir}")
    print("test metrics: " + json.dumps({k: v for k, v in test.items()}, default=str))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="seqjax", description="Fast masked LSTMs in JAX/Flax")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = parser.add_subparsers(dest="command", required=True)
    train = sub.add_parser("train", help="train a model from a YAML config")
    train.add_argument("--config", required=True, help="YAML file, e.g. configs/trust.yaml")
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
    train.set_defaults(func=_train)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, TypeError, FileNotFoundError, PermissionError) as e:
        if args.debug:
            raise
        print(f"seqjax: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

"""Every system's experiment at its default config, one after another in one quiet run,
and one JSON of their test figures against their targets, parameter counts and wall times.

    python experiments/all_systems.py [--only NAME ...] [--set KEY=VALUE ...] [--out PATH]

`--set` hands its settings to every experiment's own `--set` (e.g. `train.bucket_width=50`).

Why one script: figures from runs on different days, beside different background work,
are not comparable; this produces the README's systems table from a single sitting.
Each experiment runs in its own process (as a user would run it) and its metrics.json is
read back from its run directory.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time

import jax

from seqjax.io import atomic_write_json

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# name -> (experiment arguments, {metric key in the test split: target description})
STEEL_TARGETS = {"auc_roc": "> 0.88", "auc_pr": "> 0.75"}
SYSTEMS = {
    "trust": (["experiments/train_trust.py"], {"accuracy": "> 0.85"}),
    **{
        f"steel_{variant}": (["experiments/train_steel.py", "--variant", variant], STEEL_TARGETS)
        for variant in ("standard", "lightweight", "deep", "bidirectional")
    },
    "trend": (
        ["experiments/train_trend.py"],
        {
            "d7_direction_accuracy": "> d7_direction_majority",
            "d30_direction_accuracy": "> d30_direction_majority",
        },
    ),
}


def passes(value: float | None, target: str, test: dict) -> bool:
    """`target` is "> 0.88" or "> KEY", KEY naming another test figure (a baseline). A
    figure the test split leaves undefined (null in metrics.json: an AUC over one class)
    passes no target."""
    bound = target.removeprefix("> ")
    try:
        threshold = float(bound)
    except ValueError:
        threshold = test[bound]
    return value is not None and threshold is not None and value > threshold


def run_one(name: str, root: str, settings: list[str]) -> dict:
    args, targets = SYSTEMS[name]
    args = [*args, *(["--set", *settings] if settings else [])]
    run_dir = os.path.join(root, name)
    start = time.perf_counter()
    script = os.path.join(REPO, args[0])  # from any working directory
    proc = subprocess.run(
        [sys.executable, script, *args[1:], "--run-dir", run_dir], capture_output=True, text=True
    )
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        return {"error": proc.stderr.strip()[-2000:], "process_wall_seconds": wall}
    with open(os.path.join(run_dir, "metrics.json")) as f:
        metrics = json.load(f)
    test = metrics["test"]
    return {
        "command": "python " + " ".join(args),
        "num_params": metrics["num_params"],
        "best_epoch": metrics.get("best_epoch"),
        "training_wall_seconds": metrics["wall_seconds"],
        "process_wall_seconds": wall,
        "targets": {
            key: {"value": test[key], "target": t, "pass": passes(test[key], t, test)}
            for key, t in targets.items()
        },
        "test": {k: v for k, v in test.items() if not isinstance(v, list)},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--only", nargs="*", choices=sorted(SYSTEMS), default=None)
    parser.add_argument("--set", dest="settings", nargs="*", default=[], metavar="KEY=VALUE")
    parser.add_argument(
        "--out", default=os.path.join(REPO, "experiments", "results", "all_systems_cpu.json")
    )
    args = parser.parse_args()
    results = {}
    with tempfile.TemporaryDirectory(prefix="seqjax-all-") as root:
        for name in args.only or SYSTEMS:
            print(f"[{name}] running", flush=True)
            results[name] = run_one(name, root, args.settings)
            r = results[name]
            if "error" in r:
                print(f"[{name}] FAILED: {r['error'].splitlines()[-1]}", flush=True)
            else:
                shown = ", ".join(
                    f"{k} {'undefined' if v['value'] is None else format(v['value'], '.4f')} "
                    f"({v['target']}: {'pass' if v['pass'] else 'FAIL'})"
                    for k, v in r["targets"].items()
                )
                print(
                    f"[{name}] {shown}; {r['num_params']:,} params; "
                    f"{r['process_wall_seconds']:.0f} s",
                    flush=True,
                )
    out = {
        "command": "python experiments/all_systems.py " + " ".join(sys.argv[1:]),
        "device": str(jax.devices()[0].device_kind),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "jax": jax.__version__,
        "settings": args.settings,
        "systems": results,
    }
    atomic_write_json(args.out, out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

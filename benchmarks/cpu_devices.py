"""Training on one CPU device against one device per core (`mesh.cpu_devices`), per config.

    python -m benchmarks.cpu_devices [--config configs/X.yaml ...] [--epochs 3] [--rounds 2]

Each run is `seqjax train` in a fresh process (the device count is fixed when JAX starts),
checkpoints and plots off; the figure is the median steps/s over the epochs after the
first (which includes compiling). Runs alternate between the two settings, `--rounds`
times each, so a drift of the machine hits both. Writes
benchmarks/results/cpu_devices_<device-kind>.json.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile

from benchmarks import command_line
from benchmarks.timing import environment

CONFIGS = (
    "configs/steel_bidirectional.yaml",
    "configs/steel_standard.yaml",
    "configs/trend.yaml",
    "configs/trust.yaml",
)


def train_steps_per_second(config: str, epochs: int, cpu_devices: int) -> float:
    """Median steps/s of epochs 2.. of one `seqjax train` run in a fresh process."""
    settings = [f"train.epochs={epochs}", "train.patience=0", "train.plots=false"]
    settings += ["checkpoint.enabled=false", f"mesh.cpu_devices={cpu_devices}"]
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "seqjax.cli", "train", "--config", config]
        cmd += ["--run-dir", os.path.join(tmp, "run"), "--set", *settings]
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stderr[-3000:]}")
        with open(os.path.join(tmp, "run", "timings.json")) as f:
            rows = json.load(f)
    return statistics.median(row["steps_per_second"] for row in rows[1:])


def main(argv: list[str] | None = None) -> dict:
    parser = command_line.parser("benchmarks.cpu_devices", __doc__)
    parser.add_argument("--config", action="append", help="YAML config (repeatable)")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    cores = os.cpu_count() or 1
    configs = args.config or list(CONFIGS)
    result = {
        "command": command_line.command("benchmarks.cpu_devices", argv),
        "environment": environment(),
        "cores": cores,
        "epochs": args.epochs,
        "configs": {},
    }
    for config in configs:
        runs = {1: [], cores: []}
        for _ in range(args.rounds):
            for count in runs:
                runs[count].append(train_steps_per_second(config, args.epochs, count))
        one, per_core = statistics.median(runs[1]), statistics.median(runs[cores])
        result["configs"][config] = {
            "steps_per_second_one_device": one,
            "steps_per_second_per_core": per_core,
            "per_core_over_one_device": per_core / one,
            "runs": {str(k): v for k, v in runs.items()},
        }
        print(f"{config:36} one device {one:7.1f} steps/s  {cores} devices {per_core:7.1f}  "
              f"ratio {per_core / one:5.2f}", flush=True)  # fmt: skip
    out = args.out or command_line.results_path("cpu_devices")
    command_line.write_result(out, result)
    return result


if __name__ == "__main__":
    main()

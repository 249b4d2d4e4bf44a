"""Train the trend forecaster, evaluate it on the (latest, time-ordered) test split and
write its run directory with predicted-vs-actual and attention plots.

    python experiments/train_trend.py [--run-dir DIR] [--set key=value ...]
"""

from __future__ import annotations

import argparse
import os
import time

import jax

from seqjax.config import load_config
from seqjax.data.sources import load_splits
from seqjax.plots import plot_attention, plot_predicted_vs_actual
from seqjax.train.restore import predict, restore_state
from seqjax.train.run import run_experiment


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--run-dir", default=None)
    parser.add_argument("--set", nargs="*", default=[])
    args = parser.parse_args()
    cfg = load_config("trend", args.set)
    run_dir = args.run_dir or f"runs/trend-{time.strftime('%Y%m%d-%H%M%S')}"
    metrics = run_experiment(cfg, run_dir)
    splits = load_splits(cfg.data)
    test = splits["test"]
    state, _ = restore_state(run_dir, cfg, splits["train"], which="best")
    preds = predict(cfg, state, test)  # (N, 2, 4)
    plots = os.path.join(run_dir, "plots")
    plot_predicted_vs_actual(
        preds[:, :, 0],
        test.targets[:, :, 0],
        ["7 days", "30 days"],
        os.path.join(plots, "predicted_vs_actual.png"),
    )
    out = state.apply_fn(
        {"params": state.params}, test.inputs[:16], test.lengths[:16], return_details=True
    )
    weights = jax.device_get(out["attention"]).mean(axis=1)  # (16, T): mean over heads
    plot_attention(
        weights,
        test.lengths[:16],
        (test.targets[:16, 1, 0] > 0).astype(int),
        os.path.join(plots, "attention.png"),
    )
    t = metrics["test"]
    for days in (7, 30):
        print(
            f"{days}-day direction accuracy {t[f'd{days}_direction_accuracy']:.3f} "
            f"(majority baseline {t[f'd{days}_direction_majority']:.3f}), "
            f"RMSE {t[f'd{days}_rmse']:.3f}, correlation {t[f'd{days}_correlation']:.3f}"
        )
    print(
        f"{metrics['num_params']} parameters, {metrics['wall_seconds']:.0f} s wall; "
        f"run directory {run_dir}"
    )


if __name__ == "__main__":
    main()

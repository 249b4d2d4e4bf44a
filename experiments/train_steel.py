"""Train a defect-detection variant, evaluate it on the test split and write its run
directory with classifier plots, attention heatmaps and dataset statistics.

    python experiments/train_steel.py [--variant standard|bidirectional|deep|lightweight]
                                      [--run-dir DIR] [--set key=value ...]
"""

from __future__ import annotations

import argparse
import os
import time

import jax
import numpy as np

from seqjax.config import load_config
from seqjax.data.sources import load_splits
from seqjax.data.steel import generate, statistics
from seqjax.io import atomic_write_json
from seqjax.plots import plot_attention
from seqjax.train.restore import restore_state
from seqjax.train.run import run_experiment


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--variant",
        default="standard",
        choices=["standard", "bidirectional", "deep", "lightweight"],
    )
    parser.add_argument("--run-dir", default=None)
    parser.add_argument("--set", nargs="*", default=[])
    args = parser.parse_args()
    cfg = load_config(f"steel_{args.variant}", args.set)
    run_dir = args.run_dir or f"runs/steel-{args.variant}-{time.strftime('%Y%m%d-%H%M%S')}"
    metrics = run_experiment(cfg, run_dir)
    atomic_write_json(
        os.path.join(run_dir, "dataset.json"),
        statistics(generate(cfg.data.size, seed=cfg.data.seed)),
    )
    splits = load_splits(cfg.data)
    test = splits["test"]
    state, _ = restore_state(run_dir, cfg, splits["train"], which="best")
    plots = os.path.join(run_dir, "plots")  # history, confusion matrix, ROC, PR: run_experiment
    if cfg.model.pooling == "attention":
        pick = np.r_[np.flatnonzero(test.targets == 1)[:4], np.flatnonzero(test.targets == 0)[:4]]
        _, details = state.apply_fn(
            {"params": state.params, **state.mutable},
            test.inputs[pick],
            test.lengths[pick],
            return_details=True,
        )
        plot_attention(
            jax.device_get(details["attention"]),
            test.lengths[pick],
            test.targets[pick],
            os.path.join(plots, "attention.png"),
        )
    t = metrics["test"]
    print(
        f"test AUC-ROC {t['auc_roc']:.4f} (target > 0.88), AUC-PR {t['auc_pr']:.4f} "
        f"(target > 0.75), {metrics['num_params']} parameters, "
        f"{metrics['wall_seconds']:.0f} s wall; run directory {run_dir}"
    )


if __name__ == "__main__":
    main()

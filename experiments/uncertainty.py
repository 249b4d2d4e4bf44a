"""How well the seed systems' probabilities come true, before and after recalibrating
them on the validation split (`seqjax evaluate --calibrate`).

    python experiments/calibration.py [--out experiments/results/calibration_cpu.json]

Each run trains at its config (below), then scores its test split twice from the best
checkpoint: the model's own probabilities, and those recalibrated by one scale and a bias
per class fitted on the validation split (`seqjax.calibration`). The ranking of a
two-class model's sequences, so its AUCs, stays; the Brier score and the ECE (15 bins;
P(positive) for two classes, the top class's probability otherwise) say how far the
stated probabilities are from the frequencies they come true at.

Why these runs: the trust model at its README config, then weighted towards its
positives (`train.pos_weight=4`), which shifts every probability up; the defect detector
at its lightweight config (15.9% defective); the trend forecaster's two 3-class direction
heads; and, where aeon is installed, nine classes of real data (JapaneseVowels) from a
small validation split.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import platform
import sys
import tempfile

import jax

from seqjax.calibration import fit, recalibrate
from seqjax.config import load_config
from seqjax.data.sources import load_splits
from seqjax.io import atomic_write_json
from seqjax.train.loop import task_for
from seqjax.train.restore import load_run_config, predict, restore_state
from seqjax.train.run import run_experiment

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RUNS = {
    "trust": ("trust", []),
    "trust_pos_weight_4": ("trust", ["train.pos_weight=4"]),
    "steel_lightweight": ("steel_lightweight", []),
    "trend": ("trend", []),
    "japanese_vowels": ("steel_lightweight", ["data.source=aeon:JapaneseVowels"]),
}
# the figures kept per split: how sure and how right (AUCs only where there are two classes)
KEYS = ("brier", "ece", "accuracy", "f1", "auc_roc", "macro_f1", "d7_class_ece",
        "d7_class_brier", "d7_class_accuracy", "d30_class_ece", "d30_class_brier",
        "d30_class_accuracy")  # fmt: skip


def measure(config: str, sets: list[str], run_dir: str) -> dict:
    """Train one run; its test figures before and after recalibration, and the fit."""
    run_experiment(load_config(config, [*sets, "train.plots=false"]), run_dir, log=lambda _: None)
    cfg = load_run_config(run_dir)  # as trained: a user's data sets its classes and channels
    splits = load_splits(cfg.data, cfg.train.loss)
    val, test = splits["val"], splits["test"]
    state, epoch = restore_state(run_dir, cfg, test)
    heads = fit(cfg.train.loss, predict(cfg, state, val), val.targets_in_units())
    raw = predict(cfg, state, test)
    evaluate = task_for(cfg).evaluate
    before = evaluate(raw, test.targets_in_units())
    after = evaluate(recalibrate(cfg.train.loss, raw, heads), test.targets_in_units())
    return {
        "config": config,
        "set": sets,
        "sizes": {"val": len(val), "test": len(test)},
        "best_epoch": epoch,
        "recalibration": [head.to_json() for head in heads],
        "test_before": {key: before[key] for key in KEYS if key in before},
        "test_after": {key: after[key] for key in KEYS if key in after},
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--out", default=os.path.join(REPO, "experiments", "results", "calibration_cpu.json")
    )
    parser.add_argument("--only", nargs="*", default=list(RUNS), choices=list(RUNS))
    args = parser.parse_args(argv)
    results = {}
    with tempfile.TemporaryDirectory() as scratch:
        for name in args.only:
            config, sets = RUNS[name]
            if name == "japanese_vowels" and importlib.util.find_spec("aeon") is None:
                print(name, "skipped: pip install 'seqjax[aeon]'", flush=True)
                continue
            results[name] = measure(config, sets, os.path.join(scratch, name))
            before, after = results[name]["test_before"], results[name]["test_after"]
            shown = {key: (round(before[key], 4), round(after[key], 4)) for key in before}
            print(name, shown, flush=True)
    atomic_write_json(
        args.out,
        {
            "command": " ".join(["python experiments/calibration.py", *(argv or sys.argv[1:])]),
            "device": jax.devices()[0].device_kind,
            "processor": platform.processor() or platform.machine(),
            "jax": jax.__version__,
            "runs": results,
        },
    )


if __name__ == "__main__":
    main()

"""How far to trust the seed systems' probabilities and predictions: how well they come
true before and after recalibrating them on the validation split (`seqjax evaluate
--calibrate`), and how often the conformal sets and intervals fitted there hold the
test split's truth (`seqjax evaluate --coverage C`).

    python experiments/uncertainty.py [--out experiments/results/uncertainty_cpu.json]

Each run trains at its config (below), then scores its test split from the best
checkpoint. Recalibration (classifiers): the model's own probabilities, and those
recalibrated by one scale and a bias per class fitted on the validation split
(`seqjax.calibration`); a two-class model's ranking, so its AUCs, stays; the Brier score
and the ECE (15 bins; P(positive) for two classes, the top class's probability
otherwise) say how far the stated probabilities are from the frequencies they come true
at. Coverage (every run): at C = 0.8, 0.9 and 0.95, the share of test sequences whose
class is in its set (or whose value is in its interval), overall and for each class,
the mean set size and the interval widths (`seqjax.conformal`), and for the classifiers
at 0.9 the same with each class's sets fitted on its own (`--by-class`). The guarantee
asks the test split to be drawn as the validation split was, which the trend data's
time-ordered weeks only approach.

Why these runs: the trust model at its README config, then weighted towards its
positives (`train.pos_weight=4`), which shifts every probability up; the defect detector
at its lightweight config (15.9% defective); the trend forecaster's two 3-class direction
heads and two scores; nine classes of real data (JapaneseVowels, where aeon is
installed) from a small validation split; and the LSTM baseline's three regressed values
(at hidden 64 instead of its config's 396, to keep the script a few minutes long).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import tempfile

from seqjax import conformal
from seqjax.calibration import fit, recalibrate
from seqjax.config import load_config
from seqjax.data.sources import load_splits
from seqjax.environment import experiment_header
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
    "lstm_baseline_h64": ("lstm_baseline", ["model.hidden_size=64"]),
}
COVERAGES = (0.8, 0.9, 0.95)
# the figures kept per split: how sure and how right (AUCs only where there are two classes)
KEYS = ("brier", "ece", "accuracy", "f1", "auc_roc", "macro_f1", "d7_class_ece",
        "d7_class_brier", "d7_class_accuracy", "d30_class_ece", "d30_class_brier",
        "d30_class_accuracy")  # fmt: skip


def measure(config: str, sets: list[str], run_dir: str) -> dict:
    """Train one run; its test figures before and after recalibration and the fit (a
    classifier's), and the conformal sets' or intervals' record at each coverage."""
    run_experiment(load_config(config, [*sets, "train.plots=false"]), run_dir, log=lambda _: None)
    cfg = load_run_config(run_dir)  # as trained: a user's data sets its classes and channels
    splits = load_splits(cfg.data, cfg.train.loss)
    val, test = splits["val"], splits["test"]
    state, epoch = restore_state(run_dir, cfg, test)
    loss = cfg.train.loss
    val_predictions, raw = predict(cfg, state, val), predict(cfg, state, test)
    truth = val.targets_in_units(), test.targets_in_units()
    result = {
        "config": config,
        "set": sets,
        "sizes": {"val": len(val), "test": len(test)},
        "best_epoch": epoch,
        "coverage": {
            str(c): conformal.achieved(
                loss, raw, truth[1], conformal.fit(loss, val_predictions, truth[0], c)
            )
            for c in COVERAGES
        },
    }
    if loss == "mse":  # values, not probabilities: nothing to recalibrate or fit by class
        return result
    try:  # a class with fewer than 9 validation sequences cannot give 0.9 on its own
        each = conformal.fit(loss, val_predictions, truth[0], 0.9, by_class=True)
        result["coverage_by_class"] = {"0.9": conformal.achieved(loss, raw, truth[1], each)}
    except ValueError as refused:
        result["coverage_by_class"] = {"0.9": {"refused": str(refused)}}
    heads = fit(loss, val_predictions, truth[0])
    evaluate = task_for(cfg).evaluate
    before = evaluate(raw, truth[1])
    after = evaluate(recalibrate(loss, raw, heads), truth[1])
    return {
        **result,
        "recalibration": [head.to_json() for head in heads],
        "test_before": {key: before[key] for key in KEYS if key in before},
        "test_after": {key: after[key] for key in KEYS if key in after},
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--out", default=os.path.join(REPO, "experiments", "results", "uncertainty_cpu.json")
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
            covered = {
                c: {k: round(v, 3) for k, v in scored.items() if k.endswith("covered")}
                for c, scored in results[name]["coverage"].items()
            }
            print(name, "covered", covered, flush=True)
            if "test_before" in results[name]:
                before, after = results[name]["test_before"], results[name]["test_after"]
                shown = {key: (round(before[key], 4), round(after[key], 4)) for key in before}
                print(name, "recalibrated", shown, flush=True)
    atomic_write_json(
        args.out,
        {
            **experiment_header("experiments/uncertainty.py", argv or sys.argv[1:]),
            "runs": results,
        },
    )


if __name__ == "__main__":
    main()

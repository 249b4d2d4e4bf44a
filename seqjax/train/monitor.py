"""The row each epoch logs, and the check that `train.monitor` names one of its entries,
in the direction `train.mode` says (or, with "auto", its name), before a run starts.

Why: the loop reads the monitored value only at an epoch's end, so a mistyped monitor
(`val_acc`) used to fail after the run directory was made and a whole epoch was trained.
The names the check accepts come from the row the loop builds (`epoch_row`), with the
task's own metrics computed on placeholder predictions over the validation targets, so
the two cannot drift apart.
"""

import numpy as np

from seqjax.config import TrainConfig
from seqjax.data.dataset import SequenceDataset
from seqjax.suggest import did_you_mean
from seqjax.tasks import get_task


def epoch_row(
    epoch: int, train_loss: float, skipped: int, lr: float, val: dict, nonfinite: str
) -> dict[str, float]:
    """history.csv's row for one epoch: `skipped` (non-finite updates) is logged only
    under `train.nonfinite="skip"`, and of the validation metrics the scalars, prefixed
    `val_`."""
    return {
        "epoch": epoch,
        "train_loss": train_loss,
        **({"skipped_updates": skipped} if nonfinite == "skip" else {}),
        "lr": lr,
        **{f"val_{k}": v for k, v in val.items() if isinstance(v, float)},
    }


def logged_names(
    loss: str, nonfinite: str, val: SequenceDataset, prediction_shape: tuple[int, ...]
) -> list[str]:
    """The entries of every epoch's row for task `loss` over the split `val`, whose
    predictions have `prediction_shape` per example (placeholders in [0, 1) stand in for
    them: only the metrics' names are kept, and those do not depend on the units, so a
    target scaler is left out)."""
    return sorted(_placeholder_row(loss, nonfinite, val, prediction_shape))


def _placeholder_row(
    loss: str, nonfinite: str, val: SequenceDataset, prediction_shape: tuple[int, ...]
) -> dict[str, float]:
    rng = np.random.default_rng(0)
    predictions = rng.uniform(size=(len(val), *prediction_shape)).astype(np.float32)
    metrics = {"loss": 0.0, **get_task(loss).evaluate(predictions, val.targets)}
    return epoch_row(1, 0.0, 0, 0.0, metrics, nonfinite)


# why a metric is NaN whatever the model predicts, by how its name ends
UNDEFINED_BECAUSE = {
    "auc_roc": "AUC-ROC needs both classes among its targets",
    "auc_pr": "AUC-PR needs a positive among its targets",
    "correlation": "a correlation needs targets that vary",
}


def _undefined_monitor(monitor: str, row: dict[str, float], val: SequenceDataset) -> str:
    """The message for a monitor that is NaN on the placeholder predictions: these vary,
    so the split's targets leave the metric undefined for any model."""
    ending = next((e for e in UNDEFINED_BECAUSE if monitor.endswith(e)), None)
    reason = UNDEFINED_BECAUSE[ending] if ending else "its targets leave it undefined"
    if ending in ("auc_roc", "auc_pr"):
        values, counts = np.unique(np.asarray(val.targets), return_counts=True)
        pairs = zip(values.tolist(), counts.tolist(), strict=True)
        by_class = ", ".join(f"{v:g}: {c}" for v, c in pairs)
        reason += f" (its targets by class: {{{by_class}}})"
    defined = [k for k, v in row.items() if k.startswith("val_") and not np.isnan(v)]
    return (
        f"train.monitor {monitor!r} is NaN on the validation split ({len(val)} examples) "
        f"whatever the model predicts: {reason}; monitor a metric defined there "
        f"({', '.join(defined)}), or give the split other examples (data.splits, data.seed)"
    )


# the metrics whose better values lie one way, by how their names end; others (epoch, lr,
# a majority-class baseline) go unchecked
LOWER_IS_BETTER = ("loss", "mse", "rmse", "mae", "brier", "ece")
HIGHER_IS_BETTER = ("accuracy", "auc_roc", "auc_pr", "f1", "precision", "recall", "correlation")


def by_name(monitor: str) -> str | None:
    """Which way the metric's name says it improves, "min" or "max"; None if it says not."""
    if monitor.endswith(LOWER_IS_BETTER):
        return "min"
    return "max" if monitor.endswith(HIGHER_IS_BETTER) else None


def direction(train: TrainConfig) -> str:
    """The way `train.monitor` improves, "min" or "max": `train.mode`, or with "auto" the
    metric's name's (`check_monitor` refuses an "auto" no name decides, before a run)."""
    if train.mode != "auto":
        return train.mode
    better = by_name(train.monitor)
    if better is None:
        raise ValueError(
            f"train.mode 'auto' cannot tell from its name whether a lower or a higher "
            f"{train.monitor} is better; set train.mode=min or train.mode=max"
        )
    return better


def check_monitor(
    train: TrainConfig, val: SequenceDataset, prediction_shape: tuple[int, ...]
) -> None:
    """Raise ValueError naming the logged metrics (and the close one meant) where
    `train.monitor` is none of them, where "auto" cannot take a direction from its name,
    and where `train.mode` would keep the worst epoch of a metric whose direction its name
    gives: `--set train.monitor=val_accuracy train.mode=min` would otherwise stop early
    on, and keep as best, the least accurate epoch. Also where the monitor is NaN on the
    validation split for any model (an AUC over targets of one class): the run would keep
    its first epoch as the best, and stop there after `train.patience` epochs."""
    monitor, mode = train.monitor, train.mode
    row = _placeholder_row(train.loss, train.nonfinite, val, prediction_shape)
    names = sorted(row)
    if monitor not in names:
        raise ValueError(
            f"train.monitor {monitor!r} is not a logged metric{did_you_mean(monitor, names)}; "
            f"available: {names}"
        )
    if np.isnan(row[monitor]):
        raise ValueError(_undefined_monitor(monitor, row, val))
    direction(train)  # an "auto" whose name gives no direction is refused here
    better = by_name(monitor)
    if better is not None and mode not in ("auto", better):
        lowest_or_highest = "lowest" if mode == "min" else "highest"
        raise ValueError(
            f"train.mode {mode!r} would keep the epoch of the {lowest_or_highest} {monitor}; "
            f"set train.mode={better} with train.monitor={monitor}"
        )

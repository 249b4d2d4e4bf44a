"""Reading a run directory back: its config, and a train state restored from a checkpoint."""

from __future__ import annotations

import dataclasses
import os

import numpy as np
from jax.sharding import Mesh

from seqjax.config import ExperimentConfig, load_config
from seqjax.data.dataset import SequenceDataset, num_batches
from seqjax.data.sources import load_splits
from seqjax.data.spec import DataSpec, load_data_spec
from seqjax.interpret import ablation_importance
from seqjax.metrics import binary_classification
from seqjax.train.checkpoint import Checkpointer
from seqjax.train.loop import (
    mesh_for,
    predict_split,
    state_shapes,
    steps_for,
    task_for,
)
from seqjax.train.sharding import check_divisible
from seqjax.train.state import TrainState


def first_fold(run_dir: str) -> str | None:
    """`run_dir/fold_0` where `run_dir` is a `seqjax cv` directory (its folds are runs),
    else None: for errors that point a user from the directory to one of its runs."""
    folds = os.path.join(run_dir, "fold_0")
    return folds if os.path.isfile(os.path.join(folds, "config.yaml")) else None


def load_run_config(run_dir: str) -> ExperimentConfig:
    path = os.path.join(run_dir, "config.yaml")
    if not os.path.isfile(path):
        folds = first_fold(run_dir)
        if folds is not None:
            raise FileNotFoundError(
                f"{run_dir!r} is a cross-validation, not a run directory: its folds are runs "
                f"({folds}, ...); seqjax predict takes a finished one whole"
            )
        raise FileNotFoundError(f"{run_dir!r} is not a run directory: it has no config.yaml")
    return load_config(path)


def run_data_spec(run_dir: str, cfg: ExperimentConfig) -> DataSpec:
    """The run's data_spec.json; for a run written before it, the spec of the training
    split its config loads now (which needs that data to be there)."""
    return load_data_spec(run_dir) or DataSpec.of(load_splits(cfg.data, cfg.train.loss)["train"])


def restore_state(
    run_dir: str,
    cfg: ExperimentConfig,
    sample: SequenceDataset,
    *,
    which: str = "best",
    mesh: Mesh | None = None,
) -> tuple[TrainState, int]:
    """The train state saved at the best (by train.monitor) or latest epoch, replicated
    on `mesh` (default: the run's, `mesh_for(cfg)`). Why a mesh of the caller's: an array
    moved from one mesh to another afterwards keeps the first in its type (jax 0.10.2,
    jax-ml/jax#31793), which the layer's per-shard loops read (`seqjax.layers.per_shard`),
    so a state is restored where it will run."""
    if which not in ("best", "latest"):
        raise ValueError(f"checkpoint must be 'best' or 'latest'; got {which!r}")
    ckpt_dir = os.path.join(run_dir, "checkpoints")
    if not os.path.isdir(ckpt_dir):
        raise FileNotFoundError(f"{run_dir!r} has no checkpoints/ directory")
    mesh = mesh if mesh is not None else mesh_for(cfg)
    steps = num_batches(len(sample), cfg.train.batch_size, drop_remainder=False)
    shapes = state_shapes(cfg, sample, steps * cfg.train.epochs, mesh)
    ckpt = Checkpointer(ckpt_dir, async_save=False)
    try:
        epoch = ckpt.best_epoch() if which == "best" else ckpt.latest_epoch()
        if epoch is None:
            raise FileNotFoundError(f"{ckpt_dir!r} holds no complete checkpoint")
        state, _ = ckpt.restore(epoch, shapes)
    finally:
        ckpt.close()
    return state, epoch


def scoring_config(cfg: ExperimentConfig, batch_size: int | None) -> ExperimentConfig:
    """`cfg` with the batch size its scoring passes run (`--batch-size`; None: the run's
    `train.batch_size`). Why an option: a row's prediction does not depend on the rows
    beside it (dropout is off, BatchNorm uses its running statistics), so the size changes
    speed and memory, not the predictions beyond float rounding, and on a GPU a larger
    batch than training's scores several times the sequences a second."""
    if batch_size is None:
        return cfg
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"--batch-size must be an integer >= 1; got {batch_size!r}")
    check_divisible(batch_size, mesh_for(cfg))
    return dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, batch_size=batch_size))


def _eval_pass(cfg: ExperimentConfig):
    """The jitted eval step `cfg` trains with, its mesh and its task."""
    mesh = mesh_for(cfg)
    return steps_for(cfg, mesh)[1], mesh, task_for(cfg)


def predict_and_loss(
    cfg: ExperimentConfig, state: TrainState, data: SequenceDataset
) -> tuple[np.ndarray, float]:
    """The task's predictions (e.g. probabilities) for every example of `data` (N, ...),
    and the run's weighted loss on it: the one pass `seqjax train` scores a split with
    (`loop.evaluate`)."""
    eval_step, mesh, task = _eval_pass(cfg)
    tc = cfg.train
    return predict_split(
        eval_step, state, data, task, tc.batch_size, mesh, bucket_width=tc.bucket_width
    )


def predict(cfg: ExperimentConfig, state: TrainState, data: SequenceDataset) -> np.ndarray:
    """The task's predictions for every example of `data`, whose targets do not change
    them but need the task's shape: the eval step computes a loss, dropped here."""
    return predict_and_loss(cfg, state, data)[0]


def check_threshold(cfg: ExperimentConfig, threshold: float | None = None) -> None:
    """A decision threshold is a probability, and only a two-class run's outputs are one;
    with `threshold` None, only the run is checked (a threshold chosen later, `val-f1`)."""
    if threshold is not None and not 0.0 <= threshold <= 1.0:
        raise ValueError(f"--threshold must lie in [0, 1]; got {threshold}")
    if cfg.train.loss != "binary_cross_entropy":
        raise ValueError(
            f"--threshold applies to a two-class run (loss binary_cross_entropy); this run's "
            f"loss is {cfg.train.loss!r}"
        )


def metrics_of(
    cfg: ExperimentConfig,
    predictions: np.ndarray,
    targets: np.ndarray,
    *,
    threshold: float | None = None,
) -> dict:
    """The task's metrics of `predictions` (N, ...) that are not one pass of the run's
    model (recalibrated, or several models' mean), so no loss; with `threshold`, a
    two-class run's counts from that probability instead of 0.5."""
    if threshold is None:
        return task_for(cfg).evaluate(predictions, targets)
    check_threshold(cfg, threshold)
    return binary_classification(predictions, targets, threshold=threshold)


def evaluate_run(
    cfg: ExperimentConfig,
    state: TrainState,
    data: SequenceDataset,
    *,
    threshold: float | None = None,
) -> dict:
    """The loss and the task's metrics on `data`, computed as `seqjax train` computes a
    split's entry in metrics.json; for a two-class run, with `threshold`, the metrics that
    count positives (all but the loss and the AUCs) at that probability instead of 0.5."""
    if threshold is not None:  # before the pass over the data
        check_threshold(cfg, threshold)
    predictions, loss = predict_and_loss(cfg, state, data)
    targets = data.targets_in_units()
    return {"loss": loss, **metrics_of(cfg, predictions, targets, threshold=threshold)}


def importance_run(
    cfg: ExperimentConfig, state: TrainState, data: SequenceDataset
) -> tuple[float, np.ndarray]:
    """The run's loss on `data` and each input channel's importance (F,): how much that
    loss rises when the channel is replaced by its mean over the valid steps
    (`seqjax.interpret.ablation_importance`). The loss, not a metric: every task has one,
    weighed as training weighed it. F + 1 passes over `data`, compiled once."""
    eval_step, mesh, task = _eval_pass(cfg)
    tc = cfg.train

    def loss_of(inputs: np.ndarray) -> float:
        ablated = dataclasses.replace(data, inputs=inputs)
        return predict_split(
            eval_step, state, ablated, task, tc.batch_size, mesh, bucket_width=tc.bucket_width
        )[1]

    return ablation_importance(loss_of, data.inputs, data.lengths)

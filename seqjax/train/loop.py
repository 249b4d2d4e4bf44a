"""The fit loop: epochs, validation, reduce-on-plateau, early stopping, best-params restore.

Host-side decisions (plateau, early stopping) happen between epochs on plain floats, so the
jitted step compiles once and is never retraced.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable

import jax
import numpy as np

from seqjax.config import ExperimentConfig
from seqjax.data.dataset import SequenceDataset, iterate_batches, num_batches
from seqjax.models.registry import build_model
from seqjax.tasks import Task, get_task
from seqjax.train.optim import learning_rate, make_optimizer, with_learning_rate
from seqjax.train.state import TrainState, create_state
from seqjax.train.step import make_eval_step, make_train_step


@dataclasses.dataclass
class FitResult:
    state: TrainState  # holding the best parameters by the monitored metric
    history: list[dict]
    best_epoch: int


def evaluate(
    eval_step: Callable, state: TrainState, data: SequenceDataset, task: Task, batch_size: int
) -> dict:
    """Weighted loss plus the task's metrics over a whole split (padding examples dropped)."""
    loss_sum, weight_sum, preds = 0.0, 0.0, []
    for batch in iterate_batches(data, batch_size, shuffle=False):
        out = eval_step(state, batch)
        w = float(out["weight"])
        loss_sum += float(out["loss"]) * w
        weight_sum += w
        preds.append(np.asarray(task.predict(out["outputs"]))[: int(w)])
    predictions = np.concatenate(preds)
    return {"loss": loss_sum / weight_sum, **task.evaluate(predictions, data.targets)}


def _improved(value: float, best: float, mode: str, min_delta: float) -> bool:
    if math.isnan(best):
        return True
    return value < best - min_delta if mode == "min" else value > best + min_delta


def fit(
    cfg: ExperimentConfig,
    splits: dict[str, SequenceDataset],
    *,
    log: Callable[[str], None] = print,
) -> FitResult:
    model = build_model(cfg.model_name, cfg.model)
    task = get_task(cfg.train.loss)
    tc = cfg.train
    train_data, val_data = splits["train"], splits["val"]
    if tc.batch_size > len(train_data):
        raise ValueError(
            f"train.batch_size {tc.batch_size} is larger than the training split "
            f"({len(train_data)} examples)"
        )
    state = create_state(
        model,
        make_optimizer(cfg.optimizer),
        train_data.inputs[:1],
        train_data.lengths[:1],
        seed=tc.seed,
    )
    train_step = jax.jit(make_train_step(task.loss), donate_argnums=0)
    eval_step = jax.jit(make_eval_step(task.loss))

    history: list[dict] = []
    best_value, best_epoch, best_params = float("nan"), -1, state.params
    plateau_best, plateau_wait = float("nan"), 0
    steps = num_batches(len(train_data), tc.batch_size, drop_remainder=False)
    for epoch in range(tc.epochs):
        start = time.perf_counter()
        loss_sum = weight_sum = 0.0
        for batch in iterate_batches(
            train_data, tc.batch_size, shuffle=True, seed=tc.seed, epoch=epoch
        ):
            state, m = train_step(state, batch)
            w = float(m["weight"])
            loss = float(m["loss"])
            if not math.isfinite(loss):
                raise FloatingPointError(
                    f"non-finite training loss {loss} at step {int(state.step)}"
                )
            loss_sum += loss * w
            weight_sum += w
        seconds = time.perf_counter() - start
        val = evaluate(eval_step, state, val_data, task, tc.batch_size)
        row = {
            "epoch": epoch + 1,
            "train_loss": loss_sum / weight_sum,
            "lr": learning_rate(state.opt_state),
            "epoch_seconds": seconds,
            "steps_per_second": steps / seconds,
            **{f"val_{k}": v for k, v in val.items() if isinstance(v, float)},
        }
        history.append(row)
        log(
            f"epoch {epoch + 1:3d}  train_loss {row['train_loss']:.4f}  "
            f"val_loss {row['val_loss']:.4f}  "
            f"val_accuracy {row.get('val_accuracy', float('nan')):.4f}"
            f"  lr {row['lr']:.2e}  {seconds:.1f}s"
        )
        value = row[tc.monitor]
        if _improved(value, best_value, tc.mode, tc.min_delta):
            best_value, best_epoch = value, epoch + 1
            best_params = jax.tree.map(np.asarray, state.params)
        if cfg.optimizer.plateau_patience > 0:
            if _improved(value, plateau_best, tc.mode, 0.0):
                plateau_best, plateau_wait = value, 0
            else:
                plateau_wait += 1
                if plateau_wait >= cfg.optimizer.plateau_patience:
                    new_lr = learning_rate(state.opt_state) * cfg.optimizer.plateau_factor
                    state = state.replace(opt_state=with_learning_rate(state.opt_state, new_lr))
                    plateau_wait = 0
        if tc.patience > 0 and epoch + 1 - best_epoch >= tc.patience:
            log(f"early stopping after epoch {epoch + 1}; best {tc.monitor} at epoch {best_epoch}")
            break
    state = state.replace(params=jax.tree.map(jax.numpy.asarray, best_params))
    return FitResult(state=state, history=history, best_epoch=best_epoch)

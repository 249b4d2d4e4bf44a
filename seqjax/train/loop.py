"""The fit loop: epochs, validation, reduce-on-plateau, early stopping, checkpoints, resume.

Host-side decisions (plateau, early stopping) happen between epochs on plain floats, so the
jitted step compiles once per batch shape (one, or one per length bucket with
`train.bucket_width`) and is never retraced for a decision. Everything the loop decides is
kept in a JSON-able `loop` dict that is checkpointed with the train state each epoch, so a resumed
run continues with the same data order, rng, schedule and early-stopping state and writes
a history identical to an uninterrupted run. Wall-clock figures are kept apart from the
history for that reason, in the loop's `timings`, which checkpoints carry too: a resumed
run's timings.json lists every epoch, those before the resume as their own process timed
them. A stop inside an epoch (a signal, or `checkpoint.every_steps`) saves the state at
that step with the epoch's bookkeeping so far (in_epoch.py), and a resume continues the
epoch from the next batch.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import os
import time
from collections.abc import Callable, Sequence

import jax
import numpy as np
from jax.sharding import Mesh

from seqjax.calibration import TREND_LOSSES
from seqjax.class_weights import (
    BALANCED,
    check_class_weights,
    class_labels,
    resolve_class_weights,
)
from seqjax.config import ExperimentConfig
from seqjax.data.batch import Batch, make_batch
from seqjax.data.dataset import SequenceDataset, batch_order, iterate_batches, num_batches
from seqjax.loop_graphs import LOOP_GRAPHS
from seqjax.models.registry import build_model
from seqjax.tasks import Task, get_task
from seqjax.train.chance import (
    CONSTANT_GUESSES,
    constant_guess,
    constant_guess_warning,
    constant_loss,
    correlation_warning,
    guessing_warning,
    loss_difference_spread,
)
from seqjax.train.checkpoint import Checkpointer
from seqjax.train.distributed import failed_among_processes
from seqjax.train.in_epoch import InEpochCheckpointer, epoch_so_far, restored_metrics
from seqjax.train.interrupt import StopAsked, TrainingDiverged, TrainingStopped, never
from seqjax.train.monitor import check_monitor, direction, epoch_row
from seqjax.train.optim import learning_rate, make_optimizer, scale_learning_rate
from seqjax.train.profiling import StepProfiler, check_profile_steps, profile_directory
from seqjax.train.progress import EpochProgress
from seqjax.train.sharding import (
    check_divisible,
    check_micro_batches,
    data_sharding,
    make_mesh,
    on_mesh,
    replicate,
    replicated,
    shard_batch,
    use_cpu_devices,
)
from seqjax.train.state import TrainState, create_state
from seqjax.train.step import make_eval_step, make_train_step


@dataclasses.dataclass
class FitResult:
    state: TrainState  # holding the best parameters by the monitored metric
    history: list[dict]
    best_epoch: int
    timings: list[dict]
    mesh: Mesh


def initial_loop_state() -> dict:
    return {
        "epoch": 0,  # epochs completed
        "history": [],
        "best_value": None,
        "best_epoch": 0,
        "plateau_best": None,
        "plateau_wait": 0,
        "stopped": False,
        "timings": [],  # wall-clock per epoch, apart from the history
    }


def improved(value: float, best: float | None, mode: str, min_delta: float) -> bool:
    """Whether `value` beats `best` by more than `min_delta` in direction `mode`.

    A NaN (a correlation of constant predictions, say) ranks below every number: it is
    kept only where nothing came before, and any number beats it. Plain comparisons would
    make a first NaN the best epoch for good, since no value compares greater than it."""
    if best is None or (math.isnan(best) and not math.isnan(value)):
        return True
    if math.isnan(value):
        return False
    return value < best - min_delta if mode == "min" else value > best + min_delta


def mesh_for(cfg: ExperimentConfig) -> Mesh:
    use_cpu_devices(cfg.mesh.cpu_devices)
    n = cfg.mesh.num_devices
    devices = jax.devices()
    if n > len(devices):
        there = "1 device exists" if len(devices) == 1 else f"{len(devices)} devices exist"
        raise ValueError(f"mesh.num_devices is {n} but only {there}")
    return make_mesh(devices[:n] if n else devices)


def predict_split(
    eval_step: Callable,
    state: TrainState,
    data: SequenceDataset,
    task: Task,
    batch_size: int,
    mesh: Mesh,
    *,
    bucket_width: int = 0,
) -> tuple[np.ndarray, float]:
    """The task's predictions for every example of `data`, in its order (padding examples
    dropped; in the targets' own units where `data.target_scaler` standardised them), and
    the weighted mean loss: one pass that evaluation and `seqjax predict` share, so a
    split's scores and its predictions come from the same calls. With `bucket_width` the
    batches run in length order (`iterate_batches`)."""
    loss_sum, weight_sum, preds = 0.0, 0.0, []
    batches = iterate_batches(data, batch_size, shuffle=False, bucket_width=bucket_width)
    for b, batch in enumerate(batches):
        out = jax.device_get(eval_step(state, shard_batch(batch, mesh)))
        w = float(out["weight"])  # the real examples' weights: 1 each, or the data's
        loss_sum += float(out["loss"]) * w
        weight_sum += w
        real = min(batch_size, len(data) - b * batch_size)  # the padding examples come last
        preds.append(np.asarray(task.predict(out["outputs"]))[:real])
    taken = np.concatenate(preds)
    predictions = np.empty_like(taken)
    predictions[batch_order(data, batch_size, shuffle=False, bucket_width=bucket_width)] = taken
    if data.target_scaler is not None:
        predictions = data.target_scaler.inverse_rows(predictions)
    return predictions, loss_sum / weight_sum


def _kept_model_spread(cfg, task, eval_step, state, constant, val_data, mesh) -> float:
    """`loss_difference_spread` of the model the run keeps (`state`) against `constant`
    on the validation split: one more pass over it, for multi-class runs."""
    tc = cfg.train
    probabilities, _ = predict_split(
        eval_step, state, val_data, task, tc.batch_size, mesh, bucket_width=tc.bucket_width
    )  # (N, K)
    logits = np.log(np.maximum(probabilities, 1e-30))  # softmax(log p) = p
    return loss_difference_spread(task, logits, constant, val_data)


def evaluate(
    eval_step: Callable,
    state: TrainState,
    data: SequenceDataset,
    task: Task,
    batch_size: int,
    mesh: Mesh,
    *,
    bucket_width: int = 0,
) -> dict:
    """Weighted loss plus the task's metrics over a whole split (padding examples dropped).
    With `data.target_scaler` the loss is the training objective's, on standardised
    targets, and the metrics are in the targets' own units."""
    predictions, loss = predict_split(
        eval_step, state, data, task, batch_size, mesh, bucket_width=bucket_width
    )
    return {"loss": loss, **task.evaluate(predictions, data.targets_in_units())}


@functools.cache
def compile_steps(
    task: Task,
    mesh: Mesh,
    *,
    skip_nonfinite: bool = False,
    loop_graphs: bool = False,
    micro_batches: int = 1,
) -> tuple[Callable, Callable]:
    """Jitted train and eval steps: batch sharded on `data`, state replicated, state donated;
    with `loop_graphs`, compiled with `LOOP_GRAPHS` (the loops in CUDA graphs on a GPU);
    the train step's gradient from `micro_batches` micro-batches (`make_train_step`).

    Cached per (task, mesh, options): fit, evaluation after it and every `predict` call
    share one jitted function each, so a shape is traced and compiled once per process.
    """
    rep, dat = replicated(mesh), data_sharding(mesh)
    options = LOOP_GRAPHS if loop_graphs else None
    train_step = jax.jit(
        on_mesh(
            make_train_step(task.loss, skip_nonfinite=skip_nonfinite, micro_batches=micro_batches),
            mesh,
        ),
        in_shardings=(rep, dat),
        out_shardings=(rep, rep),
        donate_argnums=0,
        compiler_options=options,
    )
    eval_step = jax.jit(
        on_mesh(make_eval_step(task.loss), mesh),
        in_shardings=(rep, dat),
        out_shardings=rep,
        compiler_options=options,
    )
    return train_step, eval_step


def task_for(cfg: ExperimentConfig) -> Task:
    """The task `cfg` trains: its loss, with the loss's options (`train.pos_weight`,
    `train.class_weights`)."""
    weights = cfg.train.class_weights
    if weights == BALANCED:
        raise ValueError(
            f"train.class_weights '{BALANCED}' is computed from the training split: "
            "seqjax.train.loop.with_class_weights(cfg, splits['train']) first "
            "(run_experiment and fit do)"
        )
    return get_task(cfg.train.loss, cfg.train.pos_weight, weights)


def with_class_weights(cfg: ExperimentConfig, train: SequenceDataset) -> ExperimentConfig:
    """`cfg` with `train.class_weights: balanced` replaced by the training split's numbers
    (seqjax/class_weights.py); any other cfg as it is."""
    if cfg.train.class_weights != BALANCED:
        return cfg
    return resolve_class_weights(cfg, train.targets, check_outputs_fit_targets(cfg, train))


def steps_for(cfg: ExperimentConfig, mesh: Mesh) -> tuple[Callable, Callable]:
    """`compile_steps` with the options `cfg` asks for."""
    return compile_steps(
        task_for(cfg),
        mesh,
        skip_nonfinite=cfg.train.nonfinite == "skip",
        loop_graphs=cfg.train.loop_graphs,
        micro_batches=cfg.train.micro_batches,
    )


def _update_schedules(cfg: ExperimentConfig, loop: dict, state: TrainState, value: float):
    """Best tracking, reduce-on-plateau and early stopping after one epoch."""
    tc, oc = cfg.train, cfg.optimizer
    mode = direction(tc)
    if improved(value, loop["best_value"], mode, tc.min_delta):
        loop["best_value"], loop["best_epoch"] = value, loop["epoch"]
    if oc.plateau_patience > 0:
        if improved(value, loop["plateau_best"], mode, 0.0):
            loop["plateau_best"], loop["plateau_wait"] = value, 0
        elif loop["epoch"] > oc.plateau_after:
            loop["plateau_wait"] += 1
            if loop["plateau_wait"] >= oc.plateau_patience:
                opt_state = scale_learning_rate(state.opt_state, oc.plateau_factor)
                state = state.replace(opt_state=opt_state)
                loop["plateau_wait"] = 0
    waited = loop["epoch"] - loop["best_epoch"] >= tc.patience
    if tc.patience > 0 and waited and loop["epoch"] >= tc.min_epochs:
        loop["stopped"] = True
    return state


def check_outputs_fit_targets(cfg: ExperimentConfig, train: SequenceDataset) -> tuple[int, ...]:
    """Raise ValueError where the loss cannot pair the model's outputs with the data's
    targets, naming both shapes and the model's settings that shape its outputs; else the
    shape of one example's predictions.

    Why: a `model.outputs`, `num_horizons` or `num_classes` set against the data otherwise
    fails inside the first train step as a bare broadcasting error ("sub got incompatible
    shapes"), after the run directory was made. Traced with abstract values on two
    examples (`jax.eval_shape`: no compile, 0.1-0.5 s on CPU), once per config and shapes:
    `run_experiment` checks before it makes the run directory, and `fit` again."""
    batch = make_batch(train.inputs[:2], train.lengths[:2], train.targets[:2])
    # the dtype a jitted step would see (float64 targets become float32; jax >= 0.11 warns
    # on a float64 struct without x64)
    spec = jax.tree.map(
        lambda a: jax.ShapeDtypeStruct(a.shape, jax.dtypes.canonicalize_dtype(a.dtype)), batch
    )
    return _check_outputs_fit(cfg.model_name, cfg.model, cfg.train.loss, spec)


def initial_state(cfg: ExperimentConfig, sample: SequenceDataset, total_steps: int) -> TrainState:
    """A fresh train state of `cfg`'s model and optimizer (a schedule of `total_steps`),
    shaped by `sample`'s first example, on the host."""
    model, optimizer = _model_and_optimizer(cfg.model_name, cfg.model, cfg.optimizer, total_steps)
    return create_state(
        model, optimizer, sample.inputs[:1], sample.lengths[:1], seed=cfg.train.seed
    )


def state_shapes(
    cfg: ExperimentConfig, sample: SequenceDataset, total_steps: int, mesh: Mesh
) -> TrainState:
    """The shapes, dtypes and shardings (replicated on `mesh`) of `initial_state`'s train
    state, for Orbax to restore a checkpoint into. Why not a fresh state: its values are
    overwritten at once, and computing them compiles the model's init and each op of the
    optimizer's init (22 programs for a small trend run), seconds of every resume,
    `seqjax evaluate`, `predict` and `load_run` (README, "A seed model in your own
    training loop")."""
    shapes = jax.eval_shape(lambda: initial_state(cfg, sample, total_steps))
    where = replicated(mesh)
    return jax.tree.map(lambda s: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=where), shapes)


@functools.lru_cache(maxsize=16)
def _model_and_optimizer(model_name: str, model_cfg, optimizer_cfg, total_steps: int) -> tuple:
    """One model object and one optimizer object per configuration in a process. Why: a
    train state's tree structure holds `model.apply` and the optimizer, and both compare
    by identity (a bound method equals another only on the same module object), so every
    state built from new ones made `jax.jit` trace and compile the steps again: each fold
    of a cross-validation, each run of a test session, each `evaluate` after training."""
    return build_model(model_name, model_cfg), make_optimizer(optimizer_cfg, total_steps)


@functools.lru_cache(maxsize=16)
def _check_outputs_fit(model_name: str, model_cfg, loss: str, batch: Batch) -> tuple[int, ...]:
    """`check_outputs_fit_targets` on a hashable config and a batch of shapes (a check that
    passes is cached; one that raises is not)."""
    model = build_model(model_name, model_cfg)
    task = get_task(loss)

    def outputs(batch):
        variables = model.init(jax.random.key(0), batch.inputs, batch.lengths)
        return model.apply(variables, batch.inputs, batch.lengths)

    def loss_and_predictions(b):
        out = outputs(b)
        return task.loss(out, b), task.predict(out)

    try:
        _, predictions = jax.eval_shape(loss_and_predictions, batch)
    except (TypeError, ValueError) as e:
        shapes = jax.tree.map(lambda a: tuple(a.shape), jax.eval_shape(outputs, batch))
        knobs = [
            f"model.{k}={getattr(model_cfg, k)}"
            for k in ("outputs", "num_horizons", "num_classes")
            if hasattr(model_cfg, k)
        ]
        raise ValueError(
            f"model {model_name!r} gives outputs {shapes} for {batch.size} examples, which "
            f"loss {loss!r} cannot pair with their targets {tuple(batch.targets.shape)} "
            f"({', '.join(knobs) or 'its config'} against this data?): {e}"
        ) from None
    return tuple(predictions.shape[1:])


def check_trainable(cfg: ExperimentConfig, splits: dict, mesh: Mesh) -> None:
    """The batch fits the data and the mesh, the model's outputs the data's targets, and
    `train.monitor` names a metric the epochs log (called before a run writes anything)."""
    n = len(splits["train"])
    if cfg.train.batch_size > n:
        raise ValueError(
            f"train.batch_size {cfg.train.batch_size} is larger than the training split "
            f"({n} examples)"
        )
    check_divisible(cfg.train.batch_size, mesh)
    check_micro_batches(cfg.train.batch_size, cfg.train.micro_batches, mesh)
    shape = check_outputs_fit_targets(cfg, splits["train"])
    check_class_weights(cfg.train, shape)
    check_monitor(cfg.train, splits["val"], shape)
    steps = num_batches(n, cfg.train.batch_size, drop_remainder=False) * cfg.train.epochs
    check_profile_steps(cfg.train.profile_steps, steps)


def _stop_if_asked(
    stop: StopAsked,
    ckpt: Checkpointer | None,
    step: int,
    epoch: int,
    *,
    ended: bool,
    save_running: Callable[..., None] | None = None,
) -> None:
    """Raise `TrainingStopped` once a signal came, after the pending checkpoint is on disk;
    inside an epoch, after `save_running` has saved the state at this step."""
    signum = stop(step)
    if signum is None:
        return
    where = f"after epoch {epoch}" if ended else f"at step {step}, in epoch {epoch}"
    saved = saved_step = None
    if ckpt is not None:
        if save_running is not None:
            save_running(wait=True)
            saved_step = step
        ckpt.wait()
        saved = ckpt.latest_epoch()
    raise TrainingStopped(signum, where, saved, saved_step)


def _diverged(
    metrics: list, step0: int, epoch: int, ckpt: Checkpointer | None, in_epoch
) -> TrainingDiverged | None:
    """The error for the epoch's first non-finite step among host `metrics` (the epoch's
    steps so far, from step0 + 1), naming the newest checkpoint before it, else None."""
    bad = [step0 + i + 1 for i, m in enumerate(metrics) if not m["finite"]]
    if not bad:
        return None
    saved_epoch = saved_step = None
    if ckpt is not None:
        ckpt.wait()  # the last good epoch's save, which may still be running
        saved_epoch = ckpt.latest_epoch()
        in_epoch.wait()
        latest = in_epoch.latest_step()
        saved_step = latest if latest is not None and step0 < latest < bad[0] else None
    return TrainingDiverged(bad[0], epoch + 1, saved_epoch, saved_step)


def _save_running(
    in_epoch: InEpochCheckpointer,
    ckpt: Checkpointer,
    step: int,
    state,
    loop: dict,
    epoch,
    *,
    refuse_nonfinite: bool,
    wait: bool = False,
) -> None:
    """Save the running epoch at `step` (and `wait` for the write); `epoch`: (its index,
    the step it began at, its steps' metrics so far, its start time, its first step's
    seconds). With `refuse_nonfinite` (`train.nonfinite=stop`) a step so far that was not
    finite raises `TrainingDiverged` instead: such a state is never saved to resume from."""
    index, step0, metrics, start, first_step_seconds = epoch
    seconds = time.perf_counter() - start
    record = epoch_so_far(index, step0, metrics, seconds, first_step_seconds)
    if refuse_nonfinite:
        error = _diverged(restored_metrics(record), step0, index, ckpt, in_epoch)
        if error is not None:
            raise error
    in_epoch.save_step(step, state, loop, record)
    if wait:
        in_epoch.wait()


def _open_checkpoints(
    cfg: ExperimentConfig,
    run_dir: str | None,
    resume: bool,
    shapes: Callable[[], TrainState],
    log: Callable[[str], None],
):
    """(epoch checkpointer, in-epoch checkpointer, state, loop state, running epoch's
    record) for a run: Nones (no state) and a fresh loop without a run directory or
    checkpoints; with `resume`, the newest intact epoch checkpoint's state and loop, and
    the in-epoch checkpoint's if one continues the epoch after it (`in_epoch.py`), each
    restored into `shapes()` (`state_shapes`, traced once, for a resume alone); no state
    where none of them restored."""
    loop = initial_loop_state()
    state = None
    if run_dir is None or not cfg.checkpoint.enabled:
        return None, None, state, loop, None
    ckpt = Checkpointer(
        os.path.join(run_dir, "checkpoints"),
        keep_latest=cfg.checkpoint.keep_latest,
        async_save=cfg.checkpoint.async_save,
    )
    in_epoch = InEpochCheckpointer(run_dir, async_save=cfg.checkpoint.async_save)
    ckpt.beside, in_epoch.beside = [in_epoch], [ckpt]
    for name in ckpt.discarded + in_epoch.discarded:
        log(f"warning: removed half-written checkpoint {name} (a save was interrupted)")
    latest = ckpt.latest_epoch()
    if not resume and (latest is not None or in_epoch.latest_step() is not None):
        ckpt.close()
        in_epoch.close()
        raise ValueError(
            f"run directory {run_dir!r} already holds checkpoints (latest epoch {latest}); "
            "pass --resume to continue it or choose a new --run-dir"
        )
    like = shapes() if resume else None  # without --resume there is nothing to restore
    if latest is not None:
        found = ckpt.restore_newest_intact(like, log)
        if found is None:
            ckpt.close()
            in_epoch.close()
            raise ValueError(f"--resume: no checkpoint in {run_dir!r} can be read back")
        state, loop, epoch = found
        loop.setdefault("timings", [])  # checkpoints written before loops kept them
        log(f"resumed from the checkpoint of epoch {epoch}")
        if loop["stopped"] and loop["epoch"] < cfg.train.epochs:
            log(
                f"the run stopped early after epoch {loop['epoch']} (train.patience "
                f"{cfg.train.patience}); its {cfg.train.epochs} epochs change nothing"
            )
    running = None
    if resume and not loop["stopped"]:
        found_running = in_epoch.restore_running(loop["epoch"], like, log)
        if found_running is not None:
            state, loop, running = found_running
            loop.setdefault("timings", [])
            log(f"resumed from step {int(state.step)}, in epoch {running['epoch'] + 1}")
    return ckpt, in_epoch, state, loop, running


def fit(
    cfg: ExperimentConfig,
    splits: dict[str, SequenceDataset],
    *,
    run_dir: str | None = None,
    resume: bool = False,
    mesh: Mesh | None = None,
    log: Callable[[str], None] = print,
    on_epoch: Sequence[Callable[[dict, dict], None]] = (),
    show_progress: bool | None = None,
    stop: StopAsked = never,
) -> FitResult:
    """Train `cfg` on `splits` and return the state with the best parameters.

    With `run_dir`, a checkpoint is saved each epoch under run_dir/checkpoints and
    `resume=True` continues from the latest one. `on_epoch` callbacks get each history row
    and its timing; `show_progress` (default: when stderr is a terminal) draws a live bar.
    `stop` (from `interrupt.stop_on_signals`) is asked after each step and each epoch, with
    the steps done: once it returns a signal, the state at that step is saved (inside an
    epoch; an epoch's end saves its own), the pending checkpoints are finished and
    `TrainingStopped` raised.
    """
    mesh = mesh or mesh_for(cfg)  # before JAX first runs: it may set the CPU devices
    cfg = with_class_weights(cfg, splits["train"])
    task = task_for(cfg)
    tc = cfg.train
    train_data, val_data = splits["train"], splits["val"]
    check_trainable(cfg, splits, mesh)
    steps = num_batches(len(train_data), tc.batch_size, drop_remainder=False)
    total_steps = steps * tc.epochs  # the learning-rate schedule's length
    shapes = functools.partial(state_shapes, cfg, train_data, total_steps, mesh)
    train_step, eval_step = steps_for(cfg, mesh)
    # train.sampler balanced: each example's class, which the batches draw equally often
    balance = class_labels(tc.loss, train_data.targets) if tc.sampler == "balanced" else None

    ckpt, in_epoch, state, loop, running = _open_checkpoints(cfg, run_dir, resume, shapes, log)
    if state is None:  # nothing restored: only a new run computes a fresh state
        state = replicate(initial_state(cfg, train_data, total_steps), mesh)

    # XLA:CPU runs each fake device on shared host threads; with several steps in flight
    # the all-reduce rendezvous of one step can starve behind another and abort the
    # process after 40 s (seen with 8 devices on 2 cores). One step in flight avoids it.
    sync_each_step = mesh.devices.size > 1 and jax.default_backend() == "cpu"
    best_host_params = None
    if tc.profile_steps != (0, 0) and run_dir is None:
        raise ValueError("train.profile_steps writes its trace into the run directory: give one")
    profiler = StepProfiler(tc.profile_steps, profile_directory(run_dir or ""), log)
    every_steps = cfg.checkpoint.every_steps
    try:
        while loop["epoch"] < tc.epochs and not loop["stopped"]:
            epoch = loop["epoch"]
            part, running = running, None  # a restored running epoch's record: this one
            step0 = part["step0"] if part else int(state.step)
            metrics = restored_metrics(part) if part else []
            done = len(metrics)
            start = time.perf_counter() - (part["seconds"] if part else 0.0)
            first_step_seconds = part["first_step_seconds"] if part else None
            progress = EpochProgress(steps, epoch + 1, enabled=show_progress, done=done)

            try:
                batches = iterate_batches(
                    train_data,
                    tc.batch_size,
                    shuffle=True,
                    seed=tc.seed,
                    epoch=epoch,
                    bucket_width=tc.bucket_width,
                    start=done,
                    balance=balance,
                )
                for i, batch in enumerate(batches, start=done):
                    step = step0 + i + 1
                    with profiler.annotation(step):
                        state, m = train_step(state, shard_batch(batch, mesh))
                    profiler.finished(step, m)
                    metrics.append(m)  # device values: no host sync inside the epoch
                    if sync_each_step:
                        jax.block_until_ready(m)
                    if first_step_seconds is None:
                        jax.block_until_ready(m)
                        first_step_seconds = time.perf_counter() - start
                    progress.step(m["loss"])
                    if i + 1 == steps:  # the epoch's end asks, once its checkpoint is saved
                        continue
                    save_running = None
                    if in_epoch is not None:
                        save_running = functools.partial(
                            _save_running, in_epoch, ckpt, step, state, loop,
                            (epoch, step0, metrics, start, first_step_seconds),
                            refuse_nonfinite=tc.nonfinite == "stop",
                        )  # fmt: skip
                        if every_steps and step % every_steps == 0:
                            save_running()
                    _stop_if_asked(
                        stop, ckpt, step, epoch + 1, ended=False, save_running=save_running
                    )
            finally:
                progress.close()
            metrics = jax.device_get(metrics)
            seconds = time.perf_counter() - start
            if tc.nonfinite == "stop":
                error = _diverged(metrics, step0, epoch, ckpt, in_epoch)
                if error is not None:
                    raise error
            losses = [(float(m["loss"]), float(m["weight"])) for m in metrics if m["finite"]]
            if not losses:
                raise FloatingPointError(f"every update of epoch {epoch + 1} was non-finite")
            train_loss = sum(loss * w for loss, w in losses) / sum(w for _, w in losses)
            skipped = len(metrics) - len(losses)  # non-finite steps (skipped under "skip")
            val = evaluate(
                eval_step, state, val_data, task, tc.batch_size, mesh, bucket_width=tc.bucket_width
            )
            loop["epoch"] = epoch + 1
            lr = learning_rate(state.opt_state)
            row = epoch_row(epoch + 1, train_loss, skipped, lr, val, tc.nonfinite)
            loop["history"].append(row)
            state = _update_schedules(cfg, loop, state, row[tc.monitor])
            if ckpt is None and loop["best_epoch"] == epoch + 1:
                best_host_params = jax.device_get(state.params)
            loop["timings"].append(
                {
                    "epoch": epoch + 1,
                    "epoch_seconds": seconds,
                    "first_step_seconds": first_step_seconds,
                    "steps_per_second": steps / seconds,
                    "sequences_per_second": steps * tc.batch_size / seconds,
                }
            )
            shown = [k for k in ("val_accuracy", tc.monitor) if k in row and k != "val_loss"]
            log(
                f"epoch {epoch + 1:3d}  train_loss {train_loss:.4f}  "
                f"val_loss {row['val_loss']:.4f}  "
                + "".join(f"{k} {row[k]:.4f}  " for k in dict.fromkeys(shown))
                + f"lr {row['lr']:.2e}  {seconds:.1f}s  {steps / seconds:.1f} steps/s"
            )
            if ckpt is not None:
                ckpt.save(epoch + 1, state, loop)
            for callback in on_epoch:
                callback(row, loop["timings"][-1])
            _stop_if_asked(stop, ckpt, step0 + len(metrics), epoch + 1, ended=True)
            if loop["stopped"]:
                log(
                    f"early stopping after epoch {epoch + 1}; best {tc.monitor} at epoch "
                    f"{loop['best_epoch']}"
                )
        if ckpt is not None:
            best_state, _ = ckpt.restore(loop["best_epoch"], state)
            state = state.replace(params=best_state.params)
        elif best_host_params is not None:
            state = state.replace(params=replicate(best_host_params, mesh))
    except BaseException as error:
        profiler.close()
        if not failed_among_processes(error):  # else the saves wait on a lost process
            for checkpointer in (in_epoch, ckpt):
                if checkpointer is not None:
                    checkpointer.close(after_error=True)
        raise
    profiler.close()  # a run that stopped early, inside the range
    for checkpointer in (in_epoch, ckpt):
        if checkpointer is not None:
            checkpointer.close()
    warning = None
    if tc.loss == "binary_cross_entropy":
        warning = guessing_warning(loop["history"], val_data.targets)
    elif tc.loss == "mse" or tc.loss in TREND_LOSSES:  # the trend's: each horizon's score
        warning = correlation_warning(loop["history"], len(val_data))
    if warning is None and tc.loss in CONSTANT_GUESSES:
        constant, said = constant_guess(tc.loss, train_data, val_data, tc.class_weights, tc.sampler)
        guess = constant_loss(task, tc.loss, val_data, constant)
        spread = 0.0  # a regression's constant check keeps no margin (its correlation's has)
        if tc.loss == "cross_entropy":  # the kept model's noise against the constant
            spread = _kept_model_spread(cfg, task, eval_step, state, constant, val_data, mesh)
        warning = constant_guess_warning(loop["history"], guess, said, spread, len(val_data))
    if warning is not None:
        log(warning)
    return FitResult(state, loop["history"], loop["best_epoch"], loop["timings"], mesh)

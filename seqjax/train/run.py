"""`run_experiment`: config -> data -> fit -> test metrics -> a run directory.

The run directory holds config.yaml (the resolved config: the run can be reproduced from it
alone; for users' data it carries the channel and class counts taken from the data),
data_spec.json (what `seqjax predict` needs to know of the data: `seqjax/data/spec.py`),
environment.json (versions, devices and command of each process that trained it),
history.json / history.csv and metrics.json. Every file is written atomically. The data
are loaded and checked before anything is written. With several processes
(`seqjax/train/distributed.py`) all of them train and evaluate, and process 0 writes.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable
from typing import Any

import jax
import numpy as np

from seqjax.class_weights import class_weights_note
from seqjax.config import (
    ExperimentConfig,
    TrainConfig,
    config_to_dict,
    dump_config,
    load_config,
)
from seqjax.data.dataset import SequenceDataset
from seqjax.data.sampler import sampler_note
from seqjax.data.sources import adapt_to_data, load_splits
from seqjax.data.spec import SPEC_FILE, save_data_spec
from seqjax.environment import FILE as ENVIRONMENT_FILE
from seqjax.environment import record as record_environment
from seqjax.host_memory import reuse_freed_memory_if_asked
from seqjax.io import atomic_write_json, atomic_write_text, history_csv
from seqjax.models.registry import count_params
from seqjax.plots import plot_classifier, plot_history
from seqjax.train.distributed import writes_run_files
from seqjax.train.in_epoch import DIRECTORY as IN_EPOCH_DIRECTORY
from seqjax.train.interrupt import TrainingDiverged, TrainingStopped, stop_on_signals
from seqjax.train.loop import check_trainable, fit, mesh_for, with_class_weights
from seqjax.train.monitor import direction
from seqjax.train.restore import evaluate_run, predict
from seqjax.train.run_lock import hold_run_dir


def prepare_run_dir(run_dir: str) -> None:
    """Create `run_dir`, failing clearly if it cannot be written to."""
    try:
        os.makedirs(run_dir, exist_ok=True)
    except OSError as err:
        raise PermissionError(f"cannot create run directory {run_dir!r}: {err.strerror}") from None
    if not os.access(run_dir, os.W_OK):
        raise PermissionError(f"run directory {run_dir!r} is not writable")


# The files a run writes beside its checkpoints, plots and environment.json.
RUN_FILES = (
    "config.yaml",
    SPEC_FILE,
    "history.csv",
    "history.json",
    "metrics.json",
    "timings.json",
)


def check_run_dir(cfg: ExperimentConfig, run_dir: str, *, resume: bool) -> None:
    """Refuse, before anything is written, to mix two runs in one directory."""
    config_path = os.path.join(run_dir, "config.yaml")
    has_ckpts = any(
        os.path.isdir(folder) and any(n.isdigit() for n in os.listdir(folder))
        for folder in (os.path.join(run_dir, n) for n in ("checkpoints", IN_EPOCH_DIRECTORY))
    )
    if not resume and has_ckpts:
        raise ValueError(
            f"run directory {run_dir!r} already holds checkpoints; pass --resume to continue "
            "it or choose a new --run-dir"
        )
    if not resume and not os.path.exists(os.path.join(run_dir, ENVIRONMENT_FILE)):
        # a run stopped before its first checkpoint leaves these beside environment.json;
        # without it they are someone's own (`--config exp/config.yaml --run-dir exp`)
        theirs = [name for name in RUN_FILES if os.path.exists(os.path.join(run_dir, name))]
        if theirs:
            raise ValueError(
                f"run directory {run_dir!r} holds {', '.join(theirs)}, which no seqjax run "
                "wrote there (it has no environment.json) and training would overwrite; "
                "choose another --run-dir"
            )
    if resume and os.path.exists(config_path):
        check_resumable(load_config(config_path), cfg, config_path)


# Keys a resumed run may change: how many epochs, and where and how the run executes
# and records itself, never what it computes. More epochs continue the run exactly as a
# run given them from the start would have gone on (the data order, the plateau and
# early-stopping state are the checkpoint's). Another device count or mesh continues the
# same optimisation, to float rounding (and, with length groups, dropout falls on other
# rows), and so do other `train.micro_batches` (which draw other dropout masks and, with
# BatchNorm, other batch statistics); `train.nonfinite=skip` lets a run that stopped at a
# non-finite step go on past it. The optimizer's settings are not here: its learning rate
# lives in the checkpointed optimizer state, so a changed `optimizer.lr` would silently not
# apply.
RESUME_MAY_CHANGE = (
    "train.epochs",
    "train.nonfinite",
    "train.tensorboard",
    "train.plots",
    "train.loop_graphs",
    "train.profile_steps",
    "train.micro_batches",
    "mesh.num_devices",
    "mesh.cpu_devices",
    "host.reuse_freed_memory",
    "checkpoint.keep_latest",
    "checkpoint.async_save",
    "checkpoint.every_steps",
)


def config_differences(a: ExperimentConfig, b: ExperimentConfig) -> list[str]:
    """The `section.key` names whose values differ between two configs, in config order."""
    dict_a, dict_b = config_to_dict(a), config_to_dict(b)  # the same sections, in order
    return [
        f"{section}.{key}"
        for section in dict_a
        for key in {**dict_a[section], **dict_b[section]}  # keys of both, a's first
        if dict_a[section].get(key) != dict_b[section].get(key)
    ]


def _same_direction(a: TrainConfig, b: TrainConfig) -> bool:
    """Both monitor the same metric the same way, whether a mode is given or "auto"."""
    try:
        return a.monitor == b.monitor and direction(a) == direction(b)
    except ValueError:  # an "auto" no name decides: check_monitor names it
        return False


class ConfigChanged(ValueError):
    """A resume asked with a config the run did not train with; `keys` names the keys
    that differ (`check_resumable`), for a caller that words it for its own command."""

    def __init__(self, message: str, keys: list[str]):
        super().__init__(message)
        self.keys = keys


def check_resumable(saved: ExperimentConfig, cfg: ExperimentConfig, config_path: str) -> None:
    """A resumed run takes its saved config, except the keys in `RESUME_MAY_CHANGE`; the
    epochs not where they set the length of a cosine schedule. Configs are compared as
    configs, not as text: a run saved before a key existed reads back with that key's
    default, so a newer seqjax resumes it."""
    changed = config_differences(saved, cfg)
    if "train.mode" in changed and _same_direction(saved.train, cfg.train):
        changed.remove("train.mode")  # "auto" for the "min" or "max" it resolves to
    refused = [key for key in changed if key not in RESUME_MAY_CHANGE]
    if refused:
        may = ", ".join(RESUME_MAY_CHANGE)
        raise ConfigChanged(
            f"--resume: the config differs from the one saved in {config_path} in "
            f"{', '.join(refused)}; a resumed run may change only {may}. Resume with that "
            "file (seqjax train --config RUN_DIR/config.yaml --resume), or start a new run",
            refused,
        )
    cosine_from_epochs = cfg.optimizer.schedule != "constant" and not cfg.optimizer.decay_steps
    if saved.train.epochs != cfg.train.epochs and cosine_from_epochs:
        raise ValueError(
            f"--resume with train.epochs={cfg.train.epochs} (saved: {saved.train.epochs}) "
            "would change the length of the run's warmup_cosine schedule, which "
            "optimizer.decay_steps=0 takes from the epochs"
        )


def write_run_files(
    run_dir: str, cfg: ExperimentConfig, train: SequenceDataset, *, resume: bool
) -> None:
    """What every run directory holds beside its checkpoints, before training starts:
    config.yaml, data_spec.json (predict needs no training data) and environment.json."""
    prepare_run_dir(run_dir)
    atomic_write_text(os.path.join(run_dir, "config.yaml"), dump_config(cfg))
    save_data_spec(run_dir, train)
    record_environment(run_dir, resume=resume)


def _quiet(_: str) -> None:
    """The log of a process other than 0: its lines would repeat process 0's."""


def _buckets_note(width: int, train: SequenceDataset) -> str:
    """What the first epoch's log line says of length buckets: they explain its compiles."""
    if not width:
        return ""
    shapes = -(-train.inputs.shape[1] // width)
    return f"; batches cut to {width}-step buckets (up to {shapes} shapes, each compiled once)"


def _positives_note(loss: str, splits: dict[str, SequenceDataset]) -> str:
    """For a binary task, each split's positives: a rare class is what `train.pos_weight`
    is for, and a split without one leaves its AUCs undefined."""
    if loss != "binary_cross_entropy":
        return ""
    counts = ", ".join(f"{int(np.sum(d.targets > 0.5))} of {len(d)}" for d in splits.values())
    return f"; positives {counts}"


def _split_note(data) -> str:
    """A split other than a random one says so: which sequences test a model is the first
    thing to check."""
    stratified = ", each class on its own" if data.split == "stratified" else ""
    grouped = f", each {data.groups!r} group whole in one split" if data.groups else ""
    if data.folds and data.split == "ordered":
        gapped = f", {data.gap} sequences left out at each cut" if data.gap else ""
        return (
            f"; walk-forward fold {data.fold} of 0..{data.folds - 1}: in file order, blocks "
            f"0..{data.fold} of {data.folds + 2} train, block {data.fold + 1} validates, "
            f"block {data.fold + 2} tests{gapped}"
        )
    if data.folds:
        return (
            f"; cross-validation: fold {data.fold} of folds 0..{data.folds - 1} tests, "
            f"fold {(data.fold + 1) % data.folds} validates{stratified}{grouped}"
        )
    if data.split == "stratified" or data.groups:
        return "; split" + stratified + grouped
    if data.split != "ordered":
        return ""
    return "; split in file order" + (
        f", {data.gap} sequences left out at each cut" if data.gap else ""
    )


def _sample_weights_note(column: str, train: SequenceDataset) -> str:
    """Where the data weighs its sequences: which array or column, and the training split's
    range of weights (a column of the wrong scale or sign shows at once)."""
    if train.weights is None:
        return ""
    w = train.weights
    zero = int(np.sum(w == 0))
    zeros = f", {zero} of {len(w)} at 0" if zero else ""
    return (
        f"; sample weights {column!r} (train: min {w.min():.4g}, mean {w.mean():.4g}, "
        f"max {w.max():.4g}{zeros})"
    )


def run_experiment(
    cfg: ExperimentConfig,
    run_dir: str,
    *,
    resume: bool = False,
    log: Callable[[str], None] = print,
) -> dict:
    start = time.perf_counter()
    reuse_freed_memory_if_asked(cfg.host.reuse_freed_memory)  # before JAX first runs
    splits = load_splits(cfg.data, cfg.train.loss)
    cfg = adapt_to_data(cfg, splits)
    mesh = mesh_for(cfg)  # before JAX first runs: it may show the CPU as several devices
    cfg = with_class_weights(cfg, splits["train"])  # traces the model's output shape
    check_run_dir(cfg, run_dir, resume=resume)
    check_trainable(cfg, splits, mesh)
    if cfg.train.tensorboard:
        try:
            import tensorboardX  # noqa: F401  (imported again where the writer is made)
        except ImportError:
            raise ImportError(
                "train.tensorboard is true but tensorboardX is not installed; "
                "pip install 'seqjax[tensorboard]' or set train.tensorboard=false"
            ) from None
    main = writes_run_files()  # with several processes, process 0 (distributed.py)
    prepare_run_dir(run_dir)
    with hold_run_dir(run_dir) if main else contextlib.nullcontext():
        if main:  # again, now that no other run can save: one may have since the check
            check_run_dir(cfg, run_dir, resume=resume)
        return _train_and_record(cfg, splits, run_dir, resume, main, log if main else _quiet, start)


def _train_and_record(
    cfg: ExperimentConfig,
    splits: dict[str, SequenceDataset],
    run_dir: str,
    resume: bool,
    main: bool,
    log: Callable[[str], None],
    start: float,
) -> dict:
    """`run_experiment` past its checks: the run's files, training, test metrics, plots;
    `start`, its `time.perf_counter()` at the call, for metrics.json's wall_seconds."""
    if main:
        write_run_files(run_dir, cfg, splits["train"], resume=resume)
    callbacks = []
    log(
        f"{cfg.model_name}: {', '.join(f'{k} {len(v)}' for k, v in splits.items())} examples"
        f"{_positives_note(cfg.train.loss, splits)}"
        f"{class_weights_note(cfg.train.class_weights)}"
        f"{sampler_note(cfg.train.sampler, cfg.train.loss, splits['train'].targets)}"
        f"{_split_note(cfg.data)}{_sample_weights_note(cfg.data.sample_weights, splits['train'])}"
        f"; devices {jax.devices()}"
        f"{_buckets_note(cfg.train.bucket_width, splits['train'])}"
    )
    writer = None
    if cfg.train.tensorboard and main:
        from tensorboardX import SummaryWriter

        writer = SummaryWriter(os.path.join(run_dir, "tensorboard"))

        def to_tensorboard(row: dict, timing: dict) -> None:
            for key, value in {**row, **timing}.items():
                if key != "epoch" and isinstance(value, float):
                    writer.add_scalar(key, value, row["epoch"])
            writer.flush()

        callbacks.append(to_tensorboard)
    try:
        with stop_on_signals() as stop:  # SIGINT/SIGTERM: TrainingStopped, checkpoints kept
            result = fit(
                cfg, splits, run_dir=run_dir, resume=resume, log=log, on_epoch=callbacks, stop=stop
            )
    except (TrainingStopped, TrainingDiverged) as stopped:
        stopped.run_dir = run_dir  # its message names the command that resumes
        raise
    finally:
        if writer is not None:
            writer.close()
    metrics: dict[str, Any] = {
        split: evaluate_run(cfg, result.state, splits[split]) for split in ("train", "val", "test")
    }
    metrics["best_epoch"] = result.best_epoch
    if splits["train"].classes is not None:  # the confusion matrices' rows and columns
        metrics["classes"] = list(splits["train"].classes)
    metrics["num_params"] = count_params({"params": result.state.params})
    metrics["wall_seconds"] = time.perf_counter() - start
    probabilities = None  # for the classifier plots; every process computes them: a jitted
    # pass over the mesh, which spans the processes
    if cfg.train.plots and cfg.train.loss in ("binary_cross_entropy", "cross_entropy"):
        probabilities = predict(cfg, result.state, splits["test"])
    if not main:
        return metrics
    atomic_write_json(os.path.join(run_dir, "history.json"), result.history)
    atomic_write_text(os.path.join(run_dir, "history.csv"), history_csv(result.history))
    atomic_write_json(os.path.join(run_dir, "timings.json"), result.timings)
    atomic_write_json(os.path.join(run_dir, "metrics.json"), metrics)
    if cfg.train.plots:
        plot_history(result.history, os.path.join(run_dir, "plots"))
        if probabilities is not None:
            plot_classifier(
                probabilities,
                splits["test"].targets,
                metrics["test"],
                os.path.join(run_dir, "plots"),
            )
    return metrics

"""`import_torch`: PyTorch weights (safetensors) -> a seqjax run directory, and back.

The run directory is an ordinary one (config.yaml plus an Orbax checkpoint at epoch 0), so
`seqjax evaluate`, `seqjax predict` and `seqjax train --resume` (fine-tuning) all read it.
The imported model's validation metrics are computed and returned (and printed by the CLI).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from seqjax.config import ExperimentConfig, apply_overrides, config_from_dict
from seqjax.data.sources import load_splits
from seqjax.models.registry import MODELS
from seqjax.torch_weights import (
    from_torch_state_dict,
    load_safetensors,
    save_safetensors,
    to_torch_state_dict,
)
from seqjax.train.checkpoint import Checkpointer
from seqjax.train.loop import (
    check_trainable,
    initial_loop_state,
    initial_state,
    mesh_for,
    with_class_weights,
)
from seqjax.train.restore import evaluate_run, load_run_config, restore_state, run_data_spec
from seqjax.train.run import check_run_dir, write_run_files
from seqjax.train.sharding import replicate

# The data and task each model is evaluated on when no --config is given.
DEFAULT_TASKS: dict[str, dict[str, Any]] = {
    "trust": {"data": {"source": "trust"}, "train": {"loss": "binary_cross_entropy"}},
    "steel": {
        "data": {"source": "steel"},
        "train": {"loss": "binary_cross_entropy", "monitor": "val_auc_roc", "mode": "max"},
    },
    "trend": {"data": {"source": "trend", "size": 40}, "train": {"loss": "trend_multitask"}},
    "hybrid": {"data": {"source": "hybrid"}, "train": {"loss": "mse"}},
    "lstm_baseline": {"data": {"source": "hybrid"}, "train": {"loss": "mse"}},
}


def default_config(model_name: str, overrides: Sequence[str] = ()) -> ExperimentConfig:
    if model_name not in MODELS:
        raise ValueError(f"unknown model {model_name!r}; known models: {sorted(MODELS)}")
    raw = {"model": {"name": model_name}, **DEFAULT_TASKS[model_name]}
    return config_from_dict(apply_overrides(raw, overrides))


def import_torch(
    weights: str,
    run_dir: str,
    cfg: ExperimentConfig,
) -> dict:
    """Load `weights` (a safetensors file of PyTorch state-dict names) into `cfg`'s model
    and write `run_dir`. Returns the validation metrics of the imported model."""
    check_run_dir(cfg, run_dir, resume=False)
    tensors = load_safetensors(weights)  # fails on a bad file before anything is written
    splits = load_splits(cfg.data, cfg.train.loss)
    train = splits["train"]
    mesh = mesh_for(cfg)  # before JAX first runs: it may show the CPU as several devices
    cfg = with_class_weights(cfg, train)
    check_trainable(cfg, splits, mesh)  # the run it writes resumes: fine-tuning
    state = initial_state(cfg, train, max(cfg.train.epochs, 1))
    variables = from_torch_state_dict(
        tensors, {"params": state.params, **state.mutable}, cfg.model_name
    )
    mutable = {k: v for k, v in variables.items() if k != "params"}
    state = state.replace(params=variables["params"], mutable=mutable)
    state = replicate(state, mesh)
    val = evaluate_run(cfg, state, splits["val"])
    write_run_files(run_dir, cfg, train, resume=False)
    ckpt = Checkpointer(os.path.join(run_dir, "checkpoints"), async_save=False)
    try:
        ckpt.save(0, state, initial_loop_state())
    finally:
        ckpt.close()
    return val


def export_torch(run_dir: str, weights: str, *, which: str = "best") -> int:
    """Write a run's parameters (and batch statistics) as PyTorch-named safetensors;
    returns the number of tensors. The name must end in .safetensors: it says what the
    file holds, and keeps a slip (`--weights RUN/config.yaml`) from replacing a file of
    another kind."""
    weights = os.fspath(weights)  # a pathlib.Path too
    if not weights.endswith(".safetensors"):
        raise ValueError(f"--weights must end in .safetensors; got {weights!r}")
    cfg = load_run_config(run_dir)
    out_dir = os.path.dirname(os.path.abspath(weights))
    if not os.path.isdir(out_dir):
        raise FileNotFoundError(f"output directory {out_dir!r} does not exist")
    state, _ = restore_state(run_dir, cfg, run_data_spec(run_dir, cfg).sample(), which=which)
    tensors = to_torch_state_dict({"params": state.params, **state.mutable}, cfg.model_name)
    save_safetensors(tensors, weights)
    return len(tensors)

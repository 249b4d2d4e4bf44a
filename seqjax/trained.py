"""`load_run`: a finished run's model as a function of new sequences, for JAX research code.

`seqjax predict` scores files. Research code wants the model itself: the Flax module and
its variables, to call inside its own `jit`, `grad` or `vmap` (a saliency map, the model
as a piece of a larger one, an export for serving) with the predictions `seqjax predict`
writes. Reading a run back takes its config, its data spec and a checkpoint; this puts
them together once, so research code does not rebuild a train state and an eval loop.
"""

from __future__ import annotations

import dataclasses
import functools
import warnings
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh

from seqjax.config import ExperimentConfig
from seqjax.data.raw_inputs import longer_than_trained
from seqjax.data.spec import DataSpec
from seqjax.layers.masking import check_sequence_inputs, is_concrete
from seqjax.models.registry import build_model
from seqjax.train.loop import task_for
from seqjax.train.restore import first_fold, load_run_config, restore_state, run_data_spec
from seqjax.train.sharding import DATA, make_mesh, replicated, shard_rows


@dataclasses.dataclass(frozen=True, eq=False)  # eq=False: hashed by identity, for jit
class TrainedModel:
    """A run's model at one checkpoint. `apply` is pure, for transforms of your own;
    calling the object checks and scales its inputs as `seqjax predict` does and runs a
    jitted `apply` with the run's variables."""

    config: ExperimentConfig
    spec: DataSpec  # the training data's shape and scalers (data_spec.json)
    epoch: int  # the epoch whose checkpoint `variables` are
    module: nn.Module
    variables: Any  # {"params": ..., and batch statistics where the model has them}
    # calls split each batch's rows over this mesh's `data` axis, `variables` replicated on
    # it (`load_run(mesh=...)`); None: one device
    mesh: Mesh | None = None

    def __repr__(self) -> str:
        """One line: the dataclass's own repr printed every variable, 34,000 characters
        for the trust model in a notebook cell."""
        params = sum(int(np.size(leaf)) for leaf in jax.tree.leaves(self.variables))
        devices = 1 if self.mesh is None else self.mesh.devices.size
        return (
            f"TrainedModel({self.config.model_name!r}, epoch {self.epoch}, {params:,} "
            f"variables, {self.spec.features} features, loss {self.config.train.loss!r}, "
            f"on {devices} device{'s' if devices > 1 else ''})"
        )

    def apply(self, variables: Any, inputs: jax.Array, lengths: jax.Array) -> jax.Array:
        """The task's predictions for model inputs (B, T, F) (scaled as the run's were:
        `scale` makes them from raw channels) and lengths (B,) int: probabilities (B,) or
        (B, K), values (B, ...) in the targets' own units, or the trend's (B, horizons, 4).
        Dropout off. Traceable by jit, grad and vmap."""
        outputs = self.module.apply(variables, inputs, lengths, train=False)
        predictions = task_for(self.config).predict(outputs)
        target_scaler = self.spec.target_scaler
        if target_scaler is None:
            return predictions
        flat = predictions.reshape(predictions.shape[0], -1)  # (B, values)
        std = jnp.asarray(target_scaler.std, flat.dtype)[None, :]  # (1, values)
        mean = jnp.asarray(target_scaler.mean, flat.dtype)[None, :]
        return (flat * std + mean).reshape(predictions.shape)  # float32, the data's units

    def scale(self, inputs: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        """Raw channels (N, T, F) -> model inputs, zero past each length: the run's scaler
        where it trained on users' data; generated data's inputs are model inputs already."""
        self._check(inputs, lengths)
        return self._scaled(inputs, lengths)

    def _scaled(self, inputs: Any, lengths: Any) -> np.ndarray:
        """`scale` of inputs already checked (a cross-validation's folds check them once)."""
        if self.spec.scaler is None:
            return np.asarray(inputs, np.float32)
        return self.spec.scaler.transform_sequences(np.asarray(inputs), np.asarray(lengths))

    def __call__(
        self, inputs: Any, lengths: Any, *, scaled: bool = False, batch_size: int | None = None
    ) -> np.ndarray:
        """Predictions (N, ...) for raw inputs (N, T, F), or for model inputs with
        `scaled=True`, computed `batch_size` rows at a time (None: the run's
        `train.batch_size`, the batches `seqjax predict` runs).

        Why in batches: the forward pass keeps every step's gates of every row it runs, so
        one call over all N rows needs memory that grows with N and fails on a large set;
        in batches it grows with the batch. The last batch is completed with copies of its
        first row (dropped from the result), so a set larger than a batch compiles one
        shape per T; a set no larger runs as it is. On a mesh (`load_run(mesh=...)`) each
        batch is rounded up to a whole number of rows per device and split over them."""
        self._check_call(inputs, lengths)
        model_inputs = inputs if scaled else self._scaled(inputs, lengths)
        return self._predict(model_inputs, lengths, batch_size)

    def _check_call(self, inputs: Any, lengths: Any) -> None:
        """`_check`, and a note to the caller's caller where sequences run longer than
        training's, as `seqjax predict` notes it on stderr."""
        self._check(inputs, lengths)
        note = longer_than_trained("the inputs", np.asarray(lengths), self.spec)
        if note is not None:
            warnings.warn(note, stacklevel=3)

    def _predict(self, model_inputs: Any, lengths: Any, batch_size: int | None) -> np.ndarray:
        """`__call__`'s batches, for checked model inputs."""
        lengths = np.asarray(lengths).astype(np.int32)
        size = self._batch_size(batch_size)
        n = len(lengths)
        devices = 1 if self.mesh is None else self.mesh.devices.size
        if n <= size and n % devices == 0:
            return np.asarray(self._run(model_inputs, lengths))
        size = -(-min(size, n) // devices) * devices  # rows a call: whole per device
        outputs = []  # on the device until the end: the host slices the next batch while
        # the device computes this one (JAX dispatches asynchronously)
        for start in range(0, n, size):
            rows = np.arange(start, min(start + size, n))  # (b,) this batch's rows
            padded = np.concatenate([rows, np.full(size - len(rows), start)])  # (size,)
            out = self._run(model_inputs[padded], lengths[padded])
            outputs.append(out[: len(rows)])
        return np.concatenate([np.asarray(out) for out in outputs])

    def _run(self, inputs: Any, lengths: np.ndarray) -> jax.Array:
        """One jitted call on a batch, its rows split over the mesh where there is one
        (a mesh over several processes' devices takes each process's rows from it)."""
        if self.mesh is not None:
            inputs, lengths = shard_rows((inputs, lengths), len(lengths), self.mesh)
        return self._jitted(self.variables, inputs, lengths)

    def _batch_size(self, batch_size: int | None) -> int:
        if batch_size is None:
            return self.config.train.batch_size
        if isinstance(batch_size, bool) or not isinstance(batch_size, int | np.integer):
            raise TypeError(f"TrainedModel: batch_size must be an int; got {batch_size!r}")
        if batch_size < 1:
            raise ValueError(f"TrainedModel: batch_size must be >= 1; got {batch_size}")
        return int(batch_size)

    @functools.cached_property
    def _jitted(self):
        """The jitted `apply`; on a mesh its predictions replicated on every device, so that
        every process of a mesh over several holds all rows' predictions to read."""
        if self.mesh is None:
            return jax.jit(self.apply)
        return jax.jit(self.apply, out_shardings=replicated(self.mesh))

    def _check(self, inputs: Any, lengths: Any) -> None:
        """The shape, dtype, length and finiteness errors `seqjax predict` gives a file,
        named before anything runs."""
        check_sequence_inputs(inputs, lengths, feature_size=self.spec.features, name="TrainedModel")
        if is_concrete(inputs) and not np.all(np.isfinite(np.asarray(inputs))):
            raise ValueError("TrainedModel: inputs contain NaN or Inf")


def load_run(run_dir: str, *, which: str = "best", mesh: Mesh | None = None) -> TrainedModel:
    """The model of the run `seqjax train` wrote to `run_dir`, at its best epoch (by
    `train.monitor`) or its latest, its variables on the default device, or replicated
    on `mesh` (a `data` axis, `seqjax.train.sharding.make_mesh`), over whose devices its
    calls then split each batch: every GPU of a host, or every core of a CPU shown as one
    device each (README, "Every core of a CPU"). A mesh may span the devices of several
    processes (`jax.distributed.initialize` first): each process then loads the run and
    calls the model with the same inputs, feeds its own rows and gets every row's
    predictions."""
    if mesh is not None and DATA not in mesh.axis_names:
        raise ValueError(
            f"load_run: the mesh needs a {DATA!r} axis to split the rows over; it has "
            f"{mesh.axis_names} (seqjax.train.sharding.make_mesh makes one)"
        )
    fold = first_fold(run_dir)
    if fold is not None:
        raise ValueError(
            f"{run_dir!r} is a cross-validation: seqjax.load_cv({run_dir!r}) loads its "
            f"folds' models as one, and each fold is a run, e.g. load_run({fold!r})"
        )
    cfg = load_run_config(run_dir)
    spec = run_data_spec(run_dir, cfg)
    # Restored where it runs, not on the run's mesh (every device) and moved after: a moved
    # array keeps that mesh in its type, and the per-shard loops then built a two-device
    # shard_map into a one-device program, which failed to run wherever JAX showed several
    # devices ("No registered implementation for ... xla.sdy.GlobalToLocalShape").
    where = mesh if mesh is not None else make_mesh(jax.devices()[:1])
    state, epoch = restore_state(run_dir, cfg, spec.sample(), which=which, mesh=where)
    variables = {"params": state.params, **state.mutable}
    model = build_model(cfg.model_name, cfg.model)
    return TrainedModel(cfg, spec, epoch, model, variables, mesh)

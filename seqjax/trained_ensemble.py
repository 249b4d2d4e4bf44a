"""`load_cv`: a finished cross-validation's K fold models as one model, for JAX research code.

`seqjax predict runs/cv` scores a file with the mean of the folds' predictions: each fold
trained on K-2 of the K folds, so together they saw all of the data. Research code that
wants the same predictions in a notebook or a larger program should not have to load K
runs and average them by hand (nor learn that each fold scales raw inputs with its own
scaler): `load_cv` does what the command does and keeps each fold's `TrainedModel` for
the pure, transformable `apply` of one fold.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

import numpy as np
from jax.sharding import Mesh

from seqjax.train.cross_validation import CV_FILE, ensemble_members, fold_mean
from seqjax.train.restore import first_fold
from seqjax.trained import TrainedModel, load_run


@dataclasses.dataclass(frozen=True, eq=False)  # eq=False: hashed by identity, as TrainedModel
class TrainedEnsemble:
    """A cross-validation's fold models. Calling it gives the mean of their predictions,
    those `seqjax predict RUN_DIR` writes for the cross-validation's directory."""

    members: tuple[TrainedModel, ...]  # fold 0, 1, ..., K-1

    def __repr__(self) -> str:
        first = self.members[0]
        epochs = [member.epoch for member in self.members]
        return (
            f"TrainedEnsemble({len(self.members)} folds of {first.config.model_name!r}, "
            f"epochs {epochs}, {first.spec.features} features, loss "
            f"{first.config.train.loss!r})"
        )

    def __call__(self, inputs: Any, lengths: Any, *, batch_size: int | None = None) -> np.ndarray:
        """The mean of the folds' predictions (N, ...) for raw inputs (N, T, F): each fold
        scales them as it trained (`TrainedModel.__call__`, `batch_size` rows at a time),
        and the mean is taken in float64 and returned in the folds' dtype, as `seqjax
        predict` does. There is no `scaled=True`: the folds' scalers differ, so there are
        no model inputs common to all of them."""
        self.members[0]._check_call(inputs, lengths)  # the folds share the data's shape
        outputs = [
            member._predict(member._scaled(inputs, lengths), lengths, batch_size)
            for member in self.members
        ]
        return fold_mean(outputs)


def load_cv(run_dir: str, *, which: str = "best", mesh: Mesh | None = None) -> TrainedEnsemble:
    """The fold models of the cross-validation `seqjax cv` wrote to `run_dir`, each at its
    best epoch (or `which="latest"`), each as `load_run` gives it (`mesh` as there)."""
    if not os.path.isfile(os.path.join(run_dir, CV_FILE)):
        fold = first_fold(run_dir)
        if fold is not None:  # folds, but no summary: it stopped before its last fold
            raise ValueError(
                f"{run_dir!r} is a cross-validation that has not finished (it has no "
                f"{CV_FILE}): finish it with `seqjax cv ... --resume`, or load one fold, "
                f"e.g. load_run({fold!r})"
            )
        raise ValueError(
            f"{run_dir!r} is not a cross-validation (it has no {CV_FILE}); a run of "
            "`seqjax train` is read by load_run"
        )
    members = tuple(load_run(fold, which=which, mesh=mesh) for fold in ensemble_members(run_dir))
    return TrainedEnsemble(members)

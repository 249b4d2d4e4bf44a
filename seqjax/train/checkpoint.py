"""Orbax checkpoints of the train state plus the loop's own state, for exact resume.

One checkpoint per epoch holds two items: `state` (params, optimizer state, step, rng,
mutable collections) and `loop` (epoch, history, early-stopping and plateau bookkeeping)
as JSON. Retention keeps the latest N *and* the best by the monitored metric through
Orbax preservation policies; `max_to_keep` together with `best_fn` would instead rank every
checkpoint by the metric and can delete the newest one, which resume needs.

Orbax writes each step into a temporary directory and renames it when complete, so a
process killed mid-save leaves no checkpoint that `latest_step()` would pick up.
"""

from __future__ import annotations

import os

import jax
import orbax.checkpoint as ocp
from orbax.checkpoint import checkpoint_managers as policies

MONITOR = "monitor"


class Checkpointer:
    def __init__(
        self, directory: str, *, keep_latest: int = 2, mode: str = "min", async_save: bool = True
    ):
        options = ocp.CheckpointManagerOptions(
            preservation_policy=policies.AnyPreservationPolicy(
                [
                    policies.LatestN(keep_latest),
                    policies.BestN(get_metric_fn=lambda m: m[MONITOR], reverse=mode == "min", n=1),
                ]
            ),
            enable_async_checkpointing=async_save,
            # A save killed mid-write leaves a temporary directory; drop it on the next start.
            cleanup_tmp_directories=True,
            create=True,
        )
        self.manager = ocp.CheckpointManager(
            os.path.abspath(directory), options=options, item_names=("state", "loop")
        )

    def save(self, epoch: int, state, loop: dict, metric: float) -> None:
        self.manager.save(
            epoch,
            args=ocp.args.Composite(
                state=ocp.args.StandardSave(state), loop=ocp.args.JsonSave(loop)
            ),
            metrics={MONITOR: float(metric)},
        )

    def restore(self, epoch: int, like_state):
        """Restore against the structure, dtypes and shardings of `like_state`."""
        self.manager.wait_until_finished()
        abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, like_state)
        restored = self.manager.restore(
            epoch,
            args=ocp.args.Composite(
                state=ocp.args.StandardRestore(abstract), loop=ocp.args.JsonRestore()
            ),
        )
        return restored["state"], dict(restored["loop"])

    def latest_epoch(self) -> int | None:
        return self.manager.latest_step()

    def best_epoch(self) -> int | None:
        return self.manager.best_step()

    def all_epochs(self) -> list[int]:
        return list(self.manager.all_steps())

    def close(self) -> None:
        self.manager.wait_until_finished()
        self.manager.close()

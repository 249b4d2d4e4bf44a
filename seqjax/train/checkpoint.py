"""Orbax checkpoints of the train state plus the loop's own state, for exact resume.

One checkpoint per epoch holds two items: `state` (params, optimizer state, step, rng,
mutable collections) and `loop` (epoch, history, early-stopping and plateau bookkeeping)
as JSON. Retention keeps the latest N *and* the loop's best epoch through Orbax
preservation policies; `max_to_keep` together with `best_fn` would instead rank every
checkpoint by the metric and can delete the newest one, which resume needs.

"Best" is the fit loop's own decision (`loop["best_epoch"]`: the first epoch to improve by
more than min_delta), not Orbax's ranking of raw metric values: ranking values kept the
*latest* of tied epochs and deleted the loop's best one (seen with val_accuracy ties on a
48-example validation split). Each checkpoint's Orbax metric is its epoch if it was the
loop's best when saved, else -1, so the highest is always the current best.

Orbax writes each step into a temporary directory and renames it when complete, so a
process killed mid-save leaves no checkpoint that `latest_step()` would pick up.
"""

from __future__ import annotations

import contextlib
import logging
import os
from typing import Any

import jax
import orbax.checkpoint as ocp
from orbax.checkpoint import checkpoint_managers as policies

BEST = "best_epoch_or_minus_1"


class DiskFullError(OSError):
    """A checkpoint could not be written for lack of space; older ones are intact."""


class CorruptCheckpointError(ValueError):
    """A complete checkpoint whose files cannot be read back."""


def _key_name(key) -> str:
    for attr in ("key", "name", "idx"):
        if hasattr(key, attr):
            return str(getattr(key, attr))
    return str(key)


def _shapes(tree) -> dict[str, tuple]:
    leaves = jax.tree_util.tree_flatten_with_path(tree)[0]
    return {"/".join(_key_name(k) for k in path): tuple(leaf.shape) for path, leaf in leaves}


def _check_fits(path: str, like_state) -> None:
    """Compare the stored parameter and statistic shapes with the model's, by path."""
    absl = logging.getLogger("absl")  # Orbax warns that the item has no step metadata file
    level = absl.level
    absl.setLevel(logging.ERROR)
    try:
        meta = ocp.StandardCheckpointer().metadata(os.path.join(path, "state"))
    except Exception as err:
        raise CorruptCheckpointError(f"checkpoint {path} has unreadable metadata ({err})") from err
    finally:
        absl.setLevel(level)
    tree = getattr(meta, "item_metadata", meta)
    stored = _shapes(getattr(tree, "tree", tree))
    wanted = _shapes({"params": like_state.params, "mutable": like_state.mutable})
    stored = {k: v for k, v in stored.items() if k.split("/")[0] in ("params", "mutable")}
    if not stored:
        raise CorruptCheckpointError(f"checkpoint {path} is corrupted or truncated (no metadata)")
    problems = [f"missing {k}" for k in sorted(set(wanted) - set(stored))]
    problems += [f"unexpected {k}" for k in sorted(set(stored) - set(wanted))]
    problems += [
        f"{k} stored {stored[k]}, model has {wanted[k]}"
        for k in sorted(set(stored) & set(wanted))
        if stored[k] != wanted[k]
    ]
    if problems:
        shown = "; ".join(problems[:6]) + (
            f"; and {len(problems) - 6} more" if len(problems) > 6 else ""
        )
        raise ValueError(
            f"checkpoint {path} does not fit this model (another model's checkpoints?): {shown}"
        )


def half_written(directory: str) -> list[str]:
    """Saves a process killed mid-write left in `directory` (Orbax's temporary names),
    which the manager removes when it opens there."""
    names = os.listdir(directory) if os.path.isdir(directory) else []
    return sorted(n for n in names if "tmp" in n)


def barrier_names(prefix: str) -> ocp.options.MultiprocessingOptions:
    """Orbax's options giving a manager's multi-process barriers names of its own.

    Why: Orbax's barrier names are otherwise the same for every manager, so two saving at
    once (seqjax's two, or one of them and a user's) met at each other's barriers and hung
    a multi-process run (in_epoch.py)."""
    return ocp.options.MultiprocessingOptions(barrier_sync_key_prefix=prefix)


class Manager(ocp.CheckpointManager):
    """Orbax's manager, except that it never asks JAX's preemption service whether to save.

    Why: with several processes the fit loop asks the service at every global step
    (`interrupt.preemption_sync_point`), and the service answers True once, at the step it
    chose. Orbax's manager asks it too, in `save`, with its own numbers (epochs here), so
    after a SIGTERM the service's step could be matched by an epoch's save: Orbax took the
    one True, the loop never saw it, and the run went on to its last epoch (seen with two
    processes: a SIGTERM at step 11 was "reached" by the save of epoch 3). The loop alone
    asks, and saves the step it stops at itself (in_epoch.py)."""

    def reached_preemption(self, step: int) -> bool:
        return False


class Checkpointer:
    unit = "epoch"  # what a checkpoint's number counts, for messages

    def __init__(self, directory: str, *, keep_latest: int = 2, async_save: bool = True):
        self._start(directory)
        options = ocp.CheckpointManagerOptions(
            preservation_policy=policies.AnyPreservationPolicy(
                [
                    policies.LatestN(keep_latest),
                    policies.BestN(get_metric_fn=lambda m: m[BEST], n=1),
                ]
            ),
            enable_async_checkpointing=async_save,
            # A save killed mid-write leaves a temporary directory; drop it on the next start.
            cleanup_tmp_directories=True,
            create=True,
            multiprocessing_options=barrier_names("seqjax_epochs"),
        )
        self.manager = Manager(
            os.path.abspath(directory), options=options, item_names=("state", "loop")
        )

    def _start(self, directory: str) -> None:
        """The state every checkpointer starts with, before or without opening its manager
        (the in-epoch one opens its own at its first save)."""
        self.discarded = half_written(directory)
        self.beside: list[Checkpointer] = []  # whose saves must not overlap this one's

    def save(self, epoch: int, state, loop: dict) -> None:
        self.wait_beside()
        with self._reporting_disk_full(epoch):
            self.manager.save(
                epoch,
                args=ocp.args.Composite(
                    state=ocp.args.StandardSave(state), loop=ocp.args.JsonSave(loop)
                ),
                metrics={BEST: float(epoch if loop.get("best_epoch") == epoch else -1)},
            )

    @contextlib.contextmanager
    def _reporting_disk_full(self, epoch: int | None):
        """Orbax reports a full disk as a TensorStore error string; name it plainly. The
        half-written directory is removed (with a warning) on the next start."""
        try:
            yield
        except Exception as err:
            if "No space left on device" not in str(err) and getattr(err, "errno", 0) != 28:
                raise
            done = [e for e in self.manager.all_steps() if e != epoch]
            kept = f"{self.unit} {max(done)}" if done else "none yet"
            # With async saves the failed write may be the previous epoch's, surfacing now.
            when = "" if epoch is None else f" (at the save of {self.unit} {epoch})"
            raise DiskFullError(
                f"disk full while writing checkpoints in {self.manager.directory}{when}; the "
                f"newest complete checkpoint ({kept}) stays usable: free space, then --resume"
            ) from None

    def restore(self, epoch: int, like_state):
        """Restore against the structure, dtypes and shardings of `like_state`.

        A checkpoint of another model fails naming the parameter paths that differ; one
        whose files are damaged raises `CorruptCheckpointError`."""
        self.wait()
        path = os.path.join(self.manager.directory, str(epoch))
        _check_fits(path, like_state)
        abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, like_state)
        try:
            restored = self.manager.restore(
                epoch,
                args=ocp.args.Composite(
                    state=ocp.args.StandardRestore(abstract), loop=ocp.args.JsonRestore()
                ),
            )
        except Exception as err:  # TensorStore, JSON and file errors alike
            first = str(err).strip().splitlines()[0][:200] if str(err).strip() else ""
            raise CorruptCheckpointError(
                f"checkpoint {path} is corrupted or truncated ({type(err).__name__}: {first})"
            ) from err
        return restored["state"], dict(restored["loop"])

    def restore_newest_intact(self, like_state, warn) -> tuple[Any, dict, int] | None:
        """The newest checkpoint that restores; damaged newer ones are skipped with `warn`."""
        for epoch in sorted(self.all_epochs(), reverse=True):
            try:
                state, loop = self.restore(epoch, like_state)
            except CorruptCheckpointError as err:
                # Deleted, not just skipped: Orbax would silently refuse to save the
                # re-trained epoch over it, leaving the damaged copy in place.
                warn(f"warning: skipping and deleting {err}")
                self.manager.delete(epoch)
                continue
            return state, loop, epoch
        return None

    def latest_epoch(self) -> int | None:
        return self.manager.latest_step()

    def best_epoch(self) -> int | None:
        """The loop's best epoch, as recorded in the newest checkpoint."""
        latest = self.latest_epoch()
        if latest is None:
            return None
        args = ocp.args.Composite(loop=ocp.args.JsonRestore())
        best = int(self.manager.restore(latest, args=args)["loop"].get("best_epoch", latest))
        if best not in self.all_epochs():
            raise CorruptCheckpointError(
                f"the best checkpoint (epoch {best}) is missing from {self.manager.directory}"
            )
        return best

    def all_epochs(self) -> list[int]:
        return list(self.manager.all_steps())

    def wait_beside(self) -> None:
        """Until the pending saves of the checkpointers `beside` this one end: with several
        processes two Orbax managers saving at once hung the run (in_epoch.py)."""
        for other in self.beside:
            other.wait()

    def wait(self) -> None:
        """Until pending asynchronous saves end. A save that failed for lack of space
        surfaces here, after the save call returned, so it is named like a failed save."""
        with self._reporting_disk_full(None):
            self.manager.wait_until_finished()

    def close(self, *, after_error: bool = False) -> None:
        """Wait for pending saves, then stop Orbax's threads.

        Orbax keeps a failed background write's error in more than one place (the save
        thread, the metadata store) and can raise it again here, after a save already
        reported it. With `after_error` (an exception is on its way out) such a second
        report is dropped, so the first, named error is the one the user sees."""
        try:
            with self._reporting_disk_full(None):
                try:
                    self.manager.wait_until_finished()
                finally:
                    self.manager.close()
        except Exception:
            if not after_error:
                raise

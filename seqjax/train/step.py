"""Pure train and eval steps; the caller jits them (with donation and shardings)."""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import optax

from seqjax.data.batch import Batch
from seqjax.train.state import TrainState


def make_train_step(
    loss_fn: Callable, *, skip_nonfinite: bool = False
) -> Callable[[TrainState, Batch], tuple[TrainState, dict]]:
    """`train_step(state, batch) -> (state, {"loss", "weight", "finite"})`.

    The dropout key is `fold_in(state.rng, state.step)`: a pure function of the run's seed and
    the step, so a resumed run draws the same masks as an uninterrupted one. `finite` says
    whether the loss and the gradient norm were finite; with `skip_nonfinite` a step where
    they were not leaves parameters, optimizer and statistics as they were (the step count
    still advances, so later dropout keys do not shift).
    """

    def train_step(state: TrainState, batch: Batch) -> tuple[TrainState, dict]:
        key = jax.random.fold_in(state.rng, state.step)

        def compute(params):
            outputs, updates = state.apply_fn(
                {"params": params, **state.mutable},
                batch.inputs,
                batch.lengths,
                train=True,
                rngs={"dropout": key},
                mutable=list(state.mutable),  # e.g. batch_stats; [] returns an empty dict
            )
            return loss_fn(outputs, batch), updates

        (loss, updates), grads = jax.value_and_grad(compute, has_aux=True)(state.params)
        finite = jnp.isfinite(loss) & jnp.isfinite(optax.tree.norm(grads))
        new = state.apply_gradients(grads=grads, mutable={**state.mutable, **updates})
        if skip_nonfinite:
            kept = jax.tree.map(
                lambda n, o: jnp.where(finite, n, o),
                (new.params, new.opt_state, new.mutable),
                (state.params, state.opt_state, state.mutable),
            )
            new = new.replace(params=kept[0], opt_state=kept[1], mutable=kept[2])
        return new, {"loss": loss, "weight": jnp.sum(batch.weights), "finite": finite}

    return train_step


def make_eval_step(loss_fn: Callable) -> Callable[[TrainState, Batch], dict]:
    """`eval_step(state, batch) -> {"loss", "weight", "outputs"}` with dropout off."""

    def eval_step(state: TrainState, batch: Batch) -> dict:
        outputs = state.apply_fn(
            {"params": state.params, **state.mutable}, batch.inputs, batch.lengths, train=False
        )
        return {
            "loss": loss_fn(outputs, batch),
            "weight": jnp.sum(batch.weights),
            "outputs": outputs,
        }

    return eval_step

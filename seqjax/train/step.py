"""Pure train and eval steps; the caller jits them (with donation and shardings)."""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import optax

from seqjax.data.batch import Batch
from seqjax.train.state import TrainState


def split_micro_batches(batch: Batch, count: int) -> Batch:
    """The batch's rows as `count` micro-batches, each array (count, B / count, ...).

    Micro-batch j holds rows j, j + count, j + 2 * count, ...: strided, not contiguous, so
    where a mesh splits the rows in contiguous blocks over its devices (each holding a
    multiple of `count` rows), every micro-batch is split over every device in the same way,
    and the split needs no communication."""
    return jax.tree.map(
        lambda a: jnp.swapaxes(a.reshape(a.shape[0] // count, count, *a.shape[1:]), 0, 1), batch
    )


def _accumulated(compute: Callable, params, mutable: dict, batch: Batch, key, count: int):
    """((loss, mutable updates), grads) of the whole batch, from `count` micro-batches run
    one after another in a scan, so the activations of one micro-batch are live at a time.

    Each micro-batch's loss and gradients count by its share of the batch's weight: for a
    loss that is a weighted mean of per-example terms (`losses.weighted_mean`) the sum is
    the whole batch's loss and gradient, to float rounding. Dropout draws micro-batch j's
    masks from `fold_in(key, j)`; layers with batch statistics (BatchNorm) normalise each
    micro-batch by its own and update their running averages once per micro-batch, as
    gradient accumulation in PyTorch does."""
    micro = split_micro_batches(batch, count)
    total = jnp.maximum(jnp.sum(batch.weights), 1e-12)  # as `losses.weighted_mean` guards

    def one(carry, inputs):
        loss_sum, grad_sum, mutable = carry
        part, index = inputs
        key_j = jax.random.fold_in(key, index)
        (loss, updates), grads = jax.value_and_grad(compute, has_aux=True)(
            params, mutable, part, key_j
        )
        share = jnp.sum(part.weights) / total  # this micro-batch's part of the mean
        grad_sum = jax.tree.map(lambda s, g: s + share * g, grad_sum, grads)
        return (loss_sum + share * loss, grad_sum, {**mutable, **updates}), None

    zeros = jax.tree.map(jnp.zeros_like, params)
    start = (jnp.zeros((), jnp.float32), zeros, mutable)
    (loss, grads, mutable), _ = jax.lax.scan(one, start, (micro, jnp.arange(count)))
    return (loss, mutable), grads


def make_train_step(
    loss_fn: Callable, *, skip_nonfinite: bool = False, micro_batches: int = 1
) -> Callable[[TrainState, Batch], tuple[TrainState, dict]]:
    """`train_step(state, batch) -> (state, {"loss", "weight", "finite"})`.

    The dropout key is `fold_in(state.rng, state.step)`: a pure function of the run's seed and
    the step, so a resumed run draws the same masks as an uninterrupted one. `finite` says
    whether the loss and the gradient norm were finite; with `skip_nonfinite` a step where
    they were not leaves parameters, optimizer and statistics as they were (the step count
    still advances, so later dropout keys do not shift). `micro_batches` > 1 forms the
    gradient from that many micro-batches in turn, for 1/k of the activation memory
    (`_accumulated`); the batch must split into them evenly.
    """

    def train_step(state: TrainState, batch: Batch) -> tuple[TrainState, dict]:
        key = jax.random.fold_in(state.rng, state.step)

        def compute(params, mutable, batch, key):
            outputs, updates = state.apply_fn(
                {"params": params, **mutable},
                batch.inputs,
                batch.lengths,
                train=True,
                rngs={"dropout": key},
                mutable=list(mutable),  # e.g. batch_stats; [] returns an empty dict
            )
            return loss_fn(outputs, batch), updates

        if micro_batches > 1:
            (loss, updates), grads = _accumulated(
                compute, state.params, state.mutable, batch, key, micro_batches
            )
        else:
            (loss, updates), grads = jax.value_and_grad(compute, has_aux=True)(
                state.params, state.mutable, batch, key
            )
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

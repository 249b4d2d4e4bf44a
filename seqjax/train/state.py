"""`TrainState`: params, optimizer state, step and the run's PRNG key in one pytree."""

from __future__ import annotations

from typing import Any

import jax
from flax.training import train_state


class TrainState(train_state.TrainState):
    """Flax's TrainState plus the root PRNG key (dropout keys are `fold_in(rng, step)`) and
    mutable collections such as batch statistics (empty dict when a model has none)."""

    rng: jax.Array
    mutable: Any = None


def create_state(model, optimizer, sample_inputs, sample_lengths, *, seed: int) -> TrainState:
    """Initialise parameters from `seed`; the init key and the training key are split apart."""
    # Raw uint32 keys (not typed key arrays) so the key checkpoints like any other array.
    root = jax.random.PRNGKey(seed)
    init_key, train_key = jax.random.split(root)
    del root
    # Jitted: eager init dispatches (and compiles) each op of a forward pass on its own,
    # seconds more than one jitted call for each seed model, on every `seqjax train`,
    # `predict` and `evaluate`. The parameters drawn are the same bits, except trend's
    # attention query (drawn by `normal(0.02)`), within 4e-9.
    init = jax.jit(model.init, static_argnames="train")
    variables = init(init_key, sample_inputs, sample_lengths, train=False)
    params = variables.pop("params") if hasattr(variables, "pop") else variables["params"]
    mutable = {k: v for k, v in dict(variables).items() if k != "params"}
    return TrainState.create(
        apply_fn=model.apply, params=params, tx=optimizer, rng=train_key, mutable=mutable
    )

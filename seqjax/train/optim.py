"""The Optax chain from `OptimizerConfig`, with the learning rate injected so the host-side
reduce-on-plateau schedule can change it between epochs without recompiling."""

from __future__ import annotations

import jax.numpy as jnp
import optax

from seqjax.config import OptimizerConfig


def make_optimizer(cfg: OptimizerConfig) -> optax.GradientTransformation:
    def chain(learning_rate):
        parts = []
        if cfg.clip_norm > 0:
            parts.append(optax.clip_by_global_norm(cfg.clip_norm))
        if cfg.name == "adam":
            # torch.optim.Adam's weight_decay: L2 added to the (clipped) gradient.
            if cfg.weight_decay > 0:
                parts.append(optax.add_decayed_weights(cfg.weight_decay))
            parts.append(optax.adam(learning_rate))
        else:
            parts.append(optax.adamw(learning_rate, weight_decay=cfg.weight_decay))
        return optax.chain(*parts)

    return optax.inject_hyperparams(chain)(learning_rate=cfg.lr)


def learning_rate(opt_state) -> float:
    return float(opt_state.hyperparams["learning_rate"])


def with_learning_rate(opt_state, lr: float):
    """A copy of an injected-hyperparameter optimizer state with a new learning rate."""
    hyper = dict(opt_state.hyperparams)
    hyper["learning_rate"] = jnp.asarray(lr, dtype=jnp.asarray(hyper["learning_rate"]).dtype)
    return opt_state._replace(hyperparams=hyper)

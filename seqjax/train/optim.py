"""The Optax chain from `OptimizerConfig`.

Layout: inject_hyperparams(multi_transform({train: clip -> decay -> adam -> plateau scale,
frozen: zero})). The learning rate (constant or a warmup-cosine schedule of the step) and
a `plateau_scale` are injected hyperparameters, so the host-side reduce-on-plateau can
change the rate between epochs without recompiling, and both live in the optimizer state
that checkpoints carry. Scaling Adam's update by `plateau_scale` is exactly scaling its
learning rate (and AdamW's decoupled decay with it, as PyTorch's schedulers do).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

from seqjax.config import OptimizerConfig


def param_path(path) -> str:
    """'lstm1/l0/kernel_ih' style name of a parameter from its pytree key path."""
    return "/".join(str(getattr(k, "key", getattr(k, "name", k))) for k in path)


def freeze_labels(params, prefixes: tuple[str, ...]):
    """'frozen' for parameters whose path starts with a prefix, else 'train'.

    A prefix that matches nothing is an error: a typo would otherwise train everything.
    """
    paths = [param_path(p) for p, _ in jax.tree_util.tree_leaves_with_path(params)]
    for prefix in prefixes:
        if not any(p.startswith(prefix) for p in paths):
            raise ValueError(
                f"optimizer.freeze prefix {prefix!r} matches no parameter; parameters: {paths}"
            )
    return jax.tree_util.tree_map_with_path(
        lambda p, _: "frozen" if param_path(p).startswith(tuple(prefixes)) else "train", params
    )


def lr_schedule(cfg: OptimizerConfig, total_steps: int):
    if cfg.schedule == "constant":
        return cfg.lr
    decay = cfg.decay_steps or total_steps
    return optax.warmup_cosine_decay_schedule(
        init_value=0.0,
        peak_value=cfg.lr,
        warmup_steps=cfg.warmup_steps,
        decay_steps=max(decay, cfg.warmup_steps + 1),
        end_value=cfg.lr * cfg.end_lr_factor,
    )


def make_optimizer(cfg: OptimizerConfig, total_steps: int = 1) -> optax.GradientTransformation:
    def chain(learning_rate, plateau_scale):
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
        parts.append(optax.scale(plateau_scale))
        train = optax.chain(*parts)
        if not cfg.freeze:
            return train
        return optax.multi_transform(
            {"train": train, "frozen": optax.set_to_zero()},
            lambda params: freeze_labels(params, cfg.freeze),
        )

    return optax.inject_hyperparams(chain)(
        learning_rate=lr_schedule(cfg, total_steps), plateau_scale=1.0
    )


def learning_rate(opt_state) -> float:
    """The effective rate of the last update: schedule value x plateau scale."""
    hyper = opt_state.hyperparams
    return float(hyper["learning_rate"]) * float(hyper["plateau_scale"])


def scale_learning_rate(opt_state, factor: float):
    """A copy of the optimizer state whose plateau scale is multiplied by `factor`."""
    hyper = dict(opt_state.hyperparams)
    old = jnp.asarray(hyper["plateau_scale"])
    hyper["plateau_scale"] = (old * factor).astype(old.dtype)
    return opt_state._replace(hyperparams=hyper)

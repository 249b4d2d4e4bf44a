"""A seed model inside Flax NNX, through `flax.nnx.bridge.ToNNX`, BatchNorm included: its
running statistics are Linen's `batch_stats` collection, which NNX holds as `BatchStat`
variables and updates only when the training call says `mutable=["batch_stats"]`."""

import jax.numpy as jnp
import numpy as np
from flax import nnx
from flax.nnx import bridge

from benchmarks.side_by_side import max_abs_diff
from seqjax.config import load_config
from seqjax.models import build_model

# steel with BatchNorm on its pooled features, small, without dropout: a training call's
# statistics then depend on the batch alone and compare exactly with Linen's
SETTINGS = [
    "model.normalization=batch",
    "model.hidden_size=32",
    "model.classifier_dims=[8]",
    "model.dropout=0.0",
    "model.classifier_dropout=0.0",
]


def test_a_batchnorm_model_updates_its_statistics_as_linen_does():
    cfg = load_config("configs/steel_standard.yaml", SETTINGS)
    model = build_model(cfg.model_name, cfg.model)
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.standard_normal((8, 30, 5)), jnp.float32)  # (B, T, F)
    lengths = jnp.arange(8, dtype=jnp.int32) * 3 + 5  # (B,) 5..26
    wrapped = bridge.ToNNX(model, rngs=nnx.Rngs(0, dropout=1))
    bridge.lazy_init(wrapped, x, lengths)
    params = nnx.to_pure_dict(nnx.state(wrapped, nnx.Param))
    stats = nnx.to_pure_dict(nnx.state(wrapped, nnx.BatchStat))  # {"norm": {mean, var}}
    assert set(stats) == {"norm"}

    logits = wrapped(x, lengths, train=True, mutable=["batch_stats"])  # (B,)
    variables = {"params": params, "batch_stats": stats}
    want, updates = model.apply(variables, x, lengths, train=True, mutable=["batch_stats"])
    assert max_abs_diff(logits, want) < 1e-6
    updated = nnx.to_pure_dict(nnx.state(wrapped, nnx.BatchStat))
    assert max_abs_diff(updated, stats) > 1e-3  # the running statistics moved
    assert max_abs_diff(updated, updates["batch_stats"]) < 1e-6  # as Linen's did

    evaluated = wrapped(x, lengths)  # the running statistics, as Linen's eval reads them
    want = model.apply({"params": params, "batch_stats": updated}, x, lengths)
    assert max_abs_diff(evaluated, want) < 1e-6
    unchanged = nnx.to_pure_dict(nnx.state(wrapped, nnx.BatchStat))
    assert max_abs_diff(unchanged, updated) == 0.0  # evaluation keeps them

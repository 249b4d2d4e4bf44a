"""Runs of one configuration in a process share their compiled steps: each train state is
built from the same model and optimizer objects (`initial_state`), so its tree structure,
which holds `model.apply` and the optimizer and compares them by identity, is the same
and `jax.jit` finds the steps it compiled for the first run."""

import jax

from seqjax.config import load_config
from seqjax.data.batch import make_batch
from seqjax.data.sources import load_splits
from seqjax.train.loop import initial_state, steps_for
from seqjax.train.sharding import make_mesh, replicate, shard_batch


def test_a_second_state_of_one_config_reuses_the_compiled_train_step():
    cfg = load_config("steel_lightweight", ["data.size=40"])
    train = load_splits(cfg.data)["train"]
    first, second = (initial_state(cfg, train, 10) for _ in range(2))
    assert jax.tree.structure(first) == jax.tree.structure(second)
    other = load_config("steel_lightweight", ["data.size=40", "optimizer.lr=0.5"])
    assert jax.tree.structure(initial_state(other, train, 10)) != jax.tree.structure(first)

    mesh = make_mesh()
    train_step, _ = steps_for(cfg, mesh)
    batch = shard_batch(make_batch(train.inputs[:4], train.lengths[:4], train.targets[:4]), mesh)
    train_step(replicate(first, mesh), batch)
    compiled = train_step._cache_size()
    train_step(replicate(second, mesh), batch)
    assert train_step._cache_size() == compiled  # the second run compiled nothing

"""`train.micro_batches`: a train step whose gradient comes from k micro-batches of its
batch, run one after another (seqjax/train/step.py). Without dropout or batch statistics it
makes the whole batch's update, padding rows (weight 0) included; running statistics thread
through the micro-batches in turn; under a mesh of two devices the micro-batches stay
split over both, with no collective but the gradients' sums."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from benchmarks.side_by_side import max_abs_diff
from seqjax.config import TrainConfig
from seqjax.data.batch import make_batch
from seqjax.layers import LSTM
from seqjax.tasks import get_task
from seqjax.train.sharding import check_micro_batches, make_mesh
from seqjax.train.state import create_state
from seqjax.train.step import make_train_step, split_micro_batches
from tests.cpu_devices_subprocess import run_on_cpu_devices

B, T, F = 8, 6, 3


class Scorer(nn.Module):
    """An LSTM and a linear head on its last states; with `norm`, a BatchNorm before it."""

    norm: bool = False

    @nn.compact
    def __call__(self, x, lengths, train: bool = False):
        if self.norm:
            x = nn.BatchNorm(use_running_average=not train)(x)
        _, (h_n, _) = LSTM(5)(x, lengths)
        return nn.Dense(1)(h_n[-1])[:, 0]  # (B,) logits


def _batch(weights):
    rng = np.random.default_rng(0)
    inputs = rng.standard_normal((B, T, F)).astype(np.float32)
    lengths = np.array([6, 2, 5, 1, 6, 3, 4, 6], np.int32)
    targets = (rng.random(B) > 0.5).astype(np.float32)
    return make_batch(inputs, lengths, targets, np.asarray(weights, np.float32))


def _one_step(model, batch, micro_batches):
    state = create_state(model, optax.adam(0.1), batch.inputs[:1], batch.lengths[:1], seed=0)
    loss = get_task("binary_cross_entropy").loss
    step = jax.jit(make_train_step(loss, micro_batches=micro_batches))
    return step(state, batch)


def test_micro_batches_make_the_whole_batchs_update():
    """Padding rows (weight 0) fall unevenly on the micro-batches (rows j, j + 4 are
    micro-batch j of 4, with weights 2, 1, 1, 1 of them): each counts by its weight, so
    the loss, gradients and updated parameters are the whole batch's."""
    batch = _batch([1, 1, 1, 1, 1, 0, 0, 0])
    assert [float(w.sum()) for w in split_micro_batches(batch, 4).weights] == [2, 1, 1, 1]
    whole, whole_metrics = _one_step(Scorer(), batch, 1)
    for count in (2, 4):
        state, metrics = _one_step(Scorer(), batch, count)
        assert abs(float(metrics["loss"] - whole_metrics["loss"])) < 1e-6
        assert float(metrics["weight"]) == 5.0 and bool(metrics["finite"])
        diff = max_abs_diff(state.params, whole.params)
        assert diff < 1e-6, (count, diff)
    # and the step moved every parameter, so equal updates are not both nothing
    start = create_state(Scorer(), optax.adam(0.1), batch.inputs[:1], batch.lengths[:1], seed=0)
    assert all(
        float(jnp.max(jnp.abs(a - b))) > 1e-3
        for a, b in zip(jax.tree.leaves(whole.params), jax.tree.leaves(start.params), strict=True)
    )


def test_running_statistics_pass_through_the_micro_batches_in_turn():
    """BatchNorm normalises each micro-batch by its own statistics and updates its running
    averages once per micro-batch: the step's statistics equal those of applying the model
    to micro-batches 0 and 1 one after the other."""
    batch = _batch(np.ones(B))
    model = Scorer(norm=True)
    start = create_state(model, optax.adam(0.1), batch.inputs[:1], batch.lengths[:1], seed=0)
    state, _ = _one_step(model, batch, 2)
    stats = start.mutable
    for part in (jax.tree.map(lambda a, j=j: a[j], split_micro_batches(batch, 2)) for j in (0, 1)):
        _, stats = model.apply(
            {"params": start.params, **stats}, part.inputs, part.lengths, train=True,
            mutable=["batch_stats"],
        )  # fmt: skip
    assert max_abs_diff(state.mutable, stats) < 1e-6
    whole, _ = _one_step(model, batch, 1)  # one update of the averages from the whole batch
    assert max_abs_diff(state.mutable, whole.mutable) > 1e-3


def test_bad_micro_batch_counts_are_named():
    with pytest.raises(ValueError, match="train.micro_batches must be >= 1; got 0"):
        TrainConfig(micro_batches=0)
    mesh = make_mesh(jax.devices()[:1])
    check_micro_batches(32, 4, mesh)
    with pytest.raises(ValueError, match=r"batch_size 32 does not split into .*=3 .*of 3"):
        check_micro_batches(32, 3, mesh)


SCRIPT = """
import json
import jax, numpy as np
from jax.sharding import AxisType, PartitionSpec as P
from seqjax.config import load_config
from seqjax.data.dataset import iterate_batches
from seqjax.data.sources import load_splits
from seqjax.models import build_model
from seqjax.train.loop import check_trainable, steps_for
from seqjax.train.optim import make_optimizer
from seqjax.train.sharding import make_mesh, replicate, shard_batch
from seqjax.train.state import create_state
from seqjax.train.step import make_train_step
from seqjax.tasks import get_task

def head(params):  # the first 50 values of each parameter
    return [np.asarray(p).ravel()[:50].tolist() for p in jax.tree.leaves(params)]

out = {}
for micro in (1, 2):
    settings = ["data.size=200", "model.dropout=0.0", "train.batch_size=8",
                f"train.micro_batches={micro}"]
    cfg = load_config("configs/trust.yaml", settings)
    splits = load_splits(cfg.data)
    train = splits["train"]
    mesh = make_mesh(jax.devices())
    check_trainable(cfg, splits, mesh)
    state = create_state(build_model(cfg.model_name, cfg.model), make_optimizer(cfg.optimizer),
                         train.inputs[:1], train.lengths[:1], seed=0)
    state = replicate(state, mesh)
    step, _ = steps_for(cfg, mesh)
    host_batch = next(iterate_batches(train, 8, shuffle=False))
    if micro == 2:  # first on a mesh with explicit axes, the batch's split in its type
        explicit = jax.make_mesh((2,), ("data",), axis_types=(AxisType.Explicit,))
        with jax.set_mesh(explicit):
            own_step = jax.jit(make_train_step(get_task(cfg.train.loss).loss, micro_batches=2))
            done, _ = own_step(jax.device_put(state, P()), jax.device_put(host_batch, P("data")))
            out["explicit"] = head(done.params)
    batch = shard_batch(host_batch, mesh)
    compiled = step.lower(state, batch).compile()  # read, then run: compiled once
    hlo = compiled.as_text()
    state, metrics = compiled(state, batch)
    out[micro] = {
        "loss": float(metrics["loss"]),
        "params": head(state.params),
        "gathers": sum(hlo.count(op) for op in ("all-gather", "all-to-all", "collective-permute")),
        "sums": hlo.count("all-reduce"),
    }
a, b = out[1], out[2]
def largest(x, y):
    return max(float(np.max(np.abs(np.subtract(p, q)))) for p, q in zip(x, y))

diff, on_explicit = largest(a["params"], b["params"]), largest(a["params"], out["explicit"])
print(json.dumps({"loss": [a["loss"], b["loss"]], "param_diff": diff, "explicit_diff": on_explicit,
                  "gathers": [a["gathers"], b["gathers"]], "sums": [a["sums"], b["sums"]]}))
"""


def test_on_two_devices_each_micro_batch_stays_split_over_both():
    """The trust config (dropout off) through `check_trainable` and `steps_for` with
    `train.micro_batches=2` on two CPU devices: the one-micro-batch step's loss and update,
    and as in that step, nothing gathered or permuted between the devices; the same update
    from the step jitted on a mesh with explicit axes."""
    out = run_on_cpu_devices(SCRIPT)
    (whole, split), diff = out["loss"], out["param_diff"]
    assert abs(whole - split) < 1e-6 and diff < 1e-6 and out["explicit_diff"] < 1e-6, out
    assert out["gathers"] == [0, 0] and min(out["sums"]) > 0, out

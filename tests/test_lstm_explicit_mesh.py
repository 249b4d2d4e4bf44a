"""The LSTM and a seed model on a mesh with explicit axes (`jax.make_mesh`'s default, used
with `jax.set_mesh`), whose array types carry their sharding: the batch split over two CPU
devices gives one device's loss and gradients, for the scan's variants, under
`jax.set_mesh` and (default) with arrays merely placed on the mesh, and for the trend
model in training, dropout on.

Before, each of them, and each of the five seed models, failed to trace there: the zero
initial carry had no sharding while the steps computed from the split batch did ("scan
body function carry input and carry output must have equal types"), the weight gradients'
contraction over the split batch was "ambiguous", the chunked projection's padding had no
sharding, and Linen's Dropout drew its mask without one. A subprocess, so XLA sees two
devices before JAX starts."""

from tests.cpu_devices_subprocess import run_on_cpu_devices

SCRIPT = """
import json
import jax, jax.numpy as jnp, numpy as np
from jax.sharding import AxisType, NamedSharding, PartitionSpec as P
from seqjax.config import load_config
from seqjax.data.batch import make_batch
from seqjax.data.sources import load_splits
from seqjax.layers import LSTM
from seqjax.models import build_model
from seqjax.tasks import get_task

mesh = jax.make_mesh((2,), ("data",), axis_types=(AxisType.Explicit,))
rng = np.random.default_rng(0)
x = rng.standard_normal((4, 10, 3)).astype(np.float32)  # (B, T, F)
lengths = np.array([10, 3, 0, 7], np.int32)
h0 = 0.1 * rng.standard_normal((2, 2, 4, 8)).astype(np.float32)  # (h, c) x (D, B, H)

def largest_difference(a, b):
    pairs = zip(jax.tree.leaves(a), jax.tree.leaves(b))
    return max(float(jnp.max(jnp.abs(p - q))) for p, q in pairs)

out = {}
variants = {  # each a path of its own: the carry, chunks padded in time, rows sorted per shard
    "default": {}, "remat_chunk": {"remat_chunk": 3}, "length_groups": {"length_groups": 2},
}
for name, options in variants.items():
    model = LSTM(8, bidirectional=True, **options)
    variables = jax.jit(model.init)(jax.random.key(1), x, lengths)  # jitted: eager is slower

    def loss(v, x, n, h0):
        y, (h, c) = model.apply(v, x, n, initial_state=(h0[0], h0[1]))
        return jnp.sum(y**2) + jnp.sum(h) + 0.5 * jnp.sum(c)

    grad = jax.jit(jax.value_and_grad(loss, argnums=(0, 1, 3)))
    want = grad(variables, x, lengths, h0)
    with jax.set_mesh(mesh):
        split = [jax.device_put(a, P("data")) for a in (x, lengths)]
        got = grad(jax.device_put(variables, P()), *split, h0)
    out[name] = [largest_difference(got, want)]
    if name == "default":  # arrays placed on the mesh, without jax.set_mesh
        placed = [jax.device_put(a, NamedSharding(mesh, P("data"))) for a in (x, lengths)]
        got = grad(jax.device_put(variables, NamedSharding(mesh, P())), *placed, h0)
        out["placed"] = [largest_difference(got, want)]

tiny = {  # dropout between its LSTM's layers and after its attention pool; (B, 2, 2) targets
    "trend": ("trend", ["data.size=10", "model.hidden_size=8", "model.head_dim=8"]),
}
for name, (config, overrides) in tiny.items():
    cfg = load_config(f"configs/{config}.yaml", overrides)
    train = load_splits(cfg.data)["train"]
    batch = make_batch(train.inputs[:4], train.lengths[:4], train.targets[:4])
    model = build_model(cfg.model_name, cfg.model)
    variables = jax.jit(model.init)(jax.random.key(0), batch.inputs, batch.lengths)
    task = get_task(cfg.train.loss)

    def loss(params, batch):  # in training: dropout on, between the LSTMs' layers too
        outputs = model.apply(
            {**variables, "params": params}, batch.inputs, batch.lengths, train=True,
            rngs={"dropout": jax.random.key(3)},
        )
        return task.loss(outputs, batch)

    grad = jax.jit(jax.value_and_grad(loss))
    want = grad(variables["params"], batch)
    with jax.set_mesh(mesh):
        split = jax.tree.map(lambda a: jax.device_put(a, P("data")), batch)
        got = grad(jax.device_put(variables["params"], P()), split)
    out[name] = [largest_difference(got, want)]
print(json.dumps(out))
"""


def test_a_batch_split_on_an_explicit_mesh_gives_one_devices_loss_and_gradients():
    out = run_on_cpu_devices(SCRIPT)
    assert len(out) == 5, sorted(out)
    for name, differences in out.items():
        assert max(differences) < 1e-5, (name, differences)

"""The LSTM in a plain `jax.jit` whose weights lie on a mesh of CPU devices, as after
training with `mesh.cpu_devices=2`, fed rows that are not split over it: one sequence,
an odd batch, a batch on no device yet. Each must give one device's values. Before the fix
the length-grouped path sorted such rows whole and unsorted them per shard: a batch of 4
came back with values 0.59 off, and 1 or 3 rows failed in shard_map. A subprocess, so
XLA sees two devices before JAX starts."""

from tests.cpu_devices_subprocess import run_on_cpu_devices

SCRIPT = """
import json
import jax, jax.numpy as jnp, numpy as np
from seqjax.layers import LSTM
from seqjax.train.sharding import data_sharding, make_mesh, replicated

mesh = make_mesh(jax.devices())
model = LSTM(4, bidirectional=True)  # T=128 on CPU: length groups by default
rng = np.random.default_rng(0)
x = rng.standard_normal((4, 128, 2)).astype(np.float32)  # (B, T, F)
lengths = np.array([128, 70, 101, 33], np.int32)
variables = jax.jit(model.init)(jax.random.key(0), x, lengths)

def loss(v, x, n):
    y, (h_n, c_n) = model.apply(v, x, n)
    return jnp.sum(y**2) + jnp.sum(h_n) + jnp.sum(c_n), y

step = jax.jit(jax.value_and_grad(loss, has_aux=True))
on_mesh = jax.device_put(variables, replicated(mesh))
out = {"groups": model.bind(variables)._length_groups(128, x, False)}
for rows in (1, 3, 4):
    (_, want), want_g = step(variables, x[:rows], lengths[:rows])
    (_, y), g = step(on_mesh, x[:rows], lengths[:rows])
    diff = jax.tree.map(lambda a, b: float(jnp.max(jnp.abs(a - b))), g, want_g)
    out[f"rows_{rows}"] = [float(jnp.max(jnp.abs(y - want))), max(jax.tree.leaves(diff))]
(_, want), _ = step(variables, x, lengths)
dat = data_sharding(mesh)
(_, y), _ = step(on_mesh, jax.device_put(x, dat), jax.device_put(lengths, dat))
out["split_rows"] = [float(jnp.max(jnp.abs(y - want))), len(y.sharding.device_set)]
print(json.dumps(out))
"""


def test_rows_not_split_over_the_weights_mesh_give_one_devices_values():
    out = run_on_cpu_devices(SCRIPT)
    assert out["groups"] > 1  # the path that sorts rows
    for rows in (1, 3, 4):
        output_diff, grad_diff = out[f"rows_{rows}"]
        assert output_diff < 1e-5 and grad_diff < 1e-4, (rows, output_diff, grad_diff)
    output_diff, devices = out["split_rows"]  # a batch split over the mesh stays split
    assert output_diff < 1e-5 and devices == 2

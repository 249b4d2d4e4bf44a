"""Run in a subprocess with 8 fake CPU devices. `training`: the same tiny training on a
1-device mesh and an 8-device mesh, printing both histories and what the 8-device arrays
look like. `layers`: the LSTM's paths per shard, against one device, and the collectives
XLA puts in their training steps."""

import json
import os
import sys
import tempfile

assert "--xla_force_host_platform_device_count=8" in os.environ.get("XLA_FLAGS", "")

import jax  # noqa: E402

from seqjax.config import load_config  # noqa: E402
from seqjax.data.dataset import iterate_batches  # noqa: E402
from seqjax.data.sources import load_splits  # noqa: E402
from seqjax.train.checkpoint import Checkpointer  # noqa: E402
from seqjax.train.loop import fit  # noqa: E402
from seqjax.train.sharding import make_mesh, shard_batch  # noqa: E402


def per_shard_check() -> dict:
    """`per_shard` under a jitted step traced on the 8-device mesh: each shard's function
    sees its own 4 rows, and the values and weight gradients equal the unsharded ones."""
    import jax.numpy as jnp
    import numpy as np

    from seqjax.layers import LSTM
    from seqjax.layers.per_shard import per_shard
    from seqjax.train.sharding import data_sharding, on_mesh

    mesh = make_mesh(jax.devices())
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.standard_normal((32, 40, 3)), jnp.float32)  # (B, T, F)
    lengths = jnp.asarray(rng.integers(1, 41, 32), jnp.int32)
    dat = data_sharding(mesh)
    out = {"per_shard_rows_seen": [], "per_shard_output_diff": 0.0, "per_shard_grad_diff": 0.0}
    # the projected-input VJP, the rematerialised one, and the first vmapped over directions
    for remat_chunk, fused in ((0, False), (3, False), (0, True)):
        model = LSTM(
            6, bidirectional=True, backend="scan", remat_chunk=remat_chunk, fused_directions=fused
        )
        variables = jax.jit(model.init)(jax.random.key(0), x, lengths)

        def kernel(x, lengths, variables, model=model):
            out["per_shard_rows_seen"].append(x.shape[0])
            return (model.apply(variables, x, lengths)[0],)

        def loss(variables, x, lengths, kernel=kernel):
            (y,) = per_shard(kernel, (0, 0, None), (0,))(x, lengths, variables)
            return jnp.sum(y**2), y

        step = jax.value_and_grad(loss, has_aux=True)
        (_, y), grads = jax.jit(on_mesh(step, mesh))(
            variables, jax.device_put(x, dat), jax.device_put(lengths, dat)
        )
        (_, y_1), grads_1 = jax.jit(step)(variables, x, lengths)
        diffs = jax.tree.map(lambda a, b: float(jnp.max(jnp.abs(a - b))), grads, grads_1)
        out["per_shard_output_diff"] = max(
            out["per_shard_output_diff"], float(jnp.max(jnp.abs(y - y_1)))
        )
        out["per_shard_grad_diff"] = max(out["per_shard_grad_diff"], *jax.tree.leaves(diffs))
    return out


def pallas_check() -> dict:
    """The fused Pallas backend (interpreted), in both layouts, in a data-parallel training
    step: it runs per shard (each shard's 4 rows padded to a kernel block), and its values
    and weight gradients equal the unsharded step's."""
    out: dict = {}
    for layout in ("rows", "units"):
        prefix = "pallas" if layout == "rows" else "pallas_units"
        out.update({f"{prefix}_{k}": v for k, v in _pallas_check(layout).items()})
    return out


def _pallas_check(layout: str) -> dict:
    import jax.numpy as jnp
    import numpy as np

    from seqjax.layers import LSTM
    from seqjax.train.sharding import data_sharding, on_mesh

    mesh = make_mesh(jax.devices())
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.standard_normal((32, 12, 3)), jnp.float32)  # (B, T, F)
    lengths = jnp.asarray(rng.integers(1, 13, 32), jnp.int32)
    model = LSTM(
        16, bidirectional=True, backend="pallas", pallas_interpret=True, pallas_layout=layout
    )
    variables = jax.jit(LSTM(16, bidirectional=True).init)(jax.random.key(0), x, lengths)

    def loss(v, x, lengths):
        y = model.apply(v, x, lengths)[0]
        return jnp.sum(y**2), y

    step = jax.value_and_grad(loss, has_aux=True)
    dat = data_sharding(mesh)
    sharded = jax.jit(on_mesh(step, mesh))
    (_, y), grads = sharded(variables, jax.device_put(x, dat), jax.device_put(lengths, dat))
    (_, y_1), grads_1 = jax.jit(step)(variables, x, lengths)
    diffs = jax.tree.map(lambda a, b: float(jnp.max(jnp.abs(a - b))), grads, grads_1)
    return {
        "output_diff": float(jnp.max(jnp.abs(y - y_1))),
        "grad_diff": max(jax.tree.leaves(diffs)),
        "output_shards": len(y.sharding.device_set),
    }


def length_groups_check() -> dict:
    """Length groups on 8 devices: each shard sorts and groups its own 4 rows, in a step
    traced under the mesh (the engine's way) and in a plain jit of arrays placed on it
    (the README's); values and weight gradients equal one device's plain padded loop."""
    import jax.numpy as jnp
    import numpy as np

    from seqjax.layers import LSTM
    from seqjax.train.sharding import data_sharding, on_mesh, replicated

    mesh = make_mesh(jax.devices())
    rng = np.random.default_rng(1)
    x = jnp.asarray(rng.standard_normal((32, 30, 3)), jnp.float32)  # (B, T, F)
    lengths = jnp.asarray(rng.integers(1, 31, 32), jnp.int32)
    plain = LSTM(8, num_layers=2, bidirectional=True, length_groups=1)
    grouped = LSTM(8, num_layers=2, bidirectional=True, length_groups=3)
    variables = jax.jit(plain.init)(jax.random.key(0), x, lengths)

    def step(model):
        def loss(v, x, lengths):
            y = model.apply(v, x, lengths)[0]
            return jnp.sum(y**2), y

        return jax.value_and_grad(loss, has_aux=True)

    (_, want_y), want_g = jax.jit(step(plain))(variables, x, lengths)
    dat = data_sharding(mesh)
    args = (
        jax.device_put(variables, replicated(mesh)),
        *(jax.device_put(a, dat) for a in (x, lengths)),
    )
    out = {}
    for name, fn in (("mesh", on_mesh(step(grouped), mesh)), ("plain_jit", step(grouped))):
        (_, y), g = jax.jit(fn)(*args)
        diffs = jax.tree.map(lambda a, b: float(jnp.max(jnp.abs(a - b))), g, want_g)
        out[f"length_groups_{name}_output_diff"] = float(jnp.max(jnp.abs(y - want_y)))
        out[f"length_groups_{name}_grad_diff"] = max(jax.tree.leaves(diffs))
        out[f"length_groups_{name}_shards"] = len(y.sharding.device_set)
    return out


def collectives_check() -> dict:
    """Which collectives XLA puts in a data-parallel LSTM training step, per backward path.

    Only the weight gradients should cross devices (all-reduce); an all-gather means some
    reshape merged the sharded batch axis with time and every device fetched the whole
    batch's activations."""
    import re

    import jax.numpy as jnp
    import numpy as np

    from seqjax.layers import LSTM
    from seqjax.train.sharding import data_sharding, replicated

    mesh = make_mesh(jax.devices())
    rng = np.random.default_rng(0)
    x = jax.device_put(
        jnp.asarray(rng.standard_normal((32, 40, 3)), jnp.float32), data_sharding(mesh)
    )
    lengths = jax.device_put(jnp.asarray(rng.integers(1, 41, 32), jnp.int32), data_sharding(mesh))
    found = {}
    for name, kw in {
        "in_step_projection": {},  # the default for F = 3 < H = 6 on CPU
        "chunked": {"projection_chunk": 16},
        "whole_projection": {"projection_chunk": 0},
        "remat": {"remat_chunk": 8},
        "length_groups": {"length_groups": 3},  # sorts each shard's rows, in a plain jit
    }.items():
        model = LSTM(6, bidirectional=True, backend="scan", **kw)
        variables = jax.device_put(
            jax.jit(model.init)(jax.random.key(0), x, lengths), replicated(mesh)
        )

        def loss(v, x, lengths, model=model):
            return jnp.sum(model.apply(v, x, lengths)[0] ** 2)

        hlo = jax.jit(jax.grad(loss)).lower(variables, x, lengths).compile().as_text()
        found[name] = sorted(
            set(re.findall(r" (all-gather|all-reduce|all-to-all|collective-permute)\(", hlo))
        )
    return {"lstm_train_collectives": found}


def training_check() -> dict:
    """A tiny trust training on 1 and on 8 devices, an Orbax round trip of the 8-device
    state, and the error for a batch the devices do not divide."""
    cfg = load_config(
        "configs/trust.yaml",
        [
            "data.size=400",
            "train.epochs=2",
            "model.hidden_sizes=[16, 8, 4]",
            "checkpoint.enabled=false",
        ],
    )
    splits = load_splits(cfg.data)
    out = {"device_count": jax.device_count()}
    for n in (1, 8):
        mesh = make_mesh(jax.devices()[:n])
        result = fit(cfg, splits, mesh=mesh, log=lambda _: None)
        out[f"history_{n}"] = result.history
        leaf = jax.tree.leaves(result.state.params)[0]
        out[f"param_devices_{n}"] = len(leaf.sharding.device_set)
        out[f"param_replicated_{n}"] = leaf.sharding.is_fully_replicated
        batch = shard_batch(next(iterate_batches(splits["train"], 32, shuffle=False)), mesh)
        out[f"batch_shard_rows_{n}"] = sorted(
            {s.data.shape[0] for s in batch.inputs.addressable_shards}
        )
    # Orbax round trip against an abstract target: same structure, values and shardings.
    with tempfile.TemporaryDirectory() as tmp:
        ckpt = Checkpointer(tmp, async_save=False)
        ckpt.save(1, result.state, {"epoch": 1})
        restored, loop = ckpt.restore(1, result.state)
        ckpt.close()
    pairs = list(zip(jax.tree.leaves(result.state), jax.tree.leaves(restored), strict=True))
    out["restore_same_structure"] = jax.tree.structure(result.state) == jax.tree.structure(restored)
    out["restore_same_shardings"] = all(a.sharding == b.sharding for a, b in pairs)
    out["restore_same_values"] = all(bool((a == b).all()) for a, b in pairs)
    out["restore_loop"] = loop
    odd = load_config("configs/trust.yaml", ["data.size=400", "train.batch_size=12"])
    try:
        fit(odd, splits, mesh=make_mesh(jax.devices()), log=lambda _: None)
    except ValueError as err:
        out["indivisible_batch_error"] = str(err)
    from seqjax.train.restore import scoring_config  # evaluate/predict --batch-size

    try:
        scoring_config(odd, 12)
    except ValueError as err:
        out["indivisible_scoring_error"] = str(err)
    out["divisible_scoring_batch"] = scoring_config(odd, 16).train.batch_size
    return out


def layers_check() -> dict:
    """The layer-level checks, in one process: each compiles programs of its own."""
    out = {"device_count": jax.device_count()}
    for check in (per_shard_check, pallas_check, length_groups_check, collectives_check):
        out.update(check())
    return out


if __name__ == "__main__":
    checks = {"training": training_check, "layers": layers_check}
    json.dump(checks[sys.argv[1]](), sys.stdout)

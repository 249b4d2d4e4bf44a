"""Run in a subprocess with 8 fake CPU devices: the same tiny training on a 1-device mesh
and an 8-device mesh, printing both histories and what the 8-device arrays look like."""

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


def main():
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
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()

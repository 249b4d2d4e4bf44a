"""Every seed system exported once with `jax.export` for a symbolic batch size and sequence
length, then run at its test split's own shape beside the jitted model.

    python experiments/export_systems.py [--out experiments/results/export_systems_cpu.json]

Why: a model served from an exported program should not need one export per batch size
and length; this checks that each system's program takes any, and how far its outputs
lie from the jitted model's (the hybrid's positional encoding is computed in float32
inside the program for a symbolic length, so it is the one expected to differ).
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import jax
import jax.numpy as jnp
from jax import export

from seqjax.config import load_config
from seqjax.data.sources import load_splits
from seqjax.environment import experiment_header
from seqjax.io import atomic_write_json
from seqjax.models import build_model

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIGS = ("trust", "steel_standard", "steel_bidirectional", "trend", "hybrid", "lstm_baseline")


def check(name: str, rows: int = 16) -> dict:
    """Export `configs/NAME.yaml`'s model for (b, t, F) inputs and compare it with the
    jitted model on `rows` test sequences at their padded length."""
    cfg = load_config(name)
    test = load_splits(cfg.data)["test"]
    model = build_model(cfg.model_name, cfg.model)
    variables = jax.jit(model.init)(jax.random.key(0), test.inputs[:2], test.lengths[:2])
    jitted = jax.jit(lambda v, x, n: model.apply(v, x, n))
    b, t = export.symbolic_shape("b, t")
    features = test.inputs.shape[-1]
    start = time.perf_counter()
    exported = export.export(jitted)(
        variables,
        jax.ShapeDtypeStruct((b, t, features), jnp.float32),
        jax.ShapeDtypeStruct((b,), jnp.int32),
    )
    export_seconds = time.perf_counter() - start
    x, lengths = test.inputs[:rows], test.lengths[:rows]
    got, want = exported.call(variables, x, lengths), jitted(variables, x, lengths)
    diff = max(
        float(jnp.max(jnp.abs(a - b)))
        for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want), strict=True)
    )
    return {
        "shape": list(x.shape),
        "max_abs_diff": diff,
        "export_seconds": round(export_seconds, 2),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--out", default=os.path.join(REPO, "experiments", "results", "export_systems_cpu.json")
    )
    args = parser.parse_args(argv)
    results = {}
    for name in CONFIGS:
        results[name] = check(name)
        print(name, results[name], flush=True)
    atomic_write_json(
        args.out,
        {
            **experiment_header("experiments/export_systems.py", argv or sys.argv[1:]),
            "systems": results,
        },
    )


if __name__ == "__main__":
    main()

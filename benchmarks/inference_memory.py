"""What one inference call of each seed system holds, as the number of rows in it grows.

    python -m benchmarks.inference_memory [--only steel ...] [--batches 32 4096] [--out PATH]

Why: a trained run's model called on a whole set at once (`seqjax.load_run(...)(inputs,
lengths)` before it ran in batches) holds every row's activations together: the recurrent
layers keep each step's gates of each row. This compiles each system's forward pass (its
default config, dropout off, randomly initialised: the weights' values do not change the
buffers) at each batch size and reads XLA's buffer assignment, arguments + outputs +
temporaries (`benchmarks.systems.compiled_bytes`), beside the seed target of 4 GB of
device memory. Nothing runs, so a batch far past the machine's memory is measured too.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from benchmarks import command_line
from benchmarks.systems import SYSTEMS, compiled_bytes
from seqjax.config import load_config
from seqjax.data.sources import load_splits
from seqjax.models import build_model

BATCHES = (1, 32, 256, 4096, 16384)
TARGET_BYTES = 4 * 2**30  # the seed systems' device memory target


def measure(config: str, batches: tuple[int, ...]) -> dict:
    """The compiled forward pass's bytes at each batch size, for `config`'s model and the
    longest sequences of its data."""
    cfg = load_config(config, [])
    test = load_splits(cfg.data)["test"]
    steps, features = test.inputs.shape[1:]
    model = build_model(cfg.model_name, cfg.model)
    variables = model.init(jax.random.key(0), test.inputs[:1], test.lengths[:1], train=False)
    forward = jax.jit(lambda v, x, n: model.apply(v, x, n, train=False))
    rows = {}
    for b in batches:
        x = jax.ShapeDtypeStruct((b, steps, features), jnp.float32)  # (B, T, F)
        n = jax.ShapeDtypeStruct((b,), jnp.int32)  # (B,)
        analysis = forward.lower(variables, x, n).compile().memory_analysis()
        figures = compiled_bytes(analysis)
        figures["within_target"] = figures["total_bytes"] < TARGET_BYTES
        rows[f"batch_{b}"] = figures
    return {"config": config, "input_shape": [int(steps), int(features)], "batches": rows}


def main(argv: list[str] | None = None) -> dict:
    parser = command_line.parser("benchmarks.inference_memory", __doc__)
    parser.add_argument("--only", choices=list(SYSTEMS), action="append")
    parser.add_argument("--batches", type=int, nargs="+", default=list(BATCHES))
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    if min(args.batches) < 1:
        parser.error(f"--batches must be >= 1; got {args.batches}")
    results = {}
    for name in args.only or list(SYSTEMS):
        results[name] = measure(SYSTEMS[name], tuple(args.batches))
        shown = ", ".join(
            f"{b.removeprefix('batch_')}: {r['total_bytes'] / 2**20:,.1f} MiB"
            for b, r in results[name]["batches"].items()
        )
        print(f"[{name}] forward pass by batch size: {shown}", flush=True)
    fields = {"target_bytes": TARGET_BYTES, "systems": results}
    return command_line.save_results("inference_memory", argv, args.out, fields)


if __name__ == "__main__":
    main()

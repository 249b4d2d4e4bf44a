"""A trained run's model (`seqjax.load_run`) scoring its test split on one device and on a
mesh of every device, side by side.

    python -m benchmarks.load_run_mesh RUN_DIR [--repeats 7] [--batch-size N] [--out PATH]

Why: `load_run(run_dir)` puts the model on one device, and one XLA CPU device runs a
recurrence on one core; `load_run(run_dir, mesh=make_mesh())` splits each call's rows over
the mesh, one device per core on a CPU (this tool shows the CPU as one device per core
before JAX starts) or every GPU of the host. Both score the same calls of the run's test
split in interleaved rounds (`benchmarks.timing.time_interleaved`), and their predictions
are checked against each other first. Make a run to time with, e.g., `seqjax train
--config steel_standard --run-dir runs/steel --set train.epochs=1` (the weights' values do
not change the time).
"""

from __future__ import annotations

import os

import jax

from benchmarks import command_line


def main(argv: list[str] | None = None) -> dict:
    parser = command_line.parser("benchmarks.load_run_mesh", __doc__)
    parser.add_argument("run_dir")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--batch-size", type=int, default=None, help="default the run's")
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    try:  # before JAX starts its backends; a GPU machine's GPUs are its devices anyway
        jax.config.update("jax_num_cpu_devices", os.cpu_count() or 1)
    except RuntimeError:
        pass  # already started (a test's process): its devices, as they are
    import numpy as np

    from benchmarks.timing import time_interleaved
    from seqjax.data.sources import load_splits
    from seqjax.train.sharding import make_mesh
    from seqjax.trained import load_run

    one = load_run(args.run_dir)
    mesh = make_mesh(jax.local_devices())
    spread = load_run(args.run_dir, mesh=mesh)
    test = load_splits(one.config.data, one.config.train.loss)["test"]
    calls = {
        "one_device": lambda: one(test.inputs, test.lengths, batch_size=args.batch_size),
        "mesh": lambda: spread(test.inputs, test.lengths, batch_size=args.batch_size),
    }
    diff = float(np.abs(calls["one_device"]() - calls["mesh"]()).max())
    if diff > 1e-5:
        raise SystemExit(f"the mesh's predictions differ from one device's by {diff:.2e}")
    timings = time_interleaved(calls, repeats=args.repeats)
    speedup = timings["one_device"]["median_ms"] / timings["mesh"]["median_ms"]
    print(
        f"{args.run_dir}: {len(test)} test sequences in "
        f"{timings['one_device']['median_ms']:.1f} ms on one device, "
        f"{timings['mesh']['median_ms']:.1f} ms on {mesh.devices.size} ({speedup:.2f}x)",
        flush=True,
    )
    fields = {
        "run_dir": args.run_dir,
        "config": one.config.model_name,
        "sequences": len(test),
        "input_shape": list(test.inputs.shape[1:]),
        "batch_size": args.batch_size or one.config.train.batch_size,
        "mesh_devices": int(mesh.devices.size),
        "max_abs_diff": diff,
        "timings": timings,
        "mesh_speedup": speedup,
    }
    return command_line.save_results("load_run_mesh", argv, args.out, fields)


if __name__ == "__main__":
    main()

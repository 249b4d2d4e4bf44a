"""Memory of one training step at T = 10,000, with and without rematerialising the recurrence.

    python -m benchmarks.long_sequence [--steps 10000] [--chunk 100] [--out PATH]

Each mode runs in its own subprocess so the process's peak RSS belongs to that mode alone.
The model is steel's LSTM stack (B=32, F=5, H=128, 2 layers, bidirectional, lengths from
T/5 to T) under a mean-of-outputs loss; the step is `jax.grad` of that loss, jitted. The
4 GB target of the seeds applies to device memory: on a GPU the figure is the device's peak
bytes; on CPU it is XLA's compiled temp + argument bytes and, conservatively, the peak RSS.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks import command_line
from benchmarks.timing import environment, peak_rss_bytes
from seqjax.layers import LSTM

BATCH, FEATURES, HIDDEN, LAYERS = 32, 5, 128, 2
GB = 1024**3


def one_mode(steps: int, chunk: int, backend: str) -> dict:
    """Compile and run one training step; return its memory and time figures."""
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.normal(size=(BATCH, steps, FEATURES)), jnp.float32)  # (B, T, F)
    lengths = jnp.asarray(rng.integers(steps // 5, steps + 1, BATCH).astype(np.int32))
    lengths = lengths.at[0].set(steps)
    model = LSTM(HIDDEN, num_layers=LAYERS, bidirectional=True, remat_chunk=chunk, backend=backend)
    params = jax.jit(model.init)(jax.random.key(0), x[:, :8], jnp.minimum(lengths, 8))

    def loss(p):
        y, _ = model.apply(p, x, lengths)  # (B, T, 2H)
        return jnp.mean(y)

    grad = jax.jit(jax.grad(loss))
    compiled = grad.lower(params).compile()
    analysis = compiled.memory_analysis()
    start = time.perf_counter()
    jax.block_until_ready(compiled(params))
    first = time.perf_counter() - start
    start = time.perf_counter()
    jax.block_until_ready(compiled(params))
    second = time.perf_counter() - start
    stats = jax.devices()[0].memory_stats() or {}
    return {
        "remat_chunk": chunk,
        "backend": backend,
        "step_s": second,
        "first_step_s": first,
        "xla_temp_bytes": getattr(analysis, "temp_size_in_bytes", None),
        "xla_argument_bytes": getattr(analysis, "argument_size_in_bytes", None),
        "device_peak_bytes": stats.get("peak_bytes_in_use"),
        "process_peak_rss_bytes": peak_rss_bytes(),
    }


def main(argv: list[str] | None = None) -> None:
    parser = command_line.parser("benchmarks.long_sequence", __doc__)
    parser.add_argument("--steps", type=int, default=10_000)
    parser.add_argument("--chunk", type=int, default=100)
    parser.add_argument("--out", default=None)
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)  # BACKEND:CHUNK
    args = parser.parse_args(argv)
    if args.child is not None:
        backend, chunk = args.child.split(":")
        print(json.dumps(one_mode(args.steps, int(chunk), backend)))
        return
    modes = []
    # The scan with and without remat; on a CUDA GPU also cuDNN, which has no remat.
    runs = [("scan", 0), ("scan", args.chunk)]
    if jax.default_backend() == "gpu":
        runs.append(("cudnn", 0))
    for backend, chunk in runs:
        cmd = [sys.executable, "-m", "benchmarks.long_sequence", "--steps", str(args.steps)]
        proc = subprocess.run(
            [*cmd, "--child", f"{backend}:{chunk}"], capture_output=True, text=True, check=False
        )
        if proc.returncode != 0:
            error = proc.stderr.strip()[-2000:]
            modes.append({"remat_chunk": chunk, "backend": backend, "error": error})
        else:
            modes.append(json.loads(proc.stdout.strip().splitlines()[-1]))
        row = modes[-1]
        mem = row.get("device_peak_bytes") or row.get("process_peak_rss_bytes") or 0
        print(
            f"{backend:5} remat_chunk {chunk:4d}: "
            + (
                f"step {row['step_s']:.2f} s, XLA temp {row['xla_temp_bytes'] / GB:.2f} GB, "
                f"peak {mem / GB:.2f} GB"
                if "error" not in row
                else "failed: " + row["error"].splitlines()[-1]
            )
        )
    env = environment()
    result = {
        "command": command_line.command("benchmarks.long_sequence", argv),
        "environment": env,
        "config": {
            "batch": BATCH,
            "steps": args.steps,
            "features": FEATURES,
            "hidden": HIDDEN,
            "layers": LAYERS,
            "bidirectional": True,
        },
        "target_gb": 4.0,
        "modes": modes,
    }
    out = args.out or command_line.results_path("long_sequence")
    command_line.write_result(out, result)


if __name__ == "__main__":
    main()

"""How the LSTM's step time scales with sequence length, batch and hidden size.

    python -m benchmarks.scaling [--repeats 5] [--out-dir benchmarks/results]

One unidirectional layer (F = 32, full-length sequences), inference (forward) and training
(forward + backward of a sum of the outputs), each jitted. Three sweeps from the reference
point B = 32, T = 100, H = 128: T 100 -> 2,000, B 1 -> 512, H 32 -> 512.

The per-step recurrence cost is the step time divided by T. Its hardware limit is estimated
as the recurrent matmul's FLOPs per step (2 B H 4H forward; three times that for training:
forward, dh and dW_hh) divided by the matmul throughput this device actually reaches on a
large square float32 matmul, measured in the same run. Nothing else (gates, the input
projection, launch and loop overhead) is in the limit, so it is a floor the scan cannot
reach; the gap says how much of a step is overhead rather than arithmetic.

On a GPU the empty scan step is also timed with its loop recorded into a CUDA graph
(`seqjax.loop_graphs.LOOP_GRAPHS`): the difference is what that option saves each step of a
recurrence.

Writes scaling_<device>.json and scaling_<device>.png.
"""

from __future__ import annotations

import argparse
import os

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks import command_line
from benchmarks.command_line import device_kind
from benchmarks.timing import environment, time_calls
from seqjax.io import atomic_write_json
from seqjax.layers import LSTM
from seqjax.loop_graphs import LOOP_GRAPHS
from seqjax.plots import save_figure

FEATURES = 32
REFERENCE = {"batch": 32, "steps": 100, "hidden": 128}
SWEEPS = {
    "steps": [100, 250, 500, 1000, 2000],
    "batch": [1, 8, 32, 128, 512],
    "hidden": [32, 64, 128, 256, 512],
}

SYMBOLS = {"steps": "T", "batch": "B", "hidden": "H"}
LABELS = {"steps": "sequence length T", "batch": "batch B", "hidden": "hidden H"}


def matmul_gflops(size: int = 2048, repeats: int = 5) -> float:
    """Achieved float32 matmul throughput: the device's practical arithmetic ceiling."""
    a = jax.random.normal(jax.random.key(0), (size, size), jnp.float32)  # not zeros or ones
    mm = jax.jit(lambda a: a @ a)
    t = time_calls(lambda: mm(a).block_until_ready(), warmup=2, repeats=repeats)
    return 2 * size**3 / (t["median_ms"] * 1e-3) / 1e9


def loop_overhead_us(
    steps: int = 1000, repeats: int = 5, compiler_options: dict | None = None
) -> float:
    """Microseconds per step of a scan whose step is one tiny elementwise update (B=32,
    H=128): the cost of a dependent step itself, a floor no per-step recurrence goes under
    (on a GPU, one launch and synchronisation per step), compiled with XLA
    `compiler_options`."""
    xs = jax.random.normal(jax.random.key(1), (steps, 32, 128), jnp.float32)  # (T, B, H)

    def body(h, x):
        h = 0.5 * h + x
        return h, h

    run = jax.jit(
        lambda xs: jax.lax.scan(body, jnp.zeros_like(xs[0]), xs)[1],
        compiler_options=compiler_options,
    )
    t = time_calls(lambda: run(xs).block_until_ready(), warmup=2, repeats=repeats)
    return t["median_ms"] * 1e3 / steps


def measure_point(batch: int, steps: int, hidden: int, repeats: int) -> dict:
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.standard_normal((batch, steps, FEATURES)), jnp.float32)  # (B, T, F)
    lengths = jnp.full((batch,), steps, jnp.int32)
    model = LSTM(hidden, backend="scan")  # the recurrence whose per-step cost is plotted
    variables = jax.jit(model.init)(jax.random.key(0), x[:, :2], jnp.minimum(lengths, 2))
    infer = jax.jit(lambda v, x: model.apply(v, x, lengths)[0])
    train = jax.jit(jax.grad(lambda v, x: jnp.sum(model.apply(v, x, lengths)[0])))
    t_inf = time_calls(lambda: infer(variables, x).block_until_ready(), repeats=repeats)
    t_train = time_calls(
        lambda: jax.block_until_ready(train(variables, x)), warmup=2, repeats=repeats
    )
    return {
        "batch": batch,
        "steps": steps,
        "hidden": hidden,
        "inference_ms": t_inf["median_ms"],
        "train_ms": t_train["median_ms"],
        "inference_us_per_step": t_inf["median_ms"] * 1e3 / steps,
        "train_us_per_step": t_train["median_ms"] * 1e3 / steps,
        "recurrent_mflop_per_step": 2 * batch * hidden * 4 * hidden / 1e6,
    }


def plot(result: dict, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    gflops = result["matmul_gflops"]
    for ax, (axis, points) in zip(axes, result["sweeps"].items(), strict=True):
        xs = [p[axis] for p in points]
        limit = [p["recurrent_mflop_per_step"] * 1e6 / (gflops * 1e9) * 1e6 for p in points]
        ax.plot(xs, [p["train_us_per_step"] for p in points], "o-", label="train step")
        ax.plot(xs, [p["inference_us_per_step"] for p in points], "s-", label="inference")
        ax.plot(xs, [3 * v for v in limit], "k--", label="train limit (matmul FLOPs)")
        ax.plot(xs, limit, "k:", label="inference limit (matmul FLOPs)")
        loop = result.get("loop_overhead_us_per_step")
        if loop:
            ax.axhline(loop, color="grey", lw=1, label="empty scan step (loop overhead)")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel(LABELS[axis])
        ax.set_ylabel("µs per time step")
        fixed = {k: v for k, v in REFERENCE.items() if k != axis}
        ax.set_title(", ".join(f"{SYMBOLS[k]}={v}" for k, v in fixed.items()))
        ax.set_xticks(xs, [str(x) for x in xs], minor=False)
        ax.set_xticks([], minor=True)
        ax.grid(True, which="both", alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle(
        f"seqjax LSTM per-step cost on {result['environment']['device']} "
        f"(matmul ceiling {gflops:.0f} GFLOP/s)"
    )
    fig.tight_layout()
    save_figure(fig, path, dpi=110)


def main(argv: list[str] | None = None) -> None:
    parser = command_line.parser("benchmarks.scaling", __doc__)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out-dir", default=os.path.join("benchmarks", "results"))
    args = parser.parse_args(argv)
    with jax.default_matmul_precision("highest"):  # float32 matmuls, no TF32, on every device
        run(args, argv)


def run(args: argparse.Namespace, argv: list[str] | None = None) -> None:
    gflops = matmul_gflops(4096 if jax.default_backend() == "gpu" else 2048)
    loop_us = loop_overhead_us()
    print(f"matmul ceiling: {gflops:.1f} GFLOP/s; empty scan step {loop_us:.2f} µs")
    graphs_us = None
    if jax.default_backend() == "gpu":  # the same loop recorded into a CUDA graph
        graphs_us = loop_overhead_us(compiler_options=LOOP_GRAPHS)
        print(f"empty scan step with the loop in a CUDA graph: {graphs_us:.2f} µs")
    sweeps = {}
    for axis, values in SWEEPS.items():
        sweeps[axis] = []
        for value in values:
            point = measure_point(**{**REFERENCE, axis: value}, repeats=args.repeats)
            limit_us = point["recurrent_mflop_per_step"] * 1e6 / (gflops * 1e9) * 1e6
            print(
                f"{axis:6s} {value:5d}: train {point['train_us_per_step']:8.1f} µs/step, "
                f"inference {point['inference_us_per_step']:8.1f} µs/step, "
                f"matmul limit {limit_us:7.2f} µs/step (inference)"
            )
            sweeps[axis].append(point)
    kind = device_kind()
    result = {
        "command": command_line.command("benchmarks.scaling", argv),
        "environment": environment(),
        "features": FEATURES,
        "reference": REFERENCE,
        "matmul_gflops": gflops,
        "loop_overhead_us_per_step": loop_us,
        "loop_graphs_us_per_step": graphs_us,  # None off a GPU
        "sweeps": sweeps,
    }
    os.makedirs(args.out_dir, exist_ok=True)
    atomic_write_json(os.path.join(args.out_dir, f"scaling_{kind}.json"), result)
    plot(result, os.path.join(args.out_dir, f"scaling_{kind}.png"))
    print(f"wrote {args.out_dir}/scaling_{kind}.json and .png")


if __name__ == "__main__":
    main()

"""A greedy decoding loop of `seqjax.layers.LSTMCell` beside `torch.nn.LSTMCell` and stock
Flax's `nn.OptimizedLSTMCell`, each step's output fed back as the next step's input.

    python -m benchmarks.cell [--only trend ...] [--repeats 15] [--quick] [--out PATH]

Why: a decoder cannot hand its sequence to a layer, so it pays for its loop step by step;
this times that loop as each framework's users write it. seqjax and Flax: the cell and a
Dense head (H -> F) in one jitted `lax.scan` over the steps; PyTorch: a Python loop over
`nn.LSTMCell` and `nn.Linear` under `torch.no_grad()`, on every core, or on the GPU
where there is one. Each side's inputs are on its device before the loops are timed.
seqjax's cell carries PyTorch's own weights (`lstm_cell_params_from_torch`), and its
outputs are checked against PyTorch's before anything is timed; Flax's cell has its own.
Sizes: trend's (F=62, H=64) decoding its 30-day horizon, and steel's (F=5, H=128) over
500 steps, batch 32; every matmul float32. Ratios > 1 mean seqjax is faster.
"""

from __future__ import annotations

import os

import flax.linen as nn
import jax
import numpy as np

from benchmarks import command_line
from benchmarks.side_by_side import max_abs_diff
from benchmarks.timing import time_interleaved
from seqjax.interop import lstm_cell_params_from_torch
from seqjax.layers import LSTMCell

CONFIGS = {
    "trend": {"batch": 32, "features": 62, "hidden": 64, "steps": 30},
    "steel": {"batch": 32, "features": 5, "hidden": 128, "steps": 500},
}
REFERENCES = ("torch_cell", "flax_optimized_cell")


class Decoder(nn.Module):
    """`steps` steps of `cell` from `x0` (B, F), each output through a Dense head to the
    next input: returns the inputs it generated (steps, B, F)."""

    cell: nn.RNNCellBase
    features: int
    steps: int

    @nn.compact
    def __call__(self, carry, x0):
        head = nn.Dense(self.features, name="head")
        cell = self.cell

        def step(mdl, state, _):
            carry, x = state
            carry, h = cell(carry, x)
            x = head(h)
            return (carry, x), x

        scan = nn.scan(
            step, variable_broadcast="params", split_rngs={"params": False}, length=self.steps
        )
        _, xs = scan(self, (carry, x0), None)
        return xs  # (steps, B, F)


def _torch_decoder(cfg: dict, rng: np.random.Generator):
    """PyTorch's cell and head, on the GPU where there is one (full float32, as the
    side-by-side's), and a function running the loop from (h0, c0, x0) NumPy arrays
    placed there once; it returns the generated inputs (steps, B, F) when they are done."""
    import torch

    torch.manual_seed(int(rng.integers(2**31)))
    cell = torch.nn.LSTMCell(cfg["features"], cfg["hidden"])
    head = torch.nn.Linear(cfg["hidden"], cfg["features"])
    device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = False
        cell, head = cell.to(device), head.to(device)
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)

    def placed(*arrays):
        return [torch.from_numpy(a).to(device) for a in arrays]

    def run(h, c, x):
        with torch.no_grad():
            xs = []
            for _ in range(cfg["steps"]):
                h, c = cell(x, (h, c))
                x = head(h)
                xs.append(x)
            out = torch.stack(xs)  # (steps, B, F)
        sync()
        return out

    return cell, head, placed, run


def measure(cfg: dict, *, repeats: int, seconds: float | None = None) -> dict:
    """Timings of the three loops, seqjax's ratios, and its largest difference from
    PyTorch's outputs with the same weights."""
    import torch

    torch.set_num_threads(os.cpu_count() or 1)  # XLA's CPU backend also uses every core
    rng = np.random.default_rng(0)
    b, f, h = cfg["batch"], cfg["features"], cfg["hidden"]
    x0 = rng.standard_normal((b, f)).astype(np.float32)
    h0, c0 = 0.1 * rng.standard_normal((2, b, h)).astype(np.float32)
    t_cell, t_head, placed, t_run = _torch_decoder(cfg, rng)
    t_args = placed(h0, c0, x0)
    x0, c0, h0 = jax.device_put((x0, c0, h0))  # on JAX's default device, once

    ours = Decoder(LSTMCell(h), f, cfg["steps"])
    cell_sd = {k: v.detach().cpu().numpy() for k, v in t_cell.state_dict().items()}
    head_params = {
        "kernel": t_head.weight.detach().cpu().numpy().T,  # (H, F)
        "bias": t_head.bias.detach().cpu().numpy(),
    }
    variables = {
        "params": {"cell": lstm_cell_params_from_torch(cell_sd)["params"], "head": head_params}
    }
    variables = jax.device_put(variables)  # NumPy arrays would be copied in at every call
    flax = Decoder(nn.OptimizedLSTMCell(h), f, cfg["steps"])
    flax_vars = jax.jit(flax.init)(jax.random.key(0), (c0, h0), x0)
    ours_fn = jax.jit(ours.apply)
    flax_fn = jax.jit(flax.apply)
    with jax.default_matmul_precision("highest"):
        got = np.asarray(ours_fn(variables, (c0, h0), x0))
        diff = max_abs_diff(got, t_run(*t_args).cpu().numpy())
        impls = {
            "seqjax": lambda: ours_fn(variables, (c0, h0), x0).block_until_ready(),
            "flax_optimized_cell": lambda: flax_fn(flax_vars, (c0, h0), x0).block_until_ready(),
            "torch_cell": lambda: t_run(*t_args),
        }
        min_seconds = 0.2 * repeats if seconds is None else seconds
        timings = time_interleaved(impls, repeats=repeats, min_seconds=min_seconds)
    seqjax_ms = timings["seqjax"]["median_ms"]
    return {
        "config": cfg,
        "max_abs_diff_vs_torch": diff,
        "timings": timings,
        "speedup": {f"vs_{ref}": timings[ref]["median_ms"] / seqjax_ms for ref in REFERENCES},
        "seqjax_us_per_step": 1e3 * seqjax_ms / cfg["steps"],
    }


def main(argv: list[str] | None = None) -> dict:
    parser = command_line.parser("benchmarks.cell", __doc__)
    parser.add_argument("--only", choices=list(CONFIGS), action="append")
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--quick", action="store_true", help="short loops, a smoke run")
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    command_line.require_torch(parser)
    results = {}
    for name in args.only or list(CONFIGS):
        cfg = dict(CONFIGS[name])
        if args.quick:
            cfg.update(batch=4, steps=min(cfg["steps"], 8))
        results[name] = measure(cfg, repeats=args.repeats, seconds=0.0 if args.quick else None)
        if results[name]["max_abs_diff_vs_torch"] > 1e-4:
            raise SystemExit(
                f"[{name}] seqjax's decoder differs from PyTorch's with the same weights by "
                f"{results[name]['max_abs_diff_vs_torch']:.2e}: the timings would compare "
                "different loops"
            )
        ratios = ", ".join(f"{k} {v:.2f}" for k, v in results[name]["speedup"].items())
        print(f"[{name}] seqjax decoding over: {ratios}", flush=True)
    return command_line.save_results("cell", argv, args.out, {"systems": results})


if __name__ == "__main__":
    main()

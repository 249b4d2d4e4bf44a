"""`LSTM(proj_size=P)` beside `torch.nn.LSTM(proj_size=P)` of the same sizes, packed and
plain padded, and beside seqjax's own layer without the projection.

    python -m benchmarks.projection [--only steel ...] [--repeats 15] [--quick] [--out PATH]

Why: a projection adds a (B, H) @ (H, P) matmul to every step and to every backward step,
and narrows the recurrent one to (B, P) @ (P, 4H), so its cost is not the unprojected
layer's; this is its side-by-side (`benchmarks.side_by_side` has no projection, and
Flax's `nn.RNN` cells have none to compare). Sizes: steel's and trend's stacks
(`side_by_side.CONFIGS`) with P = H / 2. Train = forward + backward of sum(outputs**2);
inference = forward at batch 32; one process, one device, every matmul float32, the
implementations timed in interleaved rounds. Ratios > 1 mean seqjax is faster.
"""

from __future__ import annotations

import os

import jax

from benchmarks import command_line
from benchmarks.side_by_side import (
    CONFIGS,
    SeqjaxStack,
    _ratios,
    inputs,
    jax_fns,
    time_impls,
    torch_fns,
)

SYSTEMS = ("steel", "trend")
TORCH = ("torch_padded", "torch_packed")


def projected(name: str, quick: bool) -> dict:
    """The side-by-side config `name` with P = H / 2 (smaller under `quick`)."""
    cfg = dict(CONFIGS[name])
    if quick:
        cfg.update(batch=4, time=min(cfg["time"], 20), min_len=min(cfg.get("min_len", 10), 10))
    return {**cfg, "proj_size": cfg["hidden"][0] // 2}


def measure(cfg: dict, *, repeats: int, seconds: float | None = None) -> dict:
    """Timings and ratios of the projected stacks, and of seqjax's unprojected one."""
    import torch

    torch.set_num_threads(os.cpu_count() or 1)  # XLA's CPU backend also uses every core
    x, lengths = inputs(cfg)
    shape = dict(hidden=tuple(cfg["hidden"]), layers=cfg["layers"], bi=cfg["bi"])
    options = (("proj_size", cfg["proj_size"]),)
    impls = {
        "seqjax": jax_fns(SeqjaxStack(**shape, options=options), x, lengths),
        "seqjax_unprojected": jax_fns(SeqjaxStack(**shape), x, lengths),
        "torch_padded": torch_fns(cfg, x, lengths, packed=False),
        "torch_packed": torch_fns(cfg, x, lengths, packed=True),
    }
    with jax.default_matmul_precision("highest"):  # no TF32 on a GPU, as torch's here
        timings = time_impls(impls, repeats=repeats, seconds=seconds)
    return {
        "config": {**cfg, "hidden": list(cfg["hidden"])},
        "timings": timings,
        "speedup": _ratios(timings, "seqjax", TORCH),
        "projected_over_unprojected": {
            kind: timings["seqjax"][kind]["median_ms"]
            / timings["seqjax_unprojected"][kind]["median_ms"]
            for kind in ("train", "inference_b32")
        },
    }


def main(argv: list[str] | None = None) -> dict:
    parser = command_line.parser("benchmarks.projection", __doc__)
    parser.add_argument("--only", choices=SYSTEMS, action="append")
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--quick", action="store_true", help="small sizes, a smoke run")
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    command_line.require_torch(parser)
    results = {}
    seconds = 0.0 if args.quick else None  # quick: the repeats alone, no minimum time
    for name in args.only or SYSTEMS:
        results[name] = measure(projected(name, args.quick), repeats=args.repeats, seconds=seconds)
        ratios = ", ".join(f"{k} {v:.2f}" for k, v in results[name]["speedup"].items())
        print(f"[{name}] seqjax over torch: {ratios}", flush=True)
    return command_line.save_results("projection", argv, args.out, {"systems": results})


if __name__ == "__main__":
    main()

"""Which tiling and warp count the fused Pallas LSTM kernels run fastest with.

    python -m benchmarks.pallas_tiles [--layout units] [--hidden 128] [--steps 500] [--batch 32]
        [--out PATH]
    python -m benchmarks.pallas_tiles --interpret --quick   # a CPU smoke run, interpreted

Times one bidirectional layer's recurrence (steel's sizes by default) through
`pallas_layer` for each candidate (precision, unit, num_warps), beside the scan of the same
layer (`recurrence.scan_direction`, both directions): inference (the forward kernel) and
train (forward and backward of sum(ys**2)), interleaved so the candidates share the
machine's load, each one's jit compile time and its largest difference from the scan
(outputs, and the train row's gradients), so a fast but wrong tiling shows as such; a
candidate that fails to compile or run is named under `errors` and the others go on.
`benchmarks.triton_compile` gives the same candidates' registers and spills without a GPU;
this gives their speed, the evidence `pallas_lstm.UNIT` and `NUM_WARPS` (`pallas_units`'
for `--layout units`) should follow once a GPU has run it.
"""

from __future__ import annotations

import dataclasses
import time

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks import command_line
from benchmarks.side_by_side import built_or_error, max_abs_diff
from benchmarks.timing import time_interleaved
from benchmarks.triton_compile import candidates
from seqjax.layers import recurrence
from seqjax.layers.masking import length_mask
from seqjax.layers.pallas_lstm import LAYOUTS, PRECISIONS, KernelOptions, pallas_layer


def layer_inputs(batch: int, hidden: int, steps: int) -> dict:
    """A bidirectional layer's projected input, weights and lengths from steps/5 to steps."""
    keys = jax.random.split(jax.random.key(0), 3)
    lengths = np.random.default_rng(0).integers(max(1, steps // 5), steps + 1, batch)
    lengths[0] = steps
    return {
        "xproj": jax.random.normal(keys[0], (2, steps, batch, 4 * hidden)),  # (D, T, B, 4H)
        "w_hh": jax.random.normal(keys[1], (2, hidden, 4 * hidden)) * hidden**-0.5,  # (D, H, 4H)
        "h0": jnp.zeros((2, batch, hidden)),  # (D, B, H)
        "lengths": jnp.asarray(lengths, jnp.int32),  # (B,)
    }


def _scan_layer(xproj, w_hh, lengths, h0):
    """Both directions' scans, as `LSTM(backend="scan")` runs a bidirectional layer."""
    mask = length_mask(lengths, xproj.shape[1], time_major=True)[..., None]  # (T, B, 1)
    ys = [
        recurrence.scan_direction(xproj[d], w_hh[d], mask, (h0[d], h0[d]), reverse=bool(d))[1]
        for d in range(2)
    ]
    return jnp.stack(ys)  # (D, T, B, H)


def layer_fns(a: dict, opts: KernelOptions | None) -> dict:
    """{"inference", "train"}: zero-argument callables blocking on their result, compiled
    ahead (`compile_s` is both compiles' seconds). opts None: the scan."""

    def ys(xproj, w_hh):
        if opts is None:
            return _scan_layer(xproj, w_hh, a["lengths"], a["h0"])
        kw = dict(
            interpret=opts.interpret, unit=opts.unit, precision=opts.precision, layout=opts.layout
        )
        h0 = a["h0"]
        return pallas_layer(xproj, w_hh, a["lengths"], h0, h0, num_warps=opts.num_warps, **kw)[1]

    def loss(xproj, w_hh):
        return jnp.sum(ys(xproj, w_hh) ** 2)

    args = (a["xproj"], a["w_hh"])
    start = time.perf_counter()
    compiled = {
        "inference": jax.jit(ys).lower(*args).compile(),
        "train": jax.jit(jax.grad(loss, argnums=(0, 1))).lower(*args).compile(),
    }
    seconds = time.perf_counter() - start
    fns = {k: (lambda f=f: jax.block_until_ready(f(*args))) for k, f in compiled.items()}
    return {"fns": fns, "compile_s": seconds, "results": {k: f() for k, f in fns.items()}}


def build_all(a: dict, grid: list) -> tuple[dict, dict]:
    """({name: layer_fns(...)} for the scan and each candidate that compiled and ran,
    {name: error} for the others): a tiling jaxlib's Triton rejects costs its own row."""
    built, errors = {"scan": layer_fns(a, None)}, {}
    for opts in grid:
        fns, error = built_or_error(_name(opts), lambda opts=opts: layer_fns(a, opts))
        if error:
            errors[_name(opts)] = error
        else:
            built[_name(opts)] = fns
    return built, errors


def _name(opts: KernelOptions | None) -> str:
    if opts is None:
        return "scan"
    layout = "" if opts.layout == "rows" else f"{opts.layout}_"
    return f"pallas_{layout}{opts.precision}_unit{opts.unit}_warps{opts.num_warps}"


def main(argv: list[str] | None = None) -> dict:
    parser = command_line.parser("benchmarks.pallas_tiles", __doc__)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--steps", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--precision", choices=sorted(PRECISIONS), action="append")
    parser.add_argument("--layout", choices=LAYOUTS, default="rows", help="the kernels' layout")
    parser.add_argument("--interpret", action="store_true", help="Pallas's interpreter (CPU)")
    parser.add_argument("--quick", action="store_true", help="H=32, 8 steps, 3 repeats")
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    if args.quick:
        args.batch, args.hidden, args.steps, args.repeats = 16, 32, 8, 3
    if not args.interpret and jax.default_backend() != "gpu":
        parser.error("the compiled kernels need a GPU; --interpret runs them here, slowly")
    if args.quick:  # two tilings of H=32, one warp count: the interpreter ignores warps
        grid = candidates(args.hidden, ["float32"], (16, 32), (4,), args.layout)
    else:
        grid = candidates(args.hidden, args.precision, layout=args.layout)
    grid = [dataclasses.replace(o, interpret=args.interpret) for o in grid]
    a = layer_inputs(args.batch, args.hidden, args.steps)
    with jax.default_matmul_precision("highest"):  # traced so: the scan's dots in float32
        built, errors = build_all(a, grid)
    reference = built["scan"]["results"]
    rows = {
        name: {
            "compile_s": round(b["compile_s"], 2),
            "max_abs_diff_vs_scan": {
                k: max_abs_diff(b["results"][k], reference[k]) for k in reference
            },
        }
        for name, b in built.items()
    }
    kinds = ("inference", "train")
    for kind in kinds:
        fns = {name: b["fns"][kind] for name, b in built.items()}
        for name, stats in time_interleaved(fns, repeats=args.repeats).items():
            rows[name][kind] = stats
            rows[name][f"{kind}_us_per_step"] = 1e3 * stats["median_ms"] / args.steps
    for name, row in rows.items():
        ratio = {k: rows["scan"][k]["median_ms"] / row[k]["median_ms"] for k in kinds}
        row["speedup_vs_scan"] = ratio
        print(
            f"{name:34} inference {row['inference']['median_ms']:8.2f} ms "
            f"train {row['train']['median_ms']:8.2f} ms  compile {row['compile_s']:6.1f} s  "
            f"vs scan {ratio['inference']:.2f} / {ratio['train']:.2f}  "
            f"max |diff| {max(row['max_abs_diff_vs_scan'].values()):.1e}",
            flush=True,
        )
    fields = {
        "shape": {"batch": args.batch, "hidden": args.hidden, "steps": args.steps},
        "layout": args.layout,
        "interpret": args.interpret,
        "timings": rows,
        "errors": errors,
        "best": {  # None when no tiling ran: the errors above still get written
            k: min(
                (n for n in rows if n != "scan"),
                key=lambda n, k=k: rows[n][k]["median_ms"],
                default=None,
            )
            for k in kinds
        },
    }
    suffix = ("" if args.layout == "rows" else f"_{args.layout}") + ("-quick" if args.quick else "")
    return command_line.save_results("pallas_tiles", argv, args.out, fields, suffix)


if __name__ == "__main__":
    main()

"""Which LSTM backend and loop shape is fastest on this device, per side-by-side config.

    python -m benchmarks.backends [--repeats 15] [--only steel ...] [--out PATH]

Times seqjax's stack (train = forward + backward of sum(outputs**2); inference = forward at
batch 32) with the cuDNN kernel (CUDA only), the fused Pallas kernels (GPU only), and with
the scan at several `unroll` values: with the platform's default input projection per layer
(`scan_unroll{u}`), and with every layer's input projected in one of three ways
(`projection_chunk`): the whole sequence before the loop (0), each step inside it (1),
chunks of 32 steps (32, where T > 32); and for bidirectional stacks with both directions
in one scan (`fused_directions`, one loop of T steps per layer instead of two); on a GPU
also the scan at unroll 1 and 16 with its loops recorded into CUDA graphs
(`seqjax.loop_graphs.LOOP_GRAPHS`, `scan_unroll{u}_loop_graphs`); and the scan at unroll 1
with its rows sorted by length and run in G length groups (`scan_unroll1_groups{G}`, G = 1
the padded loop; seqjax/layers/length_groups.py). Each variant's first forward and train
calls, which compile them, are timed too (`first_calls_s`). Every
matmul is full float32 but the `*_tf32x3` Pallas rows' (three TF32 passes). This is the
evidence behind what `LSTM(backend="auto")` and the default `unroll` and
`projection_chunk` choose on each platform.
"""

from __future__ import annotations

import jax

from benchmarks import command_line
from benchmarks.side_by_side import (
    CONFIGS,
    add_variants,
    inputs,
    pallas_variants,
    time_impls,
)
from benchmarks.timing import environment
from seqjax.layers.cudnn import cudnn_available
from seqjax.loop_graphs import LOOP_GRAPHS

UNROLLS = (1, 4, 16)
GROUPS = (1, 4, 8, 16)  # length groups; the phased loops run unroll 1


def variants(time_steps: int, bidirectional: bool) -> dict[str, dict]:
    """Name -> SeqjaxStack keyword arguments; each scan's directions fused or not as its
    name says, whatever the platform's default (`fused_directions_default`)."""
    out = {f"scan_unroll{u}": dict(backend="scan", unroll=u, fused=False) for u in UNROLLS}
    if bidirectional:  # both directions in one scan: half the loop iterations per layer
        out.update(
            {f"scan_unroll{u}_fused_directions": dict(fused=True, unroll=u) for u in UNROLLS}
        )
    projections = {"whole_projection": 0, "in_step_projection": 1}
    if time_steps > 32:
        projections["chunk32_projection"] = 32
    for u in (1, 16):  # CPU's default unroll and GPU's
        for label, chunk in projections.items():
            out[f"scan_unroll{u}_{label}"] = dict(
                backend="scan", unroll=u, projection_chunk=chunk, fused=False
            )
    for g in GROUPS:
        out[f"scan_unroll1_groups{g}"] = dict(
            unroll=1, fused=False, options=(("length_groups", g),)
        )
    if cudnn_available():
        out["cudnn"] = dict(backend="cudnn")
    return out


def measure(name: str, repeats: int) -> dict:
    cfg = CONFIGS[name]
    x, lengths = inputs(cfg)
    shape = dict(hidden=tuple(cfg["hidden"]), layers=cfg["layers"], bi=cfg["bi"])
    kinds = {v: (kw, None) for v, kw in variants(cfg["time"], cfg["bi"]).items()}
    kinds.update(pallas_variants(cfg))
    if jax.default_backend() == "gpu":  # the scan's loops in CUDA graphs, at both unrolls
        for u in (1, 16):
            kinds[f"scan_unroll{u}_loop_graphs"] = (
                dict(backend="scan", unroll=u, fused=False),
                LOOP_GRAPHS,
            )
    impls, first_calls = {}, {}
    errors, _ = add_variants(impls, kinds, shape, x, lengths, first_calls=first_calls)
    rows = time_impls(impls, repeats=repeats)
    for variant, row in rows.items():
        print(
            f"{name:13} {variant:34} train {row['train']['median_ms']:8.2f} ms  "
            f"inference {row['inference_b32']['median_ms']:8.2f} ms  "
            f"first calls {first_calls[variant]:5.1f} s",
            flush=True,
        )
    best = {
        kind: min(rows, key=lambda v, k=kind: rows[v][k]["median_ms"])
        for kind in ("train", "inference_b32")
    }
    out = {
        "config": {**cfg, "hidden": list(cfg["hidden"])},
        "timings": rows,
        "best": best,
        "first_calls_s": first_calls,  # compile and first run of forward and train
    }
    return {**out, "errors": errors} if errors else out


def main(argv: list[str] | None = None) -> dict:
    parser = command_line.parser("benchmarks.backends", __doc__)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--only", choices=sorted(CONFIGS), action="append")
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    result = {
        "command": command_line.command("benchmarks.backends", argv),
        "environment": environment(),
        "matmuls": "float32, no TF32 (the *_tf32x3 Pallas rows, on a GPU: three TF32 passes)",
        "configs": {},
    }
    with jax.default_matmul_precision("highest"):
        for name in args.only or list(CONFIGS):
            result["configs"][name] = measure(name, args.repeats)
    out = args.out or command_line.results_path("backends")
    command_line.write_result(out, result)
    return result


if __name__ == "__main__":
    main()

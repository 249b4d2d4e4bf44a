"""The bare LSTM layer against `torch.nn.LSTM`, side by side in one process.

Measures forward and forward+backward at the issue's reference size (B=32, T=500, F=5,
H=128, 2 layers, bidirectional, lengths 100-500) for each unroll and direction layout, and
PyTorch packed (pack_padded_sequence) and plain padded forms. Ratios > 1 mean seqjax is faster.

    python -m benchmarks.lstm_layer [--repeats 15] [--out benchmarks/results/lstm_layer_cpu.json]
"""

from __future__ import annotations

import json
import os

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks import command_line
from benchmarks.timing import environment, time_calls
from seqjax.interop import lstm_params_from_torch
from seqjax.layers import LSTM


def seqjax_fns(cfg: dict, variables, x, lengths, *, unroll: int, fused: bool, backward: str):
    model = LSTM(
        cfg["hidden"],
        cfg["layers"],
        cfg["bidirectional"],
        unroll=unroll,
        fused_directions=fused,
        backward=backward,
    )

    @jax.jit
    def forward(v, x, lengths):
        return model.apply(v, x, lengths)[0]

    @jax.jit
    def train(v, x, lengths):
        def loss(v):
            return jnp.sum(model.apply(v, x, lengths)[0] ** 2)

        return jax.value_and_grad(loss)(v)

    return (
        lambda: jax.block_until_ready(forward(variables, x, lengths)),
        lambda: jax.block_until_ready(train(variables, x, lengths)),
    )


def torch_fns(ref, x, lengths, *, packed: bool):
    import torch

    def run():
        if packed:
            seq = torch.nn.utils.rnn.pack_padded_sequence(
                x, lengths, batch_first=True, enforce_sorted=False
            )
            out, _ = ref(seq)
            out, _ = torch.nn.utils.rnn.pad_packed_sequence(
                out, batch_first=True, total_length=x.shape[1]
            )
        else:
            out, _ = ref(x)
        return out

    def forward():
        with torch.no_grad():
            run()

    def train():
        ref.zero_grad(set_to_none=True)
        (run() ** 2).sum().backward()

    return forward, train


def main(argv: list[str] | None = None) -> dict:
    parser = command_line.parser("benchmarks.lstm_layer", __doc__)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--unrolls", type=int, nargs="+", default=[1, 2, 4, 8])
    parser.add_argument("--out", default="benchmarks/results/lstm_layer_cpu.json")
    args = parser.parse_args(argv)
    command_line.require_torch(parser)
    import torch

    torch.set_num_threads(os.cpu_count() or 1)  # XLA's CPU backend also uses every core
    cfg = {
        "batch": 32,
        "time": 500,
        "features": 5,
        "hidden": 128,
        "layers": 2,
        "bidirectional": True,
    }
    rng = np.random.default_rng(0)
    x_np = rng.standard_normal((cfg["batch"], cfg["time"], cfg["features"])).astype(np.float32)
    len_np = rng.integers(100, cfg["time"] + 1, cfg["batch"]).astype(np.int32)
    len_np[0] = cfg["time"]
    ref = torch.nn.LSTM(
        cfg["features"],
        cfg["hidden"],
        cfg["layers"],
        batch_first=True,
        bidirectional=cfg["bidirectional"],
    )
    variables = lstm_params_from_torch(
        {k: v.detach().numpy() for k, v in ref.state_dict().items()},
        num_layers=cfg["layers"],
        bidirectional=cfg["bidirectional"],
    )
    variables = jax.tree.map(jnp.asarray, variables)
    x, lengths = jnp.asarray(x_np), jnp.asarray(len_np)
    xt, lt = torch.from_numpy(x_np), torch.from_numpy(len_np.astype(np.int64))

    rows = {}
    for packed in (True, False):
        fwd, trn = torch_fns(ref, xt, lt, packed=packed)
        name = "torch_packed" if packed else "torch_padded"
        rows[name] = {
            "forward": time_calls(fwd, repeats=args.repeats),
            "train": time_calls(trn, repeats=args.repeats),
        }
        print(
            name, rows[name]["forward"]["median_ms"], rows[name]["train"]["median_ms"], flush=True
        )
    variants = [(False, u, "custom") for u in args.unrolls]
    variants += [(False, 1, "autodiff")] + [(True, u, "autodiff") for u in args.unrolls[:2]]
    for fused, unroll, backward in variants:
        fwd, trn = seqjax_fns(
            cfg, variables, x, lengths, unroll=unroll, fused=fused, backward=backward
        )
        name = f"seqjax_{'fused' if fused else 'separate'}_{backward}_unroll{unroll}"
        rows[name] = {
            "forward": time_calls(fwd, repeats=args.repeats),
            "train": time_calls(trn, repeats=args.repeats),
        }
        print(
            name, rows[name]["forward"]["median_ms"], rows[name]["train"]["median_ms"], flush=True
        )
    best = {
        kind: min(
            (n for n in rows if n.startswith("seqjax")),
            key=lambda n, k=kind: rows[n][k]["median_ms"],
        )
        for kind in ("forward", "train")
    }
    ratios = {
        f"{kind}_vs_{ref_name}": rows[ref_name][kind]["median_ms"]
        / rows[best[kind]][kind]["median_ms"]
        for kind in ("forward", "train")
        for ref_name in ("torch_packed", "torch_padded")
    }
    result = {
        "command": command_line.command("benchmarks.lstm_layer", argv),
        "environment": environment(),
        "config": cfg,
        "lengths": "uniform 100-500",
        "timings": rows,
        "best": best,
        "speedup_over_torch": ratios,
    }
    command_line.write_result(args.out, result)
    print(json.dumps({"best": best, "speedup_over_torch": ratios}, indent=2))
    return result


if __name__ == "__main__":
    main()

"""How long a call takes depending on which implementation ran just before it.

    python -m benchmarks.call_order trend [--calls 3000] [--train] [--out PATH]

Calls seqjax's stack, Flax's `nn.RNN` stack and PyTorch's padded and packed `nn.LSTM` of
one side-by-side config in a random sequence (each next call's implementation drawn
uniformly, so every ordered pair occurs), and prints each implementation's median time
after each predecessor, itself included ("back to back": how a program that uses one
framework calls it).

Why: on a 2-core machine a millisecond call is not independent of the call before it.
PyTorch's OpenMP threads spin-wait after their work and hold the cores for a while; XLA's
CPU runtime hands each call to a worker thread that is awake only if it ran recently.
`benchmarks.timing.time_interleaved` times calls in blocks for that reason; this shows the
effect it removes.
"""

from __future__ import annotations

import os
import time

import numpy as np

from benchmarks import command_line
from benchmarks.command_line import device_kind
from benchmarks.side_by_side import CONFIGS, FlaxStack, SeqjaxStack, inputs, jax_fns, torch_fns
from benchmarks.timing import environment
from seqjax.io import atomic_write_json


def after_each(fns: dict, calls: int, seed: int = 0) -> dict[str, dict[str, float]]:
    """{implementation: {predecessor: median ms}} over `calls` calls in a random sequence."""
    names = list(fns)
    draw = np.random.default_rng(seed)
    samples: dict[tuple[str, str], list[float]] = {}
    previous = names[-1]
    fns[previous]()
    for k in draw.integers(len(names), size=calls):
        name = names[k]
        start = time.perf_counter()
        fns[name]()
        samples.setdefault((name, previous), []).append((time.perf_counter() - start) * 1e3)
        previous = name
    return {
        name: {before: float(np.median(samples[name, before])) for before in names
               if (name, before) in samples}
        for name in names
    }  # fmt: skip


def main(argv: list[str] | None = None) -> dict:
    p = command_line.parser("benchmarks.call_order", __doc__)
    p.add_argument("config", choices=sorted(CONFIGS))
    p.add_argument("--calls", type=int, default=3000)
    p.add_argument("--train", action="store_true", help="the train call, not inference")
    p.add_argument("--out", default=None, help="also write the table as JSON")
    args = p.parse_args(argv)
    command_line.require_torch(p)
    import torch

    torch.set_num_threads(os.cpu_count() or 1)  # as the side-by-side runs it
    cfg = CONFIGS[args.config]
    x, lengths = inputs(cfg)
    shape = dict(hidden=tuple(cfg["hidden"]), layers=cfg["layers"], bi=cfg["bi"])
    kind = 1 if args.train else 0
    fns = {
        "seqjax": jax_fns(SeqjaxStack(**shape), x, lengths)[kind],
        "flax_nn_rnn": jax_fns(FlaxStack(**shape), x, lengths)[kind],
        "torch_padded": torch_fns(cfg, x, lengths, packed=False)[kind],
        "torch_packed": torch_fns(cfg, x, lengths, packed=True)[kind],
    }
    for fn in fns.values():  # compile and warm up
        fn()
        fn()
    table = after_each(fns, args.calls)
    names = list(fns)
    call = "train" if args.train else "batch-32 inference"
    print(f"{args.config} {call}: median ms of the row's call right after the column's")
    print(f"{'':14}" + "".join(f"{n:>14}" for n in names))
    for name in names:
        cells = "".join(f"{table[name].get(b, float('nan')):14.3f}" for b in names)
        print(f"{name:14}{cells}")
    result = {
        "command": command_line.command("benchmarks.call_order", argv),
        "environment": environment(),
        "config": args.config,
        "call": call,
        "median_ms_after": table,
    }
    if args.out:
        atomic_write_json(args.out, result)
        print(f"wrote {args.out} ({device_kind()})")
    return result


if __name__ == "__main__":
    main()

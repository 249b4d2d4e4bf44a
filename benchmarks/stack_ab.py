"""This tree's LSTM stacks against the ones at a git revision, interleaved in one process.

    python -m benchmarks.stack_ab REV [--only steel ...] [--seconds 4] [--out PATH]

`benchmarks.recurrence_ab` compares one layer-direction's loop; a change to how `LSTM`
assembles its layers (the input projection, the bias, which path each layer takes) only
shows at the level of a whole stack. This extracts the `seqjax` package as committed at
REV into a temporary directory as `seqjax_at_rev` (its own imports rewritten to match),
builds each side-by-side config's stack from both at their defaults (REV's `LSTM` must
take `backend`, `unroll`, `projection_chunk` and `fused_directions`, as it has since
commit 6fe1ed9), and times train (forward + backward of sum(outputs**2)) and batch-32
inference in the same interleaved rounds, with PyTorch's padded `nn.LSTM` beside them for
scale; `--fused` builds both with `fused_directions=True` instead. Ratios > 1 mean this
tree is faster. Needs git.
"""

from __future__ import annotations

import importlib
import os
import re
import subprocess
import sys
import tarfile
import tempfile
from io import BytesIO

import jax

from benchmarks import command_line
from benchmarks.side_by_side import CONFIGS, SeqjaxStack, inputs, jax_fns, time_impls, torch_fns
from benchmarks.timing import environment

PACKAGE = "seqjax_at_rev"


def extract_at(rev: str, root: str):
    """`seqjax.layers` as committed at `rev`, importable as `seqjax_at_rev.layers`."""
    archive = subprocess.run(["git", "archive", rev, "seqjax"], capture_output=True, check=True)
    with tarfile.open(fileobj=BytesIO(archive.stdout)) as tar:
        safe = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}  # Python 3.11.4+
        tar.extractall(root, **safe)
    os.rename(os.path.join(root, "seqjax"), os.path.join(root, PACKAGE))
    own_imports = re.compile(r"^(\s*)(from|import) seqjax\b", re.MULTILINE)
    for folder, _, files in os.walk(os.path.join(root, PACKAGE)):
        for name in files:
            if name.endswith(".py"):
                path = os.path.join(folder, name)
                with open(path) as f:
                    source = f.read()
                with open(path, "w") as f:
                    f.write(own_imports.sub(rf"\1\2 {PACKAGE}", source))
    sys.path.insert(0, root)
    return importlib.import_module(f"{PACKAGE}.layers")


def measure(name: str, rev_layers, seconds: float, fused: bool = False) -> dict:
    cfg = CONFIGS[name]
    x, lengths = inputs(cfg)
    shape = dict(hidden=tuple(cfg["hidden"]), layers=cfg["layers"], bi=cfg["bi"], fused=fused)
    impls = {
        "tree": jax_fns(SeqjaxStack(**shape), x, lengths),
        "rev": jax_fns(SeqjaxStack(**shape, lstm_cls=rev_layers.LSTM), x, lengths),
        "torch_padded": torch_fns(cfg, x, lengths, packed=False),
    }
    timings = time_impls(impls, repeats=15, seconds=seconds)
    ratios = {
        f"{kind}_tree_over_rev": timings["rev"][kind]["median_ms"]
        / timings["tree"][kind]["median_ms"]
        for kind in ("train", "inference_b32")
    }
    for kind in ("train", "inference_b32"):
        row = {impl: timings[impl][kind]["median_ms"] for impl in impls}
        print(
            f"{name:13} {kind:14} tree {row['tree']:9.2f} ms  rev {row['rev']:9.2f} ms  "
            f"torch padded {row['torch_padded']:9.2f} ms  rev/tree "
            f"{ratios[f'{kind}_tree_over_rev']:.2f}",
            flush=True,
        )
    return {"timings": timings, "speedup": ratios}


def main(argv: list[str] | None = None) -> dict:
    parser = command_line.parser("benchmarks.stack_ab", __doc__)
    parser.add_argument("rev", help="git revision to compare against, e.g. HEAD~1")
    parser.add_argument("--only", choices=sorted(CONFIGS), action="append")
    parser.add_argument("--seconds", type=float, default=4.0, help="minimum per kind")
    parser.add_argument(
        "--fused", action="store_true", help="both stacks with fused_directions=True"
    )
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    command_line.require_torch(parser)
    import torch

    torch.set_num_threads(os.cpu_count() or 1)  # as in the side-by-side
    result = {
        "command": command_line.command("benchmarks.stack_ab", argv),
        "rev": subprocess.run(
            ["git", "rev-parse", "--short", args.rev], capture_output=True, text=True, check=True
        ).stdout.strip(),
        "environment": environment(),
        "configs": {},
    }
    with tempfile.TemporaryDirectory() as root, jax.default_matmul_precision("highest"):
        rev_layers = extract_at(args.rev, root)
        for name in args.only or list(CONFIGS):
            result["configs"][name] = measure(name, rev_layers, args.seconds, args.fused)
    out = args.out or command_line.results_path("stack_ab")
    command_line.write_result(out, result)
    return result


if __name__ == "__main__":
    main()

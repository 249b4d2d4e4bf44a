"""This tree's recurrence against the one at a git revision, interleaved in one process.

    python -m benchmarks.recurrence_ab REV [--hidden 128] [--batch 32] [--steps 500]
        [--seconds 10]

On a shared 2-core machine two runs of the same code differ by 10-40% (sessions here
saw `benchmarks.kernels` move that much between back-to-back runs), so a change of a few
percent in a step can only be seen, or ruled out, with the two versions timed in the
same rounds. This loads `seqjax/layers/recurrence.py` as it is at REV (it imports nothing
from seqjax) beside the working tree's and times, per step of one layer-direction with
lengths 100-T: inference (`scan_direction`) and training (value and gradient through
`scan_direction_fast` of a loss on the outputs, zeroed past each length in case a
revision's scans do not). Needs git.
"""

from __future__ import annotations

import subprocess
import types

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks import command_line
from benchmarks.kernels import _inputs
from benchmarks.timing import environment, time_interleaved
from seqjax.layers import recurrence

PATH = "seqjax/layers/recurrence.py"


def load_at(rev: str):
    """The recurrence module as committed at `rev`."""
    source = subprocess.run(
        ["git", "show", f"{rev}:{PATH}"], capture_output=True, text=True, check=True
    ).stdout
    module = types.ModuleType("recurrence_at_rev")
    exec(compile(source, f"{rev}:{PATH}", "exec"), module.__dict__)
    return module


def step_fns(module, batch: int, hidden: int, steps: int) -> dict:
    a = _inputs(batch, hidden, steps)  # the same arrays benchmarks.kernels times
    xproj, w_hh, init, probe = a["xproj"], a["w_hh"], a["init"], a["d_ys"]
    lengths = np.random.default_rng(0).integers(min(100, steps), steps + 1, batch)
    mask = jnp.asarray(np.arange(steps)[:, None, None] < lengths[None, :, None])  # (T, B, 1)

    def inference(xp, w):
        return module.scan_direction(xp, w, mask, init, reverse=False)[1]

    def loss(xp, w):
        ys = module.scan_direction_fast(xp, w, mask, init, False, 1)[1]  # (T, B, H)
        return jnp.sum(jnp.where(mask, ys, 0.0) * probe)

    fns = {"inference": jax.jit(inference), "train": jax.jit(jax.value_and_grad(loss, (0, 1)))}
    return {name: (lambda f=f: jax.block_until_ready(f(xproj, w_hh))) for name, f in fns.items()}


def main(argv: list[str] | None = None) -> dict:
    parser = command_line.parser("benchmarks.recurrence_ab", __doc__)
    parser.add_argument("rev", help="git revision to compare against, e.g. HEAD~1")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--steps", type=int, default=500)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args(argv)
    sizes = (args.batch, args.hidden, args.steps)
    fns = {}
    for label, module in (("rev", load_at(args.rev)), ("tree", recurrence)):
        for kind, fn in step_fns(module, *sizes).items():
            fns[f"{kind}_{label}"] = fn
    with jax.default_matmul_precision("highest"):
        stats = time_interleaved(fns, repeats=15, min_seconds=args.seconds)
    per_step = {name: s["median_ms"] * 1e3 / args.steps for name, s in stats.items()}
    for kind in ("inference", "train"):
        rev, tree = per_step[f"{kind}_rev"], per_step[f"{kind}_tree"]
        print(f"{kind:10s} {args.rev}: {rev:7.1f} us/step   tree: {tree:7.1f} us/step   "
              f"tree/rev {tree / rev:.3f}")  # fmt: skip
    return {
        "command": command_line.command("benchmarks.recurrence_ab", argv),
        "environment": environment(),
        "us_per_step": per_step,
    }


if __name__ == "__main__":
    main()

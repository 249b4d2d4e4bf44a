"""What one recurrence step and the weight-gradient dots cost on this device.

    python -m benchmarks.kernels [--batch 32] [--hidden 128] [--steps 500] [--quick] [--out PATH]

The LSTM layer's time is T sequential steps plus a few large matmuls. This measures each
piece in isolation (one layer-direction, steel's sizes by default), interleaved so the
pieces share the machine's load:

- `dot`: a scan whose step is only h @ W_hh (B, H) @ (H, 4H), the floor of any step;
- `inference`: the forward step (`scan_direction`);
- `inference_both_directions`: a forward and a reverse scan, independent, in one program
  (per step of T; twice `inference` where the device runs the two loops one by one);
- `forward_saving`: the forward step that also stores the backward pass's residuals;
- `backward`: the hand-written backward step, then dW_hh as one matmul (amortised per step);
- `weight_grad_*`: dW_hh = sum over steps and batch of h^T dz, as an einsum with two
  contracting dimensions in the order (b, t) and as `recurrence.weight_grad`'s (t, b);
- `step_dots`: a scan whose step is tanh(h @ W) alone, for the step's dot in four shapes:
  one direction's (B, H) @ (H, 4H); both directions' as one block-diagonal
  (B, 2H) @ (2H, 8H) (twice the FLOPs) and as one batched (2, B, H) @ (2, H, 4H); and a
  dot twice as wide, (B, H) @ (H, 8H). XLA's CPU matmul library splits a dot over the
  cores only above a size: where the one direction's dot runs at one core's rate and the
  wide one faster, the step's dot is below that size, and the shapes that would put both
  directions into one dot show whether that pays;
- `independent_chains`: 40 steps of tanh(h @ W) written out with no loop, one chain in a
  program against two independent chains in one program (per step of a chain). Where
  the two take twice as long, the device ran independent work one piece after another,
  loop or no loop: that is why a bidirectional layer cannot use a second core on one
  XLA CPU device.

Per-step figures are microseconds; the dots' are milliseconds and GFLOP/s. Every matmul is
full float32.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax

from benchmarks import command_line
from benchmarks.timing import time_interleaved
from seqjax.layers import recurrence


def _inputs(batch: int, hidden: int, steps: int) -> dict:
    keys = jax.random.split(jax.random.key(0), 4)
    return {
        "xproj": jax.random.normal(keys[0], (steps, batch, 4 * hidden)),  # (T, B, 4H)
        "w_hh": jax.random.normal(keys[1], (hidden, 4 * hidden)) * hidden**-0.5,  # (H, 4H)
        "d_ys": jax.random.normal(keys[2], (steps, batch, hidden)),  # (T, B, H)
        "mask": jnp.ones((steps, batch, 1), bool),  # (T, B, 1)
        "init": (jnp.zeros((batch, hidden)), jnp.zeros((batch, hidden))),
    }


def step_fns(batch: int, hidden: int, steps: int) -> dict:
    """Name -> zero-argument callable that blocks until its result is ready."""
    a = _inputs(batch, hidden, steps)
    xproj, w_hh, mask, init, d_ys = a["xproj"], a["w_hh"], a["mask"], a["init"], a["d_ys"]

    def dot_only(xproj, w_hh):
        def step(h, xp):
            z = xp + jnp.dot(h, w_hh)  # (B, 4H)
            return z[:, :hidden], None

        return lax.scan(step, init[0], xproj)[0]

    inference = jax.jit(lambda xp, w: recurrence.scan_direction(xp, w, mask, init, reverse=False))
    both = jax.jit(  # two independent loops in one program, as in a bidirectional layer
        lambda xp, w: [recurrence.scan_direction(xp, w, mask, init, reverse=r) for r in (0, 1)]
    )
    saving = jax.jit(lambda xp, w: recurrence._scan_forward_saving(xp, w, mask, init, False, 1))
    saved = saving(xproj, w_hh)[2]
    backward = jax.jit(
        lambda s, w, dy: recurrence._backward_scan(s, w, mask, init, dy, reverse=False, unroll=1)
    )
    fns = {
        "dot": (jax.jit(dot_only), (xproj, w_hh)),
        "inference": (inference, (xproj, w_hh)),
        "inference_both_directions": (both, (xproj, w_hh)),
        "forward_saving": (saving, (xproj, w_hh)),
        "backward": (backward, (saved, w_hh, d_ys)),
    }
    return {
        name: (lambda f=f, args=args: jax.block_until_ready(f(*args)))
        for name, (f, args) in fns.items()
    }


def step_dot_fns(batch: int, hidden: int, steps: int) -> tuple[dict, dict]:
    """(name -> zero-argument callable, name -> FLOPs a step) for `step_dots`."""
    key = jax.random.key(4)
    h, g = hidden, 4 * hidden
    shapes = {  # name -> (h0 shape, W shape)
        "one_direction": ((batch, h), (h, g)),
        "block_diagonal_directions": ((batch, 2 * h), (2 * h, 2 * g)),
        "batched_directions": ((2, batch, h), (2, h, g)),
        "twice_as_wide": ((batch, h), (h, 2 * g)),
    }

    def loop(h0, w):
        def step(carry, _):
            z = jnp.einsum("...bk,...kn->...bn", carry, w)  # (..., B, N)
            return jnp.tanh(z)[..., : carry.shape[-1]], None

        return lax.scan(step, h0, None, length=steps)[0]

    fns, flops = {}, {}
    for name, (h_shape, w_shape) in shapes.items():
        h0 = jax.random.normal(key, h_shape)  # (..., B, K)
        # (..., K, N); dense where the name says block-diagonal: a dot's time is its shape's
        w = jax.random.normal(key, w_shape) * w_shape[-2] ** -0.5
        f = jax.jit(loop)
        fns[name] = lambda f=f, h0=h0, w=w: jax.block_until_ready(f(h0, w))
        flops[name] = 2 * h0.size * w_shape[-1]
    return fns, flops


CHAIN_STEPS = 40


def chain_fns(batch: int, hidden: int) -> dict:
    """One and two independent straight-line chains of CHAIN_STEPS matmul + tanh steps."""
    w = jax.random.normal(jax.random.key(2), (hidden, 4 * hidden)) * hidden**-0.5  # (H, 4H)
    h0 = jax.random.normal(jax.random.key(3), (batch, hidden))  # (B, H)

    def chain(h):
        for _ in range(CHAIN_STEPS):
            h = jnp.tanh(h @ w)[:, :hidden]  # (B, H)
        return h

    one = jax.jit(lambda a, b: (chain(a), b))
    two = jax.jit(lambda a, b: (chain(a), chain(b)))
    return {
        name: (lambda f=f: jax.block_until_ready(f(h0, h0 + 1.0)))
        for name, f in (("one_chain", one), ("two_chains", two))
    }


def weight_grad_fns(batch: int, hidden: int, steps: int) -> dict:
    keys = jax.random.split(jax.random.key(1), 2)
    h = jax.random.normal(keys[0], (steps, batch, hidden))  # (T, B, H)
    dz = jax.random.normal(keys[1], (steps, batch, 4 * hidden))  # (T, B, 4H)
    forms = {
        "weight_grad_einsum": jax.jit(lambda h, dz: jnp.einsum("tbh,tbg->hg", h, dz)),
        "weight_grad_dot_general": jax.jit(recurrence.weight_grad),
    }
    return {name: (lambda f=f: jax.block_until_ready(f(h, dz))) for name, f in forms.items()}


def main(argv: list[str] | None = None) -> dict:
    parser = command_line.parser("benchmarks.kernels", __doc__)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--steps", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--quick", action="store_true", help="50 steps, 3 repeats")
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    if args.quick:
        args.steps, args.repeats = 50, 3
    b, h, t = args.batch, args.hidden, args.steps
    with jax.default_matmul_precision("highest"):
        steps = time_interleaved(step_fns(b, h, t), repeats=args.repeats)
        dots = time_interleaved(weight_grad_fns(b, h, t), repeats=args.repeats)
        chains = time_interleaved(chain_fns(b, h), repeats=args.repeats * 4)
        dot_fns, dot_flops = step_dot_fns(b, h, t)
        step_dots = time_interleaved(dot_fns, repeats=args.repeats)
    per_step = {
        name: {
            "median_us": s["median_ms"] * 1e3 / t,
            "p90_us": s["p90_ms"] * 1e3 / t,
            "repeats": s["repeats"],
        }
        for name, s in steps.items()
    }
    flop = 2 * t * b * h * 4 * h
    for s in dots.values():
        s["gflop_per_s"] = flop / s["median_ms"] / 1e6
    for name, s in per_step.items():
        print(f"{name:26s} {s['median_us']:8.1f} us/step (p90 {s['p90_us']:.1f})")
    for name, s in dots.items():
        print(f"{name:24s} {s['median_ms']:8.2f} ms  {s['gflop_per_s']:6.1f} GFLOP/s")
    step_dots = {
        name: {
            "median_us": s["median_ms"] * 1e3 / t,
            "gflop_per_s": dot_flops[name] * t / s["median_ms"] / 1e6,
            "repeats": s["repeats"],
        }
        for name, s in step_dots.items()
    }
    for name, s in step_dots.items():
        print(f"dot {name:26s} {s['median_us']:8.1f} us/step {s['gflop_per_s']:6.1f} GFLOP/s")
    independent = {
        name: {"median_us_per_step": s["median_ms"] * 1e3 / CHAIN_STEPS, "repeats": s["repeats"]}
        for name, s in chains.items()
    }
    for name, s in independent.items():
        print(f"{name:26s} {s['median_us_per_step']:8.1f} us/step, no loop")
    fields = {
        "quick": args.quick,
        "config": {"batch": b, "hidden": h, "steps": t, "matmuls": "float32, no TF32"},
        "per_step": per_step,
        "weight_grad": dots,
        "step_dots": step_dots,
        "independent_chains": independent,
    }
    return command_line.save_results("kernels", argv, args.out, fields)


if __name__ == "__main__":
    main()

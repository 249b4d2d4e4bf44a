"""The LSTM's loop shape per platform, when its options are left at None: unroll, input
projection chunks, one scan or two for a bidirectional layer, length groups.

Why a module of their own: each default is a measurement (CPU, GPU) or a reasoned guess
(TPU), and each docstring below keeps the figures and the command that chose it. `LSTM`
reads them through its own module's names, so a test or a benchmark can swap one there
(`monkeypatch.setattr(seqjax.layers.lstm, "loop_defaults", ...)`).
"""

from __future__ import annotations

from seqjax.layers.recurrence import projection_chunk


def loop_defaults(platform: str, features: int, hidden: int, steps: int) -> tuple[int, int, int]:
    """(unroll, projection chunk, inference projection chunk) that `LSTM` uses on
    `platform` (`jax.default_backend()`) for a layer of `features` inputs and `hidden`
    units over `steps` steps.

    On a GPU every loop iteration costs about 14 µs of launch and synchronisation (an
    empty scan step on an H100, benchmarks/results/scaling_nvidia-h100-80gb-hbm3.json),
    far more than a step's arithmetic at these sizes, so there the scan is unrolled 16
    steps and the input is projected for the whole sequence at once: steel's stack
    trained in 30.9 ms instead of 54.7 (benchmarks/results/backends_nvidia-h100-80gb-
    hbm3.log). A TPU, or any other accelerator, gets the same: not measured there, but its
    matrix units also want one large projection rather than a small matmul per step, and
    a loop step of small matmuls also costs more than its arithmetic; the CPU's choices
    below are tuned to one core's caches.

    On CPU, unroll 8 was up to 40% slower than 1. There, an input narrower than the hidden
    state is projected inside the loop (chunk 1): up front, a (T*B, F) @ (F, 4H) matmul
    with F = 5 uses the matmul units poorly and its (T, B, 4H) result, 4H/F times the
    input's size, is read back each step, where inside the loop it is one small matmul
    more per step. Wider inputs are projected all at once for training, which trained
    steel's stack faster than chunks of 32, and ~32 steps at a time for inference, where a
    chunk's projection is read back while it is still in cache (`python -m
    benchmarks.backends`, `python -m benchmarks.stack_ab`). An input at least half the
    hidden width (trend's F = 62, H = 64) is projected up front for inference too: there
    the two directions' projections run on two threads, where inside the loops each is
    one more matmul on the one thread that runs the steps (trend's stack inferred 1.01-1.05x
    as fast in five runs, training unchanged: `python -m benchmarks.stack_ab bce6bc2
    --only trend`, benchmarks/results/stack_ab_trend_infer_projection_cpu_amd-epyc.json).

    A symbolic length (`jax.export` with shape polymorphism) runs unroll 1 and, for
    inference, projects the whole sequence at once: the other choices need the length.
    """
    known = isinstance(steps, int)  # not a symbolic length (`jax.export`, shape polymorphism)
    if platform != "cpu":
        return (16 if known else 1), 0, 0  # an unrolled scan needs its length
    infer_chunk = projection_chunk(steps) if known else 0  # a chunk must divide the length
    if features < hidden:
        return 1, 1, (1 if 2 * features < hidden else infer_chunk)
    return 1, 0, infer_chunk


def fused_directions_default(platform: str) -> bool:
    """Whether `LSTM` runs both directions of a bidirectional layer as one vmapped scan on
    `platform` when `fused_directions` is left at None.

    On a GPU a scan step costs its launches, not its arithmetic, so one loop of T steps
    doing a (2, B, H) @ (2, H, 4H) matmul beats two loops of T steps: steel's side-by-side
    stack (B=32, T=500, H=128, 2 layers, lengths 100-500) trained in 18.3 ms against 30.5
    and inferred in 8.99 against 15.6 on an H200, its loss and gradients within 1.2e-4
    (`python -m benchmarks.side_by_side --only steel`,
    benchmarks/results/side_by_side_steel_nvidia-h200.json). A TPU gets the same: not
    measured there, but its loop steps are sequential too and the matrix units take the
    doubled rows at no extra cost at these sizes. On a CPU a step is one core's matmul,
    and two scans measured faster: steel's stack 683 / 194 ms (train / inference) against
    710 / 219 fused, trend's 5.65 / 1.90 against 6.66 / 2.02 (`python -m
    benchmarks.backends --only trend --only steel`,
    benchmarks/results/backends_cpu_amd-epyc.json), and length groups, which need
    separate scans, are faster still there.
    """
    return platform != "cpu"


def length_groups_default(platform: str, steps: int) -> int:
    """How many length groups `LSTM` runs a batch's rows in on `platform` when
    `length_groups` is left at None (seqjax/layers/length_groups.py).

    On CPU a step's cost is its matmul, which shrinks with the rows it computes. Steel's
    side-by-side stack (lengths 100-500) in 1, 4, 8 and 16 groups, in the same rounds:
    inference 193.8, 170.3, 156.3 and 156.2 ms, training 602, 571, 543 and 566 ms; but
    each group is another copy of the loop for XLA to compile, and the forward and train
    calls' first run (compilation, mostly) took 4.7, 10.5, 17.4 and 29.8 s
    (`python -m benchmarks.backends --only steel`,
    benchmarks/results/backends_length_groups_cpu_amd-epyc.json). Four groups take most
    of the gain for a fraction of the compilation; `length_groups=8` suits long runs.
    Shorter loops save too little for that: the hybrid system's 64 steps (lengths 32-64)
    trained no faster in 4 groups and compiled its train step in 17.5 s against 8.1
    (`compile_train_step_s` of `python -m benchmarks`, benchmarks/results/cpu_amd-epyc.json
    at commit 8524fba against 135067e), so the default starts at 128
    steps (trust's 2, trend's 12 and the hybrid's 64 keep one group). On a GPU a step
    costs its launches, not its rows, and the scan is unrolled, which the phased loops are
    not: one group there.
    """
    if not isinstance(steps, int):
        return 1  # a symbolic length (`jax.export`): phase bounds need it known
    return 4 if platform == "cpu" and steps >= 128 else 1

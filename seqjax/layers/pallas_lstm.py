"""One LSTM layer's recurrence, both directions, as a fused Pallas (Triton) GPU kernel.

Why: on a GPU a `lax.scan` launches a few small kernels per step, and each step costs
about 14 µs of launch and synchronisation (an empty scan step on an H100,
benchmarks/results/scaling_nvidia-h100-80gb-hbm3.json), so steel's 500-step stack
trained in 30.9 ms against PyTorch cuDNN's 10.2. Here one kernel launch runs all T steps,
W_hh is read every step (from L2, where it stays), and the program grid is (direction,
batch block), so both directions and all batch blocks run at once on different
multiprocessors (the rows of a batch never interact).

Status: opt-in (`LSTM(backend="pallas")`), and `backend="auto"` never picks it: on an H200
it trained and inferred steel's stack in 99.3 / 16.8 ms (41.5 / 17.3 in three TF32
passes) against 30.5 / 15.6 for the scan as two loops and 18.3 / 9.0 as one
(benchmarks/results/side_by_side_steel_nvidia-h200.json): each of its few programs reads
all of W_hh from L2 every step. The "units" layout (`layout="units"`,
layers/pallas_units.py) splits the hidden units over programs that keep their slice of
W_hh on chip instead; the dispatch to it is `KernelOptions.layout`.

The input projection and, for training, everything that is not sequential stay in XLA:
the forward kernel writes the carries (h, c) of every step; the gate pre-activations are
then recomputed for all steps in one large matmul and turned into the residuals of
`recurrence.step_residuals`, and a second kernel runs the backward recurrence over them,
writing the gate cotangents dz from which XLA forms dW_hh and the input gradients as large
matmuls, as the scan's hand-written backward pass does.

Where it runs: CUDA GPUs (Triton). Elsewhere `interpret=True` runs the same kernels in
Pallas's interpreter, which is how the tests check them on CPU (slowly). Each step works
on tiles of `unit` hidden units in loops the compiler keeps: a gate's pre-activation tile
is a sum of (bb, unit) @ (unit, unit) matmuls, and the carry is read back from the
outputs the previous step wrote (a (bb, H) tile a step, small beside W_hh's H x 4H),
because a Triton kernel cannot index a value held in registers by a loop counter. The
first version held the carry in registers and unrolled the tiles; compiled offline for
sm_90 (`python -m benchmarks.triton_compile`, benchmarks/results/triton_sm90.json) its
kernels spilled registers into a 9-11 KB stack per thread at H=128 (19 KB at H=256,
where they took 40 s and 80-130 s to compile); at its defaults (unit 64, 8 warps) this
one spills at most 104 bytes (float32's backward kernel at H=256; none in the forward
kernels) and each kernel compiles in about a second.
Triton needs power-of-two tile sizes, so H must be a power of two >= 16; the batch is
padded to blocks of 16 rows with length-0 rows. Matmuls are float32 at full precision (no
TF32) by default, so results match the scan to float32 rounding; `precision="tf32x3"` sums
three TF32 tensor-core passes instead, near float32's accuracy; which is faster is for a
GPU session to measure (both are timed by `benchmarks.side_by_side` and `.backends`).
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
from jax import lax
from jax.experimental import pallas as pl

from seqjax.layers.per_shard import per_shard
from seqjax.layers.recurrence import gate_scale, step_residuals, sum_to_vma

BLOCK_B = 16  # batch rows per program: the smallest M of a Triton matmul tile
# Hidden units per tile and warps per program: the sm_90 compile's choice, with no spilled
# registers but <= 104 bytes in float32's backward kernel (benchmarks/results/
# triton_sm90.json); `benchmarks.pallas_tiles` times the other choices on a GPU.
UNIT = 64
NUM_WARPS = 8
# The kernels' matmul algorithms: IEEE float32 on the CUDA cores, or three TF32 tensor-core
# passes whose sum keeps about float32's accuracy (Triton's input_precision "tf32x3").
PRECISIONS = {
    "float32": lax.Precision.HIGHEST,
    "tf32x3": lax.DotAlgorithmPreset.TF32_TF32_F32_X3,
}


# How the kernels split a layer's work over programs: "rows", each program all hidden
# units of 16 rows (this file); "units", each program a tile of hidden units, the tiles of
# a row block meeting at a barrier every step (layers/pallas_units.py).
LAYOUTS = ("rows", "units")


@dataclasses.dataclass(frozen=True)
class KernelOptions:
    """The kernels' static choices (hashable: a custom VJP's non-differentiable argument)."""

    interpret: bool = False  # Pallas's interpreter, on any platform, instead of Triton
    unit: int = UNIT  # hidden units per tile (capped at H)
    precision: str = "float32"  # a key of PRECISIONS; the interpreter always uses float32
    num_warps: int = NUM_WARPS  # warps per program (Triton)
    layout: str = "rows"  # a key of LAYOUTS

    def __post_init__(self):
        if self.precision not in PRECISIONS:
            raise ValueError(
                f"pallas precision must be one of {sorted(PRECISIONS)}; got {self.precision!r}"
            )
        if self.layout not in LAYOUTS:
            raise ValueError(f"pallas layout must be one of {LAYOUTS}; got {self.layout!r}")

    def dot_precision(self):
        """What `lax.dot_general` gets: the interpreter runs on XLA's CPU or GPU backends,
        which do not all take TF32 algorithms, so interpreted dots are plain float32."""
        return PRECISIONS["float32" if self.interpret else self.precision]


def pallas_blockers(hidden: int, dtype) -> list[str]:
    """Why the fused kernel cannot run a layer of this shape (empty: it can)."""
    why = []
    if hidden < 16 or hidden & (hidden - 1):
        why.append(f"it needs hidden_size a power of two >= 16 (got {hidden})")
    if jnp.dtype(dtype) != jnp.float32:
        why.append(f"it computes in float32 only (dtype {jnp.dtype(dtype).name})")
    return why


def _triton():
    """Pallas's Triton module, imported when a kernel is built rather than with seqjax, so
    a JAX installation without it still imports the rest of the library."""
    from jax.experimental.pallas import triton

    return triton


def _triton_params(opts: KernelOptions):
    """One pipeline stage: the loop over time is a recurrence, so prefetching the next
    iteration's W_hh blocks buys little, and with Triton's default of 3 stages the first
    version of these kernels asked for 520 KB of shared memory at H=128 (compiled offline
    for sm_90), over the H100's 227 KB."""
    return _triton().CompilerParams(num_warps=opts.num_warps, num_stages=1)


def _time_index(s, direction, steps):
    """Step s of the loop -> time index: forward for direction 0, backward for 1."""
    return s + direction * (steps - 1 - 2 * s)


def _cols(q: int, u: int, hidden: int, unit: int):
    """Columns of gate q's unit tile u in a (.., 4H) array: hidden units [u*unit, (u+1)*unit)."""
    return pl.ds(q * hidden + u * unit, unit)


def _mm(a, b, opts: KernelOptions, trans_b=False):
    """a @ b (or a @ b.T) at the options' precision."""
    return _triton().dot(a, b, trans_b=trans_b, precision=opts.dot_precision())


def _dot(a, w_ref, rows, cols, opts: KernelOptions, trans_b=False):
    """a @ w_ref[rows, cols] (or its transpose), at the options' precision."""
    return _mm(a, w_ref[rows, cols], opts, trans_b)


def _barrier(opts: KernelOptions) -> None:
    """Makes this step's stores visible to every thread of the program before the next
    step loads them (they are spread over threads differently). The interpreter runs a
    program as whole-array operations in order, and has no barrier to lower."""
    if not opts.interpret:
        _triton().debug_barrier()


def _program(seq_ref, w_ref, len_ref, opts: KernelOptions):
    """What both kernels start from: (steps, hidden, unit, tiles per (bb, H) value, this
    program's direction, its rows' lengths (bb, 1))."""
    steps, hidden = seq_ref.shape[0], w_ref.shape[0]
    unit = min(opts.unit, hidden)
    return steps, hidden, unit, hidden // unit, pl.program_id(0), len_ref[...][:, None]


def _carry_in(s, init_ref, ref, slot, k: int, unit: int):
    """Tile k (bb, unit) of a carry entering loop step s: the initial one (bb, H) at s = 0,
    else what the step before stored in ref[slot]."""
    cols = pl.ds(k * unit, unit)
    return jnp.where(s == 0, init_ref[:, cols], ref[slot, :, cols])


def _loop(count: int, body, init=0):
    """A loop the compiler keeps as a loop (scf.for): the kernels' code stays one tile's
    worth, whatever H is. Python loops would unroll 4 (H/unit)^2 matmuls into each step,
    whose registers spill and whose compile time grows past minutes at H=256."""
    return lax.fori_loop(0, count, body, init)


def _forward_kernel(x_ref, w_ref, len_ref, h0_ref, c0_ref, hs_ref, cs_ref, *, opts):
    """x_ref (T, bb, 4H) gate-scaled projected input with bias; w_ref (H, 4H) gate-scaled
    W_hh; len_ref (bb,); h0_ref, c0_ref (bb, H). Writes the carry after every step into
    hs_ref, cs_ref (T, bb, H): held through padded steps, as the scan's carry is.

    The carry lives in those outputs: step s reads the one step s-1 wrote (or h0, c0),
    one tile of `unit` hidden units at a time, and each gate's pre-activation tile is a
    sum of (bb, unit) @ (unit, unit) matmuls, looped over tiles, so the registers and the
    code hold one tile's work, and one W_hh block in flight is unit x unit float32."""
    steps, hidden, unit, n, direction, lengths = _program(x_ref, w_ref, len_ref, opts)

    def step(s, _):
        t = _time_index(s, direction, steps)
        t_prev = _time_index(jnp.maximum(s - 1, 0), direction, steps)
        valid = lengths > t  # (bb, 1)

        def entering(init_ref, ref, k):  # the carry's tile k entering step s
            return _carry_in(s, init_ref, ref, t_prev, k, unit)

        def tile(u, _):  # hidden units [u*unit, (u+1)*unit) of the carry after step s
            def accumulate(k, z):
                h_k, rows = entering(h0_ref, hs_ref, k), pl.ds(k * unit, unit)
                return tuple(
                    z[q] + _dot(h_k, w_ref, rows, _cols(q, u, hidden, unit), opts) for q in range(4)
                )

            x = tuple(x_ref[t, :, _cols(q, u, hidden, unit)] for q in range(4))
            z = _loop(n, accumulate, x)
            ti, tf, tg, to = (jnp.tanh(zq) for zq in z)  # gate-scaled: sigmoid = tanh/2 + 1/2
            c = entering(c0_ref, cs_ref, u)
            c_new = (0.5 * tf + 0.5) * c + (0.5 * ti + 0.5) * tg
            h_new = (0.5 * to + 0.5) * jnp.tanh(c_new)
            cols = pl.ds(u * unit, unit)
            hs_ref[t, :, cols] = jnp.where(valid, h_new, entering(h0_ref, hs_ref, u))
            cs_ref[t, :, cols] = jnp.where(valid, c_new, c)
            return _

        _loop(n, tile)
        _barrier(opts)
        return _

    _loop(steps, step)


def _backward_kernel(
    dy_ref, k_ref, p_ref, f_ref, w_ref, len_ref, dh_ref, dc_ref, dz_ref, dh_buf, dc_buf,
    *, opts,
):  # fmt: skip
    """The hand-written backward recurrence of `recurrence._backward_scan`, all steps in
    one launch: dy_ref, p_ref, f_ref (T, bb, H), k_ref (T, bb, 4H), w_ref (H, 4H),
    dh_ref, dc_ref (bb, H) the cotangent of the final carry. Writes dz_ref (T, bb, 4H);
    the carry's cotangent lives in dh_buf, dc_buf (2, bb, H), step s reading slot s % 2
    and writing the other, so the initial carry's cotangent ends in slot T % 2. Tiled and
    looped as the forward kernel."""
    steps, hidden, unit, n, direction, lengths = _program(dy_ref, w_ref, len_ref, opts)

    def step(s, _):
        t = _time_index(steps - 1 - s, direction, steps)  # the forward order, reversed
        valid = lengths > t
        now = lax.rem(s, 2)  # jnp's % lowers to a select Triton's lowering rejects
        after = 1 - now

        def entering(init_ref, buf, k):  # the cotangent's tile k entering step s
            return _carry_in(s, init_ref, buf, now, k, unit)

        def gate_tile(u, _):  # dz of hidden units [u*unit, (u+1)*unit), all four gates
            cols = pl.ds(u * unit, unit)
            dh = jnp.where(valid, dy_ref[t, :, cols] + entering(dh_ref, dh_buf, u), 0.0)
            dc_next = entering(dc_ref, dc_buf, u)
            dc = jnp.where(valid, dc_next, 0.0) + dh * p_ref[t, :, cols]
            for q in range(4):
                gate = _cols(q, u, hidden, unit)
                dz_ref[t, :, gate] = (dh if q == 3 else dc) * k_ref[t, :, gate]
            dc_buf[after, :, cols] = dc * f_ref[t, :, cols] + jnp.where(valid, 0.0, dc_next)
            return _

        def carry_tile(k, _):  # dh entering step s-1, hidden units [k*unit, (k+1)*unit)
            rows = pl.ds(k * unit, unit)

            def accumulate(u, acc):
                for q in range(4):
                    gate = _cols(q, u, hidden, unit)
                    acc = acc + _dot(dz_ref[t, :, gate], w_ref, rows, gate, opts, trans_b=True)
                return acc

            held = jnp.where(valid, 0.0, entering(dh_ref, dh_buf, k))
            dh_buf[after, :, rows] = _loop(n, accumulate, held)
            return _

        _loop(n, gate_tile)
        _barrier(opts)  # carry_tile reads back every tile of dz
        _loop(n, carry_tile)
        _barrier(opts)
        return _

    _loop(steps, step)


def _spec(shape: tuple[int, ...], batch_axis: int) -> pl.BlockSpec:
    """The block of a (D, ..., B, ...) array that program (d, b) sees: direction d's
    `BLOCK_B` rows of batch block b, every other axis whole; a (B,) array's rows alone."""
    if len(shape) == 1:
        return pl.BlockSpec((BLOCK_B,), lambda d, b: (b,))
    block = [None, *shape[1:]]  # None: the direction axis, squeezed out in the kernel
    block[batch_axis] = BLOCK_B

    def index(d, b):
        return tuple(d if i == 0 else b if i == batch_axis else 0 for i in range(len(shape)))

    return pl.BlockSpec(tuple(block), index)


def _out_struct(shape: tuple[int, ...], like: jax.Array, dtype=jnp.float32) -> jax.ShapeDtypeStruct:
    """An output (float32 unless told) that varies over the manual mesh axes `like` varies
    over: inside `shard_map` a pallas_call must say how its outputs vary, as a scan's
    carry must."""
    aval = jax.typeof(like)
    manual = getattr(aval, "manual_axis_type", None)  # jax >= 0.10
    if manual is not None:
        return jax.ShapeDtypeStruct(shape, dtype, manual_axis_type=manual)
    vma = getattr(aval, "vma", None)  # jax 0.6-0.9
    return jax.ShapeDtypeStruct(shape, dtype, **({"vma": vma} if vma else {}))


def _call(kernel, opts: KernelOptions, inputs, batch_axes, outputs):
    """pallas_call over the (direction, batch block) grid. inputs: arrays (D, ...) or the
    (B,) lengths; batch_axes: each one's batch axis (None: a per-direction weight, whole
    to every program); outputs: (shape, batch axis) pairs, float32."""

    def spec(x, axis):
        if axis is None:  # (D, ...) weights: direction d's, whole
            return pl.BlockSpec((None, *x.shape[1:]), lambda d, b: (d,) + (0,) * (x.ndim - 1))
        return _spec(x.shape, axis)

    directions = inputs[0].shape[0]
    batch = inputs[0].shape[batch_axes[0]]
    return pl.pallas_call(
        functools.partial(kernel, opts=opts),
        out_shape=[_out_struct(shape, inputs[0]) for shape, _ in outputs],
        grid=(directions, batch // BLOCK_B),
        in_specs=[spec(x, a) for x, a in zip(inputs, batch_axes, strict=True)],
        out_specs=[_spec(shape, axis) for shape, axis in outputs],
        compiler_params=None if opts.interpret else _triton_params(opts),
        interpret=opts.interpret,
        name=kernel.__name__.strip("_"),
    )(*inputs)


def forward_carries(xproj, w_hh, lengths, h0, c0, opts: KernelOptions = KernelOptions()):
    """Both directions' recurrences in one launch.

    xproj: (D, T, B, 4H) float32 gate-scaled input projections with bias, in time order
      for both directions; w_hh (D, H, 4H) gate-scaled; lengths (B,) int32, B a multiple
      of `BLOCK_B`; h0, c0 (D, B, H). Direction 1 runs backward in time.
    Returns hs, cs (D, T, B, H): each step's carry, held through padded steps.
    """
    if opts.layout == "units":
        return _units().forward_carries(xproj, w_hh, lengths, h0, c0, opts)
    d, steps, batch, gates = xproj.shape
    carries = ((d, steps, batch, gates // 4), 2)
    hs, cs = _call(
        _forward_kernel,
        opts,
        (xproj, w_hh, lengths, h0, c0),
        (2, None, 0, 1, 1),
        (carries, carries),
    )
    return hs, cs


def backward_gates(d_ys, k, p, f, w_hh, lengths, dh, dc, opts: KernelOptions = KernelOptions()):
    """The backward recurrence of both directions in one launch (arguments as
    `_backward_kernel`'s, each with the leading direction axis D).
    Returns dz (D, T, B, 4H) and the initial carry's cotangent dh0, dc0 (D, B, H)."""
    if opts.layout == "units":
        return _units().backward_gates(d_ys, k, p, f, w_hh, lengths, dh, dc, opts)
    d, steps, batch, gates = k.shape
    buffer = ((d, 2, batch, gates // 4), 2)  # the carry's cotangent, two slots
    dz, dh_buf, dc_buf = _call(
        _backward_kernel,
        opts,
        (d_ys, k, p, f, w_hh, lengths, dh, dc),
        (2, 2, 2, 2, None, 0, 1, 1),
        (((d, steps, batch, gates), 2), buffer, buffer),
    )
    return dz, dh_buf[:, steps % 2], dc_buf[:, steps % 2]


def layout_defaults(layout: str) -> KernelOptions:
    """A layout's default tile width and warps: what `pallas_layer` takes for None."""
    if layout == "units":
        return KernelOptions(unit=_units().UNIT, num_warps=_units().NUM_WARPS, layout=layout)
    return KernelOptions(unit=UNIT, num_warps=NUM_WARPS, layout=layout)


def _units():
    """layers/pallas_units.py, imported when used: it builds on this module's helpers."""
    from seqjax.layers import pallas_units

    return pallas_units


def _entering(carries: jax.Array, init: jax.Array) -> jax.Array:
    """The carry entering each step, (D, T, B, H), from each step's carry after it and the
    initial one (D, B, H): the step before in time forward, the step after backward."""
    parts = [jnp.concatenate([init[0][None], carries[0, :-1]])]
    if carries.shape[0] == 2:
        parts.append(jnp.concatenate([carries[1, 1:], init[1][None]]))
    return jnp.stack(parts)


def _outputs(hs, cs, lengths):
    """((h_n, c_n), ys) from every step's carries hs, cs (D, T, B, H): ys zero past each
    length, h_n, c_n (D, B, H) the carry after each direction's last step (t = T-1
    forward, t = 0 backward)."""
    directions, steps = hs.shape[:2]
    mask = (jnp.arange(steps)[:, None] < lengths[None, :])[None, :, :, None]  # (1, T, B, 1)
    last = [steps - 1, 0][:directions]
    h_n = jnp.stack([hs[d, t] for d, t in enumerate(last)])  # (D, B, H)
    c_n = jnp.stack([cs[d, t] for d, t in enumerate(last)])
    return (h_n, c_n), jnp.where(mask, hs, 0.0)


def _layer_fwd(xproj, w_hh, lengths, h0, c0, opts):
    hs, cs = forward_carries(xproj, w_hh, lengths, h0, c0, opts)
    return _outputs(hs, cs, lengths), (xproj, w_hh, lengths, h0, c0, hs, cs)


def _layer(xproj, w_hh, lengths, h0, c0, opts):
    return _layer_fwd(xproj, w_hh, lengths, h0, c0, opts)[0]  # unused residuals: dropped


def _layer_bwd(opts, residuals, cotangents):
    """Residuals for all steps at once from the saved carries (one large matmul
    recomputes the gate pre-activations), then the backward kernel, then dW_hh as one
    batched matmul over (T*B) rows."""
    xproj, w_hh, lengths, h0, c0, hs, cs = residuals
    (dh_n, dc_n), d_ys = cotangents
    h_prev = _entering(hs, h0)  # (D, T, B, H)
    c_prev = _entering(cs, c0)
    full = lax.Precision.HIGHEST
    z = xproj + jnp.einsum("dtbh,dhg->dtbg", h_prev, w_hh, precision=full)  # (D, T, B, 4H)
    _, _, (_, k, p, f) = step_residuals(z, h_prev, c_prev)
    dz, dh0, dc0 = backward_gates(d_ys, k, p, f, w_hh, lengths, dh_n, dc_n, opts)
    dw = jnp.einsum("dtbh,dtbg->dhg", h_prev, dz, precision=full)  # (D, H, 4H)
    return dz, sum_to_vma(dw, w_hh), None, dh0, dc0


# One layer's recurrence, both directions (`opts` static): ((h_n, c_n), ys) from
# the input projections, with the two kernels above as its forward and backward passes.
_fused_layer = jax.custom_vjp(_layer, nondiff_argnums=(5,))
_fused_layer.defvjp(_layer_fwd, _layer_bwd)


def pallas_layer(
    xproj, w_hh, lengths, h0, c0, *, interpret: bool = False, unit: int | None = None,
    precision: str = "float32", num_warps: int | None = None, layout: str = "rows",
):  # fmt: skip
    """One LSTM layer's recurrence in the fused kernels, differentiable.

    xproj: (D, T, B, 4H) float32, x @ W_ih + biases, both directions in time order;
      w_hh: (D, H, 4H); lengths: (B,) int; h0, c0: (D, B, H). Both are scaled here by
      `gate_scale` for the kernels, which take gate-scaled ones.
    Returns (h_n, c_n) each (D, B, H) and ys (D, T, B, H), zero past each length: what
    `recurrence.scan_direction` returns per direction. Under a mesh with a `data` axis it
    runs per shard (`per_shard`); the batch is padded to whole blocks inside. `layout`: a
    key of `LAYOUTS`. `unit` is the tile width in hidden units (capped at H; None: the
    layout's default); tests set it small to check the tiling of a large H on a small
    one. `precision`: a key of `PRECISIONS`; `num_warps`: Triton's warps per program
    (None: the layout's default).
    """
    default = layout_defaults(layout)
    opts = KernelOptions(
        interpret, unit or default.unit, precision, num_warps or default.num_warps, layout
    )

    def run(xproj, w_hh, lengths, h0, c0):
        scale = gate_scale(w_hh.shape[1])  # (4H,)
        xproj = xproj * scale[None, None, None, :]  # (D, T, B, 4H)
        w_hh = w_hh * scale[None, None, :]  # (D, H, 4H)
        batch = lengths.shape[0]
        block, launch = BLOCK_B, None  # rows per program; rows per launch (None: all)
        if opts.layout == "units":  # every program of a launch resident at once
            # (interpreted too, where it changes nothing but runs a GPU's launches)
            block, launch = _units().launch_rows(w_hh.shape[0], w_hh.shape[1], opts)
        pad = -batch % block

        def padded(x, axis):  # extra rows of length 0: every step masked
            return jnp.pad(x, [(0, pad if i == axis else 0) for i in range(x.ndim)])

        args = (padded(xproj, 2), w_hh, padded(lengths.astype(jnp.int32), 0),
                padded(h0, 1), padded(c0, 1))  # fmt: skip
        rows = batch + pad
        parts = [
            _fused_layer(*_rows(args, start, launch or rows), opts)
            for start in range(0, rows, launch or rows)
        ]
        (h_n, c_n), ys = jax.tree.map(
            lambda *x: jnp.concatenate(x, axis=x[0].ndim - 2), *parts
        )  # (D, B, H) twice and (D, T, B, H): the batch is the second axis from the end
        return h_n[:, :batch], c_n[:, :batch], ys[:, :, :batch]

    # Pallas's interpreter drops the varying-axes types of its loop carry inside shard_map
    # (jax 0.10.2: "Scan carry input and output got mismatched varying manual axes"), so
    # interpreted, the shards run without those types; compiled kernels keep them.
    shard = per_shard(
        run, batch_dims=(2, None, 0, 1, 1), out_batch_dims=(1, 1, 2), check_vma=not interpret
    )
    h_n, c_n, ys = shard(xproj, w_hh, lengths, h0, c0)
    return (h_n, c_n), ys


def _rows(args, start: int, count: int):
    """The layer's arguments (xproj, w_hh, lengths, h0, c0) for rows [start, start+count)."""
    xproj, w_hh, lengths, h0, c0 = args
    return (xproj[:, :, start : start + count], w_hh, lengths[start : start + count],
            h0[:, start : start + count], c0[:, start : start + count])  # fmt: skip

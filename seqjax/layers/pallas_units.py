"""The fused Pallas LSTM kernels in the "units" layout: a layer's hidden units split over
programs that hold their slice of W_hh on chip and meet at a barrier every step.

Why: the "rows" kernels (pallas_lstm.py) give each program a direction, 16 rows and all H
hidden units. On an H200 they ran steel's stack at 16.8 µs an inference step, float32 or
three TF32 passes alike, against 4.2 µs for PyTorch's cuDNN call
(benchmarks/results/side_by_side_steel_nvidia-h200.json): each program re-reads all of
W_hh (256 KB at H = 128) from L2 every step in a chain of small dependent loads, and a
batch of 32 keeps 4 of the 132 multiprocessors busy. cuDNN's persistent kernels keep
W_hh on chip instead, a slice per block, and the blocks exchange the new h every step.
This is that design in Triton:

- Program (d, b, u) owns hidden units [u*unit, (u+1)*unit) of direction d for the rows of
  block b. Before the loop over time it loads W_hh's columns of those units for the four
  gates (H x 4*unit floats: 32 KB at H = 128, unit 16) and keeps them on chip for the
  whole sequence (compiled for sm_90 at H = 128, in shared memory), its tile of the cell
  state in registers.
- Each step it reads the whole h of the step before (its rows' (bb, H), written by the
  programs of its group), computes its gates with four (bb, H) @ (H, unit) matmuls,
  writes its tile of h, and waits until every program of its group has written theirs.
- The wait is a barrier in global memory: a counter per (direction, row block) that each
  program increments once a step, atomically with acquire/release order at GPU scope
  (Triton's default), after a barrier of its own threads, as CUDA's cooperative grid sync
  does; h is then read past the (incoherent) L1 cache, with volatile loads.
- The backward kernel mirrors it: program u holds W_hh's rows of its units (4 x (unit, H)),
  reads the step before's gate cotangents dz (bb, 4H) whole, and writes its units' dz.

A barrier across programs needs them all resident at once, so a launch runs at most one
program per multiprocessor (`rows_per_launch`; a larger batch runs in several launches,
and a layer whose one row block needs more programs than that is refused by name).
A wait is also bounded: a program that read the counter `MAX_SPINS` times without seeing
its group arrive stops waiting, for good, and writes NaN from then on, so a broken
assumption shows as NaN outputs after about a second, not as a GPU that hangs.

Pallas's interpreter runs programs one after another, where no barrier could be met;
interpreted (the CPU tests), one program per group runs all of its group's tiles in turn
through the same step code, reading h and dz back from the outputs as the compiled
programs do. The barrier runs only on a GPU; `python -m benchmarks.triton_compile
--layout units` compiles it for sm_90 offline, and `bash benchmarks/gpu.sh OUT units`
tests and times it on a GPU.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jax import lax
from jax.experimental import pallas as pl

from seqjax.layers.pallas_lstm import _mm, _out_struct, _time_index, _triton, _triton_params
from seqjax.layers.vma import match_vma

MAX_SPINS = 1 << 20  # counter reads before a program gives up waiting (about a second)
UNIT = 16  # hidden units per program: the smallest N of a Triton matmul, the most programs
NUM_WARPS = 4
# Rows per program, the batch padded to whole blocks. 16 (a Triton matmul's smallest M)
# would halve each step's work, but compiled for sm_90 at H = 128 those kernels spilled
# registers (0.3 KB in the forward and 13 KB in the backward kernel's code), where 32
# rows spill none (`python -m benchmarks.triton_compile --layout units`).
ROWS = 32


def rows_per_launch(block: int, directions: int, tiles: int, resident: int) -> int:
    """The most rows one launch may hold so that its directions x row blocks x tiles
    programs all fit, one per multiprocessor (`resident` of them), as the barrier needs.
    Raises where even one row block's programs do not fit."""
    group = directions * tiles
    if group > resident:
        raise ValueError(
            f"pallas_layout='units' needs a row block's {directions} direction(s) x {tiles} "
            f"tiles = {group} programs resident at once, more than this device's {resident} "
            "multiprocessors: use a wider pallas unit, the rows layout or the scan"
        )
    return block * (resident // group)


def launch_rows(directions: int, hidden: int, opts) -> tuple[int, int]:
    """(rows a program runs, rows a launch may hold) for a layer of this hidden size: `ROWS`,
    and as many row blocks as leave every program of the launch resident at once."""
    tiles = hidden // min(opts.unit, hidden)
    return ROWS, rows_per_launch(ROWS, directions, tiles, resident_programs())


def resident_programs() -> int:
    """Multiprocessors of the first device: how many programs of a launch can surely run
    at once. A device that does not say (a CPU, lowering for CUDA or interpreting) counts
    as an H100's or H200's 132, the GPUs these kernels are compiled for."""
    return int(getattr(jax.local_devices()[0], "core_count", 0) or 132)


def _shared(ref, index, opts):
    """ref[index], as the other programs of the group wrote it: a volatile load, which
    goes past L1, not coherent across multiprocessors. (Pallas's ".cg" cache modifier
    would say the same, but jax 0.10.2's Triton lowering fails on every cache modifier.)
    The interpreter reads it plainly."""
    if opts.interpret:
        return ref[index]
    return _triton().load(ref.at[index], volatile=True)


def _poisoned(x, failed):
    """x, or NaN where this program gave up waiting at a barrier."""
    return jnp.where(failed > 0, jnp.nan, x)


def _arrive_and_wait(sync_ref, s, tiles: int, failed):
    """The barrier at the end of loop step s: this program's stores are done (its threads'
    barrier), it counts itself in, then reads the count until the group's `tiles`
    programs have counted s + 1 steps each. Returns `failed`, set if it gave up."""
    triton = _triton()
    index = (pl.program_id(0), pl.program_id(1))
    triton.debug_barrier()
    target = tiles * (s + 1)
    arrived = triton.atomic_add(sync_ref, index, 1) + 1

    def waiting(state):  # a program that gave up once waits no more: NaN already flows
        seen, spins = state
        return (seen < target) & (spins < MAX_SPINS) & (failed == 0)

    def spin(state):
        return triton.atomic_add(sync_ref, index, 0), state[1] + 1

    seen, _ = lax.while_loop(waiting, spin, (arrived, jnp.int32(0)))
    triton.debug_barrier()
    return jnp.maximum(failed, (seen < target).astype(jnp.int32))


def _run(steps: int, hidden: int, unit: int, opts, sync_ref, weights, init, body, finish):
    """The loop over time of one program.

    weights(u): tile u's slice of W_hh; init(cols): the carries' columns `cols` before the
    first step; body(s, u, w, carry, failed) -> carry: tile u's loop step s, which stores
    its outputs; finish(u, w, carry, failed): after the last step's barrier.
    Compiled, the program runs its own tile (program_id 2) and waits at the barrier after
    each step; interpreted, it runs every tile of its group in turn, carrying the full
    width and slicing out each tile's columns.
    """
    tiles = hidden // unit
    if not opts.interpret:
        u = pl.program_id(2)
        w = weights(u)

        def step(s, state):
            carry, failed = state
            carry = body(s, u, w, carry, failed)
            return carry, _arrive_and_wait(sync_ref, s, tiles, failed)

        carry, failed = lax.fori_loop(0, steps, step, (init(pl.ds(u * unit, unit)), jnp.int32(0)))
        finish(u, w, carry, failed)
        return

    def columns(u, carry):
        return tuple(lax.dynamic_slice_in_dim(x, u * unit, unit, axis=1) for x in carry)

    def every_tile(s, carry):
        def tile(u, carry):
            new = body(s, u, weights(u), columns(u, carry), 0)
            return tuple(
                lax.dynamic_update_slice_in_dim(x, n, u * unit, axis=1)
                for x, n in zip(carry, new, strict=True)
            )

        return lax.fori_loop(0, tiles, tile, carry)

    carry = lax.fori_loop(0, steps, every_tile, init(slice(None)))

    def finish_tile(u, _):
        finish(u, weights(u), columns(u, carry), 0)
        return _

    lax.fori_loop(0, tiles, finish_tile, 0)


def _gate_cols(q: int, u, hidden: int, unit: int):
    """Columns of gate q for tile u's hidden units in a (.., 4H) array."""
    return pl.ds(q * hidden + u * unit, unit)


def _forward_kernel(x_ref, w_ref, len_ref, h0_ref, c0_ref, _, hs_ref, cs_ref, sync_ref, *, opts):
    """x_ref (T, bb, 4H) gate-scaled projected input with bias; w_ref (H, 4H) gate-scaled
    W_hh; len_ref (bb,); h0_ref, c0_ref (bb, H); the unnamed input is the zeroed barrier
    counter, aliased to sync_ref (D, NB). Writes the carry after every step into hs_ref,
    cs_ref (T, bb, H), held through padded steps as the scan's carry is: hs_ref is also
    where each step reads the whole h of the step before."""
    steps, hidden = x_ref.shape[0], w_ref.shape[0]
    unit = min(opts.unit, hidden)
    direction = pl.program_id(0)
    lengths = len_ref[...][:, None]  # (bb, 1)

    def weights(u):  # W_hh's columns of tile u's units, gate by gate: 4 x (H, unit)
        return tuple(w_ref[:, _gate_cols(q, u, hidden, unit)] for q in range(4))

    def init(cols):
        return h0_ref[:, cols], c0_ref[:, cols]

    def body(s, u, w, carry, failed):
        h_held, c = carry  # (bb, unit) each
        t = _time_index(s, direction, steps)
        t_prev = _time_index(jnp.maximum(s - 1, 0), direction, steps)
        h = jnp.where(s == 0, h0_ref[...], _shared(hs_ref, t_prev, opts))  # (bb, H)
        z = [x_ref[t, :, _gate_cols(q, u, hidden, unit)] + _mm(h, w[q], opts) for q in range(4)]
        ti, tf, tg, to = (jnp.tanh(zq) for zq in z)  # gate-scaled: sigmoid = tanh/2 + 1/2
        c_new = (0.5 * tf + 0.5) * c + (0.5 * ti + 0.5) * tg
        h_new = (0.5 * to + 0.5) * jnp.tanh(c_new)
        valid = lengths > t
        h_held = _poisoned(jnp.where(valid, h_new, h_held), failed)
        c = jnp.where(valid, c_new, c)
        cols = pl.ds(u * unit, unit)
        hs_ref[t, :, cols] = h_held
        cs_ref[t, :, cols] = c
        return h_held, c

    def finish(u, w, carry, failed):
        del u, w, carry, failed  # every step stored its carry

    _run(steps, hidden, unit, opts, sync_ref, weights, init, body, finish)


def _backward_kernel(
    dy_ref, k_ref, p_ref, f_ref, w_ref, len_ref, dh_ref, dc_ref, _,
    dz_ref, dh0_ref, dc0_ref, sync_ref, *, opts,
):  # fmt: skip
    """The backward recurrence of `recurrence._backward_scan`: dy_ref, p_ref, f_ref
    (T, bb, H), k_ref (T, bb, 4H), w_ref (H, 4H), dh_ref, dc_ref (bb, H) the final carry's
    cotangent; the unnamed input is the zeroed counter aliased to sync_ref. Writes dz_ref
    (T, bb, 4H), which is also where each step reads the whole dz of the step before, and
    the initial carry's cotangent dh0_ref, dc0_ref (bb, H)."""
    steps, hidden = dy_ref.shape[0], w_ref.shape[0]
    unit = min(opts.unit, hidden)
    direction = pl.program_id(0)
    lengths = len_ref[...][:, None]

    def time(s):  # the forward order, reversed
        return _time_index(steps - 1 - s, direction, steps)

    def weights(u):  # W_hh's rows of tile u's units, gate by gate: 4 x (unit, H)
        rows = pl.ds(u * unit, unit)
        return tuple(w_ref[rows, pl.ds(q * hidden, hidden)] for q in range(4))

    def init(cols):
        return dh_ref[:, cols], dc_ref[:, cols]

    def entering(s, w, dh):
        """dh entering loop step s >= 1: what step s-1 held (where it was padding) plus
        its dz @ W_hh.T, this tile's columns, from the whole dz of step s-1."""
        t_prev = time(s - 1)
        back = sum(
            _mm(_shared(dz_ref, (t_prev, slice(None), pl.ds(q * hidden, hidden)), opts), w[q],
                opts, trans_b=True)
            for q in range(4)
        )  # fmt: skip
        return jnp.where(lengths > t_prev, 0.0, dh) + back

    def body(s, u, w, carry, failed):
        dh, dc_next = carry  # (bb, unit): entering step s but for step s-1's dz
        dh = jnp.where(s == 0, dh, entering(jnp.maximum(s, 1), w, dh))
        t = time(s)
        valid = lengths > t
        cols = pl.ds(u * unit, unit)
        grad_h = jnp.where(valid, dy_ref[t, :, cols] + dh, 0.0)
        dc = jnp.where(valid, dc_next, 0.0) + grad_h * p_ref[t, :, cols]
        for q in range(4):
            gate = _gate_cols(q, u, hidden, unit)
            dz_ref[t, :, gate] = _poisoned((grad_h if q == 3 else dc) * k_ref[t, :, gate], failed)
        return dh, dc * f_ref[t, :, cols] + jnp.where(valid, 0.0, dc_next)

    def finish(u, w, carry, failed):
        dh, dc = carry
        cols = pl.ds(u * unit, unit)
        dh0_ref[:, cols] = _poisoned(entering(steps, w, dh), failed)
        dc0_ref[:, cols] = dc

    _run(steps, hidden, unit, opts, sync_ref, weights, init, body, finish)


def _call(kernel, opts, inputs, batch_axes, outputs, hidden: int):
    """pallas_call over the (direction, row block, tile) grid, one tile per group when
    interpreted. inputs: arrays (D, ...) or the (B,) lengths, then the zeroed counter is
    added; batch_axes: each one's batch axis (None: a per-direction weight); outputs:
    (shape, batch axis) pairs, float32, then the counter."""
    directions = inputs[0].shape[0]
    batch = inputs[0].shape[batch_axes[0]]
    block = ROWS
    if batch % block:
        raise ValueError(f"the units kernels need a batch in blocks of {block} (got {batch})")
    blocks = batch // block
    tiles = 1 if opts.interpret else hidden // min(opts.unit, hidden)

    def spec(shape, axis):
        if axis is None:  # (D, ...) weights: direction d's, whole
            return pl.BlockSpec((None, *shape[1:]), lambda d, b, u: (d,) + (0,) * (len(shape) - 1))
        if len(shape) == 1:
            return pl.BlockSpec((block,), lambda d, b, u: (b,))
        dims = [None, *shape[1:]]
        dims[axis] = block

        def index(d, b, u):
            return tuple(d if i == 0 else b if i == axis else 0 for i in range(len(shape)))

        return pl.BlockSpec(tuple(dims), index)

    # zeroed, and typed as varying over the mesh axes the inputs vary over (inside
    # shard_map), as the output it is aliased to is
    counter = match_vma(jnp.zeros((directions, blocks), jnp.int32), inputs[0])
    whole = pl.BlockSpec((directions, blocks), lambda d, b, u: (0, 0))
    out_shape = [_out_struct(shape, inputs[0]) for shape, _ in outputs]
    out_shape.append(_out_struct(counter.shape, inputs[0], jnp.int32))
    results = pl.pallas_call(
        functools.partial(kernel, opts=opts),
        out_shape=out_shape,
        grid=(directions, blocks, tiles),
        in_specs=[spec(x.shape, a) for x, a in zip(inputs, batch_axes, strict=True)] + [whole],
        out_specs=[spec(shape, axis) for shape, axis in outputs] + [whole],
        input_output_aliases={len(inputs): len(outputs)},
        compiler_params=None if opts.interpret else _triton_params(opts),
        interpret=opts.interpret,
        name=f"units_{kernel.__name__.strip('_')}",
    )(*inputs, counter)
    return results[:-1]  # the counter's final count is of no further use


def forward_carries(xproj, w_hh, lengths, h0, c0, opts):
    """As `pallas_lstm.forward_carries`, in the units layout: (D, T, B, H) carries."""
    d, steps, batch, gates = xproj.shape
    carries = ((d, steps, batch, gates // 4), 2)
    return _call(
        _forward_kernel, opts, (xproj, w_hh, lengths, h0, c0), (2, None, 0, 1, 1),
        (carries, carries), gates // 4,
    )  # fmt: skip


def backward_gates(d_ys, k, p, f, w_hh, lengths, dh, dc, opts):
    """As `pallas_lstm.backward_gates`, in the units layout: dz (D, T, B, 4H), dh0, dc0."""
    d, steps, batch, gates = k.shape
    final = ((d, batch, gates // 4), 1)
    dz, dh0, dc0 = _call(
        _backward_kernel, opts, (d_ys, k, p, f, w_hh, lengths, dh, dc),
        (2, 2, 2, 2, None, 0, 1, 1), (((d, steps, batch, gates), 2), final, final), gates // 4,
    )  # fmt: skip
    return dz, dh0, dc0

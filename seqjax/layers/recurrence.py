"""The LSTM recurrence as pure functions over time-major, pre-projected inputs.

Why this shape: the input projection x @ W_ih for all steps is one large matmul done by
the caller, so the sequential loop only carries h @ W_hh, the gates and the mask select.

Gates follow PyTorch/cuDNN order (i, f, g, o). Three of them are sigmoids; we use
sigmoid(z) = 0.5 * tanh(z / 2) + 0.5, so each step runs a single tanh over all 4H gate
columns of its pre-activations times `gate_scale` (1/2 on the i, f, o columns). The scale
multiplies the step's (B, 4H) pre-activations inside its elementwise fusion, and the
backward step's gate cotangents likewise, so the functions here take the weights as the
parameters hold them. Why not fold it into the weights once per call: that is a pass
over every weight matrix and another over their gradients, memory-bound work that cost
trust's stack (a 768 x 1024 W_ih) 11-18% of its inference and 7-12% of its training on
CPU (`python -m benchmarks.stack_ab REV --only trust`, benchmarks/README.md).

Projections (PyTorch's `proj_size` P > 0): each step's hidden output o * tanh(c), (B, H),
goes through W_hr (H, P) before it is the step's output and the next step's h, so h and
the outputs are (B, P), the cell c stays (B, H) and W_hh is (P, 4H). Every function here
takes `w_hr=None` (no projection) or that matrix; the backward step takes dh back through
W_hr^T each step, and dW_hr is one matmul after the loop, as dW_hh is.

Padding: where mask[t, b] is False the carry is frozen and the output is exactly zero.
A forward scan therefore ends with each sequence's state at its own last valid step; a
reverse scan (over the same padded array) keeps its zero initial state through the
padded tail and starts at each sequence's last valid step, exactly as PyTorch's
`pack_padded_sequence` does, without gathering or flipping per sequence.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from seqjax.layers.explicit_sharding import batch_sum_sharding
from seqjax.layers.length_groups import phased_scan
from seqjax.layers.vma import match_vma, sum_to_vma

Carry = tuple[jax.Array, jax.Array]


def custom_vjp_in_precision(
    primal: Callable, fwd: Callable, bwd: Callable, nondiff_argnums: tuple[int, ...]
) -> Callable:
    """`jax.custom_vjp(primal, nondiff_argnums)` with rules `fwd` and `bwd`, whose backward
    rule is traced in the matmul precision that was current when the function was called.

    Why: JAX traces a custom VJP's backward rule when the gradient is formed, after the
    forward call has returned, so a `jax.default_matmul_precision` context around the
    forward call (`LSTM(precision=...)`, or a user's own) would not reach the backward
    dots, which would then round to the platform default (TF32 on a GPU, bfloat16 passes
    on a TPU) while the forward ones did not. One custom VJP is built per precision."""

    @functools.cache
    def in_precision(precision: str | None):
        def bwd_in_precision(*args):
            with jax.default_matmul_precision(precision):
                return bwd(*args)

        function = jax.custom_vjp(primal, nondiff_argnums=nondiff_argnums)
        function.defvjp(fwd, bwd_in_precision)
        return function

    @functools.wraps(primal)
    def call(*args):
        # The public read of a config option that has a context manager; set dynamically.
        precision = jax.config.jax_default_matmul_precision  # type: ignore[attr-defined]
        return in_precision(precision)(*args)

    return call


def carry_dtype(dtype) -> np.dtype:
    """The dtype of the carry (h, c), the gate pre-activations and every accumulation for
    matmuls in `dtype`: float32 for float32 and narrower (bfloat16), so long sequences do
    not drift; float64 for float64 (under `jax_enable_x64`), so a float64 layer is float64
    throughout, as a gradient check against finite differences needs."""
    return np.dtype(np.float64 if jnp.dtype(dtype) == np.float64 else np.float32)


def gate_scale(hidden: int, dtype=np.float32) -> np.ndarray:
    """(4H,) column scale in `dtype`: 1/2 on the sigmoid gates i, f, o; 1 on the tanh gate g.

    A NumPy array, so that inside a scan step it is a literal constant of the step, not
    broadcast and concatenate ops traced into every iteration's body."""
    half = np.full(hidden, 0.5, dtype)
    return np.concatenate([half, half, np.ones(hidden, dtype), half])


def _gates(t: jax.Array, hidden: int) -> tuple[jax.Array, ...]:
    """(i, f, g, o) from t = tanh of the gate-scaled pre-activations (..., 4H)."""
    i = 0.5 * t[..., :hidden] + 0.5
    f = 0.5 * t[..., hidden : 2 * hidden] + 0.5
    g = t[..., 2 * hidden : 3 * hidden]
    o = 0.5 * t[..., 3 * hidden :] + 0.5
    return i, f, g, o


def _cell(z: jax.Array, c: jax.Array) -> tuple[jax.Array, jax.Array]:
    """One LSTM update from pre-scaled gate pre-activations z (..., 4H) and cell c (..., H)."""
    t = jnp.tanh(z)  # (..., 4H): one transcendental pass for all gates
    i, f, g, o = _gates(t, c.shape[-1])
    c_new = f * c + i * g
    h_new = o * jnp.tanh(c_new)
    return h_new, c_new


def project_hidden(h: jax.Array, w_hr: jax.Array | None) -> jax.Array:
    """A step's hidden output (..., H) through the projection W_hr (H, P), in h's dtype
    (the carry dtype): PyTorch's `proj_size`. As it is without one (`w_hr` None)."""
    if w_hr is None:
        return h
    return jnp.dot(h.astype(w_hr.dtype), w_hr, preferred_element_type=h.dtype)  # (..., P)


def _preactivations(x, h, w_ih, w_hh, bias) -> jax.Array:
    """One step's gate-scaled pre-activations (B, 4H) in the carry dtype from its input x
    and carry h.

    x is the step's input (B, F) when w_ih is given, else its projection (B, 4H). The bias
    is added here rather than to a projected (T, B, 4H) array because there the add is one
    more pass over that array, where here it joins the step's elementwise fusion.
    """
    acc = carry_dtype(w_hh.dtype)
    if w_ih is not None:  # the projection inside the step: one more small matmul
        x = jnp.dot(x.astype(w_ih.dtype), w_ih, preferred_element_type=acc)
    z = x + jnp.dot(h.astype(w_hh.dtype), w_hh, preferred_element_type=acc)
    if bias is not None:
        z = z + bias.astype(acc)[None, :]
    return z * gate_scale(w_hh.shape[1] // 4, acc)[None, :]  # (B, 4H)


def lstm_step(x, h, c, w_ih, w_hh, bias) -> Carry:
    """One step on its own, outside a loop (`seqjax.layers.LSTMCell`): x (N, F), h and c
    (N, H) in the carry dtype, the weights as the parameters hold them (bias (4H,) the sum
    of the two) -> (h, c) of the next step, each (N, H)."""
    return _cell(_preactivations(x, h, w_ih, w_hh, bias), c)


def _loop(step, init, xs, mask, *, reverse: bool, unroll: int, groups: int):
    """`lax.scan(step, init, xs)` over the span's steps or, with `groups` > 1 (rows sorted
    longest first), the phased loop that stops computing rows whose sequences have ended
    (seqjax/layers/length_groups.py), whose loops run unroll 1; mask (S, B, 1) is the
    span's, also inside xs."""
    if groups > 1:
        return phased_scan(step, init, xs, mask, groups, reverse=reverse)
    return lax.scan(step, init, xs, reverse=reverse, unroll=unroll)


def scan_direction(
    xproj: jax.Array,
    w_hh: jax.Array,
    mask: jax.Array,
    init: Carry,
    *,
    reverse: bool,
    unroll: int = 1,
    w_ih: jax.Array | None = None,
    bias: jax.Array | None = None,
    groups: int = 1,
    w_hr: jax.Array | None = None,
) -> tuple[Carry, jax.Array]:
    """Run one direction.

    xproj: (T, B, 4H) in the carry dtype (`carry_dtype`), x @ W_ih (+ biases unless `bias`
      is given); with `w_ih` (F, 4H) given, the unprojected input (T, B, F) instead,
      projected a step at a time inside the loop.
    w_hh:  (H, 4H) in the compute dtype; (P, 4H) with a projection.
    mask:  (T, B, 1) bool.
    init:  (h, c), each (B, H) in the carry dtype; h (B, P) with a projection.
    bias:  (4H,), added each step (None: already in xproj).
    groups: > 1 runs the rows, sorted longest first, in that many length groups (`_loop`).
    w_hr:  (H, P) in the compute dtype, the output projection (module docstring), or None.
    Returns the final (h, c) and outputs (T, B, H) (or (T, B, P)) in the carry dtype, zero
    where masked.
    """

    def step(carry: Carry, inputs):
        h, c = carry
        xp, m = inputs  # (B, 4H) or (B, F), (B, 1)
        z = _preactivations(xp, h, w_ih, w_hh, bias)  # (B, 4H)
        h_new, c_new = _cell(z, c)
        h_new = project_hidden(h_new, w_hr)  # (B, P) with a projection
        h = jnp.where(m, h_new, h)
        c = jnp.where(m, c_new, c)
        return (h, c), jnp.where(m, h_new, 0.0)

    return _loop(step, init, (xproj, mask), mask, reverse=reverse, unroll=unroll, groups=groups)


def step_residuals(z: jax.Array, h: jax.Array, c: jax.Array):
    """(h_new, c_new, (h, k, p, f)): a step's update and the residuals its backward step
    needs (see `_scan_forward_saving`), from its gate-scaled pre-activations z (..., 4H)
    and entering carry h, c (..., H). Any leading shape: the scan calls it per step, the
    Pallas path once for all steps after its kernel has produced the carries."""
    t = jnp.tanh(z)  # (..., 4H)
    i, f, g, o = _gates(t, c.shape[-1])
    c_new = f * c + i * g
    tanh_c = jnp.tanh(c_new)
    h_new = o * tanh_c
    k = jnp.concatenate([0.5 * g, 0.5 * c, i, 0.5 * tanh_c], axis=-1) * (1.0 - t * t)
    return h_new, c_new, (h, k, o * (1.0 - tanh_c * tanh_c), f)


def _scan_forward_saving(
    xproj, w_hh, mask, init, reverse, unroll, w_ih=None, bias=None, groups=1, w_hr=None
):
    """Forward pass that also returns what the hand-written backward pass needs
    (arguments as `scan_direction`'s).

    Residuals per step, shaped so the backward step is whole-tensor arithmetic:
      h_prev (B, H): the carry entering the step, for dW_hh after the loop;
      k (B, 4H): [g/2, c_prev/2, i, tanh(c)/2] * (1 - t^2), so the gradient of the
        gate-scaled pre-activations is [dc, dc, dc, dh] * k (the halves are the slopes of
        the sigmoid gates under the gate scale), and `gate_scale` times that the gradient
        of the unscaled ones;
      p (B, H): o * (1 - tanh(c)^2), the path from dh into dc;
      f (B, H): the forget gate, the path from dc to the previous cell;
      with a projection also o * tanh(c) (B, H), the projection's input, for dW_hr.
    Why: a backward step that gathers four column blocks of t (B, 4H) and recombines
    them ran its elementwise part several times slower than the forward step's on CPU;
    now the two steps cost about the same (`python -m benchmarks.kernels`).
    """

    def step(carry: Carry, inputs):
        h, c = carry
        xp, m = inputs
        z = _preactivations(xp, h, w_ih, w_hh, bias)  # (B, 4H)
        h_new, c_new, saved = step_residuals(z, h, c)
        if w_hr is not None:
            saved = (*saved, h_new)  # the projection's input (B, H)
            h_new = project_hidden(h_new, w_hr)  # (B, P)
        out = jnp.where(m, h_new, 0.0)
        return (jnp.where(m, h_new, h), jnp.where(m, c_new, c)), (out, saved)

    final, (ys, saved) = _loop(
        step, init, (xproj, mask), mask, reverse=reverse, unroll=unroll, groups=groups
    )
    return final, ys, saved


def _scan_vjp_fwd(xproj, w_hh, mask, init, reverse, unroll, groups):
    final, ys, saved = _scan_forward_saving(xproj, w_hh, mask, init, reverse, unroll, groups=groups)
    return (final, ys), (saved, w_hh, mask)


def weight_grad(a: jax.Array, b: jax.Array) -> jax.Array:
    """sum over steps and batch of a^T b: (S, B, F), (S, B, G) -> (F, G) in the carry dtype.

    Why not `jnp.einsum("tbf,tbg->fg")`: it contracts the two dimensions in the order
    (b, t), which XLA's CPU backend ran 1.3-1.8x slower than the order (t, b) used here
    in five runs of `python -m benchmarks.kernels` (steel's dW_hh: 18.2 ms against 14.1
    in benchmarks/results/kernels_cpu.json). Why not reshape to (S*B)-row matrices, which is
    as fast: with the batch sharded over a device mesh, merging (S, B) makes the
    partitioner all-gather the activations across devices (tests/test_data_parallel.py).
    """
    return lax.dot_general(
        a,
        b,
        (((0, 1), (0, 1)), ((), ())),
        preferred_element_type=carry_dtype(a.dtype),
        out_sharding=batch_sum_sharding(a),  # replicated, where the batch's split is typed
    )  # (F, G)


def _backward_scan(saved, w_hh, mask, carry, d_ys, *, reverse, unroll, groups=1, w_hr=None):
    """The hand-written backward recurrence over one span of steps.

    saved: (h_prev, k, p, f) of the span from `_scan_forward_saving`, each (S, B, .), and
    the projection's inputs after them where `w_hr` is given; carry: the (dh, dc) cotangent
    flowing in from the span's far end. Returns the (dh, dc) leaving the span at its start,
    the cotangents dz (S, B, 4H) of the unscaled gate pre-activations, this span's dW_hh
    (H, 4H) (or (P, 4H)) and its dW_hr (H, P), None without a projection.
    """
    h_prev, k, p, f = saved[:4]
    carry = match_vma(carry, k)
    w_t = w_hh.T  # (4H, H) or (4H, P)
    w_hr_t = None if w_hr is None else w_hr.T  # (P, H)
    scale = gate_scale(k.shape[-1] // 4, k.dtype)[None, :]  # (1, 4H): k is for the scaled ones

    def step(carry: Carry, inputs):
        dh_next, dc_next = carry
        dy, m, k_s, p_s, f_s = inputs
        dh = jnp.where(m, dy + dh_next, 0.0)  # grad into h_new, (B, H) or (B, P)
        # through the projection: the grad into o * tanh(c), (B, H)
        dh_cell = project_hidden(dh, w_hr_t)
        dc = jnp.where(m, dc_next, 0.0) + dh_cell * p_s  # grad into c_new
        dz = jnp.concatenate([dc, dc, dc, dh_cell], axis=-1) * k_s * scale  # (B, 4H)
        dh_prev = jnp.dot(dz.astype(w_t.dtype), w_t, preferred_element_type=dz.dtype)
        dh_prev = dh_prev + jnp.where(m, 0.0, dh_next)
        dc_prev = dc * f_s + jnp.where(m, 0.0, dc_next)
        return (dh_prev, dc_prev), (dz, None if w_hr is None else dh)

    carry, (dz, dh) = _loop(
        step, carry, (d_ys, mask, k, p, f), mask, reverse=not reverse, unroll=unroll, groups=groups
    )  # dz (S, B, 4H); dh (S, B, P) or None
    dw = weight_grad(h_prev.astype(w_hh.dtype), dz.astype(w_hh.dtype))  # (H, 4H)
    dw_hr = None
    if w_hr is not None:
        dw_hr = weight_grad(saved[4].astype(w_hr.dtype), dh.astype(w_hr.dtype))  # (H, P)
    return carry, dz, dw, dw_hr


def _scan_vjp_bwd(reverse, unroll, groups, residuals, cotangents):
    """Backward recurrence as a scan in the opposite direction, carrying (dh, dc) only.

    The per-step work is one (B, 4H) @ (4H, H) matmul; dW_hh is formed after the loop as a
    single (H, T*B) @ (T*B, 4H) matmul instead of T small outer products accumulated in
    the carry, which is what plain autodiff of the scan does.
    """
    saved, w_hh, mask = residuals
    d_final, d_ys = cotangents
    d_init, dz, dw, _ = _backward_scan(
        saved, w_hh, mask, d_final, d_ys, reverse=reverse, unroll=unroll, groups=groups
    )
    dw = sum_to_vma(dw, w_hh)
    return dz.astype(carry_dtype(w_hh.dtype)), dw.astype(w_hh.dtype), None, d_init


# `scan_direction` with the hand-written backward pass above; same signature, except that
# `reverse`, `unroll` and `groups` are positional (static, non-differentiable arguments).
scan_direction_fast = custom_vjp_in_precision(
    lambda xproj, w_hh, mask, init, reverse, unroll, groups=1: scan_direction(
        xproj, w_hh, mask, init, reverse=reverse, unroll=unroll, groups=groups
    ),
    _scan_vjp_fwd,
    _scan_vjp_bwd,
    nondiff_argnums=(4, 5, 6),
)


def _to_chunks(x: jax.Array, chunk: int, fill) -> jax.Array:
    """(T, ...) -> (N, chunk, ...), padding the end of time with `fill` up to N * chunk."""
    steps = x.shape[0]
    total = -(-steps // chunk) * chunk
    # a pad of x itself keeps x's sharding, where a concatenated array would have none
    x = jnp.pad(x, [(0, total - steps)] + [(0, 0)] * (x.ndim - 1), constant_values=fill)
    return x.reshape(total // chunk, chunk, *x.shape[1:])


def _from_chunks(x: jax.Array, steps: int) -> jax.Array:
    """(N, chunk, ...) -> (steps, ...): undoes `_to_chunks`."""
    return x.reshape(-1, *x.shape[2:])[:steps]


def project(seq: jax.Array, w_ih: jax.Array, bias: jax.Array | None = None) -> jax.Array:
    """(S, B, F) @ (F, 4H) (+ (4H,)) -> (S, B, 4H) gate pre-activations in the carry dtype."""
    acc = carry_dtype(w_ih.dtype)
    xproj = jnp.einsum("tbf,fg->tbg", seq, w_ih, preferred_element_type=acc)
    return xproj if bias is None else xproj + bias.astype(acc)[None, None, :]


def _input_grads(x: jax.Array, dz: jax.Array, w_ih: jax.Array):
    """Gradients of `project(x, w_ih, bias)` from its cotangent dz (S, B, 4H):
    dx (S, B, F) in the carry dtype, dW_ih (F, 4H) and the bias's (4H,), as large (S*B)-row
    matmuls."""
    acc = carry_dtype(w_ih.dtype)
    dx = jnp.einsum("tbg,fg->tbf", dz.astype(w_ih.dtype), w_ih, preferred_element_type=acc)
    dw_ih = weight_grad(x, dz.astype(x.dtype))  # (F, 4H)
    return dx, dw_ih, dz.sum((0, 1))


def _chunks(seq: jax.Array, mask: jax.Array, chunk: int) -> tuple[jax.Array, jax.Array]:
    """Layer input (T, B, F) and mask (T, B, 1) as (N, C, ...) chunks; the padded tail of
    the last chunk is masked, so it leaves carries and outputs as they are."""
    return _to_chunks(seq, chunk, 0), _to_chunks(mask, chunk, False)


def _layer_cotangents(dx, grads, weights, d_init):
    """The cotangent tuple of (seq, w_ih, bias, w_hh, mask, init, w_hr) for a custom VJP
    rule, from the gradients of `weights` (w_ih, bias, w_hh, w_hr): summed over shards
    they do not vary across, cast to their dtypes; None for a w_hr that is None."""
    dw_ih, db, dw_hh, dw_hr = (
        None if w is None else sum_to_vma(g, w).astype(w.dtype)
        for g, w in zip(grads, weights, strict=True)
    )
    return (dx, dw_ih, db, dw_hh, None, d_init, dw_hr)


def projection_chunk(steps: int, target: int = 32) -> int:
    """Chunk length near `target` that wastes fewer padded steps than there are chunks;
    0 (project the whole sequence at once) when the sequence fits in one chunk."""
    if steps <= target:
        return 0
    count = -(-steps // target)
    return -(-steps // count)


def _unchunked(chunk: int, steps: int) -> bool:
    """Whether a projection chunk of `chunk` steps needs no loop over chunks: 0 (the whole
    sequence at once), 1 (one step at a time, inside the recurrence) or >= T."""
    return chunk in (0, 1) or chunk >= steps


def _loop_inputs(seq, w_ih, chunk):
    """(xs, w_ih) for the recurrence when unchunked: the step-at-a-time projection passes
    the raw input and W_ih into the loop, the whole-sequence one projects up front."""
    return (seq, w_ih) if chunk == 1 else (project(seq, w_ih), None)


def _chunked_primal(seq, w_ih, bias, w_hh, mask, init, reverse, unroll, chunk, groups=1, w_hr=None):
    """The no-gradient forward of both chunked layer-directions: (final carry, outputs),
    without the per-chunk entry carries that only a backward pass needs."""
    if _unchunked(chunk, seq.shape[0]):
        xs, w_in = _loop_inputs(seq, w_ih, chunk)
        return scan_direction(
            xs, w_hh, mask, init, reverse=reverse, unroll=unroll, w_ih=w_in, bias=bias,
            groups=groups, w_hr=w_hr,
        )  # fmt: skip
    final, ys, _ = _remat_forward(
        seq, w_ih, bias, w_hh, mask, init, reverse, unroll, chunk, False, groups, w_hr
    )
    return final, ys


def _remat_forward(
    seq, w_ih, bias, w_hh, mask, init, reverse, unroll, chunk, keep_entries=True, groups=1,
    w_hr=None,
):  # fmt: skip
    """Forward over chunks of steps, keeping only the carry entering each chunk.

    The input projection is done per chunk too: a (T, B, 4H) projection would be 4H/F
    times the size of the layer's input and defeat the purpose at T = 10,000.
    """
    steps = seq.shape[0]
    xs, ms = _chunks(seq, mask, chunk)

    def chunk_step(carry: Carry, inputs):
        x, m = inputs  # (C, B, F), (C, B, 1)
        xp = project(x, w_ih)  # (C, B, 4H)
        out, ys = scan_direction(
            xp, w_hh, m, carry, reverse=reverse, unroll=unroll, bias=bias, groups=groups,
            w_hr=w_hr,
        )  # fmt: skip
        return out, (carry if keep_entries else None, ys)

    final, (entries, ys) = lax.scan(chunk_step, init, (xs, ms), reverse=reverse)
    return final, _from_chunks(ys, steps), entries  # entries: (h, c) each (N, B, H) or None


def _remat_vjp_fwd(seq, w_ih, bias, w_hh, mask, init, reverse, unroll, chunk, groups, w_hr):
    final, ys, entries = _remat_forward(
        seq, w_ih, bias, w_hh, mask, init, reverse, unroll, chunk, True, groups, w_hr
    )
    return (final, ys), (entries, seq, w_ih, bias, w_hh, mask, w_hr)


def _add(total, part):
    """total + part, where both are None for a weight that is not there (w_hr)."""
    return None if total is None else total + part


def _remat_vjp_bwd(reverse, unroll, chunk, groups, residuals, cotangents):
    """Per chunk, last first: recompute its projection and forward from the saved entry
    carry, run the hand-written backward over it and fold its gate cotangents into the
    weight gradients at once. Live memory is one chunk's residuals, not T steps'."""
    entries, seq, w_ih, bias, w_hh, mask, w_hr = residuals
    d_final, d_ys = cotangents
    steps = seq.shape[0]
    xs, ms = _chunks(seq, mask, chunk)
    dys = _to_chunks(d_ys, chunk, 0.0)

    def chunk_step(carry, inputs):
        d_carry, dw_ih, db, dw_hh, dw_hr = carry
        entry, x, m, dy = inputs  # x (C, B, F)
        xp = project(x, w_ih)
        _, _, saved = _scan_forward_saving(
            xp, w_hh, m, entry, reverse, unroll, bias=bias, groups=groups, w_hr=w_hr
        )
        d_carry, dz, dw_chunk, dw_hr_chunk = _backward_scan(
            saved, w_hh, m, d_carry, dy, reverse=reverse, unroll=unroll, groups=groups,
            w_hr=w_hr,
        )  # fmt: skip
        dx, dw_ih_chunk, db_chunk = _input_grads(x, dz, w_ih)  # dx (C, B, F)
        sums = (dw_ih + dw_ih_chunk, db + db_chunk, dw_hh + dw_chunk, _add(dw_hr, dw_hr_chunk))
        return (d_carry, *sums), dx.astype(seq.dtype)

    weights = (w_ih, bias, w_hh, w_hr)
    zeros = tuple(None if w is None else jnp.zeros(w.shape, carry_dtype(w.dtype)) for w in weights)
    zeros = match_vma(zeros, seq)
    (d_init, *grads), dx = lax.scan(
        chunk_step, (d_final, *zeros), (entries, xs, ms, dys), reverse=not reverse
    )  # dx (N, C, B, F)
    return _layer_cotangents(_from_chunks(dx, steps), grads, weights, d_init)


# One layer-direction, input projection included, whose backward pass stores the carry
# only every `chunk` steps and recomputes each chunk when it gets there: activation
# memory O(T/chunk + chunk) steps instead of O(T), for about one extra forward pass.
# seq (T, B, F), w_ih (F, 4H), bias (4H,), w_hh (H, 4H); `reverse`,
# `unroll`, `chunk` and `groups` (default 1) are positional and static; last, `w_hr`
# (H, P) or None (default; with a projection, w_hh is (P, 4H)).
lstm_direction_remat = custom_vjp_in_precision(
    _chunked_primal, _remat_vjp_fwd, _remat_vjp_bwd, nondiff_argnums=(6, 7, 8, 9)
)


def _chunked_forward_saving(
    seq, w_ih, bias, w_hh, mask, init, reverse, unroll, chunk, groups=1, w_hr=None
):
    """`_scan_forward_saving` with the input projection done one chunk of steps at a time
    (or all at once, or inside the recurrence: see `_unchunked`)."""
    steps = seq.shape[0]
    if _unchunked(chunk, steps):
        xs, w_in = _loop_inputs(seq, w_ih, chunk)
        return _scan_forward_saving(xs, w_hh, mask, init, reverse, unroll, w_in, bias, groups, w_hr)
    xs, ms = _chunks(seq, mask, chunk)

    def chunk_step(carry: Carry, inputs):
        x, m = inputs  # (C, B, F), (C, B, 1)
        carry, ys, saved = _scan_forward_saving(
            project(x, w_ih), w_hh, m, carry, reverse, unroll, bias=bias, groups=groups,
            w_hr=w_hr,
        )  # fmt: skip
        return carry, (ys, saved)

    final, (ys, saved) = lax.scan(chunk_step, init, (xs, ms), reverse=reverse)
    saved = jax.tree.map(lambda s: _from_chunks(s, steps), saved)
    return final, _from_chunks(ys, steps), saved


def _projected_primal(
    seq, w_ih, bias, w_hh, mask, init, reverse, unroll, chunk, infer_chunk, groups=1, w_hr=None
):
    """`lstm_direction` when nothing differentiates it: projected `infer_chunk` steps at a
    time, which may differ from the chunk its gradient's forward pass uses."""
    return _chunked_primal(
        seq, w_ih, bias, w_hh, mask, init, reverse, unroll, infer_chunk, groups, w_hr
    )


def _projected_vjp_fwd(
    seq, w_ih, bias, w_hh, mask, init, reverse, unroll, chunk, infer_chunk, groups, w_hr
):
    final, ys, saved = _chunked_forward_saving(
        seq, w_ih, bias, w_hh, mask, init, reverse, unroll, chunk, groups, w_hr
    )
    return (final, ys), (saved, seq, w_ih, bias, w_hh, mask, w_hr)


def _projected_vjp_bwd(reverse, unroll, chunk, infer_chunk, groups, residuals, cotangents):
    """The backward recurrence over all T steps, then the input-side gradients as three
    large matmuls over (T*B) rows: dx, dW_ih and the bias."""
    saved, seq, w_ih, bias, w_hh, mask, w_hr = residuals
    d_final, d_ys = cotangents
    d_init, dz, dw_hh, dw_hr = _backward_scan(
        saved, w_hh, mask, d_final, d_ys, reverse=reverse, unroll=unroll, groups=groups,
        w_hr=w_hr,
    )  # fmt: skip
    dx, dw_ih, db = _input_grads(seq, dz, w_ih)  # dz (T, B, 4H) -> dx (T, B, F)
    grads = (dw_ih, db, dw_hh, dw_hr)
    return _layer_cotangents(dx.astype(seq.dtype), grads, (w_ih, bias, w_hh, w_hr), d_init)


# One layer-direction, input projection included: `chunk` steps of input per projection
# matmul (0: the whole sequence before the loop; 1: each step's inside it; C: chunks of C
# steps, so the (T, B, 4H) projection never exists as one buffer), `infer_chunk` likewise
# where no gradient is taken. The backward pass is the hand-written one. Arguments as
# `lstm_direction_remat`'s up to `chunk`, then `infer_chunk` and `groups` (default 1), both
# static: groups > 1 needs the rows sorted longest first (length_groups.py); last, `w_hr`.
lstm_direction = custom_vjp_in_precision(
    _projected_primal, _projected_vjp_fwd, _projected_vjp_bwd, nondiff_argnums=(6, 7, 8, 9, 10)
)

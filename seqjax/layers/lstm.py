"""`LSTM`: a stacked, optionally bidirectional, length-masked LSTM as a Flax Linen module.

Semantics equal PyTorch's `nn.LSTM` over `pack_padded_sequence` input: padded steps never
change a result, the reverse direction starts at each sequence's own last valid step, and
outputs past a sequence's length are exactly zero. Parameters use PyTorch's gate order
(i, f, g, o) and two biases, so counts match and `seqjax.interop.lstm_params_from_torch`
imports weights exactly.

Parameter tree (per layer k; `_reverse` only when bidirectional), kernels stored
(in, out) as Flax does, i.e. transposed relative to PyTorch:

    l{k}/kernel_ih (F_k, 4H)   l{k}/kernel_hh (H, 4H)   l{k}/bias_ih (4H,)   l{k}/bias_hh (4H,)
    l{k}_reverse/...

With `proj_size` P > 0 (PyTorch's LSTM with projections) each layer-direction also has
`kernel_hr` (H, P), `kernel_hh` is (P, 4H), and a layer above the first sees D*P inputs.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from seqjax.layers.cudnn import cudnn_available, cudnn_lstm
from seqjax.layers.dropout import Dropout
from seqjax.layers.explicit_sharding import shard_batch_like
from seqjax.layers.forward_mode import forward_mode_named
from seqjax.layers.length_groups import sort_batch, unsort_batch
from seqjax.layers.loop_defaults import (
    fused_directions_default,
    length_groups_default,
    loop_defaults,
)
from seqjax.layers.lstm_choices import (
    check_backend,
    check_backward,
    check_precision,
    matmul_precision,
)
from seqjax.layers.masking import check_sequence_inputs, length_mask
from seqjax.layers.pallas_lstm import LAYOUTS, PRECISIONS, pallas_blockers, pallas_layer
from seqjax.layers.per_shard import batch_mesh, per_shard, rows_whole_per_device
from seqjax.layers.recurrence import (
    carry_dtype,
    lstm_direction,
    lstm_direction_remat,
    match_vma,
    project,
    scan_direction,
)
from seqjax.suggest import names_unknown_options

Initializer = Callable[..., jax.Array]


def pytorch_uniform(hidden_size: int) -> Initializer:
    """PyTorch's default LSTM init: U(-1/sqrt(H), 1/sqrt(H)) for every weight and bias."""
    bound = 1.0 / float(hidden_size) ** 0.5

    def init(key, shape, dtype=jnp.float32):
        return jax.random.uniform(key, shape, dtype, -bound, bound)

    return init


def built_features(module: nn.Module) -> int | None:
    """The input width the first layer's parameters (`l0`) were built for, None while
    they are being initialised: `LSTM` and `LSTMCell` name a batch of another width."""
    if module.has_variable("params", "l0"):
        return module.get_variable("params", "l0")["kernel_ih"].shape[0]
    return None


class LSTMWeights(nn.Module):
    """Holds one layer-direction's parameters; exists so they nest under `l{k}[_reverse]`.
    Without `use_bias` there are no bias parameters and the biases read as zeros, so every
    backend takes the same four arrays."""

    in_features: int
    hidden_size: int
    kernel_ih_init: Initializer | None
    kernel_hh_init: Initializer | None
    bias_init: Initializer | None
    param_dtype: Any
    use_bias: bool = True
    proj_size: int = 0
    kernel_hr_init: Initializer | None = None

    @nn.compact
    def __call__(self) -> dict[str, jax.Array]:
        default = pytorch_uniform(self.hidden_size)
        gates = 4 * self.hidden_size
        projection = {}
        if self.proj_size:
            shape = (self.hidden_size, self.proj_size)
            init = self.kernel_hr_init or default  # PyTorch draws W_hr as it does W_hh
            projection["kernel_hr"] = self.param("kernel_hr", init, shape, self.param_dtype)
        return {
            "kernel_ih": self.param(
                "kernel_ih",
                self.kernel_ih_init or default,
                (self.in_features, gates),
                self.param_dtype,
            ),
            "kernel_hh": self.param(
                "kernel_hh",
                self.kernel_hh_init or default,
                (self.proj_size or self.hidden_size, gates),
                self.param_dtype,
            ),
            **{
                name: (
                    self.param(name, self.bias_init or default, (gates,), self.param_dtype)
                    if self.use_bias
                    else jnp.zeros((gates,), self.param_dtype)
                )
                for name in ("bias_ih", "bias_hh")
            },
            **projection,
        }


@names_unknown_options
class LSTM(nn.Module):
    """Stacked LSTM over padded batches with per-sequence lengths.

    Call: `outputs, (h_n, c_n) = LSTM(...).apply(variables, x, lengths, train=False,
    rngs={"dropout": key})`.

    x: (B, T, F) float; lengths: (B,) int in [0, T], or None (the default) when every
      sequence fills all T steps, as `nn.RNN` and `torch.nn.LSTM` take unpadded batches.
    outputs: (B, T, D*H), D = 2 if bidirectional ([forward, backward] along the last axis),
      exactly zero for t >= lengths[b].
    h_n, c_n: (num_layers * D, B, H) float32 (float64 for a float64 `dtype`), PyTorch's layout:
      index `layer * D + direction`; the forward state is taken at each sequence's last
      valid step, the backward one at t=0.

    `use_bias=False` is `torch.nn.LSTM(bias=False)`: no bias parameters.
    `proj_size` P in [1, H) is `torch.nn.LSTM(proj_size=P)`: each step's hidden output
    goes through a (H, P) projection, so outputs are (B, T, D*P) and h_n (L*D, B, P)
    while c_n stays (L*D, B, H); scan backend only (cuDNN's and Pallas's kernels have no
    projection), with every scan option. 0, the default, is no projection.
    `dtype` is the compute dtype of the matmuls (e.g. bfloat16); parameters stay in
    `param_dtype` and the carry (h, c) stays float32 so long sequences do not drift.
    A float64 `dtype` (under `jax_enable_x64`) computes in float64 throughout, carry
    included, for gradient checks against finite differences (`jax.test_util.check_grads`).
    `initial_state`, if given, is (h_0, c_0) shaped like (h_n, c_n). Streams fed chunk by
    chunk, each call from the last call's (h_n, c_n), compute what one call over the whole
    sequences does (unidirectional); a stream with nothing new in a chunk has length 0
    there: zero outputs, and its state (and the gradient through it) passes unchanged.
    `fused_directions` runs both directions of a layer as one vmapped scan (one batched
    matmul per step, half the sequential steps: the backward direction runs over
    time-flipped input), with the same backward pass, projection and remat as separate
    scans. None, the default, fuses them on a GPU or TPU and not on a CPU or where length
    groups run (`fused_directions_default`: 1.66x faster training on an H200, slower on
    CPU); True or False decides everywhere.
    `backward="custom"` differentiates the recurrence with a hand-written reverse scan and
    one large dW_hh matmul (faster); `"autodiff"` lets JAX differentiate the scan. A custom
    VJP has no forward mode, so `jax.jvp`, `jax.jacfwd`, `jax.linearize` and `jax.hessian`
    through the layer need `"autodiff"`, as the error here says (`jax.linearize`'s fails
    when its linear function is called, past the layer, in JAX's words); reverse mode over
    either, and grad of grad, work.
    `remat_chunk` C > 0 rematerialises the recurrence for long sequences: training keeps the
    carry only every C steps and recomputes each chunk (input projection included) in the
    backward pass, so activation memory grows with T/C + C instead of T, for about one
    more forward pass of compute. C near sqrt(T) minimises memory (100 at T = 10,000).
    `projection_chunk` is how many steps of input x @ W_ih one matmul projects: 0 the
    whole sequence before the loop, 1 each step inside it, C > 1 chunks of C steps.
    `unroll` and `projection_chunk` left at None take the platform's defaults per layer
    (`loop_defaults`: measured on CPU and GPU; a TPU gets the GPU's);
    `backend="cudnn"` is NVIDIA's kernel, opt-in (see layers/cudnn.py);
    `backend="pallas"` runs each layer's recurrence, both directions, in one fused Pallas
    kernel launch on a GPU, opt-in (see layers/pallas_lstm.py); with
    `pallas_interpret=True` it runs in Pallas's interpreter on any platform (for tests);
    `pallas_precision` is its matmul algorithm, "float32" or "tf32x3" (`PRECISIONS`);
    `pallas_layout` how its kernels split the work: "rows" (each program all hidden units
    of 16 rows) or "units" (each program a tile of hidden units with its slice of W_hh on
    chip, the tiles meeting at a barrier every step; layers/pallas_units.py).
    `precision` is the scan's float32 matmul precision, any name `jax.default_matmul_precision`
    takes ("highest", "tensorfloat32", "bfloat16", ...), for the forward and backward dots
    alike; None follows JAX's default, which on a GPU may round float32 dots to TF32 and on
    a TPU to bfloat16 passes, where "highest" keeps float32 (cuDNN's own knob is
    `cudnn_tf32`, Pallas's `pallas_precision`).
    `length_groups` G > 1 sorts the rows longest first and runs the recurrence in phases
    over G groups of rows, so the loop stops computing a group once all its sequences have
    ended (seqjax/layers/length_groups.py; the same results, to float rounding); None
    takes `length_groups_default`, 1 turns it off. It needs unroll 1 and separate
    direction scans. Under a mesh each data shard sorts and groups its own rows. Dropout
    between layers draws its mask for the sorted rows, so a given key drops other units
    than it does in one group.
    `time_major=True` takes x as (T, B, F) and returns outputs as (T, B, D*H), as
    `torch.nn.LSTM`'s default `batch_first=False` and Flax's `nn.RNN(time_major=True)`
    do; lengths stay (B,), and h_n, c_n keep their layout.
    """

    hidden_size: int
    num_layers: int = 1
    bidirectional: bool = False
    dropout: float = 0.0
    use_bias: bool = True
    unroll: int | None = None
    dtype: Any = jnp.float32
    param_dtype: Any = jnp.float32
    fused_directions: bool | None = None
    backward: str = "custom"
    remat_chunk: int = 0
    projection_chunk: int | None = None
    backend: str = "auto"
    cudnn_tf32: bool = False
    pallas_interpret: bool = False
    pallas_precision: str = "float32"
    pallas_layout: str = "rows"
    precision: str | None = None
    length_groups: int | None = None
    kernel_ih_init: Initializer | None = None
    kernel_hh_init: Initializer | None = None
    bias_init: Initializer | None = None
    proj_size: int = 0
    kernel_hr_init: Initializer | None = None
    time_major: bool = False

    def _weights(self, layer: int, reverse: bool, in_features: int) -> dict[str, jax.Array]:
        name = f"l{layer}" + ("_reverse" if reverse else "")
        return LSTMWeights(
            in_features,
            self.hidden_size,
            self.kernel_ih_init,
            self.kernel_hh_init,
            self.bias_init,
            self.param_dtype,
            self.use_bias,
            self.proj_size,
            self.kernel_hr_init,
            name=name,
        )()

    def _scan_only_options(self) -> list[str]:
        """The options set here that only the scan backend implements, as reasons."""
        why = []
        if self.proj_size:
            why.append("proj_size needs the scan")
        if self.remat_chunk:
            why.append("remat_chunk needs the scan")
        if self.fused_directions:
            why.append("fused_directions is a scan variant")
        if self.backward != "custom":
            why.append("backward='autodiff' differentiates the scan")
        if self.length_groups is not None and self.length_groups > 1:
            why.append("length_groups > 1 is a scan loop")
        return why

    def _cudnn_blockers(self, train: bool) -> list[str]:
        """Why the cuDNN kernel cannot run this layer here (empty: it can)."""
        why = []
        if not cudnn_available():
            backend = jax.default_backend()
            why.append(f"it needs an NVIDIA GPU under CUDA (default backend {backend})")
        if jnp.dtype(self.dtype) != jnp.float32 or jnp.dtype(self.param_dtype) != jnp.float32:
            why.append(f"it computes in float32 only (dtype {jnp.dtype(self.dtype).name})")
        why += self._scan_only_options()
        if self.precision is not None:
            why.append("precision sets the scan's dots (cuDNN's knob is cudnn_tf32)")
        if train and self.dropout > 0 and self.num_layers > 1:
            # One cuDNN call per layer with seqjax's dropout between them disagreed with the
            # scan under value_and_grad on an H100 (jax 0.11.2), while each call alone and
            # two calls in one jit agreed to 1e-7; until the cause is known, no cuDNN here.
            why.append("dropout between layers in training needs the scan")
        return why

    def _use_cudnn(self, train: bool) -> bool:
        """cuDNN only when asked for: on an H100 (jax 0.11.2, benchmarks/results/) the
        scan was faster than `jax.experimental.rnn`'s cuDNN call for every seed
        configuration, so `auto` means the scan on every platform for now."""
        check_backend(self.backend)
        if self.backend != "cudnn":
            return False
        why = self._cudnn_blockers(train)
        if why:
            raise ValueError("LSTM: backend='cudnn' cannot run here: " + "; ".join(why))
        return True

    def _use_pallas(self) -> bool:
        """Whether each layer's recurrence runs in the fused Pallas kernels; raises, naming
        every reason, when `backend="pallas"` cannot run here."""
        if self.backend != "pallas":
            return False
        why = pallas_blockers(self.hidden_size, self.dtype)
        if self.pallas_precision not in PRECISIONS:
            why.append(f"pallas_precision must be one of {sorted(PRECISIONS)}")
        if self.pallas_layout not in LAYOUTS:
            why.append(f"pallas_layout must be one of {list(LAYOUTS)}")
        if jnp.dtype(self.param_dtype) != jnp.float32:
            dtype = jnp.dtype(self.param_dtype).name
            why.append(f"it keeps float32 weights only (param_dtype {dtype})")
        if not self.pallas_interpret and jax.default_backend() != "gpu":
            why.append(
                f"it compiles for a GPU (default backend {jax.default_backend()}); "
                "pallas_interpret=True runs it interpreted"
            )
        why += self._scan_only_options()
        if self.precision is not None:
            why.append("precision sets the scan's dots (Pallas's knob is pallas_precision)")
        if why:
            raise ValueError("LSTM: backend='pallas' cannot run here: " + "; ".join(why))
        return True

    def _cudnn(self, x, lengths, mask, h0_all, c0_all):
        """The whole stack in one cuDNN call."""
        dirs = 2 if self.bidirectional else 1
        layers = [
            [
                self._weights(k, reverse, x.shape[-1] if k == 0 else dirs * self.hidden_size)
                for reverse in (False, True)[:dirs]
            ]
            for k in range(self.num_layers)
        ]
        mask_bt = jnp.swapaxes(mask, 0, 1)  # (B, T, 1)
        seq = jnp.where(mask_bt, x, 0).astype(jnp.float32)  # (B, T, F)
        y, h_n, c_n = cudnn_lstm(
            seq, lengths, layers, h0_all, c0_all,
            bidirectional=self.bidirectional, tf32=self.cudnn_tf32,
        )  # fmt: skip
        y = jnp.where(mask_bt, y, 0.0)  # (B, T, D*H): exactly zero past each length
        return y.astype(self.dtype), (h_n, c_n)

    def _loop_shape(self, features: int, steps: int) -> tuple[int, int, int]:
        """(unroll, projection chunk, inference projection chunk) for a layer with
        `features` inputs over `steps` steps: the options set here, the platform's
        defaults (`loop_defaults`) for those left at None."""
        unroll, chunk, infer_chunk = loop_defaults(
            jax.default_backend(), features, self.hidden_size, steps
        )
        if self.unroll is not None:
            unroll = self.unroll
        if self.projection_chunk is not None:
            chunk = infer_chunk = self.projection_chunk
        return unroll, chunk, infer_chunk

    def _fused(self, groups: int) -> bool:
        """Whether a bidirectional layer runs its directions as one scan: as set, or where
        left at None the platform's default (`fused_directions_default`) unless the rows run
        in length groups, whose phased loops need separate scans."""
        if self.fused_directions is not None:
            return self.fused_directions
        return groups == 1 and fused_directions_default(jax.default_backend())

    def _length_groups(self, steps: int, seq: jax.Array, full: bool) -> int:
        """The length groups this module runs its scan over `seq` in (1: none), checked
        against the options they cannot work with. The default is none where every row
        fills all steps (`full`), where seq's rows lie on a mesh without a `data` axis
        (sorting them there would gather the batch) or where their number is symbolic."""
        clash = []  # options the phased loops cannot serve
        if self.unroll is not None and self.unroll > 1:
            clash.append(f"unroll={self.unroll} (its phased loops run unroll 1)")
        if self.fused_directions:
            clash.append("fused_directions (its backward direction runs flipped time)")
        if self.backward != "custom":
            clash.append("backward='autodiff'")
        if self.length_groups is None:
            if (
                clash
                or full
                or not rows_whole_per_device(seq)
                or not isinstance(seq.shape[0], int)  # symbolic: groups of rows need it known
            ):
                return 1
            return length_groups_default(jax.default_backend(), steps)
        if self.length_groups < 1:
            raise ValueError(f"LSTM: length_groups must be >= 1; got {self.length_groups}")
        if self.length_groups > 1 and clash:
            raise ValueError(
                f"LSTM: length_groups={self.length_groups} does not work with "
                + ", ".join(clash)
                + "; set length_groups=1"
            )
        return self.length_groups

    def _direction(self, unroll: int, chunk: int, infer_chunk: int, groups: int, mesh=None):
        """One layer-direction of the scan as a function (seq, w_ih, bias, w_hh, mask, h0,
        c0, w_hr, *, reverse) -> ((h_n, c_n), outputs), w_hr None without a projection,
        with this module's backward pass, rematerialisation and loop shape; in length
        groups, per shard of `mesh`'s data axis (their phases' bounds are the shard's own
        rows' lengths)."""

        def direction(seq, w_ih, bias, w_hh, mask, h0, c0, w_hr, *, reverse):
            carry0 = (h0, c0)
            remat = self.remat_chunk
            if remat:
                return lstm_direction_remat(
                    seq, w_ih, bias, w_hh, mask, carry0, reverse, unroll, remat, groups, w_hr
                )
            if self.backward == "custom":
                return lstm_direction(
                    seq, w_ih, bias, w_hh, mask, carry0, reverse, unroll, chunk, infer_chunk,
                    groups, w_hr,
                )  # fmt: skip
            xproj = project(seq, w_ih, bias)
            return scan_direction(
                xproj, w_hh, mask, carry0, reverse=reverse, unroll=unroll, w_hr=w_hr
            )

        if groups == 1:
            return direction

        def per_device(seq, w_ih, bias, w_hh, mask, h0, c0, w_hr, *, reverse):
            def flat(*args):
                (h_n, c_n), ys = direction(*args, reverse=reverse)
                return h_n, c_n, ys

            dims = ((1, None, None, None, 1, 0, 0, None), (0, 0, 1))
            h_n, c_n, ys = per_shard(flat, *dims, mesh=mesh)(
                seq, w_ih, bias, w_hh, mask, h0, c0, w_hr
            )
            return (h_n, c_n), ys

        return per_device

    @nn.compact
    def __call__(
        self,
        x: jax.Array,
        lengths: jax.Array | None = None,
        *,
        train: bool = False,
        initial_state: tuple[jax.Array, jax.Array] | None = None,
    ) -> tuple[jax.Array, tuple[jax.Array, jax.Array]]:
        if self.hidden_size < 1 or self.num_layers < 1:
            raise ValueError(
                f"LSTM: hidden_size and num_layers must be >= 1; got {self.hidden_size}, "
                f"{self.num_layers}"
            )
        check_backward(self.backward)
        if self.projection_chunk is not None and self.projection_chunk < 0:
            raise ValueError(f"LSTM: projection_chunk must be >= 0; got {self.projection_chunk}")
        if self.unroll is not None and self.unroll < 1:
            raise ValueError(f"LSTM: unroll must be >= 1; got {self.unroll}")
        if self.remat_chunk < 0:
            raise ValueError(f"LSTM: remat_chunk must be >= 0; got {self.remat_chunk}")
        if self.remat_chunk and self.backward != "custom":
            raise ValueError(
                f"LSTM: remat_chunk works with backward='custom'; got {self.backward!r}"
            )
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"LSTM: dropout must lie in [0, 1); got {self.dropout}")
        if not 0 <= self.proj_size < self.hidden_size:
            raise ValueError(
                f"LSTM: proj_size must lie in [0, hidden_size={self.hidden_size}) (0: no "
                f"projection), as in torch.nn.LSTM; got {self.proj_size}"
            )
        check_precision(self.precision)
        if self.time_major and hasattr(x, "dtype"):
            if x.ndim != 3:
                raise ValueError(
                    "LSTM(time_major=True): inputs must have rank 3 (time, batch, features); "
                    f"got shape {tuple(x.shape)}"
                )
            x = jnp.swapaxes(x, 0, 1)  # (B, T, F); the loop's own layout is time-major
        full = lengths is None and getattr(x, "ndim", None) == 3
        if full:  # every sequence fills all T steps, as in nn.RNN and torch.nn.LSTM
            lengths = jnp.full(x.shape[:1], x.shape[1], jnp.int32)  # (B,)
        check_sequence_inputs(x, lengths, feature_size=built_features(self), min_length=0)
        with matmul_precision(self.precision), forward_mode_named():
            outputs, state = self._stack(x, lengths, train, initial_state, full)
        if self.time_major:  # jitted, the two transposes each side cancel
            outputs = jnp.swapaxes(outputs, 0, 1)  # (T, B, D*H)
        return outputs, state

    def _check_symbolic_shapes(self, batch, max_len) -> None:
        """Raise, naming each option, where the batch or the length is symbolic (`jax.export`
        with shape polymorphism) and an option set here needs it known."""
        set_options = {  # the options set here that need the length, or the batch size too
            f"remat_chunk={self.remat_chunk}": (self.remat_chunk > 0, False),
            f"projection_chunk={self.projection_chunk}": ((self.projection_chunk or 0) > 1, False),
            f"unroll={self.unroll}": ((self.unroll or 0) > 1, False),
            f"length_groups={self.length_groups}": ((self.length_groups or 0) > 1, True),
            "backend='pallas'": (self.backend == "pallas", True),
        }
        known_length = isinstance(max_len, int)
        known_both = known_length and isinstance(batch, int)
        why = []
        for option, (is_set, needs_batch) in set_options.items():
            if is_set and needs_batch and not known_both:
                why.append(f"{option} needs a known batch size and sequence length")
            elif is_set and not known_length:
                why.append(f"{option} needs a known sequence length")
        if why:
            raise ValueError(
                f"LSTM: {'; '.join(why)}; got the symbolic shape ({batch}, {max_len}) "
                "(jax.export with shape polymorphism)"
            )

    def _stack(self, x, lengths, train, initial_state, full):
        """The checked call's work, traced in `precision`'s context; `full`: no lengths were
        given, so no row ends early and length groups would only cost compilation."""
        batch, max_len, _ = x.shape
        self._check_symbolic_shapes(batch, max_len)
        dirs = 2 if self.bidirectional else 1
        hidden = self.hidden_size
        state_shape = (self.num_layers * dirs, batch, hidden)
        # h is the projected hidden state (L*D, B, P) with a projection; c stays H wide
        h_shape = (*state_shape[:2], self.proj_size or hidden)
        carry = carry_dtype(self.dtype)  # float32, or float64 for a float64 layer
        if initial_state is not None:
            if len(initial_state) != 2:
                raise ValueError(
                    f"LSTM: initial_state must be (h_0, c_0); got {len(initial_state)} parts"
                )
            shapes = (h_shape, state_shape)
            for name, part, shape in zip(("h_0", "c_0"), initial_state, shapes, strict=True):
                if part.shape != shape:
                    what = "parts" if shape == h_shape == state_shape else name
                    raise ValueError(
                        f"LSTM: initial_state {what} must have shape {shape}; got {part.shape}"
                    )
            h0_all, c0_all = (p.astype(carry) for p in initial_state)
        else:
            c0_all = jnp.zeros(state_shape, carry)
            h0_all = c0_all if h_shape == state_shape else jnp.zeros(h_shape, carry)
        h0_all, c0_all = match_vma((h0_all, c0_all), x)  # for use inside shard_map
        h0_all, c0_all = shard_batch_like((h0_all, c0_all), x)  # on an explicit mesh

        mask = length_mask(lengths, max_len, time_major=True)[..., None]  # (T, B, 1)
        if self._use_cudnn(train):
            return self._cudnn(x, lengths, mask, h0_all, c0_all)
        # Zero the padding first: garbage (even inf) past a length then never reaches a
        # matmul, so neither values nor gradients can pick up NaN from it.
        seq = jnp.where(mask, jnp.swapaxes(x, 0, 1), 0).astype(self.dtype)  # (T, B, F)
        use_pallas = self._use_pallas()
        groups = 1 if use_pallas else self._length_groups(max_len, x, full)
        # Length groups: rows longest first, per data shard, put back in order at the end;
        # the sort, the loops and the unsort split the rows as the input's rows decide.
        shards = batch_mesh(seq, 1) if groups > 1 else None
        if groups > 1:
            seq, lengths, h0_all, c0_all, order, inverse = per_shard(
                sort_batch, (1, 0, 1, 1), (1, 0, 1, 1, 0, 0), mesh=shards
            )(seq, lengths, h0_all, c0_all)
            mask = length_mask(lengths, max_len, time_major=True)[..., None]  # (T, B, 1)
        finals_h, finals_c = [], []
        for layer in range(self.num_layers):
            features = seq.shape[-1]
            unroll, chunk, infer_chunk = self._loop_shape(features, max_len)
            weights = [self._weights(layer, rev, features) for rev in (False, True)[:dirs]]
            w_ihs, biases, w_hhs, w_hrs = [], [], [], []
            for w in weights:
                w_ihs.append(w["kernel_ih"].astype(self.dtype))  # (F_k, 4H)
                biases.append((w["bias_ih"] + w["bias_hh"]).astype(carry))  # (4H,)
                w_hhs.append(w["kernel_hh"].astype(self.dtype))  # (H, 4H) or (P, 4H)
                w_hr = w.get("kernel_hr")  # (H, P), with a projection
                w_hrs.append(None if w_hr is None else w_hr.astype(self.dtype))
            idx = slice(layer * dirs, (layer + 1) * dirs)
            init = (h0_all[idx], c0_all[idx])  # each (D, B, H)
            if use_pallas:
                xprojs = jnp.stack(
                    [project(seq, w_ih, b) for w_ih, b in zip(w_ihs, biases, strict=True)]
                )  # (D, T, B, 4H)
                (h_n, c_n), ys = pallas_layer(
                    xprojs, jnp.stack(w_hhs), lengths, *init,
                    interpret=self.pallas_interpret, precision=self.pallas_precision,
                    layout=self.pallas_layout,
                )  # fmt: skip
                outs = list(ys)  # ys (D, T, B, H)
                finals_h.append(h_n)
                finals_c.append(c_n)
            else:
                direction = self._direction(unroll, chunk, infer_chunk, groups, shards)
                weights_in = (w_ihs, biases, w_hhs)
                if dirs == 2 and self._fused(groups):
                    (h_n, c_n), outs = _both_directions_at_once(
                        direction, seq, *weights_in, mask, init, w_hrs
                    )  # (2, B, H) each
                    finals_h.append(h_n)
                    finals_c.append(c_n)
                else:
                    outs = []
                    for d in range(dirs):
                        w_d = (w[d] for w in weights_in)
                        (h_n, c_n), ys = direction(
                            seq, *w_d, mask, init[0][d], init[1][d], w_hrs[d], reverse=d == 1
                        )  # ys (T, B, H) or (T, B, P)
                        outs.append(ys)
                        finals_h.append(h_n[None])
                        finals_c.append(c_n[None])
            out = jnp.concatenate(outs, axis=-1) if dirs == 2 else outs[0]  # (T, B, D*H|P)
            if layer < self.num_layers - 1:
                seq = Dropout(self.dropout)(out, deterministic=not train).astype(self.dtype)
            else:
                seq = out
        h_n = jnp.concatenate(finals_h, axis=0)  # (L*D, B, H), or (L*D, B, P)
        c_n = jnp.concatenate(finals_c, axis=0)  # (L*D, B, H)
        if groups > 1:
            seq, h_n, c_n = per_shard(unsort_batch, (1, 1, 1, 0, 0), (1, 1, 1), mesh=shards)(
                seq, h_n, c_n, order, inverse
            )
        outputs = jnp.swapaxes(seq, 0, 1).astype(self.dtype)  # (B, T, D*H)
        return outputs, (h_n, c_n)


def _both_directions_at_once(direction, seq, w_ihs, biases, w_hhs, mask, init, w_hrs):
    """A bidirectional layer as one vmapped scan over the direction axis: the backward
    direction runs forward over time-flipped input, where the padded tail comes first and
    leaves its zero carry as it is, so both are the same forward loop and each step is one
    batched (2, B, H) @ (2, H, 4H) matmul. `direction` is `LSTM._direction`'s function, so
    the fused layer has the same backward pass, projection and rematerialisation.
    seq (T, B, F), mask (T, B, 1); w_ihs, biases, w_hhs, w_hrs (Nones without a
    projection): one per direction; init (h, c) each (2, B, H). Returns ((h_n, c_n) each
    (2, B, H), [forward, backward] outputs (T, B, H) in natural time order); h_n and the
    outputs P wide with a projection."""

    def flip(a):
        return jnp.flip(a, axis=0)

    run = jax.vmap(functools.partial(direction, reverse=False))
    (h_n, c_n), ys = run(
        jnp.stack([seq, flip(seq)]),  # (2, T, B, F)
        jnp.stack(w_ihs),  # (2, F, 4H)
        jnp.stack(biases),  # (2, 4H)
        jnp.stack(w_hhs),  # (2, H, 4H)
        jnp.stack([mask, flip(mask)]),  # (2, T, B, 1)
        *init,
        None if w_hrs[0] is None else jnp.stack(w_hrs),  # (2, H, P)
    )  # ys (2, T, B, H), the backward direction's in flipped time
    return (h_n, c_n), [ys[0], flip(ys[1])]

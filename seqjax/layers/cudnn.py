"""The cuDNN LSTM kernel behind `LSTM(backend="cudnn")`, through `jax.experimental.rnn`.

Why a second backend: on an NVIDIA GPU cuDNN runs each layer's whole recurrence in one
fused kernel, where a `lax.scan` launches a loop of small kernels whose per-step overhead
dominates at these sizes. It is what PyTorch uses there, so it is the fair baseline too.

It is opt-in (`backend="cudnn"`): on an H100 with jax 0.11.2 the scan was faster for
every seed configuration (`python -m benchmarks.backends`, benchmarks/results/), as this
call takes cuDNN's padded variable-length path (about PyTorch's packed speed, several times
its plain padded one), so `backend="auto"` means the scan for now.

What it cannot do, and so when `backend="cudnn"` raises, naming the reason:
- it exists on CUDA only (not CPU, TPU or ROCm);
- it computes in float32 only (no bfloat16 `dtype` or `param_dtype`);
- it has no batching rule, so it cannot run under `jax.vmap`; data parallelism goes
  through `per_shard`, a shard_map over the mesh's `data` axis;
- it has no rematerialisation (`remat_chunk`) and no fused-direction variant;
- dropout between layers in training: per-layer calls with seqjax's dropout between them
  disagreed with the scan under differentiation on an H100, cause not found.

The parameters stay seqjax's tree (kernels (in, 4H), gates i, f, g, o, two biases); they
are packed into cuDNN's flat layout on every call, so checkpoints do not depend on the
backend. The layout, as `jax.experimental.rnn` documents it: for every layer and direction
W_ih (4H, in) then W_hh (4H, H), row-major; then for every layer and direction b_ih, b_hh.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax

from seqjax.layers.per_shard import per_shard

LayerWeights = list[dict[str, jax.Array]]  # one dict per direction


def cudnn_available() -> bool:
    """True where `jax.experimental.rnn` can lower to cuDNN: an NVIDIA GPU under CUDA."""
    try:
        from jax.experimental import rnn
    except ImportError:
        return False
    if getattr(rnn, "gpu_rnn", None) is None:
        return False
    device = jax.devices()[0]
    if device.platform != "gpu":
        return False
    version = str(getattr(device.client, "platform_version", "")).lower()
    return "cuda" in version or device.device_kind.upper().startswith("NVIDIA")


def pack_weights(layers: list[LayerWeights]) -> jax.Array:
    """seqjax's per-layer, per-direction weights -> cuDNN's flat (P,) parameter vector."""
    mats, biases = [], []
    for layer in layers:
        for w in layer:
            mats += [w["kernel_ih"].T.ravel(), w["kernel_hh"].T.ravel()]  # (4H, in), (4H, H)
            biases += [w["bias_ih"], w["bias_hh"]]
    return jnp.concatenate(mats + biases).astype(jnp.float32)


def cudnn_lstm(
    x: jax.Array,
    lengths: jax.Array,
    layers: list[LayerWeights],
    h0: jax.Array,
    c0: jax.Array,
    *,
    bidirectional: bool,
    tf32: bool = False,
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """x (B, T, F) float32 zero past each length; lengths (B,) in [0, T]; h0, c0 (L*D, B, H).

    Returns y (B, T, D*H) and h_n, c_n (L*D, B, H). `tf32` lets cuDNN use TensorFloat-32
    matmuls (PyTorch's default on Ampere and later); off, results match the scan to 1e-5.
    A row of length 0 (a stream with nothing new) runs one step in cuDNN, whose own handling
    of empty sequences is not relied on, and gets its initial state back; its outputs are
    the caller's to mask, as every row's past its length.
    """
    from jax.experimental import rnn

    hidden = h0.shape[-1]
    flat = pack_weights(layers)
    precision = lax.Precision.HIGH if tf32 else lax.Precision.HIGHEST

    def kernel(x, lengths, h0, c0, flat):
        return rnn.lstm(
            x.astype(jnp.float32),
            h0,
            c0,
            flat,
            lengths.astype(jnp.int32),
            input_size=x.shape[-1],
            hidden_size=hidden,
            num_layers=len(layers),
            dropout=0.0,
            bidirectional=bidirectional,
            precision=precision,
        )

    run = per_shard(kernel, batch_dims=(0, 0, 1, 1, None), out_batch_dims=(0, 1, 1))
    y, h_n, c_n = run(x, jnp.maximum(lengths, 1), h0, c0, flat)
    empty = (lengths == 0)[None, :, None]  # (1, B, 1)
    return y, jnp.where(empty, h0, h_n), jnp.where(empty, c0, c_n)

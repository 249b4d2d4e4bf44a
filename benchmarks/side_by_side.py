"""Each seed system's LSTM stack three ways in one process: seqjax, `torch.nn.LSTM` (packed
and plain padded) and Flax's `nn.RNN(nn.OptimizedLSTMCell)`, same sizes, batch, lengths,
dtype (float32) and threads.

    python -m benchmarks.side_by_side [--only steel ...] [--variant two_scans ...]
        [--repeats 15] [--out PATH]

runs these alone (`python -m benchmarks` runs them after each system's own figures): on a
GPU the short way to the ratios, with seqjax's cuDNN and Pallas backends beside the scan,
and the scan again with its loops recorded into CUDA graphs (`LOOP_GRAPHS`) and, for a
bidirectional stack, as two scans instead of the GPU's one (`gpu_variants`).
Train = forward + backward of sum(outputs**2); inference = forward at batch 32. Ratios > 1
mean seqjax is faster. The implementations are timed in interleaved rounds, one call of
each per round, so they share the machine's load.

On CPU, `measure_isolated` runs a config in a fresh process that XLA sees as one device
per core, and seqjax is also timed with the batch sharded over a mesh of those devices
(`seqjax_per_core`): XLA runs one device's recurrence on one core, so this is how seqjax
puts every core on the sequential loop that PyTorch spreads over its threads; Flax's stack
is timed on the same mesh (`flax_nn_rnn_per_core`) for the per-core ratio. PyTorch's
padded stack is also timed on one thread (`torch_padded_1thread`), the same thread count
as seqjax's one device gives its loop (`speedup_same_threads`; XLA may still spread a
large matmul outside the loop over the cores).
"""

from __future__ import annotations

import functools
import os
import sys
import time

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from benchmarks import command_line
from benchmarks.isolation import in_fresh_process, one_device_per_core
from benchmarks.timing import environment, time_interleaved
from seqjax.io import atomic_write_json
from seqjax.layers import LSTM
from seqjax.layers.cudnn import cudnn_available
from seqjax.layers.pallas_lstm import pallas_blockers
from seqjax.loop_graphs import LOOP_GRAPHS
from seqjax.train.sharding import data_sharding, make_mesh, replicated

# hidden: one entry per stacked LSTM module, each with `layers` layers (trust stacks three
# single-layer LSTMs of different widths; the others are one multi-layer module). hidden is
# per direction: the hybrid's BiLSTM block is 256 wide (the H=256, the model's
# d_model), 128 units each way.
CONFIGS = {
    "trust": dict(batch=32, time=2, features=768, hidden=(256, 128, 64), layers=1, bi=False),
    "steel": dict(batch=32, time=500, features=5, hidden=(128,), layers=2, bi=True, min_len=100),
    "trend": dict(batch=32, time=12, features=62, hidden=(64,), layers=2, bi=True),
    "hybrid_block": dict(batch=32, time=128, features=256, hidden=(128,), layers=2, bi=True),
}


class SeqjaxStack(nn.Module):
    hidden: tuple[int, ...]
    layers: int
    bi: bool
    backend: str = "auto"  # the scan; "cudnn" for the opt-in kernel
    unroll: int | None = None
    projection_chunk: int | None = None
    fused: bool | None = None  # the layer's default: one scan for both directions off CPU
    lstm_cls: type = LSTM  # another copy of the layer (benchmarks.stack_ab's, at a revision)
    options: tuple[tuple[str, object], ...] = ()  # further LSTM keyword arguments, if any

    @nn.compact
    def __call__(self, x, lengths):
        for h in self.hidden:
            lstm = self.lstm_cls(
                h,
                self.layers,
                bidirectional=self.bi,
                backend=self.backend,
                unroll=self.unroll,
                projection_chunk=self.projection_chunk,
                fused_directions=self.fused,
                **dict(self.options),
            )
            x, _ = lstm(x, lengths)
        return x


class FlaxStack(nn.Module):
    """Stock Flax: one nn.RNN (or nn.Bidirectional pair) per layer, masked by seq_lengths.
    Its cells are this module's, named `OptimizedLSTMCell_0`, `_1`, ... in the order they
    are made: each layer forward, then backward (`seqjax.flax_interop`'s order)."""

    hidden: tuple[int, ...]
    layers: int
    bi: bool
    cell: type = nn.OptimizedLSTMCell  # or nn.LSTMCell

    @nn.compact
    def __call__(self, x, lengths):
        for h in self.hidden:
            for _ in range(self.layers):
                rnn = nn.RNN(self.cell(h))
                if self.bi:
                    rnn = nn.Bidirectional(rnn, nn.RNN(self.cell(h)))
                x = rnn(x, seq_lengths=lengths)
        return x


def inputs(cfg: dict, *, masked: bool = True, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((cfg["batch"], cfg["time"], cfg["features"])).astype(np.float32)
    lengths = np.full(cfg["batch"], cfg["time"], np.int32)
    if masked and "min_len" in cfg:
        lengths = rng.integers(cfg["min_len"], cfg["time"] + 1, cfg["batch"]).astype(np.int32)
        lengths[0] = cfg["time"]
        x[np.arange(cfg["time"]) >= lengths[:, None]] = 0
    return x, lengths


def jax_fns(
    module: nn.Module,
    x: np.ndarray,
    lengths: np.ndarray,
    *,
    per_core: bool = False,
    compiler_options: dict | None = None,
):
    """(forward, train) callables of `module` on one device, or with `per_core` the batch
    sharded over a mesh of every local device and the parameters replicated, as seqjax's
    data-parallel training lays them out; both jitted with XLA `compiler_options`."""
    x, lengths = jnp.asarray(x), jnp.asarray(lengths)
    variables = jax.jit(module.init)(jax.random.key(0), x, lengths)
    if per_core:
        mesh = make_mesh(jax.local_devices())
        variables = jax.device_put(variables, replicated(mesh))
        x, lengths = (jax.device_put(a, data_sharding(mesh)) for a in (x, lengths))
    forward = jax.jit(module.apply, compiler_options=compiler_options)

    @functools.partial(jax.jit, compiler_options=compiler_options)
    def train(v, x, lengths):
        return jax.value_and_grad(lambda v: jnp.sum(module.apply(v, x, lengths) ** 2))(v)

    return (
        lambda: jax.block_until_ready(forward(variables, x, lengths)),
        lambda: jax.block_until_ready(train(variables, x, lengths)),
    )


def _per_core_devices() -> bool:
    """Whether this process can time `seqjax_per_core`: a CPU seen as several devices."""
    return jax.default_backend() == "cpu" and jax.local_device_count() > 1


def torch_fns(
    cfg: dict, x: np.ndarray, lengths: np.ndarray, *, packed: bool, threads: int | None = None
):
    """(forward, train) callables of `torch.nn.LSTM` stacks of the config's sizes, packed
    or plain padded, on the GPU where there is one; with `threads`, each call runs on that
    many CPU threads and restores the process's setting after."""
    import torch

    torch.manual_seed(0)
    stack, size = torch.nn.ModuleList(), cfg["features"]
    proj = cfg.get("proj_size", 0)  # nn.LSTM's projections, where a config has them
    for h in cfg["hidden"]:
        stack.append(
            torch.nn.LSTM(
                size, h, cfg["layers"], batch_first=True, bidirectional=cfg["bi"],
                proj_size=proj,
            )
        )  # fmt: skip
        size = (proj or h) * (2 if cfg["bi"] else 1)
    xt, lt = torch.from_numpy(x), torch.from_numpy(lengths.astype(np.int64))
    device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda":  # cuDNN, in full float32 like every implementation here
        torch.backends.cudnn.enabled = True
        torch.backends.cudnn.allow_tf32 = False  # PyTorch's default is True for cuDNN
        torch.backends.cuda.matmul.allow_tf32 = False
        stack, xt = stack.to(device), xt.to(device)  # lengths stay on the CPU for packing
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)

    def run():
        out = xt
        for lstm in stack:
            if packed:
                seq = torch.nn.utils.rnn.pack_padded_sequence(
                    out, lt, batch_first=True, enforce_sorted=False
                )
                out, _ = lstm(seq)
                out, _ = torch.nn.utils.rnn.pad_packed_sequence(
                    out, batch_first=True, total_length=cfg["time"]
                )
            else:
                out, _ = lstm(out)
        return out

    def forward():
        with torch.no_grad():
            run()
        sync()

    def train():
        stack.zero_grad(set_to_none=True)
        (run() ** 2).sum().backward()
        sync()

    if threads is None:
        return forward, train
    return _on_threads(forward, threads), _on_threads(train, threads)


def _on_threads(fn, threads: int):
    """fn run with torch on `threads` CPU threads, the process's setting restored after."""
    import torch

    def run():
        before = torch.get_num_threads()
        torch.set_num_threads(threads)
        try:
            fn()
        finally:
            torch.set_num_threads(before)

    return run


def time_impls(
    impls: dict[str, tuple], *, repeats: int, seconds: float | None = None
) -> dict[str, dict]:
    """{impl: {"inference_b32": stats, "train": stats}} from (forward, train) callables,
    each kind timed in interleaved rounds (see `time_interleaved`) for at least
    `repeats` rounds and `seconds` (default 0.2 s per repeat: 3 s at the suite's 15)."""
    timings: dict[str, dict] = {impl: {} for impl in impls}
    min_seconds = 0.2 * repeats if seconds is None else seconds
    for k, kind in enumerate(("inference_b32", "train")):
        fns = {impl: pair[k] for impl, pair in impls.items()}
        stats_by_impl = time_interleaved(fns, repeats=repeats, min_seconds=min_seconds)
        for impl, stats in stats_by_impl.items():
            timings[impl][kind] = stats
    return timings


def measure(name: str, *, repeats: int, variants: tuple[str, ...] | None = None) -> dict:
    """Timings of every implementation for config `name`, and seqjax's speed-up ratios;
    of the optional variants that apply here (`optional_variants`), those named in
    `variants` (without their `seqjax_` prefix), all of them where it is None.

    Every matmul is full float32: JAX's default on NVIDIA GPUs rounds float32 matmul inputs
    to TF32 and PyTorch's cuDNN RNN does too, so a ratio would otherwise compare different
    arithmetic. (On CPU the setting changes nothing.)
    """
    with jax.default_matmul_precision("highest"):
        return _measure(name, repeats=repeats, variants=variants)


def _measure(name: str, *, repeats: int, variants: tuple[str, ...] | None) -> dict:
    import torch

    torch.set_num_threads(os.cpu_count() or 1)  # XLA's CPU backend also uses every core
    cfg = CONFIGS[name]
    x, lengths = inputs(cfg)
    shape = dict(hidden=tuple(cfg["hidden"]), layers=cfg["layers"], bi=cfg["bi"])
    impls = {
        "seqjax": jax_fns(SeqjaxStack(**shape), x, lengths),
        "flax_nn_rnn": jax_fns(FlaxStack(**shape), x, lengths),
        "torch_padded": torch_fns(cfg, x, lengths, packed=False),
        "torch_packed": torch_fns(cfg, x, lengths, packed=True),
    }
    optional = {
        key: value
        for key, value in optional_variants(cfg).items()
        if variants is None or key.removeprefix("seqjax_") in variants
    }
    reference = [fn() for fn in impls["seqjax"]]
    variant_errors, variant_diffs = add_variants(impls, optional, shape, x, lengths, reference)
    if _per_core_devices() and cfg["batch"] % jax.local_device_count() == 0:
        impls["seqjax_per_core"] = jax_fns(SeqjaxStack(**shape), x, lengths, per_core=True)
        # Flax on the same mesh: seqjax per core is compared with Flax per core
        impls["flax_nn_rnn_per_core"] = jax_fns(FlaxStack(**shape), x, lengths, per_core=True)
    if _per_core_devices():  # PyTorch on one thread, as seqjax's one device runs its loop
        impls["torch_padded_1thread"] = torch_fns(cfg, x, lengths, packed=False, threads=1)
    if "min_len" in cfg:  # the same padded shape with every sequence full
        impls["seqjax_unmasked"] = jax_fns(SeqjaxStack(**shape), *inputs(cfg, masked=False))
    timings = time_impls(impls, repeats=repeats)
    ours = timings["seqjax"]
    out = {
        "config": {**cfg, "hidden": list(cfg["hidden"]), "matmuls": MATMULS},
        "devices": jax.local_device_count(),
        "timings": timings,
    }
    out["speedup"] = _ratios(timings, "seqjax")
    if "seqjax_per_core" in timings:
        out["speedup_per_core"] = _ratios(
            timings, "seqjax_per_core", ("torch_padded", "torch_packed", "flax_nn_rnn_per_core")
        )
    if "torch_padded_1thread" in timings:  # same threads: one device against one thread
        out["speedup_same_threads"] = _ratios(timings, "seqjax", ("torch_padded_1thread",))
    variants = {v: _ratios(timings, v) for v in optional if v in timings}
    if variants:  # each optional implementation's ratios, as `speedup` gives seqjax's
        out["speedup_variants"] = variants
    if variant_errors:
        out["variant_errors"] = variant_errors
    if variant_diffs:  # outputs, and the train call's loss and gradients, against seqjax's
        out["variant_max_abs_diff"] = variant_diffs
    if "seqjax_unmasked" in timings:
        out["masked_over_unmasked"] = {
            kind: ours[kind]["median_ms"] / timings["seqjax_unmasked"][kind]["median_ms"]
            for kind in ("train", "inference_b32")
        }
    return out


MATMULS = "float32, no TF32 (the *_tf32x3 Pallas variants, on a GPU: three TF32 passes)"


def optional_variants(cfg: dict) -> dict[str, tuple[dict, dict | None]]:
    """seqjax's implementations beside its default that apply only on some devices:
    name -> (SeqjaxStack keyword arguments, XLA compile options)."""
    out = {}
    if cudnn_available():  # seqjax's opt-in cuDNN backend
        out["seqjax_cudnn"] = ({"backend": "cudnn"}, None)
    out.update({f"seqjax_{name}": v for name, v in pallas_variants(cfg).items()})
    if jax.default_backend() == "gpu":
        out.update(gpu_variants(cfg))
    return out


def add_variants(
    impls: dict,
    variants: dict,
    shape: dict,
    x,
    lengths,
    reference: tuple | None = None,
    first_calls: dict | None = None,
) -> tuple[dict[str, str], dict[str, dict]]:
    """Adds each of `variants` (as `optional_variants` gives them) to `impls` once it has
    compiled and run (`built_or_error`). Returns ({name: error} for those that did not,
    {name: {kind: largest difference from `reference`}}), `reference` being the default
    stack's (forward, train) results: a variant that runs fast but computes something
    else shows as such. `first_calls`, if given, gets each variant's seconds to build,
    compile and first run its forward and train calls (compilation, mostly)."""
    errors, diffs = {}, {}
    for name, (kwargs, options) in variants.items():
        stack = SeqjaxStack(**shape, **kwargs)
        fns = functools.partial(jax_fns, stack, x, lengths, compiler_options=options)
        start = time.perf_counter()
        built, error = built_or_error(name, lambda fns=fns: _with_results(fns()))
        if first_calls is not None and not error:
            first_calls[name] = time.perf_counter() - start
        if error:
            errors[name] = error
            continue
        impls[name], results = built
        if reference is not None:
            pairs = zip(("inference_b32", "train"), results, reference, strict=True)
            try:
                diffs[name] = {kind: max_abs_diff(r, ref) for kind, r, ref in pairs}
            except (ValueError, TypeError) as error:  # e.g. another parameter tree
                errors[name] = f"results not comparable with seqjax's: {error}"
    return errors, diffs


def max_abs_diff(a, b) -> float:
    """The largest elementwise difference between two pytrees of arrays."""
    diffs = jax.tree.map(lambda x, y: float(jnp.max(jnp.abs(x - y))), a, b)
    return max(jax.tree.leaves(diffs))


def pallas_variants(cfg: dict) -> dict[str, tuple[dict, None]]:
    """The fused Pallas kernels at both precisions, where they apply (opt-in until measured
    ahead): name -> (SeqjaxStack keyword arguments, no compile options)."""
    if not pallas_applies(cfg):
        return {}
    tf32x3 = (("pallas_precision", "tf32x3"),)
    units = (("pallas_layout", "units"),)
    return {
        "pallas": ({"backend": "pallas"}, None),
        "pallas_tf32x3": ({"backend": "pallas", "options": tf32x3}, None),
        "pallas_units": ({"backend": "pallas", "options": units}, None),
        "pallas_units_tf32x3": ({"backend": "pallas", "options": units + tf32x3}, None),
    }


def gpu_variants(cfg: dict) -> dict[str, tuple[dict, dict | None]]:
    """The scan's GPU levers the side-by-side times beside the default scan on a GPU:
    name -> (SeqjaxStack keyword arguments, XLA compile options). Its steps there cost
    launches, not arithmetic (see `LOOP_GRAPHS`): CUDA graphs remove the launches from
    the host. A bidirectional stack's default there runs both directions in one scan
    (`fused_directions_default`), so the two separate scans are timed beside it."""
    out = {"seqjax_graphs": ({}, LOOP_GRAPHS)}
    if cfg["bi"]:
        out["seqjax_two_scans"] = ({"fused": False}, None)
    return out


def _with_results(fns: tuple) -> tuple[tuple, list]:
    """(fns, the result of calling each once): compiles and runs them."""
    return fns, [fn() for fn in fns]


def built_or_error(name: str, build):
    """(build(), None), or (None, the error) printed to stderr: an implementation this
    device's XLA, Triton or driver rejects costs its own figures, not the run's others."""
    try:
        return build(), None
    except Exception as error:  # noqa: BLE001 - reported in the result, not swallowed
        message = f"{type(error).__name__}: {error}"
        print(f"{name} did not run: {message[:200]}", file=sys.stderr)
        return None, message


def pallas_applies(cfg: dict) -> bool:
    """Whether `LSTM(backend="pallas")` runs this configuration here: on a GPU, with
    hidden sizes its kernels take."""
    gpu = jax.default_backend() == "gpu"
    return gpu and not any(pallas_blockers(h, jnp.float32) for h in cfg["hidden"])


REFERENCES = ("torch_padded", "torch_packed", "flax_nn_rnn")


def _ratios(timings: dict, ours: str, refs: tuple[str, ...] = REFERENCES) -> dict:
    """{kind_vs_impl: impl's median / ours} for each of `refs`, > 1 where `ours` is faster."""
    return {
        f"{kind}_vs_{impl}": timings[impl][kind]["median_ms"] / timings[ours][kind]["median_ms"]
        for impl in refs
        for kind in ("train", "inference_b32")
    }


def measure_isolated(name: str, *, repeats: int, variants: tuple[str, ...] | None = None) -> dict:
    """`measure` in a fresh process that sees one CPU device per core (see the module's
    docstring and benchmarks/isolation.py)."""
    return in_fresh_process(
        measure, name, repeats=repeats, variants=variants, initializer=one_device_per_core
    )


# The optional variants by name (`--variant`), each where it applies: cuDNN on CUDA, Pallas
# on a GPU for the hidden sizes it takes, the rest on any GPU (two_scans: bidirectional).
VARIANTS = (
    "cudnn", "pallas", "pallas_tf32x3", "pallas_units", "pallas_units_tf32x3", "graphs",
    "two_scans",
)  # fmt: skip


def main(argv: list[str] | None = None) -> dict:
    from benchmarks.__main__ import table  # that module imports this one

    parser = command_line.parser("benchmarks.side_by_side", __doc__)
    parser.add_argument("--only", choices=sorted(CONFIGS), action="append")
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--out", default=None)
    parser.add_argument(
        "--variant",
        choices=[*VARIANTS, "none"],
        action="append",
        help="time only these of the optional variants that apply here (default: all; "
        "none: seqjax's default, PyTorch and Flax alone): a short GPU call's lever",
    )
    args = parser.parse_args(argv)
    command_line.require_torch(parser)
    variants = None if args.variant is None else tuple(args.variant)
    result = {
        "command": command_line.command("benchmarks.side_by_side", argv),
        "environment": environment(),
        "systems": {},
        "side_by_side": {},
    }
    out = args.out or command_line.results_path("side_by_side")
    for name in args.only or list(CONFIGS):
        print(f"[{name}] LSTM stack side by side", flush=True)
        result["side_by_side"][name] = measure_isolated(
            name, repeats=args.repeats, variants=variants
        )
        # after every config: a run cut short (a GPU session's time limit) keeps those done
        atomic_write_json(out, result)
    print(table(result))
    print(f"wrote {out}")
    return result


if __name__ == "__main__":
    main()

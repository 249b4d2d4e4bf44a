"""The side-by-side stacks with glibc's malloc as it comes and with freed memory kept.

    python -m benchmarks.host_memory [--only steel ...] [--rounds 2] [--repeats 15] [--out PATH]

Each round runs every config three times, in fresh processes one after the other: with
the C library's malloc left as it is (`default`: `isolation.no_preallocation`); set up
with freed memory kept for reuse (`reuse`: `seqjax.host_memory.reuse_freed_memory`, as
`SEQJAX_REUSE_FREED_MEMORY=1 seqjax train` sets it); and that with JAX running each
single-device computation on the calling thread (`reuse_sync_dispatch`:
`jax_cpu_enable_async_dispatch` off, so XLA's temporaries come from the main thread's
arena, which has no size limit). Each process times seqjax's stack at its
defaults (batch-32 inference, and train = forward + backward of sum(outputs**2)) and,
where torch is installed, PyTorch's padded `nn.LSTM` of the same sizes, and counts the
minor page faults a call takes (getrusage: every thread of the process). Reported:
medians over the rounds, and `default / setting` ratios, > 1 where the setting is
faster. Other allocators (jemalloc, tcmalloc) would need LD_PRELOAD and are not timed.
"""

from __future__ import annotations

import importlib.util
import resource
import statistics
import sys

from benchmarks import command_line
from benchmarks.isolation import in_fresh_process, no_preallocation
from benchmarks.side_by_side import CONFIGS
from seqjax.host_memory import reuse_freed_memory


def reuse() -> None:
    """Child initializer: `no_preallocation`, and freed host memory kept for reuse."""
    no_preallocation()
    reuse_freed_memory()


def reuse_and_sync_dispatch() -> None:
    """Child initializer: `reuse`, and JAX runs each single-device computation on the
    calling thread instead of handing it to a worker thread."""
    import jax

    reuse()
    jax.config.update("jax_cpu_enable_async_dispatch", False)


SETTINGS = {
    "default": no_preallocation,
    "reuse": reuse,
    "reuse_sync_dispatch": reuse_and_sync_dispatch,
}


def _faults_per_call(fn, calls: int) -> float:
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(calls):
        fn()
    return (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / calls


def measure(name: str, repeats: int) -> dict:
    """In a fresh process: {impl: {kind: {median_ms, faults_per_call}}} for one config."""
    import jax

    from benchmarks.side_by_side import SeqjaxStack, inputs, jax_fns, torch_fns
    from benchmarks.timing import time_interleaved

    cfg = CONFIGS[name]
    x, lengths = inputs(cfg)
    shape = dict(hidden=tuple(cfg["hidden"]), layers=cfg["layers"], bi=cfg["bi"])
    impls = {"seqjax": jax_fns(SeqjaxStack(**shape), x, lengths)}
    if importlib.util.find_spec("torch") is not None:
        impls["torch_padded"] = torch_fns(cfg, x, lengths, packed=False)
    result = {"device": jax.devices()[0].device_kind}
    for kind, index in (("inference_b32", 0), ("train", 1)):
        fns = {impl: pair[index] for impl, pair in impls.items()}
        times = time_interleaved(fns, repeats=repeats)
        for impl, fn in fns.items():
            result.setdefault(impl, {})[kind] = {
                "median_ms": times[impl]["median_ms"],
                "faults_per_call": _faults_per_call(fn, 3),
            }
    return result


def summarise(runs: dict) -> dict:
    """Medians over the rounds of each setting, and default / setting ratios."""
    out = {}
    for impl in runs["reuse"][0]:
        if impl == "device":
            continue
        out[impl] = {}
        for kind in runs["reuse"][0][impl]:
            row = {}
            for setting, rounds in runs.items():
                row[f"{setting}_ms"] = statistics.median(r[impl][kind]["median_ms"] for r in rounds)
                row[f"{setting}_faults_per_call"] = statistics.median(
                    r[impl][kind]["faults_per_call"] for r in rounds
                )
            for setting in runs:
                if setting != "default":
                    row[f"default_over_{setting}"] = row["default_ms"] / row[f"{setting}_ms"]
            out[impl][kind] = row
    return out


def main(argv: list[str] | None = None) -> dict:

    p = command_line.parser("benchmarks.host_memory", __doc__)
    p.add_argument("--only", action="append", choices=sorted(CONFIGS))
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--repeats", type=int, default=15)
    p.add_argument("--out", default=None)
    args = p.parse_args(argv)
    if not sys.platform.startswith("linux"):
        p.error("this compares glibc's malloc settings, which exist on Linux only")
    results = {}
    for name in args.only or sorted(CONFIGS):
        runs = {setting: [] for setting in SETTINGS}
        for _ in range(args.rounds):
            for setting, initializer in SETTINGS.items():
                run = in_fresh_process(measure, name, args.repeats, initializer=initializer)
                runs[setting].append(run)
        results[name] = {"summary": summarise(runs), "runs": runs}
        for impl, kinds in results[name]["summary"].items():
            for kind, row in kinds.items():
                cells = [
                    f"{setting} {row[f'{setting}_ms']:.2f} ms "
                    f"({row[f'{setting}_faults_per_call']:.0f} faults"
                    + (f", {row[f'default_over_{setting}']:.2f}x)" if setting != "default" else ")")
                    for setting in SETTINGS
                ]
                print(f"{name:13s} {impl:13s} {kind:14s} " + "  ".join(cells))
    return command_line.save_results("host_memory", argv, args.out, {"configs": results})


if __name__ == "__main__":
    main()

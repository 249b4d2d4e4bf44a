"""Where a side-by-side stack's time goes, thunk by thunk, on XLA's CPU runtime.

    python -m benchmarks.profile trend [--train] [--calls 50] [--top 25] [--timeline]

Compiles one of `benchmarks.side_by_side.CONFIGS` at seqjax's defaults with XLA's
per-thunk trace annotations on (`xla_cpu_enable_xprof_traceme`), runs `--calls` calls
under `jax.profiler.trace`, and prints for each thunk (a fusion, a matmul, a loop) its
time per call, how many times a call runs it, and how many threads ran it. `--timeline`
also prints the last call's thunks in order with their start, duration and thread, which
shows what runs one after another and what overlaps.

The side-by-side suite says how fast a stack is; this says which part of it to work on,
e.g. that steel's step matmuls run at one core's peak and the two directions' loops run
one after the other (benchmarks/README.md, "Where one device's time goes"). Traced calls
run slower than untraced ones (the untraced mean is printed first); compare thunks with
each other, not with the suite's figures.
"""

from __future__ import annotations

import collections
import glob
import gzip
import json
import tempfile
import time

import jax

from benchmarks import command_line
from benchmarks.side_by_side import CONFIGS, SeqjaxStack, inputs, jax_fns

CALL = "benchmarks.profile call"  # the annotation around each traced call


def _is_thunk(event: dict) -> bool:
    """XLA tags its thunks' trace events with the HLO op; host-side spans (Python frames,
    dispatch, the executor, thread pools) have no such argument."""
    return "hlo_op" in (event.get("args") or {})


def _events(trace_dir: str) -> list[dict]:
    """The complete ("X") events of the perfetto trace written under `trace_dir`."""
    (path,) = glob.glob(f"{trace_dir}/**/*.trace.json.gz", recursive=True)
    with gzip.open(path) as f:
        trace = json.load(f)
    events = trace["traceEvents"] if isinstance(trace, dict) else trace
    return sorted((e for e in events if e.get("ph") == "X"), key=lambda e: e["ts"])


def thunk_table(events: list[dict], calls: int) -> list[dict]:
    """Per thunk name: µs per call, runs per call and distinct threads, slowest first."""
    total, runs = collections.Counter(), collections.Counter()
    threads = collections.defaultdict(set)
    for e in events:
        if _is_thunk(e):
            total[e["name"]] += e.get("dur", 0)
            runs[e["name"]] += 1
            threads[e["name"]].add(e.get("tid"))
    return [
        {
            "thunk": name,
            "us_per_call": us / calls,
            "runs_per_call": runs[name] / calls,
            "threads": len(threads[name]),
        }
        for name, us in total.most_common()
    ]


def last_call(events: list[dict], min_us: float) -> list[dict]:
    """The thunks of the last call (the window of its `CALL` annotation), in start order."""
    window = [e for e in events if e["name"] == CALL][-1]
    start, end = window["ts"], window["ts"] + window["dur"]
    threads: dict = {}
    rows = []
    for e in events:
        if start <= e["ts"] <= end and _is_thunk(e):
            if e.get("dur", 0) >= min_us:
                thread = threads.setdefault(e.get("tid"), len(threads))
                rows.append({"start_us": e["ts"] - start, "us": e["dur"], "thread": thread,
                             "thunk": e["name"]})  # fmt: skip
    return rows


def main(argv: list[str] | None = None) -> dict:
    p = command_line.parser("benchmarks.profile", __doc__)
    p.add_argument("config", choices=sorted(CONFIGS))
    p.add_argument("--train", action="store_true", help="the train step, not inference")
    p.add_argument("--calls", type=int, default=None, help="traced calls (default by size)")
    p.add_argument("--top", type=int, default=25)
    p.add_argument("--timeline", action="store_true", help="also the last call, in order")
    p.add_argument("--min-us", type=float, default=8.0, help="timeline: shortest thunk shown")
    args = p.parse_args(argv)
    if jax.default_backend() != "cpu":
        raise SystemExit("benchmarks.profile reads XLA's CPU thunks; run it on a CPU")
    cfg = CONFIGS[args.config]
    calls = args.calls or (3 if cfg["time"] * cfg["batch"] > 4000 else 50)
    x, lengths = inputs(cfg)
    module = SeqjaxStack(hidden=cfg["hidden"], layers=cfg["layers"], bi=cfg["bi"])
    options = {"xla_cpu_enable_xprof_traceme": True}
    fn = jax_fns(module, x, lengths, compiler_options=options)[1 if args.train else 0]
    for _ in range(3):
        fn()
    start = time.perf_counter()
    for _ in range(calls):
        fn()
    untraced = (time.perf_counter() - start) / calls
    with tempfile.TemporaryDirectory() as trace_dir:
        with jax.profiler.trace(trace_dir, create_perfetto_trace=True):
            for _ in range(calls):
                with jax.profiler.TraceAnnotation(CALL):
                    fn()
        events = _events(trace_dir)
    kind = "train step" if args.train else "batch-32 inference"
    print(f"{args.config} {kind}: {untraced * 1e3:.3f} ms a call untraced; {calls} traced calls")
    table = thunk_table(events, calls)
    header = "thunk (runs per call; threads over all calls)"
    print(f"{'us/call':>10} {'runs':>7} {'threads':>7}  {header}")
    for row in table[: args.top]:
        print(
            f"{row['us_per_call']:10.1f} {row['runs_per_call']:7.1f} {row['threads']:7d}  "
            f"{row['thunk']}"
        )
    timeline = last_call(events, args.min_us) if args.timeline else []
    if args.timeline:
        print(f"\nlast call, thunks of {args.min_us:g} µs or more: start µs, µs, thread, thunk")
        for row in timeline:
            print(f"{row['start_us']:10.1f} {row['us']:9.1f} {row['thread']:3d}  {row['thunk']}")
    return {"untraced_ms": untraced * 1e3, "thunks": table, "timeline": timeline}


if __name__ == "__main__":
    main()

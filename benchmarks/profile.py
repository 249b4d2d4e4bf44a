"""Where a side-by-side stack's time goes: thunk by thunk on XLA's CPU runtime, kernel by
kernel on a GPU.

    python -m benchmarks.profile trend [--train] [--two-scans] [--calls 50] [--top 25]
        [--timeline] [--out PATH]

Compiles one of `benchmarks.side_by_side.CONFIGS` at seqjax's defaults with XLA's
per-thunk trace annotations on (`xla_cpu_enable_xprof_traceme`), runs `--calls` calls
under `jax.profiler.trace`, and prints for each thunk (a fusion, a matmul, a loop) its
time per call, how many times a call runs it, and how many threads ran it. `--timeline`
also prints the last call's thunks in order with their start, duration and thread, which
shows what runs one after another and what overlaps.

On a GPU it reads the device's own events instead (the trace's `/device:GPU:N`
processes, CUPTI's kernels, copies and memsets), per kernel name the same columns, and
puts them against the loops' sequential steps (`loop_steps`): kernels a step, and µs a
step of kernel time and of the untraced call. Where the kernels' time is a small part of
the call's, the device waits on launches between them, which is what a GPU side-by-side
figure of the scan then measures. `--two-scans` profiles a bidirectional stack as two
scans instead of the GPU's default one (`fused_directions_default`).

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
from seqjax.layers.loop_defaults import fused_directions_default

CALL = "benchmarks.profile call"  # the annotation around each traced call


def _is_thunk(event: dict) -> bool:
    """XLA tags its thunks' trace events with the HLO op; host-side spans (Python frames,
    dispatch, the executor, thread pools) have no such argument."""
    return "hlo_op" in (event.get("args") or {})


def _trace(trace_dir: str) -> tuple[list[dict], dict]:
    """The complete ("X") events of the perfetto trace written under `trace_dir`, in start
    order, and its process names by pid ("/host:CPU", "/device:GPU:0", ...)."""
    (path,) = glob.glob(f"{trace_dir}/**/*.trace.json.gz", recursive=True)
    with gzip.open(path) as f:
        trace = json.load(f)
    events = trace["traceEvents"] if isinstance(trace, dict) else trace
    names = {
        e.get("pid"): (e.get("args") or {}).get("name", "")
        for e in events
        if e.get("ph") == "M" and e.get("name") == "process_name"
    }
    complete = sorted((e for e in events if e.get("ph") == "X"), key=lambda e: e["ts"])
    return complete, names


def device_table(events: list[dict], processes: dict, calls: int) -> list[dict]:
    """Per event name on the trace's device processes (`/device:...`: kernels, copies,
    memsets): µs per call, runs per call and distinct streams, slowest first."""
    devices = {pid for pid, name in processes.items() if name.startswith("/device:")}
    mine = [e for e in events if e.get("pid") in devices]
    return _per_name(mine, calls, "kernel", "streams", lambda e: (e.get("pid"), e.get("tid")))


def _per_name(events: list[dict], calls: int, what: str, where: str, place) -> list[dict]:
    """Rows of {what: name, µs and runs per call, where: how many places (`place(event)`)
    ran it} per event name, slowest first."""
    total, runs = collections.Counter(), collections.Counter()
    places = collections.defaultdict(set)
    for e in events:
        total[e["name"]] += e.get("dur", 0)
        runs[e["name"]] += 1
        places[e["name"]].add(place(e))
    return [
        {
            what: name,
            "us_per_call": us / calls,
            "runs_per_call": runs[name] / calls,
            where: len(places[name]),
        }
        for name, us in total.most_common()
    ]


def loop_steps(cfg: dict, *, train: bool, fused: bool) -> int:
    """The sequential loop steps one call of `cfg`'s stack runs: per LSTM module, layers x
    T, twice for a bidirectional layer run as two scans, and twice again for training's
    reverse loops."""
    per_module = cfg["layers"] * cfg["time"] * (2 if cfg["bi"] and not fused else 1)
    return len(cfg["hidden"]) * per_module * (2 if train else 1)


def thunk_table(events: list[dict], calls: int) -> list[dict]:
    """Per thunk name: µs per call, runs per call and distinct threads, slowest first."""
    thunks = [e for e in events if _is_thunk(e)]
    return _per_name(thunks, calls, "thunk", "threads", lambda e: e.get("tid"))


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
    p.add_argument("--two-scans", action="store_true", help="a bidirectional stack as two scans")
    p.add_argument("--out", default=None, help="also write the figures as JSON here")
    args = p.parse_args(argv)
    args.argv = argv  # for the command a written result records
    cpu = jax.default_backend() == "cpu"
    cfg = CONFIGS[args.config]
    calls = args.calls or (3 if cpu and cfg["time"] * cfg["batch"] > 4000 else 50)
    x, lengths = inputs(cfg)
    fused = cfg["bi"] and not args.two_scans and fused_directions_default(jax.default_backend())
    module = SeqjaxStack(hidden=cfg["hidden"], layers=cfg["layers"], bi=cfg["bi"], fused=fused)
    options = {"xla_cpu_enable_xprof_traceme": True} if cpu else None
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
        events, processes = _trace(trace_dir)
    kind = "train step" if args.train else "batch-32 inference"
    print(f"{args.config} {kind}: {untraced * 1e3:.3f} ms a call untraced; {calls} traced calls")
    if not cpu:
        return _device_report(args, cfg, events, processes, calls, untraced, fused)
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
    result = {"untraced_ms": untraced * 1e3, "thunks": table, "timeline": timeline}
    return _written(result, args)


def _written(result: dict, args) -> dict:
    """`result`, and with `--out` the tool's results file of it (`save_results`: the
    command and the machine first); without, nothing is written, as before `--out`."""
    if not args.out:
        return result
    return command_line.save_results("profile", args.argv, args.out, result)


def _device_report(args, cfg, events, processes, calls, untraced, fused) -> dict:
    """The GPU's side: each device event name's time, against the loops' steps."""
    table = device_table(events, processes, calls)
    steps = loop_steps(cfg, train=args.train, fused=fused)
    kernels = sum(row["runs_per_call"] for row in table)
    busy_us = sum(row["us_per_call"] for row in table)
    summary = {
        "fused_directions": bool(fused),
        "loop_steps": steps,
        "device_events_per_call": kernels,
        "device_events_per_step": kernels / steps,
        "device_us_per_step": busy_us / steps,
        "untraced_us_per_step": untraced * 1e6 / steps,
        "device_busy_share": busy_us / (untraced * 1e6),
    }
    print(f"processes: {sorted(set(processes.values()))}")
    print(
        f"{steps} loop steps a call ({'one scan' if fused else 'two scans'} per "
        f"bidirectional layer): {summary['device_events_per_step']:.2f} device events, "
        f"{summary['device_us_per_step']:.2f} µs of them and {summary['untraced_us_per_step']:.2f}"
        f" µs of the untraced call a step; the device busy {summary['device_busy_share']:.0%}"
    )
    print(f"{'us/call':>10} {'runs':>7} {'streams':>7}  device event")
    for row in table[: args.top]:
        print(
            f"{row['us_per_call']:10.1f} {row['runs_per_call']:7.1f} {row['streams']:7d}  "
            f"{row['kernel'][:120]}"
        )
    result = {"untraced_ms": untraced * 1e3, **summary, "device_events": table[: args.top]}
    return _written(result, args)


if __name__ == "__main__":
    main()

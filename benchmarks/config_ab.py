"""One config setting against another, on whole configs as `seqjax train` runs them.

    python -m benchmarks.config_ab configs/steel_deep.yaml [configs/...] \\
        --a host.reuse_freed_memory=false --b host.reuse_freed_memory=true \\
        [--rounds 2] [--steps 20] [--repeats 10] [--out PATH]

Why: a key that trades speed (`host.reuse_freed_memory`, `mesh.cpu_devices`,
`train.loop_graphs`) wins on some configs and loses on others, so each config's value is
set from a measurement of that config; one that trades speed for memory
(`train.micro_batches`) shows the train step's compiled memory beside its time. Each
round measures every config with settings A and B, A first in even rounds and B first in
odd ones, each in a fresh process (`benchmarks.systems.measure_isolated`: the real jitted
train step on a real batch of the config's data, and inference at batch 1, 32 and 256).
Reported per config: medians over the rounds, and `a_over_b` ratios of the medians, > 1
where B is faster (or smaller).
"""

from __future__ import annotations

import os
import statistics

from benchmarks import command_line
from benchmarks.systems import load_measured_config, measure_isolated

FIGURES = {  # name -> where a `benchmarks.systems.measure` result holds it
    "train_step_ms": ("train_step", "median_ms"),
    "inference_batch_1_ms": ("inference", "batch_1", "median_ms"),
    "inference_batch_32_ms": ("inference", "batch_32", "median_ms"),
    "inference_batch_256_ms": ("inference", "batch_256", "median_ms"),
    "process_peak_rss_gb": ("memory", "process_peak_rss_bytes"),
    # what XLA's buffer assignment gives the train step: arguments, outputs, temporaries
    "train_step_memory_gb": ("memory", "train_step_compiled", "total_bytes"),
}


def figures(measured: dict) -> dict:
    """The figures this tool compares, from one `benchmarks.systems.measure` result."""
    out = {}
    for name, path in FIGURES.items():
        value = measured
        for key in path:
            value = value[key]
        out[name] = value / 2**30 if name.endswith("_gb") else value
    out["host_memory_reused"] = measured["host_memory_reused"]
    return out


def summarise(runs: dict) -> dict:
    """{"a": medians, "b": medians, "a_over_b": ratios} from {"a": [figures...], "b": [...]}."""
    medians = {
        side: {name: statistics.median(r[name] for r in rounds) for name in FIGURES}
        for side, rounds in runs.items()
    }
    ratios = {name: medians["a"][name] / medians["b"][name] for name in FIGURES}
    return {**medians, "a_over_b": ratios}


def main(argv: list[str] | None = None) -> dict:
    p = command_line.parser("benchmarks.config_ab", __doc__)
    p.add_argument("configs", nargs="+", help="YAML config files")
    p.add_argument("--a", action="append", default=[], metavar="KEY=VALUE", required=True)
    p.add_argument("--b", action="append", default=[], metavar="KEY=VALUE", required=True)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--repeats", type=int, default=10)
    p.add_argument("--out", default=None)
    args = p.parse_args(argv)
    missing = [c for c in args.configs if not os.path.isfile(c)]
    if missing:
        p.error(f"no such config file: {missing[0]}")
    settings = {"a": tuple(args.a), "b": tuple(args.b)}
    for config in args.configs:  # a bad key or value fails here, before anything is measured
        for side in settings.values():
            try:
                load_measured_config(config, side)
            except ValueError as e:
                p.error(f"{config}: {e}")
    results = {}
    for config in args.configs:
        runs = {"a": [], "b": []}
        for n in range(args.rounds):
            for side in ("a", "b") if n % 2 == 0 else ("b", "a"):
                measured = measure_isolated(
                    config=config, steps=args.steps, repeats=args.repeats,
                    settings=settings[side],
                )  # fmt: skip
                runs[side].append(figures(measured))
        results[config] = {"summary": summarise(runs), "runs": runs}
        ratios = results[config]["summary"]["a_over_b"]
        print(f"{config}: a / b " + ", ".join(f"{k} {v:.2f}" for k, v in ratios.items()))
    fields = {"settings": {side: list(s) for side, s in settings.items()}, "configs": results}
    return command_line.save_results("config_ab", argv, args.out, fields)


if __name__ == "__main__":
    main()

"""The benchmark suite: every seed system at its default config, and each system's LSTM
stack side by side with torch.nn.LSTM and Flax nn.RNN, each in its own process.

    python -m benchmarks                 # full: >= 20 steps, writes results/<device>.json
    python -m benchmarks --quick         # smoke run: 3 steps, results/<device>-quick.json
    python -m benchmarks --only steel    # one system (and its side-by-side config)
    python -m benchmarks --only steel --set train.loop_graphs=true --systems-only --out X.json
                                         # the systems with config settings changed

Prints one table of the seed targets (figure, target, pass/fail) and the speed-up ratios.
"""

from __future__ import annotations

import json
import os

from benchmarks import command_line, side_by_side, systems
from benchmarks.command_line import device_kind
from benchmarks.timing import environment
from seqjax.io import atomic_write_json

SIDE_BY_SIDE = {"trust": "trust", "steel": "steel", "trend": "trend", "hybrid": "hybrid_block"}


def main(argv: list[str] | None = None) -> dict:
    parser = command_line.parser("benchmarks", __doc__)
    parser.add_argument("--quick", action="store_true", help="smoke run: few steps, repeats")
    parser.add_argument("--only", choices=sorted(systems.SYSTEMS), action="append")
    parser.add_argument("--out", default=None, help="JSON path (default results/<device>.json)")
    parser.add_argument(
        "--set",
        dest="settings",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="change every system's config, as `seqjax train --set` (needs --out)",
    )
    parser.add_argument("--systems-only", action="store_true", help="no side-by-side stacks")
    args = parser.parse_args(argv)
    if not args.systems_only:
        command_line.require_torch(parser, "--systems-only measures the seed systems alone")
    steps, repeats = (3, 3) if args.quick else (20, 15)
    names = args.only or list(systems.SYSTEMS)
    if args.settings and not args.out:  # the default file holds the default configs' figures
        parser.error("--set needs --out")
    for name in names:  # a bad key or value fails here, before anything is measured
        try:
            systems.load_measured_config(systems.SYSTEMS[name], args.settings)
        except ValueError as e:  # a usage error: one line, as `seqjax train --set` gives
            parser.error(str(e))
    kind = device_kind()
    out = args.out or os.path.join(
        "benchmarks", "results", f"{kind}{'-quick' if args.quick else ''}.json"
    )
    result = {
        "command": command_line.command("benchmarks", argv),
        "environment": environment(),
        "quick": args.quick,
        "settings": args.settings,
        "systems": {},
        "side_by_side": {},
    }
    if os.path.exists(out) and args.only:  # --only updates those entries of a full file
        with open(out) as f:
            previous = json.load(f)
        if previous.get("settings", []) != args.settings:
            parser.error(f"{out} holds figures with settings {previous.get('settings', [])}")
        result["systems"] = previous.get("systems", {})
        result["side_by_side"] = previous.get("side_by_side", {})
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    settings = tuple(args.settings)
    for name in names:
        changed = f" with {', '.join(settings)}" if settings else ""
        print(f"[{name}] system at its default config{changed}", flush=True)
        figures = systems.measure_isolated(name, steps=steps, repeats=repeats, settings=settings)
        figures["targets"] = systems.targets(figures)
        result["systems"][name] = figures
        if not args.systems_only:
            config = SIDE_BY_SIDE[name]
            print(f"[{name}] LSTM stack side by side ({config})", flush=True)
            result["side_by_side"][config] = side_by_side.measure_isolated(config, repeats=repeats)
        # after every system: a run cut short (a GPU session's time limit) keeps those done
        atomic_write_json(out, result)
    print(table(result))
    print(f"wrote {out}")
    return result


# The side-by-side's ratio fields, each printed with its label before the ratio's name.
RATIO_FIELDS = (
    ("speedup", ""),
    ("speedup_per_core", "per core: "),
    ("speedup_same_threads", ""),
    ("masked_over_unmasked", "masked/unmasked cost, "),
)


def table(result: dict) -> str:
    lines = [f"{'system':8} {'figure':36} {'value':>10} {'target':>8}  pass"]
    for name, fig in result["systems"].items():
        for row in fig["targets"]:
            ok = "PASS" if row["pass"] else "FAIL"
            lines.append(
                f"{name:8} {row['figure']:36} {row['value']:10.3f} {row['target']:>8}  {ok}"
            )
    lines.append("")
    lines.append(f"{'config':13} {'ratio (> 1: seqjax faster)':38} {'value':>7}")
    for config, sbs in result["side_by_side"].items():
        for field, label in RATIO_FIELDS:
            for key, value in sbs.get(field, {}).items():
                lines.append(f"{config:13} {label + key:38} {value:7.2f}")
        for variant, ratios in sbs.get("speedup_variants", {}).items():
            for key, value in ratios.items():
                lines.append(f"{config:13} {variant + ': ' + key:38} {value:7.2f}")
        for variant, diffs in sbs.get("variant_max_abs_diff", {}).items():
            worst = max(diffs.values())
            lines.append(f"{config:13} {variant + ': max |diff| vs seqjax':38} {worst:7.1e}")
        for variant, error in sbs.get("variant_errors", {}).items():
            lines.append(f"{config:13} {variant} did not run: {error[:60]}")
    return "\n".join(lines)


if __name__ == "__main__":
    main()

"""Length buckets (`train.bucket_width`): a config's training epoch with each batch padded
to the data's length against each batch cut to its bucket, in one process.

    python -m benchmarks.buckets [--config configs/steel_standard.yaml] [--widths 0 50 100]
        [--rounds 3] [--length-groups N] [--set KEY=VALUE ...] [--out PATH]

Why: a recurrence runs a loop step per padded step, so batches of similar lengths cut to
their bucket run fewer steps (seqjax/data/buckets.py), at the price of one compiled shape
per bucket. Each width runs the config's real jitted train step (`seqjax train`'s) over
the epoch-0 batches that `iterate_batches` gives at that width, after an untimed pass that
compiles its shapes (`compile_s`, the pass's seconds; `new_shapes`, those no width before
it compiled); the rounds then time one epoch per width, the widths' order reversed each
round. Reported per width: the median epoch seconds, the mean padded steps per batch, the
shapes, and the speed-up over width 0.

`--length-groups 1` runs every batch as one group of rows, as the LSTM does on a GPU or
TPU, where a step costs its launch whatever the rows; the default leaves the platform's
choice (on a CPU, 4 groups from T = 128, which already stop computing ended rows).
"""

from __future__ import annotations

import contextlib
import statistics
import time

import jax

from benchmarks import command_line
from seqjax.config import load_config
from seqjax.data.dataset import iterate_batches, num_batches
from seqjax.data.sources import adapt_to_data, load_splits
from seqjax.host_memory import reuse_freed_memory_if_asked
from seqjax.layers import lstm
from seqjax.models import build_model
from seqjax.train.loop import mesh_for, steps_for
from seqjax.train.optim import make_optimizer
from seqjax.train.sharding import replicate, shard_batch
from seqjax.train.state import create_state


def run_epoch(train_step, state, batches):
    """`state` after one pass of `train_step` over `batches`, and the pass's seconds."""
    start = time.perf_counter()
    for batch in batches:
        state, stats = train_step(state, batch)
    jax.block_until_ready(stats)
    return state, time.perf_counter() - start


@contextlib.contextmanager
def length_groups(groups: int | None):
    """With `groups`, every LSTM traced inside runs that many length groups; after it, the
    platform's default again, and no program traced with the override stays cached."""
    if groups is None:
        yield
        return
    default = lstm.length_groups_default
    lstm.length_groups_default = lambda platform, steps: groups  # the layer reads it
    try:
        yield
    finally:
        lstm.length_groups_default = default
        jax.clear_caches()


def measure(cfg, widths: list[int], rounds: int) -> tuple[dict, int]:
    """Per width: the first pass's seconds and shapes, and `rounds` timed epochs; and the
    batches an epoch has."""
    splits = load_splits(cfg.data)
    cfg = adapt_to_data(cfg, splits)  # a user's data sets the model's features, as in training
    train = splits["train"]
    mesh = mesh_for(cfg)
    steps = num_batches(len(train), cfg.train.batch_size, drop_remainder=False)
    state = create_state(
        build_model(cfg.model_name, cfg.model),
        make_optimizer(cfg.optimizer, total_steps=steps),
        train.inputs[:1],
        train.lengths[:1],
        seed=0,
    )
    state = replicate(state, mesh)
    train_step, _ = steps_for(cfg, mesh)

    batches, rows, compiled = {}, {}, set()
    for width in widths:
        host = list(iterate_batches(train, cfg.train.batch_size, shuffle=True, bucket_width=width))
        padded = [b.inputs.shape[1] for b in host]
        batches[width] = [shard_batch(b, mesh) for b in host]
        state, compile_s = run_epoch(train_step, state, batches[width])
        rows[width] = {
            "bucket_width": width,
            "mean_padded_steps": sum(padded) / len(padded),
            "shapes": sorted(set(padded)),
            "new_shapes": sorted(set(padded) - compiled),  # the ones compile_s compiled
            "compile_s": compile_s,
            "epoch_s": [],
        }
        compiled |= set(padded)
    for r in range(rounds):
        for width in widths if r % 2 == 0 else widths[::-1]:
            state, seconds = run_epoch(train_step, state, batches[width])
            rows[width]["epoch_s"].append(seconds)
    return rows, steps


def main(argv: list[str] | None = None) -> dict:
    parser = command_line.parser("benchmarks.buckets", __doc__)
    parser.add_argument("--config", default="configs/steel_standard.yaml")
    parser.add_argument("--widths", type=int, nargs="+", default=[0, 50, 100])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--length-groups", type=int, default=None)
    parser.add_argument("--set", dest="settings", nargs="+", default=[], metavar="KEY=VALUE")
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    if 0 not in args.widths or min(args.widths) < 0 or args.rounds < 1:
        parser.error("--widths must be >= 0 and include 0 (the baseline); --rounds >= 1")
    widths = list(dict.fromkeys(args.widths))  # each once, in the order given
    try:
        cfg = load_config(args.config, args.settings)
    except (OSError, ValueError) as e:  # a usage error: one line, as `seqjax train` gives
        parser.error(str(e))
    reuse_freed_memory_if_asked(cfg.host.reuse_freed_memory)  # as `seqjax train` does
    with length_groups(args.length_groups):
        rows, steps = measure(cfg, widths, args.rounds)
    base = statistics.median(rows[0]["epoch_s"])
    for width, row in rows.items():
        row["median_epoch_s"] = statistics.median(row["epoch_s"])
        row["speedup_over_width_0"] = base / row["median_epoch_s"]
        print(
            f"width {width:4d}: {row['mean_padded_steps']:6.1f} padded steps a batch, "
            f"{len(row['shapes'])} shapes, first pass {row['compile_s']:6.1f} s "
            f"({len(row['new_shapes'])} compiled), epoch {row['median_epoch_s']:6.2f} s "
            f"({row['speedup_over_width_0']:.2f}x)"
        )
    suffix = "" if args.length_groups is None else f"_groups{args.length_groups}"
    return command_line.save_results(
        "buckets",
        argv,
        args.out,
        {
            "config": args.config,
            "settings": args.settings,
            "batches_per_epoch": steps,
            "batch_size": cfg.train.batch_size,
            "length_groups": args.length_groups,
            "rounds": args.rounds,
            "widths": list(rows.values()),
        },
        suffix,
    )


if __name__ == "__main__":
    main()

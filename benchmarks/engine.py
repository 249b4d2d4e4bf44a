"""Training-engine figures for the trust model: steps/s and sequences/s on 1 and 8 CPU
devices at the same global batch, time to the first compiled step, and Orbax checkpoint
save/restore time and size. Each device count runs in its own process (the fake-device
flag must be set before jax starts).

    python -m benchmarks.engine [--steps 60] [--out benchmarks/results/engine_cpu.json]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

from benchmarks import command_line


def worker(devices: int, steps: int) -> dict:
    import jax

    from benchmarks.timing import environment
    from seqjax.config import load_config
    from seqjax.data.dataset import iterate_batches, num_batches
    from seqjax.data.sources import load_splits
    from seqjax.models import build_model
    from seqjax.train.checkpoint import Checkpointer
    from seqjax.train.loop import steps_for
    from seqjax.train.optim import make_optimizer
    from seqjax.train.sharding import make_mesh, replicate, shard_batch
    from seqjax.train.state import create_state

    cfg = load_config("configs/trust.yaml")
    splits = load_splits(cfg.data)
    train = splits["train"]
    mesh = make_mesh(jax.devices()[:devices])
    total = num_batches(len(train), cfg.train.batch_size, drop_remainder=False) * cfg.train.epochs
    state = create_state(
        build_model("trust", cfg.model),
        make_optimizer(cfg.optimizer, total),
        train.inputs[:1],
        train.lengths[:1],
        seed=0,
    )
    state = replicate(state, mesh)
    train_step, _ = steps_for(cfg, mesh)
    batches = [
        shard_batch(b, mesh)
        for b in iterate_batches(train, cfg.train.batch_size, shuffle=True, drop_remainder=True)
    ]
    start = time.perf_counter()
    state, m = train_step(state, batches[0])
    jax.block_until_ready(m)
    first_step = time.perf_counter() - start
    # One step in flight on multi-device CPU, as the fit loop does (see seqjax/train/loop.py).
    sync = devices > 1 and jax.default_backend() == "cpu"
    for b in batches[1:6]:
        state, m = train_step(state, b)
        if sync:
            jax.block_until_ready(m)
    jax.block_until_ready(m)
    start = time.perf_counter()
    for i in range(steps):
        state, m = train_step(state, batches[i % len(batches)])
        if sync:
            jax.block_until_ready(m)
    jax.block_until_ready(m)
    seconds = time.perf_counter() - start
    with tempfile.TemporaryDirectory() as tmp:
        ckpt = Checkpointer(tmp, async_save=False)
        start = time.perf_counter()
        ckpt.save(1, state, {"epoch": 1})
        ckpt.manager.wait_until_finished()
        first_save_s = time.perf_counter() - start  # includes Orbax's one-time set-up
        start = time.perf_counter()
        ckpt.save(2, state, {"epoch": 2}, 0.0)
        ckpt.manager.wait_until_finished()
        save_s = time.perf_counter() - start
        size = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(tmp) for f in fs)
        start = time.perf_counter()
        restored, _ = ckpt.restore(2, state)
        jax.block_until_ready(restored)
        restore_s = time.perf_counter() - start
        ckpt.close()
    return {
        "devices": devices,
        "environment": environment(),
        "global_batch": cfg.train.batch_size,
        "first_step_seconds": first_step,
        "steps_per_second": steps / seconds,
        "sequences_per_second": steps * cfg.train.batch_size / seconds,
        "checkpoint_first_save_seconds": first_save_s,
        "checkpoint_save_seconds": save_s,
        "checkpoint_restore_seconds": restore_s,
        "checkpoint_megabytes": size / 2**20,
    }


def main(argv: list[str] | None = None) -> dict:
    parser = command_line.parser("benchmarks.engine", __doc__)
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--out", default="benchmarks/results/engine_cpu.json")
    parser.add_argument("--worker", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(args.worker, args.steps)))
        return {}
    runs = []
    for devices in (1, 8):
        env = dict(os.environ, XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}")
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "benchmarks.engine",
                "--worker",
                str(devices),
                "--steps",
                str(args.steps),
            ],
            capture_output=True,
            text=True,
            env=env,
            check=True,
        )
        runs.append(json.loads(proc.stdout.strip().splitlines()[-1]))
        print({k: v for k, v in runs[-1].items() if k != "environment"}, flush=True)
    result = {
        "command": command_line.command("benchmarks.engine", argv),
        "model": "trust (configs/trust.yaml)",
        "note": "8 devices are XLA host-platform devices sharing the same 2 CPU cores",
        "runs": runs,
        "speedup_8_over_1": float(
            np.divide(runs[1]["steps_per_second"], runs[0]["steps_per_second"])
        ),
    }
    command_line.write_result(args.out, result)
    return result


if __name__ == "__main__":
    main()

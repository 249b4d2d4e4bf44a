"""One seed system at its default config: train step, compile, inference, memory, size.

Uses the real path (config -> data -> `create_state` -> the jitted `steps_for` train
step with its shardings) on a real batch of the system's data, so the figures are those of
`seqjax train`, not of a toy loop.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Sequence

import jax
import numpy as np

from benchmarks.isolation import as_seqjax_command, in_fresh_process
from benchmarks.timing import peak_rss_bytes, time_calls
from seqjax.config import load_config
from seqjax.data.dataset import iterate_batches, num_batches
from seqjax.data.sources import load_splits
from seqjax.host_memory import in_effect as host_memory_reused
from seqjax.host_memory import reuse_freed_memory_if_asked
from seqjax.models import build_model
from seqjax.train.loop import mesh_for, steps_for
from seqjax.train.optim import make_optimizer
from seqjax.train.sharding import replicate, shard_batch
from seqjax.train.state import create_state

SYSTEMS = {
    "trust": "configs/trust.yaml",
    "steel": "configs/steel_standard.yaml",
    "trend": "configs/trend.yaml",
    "hybrid": "configs/hybrid.yaml",
}


def _dir_bytes(path: str) -> int:
    return sum(
        os.path.getsize(os.path.join(root, f)) for root, _, files in os.walk(path) for f in files
    )


def model_size_mb(params) -> float:
    """Size on disk of an Orbax checkpoint of the parameters alone."""
    import orbax.checkpoint as ocp

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "params")
        ckpt = ocp.StandardCheckpointer()
        ckpt.save(path, params)
        ckpt.wait_until_finished()
        return _dir_bytes(path) / 2**20


def compiled_bytes(analysis) -> dict[str, int]:
    """What XLA's buffer assignment gives a compiled call, from `memory_analysis()`.

    Why not its `peak_memory_in_bytes` alone: on the CPU (jax 0.10.2) that counts the
    arguments and outputs only, not the temporaries; steel's train step read 1.03 MiB there
    against 121.6 MiB of temporaries (benchmarks/results/systems_cpu_amd-epyc.json). XLA
    allocates a call's temporaries as one block, so arguments + outputs + temporaries -
    aliased (donated inputs reused as outputs) is what the call holds at once; the
    reported peak stays beside it.
    """
    fields = {
        "argument": analysis.argument_size_in_bytes,
        "output": analysis.output_size_in_bytes,
        "alias": analysis.alias_size_in_bytes,
        "temp": analysis.temp_size_in_bytes,
        "generated_code": analysis.generated_code_size_in_bytes,
        "reported_peak": analysis.peak_memory_in_bytes,
    }
    out = {f"{k}_bytes": int(v) for k, v in fields.items()}
    out["total_bytes"] = out["argument_bytes"] + out["output_bytes"] + out["temp_bytes"]
    out["total_bytes"] -= out["alias_bytes"]
    return out


def device_peak_bytes() -> int | None:
    stats = jax.devices()[0].memory_stats()
    return int(stats["peak_bytes_in_use"]) if stats and "peak_bytes_in_use" in stats else None


def load_measured_config(config: str, settings: Sequence[str] = ()):
    """The config `measure` times: `config` with `settings`, refused where its figures would
    not hold. The suite times one batch padded to the data's length, so a config with
    length buckets (`train.bucket_width`) would be reported as if it had none."""
    cfg = load_config(config, list(settings))
    if cfg.train.bucket_width:
        raise ValueError(
            f"train.bucket_width={cfg.train.bucket_width}: the suite times one batch padded to "
            "the data's length; python -m benchmarks.buckets times length buckets"
        )
    return cfg


def measure(
    name: str = "", *, steps: int, repeats: int, settings: tuple[str, ...] = (), config: str = ""
) -> dict:
    """Figures of system `name` at its default config, or of the YAML file `config`, changed
    by `settings` (KEY=VALUE, as `seqjax train --set` takes them)."""
    if not (name or config):
        raise ValueError("measure needs a system name or a config file")
    config = config or SYSTEMS[name]
    cfg = load_measured_config(config, settings)
    reuse_freed_memory_if_asked(cfg.host.reuse_freed_memory)  # as run_experiment does
    splits = load_splits(cfg.data)
    train, test = splits["train"], splits["test"]
    bs = cfg.train.batch_size
    steps_per_epoch = num_batches(len(train), bs, drop_remainder=False)
    model = build_model(cfg.model_name, cfg.model)
    mesh = mesh_for(cfg)
    state = create_state(
        model,
        make_optimizer(cfg.optimizer, total_steps=steps_per_epoch * cfg.train.epochs),
        train.inputs[:1],
        train.lengths[:1],
        seed=cfg.train.seed,
    )
    state = replicate(state, mesh)
    train_step, _ = steps_for(cfg, mesh)
    batch = shard_batch(next(iterate_batches(train, bs, shuffle=True)), mesh)

    start = time.perf_counter()
    compiled = train_step.lower(state, batch).compile()
    compile_s = time.perf_counter() - start
    step_memory = compiled.memory_analysis()
    # On a GPU, compiling (XLA autotuning its kernels) allocates device memory too; the peak
    # so far tells how much of the final peak was reached before the first step ran.
    peak_after_compile = device_peak_bytes()

    def one_step():
        nonlocal state
        state, m = compiled(state, batch)
        jax.block_until_ready(m)

    train_t = time_calls(one_step, warmup=2, repeats=steps)
    peak_after_train = device_peak_bytes()  # before inference at batch 256 can raise it
    variables = {"params": state.params, **state.mutable}
    forward = jax.jit(lambda v, x, n: model.apply(v, x, n))
    pool = np.concatenate([test.inputs, train.inputs])[:256]
    pool_len = np.concatenate([test.lengths, train.lengths])[:256]
    inference = {}
    for b in (1, 32, 256):
        x, n = pool[:b], pool_len[:b]
        t = time_calls(
            lambda x=x, n=n: jax.block_until_ready(forward(variables, x, n)), repeats=repeats
        )
        inference[f"batch_{b}"] = {**t, "sequences_per_s": b / t["median_ms"] * 1e3}
    epoch_s = train_t["median_ms"] / 1e3 * steps_per_epoch
    return {
        "config": config,
        "settings": list(settings),
        "num_params": int(sum(np.size(p) for p in jax.tree.leaves(state.params))),
        "batch": bs,
        "input_shape": list(train.inputs.shape[1:]),
        "train_step": {**train_t, "sequences_per_s": bs / train_t["median_ms"] * 1e3},
        "compile_train_step_s": compile_s,
        "inference": inference,
        "memory": {
            "train_step_compiled": compiled_bytes(step_memory),
            "device_peak_bytes": device_peak_bytes(),
            "device_peak_bytes_after_compile": peak_after_compile,
            "device_peak_bytes_after_train": peak_after_train,
            "process_peak_rss_bytes": peak_rss_bytes(),
        },
        "model_size_mb": model_size_mb(state.params),
        "host_memory_reused": host_memory_reused(),
        "estimated_training": {
            "steps_per_epoch": steps_per_epoch,
            "epochs": cfg.train.epochs,
            "minutes": epoch_s * cfg.train.epochs / 60,
        },
    }


def measure_isolated(
    name: str = "", *, steps: int, repeats: int, settings: tuple[str, ...] = (), config: str = ""
) -> dict:
    """`measure` in a fresh process (see benchmarks/isolation.py), so its peak memory is
    that system's alone, not the running maximum of everything the suite measured before,
    and with host memory set up as `seqjax train` sets it (seqjax/host_memory.py)."""
    return in_fresh_process(
        measure, name, steps=steps, repeats=repeats, settings=settings, config=config,
        initializer=as_seqjax_command,
    )  # fmt: skip


def targets(figures: dict) -> list[dict]:
    """The seeds' targets: training < 30 min, inference < 200 ms per sequence, < 4 GB of
    device memory, a model < 50 MB."""
    # On CPU there is no device counter, and XLA's buffers for the train step (see
    # `compiled_bytes`) leave out what jax, the data and compilation hold, so the whole
    # process's peak RSS is the conservative figure there.
    memory = figures["memory"]["device_peak_bytes"] or figures["memory"]["process_peak_rss_bytes"]
    rows = [
        ("estimated training (min)", figures["estimated_training"]["minutes"], 30.0),
        ("inference ms / sequence (batch 1)", figures["inference"]["batch_1"]["median_ms"], 200.0),
        ("peak memory (GB; CPU: process RSS)", memory / 2**30, 4.0),
        ("model size (MB)", figures["model_size_mb"], 50.0),
    ]
    return [
        {"figure": f, "value": float(v), "target": f"< {t:g}", "pass": bool(v < t)}
        for f, v, t in rows
    ]

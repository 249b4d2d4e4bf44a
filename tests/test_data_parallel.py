"""Data parallel on 8 CPU devices (subprocesses, so the flag applies before jax starts).

The training run compiles at XLA's default optimisation level, with XLA_FLAGS of its own,
where the rest of the suite compiles at 0 (tests/conftest.py): a user's data-parallel run
is checked as users' runs compile it. The layer checks (per-shard layers, Pallas, length
groups, every backward path's collectives) keep the suite's level, as every other layer
test does; the collectives come from XLA's HLO passes, which run at every level."""

import json
import os
import subprocess
import sys

import numpy as np


def _check(mode: str, flags: str) -> dict:
    env = dict(os.environ, XLA_FLAGS=f"{flags} --xla_force_host_platform_device_count=8".strip())
    proc = subprocess.run(
        [sys.executable, "tests/data_parallel_check.py", mode],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout)
    assert out["device_count"] == 8
    return out


def test_eight_devices_reach_the_single_device_losses():
    out = _check("training", "")  # XLA's default level, as `seqjax train` compiles
    assert out["batch_shard_rows_8"] == [4]  # 32 rows split over 8 devices
    assert out["batch_shard_rows_1"] == [32]
    assert out["param_devices_8"] == 8 and out["param_replicated_8"]
    assert out["restore_same_structure"] and out["restore_same_shardings"]
    assert out["restore_same_values"] and out["restore_loop"] == {"epoch": 1}
    assert "batch size 12 is not divisible by the 8 devices" in out["indivisible_batch_error"]
    assert "batch size 12 is not divisible by the 8 devices" in out["indivisible_scoring_error"]
    assert out["divisible_scoring_batch"] == 16  # --batch-size 16: two rows a device
    for key in ("train_loss", "val_loss", "val_accuracy"):
        one = [row[key] for row in out["history_1"]]
        eight = [row[key] for row in out["history_8"]]
        np.testing.assert_allclose(eight, one, rtol=1e-5, atol=1e-6)


def test_the_lstm_per_shard_equals_one_device_and_only_weight_gradients_cross():
    out = _check("layers", os.environ.get("XLA_FLAGS", ""))  # the suite's level
    assert sorted(out["per_shard_rows_seen"]) == [4] * 3 + [32] * 3  # a shard's rows; unsharded
    assert out["per_shard_output_diff"] < 1e-5
    assert out["per_shard_grad_diff"] < 1e-4
    # the fused Pallas kernels, interpreted, in both layouts, run per shard and agree
    # with one device
    for kernels in ("pallas", "pallas_units"):
        assert out[f"{kernels}_output_shards"] == 8
        assert out[f"{kernels}_output_diff"] < 1e-5 and out[f"{kernels}_grad_diff"] < 1e-4
    # only the weight gradients cross devices, whichever backward path the layer takes
    assert out["lstm_train_collectives"] == {
        "in_step_projection": ["all-reduce"],
        "chunked": ["all-reduce"],
        "whole_projection": ["all-reduce"],
        "remat": ["all-reduce"],
        "length_groups": ["all-reduce"],
    }
    # length groups per shard, under the mesh and in a plain jit, equal one device's loop
    for how in ("mesh", "plain_jit"):
        assert out[f"length_groups_{how}_shards"] == 8
        assert out[f"length_groups_{how}_output_diff"] < 1e-5
        assert out[f"length_groups_{how}_grad_diff"] < 1e-4

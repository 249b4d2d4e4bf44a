"""`mesh.cpu_devices`: the CLI shows XLA's CPU client as that many devices and trains on a
mesh over them; a process whose JAX already runs with another count is told so by name."""

import json
import os
import subprocess
import sys

import jax
import pytest

from seqjax.train.sharding import use_cpu_devices


def test_the_cli_trains_on_a_mesh_of_the_asked_cpu_devices(tmp_path):
    if jax.default_backend() != "cpu":
        pytest.skip("checks the CPU client")
    settings = ["data.size=200", "train.epochs=1", "model.hidden_sizes=[16, 8, 4]"]
    settings += ["mesh.cpu_devices=2", "train.plots=false", "checkpoint.enabled=false"]
    # its numbers come from an eval_shape of the model, which must not start JAX first
    settings += ["train.class_weights=balanced"]
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}  # JAX's default: 1
    proc = subprocess.run(
        [sys.executable, "-m", "seqjax.cli", "train", "--config", "configs/trust.yaml"]
        + ["--run-dir", str(tmp_path / "run"), "--set", *settings],
        capture_output=True, text=True, timeout=600, env=env,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "class weights" in proc.stdout
    assert "devices [CpuDevice(id=0), CpuDevice(id=1)]" in proc.stdout
    with open(tmp_path / "run" / "metrics.json") as f:
        assert 0.0 <= json.load(f)["test"]["accuracy"] <= 1.0


def test_import_torch_writes_a_run_on_the_asked_cpu_devices(tmp_path):
    """import-torch made its model's state before its mesh, so JAX had started with one CPU
    device and `--set mesh.cpu_devices=2` stopped it."""
    if jax.default_backend() != "cpu":
        pytest.skip("checks the CPU client")
    import numpy as np

    from seqjax.models import build_model
    from seqjax.torch_weights import save_safetensors, to_torch_state_dict

    model = build_model("trust", hidden_sizes=(16, 8, 4))
    variables = model.init(jax.random.key(0), np.zeros((1, 2, 768), np.float32), np.array([2]))
    weights = str(tmp_path / "trust.safetensors")
    save_safetensors(to_torch_state_dict(variables, "trust"), weights)
    settings = ["data.size=200", "model.hidden_sizes=[16, 8, 4]", "mesh.cpu_devices=2"]
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}  # JAX's default: 1
    proc = subprocess.run(
        [sys.executable, "-m", "seqjax.cli", "import-torch", "--model", "trust"]
        + ["--weights", weights, "--run-dir", str(tmp_path / "run"), "--set", *settings],
        capture_output=True, text=True, timeout=600, env=env,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "imported" in proc.stdout and (tmp_path / "run" / "config.yaml").exists()


def test_a_count_this_process_cannot_take_any_more_is_named():
    have = len(jax.devices("cpu"))  # JAX is up in this process
    use_cpu_devices(have)  # what it already shows: nothing to do
    use_cpu_devices(0)  # JAX's default: nothing to do
    with pytest.raises(ValueError, match=f"mesh.cpu_devices={have + 1} must take effect before"):
        use_cpu_devices(have + 1)

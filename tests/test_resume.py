"""Exact resume after a real SIGKILL (during a step, while a checkpoint is written, in the
middle of a validation pass) and after a clean stop at SIGTERM or SIGINT."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

# One xdist worker runs this file (`--dist loadgroup`, pyproject.toml), so its module
# fixtures, a reference run and a 2-epoch run, are trained once, not once per worker.
pytestmark = pytest.mark.xdist_group("resume")

OVERRIDES = [
    "data.size=400",
    "train.epochs=4",
    "model.hidden_sizes=[16, 8, 4]",
    "train.plots=false",  # 2.5 s of PNGs per run, nothing this file checks
]


def _command(run_dir, *extra, sets=()):
    return [
        sys.executable,
        "-m",
        "seqjax.cli",
        "train",
        "--config",
        "configs/trust.yaml",
        "--run-dir",
        str(run_dir),
        *extra,
        "--set",
        *OVERRIDES,
        *sets,  # after OVERRIDES: the last setting of a key wins
    ]


def _succeed(command):
    proc = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def _run(run_dir, *extra, sets=()):
    return _succeed(_command(run_dir, *extra, sets=sets))


def _kill_when(run_dir, ready, timeout=300.0):
    """Start a run, SIGKILL it as soon as `ready(names in checkpoints/)` holds."""
    proc = subprocess.Popen(_command(run_dir), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    ckpt_dir = os.path.join(run_dir, "checkpoints")
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            names = os.listdir(ckpt_dir) if os.path.isdir(ckpt_dir) else []
            if ready(names):
                proc.send_signal(signal.SIGKILL)
                proc.wait()
                return sorted(names)
            time.sleep(0.001)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    pytest.fail(f"the run ended before it could be killed: {proc.stderr.read()[-2000:]}")


def _outputs(run_dir):
    with open(os.path.join(run_dir, "history.json")) as f:
        history = f.read()
    with open(os.path.join(run_dir, "metrics.json")) as f:
        test = json.load(f)["test"]
    return history, test


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("reference")
    _run(run_dir)
    return _outputs(run_dir)


def test_sigkill_between_epochs_then_resume_is_bit_identical(tmp_path, reference):
    _kill_when(tmp_path, lambda names: "2" in names)
    _run(tmp_path, "--resume")
    assert _outputs(tmp_path) == reference
    # timings.json lists every epoch, those before the kill from the checkpoint's loop state
    timings = json.loads((tmp_path / "timings.json").read_text())
    assert [t["epoch"] for t in timings] == [1, 2, 3, 4]


@pytest.fixture(scope="module")
def two_epochs(tmp_path_factory):
    """A finished 2-epoch run of the same config, copied by each test that resumes it."""
    run_dir = tmp_path_factory.mktemp("two_epochs")
    _run(run_dir, sets=["train.epochs=2"])
    return run_dir


def test_a_finished_run_resumed_with_more_epochs_equals_one_given_them_from_the_start(
    tmp_path, reference, two_epochs
):
    shutil.copytree(two_epochs, tmp_path, dirs_exist_ok=True)
    # the short form: the run directory's own config.yaml, with the epochs changed
    command = [sys.executable, "-m", "seqjax.cli", "train", "--run-dir", str(tmp_path)]
    _succeed([*command, "--resume", "--set", "train.epochs=4"])
    assert _outputs(tmp_path) == reference
    # each process that trained the run left its versions, devices and command
    entries = json.loads((tmp_path / "environment.json").read_text())
    assert [e["resumed"] for e in entries] == [False, True]
    assert entries[1]["command"].endswith("train.epochs=4") and entries[1]["jax"]


def test_a_run_resumed_on_two_devices_continues_the_one_device_run(tmp_path, reference, two_epochs):
    """The mesh is where a run executes, not what it computes: resumed on two CPU devices
    (a batch split over them, its gradients summed across them), the run goes on as on
    one device, to float rounding."""
    shutil.copytree(two_epochs, tmp_path, dirs_exist_ok=True)
    _run(tmp_path, "--resume", sets=["train.epochs=4", "mesh.cpu_devices=2"])
    history, test = _outputs(tmp_path)
    rows, reference_rows = json.loads(history), json.loads(reference[0])
    assert [r["epoch"] for r in rows] == [1, 2, 3, 4]
    for row, expected in zip(rows, reference_rows, strict=True):
        assert row == pytest.approx(expected, rel=1e-4, abs=1e-6)
    assert test["accuracy"] == pytest.approx(reference[1]["accuracy"], abs=1 / 60)
    entries = json.loads((tmp_path / "environment.json").read_text())
    assert [e["devices"] for e in entries] == ["1 x cpu", "2 x cpu"]


def test_sigkill_during_a_checkpoint_write_then_resume_is_bit_identical(tmp_path, reference):
    for _ in range(3):
        run_dir = tmp_path / f"attempt{_}"
        names = _kill_when(run_dir, lambda names: any("tmp" in n for n in names))
        leftover = os.listdir(run_dir / "checkpoints")
        if any("tmp" in n for n in leftover):
            break  # the kill did land mid-write
    else:
        pytest.fail(f"could not kill during a save; last saw {names}")
    proc = _run(run_dir, "--resume")
    assert "warning: removed half-written checkpoint" in proc.stdout + proc.stderr
    assert not any("tmp" in n for n in os.listdir(run_dir / "checkpoints"))
    assert _outputs(run_dir) == reference


def test_sigkill_during_evaluation_then_resume_is_bit_identical(tmp_path, reference):
    command = _command(tmp_path)
    command[1:3] = ["tests/signal_self.py", "KILL", "validation"]  # instead of -m seqjax.cli
    proc = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    # Epoch 2's asynchronous save may still be in flight: a half-written 2 is then left.
    assert "1" in os.listdir(tmp_path / "checkpoints")
    _run(tmp_path, "--resume")
    assert _outputs(tmp_path) == reference


@pytest.mark.parametrize(
    "sig, phase, where, saved, resumed",
    [
        # inside an epoch the step itself is saved (seqjax/train/in_epoch.py) ...
        ("TERM", "training", "at step 20, in epoch 3", "step 20", "from step 20, in epoch 3"),
        # ... and after one, its epoch checkpoint
        ("INT", "validation", "after epoch 3", "epoch 3", "from the checkpoint of epoch 3"),
    ],
)
def test_sigterm_or_ctrl_c_stops_cleanly_then_resume_is_bit_identical(
    tmp_path, reference, sig, phase, where, saved, resumed
):
    """The signal stops the run at the next step or epoch end with the pending checkpoint
    written, exit status 128 + the signal, and one line naming the command that resumes;
    the resumed run goes on from the saved step or epoch to the history of one that never
    stopped."""
    command = _command(tmp_path)
    command[1:3] = ["tests/signal_self.py", sig, phase]
    proc = subprocess.run(command, capture_output=True, text=True, timeout=600)
    signum = signal.Signals[f"SIG{sig}"]
    assert proc.returncode == 128 + signum, proc.stderr[-2000:]
    assert proc.stderr.strip().splitlines()[-1] == (
        f"seqjax: stopped by SIG{sig} {where} ({saved} saved); continue with: seqjax "
        f"train --config {tmp_path}/config.yaml --run-dir {tmp_path} --resume"
    )
    assert "Traceback" not in proc.stderr
    kind, number = saved.split()
    directory = {"step": "checkpoints_in_epoch", "epoch": "checkpoints"}[kind]
    names = os.listdir(tmp_path / directory)
    assert number in names and not any("tmp" in n for n in names)
    proc = _run(tmp_path, "--resume")
    assert f"resumed {resumed}" in proc.stdout
    assert _outputs(tmp_path) == reference
    timings = json.loads((tmp_path / "timings.json").read_text())
    assert [t["epoch"] for t in timings] == [1, 2, 3, 4]


def test_sigkill_after_an_in_epoch_save_resumes_from_that_step_bit_identically(tmp_path, reference):
    """`checkpoint.every_steps=4` saves at steps 4, 8, 12, ... inside the 9-step epochs;
    killed once step 24 (epoch 3's sixth) is on disk, the run resumes from step 24, not
    from epoch 3's start, and neither the periodic saves nor the kill change its history."""
    command = _command(tmp_path, sets=["checkpoint.every_steps=4"])
    command[1:3] = ["tests/signal_self.py", "KILL", "step_24_saved"]
    proc = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    proc = _run(tmp_path, "--resume", sets=["checkpoint.every_steps=4"])
    assert "resumed from step 24, in epoch 3" in proc.stdout
    assert _outputs(tmp_path) == reference


def test_latest_and_best_checkpoints_both_survive(tmp_path):
    """keep_latest=1 and a best epoch that is not the latest: both stay on disk."""
    from seqjax.config import load_config
    from seqjax.data.sources import load_splits
    from seqjax.train.loop import fit

    cfg = load_config(
        "configs/trust.yaml",
        [
            *OVERRIDES,
            "train.patience=0",
            "checkpoint.keep_latest=1",
            "optimizer.lr=0.05",
            "train.monitor=val_accuracy",
            "train.mode=max",
            "train.epochs=6",
        ],
    )
    result = fit(cfg, load_splits(cfg.data), run_dir=str(tmp_path), log=lambda _: None)
    accs = [row["val_accuracy"] for row in result.history]
    best = 1 + accs.index(max(accs))
    assert best != 6, "the setting must make the best epoch differ from the latest"
    kept = sorted(int(n) for n in os.listdir(tmp_path / "checkpoints") if n.isdigit())
    assert kept == sorted({best, 6})

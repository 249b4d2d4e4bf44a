"""One training process per run directory (seqjax/train/run_lock.py): a second run into a
directory another holds is refused, naming the holder, before it writes anything; the lock
goes with its holder, however that ends; a finished run leaves no lock file."""

import os
import signal
import subprocess
import sys

import pytest

from seqjax.config import load_config
from seqjax.train.run import run_experiment
from seqjax.train.run_lock import LOCK_FILE, hold_run_dir

TINY = ["data.size=100", "train.epochs=1", "train.plots=false", "model.hidden_sizes=[8, 4, 2]"]


def test_a_second_run_into_a_held_directory_is_refused_and_writes_nothing(tmp_path):
    """Before, two commands given one --run-dir both trained into it: one stopped on the
    other's half-written checkpoint, the other left a mix of two runs."""
    cfg = load_config("configs/trust.yaml", TINY)
    run = tmp_path / "run"
    run.mkdir()
    with hold_run_dir(str(run)):  # another open file: flock refuses it as another process
        with pytest.raises(ValueError, match=r"is in use by another training process \(pid \d+ on"):
            run_experiment(cfg, str(run), log=lambda _: None)
        assert os.listdir(run) == [LOCK_FILE]
    assert os.listdir(run) == []  # the holder removed its file
    metrics = run_experiment(cfg, str(run), log=lambda _: None)  # now free
    assert metrics["test"]["loss"] > 0 and LOCK_FILE not in os.listdir(run)


def test_a_holder_killed_with_sigkill_leaves_a_lock_the_next_run_takes(tmp_path):
    """The kernel releases a flock with its process: a run killed without warning resumes
    without a lock file to clear by hand."""
    holder = (
        "import os, signal, sys\n"
        "from seqjax.train.run_lock import hold_run_dir\n"
        "with hold_run_dir(sys.argv[1]):\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    done = subprocess.run([sys.executable, "-c", holder, str(tmp_path)], check=False)
    assert done.returncode == -signal.SIGKILL
    assert "pid" in (tmp_path / LOCK_FILE).read_text()  # left behind, released
    with hold_run_dir(str(tmp_path)):
        assert (tmp_path / LOCK_FILE).read_text() == f"pid {os.getpid()} on {os.uname().nodename}"

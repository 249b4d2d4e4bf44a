"""Several processes training one run from the command line: TPU pods, GPU clusters.

Why: a model that outgrows one host trains on several, one process per host, each running
the same program on its own devices (JAX's SPMD): the same data, the same steps, the
checkpoints written together (Orbax), the same evaluation. The fit loop has run that way
through the Python API (`jax.distributed.initialize`, then `fit`); `seqjax train
--distributed` starts JAX's distributed system first, as it must be, before JAX runs
anything, and `run_experiment` then writes the run directory's own files (config,
history, metrics, plots) from process 0 alone, while every process takes part in the
checkpoints and the computations behind those files. The run directory must therefore be
on a filesystem every host sees.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from typing import NamedTuple, NoReturn

import jax
from jax.experimental import multihost_utils

from seqjax.train.interrupt import resume_command


def start(
    *,
    coordinator: str | None = None,
    num_processes: int | None = None,
    process_id: int | None = None,
) -> None:
    """Join this process to the run's others. With no arguments JAX finds them itself (a
    Cloud TPU pod, Slurm, Open MPI up to 4) or through mpi4py (any MPI launcher's job:
    `mpi_job`); otherwise all three are needed, as each process of a cluster JAX
    does not detect must be told where process 0 listens, how many there are and which
    one it is."""
    given = {
        "--coordinator": coordinator,
        "--num-processes": num_processes,
        "--process-id": process_id,
    }
    missing = [flag for flag, value in given.items() if value is None]
    if len(missing) not in (0, len(given)):
        raise ValueError(
            f"--coordinator, --num-processes and --process-id go together; missing "
            f"{', '.join(missing)}"
        )
    if coordinator is not None:
        _check_explicit(coordinator, num_processes, process_id)
    if jax.distributed.is_initialized():
        _check_joined(num_processes, process_id)
        return
    if coordinator is not None:
        jax.distributed.initialize(
            coordinator_address=coordinator, num_processes=num_processes, process_id=process_id
        )
        return
    try:
        jax.distributed.initialize()
    except (ValueError, RuntimeError) as err:
        # JAX detected no cluster (ValueError: no address to fall back on), or it took an
        # Open MPI 5 job for one and wants mpi4py (RuntimeError, jax >= 0.11)
        job = mpi_job()
        if job is None:
            if isinstance(err, RuntimeError):
                raise
            raise ValueError(
                f"--distributed: JAX found no cluster to join ({err}); it detects Cloud TPU "
                "pods, Slurm and MPI jobs (Open MPI's mpirun; any MPI's with mpi4py). "
                "Elsewhere give each process --coordinator HOST:PORT (process 0's address) "
                "--num-processes N --process-id I"
            ) from None
        _join_mpi_job(job)


class MPIJob(NamedTuple):
    """The MPI job an MPI launcher started this process in: the launcher's name, the
    variables it sets to the job's process count and this process's rank, and the count."""

    launcher: str
    size_variable: str
    rank_variable: str
    processes: str  # as the launcher wrote it


# What each MPI launcher sets in every process it starts: its process count and rank
MPI_LAUNCHERS = {
    "Open MPI": ("OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_RANK"),
    "MPICH or Intel MPI": ("PMI_SIZE", "PMI_RANK"),
}


def mpi_job() -> MPIJob | None:
    """The MPI job whose launcher (mpirun, mpiexec) started this process, if one did.

    Why: JAX's own detection reads Open MPI's older launcher alone (ORTE, up to Open MPI
    4: `OMPI_MCA_orte_hnp_uri`); Open MPI 5's (PRRTE), MPICH's and Intel MPI's tell their
    processes only their rank and count, and process 0's address travels through MPI
    itself, which JAX reaches through mpi4py."""
    for name, (size, rank) in MPI_LAUNCHERS.items():
        if size in os.environ and rank in os.environ:
            return MPIJob(name, size, rank, os.environ[size])
    return None


def _join_mpi_job(job: MPIJob) -> None:
    """Join the processes of an MPI job through mpi4py (JAX's opt-in `mpi4py` detection:
    rank 0 names its host and port, which MPI broadcasts), or name what is missing."""
    if importlib.util.find_spec("mpi4py") is None:
        raise ValueError(
            f"--distributed: one of {job.processes} processes that {job.launcher}'s launcher "
            "started, which learn process 0's address through mpi4py, and mpi4py is not "
            "installed: pip install mpi4py (seqjax[mpi]), or give each process --coordinator "
            f"HOST:PORT --num-processes ${job.size_variable} --process-id ${job.rank_variable}"
        )
    jax.distributed.initialize(cluster_detection_method="mpi4py")


def _check_explicit(coordinator: str, num_processes: int | None, process_id: int | None) -> None:
    """Clear errors for what JAX would otherwise report from deep inside its client, or
    wait on for minutes (a process id no other process will ever match)."""
    host, _, port = coordinator.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"--coordinator must be HOST:PORT (process 0's); got {coordinator!r}")
    assert num_processes is not None and process_id is not None  # start() checked
    if num_processes < 1:
        raise ValueError(f"--num-processes must be at least 1; got {num_processes}")
    if not 0 <= process_id < num_processes:
        raise ValueError(
            f"--process-id must be in 0..{num_processes - 1} for --num-processes "
            f"{num_processes}; got {process_id}"
        )


def _check_joined(num_processes: int | None, process_id: int | None) -> None:
    """A process that already joined its run (an earlier command of the same Python
    program: `seqjax.cli.main` for evaluate, then for predict; or research code's own
    `jax.distributed.initialize`) goes on in it, as JAX joins a process once; options
    naming another run are refused rather than ignored."""
    joined = (jax.process_count(), jax.process_index())
    if process_id is not None and (num_processes, process_id) != joined:
        raise ValueError(
            f"--num-processes {num_processes} --process-id {process_id}: this process "
            f"already joined a run of {joined[0]} processes as process {joined[1]}, and JAX "
            "joins a process to one run only"
        )


def writes_run_files() -> bool:
    """Whether this process writes the run directory's own files: process 0 does, the
    others compute the same and would only write the same files again, racing it."""
    return jax.process_index() == 0


def wait_for_processes(point: str) -> None:
    """Go on only when every process of the run has reached `point` (a name they share);
    with one process, at once. Why: a process that reads the run directory (to check it,
    or to see which folds exist) must do so before any other writes there, and one that
    reads what process 0 wrote, after process 0 has written it."""
    if jax.process_count() > 1:
        multihost_utils.sync_global_devices(point)


def failed_among_processes(error: BaseException) -> bool:
    """Whether `error` is a `JaxRuntimeError` (a failed collective, above all) in a run of
    several processes, where one of the others may be gone.

    Why it matters twice: `fit` then leaves its checkpoint saves in flight unwaited, and
    `seqjax train` leaves at once (`leave_after_failed_step`). An asynchronous save ends
    at a barrier of every process; where one has died, that barrier, like JAX's shutdown
    barrier at exit, waits out the heartbeat timeout of JAX's coordination service (about
    100 s), which then aborts this process. A save left unwaited stays under its temporary
    name, which the next run ignores."""
    return isinstance(error, jax.errors.JaxRuntimeError) and jax.process_count() > 1


def leave_after_failed_step(error: Exception, run_dir: str, command: str | None = None) -> NoReturn:
    """Name `error` (a `JaxRuntimeError` out of a step of a run of several processes) in
    one line and end this process at once, skipping JAX's shutdown.

    Why: when one process of the run dies (a host lost, a kill for memory), the others fail
    at their next collective ("Gloo all-reduce failed: ... Connection closed by peer" on
    CPUs; NCCL's or the TPU's own words elsewhere). Returning from there runs JAX's exit
    handler, whose shutdown barrier waits for the dead process until the coordination
    service gives up on its heartbeats (about 100 s), then aborts with a C++ stack trace.
    Nothing is left to wait for: the checkpoints on disk are whole (Orbax renames each into
    place once written), so the run resumes from the newest, and a save still in flight is
    left under its temporary name, which the next run ignores. `command` is the one that
    continues (default: `seqjax train --resume` of `run_dir`)."""
    first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    print(
        f"seqjax: error: process {jax.process_index()} of {jax.process_count()} failed in a "
        f"step ({first}); where a collective lost its connection, another process of the "
        f"run ended first (see its log). The checkpoints saved so far are whole; continue "
        f"with: {command or resume_command(run_dir)}",
        file=sys.stderr,
    )
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(1)

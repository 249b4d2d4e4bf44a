"""The command line's options for several processes, shared by every command that runs a
model over a run directory (train, cv, evaluate, predict, importance).

Why one place: each such command must join the run's other processes before JAX runs
anything (`seqjax/train/distributed.py`), and a user who trained across hosts gives the
scoring commands the same options; one definition keeps their words and checks alike.
"""

from __future__ import annotations

import argparse
import sys


def add_process_options(parser: argparse.ArgumentParser) -> None:
    several = parser.add_argument_group(
        "several processes",
        "one process per host, each given the same command (seqjax/train/distributed.py); "
        "the run directory must be on a filesystem every host sees",
    )
    several.add_argument(
        "--distributed",
        action="store_true",
        help="join the other processes of a Cloud TPU pod, a Slurm job or an MPI job "
        "(mpirun, mpiexec; Open MPI 5, MPICH and Intel MPI need mpi4py), which JAX finds "
        "itself; elsewhere give the three options below instead",
    )
    several.add_argument("--coordinator", metavar="HOST:PORT", help="process 0's address")
    several.add_argument("--num-processes", type=int, metavar="N")
    several.add_argument("--process-id", type=int, metavar="I", help="0 .. N-1")


def join_processes(args, what: str) -> None:
    """Join the run's other processes where the command line asks for several, before JAX
    runs anything; `what` names the work in the error for a missing --run-dir."""
    from seqjax.train.distributed import start as start_distributed

    explicit = (args.coordinator, args.num_processes, args.process_id)
    if not (args.distributed or any(value is not None for value in explicit)):
        _note_an_mpi_job_not_joined()
        return
    if args.run_dir is None:  # each process would name its own by its clock
        raise ValueError(f"several processes {what}: give them --run-dir")
    start_distributed(
        coordinator=args.coordinator, num_processes=args.num_processes, process_id=args.process_id
    )


def _note_an_mpi_job_not_joined() -> None:
    """Say so when an MPI launcher started this process among others but the command line
    joins none: each then works alone, the same work N times over, and N trainings into one
    --run-dir end with all but one refused by its lock, a puzzle under mpirun."""
    from seqjax.train.distributed import mpi_job

    job = mpi_job()
    if job is not None and job.processes.isdigit() and int(job.processes) > 1:
        print(
            f"seqjax: note: this is one of {job.processes} processes that {job.launcher}'s "
            "launcher started, and without --distributed each works alone",
            file=sys.stderr,
        )

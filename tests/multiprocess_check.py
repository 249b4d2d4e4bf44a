"""One process of a 2-process `seqjax train` on localhost CPU (gloo collectives).

    python tests/multiprocess_check.py PROCESS_ID NUM_PROCESSES PORT RUN_DIR sigterm|sigkill
    python tests/multiprocess_check.py PROCESS_ID NUM_PROCESSES PORT RUN_DIR resume EPOCHS
    python tests/multiprocess_check.py PROCESS_ID NUM_PROCESSES PORT RUN_DIR cv NPZ
    python tests/multiprocess_check.py PROCESS_ID NUM_PROCESSES PORT RUN_DIR score IN OUT
    python tests/multiprocess_check.py PROCESS_ID NUM_PROCESSES PORT RUN_DIR detected
Each runs the command line, as one process per host of a cluster would:
`seqjax train ... --coordinator 127.0.0.1:PORT --num-processes N --process-id I`. The run
keeps its checkpoints in RUN_DIR, each epoch's and each step's (asynchronous saves of two
Orbax managers, which hung such runs when they overlapped). With `sigterm` the run is long
(LONG_RUN), traces its step 2 (`train.profile_steps`) and process 1 sends itself SIGTERM
at the second step of epoch 2. With `sigkill` it sends SIGKILL there instead, as a lost
host would end, and the run saves each epoch (asynchronously, so epoch 1's save may still
be waiting on the lost process), nothing inside one. `resume EPOCHS` continues a run to
EPOCHS epochs. `cv NPZ` cross-validates CV_CONFIG with CV_SETS on the npz file NPZ
instead (`seqjax cv`). `score IN OUT` scores the trained run RUN_DIR with four commands,
one after the other in the same process, each after a line `=== COMMAND`, as a program
calling seqjax more than once would (the first joins the processes, the others go on in
them): `seqjax evaluate` and `seqjax importance` score its test split, `seqjax predict`
writes its predictions for the npz IN to OUT.npz, and `load_run` does what predict does
through the Python API, as research code on several hosts would: with JAX's distributed
system joined, `seqjax.load_run(RUN_DIR, mesh=...)` over every process's devices, each
process calling it on all of IN and writing what it got to OUT.<process id>.npy. Last,
`another_run`: `seqjax evaluate` given the other process's id, a run this process has
not joined and cannot, must end with exit code 2 (the error on stderr). `detected` trains a short
run with `--distributed` alone, as a process started by a cluster JAX detects would (the
caller sets the cluster's variables; PROCESS_ID, NUM_PROCESSES and PORT are theirs to
name). The exit code is the command's.
"""

import os
import signal
import sys


def main() -> int:
    pid, nproc, port = (int(a) for a in sys.argv[1:4])
    run_dir, mode = sys.argv[4], sys.argv[5]
    from seqjax.cli import main as seqjax

    processes = [
        *("--coordinator", f"127.0.0.1:{port}", "--num-processes", str(nproc)),
        *("--process-id", str(pid)),
    ]
    if mode == "cv":
        command = [*cv_command(run_dir, sys.argv[6]), *processes]
        return seqjax(command)
    if mode == "score":
        given, out = sys.argv[6:8]
        predict = ["--input", given, "--output", f"{out}.npz"]
        for name, args in (("evaluate", []), ("importance", []), ("predict", predict)):
            print(f"=== {name}", flush=True)
            if code := seqjax([name, run_dir, *args, *processes]):
                return code
        print("=== load_run", flush=True)
        load_run_and_predict(run_dir, given, out)
        print("=== another_run", flush=True)  # options naming another run: refused
        other = [*processes[:-1], str(1 - pid)]
        return 0 if seqjax(["evaluate", run_dir, *other]) == 2 else 1
    command = ["train", "--config", "configs/trust.yaml", "--run-dir", run_dir, *processes]
    if mode == "detected":
        return seqjax([*command[:5], "--distributed", "--set", *OVERRIDES])
    if mode in ("sigterm", "sigkill"):
        if pid == 1:
            signal_at_the_second_step_of_epoch_2(signal.Signals[f"SIG{mode[3:].upper()}"])
        sets = [*OVERRIDES, *LONG_RUN, "checkpoint.enabled=true"]  # asynchronous epoch saves
        if mode == "sigterm":  # the stop saves a step of both, and step 2 is traced
            sets += [*CHECKPOINTS, "train.profile_steps=[2, 2]"]
        return seqjax([*command, "--set", *sets])
    assert mode == "resume", mode
    sets = [*OVERRIDES, *LONG_RUN, *CHECKPOINTS, f"train.epochs={sys.argv[6]}"]
    return seqjax([*command, "--resume", "--set", *sets])


def load_run_and_predict(run_dir: str, given: str, out: str) -> None:
    import jax
    import numpy as np

    from seqjax import load_run
    from seqjax.train.sharding import make_mesh

    mesh = make_mesh(jax.devices())  # every process's devices
    run = load_run(run_dir, mesh=mesh)
    with np.load(given) as data:
        predictions = run(data["inputs"], data["lengths"], batch_size=16)
    np.save(f"{out}.{jax.process_index()}.npy", predictions)
    print(f"{len(predictions)} predictions over {mesh.devices.size} devices")


def signal_at_the_second_step_of_epoch_2(signum: signal.Signals) -> None:
    """`signum` to this process as the loop takes the second batch of its second epoch."""
    import seqjax.train.loop as loop

    real_iterate, passes = loop.iterate_batches, []

    def iterate_then_signal(data, batch_size, **kw):
        passes.append(kw.get("shuffle"))
        for i, batch in enumerate(real_iterate(data, batch_size, **kw)):
            if passes.count(True) == 2 and kw.get("shuffle") and i == 1:
                os.kill(os.getpid(), signum)
            yield batch

    loop.iterate_batches = iterate_then_signal


def cv_command(run_dir: str, npz: str) -> list[str]:
    """The `seqjax cv` command line (its arguments) of a small cross-validation of `npz`."""
    sets = [f"data.source=npz:{npz}", *CV_SETS]
    return ["cv", "--config", CV_CONFIG, "--folds", "3", "--run-dir", run_dir, "--set", *sets]


OVERRIDES = [
    "data.size=400",
    "train.epochs=2",
    "model.hidden_sizes=[16, 8, 4]",
    "checkpoint.enabled=false",
]
CHECKPOINTS = ["checkpoint.enabled=true", "checkpoint.async_save=true", "checkpoint.every_steps=1"]
# trust's learning rate follows the validation loss (plateau), not the epoch count, so a
# resume may end the run at another epoch than the stopped run's 300
LONG_RUN = ["train.epochs=300", "train.patience=0"]

# The variables of the clusters JAX or seqjax detects (Slurm, MPI launchers and their PMIx
# or PMI servers, Kubernetes, Cloud TPU): a test that starts processes outside or inside
# one of its own leaves the machine's out.
CLUSTER_VARIABLES = (
    *("SLURM_", "OMPI_", "PRTE_", "PMIX_", "PMI_"),
    *("KUBERNETES_", "TPU_", "MEGASCALE_"),
)


def outside_clusters() -> dict[str, str]:
    """This process's environment without any cluster's variables (CLUSTER_VARIABLES)."""
    return {k: v for k, v in os.environ.items() if not k.startswith(CLUSTER_VARIABLES)}


CV_CONFIG = "configs/steel_lightweight.yaml"
CV_SETS = ["train.epochs=2", "train.batch_size=4", "train.plots=false", "train.min_epochs=0"]

if __name__ == "__main__":
    sys.exit(main())

"""One process of a 2-process data-parallel run on localhost CPU with gloo collectives.

    python tests/multiprocess_check.py PROCESS_ID NUM_PROCESSES PORT RUN_DIR sigterm
    python tests/multiprocess_check.py PROCESS_ID NUM_PROCESSES PORT RUN_DIR resume EPOCHS
The run keeps its checkpoints in RUN_DIR, each epoch's and each step's (asynchronous
saves of two Orbax managers, which hung such runs when they overlapped). With `sigterm`
the run is long (LONG_RUN), process 1 sends itself SIGTERM at the second step of epoch 2,
and each process prints where it stopped as JSON. `resume EPOCHS` continues that run to
EPOCHS epochs and prints its history as JSON (process 0 only).
"""

import json
import sys

import jax

jax.config.update("jax_cpu_collectives_implementation", "gloo")


def main():
    pid, nproc, port = (int(a) for a in sys.argv[1:4])
    jax.distributed.initialize(
        coordinator_address=f"127.0.0.1:{port}", num_processes=nproc, process_id=pid
    )
    from seqjax.config import load_config
    from seqjax.data.sources import load_splits
    from seqjax.train.loop import fit

    assert jax.process_count() == nproc and jax.device_count() == nproc
    run_dir = sys.argv[4]
    if sys.argv[5] == "sigterm":
        sys.exit(stop_at_sigterm(pid, run_dir))
    assert sys.argv[5] == "resume", sys.argv[5]
    sets = [*OVERRIDES, *LONG_RUN, *CHECKPOINTS, f"train.epochs={sys.argv[6]}"]
    cfg = load_config("configs/trust.yaml", sets)
    result = fit(cfg, load_splits(cfg.data), run_dir=run_dir, resume=True, log=lambda _: None)
    if pid == 0:
        json.dump({"history": result.history, "devices": jax.device_count()}, sys.stdout)
    jax.distributed.shutdown()


def stop_at_sigterm(pid: int, run_dir: str) -> int:
    import os
    import signal

    import seqjax.train.loop as loop
    from seqjax.config import load_config
    from seqjax.data.sources import load_splits
    from seqjax.train.interrupt import TrainingStopped, stop_on_signals

    real_iterate, passes = loop.iterate_batches, []

    def iterate_then_signal(data, batch_size, **kw):
        passes.append(kw.get("shuffle"))
        for i, batch in enumerate(real_iterate(data, batch_size, **kw)):
            if pid == 1 and passes.count(True) == 2 and kw.get("shuffle") and i == 1:
                os.kill(os.getpid(), signal.SIGTERM)
            yield batch

    loop.iterate_batches = iterate_then_signal
    cfg = load_config("configs/trust.yaml", [*OVERRIDES, *LONG_RUN, *CHECKPOINTS])
    try:
        with stop_on_signals() as stop:
            loop.fit(cfg, load_splits(cfg.data), run_dir=run_dir, log=lambda _: None, stop=stop)
    except TrainingStopped as stopped:
        print(json.dumps({"stopped": str(stopped)}), flush=True)
        jax.distributed.shutdown()
        return stopped.exit_code
    print(json.dumps({"stopped": None}), flush=True)
    return 0


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

if __name__ == "__main__":
    main()

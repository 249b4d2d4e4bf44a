"""One process of a 2-process data-parallel run on localhost CPU with gloo collectives.

    python tests/multiprocess_check.py PROCESS_ID NUM_PROCESSES PORT
Prints the history as JSON (process 0 only).
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
    cfg = load_config("configs/trust.yaml", OVERRIDES)
    result = fit(cfg, load_splits(cfg.data), log=lambda _: None)
    if pid == 0:
        json.dump({"history": result.history, "devices": jax.device_count()}, sys.stdout)
    jax.distributed.shutdown()


OVERRIDES = [
    "data.size=400",
    "train.epochs=2",
    "model.hidden_sizes=[16, 8, 4]",
    "checkpoint.enabled=false",
]

if __name__ == "__main__":
    main()

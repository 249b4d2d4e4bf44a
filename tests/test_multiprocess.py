"""Two processes on localhost (gloo collectives) train like one process."""

import json
import socket
import subprocess
import sys

import numpy as np

from seqjax.config import load_config
from seqjax.data.sources import load_splits
from seqjax.train.loop import fit
from seqjax.train.sharding import make_mesh
from tests.multiprocess_check import OVERRIDES


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_processes_agree_with_one():
    port = _free_port()
    procs = [
        subprocess.Popen(
            [sys.executable, "tests/multiprocess_check.py", str(pid), "2", str(port)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for pid in range(2)
    ]
    outs = [p.communicate(timeout=600) for p in procs]
    for p, (_, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err[-3000:]
    multi = json.loads(outs[0][0].strip().splitlines()[-1])  # gloo also prints to stdout
    assert multi["devices"] == 2

    import jax

    cfg = load_config("configs/trust.yaml", OVERRIDES)
    single = fit(cfg, load_splits(cfg.data), mesh=make_mesh(jax.devices()[:1]), log=lambda _: None)
    for key in ("train_loss", "val_loss", "val_accuracy"):
        np.testing.assert_allclose(
            [r[key] for r in multi["history"]],
            [r[key] for r in single.history],
            rtol=1e-5,
            atol=1e-6,
        )

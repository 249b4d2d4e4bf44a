"""What a run ran on: library versions, devices and the command, for its run directory.

A result is only reproducible with the software and hardware that produced it (XLA's code
generation alone moves a trained model's loss in the 7th digit between CPUs), so every
process that trains a run directory appends one entry to its environment.json: a resumed
run shows each machine it ran on.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import platform
import sys
import time

from seqjax import __version__
from seqjax.io import atomic_write_json

FILE = "environment.json"
PACKAGES = ("jax", "jaxlib", "flax", "optax", "orbax-checkpoint", "numpy")


def package_version(package: str) -> str | None:
    """An installed package's version, read without importing it; None if absent."""
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def describe() -> dict:
    import jax  # here, so that `seqjax --version` reads versions without starting JAX

    devices = jax.devices()
    return {
        "seqjax": __version__,
        **{name: package_version(name) for name in PACKAGES},
        "python": platform.python_version(),
        "machine": f"{platform.system()} {platform.machine()}",
        "backend": jax.default_backend(),
        "devices": f"{len(devices)} x {devices[0].device_kind}",
        "processes": jax.process_count(),
        "command": " ".join([os.path.basename(sys.argv[0]), *sys.argv[1:]]),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def experiment_header(script: str, argv: list[str]) -> dict:
    """`describe()` for a result file an experiment writes, its command as a user would
    type it again (`python experiments/NAME.py ARGS`)."""
    return {**describe(), "command": " ".join(["python", script, *argv])}


def record(run_dir: str, *, resume: bool) -> None:
    """Append this process's entry to run_dir/environment.json (a fresh run starts it)."""
    path = os.path.join(run_dir, FILE)
    entries = []
    if resume and os.path.exists(path):
        try:
            with open(path, encoding="utf-8") as f:
                entries = list(json.load(f))
        except (ValueError, TypeError):  # damaged: a record, not an input; start again
            entries = []
    atomic_write_json(path, [*entries, {**describe(), "resumed": resume}])

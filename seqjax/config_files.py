"""Where a config comes from: a YAML path, or the name of a config shipped inside seqjax.

The repository's `configs/` travel in the package (as `seqjax/configs/`, a link to them in
the source tree), so `seqjax train --config trust` works after a plain `pip install`,
from any directory, without a clone; `seqjax configs NAME` prints one to copy and edit.
A file that exists wins over a shipped name; a directory does not, since `--run-dir trust`
makes one beside the config it was trained from.
"""

from __future__ import annotations

import os
from importlib import resources

from seqjax.suggest import did_you_mean


def shipped_configs() -> dict[str, str]:
    """{name: path} of the configs shipped inside the package, e.g. "trust"."""
    folder = resources.files("seqjax").joinpath("configs")
    return {
        entry.name.removesuffix(".yaml"): str(entry)
        for entry in sorted(folder.iterdir(), key=lambda e: e.name)
        if entry.name.endswith(".yaml")
    }


def config_file(name_or_path: str) -> str:
    """The YAML file `name_or_path` names: itself if it is a file, else a shipped config's."""
    if os.path.isfile(name_or_path):
        return name_or_path
    shipped = shipped_configs()
    if name_or_path in shipped:
        return shipped[name_or_path]
    raise FileNotFoundError(
        f"config {name_or_path!r} is neither a file nor the name of a shipped config"
        f"{did_you_mean(name_or_path, shipped)}; shipped: {', '.join(shipped)}"
    )


def summary(path: str) -> str:
    """A config file's first comment line, without the '#': what it trains."""
    with open(path) as f:
        first = f.readline().strip()
    return first.lstrip("#").strip() if first.startswith("#") else ""

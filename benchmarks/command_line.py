"""What every benchmark entry point's command line shares.

Each tool's module docstring is its manual (usage lines, what it measures and why), so
`--help` prints it with its layout kept. A tool that times PyTorch beside seqjax asks for
torch before it measures anything: without the check, `python -m benchmarks` would time
every seed system first and then end in a child process's traceback.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import re
import sys

import jax

from seqjax.io import atomic_write_json

INSTALL_TORCH = "pip install torch==2.13.0 (a CPU build), or pip install -e '.[reference]'"


def parser(module: str, doc: str | None) -> argparse.ArgumentParser:
    """The parser of `python -m <module>`, whose --help is `doc` as written."""
    return argparse.ArgumentParser(
        prog=f"python -m {module}",
        description=doc,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def command(module: str, argv: list[str] | None) -> str:
    """The command line a results file records: `python -m <module>` and the arguments the
    tool's `main` was given (the process's own when called as a program, argv=None)."""
    return " ".join([f"python -m {module}", *(sys.argv[1:] if argv is None else argv)])


def device_kind() -> str:
    """ "cpu", or the accelerator's kind as a file-name part (e.g. nvidia-h100-80gb-hbm3)."""
    if jax.default_backend() == "cpu":
        return "cpu"
    return re.sub(r"[^a-z0-9]+", "-", jax.devices()[0].device_kind.lower()).strip("-")


def results_path(tool: str, suffix: str = "") -> str:
    """Where a tool writes by default: benchmarks/results/<tool>_<device-kind><suffix>.json."""
    return os.path.join("benchmarks", "results", f"{tool}_{device_kind()}{suffix}.json")


def write_result(path: str, result: dict) -> None:
    """Write a tool's results file whole (a crash leaves the old one) and say where."""
    atomic_write_json(path, result)
    print(f"wrote {path}")


def save_results(
    tool: str, argv: list[str] | None, out: str | None, fields: dict, suffix: str = ""
) -> dict:
    """Tool `tool`'s results: the command that made them and the machine, then `fields`;
    written whole to `out`, or to `results_path(tool, suffix)` without one."""
    from benchmarks.timing import environment

    result = {"command": command(f"benchmarks.{tool}", argv), "environment": environment()}
    result.update(fields)
    write_result(out or results_path(tool, suffix), result)
    return result


def require_torch(parser: argparse.ArgumentParser, alternative: str = "") -> None:
    """Exit with a usage error (code 2) naming the install when torch is not importable."""
    if importlib.util.find_spec("torch") is None:
        parser.error(
            "this times torch.nn.LSTM beside seqjax, and torch is not installed: "
            + INSTALL_TORCH
            + (f"; or {alternative}" if alternative else "")
        )

"""What every benchmark entry point's command line shares.

Each tool's module docstring is its manual (usage lines, what it measures and why), so
`--help` prints it with its layout kept. A tool that times PyTorch beside seqjax asks for
torch before it measures anything: without the check, `python -m benchmarks` would time
every seed system first and then end in a child process's traceback.
"""

from __future__ import annotations

import argparse
import importlib.util

INSTALL_TORCH = "pip install torch==2.13.0 (a CPU build), or pip install -e '.[reference]'"


def parser(module: str, doc: str | None) -> argparse.ArgumentParser:
    """The parser of `python -m <module>`, whose --help is `doc` as written."""
    return argparse.ArgumentParser(
        prog=f"python -m {module}",
        description=doc,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def require_torch(parser: argparse.ArgumentParser, alternative: str = "") -> None:
    """Exit with a usage error (code 2) naming the install when torch is not importable."""
    if importlib.util.find_spec("torch") is None:
        parser.error(
            "this times torch.nn.LSTM beside seqjax, and torch is not installed: "
            + INSTALL_TORCH
            + (f"; or {alternative}" if alternative else "")
        )

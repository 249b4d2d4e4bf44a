"""The README's code for using the layer in your own JAX code runs as printed: each
python block of that section in a fresh interpreter (the multi-core one must set JAX's
CPU device count before JAX first runs)."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SECTION = "## Using the LSTM layer in your own JAX code"


def _snippets() -> list[str]:
    text = (ROOT / "README.md").read_text()
    section = text.split(SECTION, 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, flags=re.DOTALL)


def test_the_section_has_its_snippets():
    assert len(_snippets()) == 2


@pytest.mark.parametrize("index", [0, 1], ids=["one_device", "every_core"])
def test_a_readme_snippet_runs(index):
    code = _snippets()[index] + "\nprint('ok', outputs.shape, len(outputs.sharding.device_set))\n"
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}  # JAX's own defaults
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
        timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    devices = "2" if index == 1 else "1"
    assert proc.stdout.split()[-1] == devices and "ok (32, 500, 256)" in proc.stdout

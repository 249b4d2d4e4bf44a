"""The README's code for using the layer and the engine in your own JAX code runs as
printed: each python block of those sections in a fresh interpreter (the multi-core one
must set JAX's CPU device count before JAX first runs)."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import SUITE_XLA_FLAGS as SUITE_FLAGS

ROOT = Path(__file__).resolve().parents[1]
SECTION = "## Using the LSTM layer in your own JAX code"
LOOP_SECTION = "## A seed model in your own training loop"
NNX_SECTION = "## The layer in a Flax NNX model"
TRAINED_SECTION = "## A trained run in your own JAX code"


def _snippets(heading: str = SECTION) -> list[str]:
    text = (ROOT / "README.md").read_text()
    section = text.split(heading, 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, flags=re.DOTALL)


def _run(code: str) -> str:
    """`code` in a fresh interpreter, with the suite's compiler settings (tests/conftest.py:
    the same programs, compiled faster) and nothing else of XLA_FLAGS: a device count set
    there would override the snippets' own."""
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    flags = [f for f in os.environ.get("XLA_FLAGS", "").split() if f.split("=")[0] in SUITE_FLAGS]
    if flags:
        env["XLA_FLAGS"] = " ".join(flags)
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
        timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


def test_the_section_has_its_snippets():
    assert len(_snippets()) == 2


@pytest.mark.parametrize("index", [0, 1], ids=["one_device", "every_core"])
def test_a_readme_snippet_runs(index):
    code = _snippets()[index] + "\nprint('ok', outputs.shape, len(outputs.sharding.device_set))\n"
    stdout = _run(code)
    devices = "2" if index == 1 else "1"
    assert stdout.split()[-1] == devices and "ok (32, 500, 256)" in stdout


def test_the_training_loop_snippet_learns():
    """It trains and evaluates as printed, and its test accuracy beats always answering
    the test split's majority class."""
    (code,) = _snippets(LOOP_SECTION)
    code += (
        "\nimport numpy as np\n"
        "positive = float(np.mean(splits['test'].targets))\n"
        "print('ok', metrics['accuracy'], max(positive, 1 - positive))\n"
    )
    accuracy, majority = map(float, _run(code).split()[-2:])
    assert accuracy > majority + 0.1, (accuracy, majority)


def test_the_nnx_snippet_trains():
    (code,) = _snippets(NNX_SECTION)
    code += (
        "\nfor _ in range(10):\n"
        "    last = train_step(model, optimizer, x, lengths, targets)\n"
        "print('ok', float(loss), float(last))\n"
    )
    first, last = map(float, _run(code).split()[-2:])
    assert 0 < last < 0.5 * first, (first, last)  # finite, and ten more steps halve it


def test_the_trained_run_snippet_predicts_and_differentiates(tmp_path):
    """As printed, on a small trust run in place of runs/trust: the probabilities are
    probabilities and the saliency is finite and not all zero."""
    from tests.runs import train_run

    config = str(ROOT / "configs/trust.yaml")
    run_dir = train_run(tmp_path / "trust", config, "data.size=200", "train.epochs=1")
    (code,) = _snippets(TRAINED_SECTION)
    assert code.count('"runs/trust"') == 1
    code = code.replace('"runs/trust"', repr(str(run_dir))) + (
        "\nimport numpy as np\n"
        "finite = bool(np.all(np.isfinite(saliency))) and float(abs(saliency).max()) > 0\n"
        "print('ok', probabilities.shape == (len(test),), float(probabilities.min()),\n"
        "      float(probabilities.max()), saliency.shape[0], finite)\n"
    )
    shape_ok, low, high, rows, finite = _run(code).split()[-5:]
    assert shape_ok == "True" and 0 <= float(low) <= float(high) <= 1
    assert rows == "8" and finite == "True"

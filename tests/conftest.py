import gc
import importlib.metadata
import os
import shutil
import subprocess
import sys
import tempfile

# The suite is compile-bound: most tests trace a small model once and run it a few times,
# and most of its time is XLA compiling them. Two settings of XLA's CPU compiler make that
# faster and leave every program's graph, fusions, buffers and collectives as they are;
# only the machine code differs, and its float results may differ in the last bits (fewer
# fused multiply-adds). tests/test_suite_compiler_settings.py checks both on the optimised
# HLO of a 2-layer bidirectional LSTM's backward pass:
# - LLVM at optimisation level 0 (XLA's default is 2; the HLO is the same). Measured on a
#   2-core CPU in one clean clone, back to back: the suite 450 s against 489 s (all 406
#   tests pass at both), and the layer and engine tests (test_engine, test_recurrence,
#   test_lstm_length_groups, test_lstm_transforms) 86 and 104 s against 115 and 122 s,
#   alternating.
# - XLA's older loop emitter for its fusions (`--xla_cpu_use_fusion_emitters=false`), not
#   the MLIR fusion emitters it uses by default (which also wrap each lone scalar op, a loop
#   counter's add or compare, in a fusion of its own: 32 of 125 fusions there, the other
#   93 the same): test_recurrence, test_lstm_transforms and test_engine in one process
#   took 84-91 s against 121-127 s (XLA compiling them: 32-34 s against 65-68 s),
#   alternating, 3 rounds each. Its code runs slower, which suits a suite that runs each
#   program a few times but not a training run: `seqjax train --config
#   configs/trust.yaml` took 31-34 s with it against 25-29 s without (epochs 1.4-1.6 s
#   against 0.9-1.2 s, the same test loss), alternating, so seqjax leaves users XLA's
#   default.
# Every figure the README, benchmarks and experiments quote is measured at XLA's defaults,
# and so are the tests that clear XLA_FLAGS for their subprocesses (the 8-device training
# run, the CLI on CPU devices). The README snippets run with these two settings: nothing
# they check depends on machine code, and tests/test_readme_snippets.py took 29 s with
# them against 38 s at XLA's defaults (one after the other). To run the suite at XLA's
# defaults: `XLA_FLAGS="--xla_backend_optimization_level=2
# --xla_cpu_use_fusion_emitters=true" python -m pytest -n 2` (on jax >= 0.11 the level
# alone: `XLA_FLAGS=--xla_backend_optimization_level=2`). Set before JAX starts its CPU
# client, and inherited by the xdist workers and every subprocess; a setting already in
# XLA_FLAGS is kept. A setting the installed XLA does not know is left out: jax 0.11
# removed the emitter flag (its MLIR emitters are the only ones), and XLA ends a process
# whose XLA_FLAGS names an unknown flag (so there, the defaults are the level's alone).
# Not where a JAX GPU or TPU plugin is installed: XLA reads the level for GPU code too,
# and the GPU tests (benchmarks/gpu.sh) check the kernels users run.
SUITE_XLA_FLAGS = {
    "--xla_backend_optimization_level": "0",
    "--xla_cpu_use_fusion_emitters": "false",
}


def _accelerator_plugin_installed() -> bool:
    """A jax-cuda*/jax-rocm* plugin or libtpu, read from package metadata (JAX not started)."""
    names = (d.metadata["Name"] or "" for d in importlib.metadata.distributions())
    prefixes = ("jax-cuda", "jax-rocm", "libtpu")
    return any(n.lower().replace("_", "-").startswith(prefixes) for n in names)


def xla_accepts(flags: str) -> bool:
    """XLA ends a process whose XLA_FLAGS names a flag it does not know (jax 0.11 dropped
    `--xla_cpu_use_fusion_emitters`), with no Python error to catch: a short-lived process
    asks first."""
    proc = subprocess.run(
        [sys.executable, "-c", "import jax; jax.devices()"],
        env=dict(os.environ, XLA_FLAGS=flags),
        capture_output=True,
        timeout=300,
    )
    return proc.returncode == 0


def suite_xla_flags() -> list[str]:
    """The suite's settings this XLA knows and XLA_FLAGS does not already set, asked once
    per session (in the controller; its xdist workers and subprocesses inherit the answer)."""
    if _IN_USE not in os.environ:
        flags = os.environ.get("XLA_FLAGS", "")
        wanted = [f"{name}={value}" for name, value in SUITE_XLA_FLAGS.items() if name not in flags]
        if wanted and not xla_accepts(" ".join([flags, *wanted])):
            wanted = [setting for setting in wanted if xla_accepts(f"{flags} {setting}")]
        os.environ[_IN_USE] = " ".join(wanted)
    return os.environ[_IN_USE].split()


_IN_USE = "SEQJAX_SUITE_XLA_FLAGS"
if not _accelerator_plugin_installed():
    flags = os.environ.get("XLA_FLAGS", "")
    settings = [s for s in suite_xla_flags() if s not in flags]  # a worker inherits them
    os.environ["XLA_FLAGS"] = " ".join([flags, *settings]).strip()

import jax  # noqa: E402
import pytest  # noqa: E402

# One persistent compilation cache per test session, shared by the xdist workers and every
# subprocess they start (set here in the controller, inherited, never overwritten): many
# tests train the same small configs through the CLI in fresh processes, and without it
# each one spends ~10 s compiling what an earlier one already compiled (a trust CLI run
# here: 16 s cold, 6 s warm, same history). A fresh directory per session (unless
# JAX_COMPILATION_CACHE_DIR is already set), removed at its end, so no stale entry outlives
# a change; cached executables compute exactly what fresh ones do.
_OWN_CACHE = "JAX_COMPILATION_CACHE_DIR" not in os.environ  # False in the xdist workers
if _OWN_CACHE:
    os.environ["JAX_COMPILATION_CACHE_DIR"] = tempfile.mkdtemp(prefix="seqjax-test-jit-")
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "0")
jax.config.update("jax_compilation_cache_dir", os.environ["JAX_COMPILATION_CACHE_DIR"])
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)


def pytest_sessionfinish(session):
    """Every test has run: the objects alive now live until the process ends, so the garbage
    collector stops tracing them (`gc.freeze`). pytest collects garbage five times at its
    end, to report the unraisable exceptions of finalizers; over a worker's heap of
    compiled programs that took ~7 s after its last test, long enough for xdist (execnet)
    to interrupt the worker with SIGINT, whose KeyboardInterrupt then landed in a gc
    callback and printed a PytestUnraisableExceptionWarning after the results."""
    gc.freeze()


def pytest_unconfigure(config):
    """The session's cache goes when the process that made it ends (never a worker)."""
    if _OWN_CACHE:
        shutil.rmtree(os.environ["JAX_COMPILATION_CACHE_DIR"], ignore_errors=True)


# Strict rank promotion surfaces silent broadcasting in the library under test.
jax.config.update("jax_numpy_rank_promotion", "raise")


@pytest.fixture(autouse=True)
def strict_dtype_promotion(request):
    """Strict dtype promotion for the layer tests. Not global: optax's own Adam mixes
    python floats with int32 step counts and fails under it."""
    if request.module.__name__.split(".")[-1].startswith("test_lstm"):
        with jax.numpy_dtype_promotion("strict"):
            yield
    else:
        yield


@pytest.fixture
def key():
    return jax.random.key(0)

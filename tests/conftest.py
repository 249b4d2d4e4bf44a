import os
import shutil
import tempfile

import jax
import pytest

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

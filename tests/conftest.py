import jax
import pytest

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

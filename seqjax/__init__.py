"""seqjax: fast, masked LSTM sequence models in JAX/Flax.

Importing seqjax has no side effects: no device is touched and no config flag is set.
`seqjax.load_run` imports JAX on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from seqjax.trained import TrainedModel, load_run

__version__ = "0.1.0"
__all__ = ["TrainedModel", "load_run"]


def __getattr__(name: str) -> Any:
    """`load_run` and `TrainedModel` from seqjax.trained, imported when first asked for,
    so `import seqjax` (the command line's first line) stays light."""
    if name in ("load_run", "TrainedModel"):
        from seqjax import trained

        return getattr(trained, name)
    raise AttributeError(f"module 'seqjax' has no attribute {name!r}")

"""seqjax: fast, masked LSTM sequence models in JAX/Flax.

Importing seqjax has no side effects: no device is touched and no config flag is set.
`seqjax.load_run` and `seqjax.load_cv` import JAX on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from seqjax.trained import TrainedModel, load_run
    from seqjax.trained_ensemble import TrainedEnsemble, load_cv

__version__ = "0.1.0"
__all__ = ["TrainedEnsemble", "TrainedModel", "load_cv", "load_run"]


def __getattr__(name: str) -> Any:
    """`load_run`, `load_cv` and their classes, imported when first asked for, so `import
    seqjax` (the command line's first line) stays light."""
    if name in ("load_run", "TrainedModel"):
        from seqjax import trained

        return getattr(trained, name)
    if name in ("load_cv", "TrainedEnsemble"):
        from seqjax import trained_ensemble

        return getattr(trained_ensemble, name)
    raise AttributeError(f"module 'seqjax' has no attribute {name!r}")

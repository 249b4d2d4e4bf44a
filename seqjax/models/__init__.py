"""The seed systems as Flax modules, built by name through `build_model`."""

from seqjax.models.registry import MODELS, build_model, count_params, model_config

__all__ = ["MODELS", "build_model", "count_params", "model_config"]

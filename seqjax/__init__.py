"""seqjax: fast, masked LSTM sequence models in JAX/Flax.

Importing seqjax has no side effects: no device is touched and no config flag is set.
"""

__version__ = "0.1.0"

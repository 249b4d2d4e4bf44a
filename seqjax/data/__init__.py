"""Data: the Batch type, datasets, splits, scalers and the seed systems' generators."""

from seqjax.data.batch import Batch, make_batch
from seqjax.data.dataset import SequenceDataset, iterate_batches, num_batches
from seqjax.data.padding import pad_sequences, unpad_sequences
from seqjax.data.splits import StandardScaler, split_indices

__all__ = [
    "Batch",
    "SequenceDataset",
    "StandardScaler",
    "iterate_batches",
    "make_batch",
    "num_batches",
    "pad_sequences",
    "split_indices",
    "unpad_sequences",
]

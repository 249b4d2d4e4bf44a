"""`train.sampler: balanced`: training batches in which every class is equally common.

Why a sampler beside `train.class_weights`: both give a rare class the same say in the
gradient as a common one, but the weights do it by scaling the loss of the few examples
there are, so a batch of 32 with 16% positives holds about 5 positives, each counted ~3
times, and some batches hold none; the sampler draws the positives more often instead
(PyTorch's `WeightedRandomSampler` with weights 1 / n_class), so each batch holds about
as many of every class, and the loss keeps its plain mean. The cost is repeats: an
epoch still draws N examples, with replacement, so the rare class's examples come back
several times an epoch while some of the common class's are left out of it.

The draw is a pure function of (seed, epoch), as the shuffle is, so a resumed run draws
the same batches (`seqjax/data/dataset.py`, `batch_order`).
"""

from __future__ import annotations

import numpy as np

SAMPLERS = ("shuffle", "balanced")


def check_sampler_option(sampler: str, loss: str, class_weights, pos_weight: float) -> None:
    """The key's value, for a classifier's loss, and not beside a weighting of the
    classes, which would rebalance them a second time."""
    from seqjax.class_weights import WEIGHED_BY_CLASS

    if sampler not in SAMPLERS:
        raise ValueError(f"train.sampler must be one of {SAMPLERS}; got {sampler!r}")
    if sampler == "shuffle":
        return
    if loss not in WEIGHED_BY_CLASS:
        raise ValueError(
            f"train.sampler 'balanced' draws each class of a classifier equally often "
            f"({', '.join(WEIGHED_BY_CLASS)}); train.loss {loss!r} has no classes"
        )
    if class_weights is not None or pos_weight != 1.0:
        given = "class_weights" if class_weights is not None else "pos_weight"
        raise ValueError(
            f"train.sampler 'balanced' and train.{given} both rebalance the classes, and "
            "together would tip the balance the other way; give one"
        )


def _chances(labels: np.ndarray) -> tuple[np.ndarray, int]:
    """Each example's chance per draw (N,), 1 / (K n_k) for its class k of n_k examples,
    and K, the classes present in labels (N,): each class then makes up 1/K of a draw."""
    classes, index, counts = np.unique(labels, return_inverse=True, return_counts=True)
    return 1.0 / (len(classes) * counts[index]), len(classes)


def balanced_draw(labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """N example indices (N,) drawn with replacement from labels (N,) int, each with its
    chance (`_chances`): every class makes up 1/K of the draw in expectation."""
    p, _ = _chances(labels)
    return rng.choice(len(labels), size=len(labels), p=p / p.sum())


def sampler_note(sampler: str, loss: str, targets: np.ndarray) -> str:
    """For a run's first line: a balanced sampler, and how many distinct training examples
    (of `targets`, the split's) an epoch draws on average (1 - (1 - p_i)^N summed: the
    repeats' price), so that a user sees what the balance costs."""
    from seqjax.class_weights import class_labels

    if sampler != "balanced":
        return ""
    labels = class_labels(loss, targets)
    p, k = _chances(labels)  # (N,) each example's chance per draw
    seen = float(np.sum(1.0 - (1.0 - p) ** len(labels)))
    return (
        f"; batches drawn class-balanced (train.sampler), {k} classes each 1/{k} of a "
        f"batch, ~{seen:.0f} distinct of {len(labels)} examples an epoch"
    )

"""Evaluation metrics on host arrays (computed once per epoch, outside the jitted step)."""

from __future__ import annotations

import numpy as np


def binary_classification(
    probabilities: np.ndarray, labels: np.ndarray, *, threshold: float = 0.5
) -> dict:
    """Accuracy, precision, recall, F1 and the confusion matrix [[TN, FP], [FN, TP]]."""
    probabilities = np.asarray(probabilities).reshape(-1)
    labels = np.asarray(labels).reshape(-1).astype(int)
    if probabilities.shape != labels.shape:
        raise ValueError(
            f"probabilities {probabilities.shape} and labels {labels.shape} differ in shape"
        )
    pred = (probabilities >= threshold).astype(int)
    tp = int(np.sum((pred == 1) & (labels == 1)))
    tn = int(np.sum((pred == 0) & (labels == 0)))
    fp = int(np.sum((pred == 1) & (labels == 0)))
    fn = int(np.sum((pred == 0) & (labels == 1)))
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "accuracy": (tp + tn) / max(len(labels), 1),
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "confusion_matrix": [[tn, fp], [fn, tp]],
    }

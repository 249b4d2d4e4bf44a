"""Evaluation metrics on host arrays (computed once per epoch, outside the jitted step).

AUC-ROC and AUC-PR follow scikit-learn's definitions (ROC by the trapezoid rule with ties
handled as one threshold; PR as average precision, the step-wise sum), so figures compare
directly with the seeds' reports.
"""

from __future__ import annotations

import numpy as np


def _flat(probabilities, labels) -> tuple[np.ndarray, np.ndarray]:
    p = np.asarray(probabilities, np.float64).reshape(-1)
    y = np.asarray(labels).reshape(-1).astype(int)
    if p.shape != y.shape:
        raise ValueError(f"predictions {p.shape} and labels {y.shape} differ in shape")
    return p, y


def threshold_counts(p: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Cumulative true and false positives at each distinct score, highest first."""
    order = np.argsort(-p, kind="mergesort")
    p, y = p[order], y[order]
    last_of_tie = np.r_[np.nonzero(np.diff(p))[0], len(p) - 1]
    tps = np.cumsum(y)[last_of_tie]
    fps = (last_of_tie + 1) - tps
    return tps.astype(np.float64), fps.astype(np.float64)


def roc_auc(probabilities, labels) -> float:
    p, y = _flat(probabilities, labels)
    pos, neg = int(y.sum()), int(len(y) - y.sum())
    if pos == 0 or neg == 0:
        return float("nan")  # undefined with one class present
    tps, fps = threshold_counts(p, y)
    tpr = np.r_[0.0, tps / pos]
    fpr = np.r_[0.0, fps / neg]
    return float(np.trapezoid(tpr, fpr))


def average_precision(probabilities, labels) -> float:
    """AUC-PR as average precision: sum over thresholds of (R_n - R_{n-1}) * P_n."""
    p, y = _flat(probabilities, labels)
    pos = int(y.sum())
    if pos == 0:
        return float("nan")
    tps, fps = threshold_counts(p, y)
    precision = tps / (tps + fps)
    recall = tps / pos
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def best_f1_threshold(probabilities, labels) -> float:
    """The probability t whose decision (p >= t is positive) gives these labels the
    highest F1, among the scores themselves; of equal F1s, the highest t (fewer alarms).
    Why: a `pos_weight` or class weights shift a model's probabilities, so 0.5 is no
    longer its operating point; chosen on the validation split, t is then applied to the
    test split (`seqjax evaluate --threshold val-f1`)."""
    p, y = _flat(probabilities, labels)
    positives = int(y.sum())
    if positives == 0:
        raise ValueError("best_f1_threshold: the labels hold no positive, so F1 is 0 everywhere")
    tps, fps = threshold_counts(p, y)  # at each distinct score, highest first
    f1 = 2 * tps / (tps + fps + positives)  # 2 TP / (2 TP + FP + FN)
    return float(np.unique(p)[::-1][int(np.argmax(f1))])


CALIBRATION_BINS = 15  # equal-width bins of the ECE (Guo et al. 2017's count)


def reliability(
    probabilities, labels, *, bins: int = CALIBRATION_BINS
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per equal-width bin of the stated probability: its mean (bins,), how often it came
    true (bins,) (NaN in an empty bin) and its count (bins,). The probability is
    P(positive) for a two-class model (N,), and the top class's for K classes (N, K)
    (Guo et al.'s top-label reading). Why both: a two-class score is read as P(positive)
    ("0.8 trusted"), so each of its values should come true that often, whichever side
    of 0.5; for K classes the top label is the decision read."""
    p = np.asarray(probabilities, np.float64)
    y = np.asarray(labels).astype(int).reshape(-1)
    if p.ndim == 1:
        stated, outcome = p, y.astype(np.float64)
    else:
        stated, outcome = p.max(-1), (p.argmax(-1) == y).astype(np.float64)
    which = np.minimum((stated * bins).astype(int), bins - 1)  # 1.0 in the last bin
    count = np.bincount(which, minlength=bins)
    with np.errstate(invalid="ignore", divide="ignore"):  # NaN in an empty bin
        mean_stated = np.bincount(which, stated, minlength=bins) / count
        mean_outcome = np.bincount(which, outcome, minlength=bins) / count
    return mean_stated, mean_outcome, count


def calibration_error(probabilities, labels, *, bins: int = CALIBRATION_BINS) -> float:
    """Expected calibration error over `reliability`'s bins: the examples' mean of |mean
    stated probability - how often it came true| in their bin."""
    stated, outcome, count = reliability(probabilities, labels, bins=bins)
    if count.sum() == 0:
        return float("nan")
    filled = count > 0
    return float(np.sum(count[filled] * np.abs(stated[filled] - outcome[filled])) / count.sum())


def brier_score(probabilities, labels) -> float:
    """Mean squared error of the probabilities against the outcome: (p - y)^2 for a
    two-class model (N,) (scikit-learn's `brier_score_loss`), and Brier's own sum over
    the K classes' (p_k - [y = k])^2 for (N, K) (so two classes given as (N, 2) score
    twice the first form)."""
    p = np.asarray(probabilities, np.float64)
    y = np.asarray(labels).astype(int).reshape(-1)
    if p.ndim == 1:
        return float(np.mean((p - y) ** 2))
    return float(np.mean(np.sum((p - np.eye(p.shape[-1])[y]) ** 2, axis=-1)))


def binary_classification(
    probabilities: np.ndarray, labels: np.ndarray, *, threshold: float = 0.5
) -> dict:
    """Accuracy, precision, recall, F1, AUC-ROC, AUC-PR, the Brier score and the ECE of
    the probabilities (neither depends on `threshold`), and [[TN, FP], [FN, TP]]."""
    probabilities, labels = _flat(probabilities, labels)
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
        "auc_roc": roc_auc(probabilities, labels),
        "auc_pr": average_precision(probabilities, labels),
        "brier": brier_score(probabilities, labels),
        "ece": calibration_error(probabilities, labels),
        "confusion_matrix": [[tn, fp], [fn, tp]],
    }


def multiclass_classification(probabilities: np.ndarray, labels: np.ndarray) -> dict:
    """Accuracy, balanced accuracy, macro F1, the majority-class accuracy beside them, the
    Brier score and top-label ECE of the probabilities, and the confusion matrix (rows
    true, columns predicted) for probabilities (N, K) and labels (N,). Balanced accuracy
    is the mean recall over the classes the labels hold (scikit-learn's
    `balanced_accuracy_score`): where one class is most of the data, plain accuracy
    rewards predicting it, and this scores each class alike."""
    probabilities = np.asarray(probabilities)
    labels = np.asarray(labels).astype(int).reshape(-1)
    k = probabilities.shape[-1]
    pred = probabilities.argmax(-1)
    confusion = np.zeros((k, k), np.int64)
    np.add.at(confusion, (labels, pred), 1)
    tp = np.diag(confusion).astype(float)
    precision = np.divide(tp, confusion.sum(0), out=np.zeros(k), where=confusion.sum(0) > 0)
    recall = np.divide(tp, confusion.sum(1), out=np.zeros(k), where=confusion.sum(1) > 0)
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros(k), where=denom > 0)
    n = max(len(labels), 1)
    present = confusion.sum(1) > 0
    return {
        "accuracy": float(tp.sum() / n),
        "balanced_accuracy": float(recall[present].mean()) if present.any() else float("nan"),
        "macro_f1": float(f1.mean()),
        "majority_accuracy": float(np.bincount(labels, minlength=k).max() / n),
        "brier": brier_score(probabilities, labels),
        "ece": calibration_error(probabilities, labels),
        "confusion_matrix": confusion.tolist(),
    }


def regression(predictions: np.ndarray, targets: np.ndarray) -> dict:
    """MSE, RMSE, MAE, Pearson correlation and direction accuracy (sign agreement, where
    0 counts as its own direction) over all elements."""
    pred = np.asarray(predictions, np.float64).reshape(-1)
    true = np.asarray(targets, np.float64).reshape(-1)
    if pred.shape != true.shape:
        raise ValueError(f"predictions {pred.shape} and targets {true.shape} differ in shape")
    err = pred - true
    mse = float(np.mean(err**2))
    if pred.std() == 0 or true.std() == 0:
        corr = float("nan")
    else:
        corr = float(np.corrcoef(pred, true)[0, 1])
    return {
        "mse": mse,
        "rmse": mse**0.5,
        "mae": float(np.mean(np.abs(err))),
        "correlation": corr,
        "direction_accuracy": float(np.mean(np.sign(pred) == np.sign(true))),
    }


def direction_classes(trend: np.ndarray) -> np.ndarray:
    """The trend head's classes of a trend value: 0 down, 1 flat, 2 up (`losses.FLAT`)."""
    from seqjax.losses import FLAT

    return np.where(trend < -FLAT, 0, np.where(trend > FLAT, 2, 1))


def trend_forecast(predictions: np.ndarray, targets: np.ndarray, *, horizons=(7, 30)) -> dict:
    """Per-horizon regression metrics of the score, plus the accuracy, Brier score and
    top-label ECE of the up/flat/down head and the majority baselines beside them, as flat
    keys like `d7_rmse`.

    predictions (N, Hz, 4): score, P(down), P(flat), P(up); targets (N, Hz, 2): trend, vol.
    """
    predictions, targets = np.asarray(predictions), np.asarray(targets)
    out = {}
    for k, days in enumerate(horizons):
        trend = targets[:, k, 0]
        reg = regression(predictions[:, k, 0], trend)
        out.update({f"d{days}_{name}": v for name, v in reg.items()})
        sign_share = max(np.mean(trend > 0), np.mean(trend < 0))
        out[f"d{days}_direction_majority"] = float(sign_share)
        cls = direction_classes(trend)
        probs = predictions[:, k, 1:]  # (N, 3)
        out[f"d{days}_class_accuracy"] = float(np.mean(probs.argmax(-1) == cls))
        out[f"d{days}_class_majority"] = float(np.bincount(cls, minlength=3).max() / len(cls))
        out[f"d{days}_class_brier"] = brier_score(probs, cls)
        out[f"d{days}_class_ece"] = calibration_error(probs, cls)
    return out


def multi_output_regression(predictions: np.ndarray, targets: np.ndarray) -> dict:
    """`regression` for each output column (keys `y0_rmse`, ...) and the mean MSE; for one
    value per example (targets (N,)), `regression` itself (`rmse`, ...)."""
    predictions, targets = np.asarray(predictions), np.asarray(targets)
    if targets.ndim == 1:
        return regression(predictions, targets)
    out = {}
    for k in range(targets.shape[1]):
        out.update(
            {f"y{k}_{n}": v for n, v in regression(predictions[:, k], targets[:, k]).items()}
        )
    out["mse"] = float(np.mean((predictions - targets) ** 2))
    return out

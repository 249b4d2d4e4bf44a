"""Training curves as PNG files (matplotlib, headless Agg backend)."""

from __future__ import annotations

import os

from seqjax.io import atomic_write_bytes


def save_figure(fig, path: str, dpi: int = 100) -> None:
    """Write a matplotlib figure as PNG whole (a crash leaves the old file) and close it."""
    import io

    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())


def plot_history(history: list[dict], out_dir: str) -> list[str]:
    """loss.png (train and validation loss) and metrics.png (other validation metrics)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    os.makedirs(out_dir, exist_ok=True)
    epochs = [row["epoch"] for row in history]
    written = []
    fig, ax = plt.subplots(figsize=(6, 4))
    for key in ("train_loss", "val_loss"):
        ax.plot(epochs, [row[key] for row in history], marker="o", label=key)
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.legend()
    ax.grid(alpha=0.3)
    path = os.path.join(out_dir, "loss.png")
    save_figure(fig, path)
    written.append(path)
    keys = [k for k in history[0] if k.startswith("val_") and k != "val_loss"]
    if keys:
        fig, ax = plt.subplots(figsize=(6, 4))
        for key in keys:
            values = [row.get(key, float("nan")) for row in history]  # a gap where missing
            ax.plot(epochs, values, marker="o", label=key)
        ax.set_xlabel("epoch")
        ax.legend()
        ax.grid(alpha=0.3)
        path = os.path.join(out_dir, "metrics.png")
        save_figure(fig, path)
        written.append(path)
    return written


def _curve_points(probabilities, labels):
    """ROC (fpr, tpr) and PR (recall, precision) points, one per distinct threshold,
    from the same counts `seqjax.metrics` integrates."""
    import numpy as np

    from seqjax.metrics import threshold_counts

    p = np.asarray(probabilities, np.float64).reshape(-1)
    y = np.asarray(labels).reshape(-1).astype(int)
    tps, fps = threshold_counts(p, y)
    pos, neg = max(int(y.sum()), 1), max(len(y) - int(y.sum()), 1)
    fpr, tpr = np.r_[0.0, fps / neg], np.r_[0.0, tps / pos]
    return (fpr, tpr), (tps / pos, tps / (tps + fps))


def plot_reliability(probabilities, labels, metrics: dict, path: str) -> str:
    """Reliability diagram: each bin's stated probability against how often it came true
    (P(positive) for two classes, the top class's for more; `metrics.reliability`), the
    diagonal where they agree, and each bin's count below."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from seqjax.metrics import CALIBRATION_BINS, reliability

    stated, outcome, count = reliability(probabilities, labels)
    two_class = np.asarray(probabilities).ndim == 1
    fig, (top, bottom) = plt.subplots(
        2, 1, figsize=(4.5, 5.5), sharex=True, gridspec_kw={"height_ratios": [3, 1]}
    )
    top.plot([0, 1], [0, 1], color="gray", lw=1)
    filled = count > 0
    label = f"ece {metrics.get('ece', float('nan')):.3f}"
    top.plot(stated[filled], outcome[filled], marker="o", label=label)
    top.set_ylabel("how often it came true" if two_class else "accuracy")
    top.legend()
    top.grid(alpha=0.3)
    edges = np.linspace(0, 1, CALIBRATION_BINS + 1)
    bottom.bar(edges[:-1], count, width=np.diff(edges), align="edge", edgecolor="white")
    bottom.set_xlabel("stated P(positive)" if two_class else "stated top-class probability")
    bottom.set_ylabel("sequences")
    save_figure(fig, path)
    return path


def plot_classifier(probabilities, labels, metrics: dict, out_dir: str) -> list[str]:
    """confusion_matrix.png and reliability.png for a classifier on one split; roc.png and
    pr.png as well for a binary one (its metrics hold auc_roc)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    os.makedirs(out_dir, exist_ok=True)
    written = []
    cm = np.asarray(metrics["confusion_matrix"])
    fig, ax = plt.subplots(figsize=(4, 4))
    ax.imshow(cm, cmap="Blues")
    for (i, j), v in np.ndenumerate(cm):
        ax.text(j, i, str(v), ha="center", va="center")
    ax.set_xticks(range(len(cm)), [f"pred {k}" for k in range(len(cm))], rotation=90)
    ax.set_yticks(range(len(cm)), [f"true {k}" for k in range(len(cm))])
    ax.set_title("confusion matrix")
    written.append(os.path.join(out_dir, "confusion_matrix.png"))
    save_figure(fig, written[-1])
    reliability_png = os.path.join(out_dir, "reliability.png")
    written.append(plot_reliability(probabilities, labels, metrics, reliability_png))
    if "auc_roc" not in metrics:
        return written
    (fpr, tpr), (recall, precision) = _curve_points(probabilities, labels)
    for name, xs, ys, xlabel, ylabel, key in (
        ("roc", fpr, tpr, "false positive rate", "true positive rate", "auc_roc"),
        ("pr", recall, precision, "recall", "precision", "auc_pr"),
    ):
        fig, ax = plt.subplots(figsize=(4.5, 4))
        ax.plot(xs, ys, label=f"{key} {metrics.get(key, float('nan')):.3f}")
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.legend()
        ax.grid(alpha=0.3)
        written.append(os.path.join(out_dir, f"{name}.png"))
        save_figure(fig, written[-1])
    return written


def plot_attention(weights, lengths, labels, path: str) -> str:
    """Heatmap of attention weights (N, T), one row per sequence, valid steps only."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    w = np.asarray(weights, np.float64)
    shown = np.where(np.arange(w.shape[1])[None, :] < np.asarray(lengths)[:, None], w, np.nan)
    fig, ax = plt.subplots(figsize=(8, 0.4 * len(w) + 1))
    ax.imshow(shown, aspect="auto", cmap="viridis", interpolation="nearest")
    ax.set_yticks(range(len(w)), [f"label {int(v)}" for v in labels])
    ax.set_xlabel("time step")
    ax.set_title("attention weights (blank past each length)")
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    save_figure(fig, path)
    return path


def plot_predicted_vs_actual(predicted, actual, labels, path: str) -> str:
    """One scatter panel per horizon: predicted vs actual trend, with the diagonal."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    predicted, actual = np.asarray(predicted), np.asarray(actual)
    fig, axes = plt.subplots(1, len(labels), figsize=(4.5 * len(labels), 4), squeeze=False)
    for k, (ax, label) in enumerate(zip(axes[0], labels, strict=True)):
        ax.scatter(actual[:, k], predicted[:, k], s=4, alpha=0.3)
        ax.plot([-1, 1], [-1, 1], color="gray", lw=1)
        ax.set_xlabel("actual trend")
        ax.set_ylabel("predicted trend")
        ax.set_title(label)
        ax.grid(alpha=0.3)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    save_figure(fig, path)
    return path

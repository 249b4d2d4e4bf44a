"""Training curves as PNG files (matplotlib, headless Agg backend)."""

from __future__ import annotations

import os

from seqjax.io import atomic_write_bytes


def _save(fig, path: str) -> None:
    import io

    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
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
    _save(fig, path)
    written.append(path)
    keys = [k for k in history[0] if k.startswith("val_") and k != "val_loss"]
    if keys:
        fig, ax = plt.subplots(figsize=(6, 4))
        for key in keys:
            ax.plot(epochs, [row.get(key) for row in history], marker="o", label=key)
        ax.set_xlabel("epoch")
        ax.legend()
        ax.grid(alpha=0.3)
        path = os.path.join(out_dir, "metrics.png")
        _save(fig, path)
        written.append(path)
    return written

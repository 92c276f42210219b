"""Report figures: confusion matrix and reliability diagram (matplotlib, no display)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)
import numpy as np  # noqa: E402
from sklearn.metrics import ConfusionMatrixDisplay  # noqa: E402


def confusion_png(y_true: np.ndarray, y_pred: np.ndarray, names: list[str], path: Path) -> None:
    fig, ax = plt.subplots(figsize=(1.2 * len(names) + 2, 1.2 * len(names) + 1.5))
    ConfusionMatrixDisplay.from_predictions(
        y_true,
        y_pred,
        labels=list(range(len(names))),
        display_labels=names,
        ax=ax,
        colorbar=False,
        xticks_rotation=45,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def reliability_png(
    confidence: np.ndarray, correct: np.ndarray, path: Path, bins: int = 10
) -> None:
    """Accuracy per confidence bin against the diagonal of perfect calibration."""
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.digitize(confidence, edges) - 1, 0, bins - 1)
    centers = (edges[:-1] + edges[1:]) / 2
    acc = [correct[which == b].mean() if (which == b).any() else np.nan for b in range(bins)]
    fig, ax = plt.subplots(figsize=(4, 4))
    ax.plot([0, 1], [0, 1], "--", color="grey", label="perfect calibration")
    ax.bar(centers, acc, width=1 / bins, alpha=0.7, edgecolor="black", label="accuracy")
    ax.set_xlabel("confidence")
    ax.set_ylabel("accuracy")
    ax.legend(loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)

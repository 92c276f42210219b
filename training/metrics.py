"""Classification metrics, bootstrap intervals and calibration, on top of scikit-learn."""

from __future__ import annotations

from functools import partial

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import log_softmax, softmax
from sklearn.metrics import accuracy_score, f1_score, precision_recall_fscore_support
from sklearn.metrics import classification_report as sklearn_classification_report


def macro_f1(y_true: np.ndarray, y_pred: np.ndarray, labels: list[int] | None = None) -> float:
    """Macro-F1 over ``labels``; without them scikit-learn averages over every label that
    occurs in gold *or* predictions, so pass them for any subset of the data (see slice_report)."""
    return float(f1_score(y_true, y_pred, average="macro", labels=labels, zero_division=0))


def accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    return float(accuracy_score(y_true, y_pred))


def bootstrap_ci(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    metric=macro_f1,
    n: int = 1000,
    seed: int = 0,
    alpha: float = 0.05,
) -> list[float]:
    """Percentile bootstrap interval of ``metric`` over resampled examples."""
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(y_true), size=(n, len(y_true)))
    values = np.array([metric(y_true[i], y_pred[i]) for i in idx])
    return [float(np.quantile(values, alpha / 2)), float(np.quantile(values, 1 - alpha / 2))]


def bootstrap_diff_ci(
    y_true: np.ndarray,
    pred_a: np.ndarray,
    pred_b: np.ndarray,
    metric=macro_f1,
    n: int = 1000,
    seed: int = 0,
    alpha: float = 0.05,
) -> list[float]:
    """Paired bootstrap interval of metric(a) − metric(b) on the same resampled examples."""
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(y_true), size=(n, len(y_true)))
    diffs = np.array([metric(y_true[i], pred_a[i]) - metric(y_true[i], pred_b[i]) for i in idx])
    return [float(np.quantile(diffs, alpha / 2)), float(np.quantile(diffs, 1 - alpha / 2))]


def classification_report(
    y_true: np.ndarray, y_pred: np.ndarray, label_names: list[str], ci: bool = True
) -> dict:
    """The fixed shape reports use: macro_f1 (+ CI), accuracy, per-class P/R/F1/support."""
    labels = list(range(len(label_names)))
    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, labels=labels, zero_division=0)
    out = {
        "macro_f1": macro_f1(y_true, y_pred, labels),
        "accuracy": accuracy(y_true, y_pred),
        "per_class": {
            name: {
                "precision": float(p[i]),
                "recall": float(r[i]),
                "f1": float(f[i]),
                "support": int(s[i]),
            }
            for i, name in enumerate(label_names)
        },
    }
    out["classification_report"] = sklearn_classification_report(
        y_true, y_pred, labels=labels, target_names=label_names, output_dict=True, zero_division=0
    )
    if ci:
        out["macro_f1_ci"] = bootstrap_ci(y_true, y_pred, partial(macro_f1, labels=labels))
    return out


def slice_report(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    label_names: list[str],
    baselines: dict[str, np.ndarray] | None = None,
) -> dict:
    """Macro-F1 of one slice of a test set (one outlet, the items of some labels), averaged
    over the labels the slice's gold holds, with its bootstrap interval.

    A prediction of a label the slice lacks still counts against the gold class's recall, but
    adds no class of F1 0 to the average (which made 0.91 read as 0.91 x 4/5). ``labels``
    records the names averaged over; each baseline gets its figure and the paired interval
    of model − baseline on the same labels.
    """
    present = sorted(set(np.asarray(y_true).tolist()))
    metric = partial(macro_f1, labels=present)
    out = {
        "n": len(y_true),
        "labels": [label_names[i] for i in present],
        "macro_f1": metric(y_true, y_pred),
        "macro_f1_ci": bootstrap_ci(y_true, y_pred, metric),
    }
    if baselines:
        out["baselines"] = {
            name: {
                "macro_f1": metric(y_true, pred),
                "diff_ci": bootstrap_diff_ci(y_true, y_pred, pred, metric),
            }
            for name, pred in baselines.items()
        }
    return out


def expected_calibration_error(probs: np.ndarray, y_true: np.ndarray, bins: int = 15) -> float:
    """ECE of the top-class probability over equal-width confidence bins."""
    conf = probs.max(1)
    correct = probs.argmax(1) == y_true
    edges = np.linspace(0.0, 1.0, bins + 1)
    ece = 0.0
    for lo, hi in zip(edges[:-1], edges[1:]):
        in_bin = (conf > lo) & (conf <= hi)
        if in_bin.any():
            ece += in_bin.mean() * abs(correct[in_bin].mean() - conf[in_bin].mean())
    return float(ece)


def fit_temperature(logits: np.ndarray, y_true: np.ndarray) -> float:
    """The temperature T minimising the NLL of softmax(logits / T) (searched in log space)."""

    def nll(log_t: float) -> float:
        return float(
            -log_softmax(logits / np.exp(log_t), axis=1)[np.arange(len(y_true)), y_true].mean()
        )

    result = minimize_scalar(nll, bounds=(np.log(0.05), np.log(20.0)), method="bounded")
    return float(np.exp(result.x))


def calibrated(logits: np.ndarray, temperature: float) -> np.ndarray:
    return softmax(logits / temperature, axis=1)

"""Metrics with figures worked out by hand: P/R/F1, bootstrap intervals, ECE, temperature."""

from __future__ import annotations

from fractions import Fraction as F

import numpy as np
import pytest
from scipy.special import softmax

from akhbar.training.metrics import (
    bootstrap_ci,
    bootstrap_diff_ci,
    calibrated,
    classification_report,
    expected_calibration_error,
    fit_temperature,
    macro_f1,
    slice_report,
)

# Confusion (rows true, columns predicted):   0  1  2
#                                        0 [  1  1  0 ]
#                                        1 [  0  2  0 ]
#                                        2 [  1  0  1 ]
Y_TRUE = np.array([0, 0, 1, 1, 2, 2])
Y_PRED = np.array([0, 1, 1, 1, 2, 0])
NAMES = ["a", "b", "c"]
EXPECTED = {
    "a": (F(1, 2), F(1, 2), F(1, 2), 2),  # 1 of 2 predicted a is right; 1 of 2 a found
    "b": (
        F(2, 3),
        F(1, 1),
        F(4, 5),
        2,
    ),  # 2 of 3 predicted b; both b found; 2PR/(P+R) = (4/3)/(5/3)
    "c": (F(1, 1), F(1, 2), F(2, 3), 2),  # the one c predicted is right; 1 of 2 c found
}
MACRO_F1 = (F(1, 2) + F(4, 5) + F(2, 3)) / 3  # = 59/90
ACCURACY = F(4, 6)


def test_hand_computed_per_class_and_macro_figures():
    assert MACRO_F1 == F(59, 90)
    report = classification_report(Y_TRUE, Y_PRED, NAMES, ci=False)
    assert report["macro_f1"] == pytest.approx(float(MACRO_F1), abs=1e-12)
    assert report["accuracy"] == pytest.approx(float(ACCURACY), abs=1e-12)
    assert list(report["per_class"]) == NAMES
    for name, (p, r, f1, support) in EXPECTED.items():
        got = report["per_class"][name]
        assert got["precision"] == pytest.approx(float(p), abs=1e-12), name
        assert got["recall"] == pytest.approx(float(r), abs=1e-12), name
        assert got["f1"] == pytest.approx(float(f1), abs=1e-12), name
        assert got["support"] == support
    assert "macro_f1_ci" not in report
    assert macro_f1(Y_TRUE, Y_PRED) == pytest.approx(float(MACRO_F1), abs=1e-12)


def test_a_class_never_seen_counts_as_zero_in_the_macro_average():
    # Four names, the fourth class absent from both: its F1 is 0 (no warning, no NaN).
    report = classification_report(Y_TRUE, Y_PRED, NAMES + ["d"], ci=False)
    assert report["macro_f1"] == pytest.approx(float(MACRO_F1 * 3 / 4), abs=1e-12)
    assert report["per_class"]["d"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}


def test_a_slice_averages_over_its_own_gold_labels():
    # One outlet whose gold holds a and b only; one of its a articles is predicted c.
    # a: P 1/1, R 1/2, F1 2/3; b: P 2/2, R 2/2, F1 1; over the slice's labels (2/3 + 1) / 2 = 5/6.
    y, pred = np.array([0, 0, 1, 1]), np.array([0, 2, 1, 1])
    report = slice_report(y, pred, NAMES, {"same": pred.copy(), "perfect": y.copy()})
    assert report["labels"] == ["a", "b"] and report["n"] == 4
    assert report["macro_f1"] == pytest.approx(5 / 6, abs=1e-12)
    # scikit-learn's default adds c, absent from the gold, as a class of F1 0: (2/3 + 1 + 0) / 3.
    assert macro_f1(y, pred) == pytest.approx(5 / 9, abs=1e-12)
    assert report["macro_f1_ci"][0] <= report["macro_f1"] <= report["macro_f1_ci"][1] <= 1.0
    assert report["baselines"]["same"] == {"macro_f1": pytest.approx(5 / 6), "diff_ci": [0.0, 0.0]}
    assert report["baselines"]["perfect"]["macro_f1"] == 1.0
    assert report["baselines"]["perfect"]["diff_ci"][1] <= 0.0


def test_sklearn_classification_report_sits_beside_the_figures():
    report = classification_report(Y_TRUE, Y_PRED, NAMES, ci=False)["classification_report"]
    assert set(report) == {"a", "b", "c", "accuracy", "macro avg", "weighted avg"}
    assert report["b"]["f1-score"] == pytest.approx(0.8) and report["b"]["support"] == 2
    assert report["macro avg"]["f1-score"] == pytest.approx(float(MACRO_F1), abs=1e-12)


def noisy_predictions(
    n: int = 300, accuracy: float = 0.7, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    wrong = rng.random(n) > accuracy
    pred = np.where(wrong, (y + rng.integers(1, 3, n)) % 3, y)
    return y, pred


def test_bootstrap_ci_brackets_the_estimate_and_is_deterministic():
    y, pred = noisy_predictions()
    point = macro_f1(y, pred)
    low, high = bootstrap_ci(y, pred, n=300, seed=5)
    assert low < point < high
    assert high - low < 0.25
    assert bootstrap_ci(y, pred, n=300, seed=5) == [low, high]
    assert bootstrap_ci(y, pred, n=300, seed=6) != [low, high]
    # A wider confidence level gives a wider interval from the same resamples.
    low99, high99 = bootstrap_ci(y, pred, n=300, seed=5, alpha=0.01)
    assert low99 <= low and high <= high99
    # The report's interval is the same computation over label indices.
    report = classification_report(y, pred, NAMES)
    assert report["macro_f1_ci"][0] < report["macro_f1"] < report["macro_f1_ci"][1]


def test_bootstrap_ci_of_perfect_predictions_is_a_point():
    y = np.array([0, 1, 2, 0, 1, 2, 0, 1])
    assert bootstrap_ci(y, y.copy(), n=50) == [1.0, 1.0]


def test_bootstrap_diff_ci():
    y, pred = noisy_predictions()
    assert bootstrap_diff_ci(y, pred, pred.copy(), n=200, seed=1) == [0.0, 0.0]
    # A clearly better system: the whole interval is above zero, and flips sign when swapped.
    better = np.where(np.random.default_rng(9).random(len(y)) < 0.5, y, pred)
    low, high = bootstrap_diff_ci(y, better, pred, n=300, seed=1)
    assert 0 < low < high
    assert macro_f1(y, better) - macro_f1(y, pred) == pytest.approx((low + high) / 2, abs=0.05)
    swapped = bootstrap_diff_ci(y, pred, better, n=300, seed=1)
    assert swapped == pytest.approx([-high, -low])
    assert bootstrap_diff_ci(y, better, pred, n=300, seed=1) == [low, high]


def test_expected_calibration_error_by_hand():
    # Confidences 0.9, 0.9, 0.7, 0.55 fall in three of the 15 bins (none on an edge).
    probs = np.array([[0.9, 0.1], [0.1, 0.9], [0.7, 0.3], [0.45, 0.55]])
    y = np.array([0, 0, 0, 1])  # right, wrong, right, right
    # bin 0.9: 2/4 × |1/2 − 0.9| = 0.2; bin 0.7: 1/4 × 0.3 = 0.075; bin 0.55: 1/4 × 0.45 = 0.1125
    assert expected_calibration_error(probs, y) == pytest.approx(0.2 + 0.075 + 0.1125, abs=1e-12)
    # One bin: |accuracy − mean confidence| = |3/4 − 3.05/4|.
    assert expected_calibration_error(probs, y, bins=1) == pytest.approx(0.05 / 4, abs=1e-12)


def test_expected_calibration_error_is_zero_when_confidence_matches_accuracy():
    probs = np.array([[0.75, 0.25]] * 4)
    assert expected_calibration_error(probs, np.array([0, 0, 0, 1])) == pytest.approx(
        0.0, abs=1e-12
    )
    assert expected_calibration_error(probs, np.array([1, 1, 1, 1])) == pytest.approx(0.75)


def overconfident_logits(
    scale: float, n: int = 4000, seed: int = 11
) -> tuple[np.ndarray, np.ndarray]:
    """Labels drawn from softmax(true logits); the logits shown are the true ones × scale."""
    rng = np.random.default_rng(seed)
    true = rng.normal(0.0, 2.0, (n, 4))
    probs = softmax(true, axis=1)
    cumulative = probs.cumsum(axis=1)
    y = (rng.random((n, 1)) > cumulative).sum(axis=1).clip(max=3)
    return true * scale, y


def test_fit_temperature_recovers_the_scale():
    logits, y = overconfident_logits(3.0)
    temperature = fit_temperature(logits, y)
    assert temperature == pytest.approx(3.0, rel=0.15)
    # Already calibrated logits need no scaling; under-confident ones get T < 1.
    assert fit_temperature(logits / 3.0, y) == pytest.approx(1.0, rel=0.15)
    assert fit_temperature(logits / 6.0, y) == pytest.approx(0.5, rel=0.15)
    # And temperature scaling lowers the calibration error.
    assert expected_calibration_error(
        calibrated(logits, temperature), y
    ) < expected_calibration_error(calibrated(logits, 1.0), y)


def test_calibrated_is_softmax_of_scaled_logits():
    logits = np.array([[2.0, 0.0, -2.0], [0.0, 0.0, 0.0]])
    probs = calibrated(logits, 2.0)
    assert probs.sum(axis=1) == pytest.approx([1.0, 1.0])
    expected = np.exp([1.0, 0.0, -1.0]) / np.exp([1.0, 0.0, -1.0]).sum()
    assert probs[0] == pytest.approx(expected)
    assert probs[1] == pytest.approx([1 / 3] * 3)

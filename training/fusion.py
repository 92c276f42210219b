"""Fit the hashed TF-IDF model and its fusion with the encoder; keep whichever wins.

The TF-IDF model is fitted on train. The stacker (logistic regression over the encoder's
pooled logits and the TF-IDF scores) is fitted on validation; its validation figure is
measured by 5-fold cross-validation on validation, so the comparison with the encoder
alone and TF-IDF alone is not flattered by fitting and scoring on the same rows.
"""

from __future__ import annotations

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.svm import LinearSVC

from akhbar.models.hashed_tfidf import HashedTfidf, TfidfFusion, TfidfSettings
from akhbar.models.normalize import NormalizerConfig
from akhbar.training.metrics import macro_f1


def _per_class(coef: np.ndarray, intercept: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn keeps one row for two classes; the bundle always stores one per class."""
    if coef.shape[0] == 1:
        coef, intercept = np.vstack([-coef, coef]) / 2, np.concatenate([-intercept, intercept]) / 2
    return coef.astype(np.float32), intercept.astype(np.float32)


def _stacker() -> LogisticRegression:
    return LogisticRegression(C=1.0, max_iter=2000)


def fit_fusion(train_texts: list[str], train_y: np.ndarray, val_texts: list[str], val_y: np.ndarray,
               val_logits: np.ndarray, normalization: NormalizerConfig, seed: int = 0) -> tuple[TfidfFusion, dict]:
    """Returns the fitted fusion and a report: validation macro-F1 of each variant, the choice,
    and the cross-validated fused probabilities (``fused_cv_proba``) for calibration figures."""
    features = HashedTfidf(TfidfSettings(), normalization)
    svm = LinearSVC(C=0.5, random_state=seed).fit(features.fit(train_texts), train_y)
    weight, bias = _per_class(svm.coef_, svm.intercept_)
    val_scores = np.asarray(features.transform(val_texts) @ weight.T) + bias
    stacked = np.hstack([val_logits, val_scores])
    folds = StratifiedKFold(n_splits=5, shuffle=True, random_state=seed)
    fused_proba = cross_val_predict(_stacker(), stacked, val_y, cv=folds, method="predict_proba")
    report = {
        "encoder": macro_f1(val_y, val_logits.argmax(1)),
        "tfidf": macro_f1(val_y, val_scores.argmax(1)),
        "fused_cv": macro_f1(val_y, fused_proba.argmax(1)),
    }
    report["chosen"] = "fused" if report["fused_cv"] > report["encoder"] else "encoder"
    stacker = _stacker().fit(stacked, val_y)
    fusion = TfidfFusion(features, weight, bias, *_per_class(stacker.coef_, stacker.intercept_))
    return fusion, report | {"fused_cv_proba": fused_proba}

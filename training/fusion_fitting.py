"""Fit a side model and its fusion with the encoder, and keep whichever wins on validation.

Fitting happens here, at training time; :mod:`akhbar.models.fusion` holds the fitted parts,
stores them in a bundle and applies them when serving.

The side model is fitted on train: a linear SVM over the TF-IDF baseline's own word and
character n-grams (``tfidf``, :mod:`akhbar.models.tfidf`), or a
class-balanced logistic regression over sentence-encoder pair features
(``sentence_encoder``). The stacker (logistic regression over the encoder's pooled logits
and the side scores) is fitted on validation; its validation figure is measured by 5-fold
cross-validation on validation, so the comparison with the encoder alone is not flattered
by fitting and scoring on the same rows.

``akhbar train`` fits a fusion when a task's config says ``fusion: KIND``;
:mod:`akhbar.training.add_fusion` adds one to a bundle that is already trained.
"""

from __future__ import annotations

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.svm import LinearSVC

from akhbar.models.fusion import KINDS, Fusion, SentenceEncoderFusion, TfidfFusion
from akhbar.models.normalize import NormalizerConfig
from akhbar.models.sentence_encoder import pair_features
from akhbar.models.tfidf import NgramSettings, NgramTfidf
from akhbar.training.metrics import classification_report, expected_calibration_error, macro_f1


def _per_class(coef: np.ndarray, intercept: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn keeps one row for two classes; the bundle always stores one per class."""
    if coef.shape[0] == 1:
        coef, intercept = np.vstack([-coef, coef]) / 2, np.concatenate([-intercept, intercept]) / 2
    return coef.astype(np.float32), intercept.astype(np.float32)


def _stacker(balanced: bool) -> LogisticRegression:
    return LogisticRegression(C=1.0, max_iter=2000, class_weight="balanced" if balanced else None)


def _side_model(
    kind: str,
    train_texts: list[str],
    train_first: list[str] | None,
    train_y: np.ndarray,
    normalization: NormalizerConfig,
    seed: int,
) -> Fusion:
    """The side model fitted on train, with a placeholder stacker."""
    if kind == TfidfFusion.kind:
        tfidf = NgramTfidf(NgramSettings(), normalization)
        svm = LinearSVC(C=0.5, random_state=seed).fit(tfidf.fit(train_texts), train_y)
        return TfidfFusion(
            *_per_class(svm.coef_, svm.intercept_), np.zeros(0), np.zeros(0), tfidf=tfidf
        )
    if kind == SentenceEncoderFusion.kind:
        lr = LogisticRegression(max_iter=2000, class_weight="balanced").fit(
            pair_features(train_first, train_texts), train_y
        )
        return SentenceEncoderFusion(*_per_class(lr.coef_, lr.intercept_), np.zeros(0), np.zeros(0))
    raise ValueError(f"fusion kind must be one of {', '.join(KINDS)}, got {kind!r}")


def fit_fusion(
    kind: str,
    train_texts: list[str],
    train_first: list[str] | None,
    train_y: np.ndarray,
    val_texts: list[str],
    val_first: list[str] | None,
    val_y: np.ndarray,
    val_logits: np.ndarray,
    normalization: NormalizerConfig,
    seed: int = 0,
    balanced: bool = False,
) -> tuple[Fusion, dict]:
    """Returns the fitted fusion and a report: validation macro-F1 of each variant, the choice,
    and the cross-validated fused probabilities (``fused_cv_proba``) for calibration figures.

    ``balanced`` weights the stacker's classes (for skewed tasks such as stance).
    """
    fusion = _side_model(kind, train_texts, train_first, train_y, normalization, seed)
    val_scores = fusion.scores(val_texts, val_first)
    stacked = np.hstack([val_logits, val_scores])
    folds = StratifiedKFold(n_splits=5, shuffle=True, random_state=seed)
    fused_proba = cross_val_predict(
        _stacker(balanced), stacked, val_y, cv=folds, method="predict_proba"
    )
    report = {
        "kind": kind,
        "encoder": macro_f1(val_y, val_logits.argmax(1)),
        kind: macro_f1(val_y, val_scores.argmax(1)),
        "fused_cv": macro_f1(val_y, fused_proba.argmax(1)),
    }
    report["chosen"] = "fused" if report["fused_cv"] > report["encoder"] else "encoder"
    stacker = _stacker(balanced).fit(stacked, val_y)
    fusion.stack_weight, fusion.stack_bias = _per_class(stacker.coef_, stacker.intercept_)
    return fusion, report | {"fused_cv_proba": fused_proba}


def choose(
    report: dict,
    temperature: float,
    pred: np.ndarray,
    fusion: Fusion,
    fusion_report: dict,
    y: np.ndarray,
    labels: list[str],
) -> tuple[dict, float, np.ndarray, Fusion | None]:
    """A task's validation figures, temperature and predictions after the fusion decision,
    and the fusion when it is kept (else None). Fused figures are the cross-validated ones."""
    proba = fusion_report.pop("fused_cv_proba")
    if fusion_report["chosen"] == "fused":
        # The stacker's probabilities are calibrated already: temperature 1.
        temperature, pred = 1.0, proba.argmax(1)
        report = classification_report(y, pred, labels) | {
            "ece_before": report["ece_before"],
            "ece_after": expected_calibration_error(proba, y),
            "temperature": 1.0,
            "encoder_only": report,
        }
    else:
        fusion = None
    return report | {"fusion": fusion_report}, temperature, pred, fusion

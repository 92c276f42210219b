"""Fit a side model and its fusion with the encoder, and keep whichever wins on validation.

Fitting happens here, at training time; :mod:`akhbar.models.fusion` holds the fitted parts,
stores them in a bundle and applies them when serving.

The side model is fitted on train: a linear SVM over the TF-IDF baseline's own word and
character n-grams (``tfidf``, :mod:`akhbar.models.tfidf`), or a
class-balanced logistic regression over sentence-encoder pair features
(``sentence_encoder``), where validation picks the feature set and regularisation among
:data:`SENTENCE_SIDE_MODELS` (the baseline's own is one of them, so the side model is at
worst the baseline on validation). The stacker (logistic regression over the encoder's pooled logits
and the side scores) is fitted on validation; its validation figure is measured by 5-fold
cross-validation on validation, so the comparison with the encoder alone is not flattered
by fitting and scoring on the same rows. When the side model alone (fitted on train, so its
validation figure is honest) beats that figure, the stacker passes its scores through, so a
fusion never ships below its own side model.

With ``decision_bias`` (stance: 37 unifiedfc ``disagree`` pairs in train), per-class biases
added to the stacker's scores are tuned for macro-F1 on the cross-validated validation
probabilities, so a rare class is predicted as often as it pays. Whether they are kept is
decided by nested cross-validation (biases tuned on four folds, scored on the fifth), the
same honesty the stacker gets.

``akhbar train`` fits a fusion when a task's config says ``fusion: KIND``;
:mod:`akhbar.training.add_fusion` adds one to a bundle that is already trained.
"""

from __future__ import annotations

import numpy as np
from scipy.special import softmax
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.svm import LinearSVC

from akhbar.models.fusion import (
    KINDS,
    PAIRS,
    PAIRS_RELATEDNESS,
    Fusion,
    SentenceEncoderFusion,
    TfidfFusion,
    pair_matrix,
)
from akhbar.models.normalize import NormalizerConfig
from akhbar.models.sentence_encoder import embed_pairs, relatedness
from akhbar.models.tfidf import NgramSettings, NgramTfidf
from akhbar.training.finetune_config import FinetuneConfig
from akhbar.training.metrics import (
    classification_report,
    expected_calibration_error,
    fit_temperature,
    macro_f1,
)

BIAS_GRID = np.linspace(-3.0, 3.0, 61)
# How much the side model alone must beat the stack by before the stacker passes its raw
# scores through (they are a linear model's margins, less well calibrated than the stack's).
SIDE_MARGIN = 0.005
# (feature set, C) of each sentence-encoder side model tried; the first is the baseline's.
# With relatedness, stronger regularisation: unifiedfc validation 0.430 at C 0.1 and 0.412 at
# C 1, against 0.341 for the baseline's features (2026-12-07).
SENTENCE_SIDE_MODELS = ((PAIRS, 1.0), (PAIRS_RELATEDNESS, 0.1), (PAIRS_RELATEDNESS, 0.3))


def _per_class(coef: np.ndarray, intercept: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn keeps one row for two classes; the bundle always stores one per class."""
    if coef.shape[0] == 1:
        coef, intercept = np.vstack([-coef, coef]) / 2, np.concatenate([-intercept, intercept]) / 2
    return coef.astype(np.float32), intercept.astype(np.float32)


def _stacker(balanced: bool) -> LogisticRegression:
    return LogisticRegression(C=1.0, max_iter=2000, class_weight="balanced" if balanced else None)


def _side_model(
    kind: str,
    train: tuple[list[str], list[str] | None, np.ndarray],
    val: tuple[list[str], list[str] | None, np.ndarray],
    normalization: NormalizerConfig,
    seed: int,
) -> tuple[Fusion, np.ndarray, dict]:
    """The side model fitted on train (with a placeholder stacker), its scores on validation,
    and the validation macro-F1 of each candidate where there was a choice. ``train`` and
    ``val`` are (texts, claims or None, labels)."""
    (texts, first, y), (val_texts, val_first, val_y) = train, val
    if kind == TfidfFusion.kind:
        tfidf = NgramTfidf(NgramSettings(), normalization)
        svm = LinearSVC(C=0.5, random_state=seed).fit(tfidf.fit(texts), y)
        fusion = TfidfFusion(
            *_per_class(svm.coef_, svm.intercept_), np.zeros(0), np.zeros(0), tfidf=tfidf
        )
        return fusion, fusion.scores(val_texts), {}
    if kind != SentenceEncoderFusion.kind:
        raise ValueError(f"fusion kind must be one of {', '.join(KINDS)}, got {kind!r}")
    # Each set of embeddings once, shared by every candidate.
    (u, v), (val_u, val_v) = embed_pairs(first, texts), embed_pairs(val_first, val_texts)
    figures = relatedness(first, texts, u, v)
    scales = {
        PAIRS: np.zeros((2, 0), np.float32),
        PAIRS_RELATEDNESS: np.stack([figures.mean(0), figures.std(0) + 1e-6]).astype(np.float32),
    }
    candidates = []
    for feature_set, c in SENTENCE_SIDE_MODELS:
        scale = scales[feature_set]
        lr = LogisticRegression(max_iter=5000, class_weight="balanced", C=c).fit(
            pair_matrix(feature_set, scale, first, texts, u, v), y
        )
        fusion = SentenceEncoderFusion(
            *_per_class(lr.coef_, lr.intercept_),
            np.zeros(0),
            np.zeros(0),
            feature_set=feature_set,
            scale=scale,
        )
        val_matrix = pair_matrix(feature_set, scale, val_first, val_texts, val_u, val_v)
        candidates.append((f"{feature_set} C={c}", fusion, fusion.project(val_matrix)))
    tried = {name: macro_f1(val_y, scores.argmax(1)) for name, _, scores in candidates}
    name, fusion, val_scores = max(candidates, key=lambda c: tried[c[0]])  # the first on ties
    return fusion, val_scores, {"side_models": tried, "side_model": name}


def tune_bias(log_proba: np.ndarray, y: np.ndarray, rounds: int = 3) -> np.ndarray:
    """Per-class additive biases to ``log_proba`` that maximise macro-F1 (coordinate ascent
    over ``BIAS_GRID``; on ties the smallest move wins, so a class is only pushed when it pays)."""
    bias = np.zeros(log_proba.shape[1])
    for _ in range(rounds):
        for c in range(len(bias)):
            scores = []
            for b in BIAS_GRID:
                bias[c] = b
                scores.append((macro_f1(y, (log_proba + bias).argmax(1)), -abs(b), b))
            bias[c] = max(scores)[2]
    return bias


def _nested_bias(log_proba: np.ndarray, y: np.ndarray, seed: int) -> np.ndarray:
    """Probabilities after biases tuned on the other folds: an honest figure for tuning."""
    out = np.empty_like(log_proba)
    folds = StratifiedKFold(n_splits=5, shuffle=True, random_state=seed + 1)
    for fit_rows, score_rows in folds.split(log_proba, y):
        bias = tune_bias(log_proba[fit_rows], y[fit_rows])
        out[score_rows] = softmax(log_proba[score_rows] + bias, axis=1)
    return out


def fit_fusion(
    cfg: FinetuneConfig,
    train_texts: list[str],
    train_first: list[str] | None,
    train_y: np.ndarray,
    val_texts: list[str],
    val_first: list[str] | None,
    val_y: np.ndarray,
    val_logits: np.ndarray,
    normalization: NormalizerConfig,
) -> tuple[Fusion, dict]:
    """The fusion of ``cfg.fusion`` and a report: validation macro-F1 of each variant, the
    choice, and the cross-validated fused probabilities (``fused_cv_proba``) for calibration
    figures. With ``cfg.class_weighting`` the stacker is fitted with and without balanced
    class weights, and cross-validation keeps the better; ``cfg.decision_bias`` tunes
    per-class biases (module docstring). Where the side model alone beats the stack, the
    stacker passes the side model's scores through."""
    kind = cfg.fusion
    fusion, val_scores, tried = _side_model(
        kind,
        (train_texts, train_first, train_y),
        (val_texts, val_first, val_y),
        normalization,
        cfg.seed,
    )
    stacked = np.hstack([val_logits, val_scores])
    folds = StratifiedKFold(n_splits=5, shuffle=True, random_state=cfg.seed)
    # Class weights help a skewed task's stacker, or hurt it (ANS: 16 `other` pairs in 755
    # made the balanced stacker predict `other` far too often): cross-validation decides.
    candidates = {
        balanced: cross_val_predict(
            _stacker(balanced), stacked, val_y, cv=folds, method="predict_proba"
        )
        for balanced in dict.fromkeys((cfg.class_weighting, False))
    }
    balanced = max(candidates, key=lambda b: macro_f1(val_y, candidates[b].argmax(1)))
    fused_proba = candidates[balanced]
    report = {
        "kind": kind,
        "encoder": macro_f1(val_y, val_logits.argmax(1)),
        kind: macro_f1(val_y, val_scores.argmax(1)),
        "fused_cv": macro_f1(val_y, fused_proba.argmax(1)),
        "stacker_balanced": balanced,
    } | tried
    stacker = _stacker(balanced).fit(stacked, val_y)
    fusion.stack_weight, fusion.stack_bias = _per_class(stacker.coef_, stacker.intercept_)
    if cfg.decision_bias:
        log_proba = np.log(np.clip(fused_proba, 1e-12, None))
        biased_proba = _nested_bias(log_proba, val_y, cfg.seed)
        bias = tune_bias(log_proba, val_y)
        biased = macro_f1(val_y, biased_proba.argmax(1))
        report["decision_bias"] = {
            "bias": bias.round(3).tolist(),
            "fused_cv_unbiased": report["fused_cv"],
            "fused_cv_biased_nested": biased,
            "kept": biased > report["fused_cv"],
        }
        if biased > report["fused_cv"]:
            report["fused_cv"], fused_proba = biased, biased_proba
            fusion.stack_bias = (fusion.stack_bias + bias).astype(np.float32)
    if report[kind] > report["fused_cv"] + SIDE_MARGIN:
        # The side model alone beats the stack: the stacker passes its scores through, so
        # the fusion can at worst equal it (validation figures are its own, fitted on train).
        # Its scores are a linear model's margins (a class-balanced one's for stance): one
        # temperature, fitted on validation, calibrates them without moving any argmax.
        n = val_logits.shape[1]
        temperature = fit_temperature(val_scores, val_y)
        fusion.stack_weight = np.hstack([np.zeros((n, n)), np.eye(n) / temperature]).astype(
            np.float32
        )
        fusion.stack_bias = np.zeros(n, dtype=np.float32)
        report["stacked_cv"], report["side_alone"] = report["fused_cv"], True
        report["fused_cv"], report["side_temperature"] = report[kind], temperature
        fused_proba = softmax(val_scores / temperature, axis=1)
    report["chosen"] = "fused" if report["fused_cv"] > report["encoder"] else "encoder"
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

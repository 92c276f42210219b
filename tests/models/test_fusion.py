"""Fusion parts (n-gram TF-IDF, hashed TF-IDF from older bundles, sentence-encoder pairs):
stored as safetensors + JSON, scores survive the round trip."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import ARABIC_SENTENCES

from akhbar.models.fusion import (
    PAIRS_RELATEDNESS,
    SentenceEncoderFusion,
    TfidfFusion,
    load_fusion,
)
from akhbar.models.hashed_tfidf import HashedTfidf, TfidfSettings
from akhbar.models.normalize import NormalizerConfig
from akhbar.models.tfidf import NgramSettings, NgramTfidf, ngram_features

SMALL = TfidfSettings(word_bits=10, char_bits=10)


def test_transform_is_l2_normalised_and_ignores_diacritics():
    features = HashedTfidf(SMALL, NormalizerConfig())
    features.fit(ARABIC_SENTENCES)
    plain, marked = features.transform(["سجل المهاجم هدفين", "سَجَّلَ المُهاجِمُ هدفين"]).toarray()
    assert np.allclose(plain, marked)
    assert np.isclose(np.linalg.norm(plain), 1.0)


NGRAMS = NgramSettings(word_min_df=1, char_min_df=1)


def test_ngram_features_are_the_baselines_and_need_no_pickle():
    """The side model's features equal a freshly fitted baseline vectoriser's, before and after
    a round trip through plain arrays (terms and IDF)."""
    fitted = NgramTfidf(NGRAMS, NormalizerConfig())
    x = fitted.fit(ARABIC_SENTENCES)
    baseline = ngram_features(NGRAMS).fit(ARABIC_SENTENCES)
    restored = NgramTfidf(NGRAMS, NormalizerConfig(), fitted.arrays())
    # Repeated and one-letter words, an empty text: the word-by-word count of the character
    # part must give what scikit-learn's own transform gives.
    unseen = ["ارتفعت أسعار النفط في السوق", "سَجَّلَ المُهاجِمُ هدفين", "", "و النفط النفط ب"]
    assert np.allclose(x.toarray(), baseline.transform(ARABIC_SENTENCES).toarray())
    assert np.allclose(restored.transform(unseen).toarray(), baseline.transform(unseen).toarray())
    assert np.allclose(fitted.transform(unseen).toarray(), baseline.transform(unseen).toarray())
    # Fitted again on other texts, the cached words' ids follow the new vocabulary.
    fitted.fit(ARABIC_SENTENCES[::2])
    refitted = ngram_features(NGRAMS).fit(ARABIC_SENTENCES[::2])
    assert np.allclose(fitted.transform(unseen).toarray(), refitted.transform(unseen).toarray())
    assert all(a.dtype in (np.uint8, np.float32) for a in fitted.arrays().values())
    # Diacritics are normalised away before the n-grams are taken.
    plain, marked = restored.transform(["سجل المهاجم هدفين", "سَجَّلَ المُهاجِمُ هدفين"]).toarray()
    assert np.allclose(plain, marked) and plain.any()


@pytest.mark.parametrize("features", ["ngram", "hashed"])
def test_save_and_load_keep_the_scores(tmp_path, features):
    if features == "ngram":
        features = NgramTfidf(NGRAMS, NormalizerConfig())
    else:  # bundles written before the n-gram vocabulary
        features = HashedTfidf(SMALL, NormalizerConfig())
    x = features.fit(ARABIC_SENTENCES)
    rng = np.random.default_rng(0)
    # Fortran-ordered, as scikit-learn's coef_ is: safetensors must still store it correctly.
    weight = np.asfortranarray(rng.normal(size=(3, x.shape[1])).astype(np.float32))
    fusion = TfidfFusion(
        weight,
        np.zeros(3, np.float32),
        rng.normal(size=(3, 6)).astype(np.float32),
        np.zeros(3, np.float32),
        tfidf=features,
    )
    fusion.save(tmp_path, "topic")
    loaded = load_fusion(tmp_path, "topic", NormalizerConfig())
    assert isinstance(loaded, TfidfFusion) and type(loaded.tfidf) is type(features)
    logits = rng.normal(size=(len(ARABIC_SENTENCES), 3))
    # fp16 storage of the linear weights: equal to about three decimals.
    assert np.allclose(loaded.scores(ARABIC_SENTENCES), fusion.scores(ARABIC_SENTENCES), atol=1e-2)
    assert np.allclose(
        loaded.fuse(logits, ARABIC_SENTENCES), fusion.fuse(logits, ARABIC_SENTENCES), atol=5e-2
    )


def test_sentence_encoder_fusion_round_trip_needs_claims(tmp_path):
    claims, evidence = ARABIC_SENTENCES[:3], ARABIC_SENTENCES[3:6]
    rng = np.random.default_rng(0)
    fusion = SentenceEncoderFusion(
        rng.normal(size=(4, 2048)).astype(np.float32),
        np.zeros(4, np.float32),
        rng.normal(size=(4, 8)).astype(np.float32),
        np.zeros(4, np.float32),
    )
    fusion.save(tmp_path, "stance")
    loaded = load_fusion(tmp_path, "stance", NormalizerConfig())
    assert isinstance(loaded, SentenceEncoderFusion)
    logits = rng.normal(size=(3, 4))
    assert np.allclose(
        loaded.fuse(logits, evidence, claims), fusion.fuse(logits, evidence, claims), atol=5e-2
    )
    # The pair features depend on the claim: another claim, other scores.
    assert not np.allclose(fusion.scores(evidence, claims), fusion.scores(evidence, claims[::-1]))
    with pytest.raises(ValueError, match="claims"):
        fusion.scores(evidence, None)


def _relatedness_fusion(rng: np.random.Generator) -> SentenceEncoderFusion:
    return SentenceEncoderFusion(
        rng.normal(size=(4, 1540)).astype(np.float32),
        np.zeros(4, np.float32),
        rng.normal(size=(4, 8)).astype(np.float32),
        np.zeros(4, np.float32),
        feature_set=PAIRS_RELATEDNESS,
        scale=np.array([[0.2, 0.5, 3.0, 0.3], [0.1, 0.3, 1.0, 0.2]], np.float32),
    )


def test_a_relatedness_fusion_keeps_its_scale_and_its_figures_change_the_scores(tmp_path):
    claims, evidence = ARABIC_SENTENCES[:3], ARABIC_SENTENCES[3:6]
    fusion = _relatedness_fusion(np.random.default_rng(0))
    fusion.save(tmp_path, "stance")
    loaded = load_fusion(tmp_path, "stance", NormalizerConfig())
    assert loaded.feature_set == PAIRS_RELATEDNESS
    np.testing.assert_array_equal(loaded.scale, fusion.scale)
    assert np.allclose(loaded.scores(evidence, claims), fusion.scores(evidence, claims), atol=1e-2)
    # The standardised figures are read: another scale, other scores.
    fusion.scale = fusion.scale * 2
    assert not np.allclose(loaded.scores(evidence, claims), fusion.scores(evidence, claims))


def test_a_sentence_encoder_part_that_does_not_fit_its_feature_set_is_refused(tmp_path):
    rng = np.random.default_rng(0)
    # Weights of the baseline's width for the relatedness set; then a scale of 3 figures.
    for width, scale, problem in (
        (2048, np.zeros((2, 4), np.float32), "1540"),
        (1540, np.ones((2, 3), np.float32), "scale"),
    ):
        with pytest.raises(ValueError, match=problem):
            SentenceEncoderFusion(
                rng.normal(size=(4, width)).astype(np.float32),
                np.zeros(4, np.float32),
                np.zeros((4, 8), np.float32),
                np.zeros(4, np.float32),
                feature_set=PAIRS_RELATEDNESS,
                scale=scale,
            )
    _relatedness_fusion(rng).save(tmp_path, "stance")
    meta = tmp_path / "sentence_encoder_stance.json"
    meta.write_text(meta.read_text().replace("cosine", "dot"))
    with pytest.raises(ValueError, match="relatedness figures"):
        load_fusion(tmp_path, "stance", NormalizerConfig())


def test_a_bundle_without_fusion_part_has_none_and_two_parts_are_refused(tmp_path):
    assert load_fusion(tmp_path, "topic", NormalizerConfig()) is None
    (tmp_path / "tfidf_stance.json").write_text("{}")
    (tmp_path / "sentence_encoder_stance.json").write_text("{}")
    with pytest.raises(ValueError, match="more than one"):
        load_fusion(tmp_path, "stance", NormalizerConfig())


@pytest.mark.parametrize("classes", [2, 3])
def test_fit_fusion_stores_one_row_per_class(classes):
    from akhbar.training.finetune_config import FinetuneConfig
    from akhbar.training.fusion_fitting import fit_fusion

    texts = ARABIC_SENTENCES * 4
    y = np.arange(len(texts)) % classes
    logits = np.eye(classes)[y] + np.random.default_rng(1).normal(
        scale=2.0, size=(len(texts), classes)
    )
    cfg = FinetuneConfig(task="topic", data="d", fusion="tfidf")
    fusion, report = fit_fusion(cfg, texts, None, y, texts, None, y, logits, NormalizerConfig())
    assert fusion.weight.shape[0] == classes and fusion.stack_weight.shape == (classes, 2 * classes)
    assert report["chosen"] in ("fused", "encoder")
    assert report["fused_cv_proba"].shape == (len(texts), classes)


def test_tuned_bias_recovers_a_rare_class_the_scores_rank_but_never_pick():
    from akhbar.training.fusion_fitting import tune_bias
    from akhbar.training.metrics import macro_f1

    # Class 2 is rare and always second-ranked where it is right: argmax never picks it, a
    # bias of about +1 does, and then macro-F1 reaches 1.
    rng = np.random.default_rng(0)
    y = np.array([0] * 40 + [1] * 40 + [2] * 8)
    log_proba = np.log(np.full((len(y), 3), 0.05))
    log_proba[y == 0, 0], log_proba[y == 1, 1] = np.log(0.9), np.log(0.9)
    log_proba[y == 2, 0], log_proba[y == 2, 2] = np.log(0.6), np.log(0.35)
    log_proba += rng.normal(scale=0.01, size=log_proba.shape)
    assert macro_f1(y, log_proba.argmax(1)) < 0.7
    bias = tune_bias(log_proba, y)
    assert macro_f1(y, (log_proba + bias).argmax(1)) == 1.0
    assert bias[2] - bias[0] > 0.5


def test_decision_bias_is_reported_and_only_moves_the_stacker_when_kept():
    from akhbar.training.finetune_config import FinetuneConfig
    from akhbar.training.fusion_fitting import fit_fusion

    texts = ARABIC_SENTENCES * 6
    y = np.arange(len(texts)) % 3
    logits = np.eye(3)[y] + np.random.default_rng(2).normal(scale=2.0, size=(len(texts), 3))
    reports = {}
    for on in (False, True):
        cfg = FinetuneConfig(task="topic", data="d", fusion="tfidf", decision_bias=on)
        fusion, reports[on] = fit_fusion(
            cfg, texts, None, y, texts, None, y, logits, NormalizerConfig()
        )
        reports[on]["stack_bias"] = fusion.stack_bias
    tuned = reports[True]["decision_bias"]
    assert "decision_bias" not in reports[False] and len(tuned["bias"]) == 3
    moved = not np.allclose(reports[True]["stack_bias"], reports[False]["stack_bias"])
    assert moved == tuned["kept"] == (tuned["fused_cv_biased_nested"] > tuned["fused_cv_unbiased"])


def _toy_pairs() -> tuple[list[str], list[str], np.ndarray, np.ndarray]:
    """Claims, evidence, labels (related pairs repeat the claim, unrelated ones are another
    sentence) and uninformative encoder logits."""
    claims = ARABIC_SENTENCES * 4
    y = np.arange(len(claims)) % 2
    evidence = [
        c if related else ARABIC_SENTENCES[(i + 3) % 8]
        for i, (c, related) in enumerate(zip(claims, y))
    ]
    return claims, evidence, y, np.random.default_rng(3).normal(size=(len(claims), 2))


def test_the_sentence_encoder_side_model_is_the_best_on_validation_of_those_tried():
    from akhbar.training.finetune_config import FinetuneConfig
    from akhbar.training.fusion_fitting import SENTENCE_SIDE_MODELS, fit_fusion

    claims, evidence, y, logits = _toy_pairs()
    cfg = FinetuneConfig(task="stance", data="d", fusion="sentence_encoder")
    fusion, report = fit_fusion(
        cfg, evidence, claims, y, evidence, claims, y, logits, NormalizerConfig()
    )
    tried = report["side_models"]
    assert list(tried) == [f"{name} C={c}" for name, c in SENTENCE_SIDE_MODELS]
    assert report["side_model"] == max(tried, key=tried.get)
    assert report["side_model"].startswith(fusion.feature_set + " ")
    assert report["sentence_encoder"] == pytest.approx(tried[report["side_model"]])


def test_a_side_model_that_beats_the_stack_answers_alone_at_a_fitted_temperature(monkeypatch):
    from akhbar.training import fusion_fitting
    from akhbar.training.finetune_config import FinetuneConfig
    from akhbar.training.metrics import fit_temperature

    claims, evidence, y, logits = _toy_pairs()
    n = len(y)
    # The stack's cross-validated probabilities carry nothing: the side model alone wins.
    monkeypatch.setattr(fusion_fitting, "cross_val_predict", lambda *a, **kw: np.full((n, 2), 0.5))
    cfg = FinetuneConfig(task="stance", data="d", fusion="sentence_encoder")
    fusion, report = fusion_fitting.fit_fusion(
        cfg, evidence, claims, y, evidence, claims, y, logits, NormalizerConfig()
    )
    assert report["side_alone"] and report["stacked_cv"] < report["fused_cv"]
    assert not fusion.reads_encoder  # the encoder's logits are never read
    scores = fusion.scores(evidence, claims)
    temperature = report["side_temperature"]
    assert temperature == pytest.approx(fit_temperature(scores, y), rel=1e-3)
    np.testing.assert_allclose(
        fusion.fuse(logits, evidence, claims), scores / temperature, rtol=1e-4, atol=1e-5
    )

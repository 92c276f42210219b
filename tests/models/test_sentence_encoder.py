"""The packaged sentence encoder's pair features, with repeated claims encoded once, and the
relatedness figures beside them."""

from __future__ import annotations

import numpy as np

from akhbar.models import sentence_encoder
from akhbar.models.sentence_encoder import (
    _ClaimCache,
    embed_pairs,
    encode,
    pair_features,
    relatedness,
)

CLAIMS = ["البنك المركزي رفع أسعار الفائدة", "الحكومة خفضت ضريبة الدخل", "المنتخب فاز بالكأس"]
EVIDENCE = ["أعلن البنك المركزي رفع الفائدة.", "قررت الحكومة خفض الضريبة.", "خسر المنتخب."]


def test_pair_features_are_the_claim_evidence_products_with_cached_claims():
    features = pair_features(CLAIMS, EVIDENCE)
    u, v = encode(CLAIMS), encode(EVIDENCE)
    assert features.shape == (3, 2048)
    np.testing.assert_allclose(features, np.hstack([u, v, np.abs(u - v), u * v]), atol=1e-6)


def test_a_repeated_claim_is_encoded_once_and_the_cache_stays_bounded(monkeypatch):
    calls: list[list[str]] = []

    def counting(texts):
        calls.append(list(texts))
        return encode(texts)

    monkeypatch.setattr(sentence_encoder, "encode", counting)
    cache = _ClaimCache(size=2)
    first = cache.encode([CLAIMS[0], CLAIMS[0], CLAIMS[1]])
    again = cache.encode([CLAIMS[1], CLAIMS[0]])
    assert calls == [[CLAIMS[0], CLAIMS[1]]]  # each distinct claim once, in one call
    np.testing.assert_array_equal(again, first[[2, 0]])
    cache.encode([CLAIMS[2]])  # a third claim evicts the least recently used (CLAIMS[1])
    assert list(cache.rows) == [CLAIMS[0], CLAIMS[2]]
    assert cache.encode([]).shape == (0, 512)
    # Each cached row owns its memory: a view would keep its whole batch's array alive.
    assert all(row.base is None for row in cache.rows.values())


def test_relatedness_counts_shared_normalised_words_and_evidence_sentences():
    claims = ["رفع البنك الفائدة", "رفع البنك الفائدة", "فاز المنتخب"]
    # Diacritics and alef forms are normalised away before words are compared.
    evidence = ["رَفَعَ البنك المركزي الفائدة", "خسر الفريق.\nرفع البنك أمس", "أمطار غزيرة"]
    figures = relatedness(claims, evidence, *embed_pairs(claims, evidence))
    assert figures.shape == (3, 4)
    np.testing.assert_allclose(figures[:, 0], [3 / 4, 2 / 6, 0.0], atol=1e-6)  # Jaccard
    np.testing.assert_allclose(figures[:, 1], [1.0, 2 / 3, 0.0], atol=1e-6)  # claim covered
    np.testing.assert_array_equal(figures[:, 2], [1, 2, 1])  # evidence sentences
    u, v = encode(claims), encode(evidence)
    np.testing.assert_allclose(figures[:, 3], (u * v).sum(1), atol=1e-6)
    assert figures[0, 3] > figures[2, 3]  # the paraphrase is closer than the unrelated text

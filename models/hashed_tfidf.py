"""Hashed TF-IDF features and the linear fusion that combines them with the encoder.

At the size of encoder this project can pretrain on CPU, word and character n-grams still
carry topic signal the encoder misses. A bundle may therefore hold, per task, a hashed
TF-IDF linear model and a small stacker fitted on validation that fuses its scores with
the encoder's logits. Everything is stored as JSON + safetensors (never pickle):
hashing needs no vocabulary, so the IDF vector, the linear weights and the stacker are
plain arrays.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file, save_file
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
        return cls(word_bits=int(data["word_bits"]), char_bits=int(data["char_bits"]),
                   word_ngrams=tuple(data["word_ngrams"]), char_ngrams=tuple(data["char_ngrams"]))


class HashedTfidf:
    """Stateless hashing + a fitted IDF vector: text → l2-normalised sparse TF-IDF rows."""

    def __init__(self, settings: TfidfSettings, normalization: NormalizerConfig, idf: np.ndarray | None = None):
        self.settings, self.normalization, self.idf = settings, normalization, idf
        prep = self._prep
        self.word = HashingVectorizer(n_features=2**settings.word_bits, ngram_range=settings.word_ngrams,
                                      alternate_sign=False, norm=None, preprocessor=prep)
        self.char = HashingVectorizer(n_features=2**settings.char_bits, ngram_range=settings.char_ngrams,
                                      analyzer="char_wb", alternate_sign=False, norm=None, preprocessor=prep)

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


@dataclass
class TfidfFusion:
    """A hashed TF-IDF linear model plus the stacker that fuses it with encoder logits.

    ``scores = tfidf @ weight.T + bias``; fused logits = ``[encoder_logits, scores] @
    stack_weight.T + stack_bias`` (the stacker is a logistic regression fitted on validation,
    so its output is already calibrated: the task's temperature stays 1).
    """

    features: HashedTfidf
    weight: np.ndarray
    bias: np.ndarray
    stack_weight: np.ndarray
    stack_bias: np.ndarray

    def scores(self, texts: list[str]) -> np.ndarray:
        return np.asarray(self.features.transform(texts) @ self.weight.T) + self.bias

    def fuse(self, encoder_logits: np.ndarray, texts: list[str]) -> np.ndarray:
        stacked = np.hstack([encoder_logits, self.scores(texts)])
        return stacked @ self.stack_weight.T + self.stack_bias

    def save(self, bundle: Path, task: str) -> None:
        (bundle / f"tfidf_{task}.json").write_text(json.dumps(
            {"settings": asdict(self.features.settings), "n_labels": int(self.weight.shape[0])}, indent=2) + "\n")
        arrays = {"idf": self.features.idf, "weight": self.weight.astype(np.float16), "bias": self.bias,
                  "stack_weight": self.stack_weight, "stack_bias": self.stack_bias}
        # safetensors writes the raw buffer: scikit-learn's coefficients are Fortran-ordered.
        save_file({k: np.ascontiguousarray(v) for k, v in arrays.items()}, str(bundle / f"tfidf_{task}.safetensors"))

    @classmethod
    def load(cls, bundle: Path, task: str, normalization: NormalizerConfig) -> TfidfFusion | None:
        """The task's fusion part, or None when the bundle has none."""
        meta_file = bundle / f"tfidf_{task}.json"
        if not meta_file.is_file():
            return None
        meta = json.loads(meta_file.read_text())
        arrays = load_file(str(bundle / f"tfidf_{task}.safetensors"))
        features = HashedTfidf(TfidfSettings.from_dict(meta["settings"]), normalization, arrays["idf"])
        return cls(features, arrays["weight"].astype(np.float32), arrays["bias"], arrays["stack_weight"],
                   arrays["stack_bias"])

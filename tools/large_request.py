"""The largest legal request beside ordinary ones, and a caller who leaves: the last phases of
``make loadtest`` (:mod:`tools.loadtest`), for issue 20.

* **Beside**: 8 callers post ordinary articles (locust) while one client sends the largest
  request the limits allow (``AKHBAR_MAX_ARTICLES`` articles of ``AKHBAR_MAX_TEXT_CHARS``
  characters with ``AKHBAR_MAX_CLAIMS`` claims each). It must be answered 200, or refused at
  once (413 or 503 within :data:`MAX_REFUSAL_S`), never a 504 after a minute. Then a quarter,
  a sixteenth, ... of its articles, down to one, until the service admits one: that request
  must complete (200). Meanwhile the 8 callers' admitted p95 must stay within the load test's
  2.5 s.
* **Leave**: with no other load, the admitted size is sent again by a client that disconnects
  :data:`LEAVE_AFTER_S` seconds after sending it. The server (``akhbar serve`` and its
  children) must be idle, under :data:`IDLE_CORES` of CPU over :data:`IDLE_WINDOW_S`, within
  :data:`MAX_IDLE_AFTER_S` of the disconnect: the work of a caller who has gone is dropped.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import httpx

from tools.localserver import bearer

MAX_REFUSAL_S = 1.0
LEAVE_AFTER_S = 3.0
IDLE_CORES = 0.15
IDLE_WINDOW_S = 0.5
MAX_IDLE_AFTER_S = 2.0
BESIDE_USERS = 8
SETTLE_S = 3.0  # of the 8 callers' load before the large requests go


@dataclass
class Sent:
    """One large request: its articles, the answer's status (or the client error) and time."""

    articles: int
    status: str
    seconds: float


@dataclass
class LargeFigures:
    chars: int
    claims: int
    largest: Sent | None = None
    tried: list[Sent] = field(default_factory=list)  # down to the first one admitted
    beside_p95_ms: float | None = None
    beside_failures: int = 0
    beside_requests: int = 0
    idle_after_s: float | None = None  # from the disconnect; None: never idle within 30 s

    @property
    def admitted(self) -> Sent | None:
        return next((s for s in self.tried if s.status not in ("413", "503")), None)

    def problems(self, max_p95_ms: float) -> list[str]:
        out = []
        largest = self.largest
        if largest is None:
            out.append("the largest request was not sent")
        elif largest.status in ("413", "503"):
            if largest.seconds > MAX_REFUSAL_S:
                out.append(
                    f"the largest request was refused ({largest.status}) after "
                    f"{largest.seconds:.1f} s, not at once (at most {MAX_REFUSAL_S:g} s)"
                )
        elif largest.status != "200":
            out.append(f"the largest request got {largest.status} after {largest.seconds:.1f} s")
        admitted = self.admitted
        if admitted is None:
            out.append(
                f"no large request was admitted, not even one article of {self.chars} "
                f"characters with {self.claims} claims: lower the limits"
            )
        elif admitted.status != "200":
            out.append(
                f"the admitted request of {admitted.articles} articles got {admitted.status} "
                f"after {admitted.seconds:.1f} s"
            )
        if self.beside_failures or not self.beside_requests:
            out.append(
                f"beside the large requests: {self.beside_failures} failed of "
                f"{self.beside_requests} ordinary requests"
            )
        if self.beside_p95_ms is not None and self.beside_p95_ms > max_p95_ms:
            out.append(
                f"beside the large requests the ordinary ones' p95 was {self.beside_p95_ms:.0f} "
                f"ms (at most {max_p95_ms:.0f})"
            )
        if admitted is not None and (
            self.idle_after_s is None or self.idle_after_s > MAX_IDLE_AFTER_S
        ):
            idle = "never" if self.idle_after_s is None else f"{self.idle_after_s:.1f} s"
            out.append(
                f"after its client left, the server was idle {idle} later "
                f"(at most {MAX_IDLE_AFTER_S:g} s)"
            )
        return out

    def text(self) -> str:
        def sent(s: Sent | None) -> str:
            return "-" if s is None else f"{s.articles} articles -> {s.status} in {s.seconds:.1f} s"

        idle = "-" if self.idle_after_s is None else f"{self.idle_after_s:.1f} s"
        p95 = "-" if self.beside_p95_ms is None else f"{self.beside_p95_ms:.0f} ms"
        return "\n".join(
            [
                f"large requests ({self.chars} characters, {self.claims} claims per article): "
                f"largest {sent(self.largest)}; then {'; '.join(map(sent, self.tried)) or '-'}",
                f"beside them, {BESIDE_USERS} callers: {self.beside_requests} admitted, "
                f"{self.beside_failures} failed, p95 {p95}",
                f"a client that left after {LEAVE_AFTER_S:g} s: the server idle {idle} later",
            ]
        )


def large_articles(
    articles: list[dict[str, Any]], count: int, chars: int, claims: int
) -> list[dict[str, Any]]:
    """``count`` articles of ``chars`` characters (the given articles' texts end to end), each
    with ``claims`` claims (their titles)."""
    text = ""
    for article in articles:
        text += article["text"] + "\n\n"
        if len(text) >= chars:
            break
    text = (text * (chars // max(len(text), 1) + 1))[:chars]
    titles = [a.get("title") or a["text"][:80] for a in articles][:claims]
    titles = (titles * claims)[:claims]
    return [
        {"id": f"large-{i}", "title": titles[0], "text": text, "claims": titles}
        for i in range(count)
    ]


def post(
    url: str, articles: list[dict[str, Any]], token: str | None, timeout: float
) -> tuple[str, float]:
    """POST ``articles`` to /analyze as compact UTF-8 JSON; the status (or the client error's
    name) and the seconds it took."""
    headers = {"content-type": "application/json", **bearer(token)}
    body = json.dumps({"articles": articles}, ensure_ascii=False).encode()
    started = time.monotonic()
    try:
        status = str(
            httpx.post(url + "/analyze", content=body, headers=headers, timeout=timeout).status_code
        )
    except httpx.HTTPError as exc:
        status = type(exc).__name__
    return status, time.monotonic() - started


def seconds_until_idle(server, since: float, limit: float = 30.0) -> float | None:
    """Seconds from ``since`` (a ``time.monotonic()``) until the server used under
    :data:`IDLE_CORES` over a window of :data:`IDLE_WINDOW_S`; None within ``limit``."""
    samples = [(time.monotonic(), server.cpu_seconds())]
    while time.monotonic() - since < limit:
        time.sleep(0.1)
        now, used = time.monotonic(), server.cpu_seconds()
        samples.append((now, used))
        start = next(((t, u) for t, u in reversed(samples) if now - t >= IDLE_WINDOW_S), None)
        if start is not None and (used - start[1]) / (now - start[0]) < IDLE_CORES:
            return max(0.0, start[0] - since)
    return None


def run_large(
    server,
    articles: list[dict[str, Any]],
    settings,
    run_beside,
) -> LargeFigures:
    """Both phases against ``server``; ``run_beside(users, seconds)`` runs the ordinary
    callers and returns their level (:func:`tools.loadtest.run_load`, bound to its files)."""
    limits, token = settings.scoring, settings.api_token
    figures = LargeFigures(chars=limits.max_text_chars, claims=limits.max_claims)
    answer_timeout = settings.request_timeout + 30
    beside: dict[str, Any] = {}
    # Long enough for the largest request and an admitted one of up to a request timeout.
    seconds = int(SETTLE_S + 2 * answer_timeout)
    stop = threading.Event()

    def callers() -> None:
        beside["level"] = run_beside(BESIDE_USERS, seconds, stop)

    thread = threading.Thread(target=callers, daemon=True)
    thread.start()
    time.sleep(SETTLE_S)
    count = limits.max_articles
    largest = large_articles(articles, count, limits.max_text_chars, limits.max_claims)
    figures.largest = Sent(count, *post(server.url, largest, token, answer_timeout))
    while count >= 1:
        status, took = post(server.url, largest[:count], token, answer_timeout)
        figures.tried.append(Sent(count, status, took))
        if status not in ("413", "503"):
            break
        count = 0 if count == 1 else max(1, count // 4)
    stop.set()
    thread.join()
    level = beside["level"]
    figures.beside_requests = level.admitted.requests
    figures.beside_failures = level.admitted.failures
    figures.beside_p95_ms = level.admitted.p95_ms

    admitted = figures.admitted
    if admitted is not None:
        time.sleep(5)  # the service settles after the callers
        post(server.url, largest[: admitted.articles], token, LEAVE_AFTER_S)  # then leaves
        figures.idle_after_s = seconds_until_idle(server, time.monotonic())
    return figures

"""The service's ASGI middleware: request ids, bearer auth, body-size cap, queue cap, timeout
and one structured log line per request.

BentoML 1.4 has no request-size setting, answers its own overload and timeout errors
without ``Retry-After`` and outside user middleware, and turns exceptions raised in
middleware into 500s (``../shared/KNOWN-TRAPS.md``). So this middleware answers those cases
itself, as JSON with the request id, and never raises:

* ``X-Request-ID``: echoed when the caller sends a sane one (1-128 of ``A-Za-z0-9._:-``),
  otherwise generated; on every answer, errors included.
* Auth: with ``AKHBAR_API_TOKEN`` set, every route except :data:`OPEN_PATHS` (health,
  metrics, the OpenAPI document, the reading page and its assets) needs
  ``Authorization: Bearer <token>``, compared in constant time; else 401.
* Body size: 413 before the body is parsed, from ``Content-Length``; every body is then read
  here up to the limit, counting the bytes that really arrive, and refused as soon as it
  passes it (a chunked body, or one longer than it declared). ``Content-Length`` together
  with ``Transfer-Encoding`` gets 400 (RFC 9112) and the connection closes. A body that takes
  longer than ``body_timeout`` to arrive gets 408; it never held a queue place.
* Early refusals (401, 413) read and drop the unread body first (up to 64 MiB, within
  ``body_timeout``): a client that sends its whole body before reading (Python's urllib)
  otherwise gets a connection reset, as the server closes with unread data, not the answer.
* Not found / wrong method: Starlette's plain-text 404 and 405 become JSON errors, so every
  refusal is JSON.
* Media type: an API body that is not declared JSON (``application/json`` or a
  ``+json`` type) gets 415, a missing Content-Type included (the API takes JSON only;
  BentoML's form parser answers a malformed multipart body with a 500).
* Queue: at most ``max_queue`` API requests in progress per worker; more get 503 with
  ``Retry-After``. Within that, admission by cost (:mod:`akhbar.serving.http.admission`):
  a request that would wait longer than ``max_wait`` gets 503 at once, with the expected
  wait as ``Retry-After``; one that alone would outlast ``request_timeout`` gets 413.
* Timeout: an API request with no answer after ``request_timeout`` seconds gets 504 with
  ``Retry-After``; its articles are dropped if their batch has not started, otherwise the
  batch finishes in the background, and the service stays up. A 503 or 504 from BentoML
  itself gets the same treatment.
* Disconnect: the connection is watched while an API request runs; when its client leaves,
  the request is cancelled the same way (nobody is answered; the log says 499).
* Shutdown: a request still running when the graceful-shutdown time is up is answered
  outside this middleware, by :mod:`akhbar.serving.http.connections` (BentoML's timeout layer
  keeps the cancellation from reaching here).
* Log: one JSON line per request on the ``akhbar.access`` logger: request id, method,
  route, status, article count, latency. Never article text.
* Metrics: a request that reached the scorer is counted for this worker, and its time
  outside the scorer is the ``http`` stage (:mod:`akhbar.serving.http.metrics`).
"""

from __future__ import annotations

import asyncio
import contextvars
import hmac
import json
import logging
import re
import time
import uuid
from asyncio import FIRST_COMPLETED
from collections.abc import Callable
from typing import Any

from akhbar.serving.core.config import use
from akhbar.serving.http.admission import ADMISSION, Admission, body_cost
from akhbar.serving.http.metrics import observe_request
from akhbar.serving.http.settings import ServiceSettings

OPEN_PATHS = frozenset(
    {"/", "/livez", "/readyz", "/healthz", "/metrics", "/docs.json", "/schema.json", "/docs", "/ui"}
)
OPEN_PREFIXES = (
    "/ui/",
)  # the reading page's assets (akhbar.serving.http.ui); it calls /analyze with the token
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:\-]{1,128}")

access_log = logging.getLogger("akhbar.access")


# The settings of the server handling the current request (the reading page asks for them).
_SETTINGS: contextvars.ContextVar[ServiceSettings | None] = contextvars.ContextVar(
    "akhbar_service_settings", default=None
)
# Per-request facts the handlers add for the log line (the article count).
_REQUEST_FACTS: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar(
    "akhbar_request_facts", default=None
)


def note(**facts: Any) -> None:
    """Add facts (e.g. ``articles=3``) to the current request's log line."""
    current = _REQUEST_FACTS.get()
    if current is not None:
        current.update(facts)


def current_settings() -> ServiceSettings | None:
    """The settings of the server handling the current request; None outside one."""
    return _SETTINGS.get()


def current_request_id() -> str | None:
    current = _REQUEST_FACTS.get()
    return current.get("request_id") if current else None


def is_open(path: str) -> bool:
    return path in OPEN_PATHS or path.startswith(OPEN_PREFIXES)


def _header(scope: dict, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return value.decode("latin-1")
    return None


def _is_json(headers: list[tuple[bytes, bytes]]) -> bool:
    return any(k.lower() == b"content-type" and b"json" in v.lower() for k, v in headers)


def _not_routed(status: int, scope: dict) -> str:
    """A 404's or 405's message: the method and path (not content), and the API's routes."""
    where = f"{scope.get('method')} {scope.get('path', '')[:200]}"
    routes = "POST /analyze, /topic, /summarize or /stance"
    if status == 404:
        return f"no such route: {where}; the API is {routes}"
    return f"method not allowed: {where}; the API is {routes}"


def _is_json_type(content_type: str) -> bool:
    """``application/json`` or a structured ``+json`` type (RFC 6839), parameters removed."""
    return content_type == "application/json" or (
        content_type.startswith("application/") and content_type.endswith("+json")
    )


class _TooLarge(Exception):
    """The body passed the limit; ``more`` when the client has more of it to send."""

    def __init__(self, more: bool) -> None:
        self.more = more


CLIENT_GONE = 499  # the access log's status for a request whose client left before its answer


async def _disconnected(receive: Callable | None) -> None:
    """Return once ``receive`` says the client has gone; never, without one."""
    if receive is None:
        await asyncio.Event().wait()
    while (await receive())["type"] != "http.disconnect":
        pass


DRAIN_BYTES = 64 * 1024 * 1024  # of a refused body, read and dropped before answering


class AkhbarMiddleware:
    """Pure ASGI middleware; settings are read when it is built (server start-up).

    Parameters
    ----------
    app: the ASGI app it wraps.
    settings: a callable returning :class:`ServiceSettings` (default: read the environment).
    admission: the worker's work in flight and service rate (shared with its batcher).
    """

    def __init__(
        self,
        app: Any,
        settings: Callable[[], ServiceSettings] = ServiceSettings.from_env,
        admission: Admission = ADMISSION,
    ):
        self.app = app
        self.settings = settings()
        self.admission = admission
        self.in_progress = 0

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        given = _header(scope, b"x-request-id")
        request_id = given if given and _REQUEST_ID.fullmatch(given) else uuid.uuid4().hex
        facts: dict[str, Any] = {"request_id": request_id, "articles": None, "status": None}
        tokens = (
            _REQUEST_FACTS.set(facts),
            _SETTINGS.set(self.settings),
            use(self.settings.scoring),
        )
        path = scope.get("path", "")
        try:
            await self._handle(scope, receive, send, path, facts)
        finally:
            for token in reversed(tokens):
                token.var.reset(token)
            seconds = time.perf_counter() - started
            if "scorer_s" in facts:  # the route handed its articles to the scorer
                observe_request(seconds, facts["scorer_s"])
            line = {
                "request_id": request_id,
                "method": scope.get("method"),
                "route": path,
                "status": facts["status"],
                "articles": facts["articles"],
                "latency_ms": round(seconds * 1000, 1),
            }
            access_log.log(logging.DEBUG if is_open(path) else logging.INFO, json.dumps(line))

    async def _handle(
        self, scope: dict, receive: Callable, send: Callable, path: str, facts: dict
    ) -> None:
        settings = self.settings
        request_id = facts["request_id"]
        replaced = {
            "pending": None,
            "allow": [],
        }  # a downstream 404/405/503/504 whose body we replace

        async def send_with_id(message: dict) -> None:
            if message["type"] == "http.response.start":
                facts["status"] = message["status"]
                headers = [
                    (k, v) for k, v in message.get("headers", []) if k.lower() != b"x-request-id"
                ]
                message = {**message, "headers": [*headers, (b"x-request-id", request_id.encode())]}
                status = message["status"]
                if status in (503, 504) and not is_open(path):
                    replaced["pending"] = status
                    return
                if status in (404, 405) and not _is_json(headers):  # Starlette's plain-text ones
                    replaced["pending"] = status
                    replaced["allow"] = [(k, v) for k, v in headers if k.lower() == b"allow"]
                    return
            elif message["type"] == "http.response.body" and replaced["pending"]:
                if not message.get("more_body"):
                    status = replaced["pending"]
                    replaced["pending"] = None
                    if status in (404, 405):
                        await self._error(
                            send,
                            status,
                            _not_routed(status, scope),
                            request_id,
                            facts=facts,
                            extra=replaced["allow"],
                        )
                        return
                    problem = (
                        "the service is busy"
                        if status == 503
                        else f"the request took longer than {settings.request_timeout:g} s"
                    )
                    await self._error(
                        send, status, f"{problem}; retry later", request_id, retry=True, facts=facts
                    )
                return
            await send(message)

        if not is_open(path) and settings.api_token and not self._authorized(scope):
            if scope.get("method") in BODY_METHODS:
                await self._drain(receive)
            await self._error(
                send,
                401,
                "missing or wrong bearer token: send the header "
                "'Authorization: Bearer <token>' with the token the service was started with "
                "(AKHBAR_API_TOKEN)",
                request_id,
                facts=facts,
                extra=[(b"www-authenticate", b'Bearer realm="akhbar"')],
            )
            return

        body = b""
        if scope.get("method") in BODY_METHODS:
            length = _header(scope, b"content-length")
            if length is not None and _header(scope, b"transfer-encoding") is not None:
                # RFC 9112 6.3: the two framings disagree, and the server's parser would
                # follow the chunks past the length this middleware checked.
                await self._error(
                    send,
                    400,
                    "a request must not carry both Content-Length and Transfer-Encoding "
                    "(RFC 9112); send one of them",
                    request_id,
                    facts=facts,
                    extra=[(b"connection", b"close")],
                )
                return
            if length is not None:
                if not length.strip().isdigit():
                    await self._error(
                        send,
                        400,
                        f"invalid Content-Length header {length!r}",
                        request_id,
                        facts=facts,
                    )
                    return
                if int(length) > settings.max_body_bytes:
                    await self._too_large(send, receive, int(length), request_id, facts)
                    return
            # Read the body here, up to the limit, counting the bytes that really arrive
            # (chunked or not), then replay it; the request takes a queue place only after.
            try:
                replay, body = await asyncio.wait_for(
                    self._buffered(receive, settings.max_body_bytes), settings.body_timeout
                )
            except _TooLarge as exc:
                await self._too_large(send, receive, None, request_id, facts, drain=exc.more)
                return
            except TimeoutError:
                await self._error(
                    send,
                    408,
                    f"the request body did not arrive within {settings.body_timeout:g} s "
                    "(AKHBAR_BODY_TIMEOUT); send it whole, without pauses",
                    request_id,
                    facts=facts,
                    extra=[(b"connection", b"close")],
                )
                return
            receive, gone = replay, receive  # after the body, the server's receive says only
            # that the client has disconnected (or that the answer is complete)
        else:
            gone = None

        if is_open(path):
            await self.app(scope, receive, send_with_id)
            return

        content_type = (_header(scope, b"content-type") or "").split(";")[0].strip().lower()
        if scope.get("method") in BODY_METHODS and not _is_json_type(content_type):
            # The API takes JSON only. BentoML would also parse form bodies (for file inputs,
            # which akhbar has none of) and answers a malformed one with a 500.
            await self._error(
                send,
                415,
                f"Content-Type {content_type or '(none)'} is not accepted: send the articles "
                "as JSON with 'Content-Type: application/json'",
                request_id,
                facts=facts,
            )
            return

        if self.in_progress >= settings.max_queue:
            await self._error(
                send,
                503,
                f"the service is busy: {self.in_progress} requests are in progress "
                f"(limit {settings.max_queue}, AKHBAR_MAX_QUEUE); retry later",
                request_id,
                retry=True,
                facts=facts,
            )
            return
        cost = body_cost(body, settings.scoring)
        decision = self.admission.decide(cost, settings.max_wait, settings.request_timeout)
        if not decision.admitted:
            await self._error(
                send,
                decision.status,
                decision.reason,
                request_id,
                retry=decision.status == 503,
                retry_after=decision.retry_after,
                facts=facts,
            )
            return
        self.in_progress += 1
        self.admission.admit(cost)
        try:
            await self._with_timeout(scope, receive, gone, send_with_id, send, request_id, facts)
        finally:
            self.in_progress -= 1
            self.admission.release(cost)

    async def _with_timeout(
        self, scope, receive, gone, send_with_id, send, request_id, facts
    ) -> None:
        """Run the app; answer 504 past ``request_timeout``, and cancel it when the client
        disconnects first (``gone``, the server's receive, returns ``http.disconnect``), so
        that the work of a caller who has left is dropped, not finished."""
        settings = self.settings
        state = {"started": False, "timed_out": False}

        async def guarded(message: dict) -> None:
            if state["timed_out"]:
                return  # we answered 504 already
            if message["type"] == "http.response.start":
                state["started"] = True
            await send_with_id(message)

        task = asyncio.ensure_future(self.app(scope, receive, guarded))
        watch = asyncio.ensure_future(_disconnected(gone))
        try:
            done, _ = await asyncio.wait(
                {task, watch}, timeout=settings.request_timeout, return_when=FIRST_COMPLETED
            )
        except asyncio.CancelledError:  # the server is stopping
            task.cancel()
            raise
        finally:
            watch.cancel()
        if task in done or state["started"]:
            await task  # re-raises what the app raised, as without this middleware
            return
        if watch in done:  # nobody is left to answer
            facts["status"] = CLIENT_GONE
            task.cancel()
            try:
                await task
            except BaseException:  # noqa: B036 - cancelled work may end in any way; nobody waits
                pass
            return
        state["timed_out"] = True
        task.cancel()
        try:
            await task
        except BaseException:  # noqa: B036 - the cancelled work may end in any way; we answer 504
            pass
        await self._error(
            send,
            504,
            f"the request took longer than {settings.request_timeout:g} s "
            "(AKHBAR_REQUEST_TIMEOUT); retry later or send fewer or shorter articles",
            request_id,
            retry=True,
            facts=facts,
        )

    def _authorized(self, scope: dict) -> bool:
        header = _header(scope, b"authorization") or ""
        scheme, _, token = header.partition(" ")
        expected = self.settings.api_token or ""
        return scheme.lower() == "bearer" and hmac.compare_digest(
            token.strip().encode(), expected.encode()
        )

    @staticmethod
    async def _buffered(receive: Callable, limit: int) -> tuple[Callable, bytes]:
        """The body, read whole (up to ``limit`` bytes), and a ``receive`` that replays it."""
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            more = message.get("more_body", False)
            if size > limit:
                raise _TooLarge(more)
            chunks.append(chunk)
        body, replayed = b"".join(chunks), False

        async def replay() -> dict:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        return replay, body

    async def _drain(self, receive: Callable) -> None:
        """Read and drop what remains of a refused body: at most :data:`DRAIN_BYTES`, within
        ``body_timeout``."""

        async def drain() -> None:
            drained = 0
            while drained < DRAIN_BYTES:
                message = await receive()
                drained += len(message.get("body", b""))
                if message["type"] == "http.disconnect" or not message.get("more_body"):
                    return

        try:
            await asyncio.wait_for(drain(), self.settings.body_timeout)
        except TimeoutError:
            pass

    async def _too_large(
        self,
        send: Callable,
        receive: Callable,
        length: int | None,
        request_id: str,
        facts: dict,
        drain: bool = True,
    ) -> None:
        if drain:
            await self._drain(receive)
        limit = self.settings.max_body_bytes
        size = f"{length} bytes" if length is not None else "larger than that"
        await self._error(
            send,
            413,
            f"request body too large: the limit is {limit} bytes (AKHBAR_MAX_BODY_BYTES) "
            f"and this one is {size}; send fewer or shorter articles per request",
            request_id,
            facts=facts,
        )

    async def _error(
        self,
        send: Callable,
        status: int,
        message: str,
        request_id: str,
        *,
        retry: bool = False,
        retry_after: int = 0,
        facts: dict,
        extra: list[tuple[bytes, bytes]] = (),
    ) -> None:
        facts["status"] = status
        body = json.dumps({"error": message}).encode()
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"x-request-id", request_id.encode()),
            *extra,
        ]
        if retry:
            seconds = retry_after or self.settings.retry_after
            headers.append((b"retry-after", str(seconds).encode()))
        if status == 413:
            headers.append(
                (b"connection", b"close")
            )  # the unread body must not become the next request
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

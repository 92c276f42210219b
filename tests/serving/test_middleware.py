"""The ASGI middleware alone, around tiny Starlette apps: what the service tests cannot
provoke cheaply (a 503 from BentoML's batcher, nested in-process calls)."""

from __future__ import annotations

import asyncio
import json

import pytest
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from akhbar.serving.core.config import ScoringConfig
from akhbar.serving.http.admission import Admission, body_cost
from akhbar.serving.http.middleware import AkhbarMiddleware
from akhbar.serving.http.settings import ServiceSettings

STALL = b"<stall>"  # a chunk _raw's client never finishes sending


def _wrapped(app, **settings) -> TestClient:
    return TestClient(AkhbarMiddleware(app, settings=lambda: ServiceSettings(**settings)))


def test_a_downstream_503_gets_a_clear_body_retry_after_and_the_request_id():
    async def overloaded(request):
        return JSONResponse({"error": "An unexpected error has occurred"}, status_code=503)

    client = _wrapped(
        Starlette(routes=[Route("/analyze", overloaded, methods=["POST"])]), retry_after=9
    )
    response = client.post("/analyze", json={}, headers={"x-request-id": "r-1"})
    assert response.status_code == 503
    assert response.headers["retry-after"] == "9" and response.headers["x-request-id"] == "r-1"
    assert "busy" in response.json()["error"]


async def _raw(
    wrapped,
    headers: list[tuple[bytes, bytes]],
    chunks: list[bytes],
    leave_after: float | None = None,
) -> tuple:
    """One POST through the middleware as a server would hand it over: ``headers`` as sent,
    the body in ``chunks`` (whatever Content-Length said); after the body, ``receive`` says
    ``http.disconnect`` once the answer is complete, or ``leave_after`` seconds after the body
    when the client leaves. Returns (status, headers, body), or None when nothing was sent."""
    scope = {
        "type": "http",
        "http_version": "1.1",
        "method": "POST",
        "path": "/echo",
        "raw_path": b"/echo",
        "query_string": b"",
        "headers": headers,
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 3000),
        "scheme": "http",
    }
    pending = [
        {"type": "http.request", "body": c, "more_body": i < len(chunks) - 1}
        for i, c in enumerate(chunks)
    ]
    sent, answered = [], asyncio.Event()

    async def receive():
        if pending and pending[0]["body"] == STALL:
            await asyncio.sleep(3600)  # a client that stops sending mid-body
        if pending:
            return pending.pop(0)
        if leave_after is None:
            await answered.wait()
        else:
            await asyncio.sleep(leave_after)
        return {"type": "http.disconnect"}

    async def send(message):
        sent.append(message)
        if message["type"] == "http.response.body" and not message.get("more_body"):
            answered.set()

    await wrapped(scope, receive, send)
    if not sent:
        return None
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return start["status"], dict(start["headers"]), body


def _echo(admission: Admission | None = None, **settings) -> AkhbarMiddleware:
    """The middleware around an app that answers how many body bytes it got."""

    async def echo(request):
        return JSONResponse({"received": len(await request.body())})

    return AkhbarMiddleware(
        Starlette(routes=[Route("/echo", echo, methods=["POST"])]),
        settings=lambda: ServiceSettings(**settings),
        admission=admission or Admission(),
    )


@pytest.mark.anyio
async def test_the_body_limit_counts_the_bytes_that_arrive_not_the_headers():
    wrapped = _echo(max_body_bytes=100)
    json_type = (b"content-type", b"application/json")
    # Both framings: refused before a byte is read, and the connection closes.
    status, headers, body = await _raw(
        wrapped,
        [json_type, (b"content-length", b"5"), (b"transfer-encoding", b"chunked")],
        [b"x" * 1000],
    )
    assert status == 400 and headers[b"connection"] == b"close"
    assert "Transfer-Encoding" in json.loads(body)["error"]
    # A body longer than its Content-Length, past the limit: 413 on what really arrived.
    status, _, body = await _raw(
        wrapped, [json_type, (b"content-length", b"5")], [b"x" * 60, b"x" * 60]
    )
    assert status == 413 and "AKHBAR_MAX_BODY_BYTES" in json.loads(body)["error"]
    # Within the limit, the app gets the whole body, replayed.
    status, _, body = await _raw(wrapped, [json_type, (b"content-length", b"80")], [b"x" * 80])
    assert (status, json.loads(body)) == (200, {"received": 80})
    assert wrapped.in_progress == 0


@pytest.mark.anyio
async def test_a_body_that_stops_arriving_gets_408_without_a_queue_place():
    wrapped = _echo(body_timeout=0.2, max_queue=1)
    headers = [(b"content-type", b"application/json"), (b"content-length", b"10")]
    slow = asyncio.ensure_future(_raw(wrapped, headers, [b"x" * 5, STALL]))
    await asyncio.sleep(0.05)
    assert wrapped.in_progress == 0  # while its body trickles, it holds no place
    status, _, body = await _raw(wrapped, headers, [b"x" * 10])  # the one place is free
    assert status == 200
    status, headers_sent, body = await slow
    assert status == 408 and headers_sent[b"connection"] == b"close"
    assert "AKHBAR_BODY_TIMEOUT" in json.loads(body)["error"]


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("content_type", "status"),
    [
        (b"application/json", 200),
        (b"application/json; charset=utf-8", 200),
        (b"application/merge-patch+json", 200),
        (b"text/plain", 415),
        (b"application/xml", 415),
        (b"application/x-www-form-urlencoded", 415),
        (b"multipart/form-data; boundary=x", 415),
        (None, 415),
    ],
)
async def test_only_json_bodies_reach_the_api(content_type: bytes | None, status: int):
    headers = [(b"content-length", b"2")]
    if content_type is not None:
        headers.append((b"content-type", content_type))
    answer, _, body = await _raw(_echo(), headers, [b"{}"])
    assert answer == status
    if status == 415:
        error = json.loads(body)["error"]
        assert (content_type or b"(none)").split(b";")[0].decode() in error
        assert "application/json" in error


@pytest.fixture
def anyio_backend():
    return "asyncio"


def _articles(chars: int, claims: int = 0, count: int = 1) -> bytes:
    article = {"text": "خ" * chars, "claims": ["ادعاء"] * claims}
    return json.dumps({"articles": [article] * count}).encode()


def test_a_request_is_priced_by_its_characters_and_claims():
    limits = ScoringConfig(max_text_chars=1000, max_claims=4, max_articles=2)
    assert body_cost(_articles(500), limits) == 500
    assert body_cost(_articles(500, claims=2, count=2), limits) == 2 * (500 + 2 * 1000)
    # Beyond the limits, priced at them: validation answers those with a 400 naming the field.
    assert body_cost(_articles(5000, claims=10_000, count=9), limits) == 2 * (1000 + 4 * 1000)
    assert body_cost(b"not json", limits) == body_cost(b'{"articles": 5}', limits) == 0
    assert body_cost(b"[" * 100_000 + b"]" * 100_000, limits) == 0  # too deep: no exception


def test_admission_refuses_by_expected_wait_and_by_the_requests_own_cost():
    admission = Admission()
    assert admission.decide(10**9, max_wait=1, timeout=60).admitted  # no rate yet: count only
    admission.record_batch(10_000, 1.0)
    admission.record_batch(30_000, 1.0)  # a moving average: 0.3 * 30,000 + 0.7 * 10,000
    assert admission.rate == pytest.approx(16_000)
    admission.admit(48_000)  # 3 s of work ahead
    busy = admission.decide(1_000, max_wait=1, timeout=60)
    assert (busy.status, busy.retry_after) == (503, 3) and "AKHBAR_MAX_WAIT" in busy.reason
    assert admission.decide(1_000, max_wait=5, timeout=60).admitted
    huge = admission.decide(16_000 * 61, max_wait=5, timeout=60)
    assert huge.status == 413 and "AKHBAR_REQUEST_TIMEOUT" in huge.reason
    admission.release(48_000)
    assert admission.in_flight == 0 and admission.decide(1_000, max_wait=1, timeout=60).admitted


@pytest.mark.anyio
async def test_the_middleware_sheds_by_cost_with_the_expected_wait_as_retry_after():
    admission = Admission()
    admission.record_batch(1_000, 1.0)  # 1,000 units a second
    wrapped = _echo(admission, max_wait=1.0)
    json_type = (b"content-type", b"application/json")
    small = _articles(500)
    status, _, body = await _raw(wrapped, [json_type], [small])
    assert status == 200 and admission.in_flight == 0  # released after the answer
    admission.admit(2_500)  # another request's 2.5 s of work in flight
    status, headers, body = await _raw(wrapped, [json_type], [small])
    assert status == 503 and headers[b"retry-after"] == b"3"
    assert "2.5 s of work" in json.loads(body)["error"]
    admission.release(2_500)
    status, headers, body = await _raw(wrapped, [json_type], [_articles(70_000, claims=16)])
    assert status == 413 and "fewer or shorter" in json.loads(body)["error"]
    assert wrapped.in_progress == 0 and admission.in_flight == 0


@pytest.mark.anyio
async def test_the_work_of_a_client_that_leaves_is_cancelled_and_its_place_freed():
    admission, started, cancelled = Admission(), asyncio.Event(), asyncio.Event()

    async def slow(request):
        await request.body()
        started.set()
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return JSONResponse({})

    wrapped = AkhbarMiddleware(
        Starlette(routes=[Route("/echo", slow, methods=["POST"])]),
        settings=lambda: ServiceSettings(),
        admission=admission,
    )
    json_type = (b"content-type", b"application/json")
    leaving = asyncio.ensure_future(_raw(wrapped, [json_type], [_articles(500)], leave_after=0.2))
    await asyncio.wait_for(started.wait(), 5)
    assert wrapped.in_progress == 1 and admission.in_flight == 500
    assert await asyncio.wait_for(leaving, 5) is None  # nobody to answer
    assert cancelled.is_set()
    assert wrapped.in_progress == 0 and admission.in_flight == 0

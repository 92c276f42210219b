"""The connection guard on a live service (issue 20, rows 4 and 7): connections that send
nothing, or their headers too slowly, are closed; beyond the connection limit a new one is
refused at once; descriptors never run out, even under a lowered ``ulimit -n``. Bodies that
trickle in take no queue place and end in 408 (row 1). And the answer to a request cut off at
shutdown (row 5; the live check is in test_faults.py)."""

from __future__ import annotations

import asyncio
import json
import select
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from serving_support import AKHBAR, server_env

from akhbar.serving.http.connections import answer_on_shutdown
from tools.localserver import local_server

HEADER_TIMEOUT_S = 3
BODY_TIMEOUT_S = 3
QUEUE = 4  # API requests in progress per worker
NOFILE = 1024  # the worker's descriptor limit; the guard keeps 256 of it in reserve
LIMIT = NOFILE - 256


@pytest.fixture(scope="module")
def server(tiny_bundle, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("connections")
    env = server_env(
        tiny_bundle,
        tmp,
        AKHBAR_HEADER_TIMEOUT=str(HEADER_TIMEOUT_S),
        AKHBAR_BODY_TIMEOUT=str(BODY_TIMEOUT_S),
        AKHBAR_MAX_QUEUE=str(QUEUE),
    )
    command = ["prlimit", f"--nofile={NOFILE}:{NOFILE}", str(AKHBAR), "serve"]
    with local_server(env, tmp / "server.log", command=command) as server:
        yield server


def _port(server) -> int:
    return int(server.url.rsplit(":", 1)[1])


def _closed_after(s: socket.socket, limit: float) -> tuple[float, bytes]:
    """Seconds until the server closed ``s`` (at most ``limit``) and what it sent first."""
    started, data = time.monotonic(), b""
    s.settimeout(limit)
    try:
        while chunk := s.recv(65536):
            data += chunk
    except TimeoutError:
        pass
    return time.monotonic() - started, data


def test_silent_slow_and_idle_connections_are_closed_at_the_header_deadline(server):
    port = _port(server)
    silent = socket.create_connection(("127.0.0.1", port))
    slow = socket.create_connection(("127.0.0.1", port))
    idle = socket.create_connection(("127.0.0.1", port))
    idle.sendall(b"GET /livez HTTP/1.1\r\nHost: t\r\n\r\n")
    assert idle.recv(65536).startswith(b"HTTP/1.1 200")
    # A slowloris: a header line every half second, never the blank line that ends them.
    slow.sendall(b"POST /analyze HTTP/1.1\r\nHost: t\r\n")
    started = time.monotonic()
    for i in range(4 * HEADER_TIMEOUT_S):
        try:
            slow.sendall(f"X-Slow-{i}: 1\r\n".encode())
        except OSError:
            break
        time.sleep(0.5)
    waited, answer = _closed_after(slow, 10)
    assert time.monotonic() - started < HEADER_TIMEOUT_S + 3, "the slow head was not cut off"
    assert answer.startswith(b"HTTP/1.1 408") and b"AKHBAR_HEADER_TIMEOUT" in answer
    for s in (silent, idle):  # by now both are past the deadline (idle may hold the body's rest)
        waited, answer = _closed_after(s, HEADER_TIMEOUT_S + 10)
        assert waited < HEADER_TIMEOUT_S + 10 and b"HTTP/1.1" not in answer
        s.close()
    slow.close()
    assert httpx.get(server.url + "/livez", timeout=10).status_code == 200


def test_bodies_that_trickle_in_hold_no_queue_place_and_end_in_408_at_the_body_deadline(server):
    """Issue 20, row 1: 66 connections, no token, each declaring a body and sending it a byte
    at a time, held every queue place (64), and every API request got 503 for 60 s. Here
    three times the queue's worth of such bodies are arriving while a normal request is made:
    it is answered 200; each slow one gets 408 at the body deadline, counted from its head,
    however steadily its bytes come."""
    port, slow = _port(server), []
    head = (
        b"POST /analyze HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
        b"Content-Length: 1000\r\n\r\n"
    )
    for _ in range(3 * QUEUE):
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall(head + b'{"articles": [')
        slow.append(s)
    started = time.monotonic()
    answers: dict[socket.socket, tuple[float, bytes]] = {}

    def answer(s: socket.socket) -> tuple[float, bytes]:
        """When ``s`` was answered, and what it got before the server closed it. A byte sent
        just after the server closed makes it reset the connection: after the answer, so
        the reset ends it as a close would."""
        when, data = time.monotonic() - started, b""
        s.settimeout(5)
        try:
            while chunk := s.recv(65536):
                data += chunk
        except (TimeoutError, ConnectionResetError):
            pass
        return when, data

    def trickle(until: float, done=lambda: False) -> None:
        """A byte on every slow connection not yet answered, every 0.3 s, until ``until``
        (monotonic), ``done()`` or all are answered; an answer is read to the connection's end."""
        while len(answers) < len(slow) and time.monotonic() < until and not done():
            readable, _, _ = select.select([s for s in slow if s not in answers], [], [], 0.3)
            for s in readable:
                answers[s] = answer(s)
            for s in slow:
                if s not in answers:
                    try:
                        s.sendall(b" ")
                    except OSError:  # closed between the select and the send: read it
                        answers[s] = answer(s)

    try:
        trickle(until=started + 1)
        assert not answers, "a slow body was answered before its deadline"
        with ThreadPoolExecutor(1) as pool:
            normal = pool.submit(
                httpx.post,
                server.url + "/topic",
                json={"articles": [{"text": "افتتح المعرض أبوابه اليوم في العاصمة."}]},
                timeout=30,
            )
            trickle(until=started + BODY_TIMEOUT_S - 0.5, done=normal.done)
            assert normal.done(), "a normal request waited behind the slow bodies"
            response = normal.result()
        assert response.status_code == 200, response.text[:300]
        assert not answers, "a slow body was answered before its deadline"
        print(f"the normal request answered 200 {time.monotonic() - started:.1f} s in")
        trickle(until=started + BODY_TIMEOUT_S + 10)
    finally:
        for s in slow:
            s.close()
    assert len(answers) == len(slow), f"{len(slow) - len(answers)} slow bodies never answered"
    for when, data in answers.values():
        assert data.startswith(b"HTTP/1.1 408"), data[:300]
        assert b"AKHBAR_BODY_TIMEOUT" in data and b"connection: close" in data.lower()
        assert BODY_TIMEOUT_S - 0.5 < when < BODY_TIMEOUT_S + 3, when
    print(f"408s after {sorted(round(w, 1) for w, _ in answers.values())} s")


def test_beyond_the_connection_limit_new_connections_are_refused_at_once_and_service_recovers(
    server,
):
    port, held = _port(server), []
    try:
        for _ in range(LIMIT + 50):
            held.append(socket.create_connection(("127.0.0.1", port)))
        started = time.monotonic()
        extra = socket.create_connection(("127.0.0.1", port))
        waited, answer = _closed_after(extra, 5)
        extra.close()
        assert waited < 2, "a connection beyond the limit was not refused at once"
        assert answer.startswith(b"HTTP/1.1 503") and b"retry-after: " in answer
        assert b"AKHBAR_MAX_CONNECTIONS" in answer
        # The held connections are closed at the header deadline, and the service answers.
        deadline = started + HEADER_TIMEOUT_S + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(server.url + "/livez", timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        assert time.monotonic() < deadline, "the service did not recover after the deadline"
        assert time.monotonic() - started < HEADER_TIMEOUT_S + 10
    finally:
        for s in held:
            s.close()
    log = Path(server.log).read_text(encoding="utf-8", errors="replace")
    assert "Too many open files" not in log and "Traceback" not in log
    assert f"lowered to {LIMIT}" in log


@pytest.mark.anyio
async def test_a_request_cut_off_by_shutdown_gets_a_json_503_with_retry_after_not_a_500():
    """uvicorn cancels what still runs when its graceful-shutdown time is up."""
    started, sent = asyncio.Event(), []

    async def endless(scope, receive, send):
        started.set()
        await asyncio.sleep(3600)

    async def send(message):
        sent.append(message)

    app = answer_on_shutdown(endless, retry_after=7)
    request = asyncio.ensure_future(app({"type": "http"}, None, send))
    await asyncio.wait_for(started.wait(), 5)
    request.cancel()  # what uvicorn does to the request's task
    await request
    start, body = sent
    headers = dict(start["headers"])
    assert start["status"] == 503 and headers[b"retry-after"] == b"7"
    assert headers[b"connection"] == b"close"
    assert "AKHBAR_SHUTDOWN_GRACE" in json.loads(body["body"])["error"]


@pytest.fixture
def anyio_backend():
    return "asyncio"

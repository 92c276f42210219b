"""Connection guard: a bounded number of connections per worker, each of which must finish
sending a request's head (request line and headers) within ``header_timeout`` seconds.

Neither uvicorn nor BentoML bounds these. uvicorn has no header-read timeout, its keep-alive
timer starts only after a first response, and BentoML passes no connection limit; so 500
silent connections, or 300 sending a header line every 5 s, were held for as long as their
clients liked, and 20,400 idle ones exhausted the worker's descriptors until normal requests
timed out (issue 20). The guard is uvicorn's own HTTP/1.1 protocol (h11) with these additions:

* **Deadline for the head.** A timer starts when a connection opens, when a keep-alive
  connection has answered a request, and when the first byte of a new request arrives; it
  stops once the whole head is in. When it fires the connection closes, with a JSON 408 if
  part of a request arrived. The body has its own timeout in the middleware
  (``AKHBAR_BODY_TIMEOUT``), which sees it arrive.
* **Connection limit.** Beyond ``max_connections`` open connections a new one is answered a
  JSON 503 with ``Retry-After`` and closed at once, so its descriptor is freed as soon as it
  was taken. The limit is kept below the process's descriptor limit (``RLIMIT_NOFILE``),
  leaving :data:`DESCRIPTOR_RESERVE` for models, logs and the server's own sockets.
* **Requests per connection.** A connection carries at most ``keepalive_requests`` requests:
  the answer to the last says ``Connection: close``, and the client opens a new connection
  for its next request, which may go to another worker. So a long-lived connection (a
  proxy's pool, opened while a second worker was still loading) does not stay on one worker
  for good (:mod:`akhbar.serving.http.reuseport`). A reconnection costs well under a
  millisecond on a local network, against tens of milliseconds or more of scoring for each
  of the requests before it.

It also owns shutdown. Plain ``bentoml serve`` (a Bento, a container) has a shutdown bound
only as a command-line flag (``--timeout-graceful-shutdown``, which ``akhbar serve`` passes):
without it uvicorn waits for requests in flight for ever after SIGTERM, so when the flag is
absent the first connection sets uvicorn's bound to ``AKHBAR_SHUTDOWN_GRACE``. When the bound
is reached uvicorn cancels the requests still running and answers them with a plain-text 500;
BentoML's timeout layer keeps that cancellation from the service's middleware, so the
protocol wraps the whole application (:func:`answer_on_shutdown`) and answers a JSON 503 with
``Retry-After`` instead.

BentoML builds uvicorn's configuration itself and offers no way to name the protocol class,
so :func:`install` points uvicorn's ``auto`` protocol at this one; the service calls it when
the serving process imports it, before BentoML starts uvicorn.
"""

from __future__ import annotations

import asyncio
import json
import logging
import resource

import h11
import uvicorn.config
from uvicorn.protocols.http.h11_impl import H11Protocol

from akhbar.serving.http import reuseport
from akhbar.serving.http.settings import ServiceSettings

DESCRIPTOR_RESERVE = 256
logger = logging.getLogger("akhbar.connections")


def _response(status: int, reason: bytes, message: str, headers: bytes = b"") -> bytes:
    body = json.dumps({"error": message}).encode()
    return (
        b"HTTP/1.1 %d %s\r\ncontent-type: application/json\r\ncontent-length: %d\r\n"
        b"connection: close\r\n%s\r\n" % (status, reason, len(body), headers)
    ) + body


def answer_on_shutdown(app, retry_after: int):
    """``app``, answering a request cancelled before its answer started (uvicorn's shutdown
    bound) with a JSON 503, ``Retry-After`` and ``Connection: close``."""

    async def guarded(scope: dict, receive, send) -> None:
        started = False

        async def tracked(message: dict) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await app(scope, receive, tracked)
        except asyncio.CancelledError:
            if scope["type"] != "http" or started:
                raise
            body = json.dumps(
                {
                    "error": "the service is shutting down and could not finish this request "
                    "within its grace period (AKHBAR_SHUTDOWN_GRACE); retry later"
                }
            ).encode()
            headers = [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"retry-after", str(retry_after).encode()),
                (b"connection", b"close"),
            ]
            await send({"type": "http.response.start", "status": 503, "headers": headers})
            await send({"type": "http.response.body", "body": body})

    return guarded


def connection_limit(wanted: int) -> int:
    """``wanted``, lowered to fit under the soft descriptor limit with the reserve left."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return wanted
    return max(1, min(wanted, soft - DESCRIPTOR_RESERVE))


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with a deadline for each request's head, a connection limit and
    a cap on the requests one connection carries; the class attributes are set by
    :func:`install`."""

    header_timeout: float = 10.0
    max_connections: int = 1000
    keepalive_requests: int = 100
    retry_after: int = 5
    shutdown_grace: int = 30

    _deadline: asyncio.TimerHandle | None = None
    _refused = False

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.app = self._counted(answer_on_shutdown(self.app, self.retry_after))
        self.requests = 0

    def _counted(self, app):
        """``app``, answering this connection's ``keepalive_requests``-th request with
        ``Connection: close`` (uvicorn then closes the connection after it)."""

        async def counted(scope: dict, receive, send) -> None:
            self.requests += 1
            if scope["type"] != "http" or self.requests < self.keepalive_requests:
                await app(scope, receive, send)
                return

            async def closing(message: dict) -> None:
                if message["type"] == "http.response.start":
                    headers = [
                        h for h in message.get("headers", []) if h[0].lower() != b"connection"
                    ]
                    message = {**message, "headers": [*headers, (b"connection", b"close")]}
                await send(message)

            await app(scope, receive, closing)

        return counted

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        if len(self.connections) >= self.max_connections:
            self._refused = True
            transport.write(
                _response(
                    503,
                    b"Service Unavailable",
                    f"the service has {len(self.connections)} open connections (limit "
                    f"{self.max_connections}, AKHBAR_MAX_CONNECTIONS); retry later",
                    b"retry-after: %d\r\n" % self.retry_after,
                )
            )
            transport.close()
            return
        super().connection_made(transport)
        if self.config.timeout_graceful_shutdown is None:  # plain `bentoml serve`
            self.config.timeout_graceful_shutdown = self.shutdown_grace
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        if not self._refused:
            super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        if self._deadline is None and self.conn.their_state is h11.IDLE:
            self._arm()  # the first bytes of a new request's head
        super().data_received(data)
        if self.conn.their_state is not h11.IDLE:
            self._disarm()  # the head is in (or the connection failed)

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing() and self.conn.their_state is h11.IDLE:
            self._arm()  # idle on keep-alive: the next request's head has the same deadline

    def send_400_response(self, msg: str) -> None:
        """A request h11 cannot parse (``Content-Length: +5``, a bad request line): the
        service's JSON error shape instead of uvicorn's plain text."""
        self.transport.write(
            _response(
                400,
                b"Bad Request",
                "malformed HTTP request: the request line or a header (such as Content-Length) "
                "is not valid HTTP/1.1",
            )
        )
        self.transport.close()

    def _arm(self) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(self.header_timeout, self._head_timed_out)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _head_timed_out(self) -> None:
        self._deadline = None
        if self.transport.is_closing() or self.conn.their_state is not h11.IDLE:
            return
        if self.conn.trailing_data[0]:  # part of a request came, too slowly: say so
            self.transport.write(
                _response(
                    408,
                    b"Request Timeout",
                    f"the request line and headers did not arrive within "
                    f"{self.header_timeout:g} s (AKHBAR_HEADER_TIMEOUT)",
                )
            )
        self.transport.close()


def listening_addresses() -> list[str]:
    """The addresses this process's listening TCP sockets are bound to, as URLs. BentoML's
    own start-up line says ``localhost`` whatever it binds (a Bento binds 0.0.0.0). Under
    ``akhbar serve`` with several workers, the address each worker listens on with a socket of
    its own (BentoML's socket is then on a loopback port that nobody is told about)."""
    import psutil

    if address := reuseport.worker_address():
        return [reuseport.url(address)]

    urls = []
    for c in psutil.Process().net_connections(kind="tcp"):
        if c.status == psutil.CONN_LISTEN:
            host = f"[{c.laddr.ip}]" if ":" in c.laddr.ip else c.laddr.ip
            urls.append(f"http://{host}:{c.laddr.port}")
    return sorted(set(urls))


def install(settings: ServiceSettings) -> int:
    """Make uvicorn's ``auto`` HTTP protocol the guarded one in this process, and under
    ``akhbar serve`` with several workers give this worker a listening socket of its own
    (:func:`akhbar.serving.http.reuseport.install`); returns the connection limit in force
    (``max_connections`` lowered to fit the descriptor limit)."""
    limit = connection_limit(settings.max_connections)
    if limit < settings.max_connections:
        logger.warning(
            "AKHBAR_MAX_CONNECTIONS=%d lowered to %d: the descriptor limit (ulimit -n) is %d",
            settings.max_connections,
            limit,
            resource.getrlimit(resource.RLIMIT_NOFILE)[0],
        )
    GuardedH11Protocol.header_timeout = settings.header_timeout
    GuardedH11Protocol.max_connections = limit
    GuardedH11Protocol.keepalive_requests = settings.keepalive_requests
    GuardedH11Protocol.retry_after = settings.retry_after
    GuardedH11Protocol.shutdown_grace = settings.shutdown_grace
    uvicorn.config.HTTP_PROTOCOLS["auto"] = f"{__name__}:GuardedH11Protocol"
    reuseport.install()
    return limit

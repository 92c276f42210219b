"""A listening socket per worker, so that the kernel spreads connections over the workers.

BentoML 1.4 starts its workers on one listening socket that they share, and a connection
belongs to the worker that accepted it for as long as it lives. Whichever worker's event loop
runs first accepts every connection then waiting, and the worker that has just answered a
request is already running when its caller's next connection arrives. Measured with 16
keep-alive callers and 2 workers (rounds of 48 or 96 requests, requests per worker): 0/48 in
two rounds out of three, so that ``make bench`` saw one core busy (BentoML issue 5426).
Closing each connection after 4 or 8 requests helped only partly (61/35, 88/8, 75/21): the
busy worker won most reconnections too.

So with ``AKHBAR_WORKERS`` above 1, ``akhbar serve`` (:mod:`akhbar.serving.http.serve`) gives
BentoML a free loopback port for its shared socket and names the address it was asked for in
``AKHBAR_WORKER_ADDRESS``. Each worker then listens there on a socket of its own, opened with
``SO_REUSEPORT``, and the kernel hands each new connection to one of the workers' sockets by a
hash of its addresses: about evenly, whatever the workers are doing (45/51, 49/47, 43/53 in
the same rounds). A worker's socket starts listening once its models have loaded (uvicorn
listens after the application's start-up), so no connection waits for a worker that is still
loading. Each worker still serves BentoML's shared socket as well, for anything BentoML
itself sends to the address it knows.

Plain ``bentoml serve`` (a Bento, a container) binds the shared socket on the service's own
address, and this does not apply there: closing connections after
``AKHBAR_KEEPALIVE_REQUESTS`` requests spreads them only partly. Run one worker per
container there, and let the platform's load balancer spread the load.
"""

from __future__ import annotations

import os
import socket

WORKER_ADDRESS_ENV = "AKHBAR_WORKER_ADDRESS"  # host:port, set by akhbar serve for its workers


def supported() -> bool:
    """Whether this platform has ``SO_REUSEPORT`` (Linux, macOS, the BSDs)."""
    return hasattr(socket, "SO_REUSEPORT")


def worker_address() -> str | None:
    """The address this worker listens on with a socket of its own (``host:port``), or None
    when it only shares BentoML's socket."""
    return os.environ.get(WORKER_ADDRESS_ENV) or None


def url(address: str) -> str:
    host, _, port = address.rpartition(":")
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def free_loopback_port() -> int:
    """A port of 127.0.0.1 that nothing listens on now (for BentoML's shared socket)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def check_free(address: str) -> None:
    """Raise OSError when something listens on ``address`` already: the workers' sockets,
    opened with ``SO_REUSEPORT``, would otherwise share it with another server of this user
    without a word, where BentoML's own socket would have failed to bind."""
    host, _, port = address.rpartition(":")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind((host, int(port)))


def open_socket(address: str) -> socket.socket:
    """A socket bound to ``address`` (``host:port``, an IP address) with ``SO_REUSEPORT``,
    not yet listening."""
    host, _, port = address.rpartition(":")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, int(port)))
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


def install() -> None:
    """With ``AKHBAR_WORKER_ADDRESS`` set, make uvicorn in this process also listen there on
    a socket of this worker's own (BentoML hands uvicorn its shared socket; uvicorn's
    ``startup`` creates the servers, after the application's start-up)."""
    import uvicorn.server

    address = worker_address()
    startup = uvicorn.server.Server.startup
    if address is None or getattr(startup, "akhbar_own_socket", False):
        return

    async def with_own_socket(self, sockets=None):
        if sockets is not None:
            sockets = [open_socket(address), *sockets]
        await startup(self, sockets=sockets)

    with_own_socket.akhbar_own_socket = True
    uvicorn.server.Server.startup = with_own_socket

"""Two workers (issue 19): under ``akhbar serve`` each listens on the service's address with a
socket of its own (akhbar.serving.http.reuseport), so 16 keep-alive callers reach both, as
``/metrics`` counts; a connection carries ``AKHBAR_KEEPALIVE_REQUESTS`` requests; and a port
something already listens on is refused before the workers could share it."""

from __future__ import annotations

import asyncio
import re
import socket
import subprocess
import time

import httpx
import pytest
from serving_support import AKHBAR, ARTICLE, live_server, server_env

from akhbar.serving.http import reuseport
from tools.localserver import free_port

CALLERS = 16
REQUESTS = 96
PER_CONNECTION = 4
WORKER_SERIES = re.compile(r'^akhbar_requests_total\{worker="(\d+)"\} (\S+)$', re.M)


def _served(url: str) -> dict[str, float]:
    """Requests per worker, from /metrics (a worker's series appears once it has loaded)."""
    text = httpx.get(url + "/metrics", timeout=10).text
    return {worker: float(count) for worker, count in WORKER_SERIES.findall(text)}


@pytest.fixture(scope="module")
def server(tiny_bundle, tmp_path_factory):
    settings = {"AKHBAR_WORKERS": "2", "AKHBAR_KEEPALIVE_REQUESTS": str(PER_CONNECTION)}
    with live_server(tiny_bundle, tmp_path_factory.mktemp("workers"), **settings) as server:
        deadline = time.monotonic() + 240  # /readyz answered for one worker; wait for both
        while len(_served(server.url)) < 2:
            assert time.monotonic() < deadline, server.log.read_text()[-3000:]
            time.sleep(0.5)
        yield server


def test_worker_sockets_share_the_port_and_nothing_else_may_hold_it():
    address = f"127.0.0.1:{free_port()}"
    reuseport.check_free(address)  # nothing there yet
    first, second = reuseport.open_socket(address), reuseport.open_socket(address)
    try:
        first.listen()
        second.listen()
        with pytest.raises(OSError):
            reuseport.check_free(address)
    finally:
        first.close()
        second.close()


@pytest.mark.slow
def test_both_workers_serve_sixteen_keep_alive_callers(server):
    """The measurement that found the idle worker: 16 callers, each on one kept-alive
    connection, all opened at once. With the workers sharing BentoML's socket, one worker
    got every request in most rounds."""

    async def load() -> list[int]:
        queue: asyncio.Queue = asyncio.Queue()
        for _ in range(REQUESTS):
            queue.put_nowait(None)
        statuses: list[int] = []
        limits = httpx.Limits(max_connections=CALLERS, max_keepalive_connections=CALLERS)
        async with httpx.AsyncClient(base_url=server.url, timeout=60, limits=limits) as client:

            async def caller() -> None:
                while not queue.empty():
                    queue.get_nowait()
                    answer = await client.post("/analyze", json={"articles": [ARTICLE]})
                    statuses.append(answer.status_code)

            await asyncio.gather(*(caller() for _ in range(CALLERS)))
        return statuses

    before = _served(server.url)
    assert asyncio.run(load()) == [200] * REQUESTS
    after = _served(server.url)
    served = {w: after[w] - before.get(w, 0) for w in after}
    assert sum(served.values()) == REQUESTS
    assert sorted(served) == ["1", "2"]
    assert min(served.values()) >= REQUESTS // 8, served  # about half each, by a hash
    log = server.log.read_text()
    address = server.url.removeprefix("http://")
    assert f"akhbar serve: 2 workers, each listening on http://{address} itself" in log
    assert log.count(f"akhbar: listening on http://{address}") == 2  # one line per worker


@pytest.mark.slow
def test_a_connection_carries_keepalive_requests_requests(server):
    with httpx.Client(base_url=server.url, timeout=10) as client:
        answers = [client.get("/livez") for _ in range(PER_CONNECTION + 1)]
    assert [a.status_code for a in answers] == [200] * (PER_CONNECTION + 1)
    closes = [a.headers.get("connection") == "close" for a in answers]
    assert closes == [False] * (PER_CONNECTION - 1) + [True, False]


@pytest.mark.slow
def test_a_port_in_use_is_refused_before_the_workers_could_share_it(server, tiny_bundle, tmp_path):
    port = server.url.rsplit(":", 1)[1]
    env = server_env(tiny_bundle, tmp_path, AKHBAR_WORKERS="2")
    done = subprocess.run(
        [str(AKHBAR), "serve", "--port", port],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 1
    assert f"akhbar serve: cannot listen on http://127.0.0.1:{port}" in done.stderr
    with socket.create_connection(("127.0.0.1", int(port)), timeout=5):
        pass  # the first server still listens

"""Run ``akhbar serve`` on a free port of 127.0.0.1 for a bounded job: the fuzzer
(:mod:`tools.fuzz`), the load test (:mod:`tools.loadtest`) and the tests
that need a real server (one of them serves a built Bento with ``bentoml serve``).

The server runs in its own session (process group), so stopping it reaches BentoML's
process manager and workers too: SIGTERM first (``akhbar serve`` forwards it), SIGKILL to
the whole group if it has not exited in time.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

HOST = "127.0.0.1"
START_TIMEOUT_S = 240.0  # importing torch and loading the models on 2 busy cores
STOP_TIMEOUT_S = 60.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def bearer(token: str | None) -> dict[str, str]:
    """The request headers that carry ``AKHBAR_API_TOKEN`` (none when the service has none)."""
    return {"authorization": f"Bearer {token}"} if token else {}


@dataclass
class LocalServer:
    """A running ``akhbar serve``: its URL, process and log file."""

    url: str
    process: subprocess.Popen
    log: Path

    def _total(self, measure) -> float:
        """``measure(process)`` summed over the server's processes: ``akhbar serve``,
        BentoML's manager and its workers (those that end meanwhile count 0)."""
        import psutil

        try:
            root = psutil.Process(self.process.pid)
            processes = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return 0
        total = 0
        for p in processes:
            try:
                total += measure(p)
            except psutil.NoSuchProcess:
                pass
        return total

    def rss_bytes(self) -> int:
        """Resident memory of the server, all its processes together."""
        return int(self._total(lambda p: p.memory_info().rss))

    def cpu_seconds(self) -> float:
        """CPU time the server's processes have used so far."""
        return float(self._total(lambda p: sum(p.cpu_times()[:2])))

    def log_tail(self, chars: int = 3000) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")[-chars:]


def stop(process: subprocess.Popen, timeout: float = STOP_TIMEOUT_S) -> None:
    """SIGTERM, then SIGKILL to the process group once ``timeout`` seconds have passed."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)  # akhbar serve forwards it to bentoml serve
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@contextmanager
def local_server(
    env: dict[str, str],
    log: Path,
    *,
    port: int | None = None,
    start_timeout: float = START_TIMEOUT_S,
    stop_timeout: float = STOP_TIMEOUT_S,
    command: list[str] | None = None,
    cwd: Path | None = None,
    bind: bool = True,
) -> Iterator[LocalServer]:
    """``akhbar serve`` on 127.0.0.1 with exactly ``env``; yields once ``/readyz`` answers 200.

    ``command`` starts another server that takes ``--host`` and ``--port`` (``bentoml serve
    TAG``), run in ``cwd``; ``bind=False`` leaves ``--host`` out, so the server binds where it
    would by default (as a container runs it), and is still reached on 127.0.0.1. Raises
    RuntimeError, with the end of the server's log, when the server exits or is not ready
    within ``start_timeout`` seconds. Stops the server on exit.
    """
    port = port or free_port()
    command = command or [str(Path(sys.executable).parent / "akhbar"), "serve"]
    host = ["--host", HOST] if bind else []
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [*command, *host, "--port", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=cwd,
            start_new_session=True,
        )
    server = LocalServer(f"http://{HOST}:{port}", process, log)
    try:
        deadline = time.monotonic() + start_timeout
        while True:
            if process.poll() is not None:
                raise RuntimeError(
                    f"the server exited with status {process.returncode}:\n{server.log_tail()}"
                )
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"the server was not ready after {start_timeout:g} s:\n{server.log_tail()}"
                )
            try:  # while the models load, the port accepts but does not answer: short timeouts
                if httpx.get(server.url + "/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        yield server
    finally:
        stop(process, stop_timeout)

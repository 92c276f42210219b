"""``akhbar serve``: start the HTTP service (BentoML) that scores Arabic news articles.

It checks that every task has a model first (importing the shipped defaults into the model
store on first start), so a missing model is one sentence here instead of a server that
never gets ready; then it runs ``bentoml serve akhbar.serving.http.service:Akhbar`` on
``--host``/``--port`` until stopped (Ctrl+C or SIGTERM; requests in flight then get
``AKHBAR_SHUTDOWN_GRACE`` seconds to finish). A model that turns out corrupt when
the server loads it stops the server, and the reason is printed here too; so does a worker
that keeps dying (:mod:`akhbar.serving.http.supervision`), and a model store on a disk too full
to host it.

Host: ``127.0.0.1`` by default, so a plain ``make serve`` never exposes an unauthenticated
API to the network. Pass ``--host 0.0.0.0`` to accept other machines (and set
``AKHBAR_API_TOKEN``). A Bento built with ``bentoml build`` and run with ``bentoml serve`` or
``bentoml containerize`` binds 0.0.0.0 on its own; this flag does not affect it.

Settings: the ``AKHBAR_*`` variables of :mod:`akhbar.serving.http.settings` and
:mod:`akhbar.serving.core.config`, read once here to check them before the server starts (the
server reads them again, in its own processes).
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

from akhbar.serving.http import reuseport
from akhbar.serving.http.settings import ServiceSettings, unknown_variables
from akhbar.serving.http.startup import STARTUP_ERROR_FILE_ENV
from akhbar.serving.http.supervision import CRASH_FILE_ENV, WorkerWatch, store_space_problem

DEFAULT_PORT = 3000
DEFAULT_HOST = "127.0.0.1"
SERVICE = "akhbar.serving.http.service:Akhbar"


def _port(value: str) -> int:
    try:
        port = int(value)
    except ValueError:
        port = 0
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"must be a whole number from 1 to 65535, got {value!r}")
    return port


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="akhbar serve",
        description="Start the HTTP service that scores Arabic news articles "
        "(topic, stance, extractive summary). Settings: AKHBAR_* environment variables "
        "(tables in akhbar.serving.http.settings and akhbar.serving.core.config).",
    )
    parser.add_argument(
        "--port",
        type=_port,
        default=DEFAULT_PORT,
        metavar="PORT",
        help=f"TCP port (default: {DEFAULT_PORT}).",
    )
    parser.add_argument(
        "--host",
        default=DEFAULT_HOST,
        metavar="ADDRESS",
        help=f"Address to bind (default: {DEFAULT_HOST}, this machine only). Use 0.0.0.0 to "
        "accept other machines, and set AKHBAR_API_TOKEN when you do.",
    )
    return parser


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """``akhbar serve`` arguments, checked, without running anything;
    a bad one exits 2 with usage."""
    return build_parser().parse_args(argv)


def preflight(settings: ServiceSettings) -> str | None:
    """Resolve every task's model (importing shipped defaults) and check the store's disk;
    the problem, or None."""
    from akhbar.serving.core.store import ModelStoreError, bentoml_home

    try:
        settings.scoring.resolve_models()
    except ModelStoreError as exc:
        return str(exc)
    return store_space_problem(bentoml_home())


def _stop(child: subprocess.Popen, timeout: float = 15) -> None:
    """SIGTERM the server; past ``timeout`` s, SIGKILL it and every process under it (a
    worker left behind would keep the port open)."""
    import psutil

    try:
        tree = psutil.Process(child.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        tree = []
    child.terminate()
    try:
        child.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()
    for process in tree:
        try:
            process.kill()
        except psutil.NoSuchProcess:
            pass


def run_server(host: str, port: int, grace: int, workers: int = 1) -> int:
    """Run ``bentoml serve`` in a child process until it ends; its exit status (1 when the
    service stopped its own start-up, after printing why). ``grace``: seconds requests in
    flight get after SIGTERM. With several ``workers``, each listens on ``host:port`` with a
    socket of its own (:mod:`akhbar.serving.http.reuseport`)."""
    with tempfile.TemporaryDirectory(prefix="akhbar-serve-") as tmp:
        status_file, crash_file = Path(tmp) / "startup-error", Path(tmp) / "crashes"
        # glibc's malloc settings reach the server processes through the service's own
        # ``envs`` (akhbar.serving.http.settings.MALLOC_SETTINGS), as under plain `bentoml serve`.
        env = {
            **os.environ,
            STARTUP_ERROR_FILE_ENV: str(status_file),
            CRASH_FILE_ENV: str(crash_file),
        }
        env.pop(reuseport.WORKER_ADDRESS_ENV, None)
        if workers > 1 and reuseport.supported():
            address = f"{host}:{port}"
            try:
                reuseport.check_free(address)
            except OSError as exc:
                print(
                    f"akhbar serve: cannot listen on {reuseport.url(address)}: {exc.strerror}",
                    file=sys.stderr,
                )
                return 1
            env[reuseport.WORKER_ADDRESS_ENV] = address
            host, port = "127.0.0.1", reuseport.free_loopback_port()  # BentoML's own socket
            print(
                f"akhbar serve: {workers} workers, each listening on {reuseport.url(address)} "
                f"itself (BentoML's start-up line names its internal socket, {host}:{port})",
                file=sys.stderr,
            )
        # Without a graceful-shutdown timeout, uvicorn waits for requests in flight forever
        # (and BentoML's process manager for a day) after SIGTERM.
        command = [
            sys.executable,
            "-m",
            "bentoml",
            "serve",
            SERVICE,
            "--host",
            host,
            "--port",
            str(port),
            "--timeout-graceful-shutdown",
            str(grace),
        ]
        child = subprocess.Popen(command, env=env)
        watch, stopping = WorkerWatch(crash_file), []

        def forward(signum, _frame):
            stopping.append(signum)  # workers exit now: no longer deaths to count
            if child.poll() is None:
                child.send_signal(signum)

        previous = {s: signal.signal(s, forward) for s in (signal.SIGTERM, signal.SIGINT)}
        try:
            while True:
                try:
                    code = child.wait(timeout=1)
                    break
                except subprocess.TimeoutExpired:
                    if not stopping and (reason := watch.check()):
                        print(f"akhbar serve: {reason}", file=sys.stderr)
                        _stop(child)
                        return 1
                except KeyboardInterrupt:  # a second Ctrl+C while the child shuts down
                    continue
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)
        if status_file.is_file():
            print(
                f"akhbar serve: {status_file.read_text(encoding='utf-8').strip()}", file=sys.stderr
            )
            return 1
        return code


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        settings = ServiceSettings.from_env()
    except ValueError as exc:
        print(f"akhbar serve: invalid setting: {exc}", file=sys.stderr)
        return 1
    for line in unknown_variables(os.environ):
        print(f"akhbar serve: warning: {line}", file=sys.stderr)
    problem = preflight(settings)
    if problem:
        print(f"akhbar serve: {problem}", file=sys.stderr)
        return 1
    return run_server(args.host, args.port, settings.shutdown_grace, settings.workers)


if __name__ == "__main__":
    sys.exit(main())

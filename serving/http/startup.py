"""How the service starts and fails to start: its logging, and one sentence, not a crash loop,
when it cannot (a missing or corrupt model, a bad setting).

Shared by the service (:mod:`akhbar.serving.http.service`), which reports a failed start-up,
and its launcher ``akhbar serve`` (:mod:`akhbar.serving.http.serve`), which prints it.
"""

from __future__ import annotations

import logging
import os
import signal

STARTUP_ERROR_FILE_ENV = "AKHBAR_STARTUP_ERROR_FILE"  # the service writes its start-up failure here

logger = logging.getLogger("akhbar.serving")


class StartupError(RuntimeError):
    """The service cannot start (a missing or corrupt model, a bad setting); one sentence."""


class _NoRequestInput(logging.Filter):
    """BentoML logs each invalid request as an error with a traceback that can quote the
    request's text. Drop it: the client got the details in its 400, and akhbar.access logs
    the request (one line, no text)."""

    def filter(self, record: logging.LogRecord) -> bool:
        from pydantic import ValidationError

        return not (record.exc_info and isinstance(record.exc_info[1], ValidationError))


def setup_logging() -> None:
    bentoml_http = logging.getLogger("bentoml._internal.server.http_app")
    if not any(isinstance(f, _NoRequestInput) for f in bentoml_http.filters):
        bentoml_http.addFilter(_NoRequestInput())
    # akhbar.access (one line per request) and akhbar.serving (start-up) print on their own:
    # BentoML's server logging does not show INFO lines of other libraries' loggers.
    akhbar = logging.getLogger("akhbar")
    if not akhbar.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(message)s"))
        akhbar.addHandler(handler)
        akhbar.setLevel(logging.INFO)
        akhbar.propagate = False


def stop_startup(message: str) -> None:
    """Log the one-sentence reason and stop the whole server, not just this worker.

    ``bentoml serve`` would otherwise restart a worker whose start-up failed every few
    seconds, forever, with the port open but never ready. A worker then exits at once:
    raising would make BentoML and uvicorn log three tracebacks of this one sentence.
    """
    from bentoml._internal.context import server_context

    logger.critical("akhbar: %s", message)
    if path := os.environ.get(STARTUP_ERROR_FILE_ENV):
        with open(path, "w", encoding="utf-8") as f:
            f.write(message + "\n")
    if server_context.worker_index is not None:  # a `bentoml serve` worker: stop its arbiter
        os.kill(os.getppid(), signal.SIGTERM)
        for handler in logging.getLogger("akhbar").handlers:
            handler.flush()
        os._exit(1)
    raise StartupError(message) from None

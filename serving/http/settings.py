"""The HTTP service's own settings, each read from an ``AKHBAR_*`` variable.

These are the knobs only a server has; what decides a score (limits, k, models, model batch
size, precision, torch threads) is the scoring core's configuration,
:mod:`akhbar.serving.core.config`, which :class:`ServiceSettings` carries as ``scoring``.

==================  =========================  ========  ===========================================
field               environment variable       default   meaning
==================  =========================  ========  ===========================================
max_body_bytes      AKHBAR_MAX_BODY_BYTES      16777216  request body size (16 MiB); larger: 413
request_timeout     AKHBAR_REQUEST_TIMEOUT     60        seconds before a request is answered 504
body_timeout        AKHBAR_BODY_TIMEOUT        10        seconds to receive a request's body;
                                                         slower: 408, and the connection closes
header_timeout      AKHBAR_HEADER_TIMEOUT      10        seconds for a request line and headers to
                                                         arrive (and a connection to stay idle);
                                                         slower: the connection closes
max_connections     AKHBAR_MAX_CONNECTIONS     1000      open connections per worker (kept 256 below
                                                         ``ulimit -n``); more: 503 and closed at
                                                         once
keepalive_requests  AKHBAR_KEEPALIVE_REQUESTS  100       requests one connection carries; the last
                                                         answer says ``Connection: close``, and the
                                                         client's next connection may go to another
                                                         worker
max_queue           AKHBAR_MAX_QUEUE           64        API requests in progress per worker; more:
                                                         503
max_wait            AKHBAR_MAX_WAIT            1         seconds of work a request may find ahead of
                                                         it (measured rate); more: 503 at once
retry_after         AKHBAR_RETRY_AFTER         5         seconds suggested in ``Retry-After`` on
                                                         503/504
shutdown_grace      AKHBAR_SHUTDOWN_GRACE      30        seconds requests in flight get to finish on
                                                         SIGTERM
api_token           AKHBAR_API_TOKEN           (unset)   when set, API routes need ``Authorization:
                                                         Bearer``
workers             AKHBAR_WORKERS             1         server processes, each with its own models
max_batch_size      AKHBAR_MAX_BATCH_SIZE      32        articles per batch (concurrent requests
                                                         share one; a larger request goes alone)
==================  =========================  ========  ===========================================

The defaults suit 2 CPU cores: one worker scores one batch at a time with both cores, and
32 concurrent callers queue (up to ``max_queue``) instead of being refused. A second worker
got no requests at 16 concurrent callers while the workers shared BentoML's listening socket
(``make bench``, 2 workers x 1 torch thread: the server used 1.0 core, 14.4-14.9 articles/s,
against 18.8-19.3 for one worker with 2 threads); under ``akhbar serve`` each worker now
listens on a socket of its own and both serve (:mod:`akhbar.serving.http.reuseport`).
Whether two workers beat one on a machine is ``make bench``'s ``two_workers_vs_one``.

When the values are read. :meth:`ServiceSettings.from_env` reads the environment each time
it is called. The service calls it at start-up (in ``Akhbar.__init__`` and when the ASGI
middleware is built), so limits, models, the token and the timeout come from the
environment the server runs in, never the one a Bento was built in. ``workers`` is an
argument of BentoML's ``@bentoml.service`` decorator, which BentoML reads when it builds the
server from the class; it is therefore read when the serving process imports
``akhbar.serving.http.service``. ``bentoml serve`` (of the repository or of a built Bento)
imports it afresh in every server process, so these too follow the serving environment;
``bentoml build`` only records the build-time values in ``bento.yaml`` for display.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields

from akhbar.serving.core import config as core_config
from akhbar.serving.core.config import Runtime, ScoringConfig, check_positive, env_values
from akhbar.serving.http.reuseport import WORKER_ADDRESS_ENV
from akhbar.serving.http.startup import STARTUP_ERROR_FILE_ENV
from akhbar.serving.http.supervision import CRASH_FILE_ENV

MAX_REQUEST_TIMEOUT = 3600  # BentoML's traffic timeout, set above it as a backstop

# glibc's malloc for a long-running server, unless the environment sets these. The service
# declares them as its ``envs``: `bentoml serve` (of the repository or of a Bento) starts every
# server process with them, and a container built from the Bento sets them in its image. Measured
# with `make loadtest` (32 users, 120 s, shipped models; serving/README.md, Reliability): with
# glibc's defaults resident memory grew 15 % between 40 s and 120 s, and kept growing, as glibc
# raises its mmap threshold whenever a large block is freed, so later batches' activations come
# from a heap that fragments and is seldom given back. A fixed 4 MiB threshold kept it within 2 %
# for 17 % fewer requests/s (128 KiB: flat, 30 % fewer; 16 MiB: +12 %). Two arenas: the scoring
# threads do not each keep one. The trim threshold is how much free memory an arena keeps at
# its top instead of giving it back: at glibc's 128 KiB every request gave back its
# activations and faulted them in again (2,400 to 7,800 page faults per median article; the
# encoder 27 ms against 20 at 64 MiB in the service, p50 61 against 50-56 ms, 2026-12-08).
# 64 MiB bounds what each of the two arenas holds beyond its live blocks.
MALLOC_SETTINGS = {
    "MALLOC_ARENA_MAX": "2",
    "MALLOC_MMAP_THRESHOLD_": str(4 << 20),
    "MALLOC_TRIM_THRESHOLD_": str(64 << 20),
}


# AKHBAR_* variables read elsewhere than these two tables: the data folder, the shipped models,
# the ONNX cache, the files and address `akhbar serve` gives its workers, and the developer
# tools'.
OTHER_VARIABLES = frozenset(
    {
        "AKHBAR_DATA",
        "AKHBAR_DEFAULT_MODELS",
        "AKHBAR_CACHE",
        STARTUP_ERROR_FILE_ENV,
        CRASH_FILE_ENV,
        WORKER_ADDRESS_ENV,
        "AKHBAR_UPDATE_SCREENSHOT",
    }
)
TOOL_PREFIXES = ("AKHBAR_LOADTEST_",)
RETIRED = {
    "AKHBAR_THREADS": "torch's threads are AKHBAR_TORCH_THREADS",
    "AKHBAR_MAX_LATENCY_MS": "the batcher never waits to fill a batch, so there is nothing to set",
}


@dataclass(frozen=True)
class ServiceSettings:
    """The service's settings; see the module docstring for each field's variable and default.

    Parameters
    ----------
    max_body_bytes: largest request body, in bytes; checked before the body is parsed.
    request_timeout: seconds a request may take before it is answered 504.
    body_timeout: seconds a request's body may take to arrive; a slower one gets 408 and never
        takes a queue place.
    header_timeout: seconds a connection may take to send a request's head, or stay idle
        (:mod:`akhbar.serving.http.connections`).
    max_connections: open connections one worker holds; more are refused with 503.
    keepalive_requests: requests one connection carries before the server closes it, so that
        a client's connections are spread over the workers again
        (:mod:`akhbar.serving.http.connections`).
    max_queue: API requests one worker holds at once (running or queued); more get 503.
    max_wait: seconds of admitted work (at the measured service rate) a request may find ahead
        of it; more get 503 at once (:mod:`akhbar.serving.http.admission`).
    retry_after: seconds suggested in ``Retry-After`` on 503 and 504 answers.
    shutdown_grace: on SIGTERM, seconds the requests in flight get to finish before they are
        cut off (``akhbar serve`` passes it to ``bentoml serve --timeout-graceful-shutdown``).
    api_token: bearer token the API routes require; None leaves them open.
    workers: server processes (BentoML ``workers``).
    max_batch_size: articles per batch (:class:`~akhbar.serving.http.batcher.Batcher`).
    scoring: the scoring core's configuration (limits, k, models, precision, torch threads).
    """

    max_body_bytes: int = 16 * 1024 * 1024
    request_timeout: float = 60.0
    body_timeout: float = 10.0
    header_timeout: float = 10.0
    max_connections: int = 1000
    keepalive_requests: int = 100
    max_queue: int = 64
    max_wait: float = 1.0
    retry_after: int = 5
    shutdown_grace: int = 30
    api_token: str | None = None
    workers: int = 1
    max_batch_size: int = 32
    scoring: ScoringConfig = field(default_factory=ScoringConfig)

    def __post_init__(self) -> None:
        check_positive(self)
        if self.request_timeout > MAX_REQUEST_TIMEOUT:
            raise ValueError(
                f"AKHBAR_REQUEST_TIMEOUT must be at most {MAX_REQUEST_TIMEOUT} s (BentoML's own "
                f"timeout behind it), got {self.request_timeout:g}"
            )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ServiceSettings:
        """Read every ``AKHBAR_*`` variable now, the scoring core's too; a bad value raises
        ValueError naming it."""
        environ = os.environ if environ is None else environ
        return cls(**env_values(cls, environ), scoring=ScoringConfig.from_env(environ))

    def runtime(self) -> Runtime:
        """The scoring runtime of one worker: with ``AKHBAR_TORCH_THREADS`` 0, each of the
        ``workers`` gets an equal share of the usable cores (at least one)."""
        return self.scoring.runtime(cores=max(1, core_config.USABLE_CPUS // self.workers))


def unknown_variables(environ: Mapping[str, str]) -> list[str]:
    """One sentence for each ``AKHBAR_*`` variable in ``environ`` that nothing reads (retired,
    or a typo that would otherwise leave its setting at the default without a word)."""
    known = {
        core_config.env_name(f.name)
        for cls in (ServiceSettings, ScoringConfig)
        for f in fields(cls)
    } | OTHER_VARIABLES
    out = []
    for name in sorted(environ):
        if not name.startswith("AKHBAR_") or name in known or name.startswith(TOOL_PREFIXES):
            continue
        if name in RETIRED:
            out.append(f"{name} is no longer read: {RETIRED[name]}")
            continue
        close = difflib.get_close_matches(name, sorted(known), n=1)
        hint = f"; did you mean {close[0]}?" if close else ""
        out.append(f"{name} is not a setting and is ignored{hint}")
    return out

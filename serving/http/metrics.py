"""The service's own series on ``/metrics``, beside BentoML's.

BentoML runs prometheus_client in multiprocess mode: whichever worker answers ``/metrics``
reports every worker's series, and a counter's series are summed over the workers. So a
figure wanted per worker carries a ``worker`` label.

* ``akhbar_batch_articles`` (histogram): articles per batch scored; requests that arrive
  together share a batch.
* ``akhbar_requests_total{worker}``: API requests that reached the scorer, per worker
  (BentoML's worker index, 1 to ``AKHBAR_WORKERS``): whether every worker gets a share of
  the load (``make bench`` counts them per phase). A worker's series appears, at 0, once its
  models have loaded, so a caller can tell when every worker is ready (``/readyz`` answers
  for whichever worker took the connection).
* ``akhbar_stage_seconds_total{stage}``: where those requests' time went. ``http``: each
  request's time in the service outside the scorer (reading the body, validation, writing
  the answer); ``preprocess``, ``encoder``, ``side_models``, ``postprocess``: the scoring
  thread's time per batch, split by :mod:`akhbar.models.stages`. A batch's stage seconds are
  counted once for all its requests, so the difference of a stage over a period divided by
  the requests over it is that stage's time per request, what batching saves included. What
  a request's latency holds beyond these is waiting: for its batch to start, and for the
  hand-offs between the event loop and the scoring thread.
"""

from __future__ import annotations

import functools
from typing import Any

import bentoml

from akhbar.models.stages import STAGES

HTTP_STAGE = "http"


@functools.cache
def _batch_articles() -> Any:
    """The batch-size histogram, made on first use rather than at import: a metric without
    labels is a memory-mapped file in BENTOML_HOME from the moment it exists, and on a full disk
    touching it kills the worker with SIGBUS. Made at import, it killed each restarted worker
    before the worker had told ``akhbar serve``'s watch it started
    (:func:`~akhbar.serving.http.supervision.record_crashes`), so the deaths went uncounted and
    the port stayed open with nothing behind it."""
    return bentoml.metrics.Histogram(
        name="akhbar_batch_articles",
        documentation="Articles per batch scored (requests that arrive together share a batch).",
        buckets=(1, 2, 4, 8, 16, 32, 64, float("inf")),
    )


REQUESTS = bentoml.metrics.Counter(
    name="akhbar_requests",
    documentation="API requests that reached the scorer, by worker (BentoML's worker index).",
    labelnames=["worker"],
)
STAGE_SECONDS = bentoml.metrics.Counter(
    name="akhbar_stage_seconds",
    documentation="Seconds of the scored requests by stage: http (outside the scorer, per "
    "request), then the scoring thread's preprocess, encoder, side_models and postprocess "
    "(per batch, shared by its requests).",
    labelnames=["stage"],
)


def worker() -> str:
    """This process's worker index under BentoML (``1`` to ``AKHBAR_WORKERS``); ``0`` in a
    process BentoML did not start as a worker (an app built in-process for tests)."""
    return str(bentoml.server_context.worker_index or 0)


def worker_ready() -> None:
    """Show this worker's request count on /metrics (at 0): it has loaded its models."""
    REQUESTS.labels(worker=worker())


def observe_request(seconds: float, scorer_seconds: float) -> None:
    """A request that reached the scorer took ``seconds`` in the service, ``scorer_seconds``
    of them waiting for the scorer's answer."""
    REQUESTS.labels(worker=worker()).inc()
    STAGE_SECONDS.labels(stage=HTTP_STAGE).inc(max(0.0, seconds - scorer_seconds))


def observe_batch_size(articles: int) -> None:
    """A batch of ``articles`` was scored."""
    _batch_articles().observe(articles)


def observe_batch(seconds: dict[str, float]) -> None:
    """The scoring thread's ``{stage: seconds}`` of one scoring call."""
    for stage in STAGES:
        if seconds.get(stage):
            STAGE_SECONDS.labels(stage=stage).inc(seconds[stage])

"""The akhbar HTTP service (BentoML 1.4): topic, extractive summary and stance for Arabic news.

Routes (JSON; the OpenAPI document is at ``/docs.json``):

* ``POST /analyze`` ``{"articles": [Article, ...]}`` → ``{"results": [...]}``, one result per
  article in request order (shape: :mod:`akhbar.serving.core.analyzer`);
* ``POST /topic``, ``POST /summarize``, ``POST /stance``: the same, one part each;
* ``/livez``, ``/readyz`` (200 once every model has loaded), ``/metrics`` (Prometheus);
* ``GET /ui``: the reading page for editors (:mod:`akhbar.serving.http.ui`), which calls
  ``/analyze``.

All four routes hand their validated articles to one in-process batcher
(:mod:`akhbar.serving.http.batcher`), so articles from concurrent callers are scored in shared
batches (windows sorted by length inside :class:`~akhbar.models.predict.Predictor`) while each
article crosses the HTTP layer, and validation, once. ``/metrics`` adds the articles per
batch, the requests each worker served and where their time went
(:mod:`akhbar.serving.http.metrics`).

Settings: ``AKHBAR_*`` variables, in two tables: the server's own knobs in
:mod:`akhbar.serving.http.settings`, what decides a score in :mod:`akhbar.serving.core.config`;
both are read at start-up. Models come from the BentoML model store
(:mod:`akhbar.serving.core.store`); a missing or corrupt model stops the server with one
sentence naming it and the command that makes or imports it. The service declares them to
BentoML (:mod:`akhbar.serving.http.bento_models`), so a built Bento carries its models.
"""

from __future__ import annotations

import gc
import time
from typing import Any

import bentoml

from akhbar.models.stages import clock
from akhbar.models.tasks import TASKS
from akhbar.serving.core.articles import (
    SAMPLE_ARTICLE,
    AnalyzeResponse,
    Article,
    Articles,
    StanceArticles,
    StanceResponse,
    SummaryResponse,
    TopicResponse,
)
from akhbar.serving.http import connections
from akhbar.serving.http.admission import ADMISSION, validated_cost
from akhbar.serving.http.batcher import Batcher
from akhbar.serving.http.bento_models import TaskModel
from akhbar.serving.http.metrics import observe_batch, observe_batch_size, worker_ready
from akhbar.serving.http.middleware import AkhbarMiddleware, note
from akhbar.serving.http.settings import MALLOC_SETTINGS, MAX_REQUEST_TIMEOUT, ServiceSettings
from akhbar.serving.http.startup import logger, setup_logging, stop_startup
from akhbar.serving.http.supervision import record_crashes
from akhbar.serving.http.ui import page_app

# Server knobs BentoML takes from the decorators below; read when the serving process
# imports this module (see akhbar.serving.http.settings for why that is start-up, not build).
SERVER = ServiceSettings.from_env()
# Header deadline, connection limit and shutdown bound, in the uvicorn that BentoML starts in
# this process.
connections.install(SERVER)
# Under `akhbar serve`: this worker's start and any fatal signal, for its watch.
record_crashes()
# BentoML's own request timeout only backs ours up (AKHBAR_REQUEST_TIMEOUT, answered with
# Retry-After by the middleware): BentoML's 504 carries no Retry-After and no request id.
BACKSTOP_TIMEOUT_S = MAX_REQUEST_TIMEOUT + 60


@bentoml.service(
    name="akhbar",
    workers=SERVER.workers,
    traffic={"timeout": BACKSTOP_TIMEOUT_S},
    logging={"access": {"enabled": False}},  # akhbar.access logs one line per request instead
    labels={"project": "akhbar"},
    # Every server process starts with these unless its environment sets them; a Bento
    # records them, and a container built from it sets them in the image.
    envs=[{"name": name, "value": value} for name, value in MALLOC_SETTINGS.items()],
)
class Akhbar:
    """Scores Arabic news articles: topic, extractive summary, stance toward claims."""

    # What `bentoml build` packs into the Bento (the same stored model once when tasks share it).
    topic_model = TaskModel("topic")
    stance_model = TaskModel("stance")
    summary_model = TaskModel("summary")

    def __init__(self) -> None:
        from akhbar.serving.core.analyzer import Analyzer, ModelLoadError
        from akhbar.serving.core.store import ModelStoreError

        self.ready = False
        setup_logging()
        try:
            self.settings = ServiceSettings.from_env()
        except ValueError as exc:
            stop_startup(f"invalid setting: {exc}.")
        runtime = self.settings.runtime()
        runtime.apply()
        try:
            self.analyzer = Analyzer.from_store(TASKS, self.settings.scoring, runtime)
        except (ModelStoreError, ModelLoadError) as exc:
            stop_startup(str(exc))
        # The first call loads the sentence encoder and allocates buffers (seconds): not on a
        # caller's time.
        self.analyzer.analyze([SAMPLE_ARTICLE])
        # What start-up made (about 480,000 objects: torch, transformers, BentoML, the models)
        # lives as long as the worker; a full garbage collection walked it all in about
        # 240 ms, holding the event loop: shed answers waited 310 ms at the 99th percentile.
        # Frozen, the collector skips it.
        gc.collect()
        gc.freeze()
        self.batcher = Batcher(
            self._analyze,
            self.settings.max_batch_size,
            self._on_batch,
            cost=validated_cost,
            budget=ADMISSION.batch_budget,
        )
        logger.info(
            "akhbar: models loaded (%s, %d torch threads): %s",
            runtime.precision,
            runtime.torch_threads,
            ", ".join(f"{t}={v}" for t, v in self.analyzer.versions.items()),
        )
        addresses = connections.listening_addresses()
        everywhere = any(a.startswith(("http://0.0.0.0:", "http://[::]:")) for a in addresses)
        logger.info(
            "akhbar: listening on %s%s",
            ", ".join(addresses) or "(no socket found)",
            " (every interface, and no AKHBAR_API_TOKEN: anyone who can reach it can use it)"
            if everywhere and not self.settings.api_token
            else "",
        )
        self.ready = True
        worker_ready()

    def __is_ready__(self) -> bool:
        return self.ready

    @staticmethod
    def _on_batch(articles: list[Article], seconds: float) -> None:
        """After each batch: its size to /metrics, its work and time to admission's rate."""
        observe_batch_size(len(articles))
        ADMISSION.record_batch(sum(map(validated_cost, articles)), seconds)

    def _analyze(self, articles: list[Article], tasks: tuple[str, ...]) -> list[dict[str, Any]]:
        """What the batcher runs on its scoring thread: one Analyzer call, its time by stage
        to /metrics."""
        with clock() as seconds:
            results = self.analyzer.analyze(articles, tasks)
        observe_batch(seconds)
        return results

    async def _score(self, articles: list[Article], tasks: tuple[str, ...]) -> list[dict[str, Any]]:
        note(articles=len(articles))
        started = time.perf_counter()
        try:
            return await self.batcher.score(articles, tasks)
        finally:  # the middleware counts the request, and its time outside the scorer
            note(scorer_s=time.perf_counter() - started)

    @bentoml.api
    async def analyze(self, articles: Articles) -> AnalyzeResponse:
        """Topic, extractive summary and stance toward each claim, for each article."""
        return AnalyzeResponse(results=await self._score(articles, TASKS))

    @bentoml.api
    async def topic(self, articles: Articles) -> TopicResponse:
        """Topic of each article: label, a probability per label, low_confidence."""
        return TopicResponse(results=await self._score(articles, ("topic",)))

    @bentoml.api
    async def summarize(self, articles: Articles) -> SummaryResponse:
        """The k best sentences of each article, verbatim, with their character offsets."""
        return SummaryResponse(results=await self._score(articles, ("summary",)))

    @bentoml.api
    async def stance(self, articles: StanceArticles) -> StanceResponse:
        """Stance of each article toward each of its claims, with evidence sentences."""
        return StanceResponse(results=await self._score(articles, ("stance",)))


Akhbar.mount_asgi_app(page_app(), path="/", name="ui")  # /ui: matches only its own routes
Akhbar.add_asgi_middleware(AkhbarMiddleware)

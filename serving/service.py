"""The akhbar HTTP service (BentoML 1.4): topic, extractive summary and stance for Arabic news.

Routes (JSON; the OpenAPI document is at ``/docs.json``):

* ``POST /analyze`` ``{"articles": [Article, ...]}`` → ``{"results": [...]}``, one result per
  article in request order (shape: :mod:`akhbar.serving.analyzer`);
* ``POST /topic``, ``POST /summarize``, ``POST /stance``: the same, one part each;
* ``/livez``, ``/readyz`` (200 once every model has loaded), ``/metrics`` (Prometheus);
* ``GET /ui``: the reading page for editors (:mod:`akhbar.serving.ui`), which calls ``/analyze``.

All four routes hand their articles to ``score_batch``, a batchable route called in
process through BentoML's self-proxy, so articles from concurrent callers are scored in
one adaptive batch (windows sorted by length inside :class:`~akhbar.models.predict.Predictor`).

Settings: :mod:`akhbar.serving.settings` (``AKHBAR_*`` variables) is the one place; limits,
models, the token and the timeout are read at start-up. Models come from the BentoML model
store (:mod:`akhbar.serving.store`); a missing or corrupt model stops the server with one
sentence naming it and the command that makes or imports it.
"""

from __future__ import annotations

import logging
import os
import signal
from typing import Annotated, Any, Literal

import bentoml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

from akhbar.serving.limits import claims_problem, text_problem, title_problem
from akhbar.serving.middleware import AkhbarMiddleware, note
from akhbar.serving.serve import STARTUP_ERROR_FILE_ENV
from akhbar.serving.settings import (
    MAX_REQUEST_TIMEOUT,
    MAX_SUMMARY_SENTENCES,
    TASKS,
    Settings,
    current,
)
from akhbar.serving.ui import page_app

# ---------------------------------------------------------------------------------------
# Constants

# A sample article the project wrote (not from any outlet): the OpenAPI example, `make demo`
# and the load test's payload. It ends in a related-articles block and a follow prompt,
# boilerplate that summary, topic and stance skip.
SAMPLE_ARTICLE: dict[str, Any] = {
    "id": "sample-1",
    "title": "البنك المركزي يبقي أسعار الفائدة دون تغيير",
    "text": (
        "أعلن البنك المركزي اليوم الإبقاء على أسعار الفائدة الرئيسية دون تغيير للمرة الثالثة على التوالي. "
        "وقال محافظ البنك في مؤتمر صحفي إن معدل التضخم تراجع إلى 3.1 في المئة خلال الربع الأخير من العام. "
        "وأضاف أن القرار يهدف إلى دعم النمو الاقتصادي مع الحفاظ على استقرار الأسعار. "
        "وتوقع محللون أن يبدأ البنك خفض الفائدة في النصف الثاني من العام المقبل إذا استمر تباطؤ التضخم. "
        "وارتفعت أسهم البنوك في البورصة المحلية بنسبة طفيفة بعد الإعلان.\n"
        "أخبار ذات صلة\n"
        "ارتفاع أسعار الذهب في الأسواق العالمية\n"
        "تابعونا على تويتر"
    ),
    "claims": ["البنك المركزي رفع أسعار الفائدة", "تراجع معدل التضخم في الربع الأخير"],
    "summary_sentences": 2,
}

# Server knobs BentoML takes from the decorators below; read when the serving process
# imports this module (see akhbar.serving.settings for why that is start-up, not build).
SERVER = Settings.from_env()
# BentoML's own request timeout only backs ours up (AKHBAR_REQUEST_TIMEOUT, answered with
# Retry-After by the middleware): BentoML's 504 carries no Retry-After and no request id.
BACKSTOP_TIMEOUT_S = MAX_REQUEST_TIMEOUT + 60
SELF_PROXY_NEVER_REFRESHES = {"max_requests": 2**62, "max_age": 1e15}

logger = logging.getLogger("akhbar.serving")


# ---------------------------------------------------------------------------------------
# Request and response models


# The limits this server enforces, stated in its OpenAPI document (/docs.json) so that a
# client, or a fuzzer, generating from the document sends what the service accepts. Only
# documentation: the validators below enforce the limits, with messages naming the setting.
# At least one character that str.strip() keeps: Python's whitespace spelled out, since the
# document's regex dialect (ECMA-262) has a narrower \s (without \x1c-\x1f and \x85).
NOT_BLANK = r"[^\t-\r\x1c-\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
_TEXT_SCHEMA = {"maxLength": SERVER.max_text_chars, "pattern": NOT_BLANK}
_CLAIMS_SCHEMA = {"maxItems": SERVER.max_claims,
                  "items": {"type": "string", "minLength": 1, "maxLength": SERVER.max_claim_chars,
                            "pattern": NOT_BLANK}}


class Article(BaseModel):
    """One article to score."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"example": SAMPLE_ARTICLE})

    text: str = Field(min_length=1, json_schema_extra=_TEXT_SCHEMA,
                      description="The article, as published (at most AKHBAR_MAX_TEXT_CHARS, "
                                  "default 100,000 characters).")
    id: str | int | None = Field(None, description="Echoed in the result.")
    title: str | None = Field(None, json_schema_extra={"maxLength": SERVER.max_text_chars},
                              description="Headline; helps topic.")
    claims: list[str] = Field(default_factory=list, json_schema_extra=_CLAIMS_SCHEMA,
                              description="Claims to judge the article's stance on "
                                          "(at most AKHBAR_MAX_CLAIMS, default 16).")
    summary_sentences: int | None = Field(None, ge=1, le=MAX_SUMMARY_SENTENCES, strict=True,
                                          description="Summary length k (default 2).")
    summary_max_words: int | None = Field(None, ge=1, strict=True, description="Upper bound on summary words.")

    # The limits live in akhbar.serving.limits, shared with the batch scorer (akhbar score).
    @field_validator("text")
    @classmethod
    def _text(cls, value: str) -> str:
        if problem := text_problem(value, current()):
            raise ValueError(problem)
        return value

    @field_validator("title")
    @classmethod
    def _title(cls, value: str | None) -> str | None:
        if problem := title_problem(value, current()):
            raise ValueError(problem)
        return value

    @field_validator("claims")
    @classmethod
    def _claims(cls, value: list[str]) -> list[str]:
        if problem := claims_problem(value, current()):
            raise ValueError(problem)
        return value


class StanceArticle(Article):
    """An article for ``/stance``: at least one claim."""

    claims: list[str] = Field(min_length=1, json_schema_extra=_CLAIMS_SCHEMA,
                              description="Claims to judge the article's stance on "
                                          "(1 to AKHBAR_MAX_CLAIMS, default 16).")


def _article_count(value: list) -> list:
    limit = current().max_articles
    if len(value) > limit:
        raise ValueError(f"{len(value)} articles; the limit is {limit} per request (AKHBAR_MAX_ARTICLES)")
    return value


_ARTICLES_SCHEMA = {"maxItems": SERVER.max_articles}
Articles = Annotated[list[Article], Field(min_length=1, json_schema_extra=_ARTICLES_SCHEMA),
                     AfterValidator(_article_count)]
StanceArticles = Annotated[list[StanceArticle], Field(min_length=1, json_schema_extra=_ARTICLES_SCHEMA),
                           AfterValidator(_article_count)]


class WorkItem(BaseModel):
    """One article and the parts to compute: the unit ``score_batch`` batches."""

    article: Article
    tasks: list[Literal["topic", "summary", "stance"]] = Field(min_length=1)


class Label(BaseModel):
    label: str
    scores: dict[str, float]
    low_confidence: bool


class Summary(BaseModel):
    sentences: list[str]
    indices: list[int]
    offsets: list[tuple[int, int]]


class Evidence(BaseModel):
    text: str
    start: int
    end: int


class Stance(BaseModel):
    claim: str
    label: str
    scores: dict[str, float]
    low_confidence: bool
    evidence: list[Evidence]


class AnalyzeResult(BaseModel):
    id: str | int | None
    topic: Label
    summary: Summary
    stances: list[Stance]
    warnings: list[str]
    model_versions: dict[str, str]


class TopicResult(BaseModel):
    id: str | int | None
    topic: Label
    warnings: list[str]
    model_versions: dict[str, str]


class SummaryResult(BaseModel):
    id: str | int | None
    summary: Summary
    warnings: list[str]
    model_versions: dict[str, str]


class StanceResult(BaseModel):
    id: str | int | None
    stances: list[Stance]
    warnings: list[str]
    model_versions: dict[str, str]


class AnalyzeResponse(BaseModel):
    results: list[AnalyzeResult]


class TopicResponse(BaseModel):
    results: list[TopicResult]


class SummaryResponse(BaseModel):
    results: list[SummaryResult]


class StanceResponse(BaseModel):
    results: list[StanceResult]


# ---------------------------------------------------------------------------------------
# Start-up helpers


class StartupError(RuntimeError):
    """The service cannot start (a missing or corrupt model, a bad setting); one sentence."""


class _NoRequestInput(logging.Filter):
    """BentoML logs each invalid request as an error with a traceback that can quote the
    request's text. Drop it: the client got the details in its 400, and akhbar.access logs
    the request (one line, no text)."""

    def filter(self, record: logging.LogRecord) -> bool:
        from pydantic import ValidationError

        return not (record.exc_info and isinstance(record.exc_info[1], ValidationError))


def _setup_logging() -> None:
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


def _stop_startup(message: str) -> None:
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


# ---------------------------------------------------------------------------------------
# The service


@bentoml.service(
    name="akhbar",
    workers=SERVER.workers,
    threads=SERVER.threads,
    traffic={"timeout": BACKSTOP_TIMEOUT_S},
    # The routes reach score_batch through BentoML's in-process client, which by default
    # replaces its session every 100 calls (or 300 s) and closes the old one under the calls
    # still using it: each of them then failed with a 500 ("Server disconnected"), about 1
    # request in 10 at 32 concurrent callers. In process there is nothing to refresh.
    runner_connection=SELF_PROXY_NEVER_REFRESHES,
    logging={"access": {"enabled": False}},  # akhbar.access logs one line per request instead
    labels={"project": "akhbar"},
)
class Akhbar:
    """Scores Arabic news articles: topic, extractive summary, stance toward claims."""

    def __init__(self) -> None:
        import torch

        from akhbar.serving.analyzer import Analyzer, ModelLoadError
        from akhbar.serving.store import ModelStoreError

        self.ready = False
        _setup_logging()
        try:
            self.settings = Settings.from_env()
        except ValueError as exc:
            _stop_startup(f"invalid setting: {exc}.")
        overrides = {t: self.settings.model_override(t) for t in TASKS}
        torch.set_num_threads(self.settings.threads_per_worker())
        try:
            self.analyzer = Analyzer.from_store(TASKS, overrides, batch_size=self.settings.model_batch_size,
                                                summary_sentences=self.settings.summary_sentences,
                                                precision=self.settings.precision)
        except (ModelStoreError, ModelLoadError) as exc:
            _stop_startup(str(exc))
        # The first call loads the sentence encoder and allocates buffers (seconds): not on a
        # caller's time.
        self.analyzer.analyze([SAMPLE_ARTICLE])
        logger.info("akhbar: models loaded (%s, %d torch threads): %s", self.analyzer.precision,
                    torch.get_num_threads(), ", ".join(f"{t}={v}" for t, v in self.analyzer.versions.items()))
        self.ready = True

    def __is_ready__(self) -> bool:
        return self.ready

    async def _score(self, articles: list[Article], tasks: tuple[str, ...]) -> list[dict[str, Any]]:
        note(articles=len(articles))
        items = [WorkItem(article=a, tasks=list(tasks)) for a in articles]
        return await self.to_async.score_batch(items)

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

    @bentoml.api(batchable=True, max_batch_size=SERVER.max_batch_size, max_latency_ms=SERVER.max_latency_ms)
    def score_batch(
        self, items: Annotated[list[WorkItem], Field(min_length=1, json_schema_extra=_ARTICLES_SCHEMA),
                               AfterValidator(_article_count)]
    ) -> list[dict[str, Any]]:
        """Internal: the adaptive-batching entry the routes above share. Call /analyze instead.

        Items from concurrent requests arrive here together; items asking for the same
        parts are scored in one Analyzer call.
        """
        groups: dict[tuple[str, ...], list[int]] = {}
        for i, item in enumerate(items):
            groups.setdefault(tuple(item.tasks), []).append(i)
        results: list[dict[str, Any]] = [{}] * len(items)
        for tasks, members in groups.items():
            scored = self.analyzer.analyze([items[i].article for i in members], tasks)
            for i, result in zip(members, scored, strict=True):
                results[i] = result
        return results


Akhbar.mount_asgi_app(page_app(), path="/", name="ui")  # /ui: matches only its own routes
Akhbar.add_asgi_middleware(AkhbarMiddleware)

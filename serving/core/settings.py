"""Every setting of the HTTP service, in one place, each read from an ``AKHBAR_*`` variable.

=========================  ==========================  ==========  ===========================================
field                      environment variable        default     meaning
=========================  ==========================  ==========  ===========================================
max_text_chars             AKHBAR_MAX_TEXT_CHARS       100000      characters per article ``text`` (and title)
max_claims                 AKHBAR_MAX_CLAIMS           16          claims per article
max_claim_chars            AKHBAR_MAX_CLAIM_CHARS      2000        characters per claim
max_articles               AKHBAR_MAX_ARTICLES         64          articles per request
max_body_bytes             AKHBAR_MAX_BODY_BYTES       16777216    request body size (16 MiB); larger: 413
request_timeout            AKHBAR_REQUEST_TIMEOUT      60          seconds before a request is answered 504
max_queue                  AKHBAR_MAX_QUEUE            64          API requests in progress per worker; more: 503
retry_after                AKHBAR_RETRY_AFTER          5           seconds suggested in ``Retry-After`` on 503/504
shutdown_grace             AKHBAR_SHUTDOWN_GRACE       30          seconds requests in flight get to finish on SIGTERM
api_token                  AKHBAR_API_TOKEN            (unset)     when set, API routes need ``Authorization: Bearer``
summary_sentences          AKHBAR_SUMMARY_SENTENCES    2           default ``summary_sentences`` (k)
topic_model                AKHBAR_TOPIC_MODEL          (store)     store tag or bundle directory for topic
stance_model               AKHBAR_STANCE_MODEL         (store)     store tag or bundle directory for stance
summary_model              AKHBAR_SUMMARY_MODEL        (store)     store tag or bundle directory for summary
model_batch_size           AKHBAR_MODEL_BATCH_SIZE     16          token windows per forward pass
precision                  AKHBAR_PRECISION            auto        encoder arithmetic: auto, fp32, bf16 or int8
workers                    AKHBAR_WORKERS              1           server processes, each with its own models
torch_threads              AKHBAR_TORCH_THREADS        0           torch threads per worker; 0 shares the cores out
threads                    AKHBAR_THREADS              1           scoring threads per worker
max_batch_size             AKHBAR_MAX_BATCH_SIZE       32          articles per adaptive batch
max_latency_ms             AKHBAR_MAX_LATENCY_MS       60000       longest an article may queue for its batch
=========================  ==========================  ==========  ===========================================

The defaults suit 2 CPU cores: one worker scores one batch at a time with both cores, and
32 concurrent callers queue (up to ``max_queue``) instead of being refused. A second worker
did not help there: BentoML handed it no requests at 16 concurrent callers (``make bench``,
2 workers x 1 torch thread: the server used 1.0 core, 14.4-14.9 articles/s, against 18.8-19.3
for one worker with 2 threads).

When the values are read. :meth:`Settings.from_env` reads the environment each time it is
called. The service calls it at start-up (in ``Akhbar.__init__`` and when the ASGI
middleware is built), so limits, models, the token and the timeout come from the
environment the server runs in, never the one a Bento was built in. The last four
(``workers``, ``threads``, ``max_batch_size``, ``max_latency_ms``) are arguments of BentoML's
``@bentoml.service`` and ``@bentoml.api`` decorators, which BentoML reads when it builds the
server from the class; they are therefore read when the serving process imports
``akhbar.serving.http.service``. ``bentoml serve`` (of the repository or of a built Bento) imports
it afresh in every server process, so these too follow the serving environment; ``bentoml
build`` only records the build-time values in ``bento.yaml`` for display.
"""

from __future__ import annotations

import contextvars
import os
from dataclasses import dataclass, fields

from akhbar.models.precision import PRECISIONS

TASKS = ("topic", "summary", "stance")
MAX_SUMMARY_SENTENCES = 20  # fixed by the API: summary_sentences is 1-20
MAX_REQUEST_TIMEOUT = 3600  # BentoML's traffic timeout, set above it as a backstop
USABLE_CPUS = len(os.sched_getaffinity(0))


@dataclass(frozen=True)
class Settings:
    """The service's settings; see the module docstring for each field's variable and default.

    Parameters
    ----------
    max_text_chars: longest ``text`` (and ``title``) accepted, in characters.
    max_claims: most claims per article.
    max_claim_chars: longest claim, in characters.
    max_articles: most articles per request.
    max_body_bytes: largest request body, in bytes; checked before the body is parsed.
    request_timeout: seconds a request may take before it is answered 504.
    max_queue: API requests one worker holds at once (running or queued); more get 503.
    retry_after: seconds suggested in ``Retry-After`` on 503 and 504 answers.
    shutdown_grace: on SIGTERM, seconds the requests in flight get to finish before they are
        cut off (``akhbar serve`` passes it to ``bentoml serve --timeout-graceful-shutdown``).
    api_token: bearer token the API routes require; None leaves them open.
    summary_sentences: summary length when a request does not give ``summary_sentences``.
    topic_model, stance_model, summary_model: a store tag or a bundle directory; None
        takes the promoted (else shipped default) model from the store.
    model_batch_size: token windows per forward pass.
    precision: the encoders' arithmetic (:mod:`akhbar.models.precision`): ``auto``
        is bf16 on a CPU with bf16 instructions, else fp32; ``int8`` quantises the linear
        layers. ``make bench`` measures each against fp32 on the validation splits.
    workers: server processes (BentoML ``workers``).
    torch_threads: torch's intra-op threads in each worker; 0 gives each worker an equal
        share of the usable cores (:meth:`threads_per_worker`).
    threads: scoring threads per worker (BentoML ``threads``).
    max_batch_size: articles per adaptive batch (BentoML ``max_batch_size``).
    max_latency_ms: longest an article may wait for its batch before the service answers
        503 (BentoML ``max_latency_ms``).
    """

    max_text_chars: int = 100_000
    max_claims: int = 16
    max_claim_chars: int = 2_000
    max_articles: int = 64
    max_body_bytes: int = 16 * 1024 * 1024
    request_timeout: float = 60.0
    max_queue: int = 64
    retry_after: int = 5
    shutdown_grace: int = 30
    api_token: str | None = None
    summary_sentences: int = 2
    topic_model: str | None = None
    stance_model: str | None = None
    summary_model: str | None = None
    model_batch_size: int = 16
    precision: str = "auto"
    workers: int = 1
    torch_threads: int = 0
    threads: int = 1
    max_batch_size: int = 32
    max_latency_ms: int = 60_000

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if f.type in ("int", "float") and not value > 0 and f.name != "torch_threads":
                raise ValueError(f"{env_name(f.name)} must be positive, got {value!r}")
        if not 1 <= self.summary_sentences <= MAX_SUMMARY_SENTENCES:
            raise ValueError(
                f"AKHBAR_SUMMARY_SENTENCES must be between 1 and {MAX_SUMMARY_SENTENCES}, "
                f"got {self.summary_sentences}"
            )
        if self.request_timeout > MAX_REQUEST_TIMEOUT:
            raise ValueError(
                f"AKHBAR_REQUEST_TIMEOUT must be at most {MAX_REQUEST_TIMEOUT} s (BentoML's own "
                f"timeout behind it), got {self.request_timeout:g}"
            )
        if self.torch_threads < 0:
            raise ValueError(f"AKHBAR_TORCH_THREADS must be 0 (share the cores) or more, got {self.torch_threads}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"AKHBAR_PRECISION must be one of {', '.join(PRECISIONS)}, got {self.precision!r}")
        if self.max_batch_size < 2:
            # BentoML refuses a batchable API with max_batch_size 1.
            raise ValueError(f"AKHBAR_MAX_BATCH_SIZE must be at least 2, got {self.max_batch_size}")

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Settings:
        """Read every ``AKHBAR_*`` variable now; a bad value raises ValueError naming it."""
        environ = os.environ if environ is None else environ
        values: dict[str, object] = {}
        for f in fields(cls):
            raw = environ.get(env_name(f.name))
            if raw is None or raw.strip() == "":
                continue
            raw = raw.strip()
            try:
                values[f.name] = int(raw) if f.type == "int" else float(raw) if f.type == "float" else raw
            except ValueError:
                kind = "a whole number" if f.type == "int" else "a number"
                raise ValueError(f"{env_name(f.name)} must be {kind}, got {raw!r}") from None
        return cls(**values)

    def threads_per_worker(self) -> int:
        """``torch_threads``, else the usable cores divided among the workers (at least 1)."""
        return self.torch_threads or max(1, USABLE_CPUS // self.workers)

    def model_override(self, task: str) -> str | None:
        """``AKHBAR_<TASK>_MODEL``: a store tag or a bundle directory, or None."""
        return getattr(self, f"{task}_model")


def env_name(field_name: str) -> str:
    return f"AKHBAR_{field_name.upper()}"


# The settings of the server handling the current request (set by the middleware), so that
# request validation uses the limits that server started with.
_current: contextvars.ContextVar[Settings | None] = contextvars.ContextVar("akhbar_settings", default=None)


def use(settings: Settings) -> contextvars.Token:
    """Make ``settings`` the current ones in this context (the middleware does, per request)."""
    return _current.set(settings)


def current() -> Settings:
    """The current request's settings; outside a request, read from the environment."""
    return _current.get() or Settings.from_env()

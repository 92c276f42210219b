"""The scoring core's runtime configuration: how articles are scored, whoever scores them.

The HTTP service, ``akhbar score`` (in its own process or on Ray actors) and the benchmarks
all take it from the same ``AKHBAR_*`` variables, in the same three steps:

1. :meth:`ScoringConfig.from_env` reads the variables and checks every value, once; a bad
   one raises ValueError naming the variable;
2. :meth:`ScoringConfig.runtime` resolves what depends on the machine (``auto`` precision,
   ``0`` torch threads) into a :class:`Runtime`, and :meth:`Runtime.apply` sets torch's
   threads in this process;
3. :meth:`ScoringConfig.resolve_models` turns each task's model setting into a bundle folder
   and a version (:func:`akhbar.serving.core.store.resolve_models`).

The HTTP service's own knobs (body size, timeout, queue, token, workers, ...) are in
:mod:`akhbar.serving.http.settings`; this table is everything that decides a score.

=================  ========================  =======  ==============================================
field              environment variable      default  meaning
=================  ========================  =======  ==============================================
max_text_chars     AKHBAR_MAX_TEXT_CHARS     100000   characters per article ``text`` (and title)
max_claims         AKHBAR_MAX_CLAIMS         16       claims per article
max_claim_chars    AKHBAR_MAX_CLAIM_CHARS    2000     characters per claim
max_articles       AKHBAR_MAX_ARTICLES       64       articles per HTTP request
summary_sentences  AKHBAR_SUMMARY_SENTENCES  2        k (1-20) for articles that do not set
                                                      their own
topic_model        AKHBAR_TOPIC_MODEL        (store)  store tag or bundle directory for topic
summary_model      AKHBAR_SUMMARY_MODEL      (store)  store tag or bundle directory for summary
stance_model       AKHBAR_STANCE_MODEL       (store)  store tag or bundle directory for stance
model_batch_size   AKHBAR_MODEL_BATCH_SIZE   16       token windows per forward pass
precision          AKHBAR_PRECISION          auto     encoder arithmetic: auto, fp32, bf16, int8
                                                      or onnx-int8
torch_threads      AKHBAR_TORCH_THREADS      0        torch threads per process; 0: its share
                                                      of the cores
=================  ========================  =======  ==============================================

What ``0`` torch threads means for each process: the service gives each of its
``AKHBAR_WORKERS`` workers an equal share of the usable cores; ``akhbar score`` on its own
takes every usable core; a Ray actor takes the one CPU Ray reserves for it.

When the values are read: when a process starts scoring (the service's ``Akhbar.__init__``
and its middleware, ``akhbar score`` when its job starts, a benchmark stage when it starts).
A Ray actor gets the configuration its driver read, so the variables of the machine
``akhbar score`` runs on apply on every node. The limits the service states in its OpenAPI
document are read when :mod:`akhbar.serving.core.articles` is imported, in the serving
process (see :mod:`akhbar.serving.http.settings` for why that is start-up, not build).
"""

from __future__ import annotations

import contextvars
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING

from akhbar import extras
from akhbar.models.precision import INT8, PRECISIONS, resolve_precision
from akhbar.models.tasks import TASKS
from akhbar.serving.core.limits import summary_sentences_problem

if TYPE_CHECKING:
    from akhbar.serving.core.store import ModelRef

DEFAULT_SUMMARY_SENTENCES = 2
USABLE_CPUS = len(os.sched_getaffinity(0))
# How a settings field's type (as a string: these modules use postponed annotations) is read.
_PARSERS = {"int": int, "float": float, "str": str, "str | None": str}


def env_name(field_name: str) -> str:
    """``max_text_chars`` → ``AKHBAR_MAX_TEXT_CHARS``."""
    return f"AKHBAR_{field_name.upper()}"


def env_values(settings_class: type, environ: Mapping[str, str]) -> dict[str, object]:
    """The fields of the settings dataclass ``settings_class`` that ``environ`` sets (blank counts
    as unset), converted to the field's type; a ValueError names a variable that is not a number."""
    values: dict[str, object] = {}
    for f in fields(settings_class):
        raw = environ.get(env_name(f.name))
        if f.type not in _PARSERS or raw is None or not raw.strip():
            continue
        try:
            values[f.name] = _PARSERS[f.type](raw.strip())
        except ValueError:
            kind = "a whole number" if f.type == "int" else "a number"
            raise ValueError(f"{env_name(f.name)} must be {kind}, got {raw.strip()!r}") from None
    return values


def check_positive(settings: object, exempt: Iterable[str] = ()) -> None:
    """Every number field of ``settings`` above zero, except ``exempt`` (checked by their owner)."""
    for f in fields(settings):
        value = getattr(settings, f.name)
        if f.type in ("int", "float") and f.name not in exempt and not value > 0:
            raise ValueError(f"{env_name(f.name)} must be positive, got {value!r}")


@dataclass(frozen=True)
class ScoringConfig:
    """How articles are scored; see the module docstring for each field's variable and default.

    Parameters
    ----------
    max_text_chars: longest ``text`` (and ``title``) accepted, in characters.
    max_claims: most claims per article.
    max_claim_chars: longest claim, in characters.
    max_articles: most articles per HTTP request.
    summary_sentences: summary length k for articles that do not set ``summary_sentences``.
    topic_model, summary_model, stance_model: a store tag or a bundle directory; None takes
        the promoted (else shipped default) model from the store.
    model_batch_size: token windows per forward pass.
    precision: the encoders' arithmetic (:mod:`akhbar.models.precision`): ``auto`` is int8
        on a CPU with AVX2, else bf16 on one with bf16 instructions, else fp32; ``int8``
        quantises the linear layers;
        ``onnx-int8`` runs the encoder on ONNX Runtime, fused and int8 (the ``onnx`` extra).
        ``make bench`` measures each against fp32 on the validation splits.
    torch_threads: torch's intra-op threads per scoring process; 0 gives the process its
        share of the usable cores (see :meth:`runtime`).
    """

    max_text_chars: int = 100_000
    max_claims: int = 16
    max_claim_chars: int = 2_000
    max_articles: int = 64
    summary_sentences: int = DEFAULT_SUMMARY_SENTENCES
    topic_model: str | None = None
    summary_model: str | None = None
    stance_model: str | None = None
    model_batch_size: int = 16
    precision: str = "auto"
    torch_threads: int = 0

    def __post_init__(self) -> None:
        check_positive(self, exempt=("summary_sentences", "torch_threads"))
        if problem := summary_sentences_problem(self.summary_sentences):
            raise ValueError(f"AKHBAR_SUMMARY_SENTENCES {problem}, got {self.summary_sentences!r}")
        if self.precision not in PRECISIONS:
            raise ValueError(
                f"AKHBAR_PRECISION must be one of {', '.join(PRECISIONS)}, got {self.precision!r}"
            )
        if self.precision == "onnx-int8" and (absent := extras.missing("onnx")):
            raise ValueError(extras.hint("AKHBAR_PRECISION=onnx-int8", absent[0]))
        if self.torch_threads < 0:
            raise ValueError(
                "AKHBAR_TORCH_THREADS must be 0 (share the cores) or more, got "
                f"{self.torch_threads}"
            )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ScoringConfig:
        """Read every ``AKHBAR_*`` variable of the table now;
        a bad value raises ValueError naming it."""
        return cls(**env_values(cls, os.environ if environ is None else environ))

    def runtime(self, cores: int | None = None, device: str = "cpu") -> Runtime:
        """This configuration as a process on this machine runs it.

        ``cores``: the cores this process may use (default: every usable core); with
        ``torch_threads`` 0 it gets one torch thread per core. ``device``: where the encoders
        run (``cuda`` for a Ray actor given a GPU); on a GPU, ``auto`` precision is bf16 where
        the GPU has it, and the CPU-only int8 precisions fall back to fp32.
        """
        cores = USABLE_CPUS if cores is None else cores
        precision = resolve_precision(self.precision)
        if device != "cpu":
            precision = _gpu_precision(self.precision, precision)
        return Runtime(
            summary_sentences=self.summary_sentences,
            model_batch_size=self.model_batch_size,
            precision=precision,
            torch_threads=self.torch_threads or max(1, cores),
            device=device,
        )

    def resolve_models(self, tasks: Iterable[str] = TASKS) -> dict[str, ModelRef]:
        """The model of each task: ``AKHBAR_<TASK>_MODEL``, else the promoted one, else the
        shipped default; raises :class:`~akhbar.serving.core.store.ModelStoreError` naming a
        missing or unusable one and the command that fixes it."""
        from akhbar.serving.core.store import resolve_models

        tasks = tuple(tasks)
        return resolve_models(tasks, {t: getattr(self, f"{t}_model") for t in tasks})


def _gpu_precision(asked: str, resolved: str) -> str:
    """The precision on a GPU: bf16 for ``auto`` where the GPU has it; fp32 for what runs on
    CPUs only (int8, onnx-int8)."""
    import torch

    if asked == "auto":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    return "fp32" if resolved in INT8 else resolved


@dataclass(frozen=True)
class Runtime:
    """A :class:`ScoringConfig` as one process runs it, with what depends on the machine resolved.

    Parameters
    ----------
    summary_sentences: k for articles that do not set their own.
    model_batch_size: token windows per forward pass.
    precision: what the encoders compute in, ``fp32``, ``bf16``, ``int8`` or ``onnx-int8``
        (``auto`` resolved for this CPU).
    torch_threads: torch's intra-op threads in this process.
    device: where the encoders run, ``cpu`` or ``cuda``.
    """

    summary_sentences: int
    model_batch_size: int
    precision: str
    torch_threads: int
    device: str = "cpu"

    def apply(self) -> None:
        """Give torch this process's threads; call it before the models first run.

        The tokenizer then runs on the calling thread (``TOKENIZERS_PARALLELISM=false``, unless
        the environment sets it): its own pool of threads, spinning beside torch's on the
        same cores, cost the service 6 ms of a median article's 47 (p50 at one caller, 40.5
        without it; 2026-12-08), and its batches are a few windows."""
        import torch  # here, so that reading the configuration never imports torch

        torch.set_num_threads(self.torch_threads)
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


# The configuration of the server handling the current request (set by the HTTP middleware)
# or of the running batch job, so that Article validation uses the limits they started with.
_current: contextvars.ContextVar[ScoringConfig | None] = contextvars.ContextVar(
    "akhbar_scoring", default=None
)


def use(config: ScoringConfig) -> contextvars.Token:
    """Make ``config`` the current one in this context; undo with ``token.var.reset(token)``."""
    return _current.set(config)


def current() -> ScoringConfig:
    """The current request's or batch job's configuration;
    outside both, read from the environment."""
    return _current.get() or ScoringConfig.from_env()

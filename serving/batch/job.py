"""One ``akhbar score`` run and the unit of work every engine shares.

:class:`Job` is what the command line asks for; :func:`score_chunk` is one batch of articles
through the Analyzer, the same call the local engine (:mod:`akhbar.serving.batch.score`) and
each Ray actor (:mod:`akhbar.serving.batch.ray_engine`) make.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from akhbar.serving.core.settings import TASKS

if TYPE_CHECKING:
    from akhbar.serving.core.analyzer import Analyzer

SCORING_FAILED = "scoring failed"
_SHOWN_ERROR_CHARS = 200

logger = logging.getLogger("akhbar.batch")

# A record's line and output id, then its result or the reason it could not be scored.
Outcome = tuple[int, Any, dict[str, Any] | str]


class BatchError(RuntimeError):
    """A fatal problem: one sentence that says what is wrong and what to do; exit status 1."""


@dataclass(frozen=True)
class Job:
    """One ``akhbar score`` run, from the command line (see :func:`build_parser`).

    Parameters
    ----------
    input: the input path, or ``-`` for standard input.
    output: the results file (``.jsonl``/``.json`` or ``.parquet``).
    tasks: the tasks to run.
    claims_field, id_field: input field names.
    summary_sentences: k for articles without their own ``summary_sentences`` (None:
        ``AKHBAR_SUMMARY_SENTENCES``).
    summary_max_words: upper bound on summary words for articles without their own
        ``summary_max_words``, or None.
    batch_size: articles per Analyzer call and per output chunk.
    resume: continue an existing output.
    engine: ``local`` or ``ray``; ray_address and concurrency apply to ``ray``.
    progress: show the progress bar.
    """

    input: str
    output: Path
    tasks: tuple[str, ...] = TASKS
    claims_field: str = "claims"
    id_field: str = "id"
    summary_sentences: int | None = None
    summary_max_words: int | None = None
    batch_size: int = 32
    resume: bool = False
    engine: str = "local"
    ray_address: str | None = None
    concurrency: int | None = None
    progress: bool = True

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> Job:
        return cls(args.input, Path(args.output), tuple(args.tasks), args.claims_field, args.id_field,
                   args.summary_sentences, args.summary_max_words, args.batch_size, args.resume,
                   args.engine, args.ray_address, args.concurrency)


def score_chunk(analyzer: Analyzer, articles: Sequence[dict[str, Any]],
                tasks: Sequence[str]) -> list[dict[str, Any] | str]:
    """One Analyzer call for the chunk, as the service makes; a result per article.

    Should the call fail, each article is scored alone so that one bad article costs only
    itself: it comes back as the reason (the exception's type; never its message, which
    could quote the text).
    """
    try:
        return list(analyzer.analyze(articles, tasks))
    except Exception as exc:  # noqa: BLE001 - a model failure is one record's problem, not the job's
        logger.warning("akhbar score: a chunk of %d failed (%s: %s); scoring it one article at a time",
                       len(articles), type(exc).__name__, str(exc)[:_SHOWN_ERROR_CHARS])
    outcomes: list[dict[str, Any] | str] = []
    for article in articles:
        try:
            outcomes.extend(analyzer.analyze([article], tasks))
        except Exception as exc:  # noqa: BLE001
            outcomes.append(f"{SCORING_FAILED} ({type(exc).__name__})")
    return outcomes


def chunks(pairs: Iterator[tuple[int, dict[str, Any]]], size: int) -> Iterator[list[tuple[int, dict[str, Any]]]]:
    chunk: list[tuple[int, dict[str, Any]]] = []
    for pair in pairs:
        chunk.append(pair)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk

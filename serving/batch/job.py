"""One ``akhbar score`` run and the unit of work every engine shares.

:class:`Job` is what the command line asks for, checked as a whole (the command line's
usage errors are its ValueErrors); :func:`score_chunk` is one batch of articles through the
Analyzer, the same call the local engine (:mod:`akhbar.serving.batch.score`) and each Ray
actor (:mod:`akhbar.serving.batch.ray_engine`) make.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from akhbar.models.tasks import TASKS
from akhbar.serving.batch.outputs import RESULT_FIELDS, STDOUT, rejects_path
from akhbar.serving.core.limits import (
    summary_max_words_problem,
    summary_sentences_problem,
    whole_number_problem,
)

if TYPE_CHECKING:
    from akhbar.serving.core.analyzer import Analyzer
    from akhbar.serving.core.articles import Article

ENGINES = ("local", "ray")
OUTPUT_SUFFIXES = (".jsonl", ".json", ".parquet")
SCORING_FAILED = "scoring failed"
_SHOWN_ERROR_CHARS = 200

logger = logging.getLogger("akhbar.batch")

# A record's line and output id, then its result or the reason it could not be scored.
Outcome = tuple[int, Any, dict[str, Any] | str]


class BatchError(RuntimeError):
    """A fatal problem: one sentence that says what is wrong and what to do; exit status 1."""


@dataclass(frozen=True)
class Job:
    """One ``akhbar score`` run, as the command line gives it (see ``build_parser``).

    Parameters
    ----------
    input: the input path, or ``-`` for standard input.
    output: the results file (``.jsonl``/``.json`` or ``.parquet``), or ``-`` for JSON Lines
        on standard output.
    tasks: the tasks to run.
    claims_field, id_field: input field names.
    summary_sentences: k for articles without their own ``summary_sentences``; None: the
        scoring configuration's (``AKHBAR_SUMMARY_SENTENCES``).
    summary_max_words: upper bound on summary words for articles without their own
        ``summary_max_words``, or None.
    batch_size: articles per Analyzer call and per output chunk.
    resume: continue an existing output.
    engine: ``local`` or ``ray``; ray_address and concurrency apply to ``ray``.
    progress: show the progress bar.
    rejects: where bad records go; None: ``<output>.rejects.jsonl`` (needed with output ``-``).
    keep_fields: input fields copied into each result as they are (null where a record lacks
        one); they may not take a result's own names.

    Raises ValueError naming the flag for a combination the command line refuses.
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
    rejects: Path | None = None
    keep_fields: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        def at_least_one(value: object) -> str | None:
            return whole_number_problem(value, 1)

        for flag, value, problem_of in (
            ("--summary-sentences", self.summary_sentences, summary_sentences_problem),
            ("--summary-max-words", self.summary_max_words, summary_max_words_problem),
            ("--batch-size", self.batch_size, at_least_one),
            ("--concurrency", self.concurrency, at_least_one),
        ):
            if value is not None and (problem := problem_of(value)):
                raise ValueError(f"{flag} {problem}, got {value!r}")
        if self.engine not in ENGINES:
            raise ValueError(f"--engine must be one of {', '.join(ENGINES)}, got {self.engine!r}")
        if self.engine != "ray":
            for flag, value in (
                ("--ray-address", self.ray_address),
                ("--concurrency", self.concurrency),
            ):
                if value is not None:
                    raise ValueError(f"{flag} needs --engine ray")
        if self.to_stdout:
            self._check_stdout()
        elif not self.output.name.lower().endswith(OUTPUT_SUFFIXES):
            raise ValueError(
                f"--output must end in {', '.join(OUTPUT_SUFFIXES)}, or be - for standard "
                f"output, got {str(self.output)!r}"
            )
        if self.rejects is not None and (
            str(self.rejects) == STDOUT or self.rejects == self.output
        ):
            raise ValueError("--rejects must name a file of its own, not - or the --output file")
        if taken := sorted(set(self.keep_fields) & set(RESULT_FIELDS)):
            raise ValueError(
                f"--keep-fields cannot carry {', '.join(taken)}: results have fields of that "
                f"name ({', '.join(RESULT_FIELDS)})"
            )

    def _check_stdout(self) -> None:
        if self.resume:
            raise ValueError(
                "--output - cannot be resumed: what went to standard output cannot be read "
                "back; write to a file to use --resume"
            )
        if self.engine == "ray":
            raise ValueError(
                "--output - does not work with --engine ray: Ray prints its workers' log lines "
                "on standard output, where they would mix with the results; write to a file"
            )
        if self.rejects is None:
            raise ValueError(
                "--output - needs --rejects PATH: standard output carries only the results, "
                "so bad records need a file of their own"
            )

    @property
    def to_stdout(self) -> bool:
        """Results go to standard output (``--output -``)."""
        return str(self.output) == STDOUT

    @property
    def rejects_file(self) -> Path:
        """Where bad records go: ``--rejects``, else ``<output>.rejects.jsonl``."""
        return self.rejects or rejects_path(self.output)

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> Job:
        return cls(
            args.input,
            Path(args.output),
            tuple(args.tasks),
            args.claims_field,
            args.id_field,
            args.summary_sentences,
            args.summary_max_words,
            args.batch_size,
            args.resume,
            args.engine,
            args.ray_address,
            args.concurrency,
            rejects=Path(args.rejects) if args.rejects else None,
            keep_fields=tuple(args.keep_fields),
        )


def score_chunk(
    analyzer: Analyzer, articles: Sequence[Article], tasks: Sequence[str]
) -> list[dict[str, Any] | str]:
    """One Analyzer call for the chunk, as the service makes; a result per article.

    Should the call fail, each article is scored alone so that one bad article costs only
    itself: it comes back as the reason (the exception's type; never its message, which
    could quote the text).
    """
    try:
        return list(analyzer.analyze(articles, tasks))
    except Exception as exc:  # noqa: BLE001 - a model failure is one record's problem, not the job's
        logger.warning(
            "akhbar score: a chunk of %d failed (%s: %s); scoring it one article at a time",
            len(articles),
            type(exc).__name__,
            str(exc)[:_SHOWN_ERROR_CHARS],
        )
    outcomes: list[dict[str, Any] | str] = []
    for article in articles:
        try:
            outcomes.extend(analyzer.analyze([article], tasks))
        except Exception as exc:  # noqa: BLE001
            outcomes.append(f"{SCORING_FAILED} ({type(exc).__name__})")
    return outcomes


def chunks(pairs: Iterator[tuple[int, Article]], size: int) -> Iterator[list[tuple[int, Article]]]:
    chunk: list[tuple[int, Article]] = []
    for pair in pairs:
        chunk.append(pair)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk

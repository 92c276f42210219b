"""One ``akhbar score`` run and the unit of work every engine shares.

:class:`Job` is what the command line asks for, checked as a whole (the command line's
usage errors are its ValueErrors); :func:`score_chunk` is one batch of articles through the
Analyzer, the same call the local engine (:mod:`akhbar.serving.batch.score`) and each Ray
actor (:mod:`akhbar.serving.batch.ray_engine`) make.
"""

from __future__ import annotations

import argparse
import logging
import math
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
    from pydantic import ValidationError

    from akhbar.models.reader import Reject
    from akhbar.serving.core.analyzer import Analyzer
    from akhbar.serving.core.articles import Article

ENGINES = ("local", "ray")
# The Ray engine's fewest input rows per committed output shard (--shard-rows): each shard is
# one manifest file to list on resume; 100 million records make about 50,000.
SHARD_ROWS = 2048
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
        on standard output; with engine ``ray``, a folder or URI of shards (Parquet when its
        name ends in ``.parquet``, else JSON Lines).
    tasks: the tasks to run.
    claims_field, id_field: input field names.
    summary_sentences: k for articles without their own ``summary_sentences``; None: the
        scoring configuration's (``AKHBAR_SUMMARY_SENTENCES``).
    summary_max_words: upper bound on summary words for articles without their own
        ``summary_max_words``, or None.
    batch_size: articles per Analyzer call and per output chunk.
    resume: continue an existing output.
    engine: ``local`` or ``ray``; ray_address, concurrency (actors: N, or (min, max) to
        autoscale), actor_cpus and actor_gpus (per actor), and shard_rows (the fewest input
        rows per committed output shard) apply to ``ray``.
    progress: show the progress bar.
    rejects: where bad records go; None: ``<output>.rejects.jsonl`` (needed with output ``-``);
        with engine ``ray`` always ``<output>/_rejects/``.
    keep_fields: input fields copied into each result as they are (null where a record lacks
        one); they may not take a result's own names.

    Raises ValueError naming the flag for a combination the command line refuses.
    """

    input: str
    output: Path | str
    tasks: tuple[str, ...] = TASKS
    claims_field: str = "claims"
    id_field: str = "id"
    summary_sentences: int | None = None
    summary_max_words: int | None = None
    batch_size: int = 32
    resume: bool = False
    engine: str = "local"
    ray_address: str | None = None
    concurrency: int | tuple[int, int] | None = None
    progress: bool = True
    rejects: Path | None = None
    keep_fields: tuple[str, ...] = ()
    actor_cpus: float | None = None
    actor_gpus: float | None = None
    shard_rows: int | None = None

    def __post_init__(self) -> None:
        def at_least_one(value: object) -> str | None:
            return whole_number_problem(value, 1)

        for flag, value, problem_of in (
            ("--summary-sentences", self.summary_sentences, summary_sentences_problem),
            ("--summary-max-words", self.summary_max_words, summary_max_words_problem),
            ("--batch-size", self.batch_size, at_least_one),
            ("--shard-rows", self.shard_rows, at_least_one),
            *(("--concurrency", n, at_least_one) for n in self.actors),
        ):
            if value is not None and (problem := problem_of(value)):
                raise ValueError(f"{flag} {problem}, got {value!r}")
        least, most = self.actors
        if least > most:
            raise ValueError(f"--concurrency MIN-MAX needs MIN <= MAX, got {least}-{most}")
        for flag, value, floor in (
            ("--actor-cpus", self.actor_cpus, 0.01),
            ("--actor-gpus", self.actor_gpus, 0),
        ):
            if value is not None and not (isinstance(value, int | float) and value >= floor):
                raise ValueError(f"{flag} must be a number of at least {floor:g}, got {value!r}")
        if self.engine not in ENGINES:
            raise ValueError(f"--engine must be one of {', '.join(ENGINES)}, got {self.engine!r}")
        if self.engine != "ray":
            for flag, value in (
                ("--ray-address", self.ray_address),
                ("--concurrency", self.concurrency),
                ("--actor-cpus", self.actor_cpus),
                ("--actor-gpus", self.actor_gpus),
                ("--shard-rows", self.shard_rows),
            ):
                if value is not None:
                    raise ValueError(f"{flag} needs --engine ray")
        if self.to_stdout:
            self._check_stdout()
        elif self.engine == "ray":
            if self.input == "-":
                raise ValueError(
                    "--input - does not work with --engine ray: Ray's workers read the input "
                    "where they run; pass a file, a folder of shards, a glob or a URI"
                )
            if self.rejects is not None:
                raise ValueError(
                    "--rejects does not apply to --engine ray: its rejects go to "
                    "OUTPUT/_rejects/, committed with the results they came with"
                )
        elif not self.output_path.name.lower().endswith(OUTPUT_SUFFIXES):
            raise ValueError(
                f"--output must end in {', '.join(OUTPUT_SUFFIXES)}, or be - for standard "
                f"output, got {str(self.output)!r}"
            )
        if self.rejects is not None and (
            str(self.rejects) == STDOUT or self.rejects == self.output_path
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
    def actors(self) -> tuple[int, int]:
        """The least and most scoring actors (``--concurrency``; one when not given)."""
        if self.concurrency is None:
            return 1, 1
        if isinstance(self.concurrency, tuple):
            return self.concurrency
        return self.concurrency, self.concurrency

    @property
    def cpus_per_actor(self) -> float:
        """``--actor-cpus``, 1 when not given."""
        return 1.0 if self.actor_cpus is None else float(self.actor_cpus)

    @property
    def rows_per_shard(self) -> int:
        """``--shard-rows``, :data:`SHARD_ROWS` when not given."""
        return self.shard_rows or SHARD_ROWS

    @property
    def output_path(self) -> Path:
        """``--output`` as a local path (the local engine's file)."""
        return Path(self.output)

    @property
    def output_uri(self) -> str:
        """``--output`` as given: a local folder or a URI (the Ray engine's folder of shards)."""
        return str(self.output)

    @property
    def parquet_shards(self) -> bool:
        """The Ray engine writes Parquet shards (an output folder named ``*.parquet``)."""
        return self.output_uri.rstrip("/").lower().endswith(".parquet")

    @property
    def to_stdout(self) -> bool:
        """Results go to standard output (``--output -``)."""
        return str(self.output) == STDOUT

    @property
    def rejects_file(self) -> Path:
        """Where bad records go: ``--rejects``, else ``<output>.rejects.jsonl``."""
        return self.rejects or rejects_path(self.output_path)

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> Job:
        return cls(
            args.input,
            args.output,
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
            actor_cpus=args.actor_cpus,
            actor_gpus=args.actor_gpus,
            shard_rows=args.shard_rows,
        )


def unicode_problem(record: dict[str, Any], fields: Sequence[str]) -> str | None:
    """A field holding a lone surrogate (JSON ``"\\ud800"``), which no UTF-8 file can hold.

    Python's JSON reader accepts it, but the models' tokenizer and the UTF-8 output cannot;
    the service's JSON parser refuses such a request as invalid JSON.
    """
    for name in fields:
        value = record.get(name)
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, str):
                try:
                    item.encode("utf-8")
                except UnicodeEncodeError:
                    return f"field '{name}': invalid Unicode (a lone surrogate such as \\ud800)"
    return None


def _own_setting(record: dict[str, Any], name: str) -> object:
    """A record's own summary setting as the service would get it: absent → None.

    Digits in a string (a CSV cell) and a whole float (a Parquet column with gaps, NaN where
    absent) become the integer; anything else is left for the Article's rule to refuse."""
    value = record.get(name)
    if value is None or value == "" or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _first_problem(error: ValidationError, names: dict[str, str]) -> str:
    """The first problem the Article's rules found, in their words, naming the input field."""
    first = error.errors(include_url=False)[0]
    field = str(first["loc"][0]) if first["loc"] else "record"
    cause = first.get("ctx", {}).get("error")
    return f"field '{names.get(field, field)}': {cause if cause is not None else first['msg']}"


def make_reject(line: int, record_id: Any, reason: str) -> Reject:
    """A reject naming the record's own id where it is one a rejects file can show."""
    from akhbar.models.reader import Reject

    shown = (
        record_id if isinstance(record_id, str | int) and not isinstance(record_id, bool) else None
    )
    if isinstance(shown, str) and unicode_problem({"id": shown}, ("id",)):
        shown = None  # a lone surrogate cannot go into the UTF-8 rejects file
    return Reject(line, shown, reason)


def to_article(job: Job, record: dict[str, Any]) -> tuple[Article | None, Any, str | None]:
    """The service's :class:`Article` for one input record (``_line`` included, as the
    reader completes it), or the problem that keeps it out; and the record's own id.

    The record's own summary settings win over the job's; the Article is validated with the
    service's rules and the limits in force (:func:`akhbar.serving.core.config.use`). An id
    the record lacks (or leaves blank) becomes its line number.
    """
    from pydantic import ValidationError

    from akhbar.serving.core.articles import Article

    own_id = record.get(job.id_field)
    if isinstance(own_id, str) and not own_id.strip():
        own_id = None  # an empty CSV cell: no id, as when the column is absent
    k = _own_setting(record, "summary_sentences")
    words = _own_setting(record, "summary_max_words")
    fields = {
        "id": record["_line"] if own_id is None else own_id,
        "text": record["text"],
        "title": record.get("title"),
        "claims": (record.get(job.claims_field) or []) if "stance" in job.tasks else [],
        "summary_sentences": job.summary_sentences if k is None else k,
        "summary_max_words": job.summary_max_words if words is None else words,
    }
    problem = unicode_problem(record, (job.id_field, "text", "title", job.claims_field))
    if problem is None:
        try:
            return Article.model_validate(fields), own_id, None
        except ValidationError as exc:
            problem = _first_problem(exc, {"id": job.id_field, "claims": job.claims_field})
    return None, own_id, problem


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

"""``akhbar score``: score a file of articles in batch, streaming and resumable.

Input is JSON Lines (plain or .gz), CSV or Parquet by extension, or ``-`` for standard
input, read with the foundation's reader (:func:`akhbar.models.reader.read_records`, task
``score``) in its skip policy. Output is JSON Lines (or Parquet, by extension; or JSON Lines
on standard output for ``-``), one record per good input record, in the shape ``POST
/analyze`` returns; its ``id`` is the record's id field, or its line number when it has none
(or a blank one).

One scoring path: each record becomes the service's own
:class:`~akhbar.serving.core.articles.Article`, validated with its rules and the limits of
the scoring configuration (:mod:`akhbar.serving.core.config`, the same ``AKHBAR_*``
variables the service reads, ``AKHBAR_TORCH_THREADS`` included), and is scored by
:class:`~akhbar.serving.core.analyzer.Analyzer`, ``--batch-size`` articles per call, so a
result here equals the service's for the same article.

Bad records go to ``--rejects`` (default ``<output>.rejects.jsonl``; required with ``--output
-``) as ``line``, ``id``, ``reason``: invalid JSON, a missing or empty field, a text, title or
claim over the service's limits, an id an earlier record already had (the first one is
scored), a record the models failed on. The job goes on; the exit status is non-zero only
for fatal errors (unreadable input, missing model, unwritable output) or when every record
was rejected.

Crash safety and ``--resume``: see :mod:`akhbar.serving.batch.outputs`. Each resumed run reads
the whole input again, skips the ids already in the output and writes the rejects file
afresh, so both end up exactly once per record.

Engines: ``local`` scores in this process; ``ray`` (:mod:`akhbar.serving.batch.ray_engine`) scores
the same article batches with a pool of Ray actors, and this process writes their results
with the same writer, so resume and rejects work the same way.

:func:`parse_args` parses and checks a command line without running anything.
"""

from __future__ import annotations

import argparse
import gzip
import os
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from akhbar.models.tasks import STANCE_HEADS, TASKS
from akhbar.serving.batch.job import (
    ENGINES,
    SHARD_ROWS,
    BatchError,
    Job,
    Outcome,
    chunks,
    make_reject,
    score_chunk,
    to_article,
)
from akhbar.serving.batch.outputs import (
    DONE,
    DUPLICATE,
    INDEX_SUFFIX,
    IdIndex,
    OutputError,
    RejectsFile,
    ResultsOutput,
    StdoutResults,
    id_key,
    result_schema,
    results_output,
)
from akhbar.serving.core.config import DEFAULT_SUMMARY_SENTENCES, Runtime, ScoringConfig, use
from akhbar.serving.core.limits import MAX_SUMMARY_SENTENCES

if TYPE_CHECKING:
    import pyarrow as pa

    from akhbar.models.reader import RecordStream
    from akhbar.serving.core.analyzer import Analyzer
    from akhbar.serving.core.articles import Article

INPUT_SUFFIXES = (".jsonl", ".jsonl.gz", ".json", ".csv", ".parquet")
_SHOWN_ID_CHARS = 40


def _tasks(value: str) -> list[str]:
    """Parse ``topic,summary,stance`` (any non-empty subset, any order) into a list."""
    tasks = [t.strip() for t in value.split(",") if t.strip()]
    unknown = [t for t in tasks if t not in TASKS]
    if not tasks or unknown:
        raise argparse.ArgumentTypeError(
            f"expected a comma-separated subset of {','.join(TASKS)}, got {value!r}"
        )
    return list(dict.fromkeys(tasks))  # drop repeats, keep order


def _actor_count(value: str) -> int | tuple[int, int]:
    """``4`` or ``2-8``; the numbers themselves are checked by :class:`Job`."""
    least, dash, most = value.partition("-")
    try:
        return (int(least), int(most)) if dash else int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a whole number N or a range MIN-MAX, got {value!r}"
        ) from None


def _field_names(value: str) -> tuple[str, ...]:
    names = tuple(dict.fromkeys(v.strip() for v in value.split(",") if v.strip()))
    if not names:
        raise argparse.ArgumentTypeError(f"needs at least one field name, got {value!r}")
    return names


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="akhbar score",
        description="Score a file of Arabic news articles (topic, summary, stance) in batch. "
        "Bad records go to the rejects file with their line and reason; the job goes on. "
        "Scoring settings: the AKHBAR_* variables the service reads (akhbar.serving.core.config).",
    )
    parser.add_argument(
        "--input",
        required=True,
        metavar="PATH",
        help="Articles: one .jsonl, .jsonl.gz, .json, .csv or .parquet file, or - for JSON Lines "
        "on standard input; with --engine ray also a folder of such files, a glob, or a URI "
        "(s3://bucket/archive/, gs://..., file://...) (required).",
    )
    parser.add_argument(
        "--output",
        required=True,
        metavar="PATH",
        help="Results: .jsonl (or .parquet), one record per good input record, or - for JSON "
        "Lines on standard output (progress and the summary stay on standard error; needs "
        "--rejects; not with --resume or --engine ray). With --engine ray, a folder or URI "
        "that the workers fill with shards (Parquet when its name ends in .parquet, else JSON "
        "Lines), rejects in OUTPUT/_rejects/. An existing output is never overwritten: use "
        "--resume to continue it (required).",
    )
    parser.add_argument(
        "--rejects",
        default=None,
        metavar="PATH",
        help="Bad records, one JSON line each (line, id, reason) (default: OUTPUT.rejects.jsonl; "
        "required with --output -; not with --engine ray).",
    )
    parser.add_argument(
        "--tasks",
        type=_tasks,
        default=list(TASKS),
        metavar="LIST",
        help=f"Comma-separated tasks to run (default: {','.join(TASKS)}).",
    )
    parser.add_argument(
        "--claims-field",
        default="claims",
        metavar="NAME",
        help="Input field with the list of claims for stance (default: claims).",
    )
    parser.add_argument(
        "--id-field",
        default="id",
        metavar="NAME",
        help="Input field with the record id (default: id); records without one get "
        "their line number.",
    )
    parser.add_argument(
        "--summary-sentences",
        type=int,
        default=None,
        metavar="K",
        help=f"Sentences per summary, 1-{MAX_SUMMARY_SENTENCES}, for records without their own "
        "summary_sentences field (default: AKHBAR_SUMMARY_SENTENCES, as the service; "
        f"{DEFAULT_SUMMARY_SENTENCES} when unset).",
    )
    parser.add_argument(
        "--summary-max-words",
        type=int,
        default=None,
        metavar="N",
        help="Upper bound on summary words for records without their own summary_max_words "
        "field (default: none).",
    )
    parser.add_argument(
        "--batch-size",
        type=int,
        default=32,
        metavar="N",
        help="Articles per model batch and per output chunk (default: 32).",
    )
    parser.add_argument(
        "--resume",
        action="store_true",
        help="Continue an interrupted job: keep the ids already in OUTPUT, repair a torn "
        "last line, score the rest. Starts afresh when OUTPUT does not exist yet "
        "(default: off).",
    )
    parser.add_argument(
        "--keep-fields",
        type=_field_names,
        default=(),
        metavar="LIST",
        help="Comma-separated input fields to copy into each result as they are, e.g. "
        "url,published (default: none).",
    )
    parser.add_argument(
        "--engine",
        choices=ENGINES,
        default="local",
        help="local: this process; ray: a Ray Data job, which needs the akhbar[ray] extra "
        "(default: local).",
    )
    parser.add_argument(
        "--ray-address",
        default=None,
        metavar="ADDR",
        help="Ray cluster to join, e.g. ray://head:10001 (default: start a local Ray). "
        "Only with --engine ray.",
    )
    parser.add_argument(
        "--concurrency",
        type=_actor_count,
        default=None,
        metavar="N|MIN-MAX",
        help="Ray scoring actors, each loading the models once: N, or MIN-MAX for a pool that "
        "grows and shrinks with the work (default: 1). Only with --engine ray.",
    )
    parser.add_argument(
        "--actor-cpus",
        type=float,
        default=None,
        metavar="N",
        help="CPUs Ray reserves per scoring actor, its torch threads when AKHBAR_TORCH_THREADS "
        "is 0 (default: 1). Only with --engine ray.",
    )
    parser.add_argument(
        "--actor-gpus",
        type=float,
        default=None,
        metavar="N",
        help="GPUs per scoring actor, e.g. 1, or 0.5 for two actors per GPU (default: 0). "
        "Only with --engine ray.",
    )
    parser.add_argument(
        "--shard-rows",
        type=int,
        default=None,
        metavar="N",
        help="Input rows per output shard, at least: each shard is committed at once, so a "
        "killed job redoes at most the shards in flight; smaller means more files "
        f"(default: {SHARD_ROWS}). Only with --engine ray.",
    )
    return parser


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """``akhbar score`` arguments, checked as a whole (:class:`Job`), without running anything;
    a bad one exits 2 with the usage and a sentence naming the flag."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        Job.from_args(args)
    except ValueError as exc:
        parser.error(str(exc))
    return args


# ---------------------------------------------------------------------------------------
# The job


@dataclass
class Report:
    """What a run did; :meth:`line` is the closing line ``akhbar score`` prints."""

    read: int = 0
    scored: int = 0
    rejected: int = 0
    skipped: int = 0  # already in the output (--resume)
    elapsed: float = 0.0
    rejects: Path | str | None = None  # a file, or the Ray engine's folder or URI
    already_complete: bool = False

    @property
    def rate(self) -> float:
        return self.scored / self.elapsed if self.elapsed > 0 else 0.0

    @property
    def all_rejected(self) -> bool:
        return self.read > 0 and self.rejected == self.read

    def line(self) -> str:
        text = (
            f"scored {self.scored}, rejected {self.rejected}, elapsed {self.elapsed:.1f} s, "
            f"{self.rate:.1f} records/s"
        )
        if self.skipped:
            text += f"; {self.skipped} already in the output"
        if self.rejected and self.rejects:
            text += f"; rejects in {self.rejects}"
        return text


@dataclass
class _Tally:
    """Counts shared by the record plan, the writer and the progress bar."""

    report: Report
    stream: RecordStream
    bar: Any
    rejects: RejectsFile  # the batch scorer's own; the reader writes its own to the same file
    in_flight: int = 0  # accepted for scoring, not written yet
    kept: dict[int, dict[str, Any]] = field(default_factory=dict)  # line -> --keep-fields

    def tick(self) -> None:
        """Move the bar to the records finished: read, less those still being scored."""
        done = self.stream.n_read - self.in_flight
        if self.bar is not None and done > self.bar.n:
            self.bar.update(done - self.bar.n)


def _reject(tally: _Tally, line: int, record_id: Any, reason: str) -> None:
    tally.rejects.add(make_reject(line, record_id, reason))


def _shown(key: str) -> str:
    return key if len(key) <= _SHOWN_ID_CHARS else key[:_SHOWN_ID_CHARS] + "…"


def good_articles(
    job: Job, stream: RecordStream, index: IdIndex, tally: _Tally
) -> Iterator[tuple[int, Article]]:
    """``(line, article)`` for every record to score, in input order.

    The reader has already set aside what it checks (JSON, fields, types, empty text); here
    each record becomes the service's :class:`Article`, with its own summary settings winning
    over the job's, and is validated with the service's rules and the current configuration's
    limits (set by :func:`score_file`); then come duplicate ids and ids already in the output.
    """
    for record in stream:
        line = record["_line"]
        article, own_id, problem = to_article(job, record)
        if article is None:
            _reject(tally, line, own_id, problem)
            tally.tick()
            continue
        key = id_key(article.id)
        state = index.claim(key)
        if state == DUPLICATE:
            _reject(tally, line, own_id, f"duplicate id {_shown(key)} (an earlier record has it)")
        elif state == DONE:
            tally.report.skipped += 1
        else:
            tally.in_flight += 1
            if job.keep_fields:
                tally.kept[line] = {name: record.get(name) for name in job.keep_fields}
            yield line, article
        tally.tick()


def _writer(
    output: ResultsOutput | StdoutResults, tally: _Tally
) -> Callable[[list[Outcome]], None]:
    """Write one chunk's outcomes: results to the output (one write), failures to the rejects."""

    def write(outcomes: list[Outcome]) -> None:
        results = []
        for line, article_id, outcome in outcomes:
            kept = tally.kept.pop(line, {})
            if isinstance(outcome, str):
                # The reject names the record's own id; a line-number id is its line already.
                _reject(tally, line, None if article_id == line else article_id, outcome)
            else:
                results.append({**outcome, **kept})
        output.append(results)
        tally.report.scored += len(results)
        tally.in_flight -= len(outcomes)
        tally.tick()

    return write


def _estimate_records(source: str) -> int | None:
    """Roughly how many records the input holds, for the bar's ETA (None: unknown)."""
    if source == "-":
        return None
    path = Path(source)
    name = path.name.lower()
    try:
        if name.endswith(".parquet"):
            import pyarrow.parquet as pq

            return pq.ParquetFile(path).metadata.num_rows
        opener = gzip.open if name.endswith(".gz") else open
        newlines, last = 0, b"\n"
        with opener(path, "rb") as f:
            while block := f.read(1 << 20):
                newlines += block.count(b"\n")
                last = block[-1:]
        lines = newlines + (last != b"\n")
        return max(lines - 1, 0) if name.endswith(".csv") else lines
    except Exception:  # noqa: BLE001 - only an estimate; the reader reports real problems
        return None


def _progress_bar(job: Job) -> Any:
    if not job.progress:
        return None
    from tqdm import tqdm

    tty = sys.stderr.isatty()
    return tqdm(
        total=_estimate_records(job.input),
        unit="rec",
        desc="akhbar score",
        file=sys.stderr,
        mininterval=0.5 if tty else 30.0,
        dynamic_ncols=True,
    )


def load_analyzer(job: Job, config: ScoringConfig, runtime: Runtime) -> Analyzer:
    """The service's models for the job's tasks, scored with ``runtime``."""
    from akhbar.serving.core.analyzer import Analyzer, ModelLoadError
    from akhbar.serving.core.store import ModelStoreError

    try:
        return Analyzer.from_store(job.tasks, config, runtime)
    except (ModelStoreError, ModelLoadError) as exc:
        raise BatchError(str(exc)) from None


def _model_refs(job: Job, config: ScoringConfig) -> dict:
    """The service's models for the job's tasks (AKHBAR_<TASK>_MODEL, promoted, shipped)."""
    from akhbar.serving.core.store import ModelStoreError

    try:
        return config.resolve_models(job.tasks)
    except ModelStoreError as exc:
        raise BatchError(str(exc)) from None


def _result_parts(job: Job, settings: dict) -> pa.Schema:
    """The fixed Parquet types of the results (:func:`result_schema`), from the labels of each
    task's head and of the stance model's headline head, if it has one (``settings``: each
    task's bundle settings)."""
    heads = {"topic": ("topic",), "stance": tuple(STANCE_HEADS), "summary": ()}
    labels = {
        head: tuple(s.tasks[head].labels)
        for task, s in settings.items()
        for head in heads[task]
        if head in s.tasks
    }
    return result_schema(job.tasks, labels)


def _folder_problem(source: str) -> str | None:
    """An ``--input`` that is a folder: what to pass instead (one of its files, when it has any)."""
    folder = Path(source)
    if source == "-" or not folder.is_dir():
        return None
    files = sorted(p.name for p in folder.iterdir() if p.name.lower().endswith(INPUT_SUFFIXES))
    hint = f"; it holds {', '.join(files[:5])}{', ...' if len(files) > 5 else ''}" if files else ""
    return (
        f"{source} is a folder; pass one file of articles ({', '.join(INPUT_SUFFIXES)}) "
        f"to --input, e.g. --input {folder / (files[0] if files else 'test.jsonl.gz')}{hint}"
    )


def score_file(job: Job, analyzer: Analyzer | None = None) -> Report:
    """Run one job; raises :class:`BatchError` for fatal problems.

    The scoring configuration comes from the ``AKHBAR_*`` variables, as the service's: its
    limits check the records, its torch threads are applied to this process (the local
    engine) or to each Ray actor, its precision, model batch size, k and models score them.

    Parameters
    ----------
    job: what to score and where.
    analyzer: already loaded models for the local engine (tests, notebooks); None loads
        the ones the service would use.
    """
    from akhbar.models.reader import DataError, read_records

    started = time.monotonic()
    try:
        config = ScoringConfig.from_env()
    except ValueError as exc:
        raise BatchError(f"invalid setting: {exc}") from None
    if job.engine == "ray":
        return _score_on_ray(job, config, started)
    output = results_output(job.output_path, job.resume)
    report = Report(rejects=job.rejects_file)
    try:
        if output.finished():
            report.already_complete = True
            return report
        output.check()
    except OutputError as exc:
        raise BatchError(str(exc)) from None
    if problem := _folder_problem(job.input):
        raise BatchError(f"cannot read the input: {problem}")
    try:
        stream = read_records(
            job.input,
            "score",
            policy="skip",
            rejects_path=report.rejects,
            id_field=job.id_field,
            claims_field=job.claims_field if "stance" in job.tasks else None,
        )
    except (DataError, ValueError) as exc:
        raise BatchError(f"cannot read the input: {exc}") from None

    runtime = config.runtime()
    runtime.apply()
    if analyzer is None:
        analyzer = load_analyzer(job, config, runtime)

    index: IdIndex | None = None
    try:
        output.open()
        index = IdIndex(_index_path(job))
        if job.resume:
            index.add_done(output.ids())
    except (OutputError, OSError, sqlite3.Error) as exc:
        output.close()
        if index is not None:
            index.close()
        raise BatchError(str(exc)) from None
    # Every run reads the whole input, so the rejects are written afresh each time.
    report.rejects.unlink(missing_ok=True)
    tally = _Tally(report, stream, _progress_bar(job), RejectsFile(report.rejects))
    articles = good_articles(job, stream, index, tally)
    write = _writer(output, tally)
    limits = use(config)  # the Article rules check records against this job's limits
    try:
        for chunk in chunks(articles, job.batch_size):
            outcomes = score_chunk(analyzer, [a for _, a in chunk], job.tasks)
            write([(line, a.id, o) for (line, a), o in zip(chunk, outcomes, strict=True)])
        output.finish(
            lambda: _result_parts(
                job, {t: p.bundle.settings for t, p in analyzer.predictors.items()}
            )
        )
    except DataError as exc:
        raise BatchError(
            f"cannot read the input: {exc}; the results so far are kept, rerun with "
            "--resume once the input is fixed"
        ) from None
    except OutputError as exc:
        raise BatchError(str(exc)) from None
    except OSError as exc:  # the rejects file, beside the output
        raise BatchError(
            f"cannot write {exc.filename or 'a file'}: {exc.strerror or exc}"
        ) from None
    except sqlite3.Error as exc:  # the id index, beside the output (a full disk)
        raise BatchError(
            f"cannot write {index.path}: {exc}; the results written before are kept: make room, "
            "then rerun the same command with --resume"
        ) from None
    finally:
        limits.var.reset(limits)
        output.close()
        index.close()
        tally.rejects.close()
        if tally.bar is not None:
            tally.bar.close()
    report.read = stream.n_read
    report.rejected = stream.n_rejected + tally.rejects.count
    report.elapsed = time.monotonic() - started
    return report


def _score_on_ray(job: Job, config: ScoringConfig, started: float) -> Report:
    """The Ray engine's run (:mod:`akhbar.serving.batch.ray_engine`), as a :class:`Report`."""
    from akhbar.models.bundle import read_settings
    from akhbar.serving.batch.ray_engine import check_ray, score_with_ray

    check_ray()
    models = _model_refs(job, config)
    parts = None
    if job.parquet_shards:
        parts = _result_parts(job, {t: read_settings(ref.path) for t, ref in models.items()})
    run = score_with_ray(job, config, models, parts)
    return Report(
        read=run.scored + run.rejected,
        scored=run.scored,
        rejected=run.rejected,
        skipped=run.skipped,
        elapsed=time.monotonic() - started,
        rejects=f"{job.output_uri.rstrip('/')}/_rejects",
        already_complete=run.complete_before,
    )


def _index_path(job: Job) -> Path:
    """The id index: beside the output file, or in the temp folder for standard output."""
    if job.to_stdout:
        return Path(tempfile.gettempdir()) / f"akhbar-score-{os.getpid()}{INDEX_SUFFIX}"
    return job.output_path.with_name(job.output_path.name + INDEX_SUFFIX)


def main(argv: list[str] | None = None) -> int:
    job = Job.from_args(parse_args(argv))
    try:
        report = score_file(job)
    except BatchError as exc:
        print(f"akhbar score: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        advice = "" if job.to_stdout else "; run the same command with --resume to continue"
        print(f"akhbar score: interrupted{advice}", file=sys.stderr)
        return 130
    if report.already_complete:
        print(
            f"akhbar score: {job.output} is already complete; nothing to resume "
            "(a Parquet output, and a Ray job's folder, is complete once its job ends)",
            file=sys.stderr,
        )
        return 0
    print(f"akhbar score: {report.line()}", file=sys.stderr)
    if report.all_rejected:
        print(f"akhbar score: every record was rejected; see {report.rejects}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

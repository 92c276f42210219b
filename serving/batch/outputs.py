"""Crash-safe files for ``akhbar score``: the resumable results file, its id index, rejects.

The promise: a job killed at any moment, SIGKILL included and in the middle of a
write, then re-run with ``--resume``, ends with every good input id in the output exactly
once. How it is kept:

* Results are JSON Lines, **append-only**. Each chunk is encoded first and handed to the
  kernel in one buffer (:func:`_write_all`), then fsynced. A kill can only leave a prefix of
  that buffer: whole lines, then at most one torn line without its newline.
* On ``--resume``, :meth:`JsonlResults.open` cuts the file back to its last newline (the
  torn line goes, its record is scored again) and reads the ids already there.
* Ids are remembered in :class:`IdIndex`, an SQLite file beside the output, so memory stays
  flat however many ids a job has. It is rebuilt from the output on every start, so it can
  never disagree with it, and removed at the end.
* Parquet cannot be appended safely, so a ``.parquet`` output is built in a JSON Lines
  ``<output>.partial.jsonl`` (resumable as above) and converted once the job ends: written
  to a temporary file and renamed into place, so ``<output>`` is either absent or complete.
* An exclusive lock on the results file stops two jobs from writing one output.

``--output -`` (:class:`StdoutResults`) writes the same JSON Lines to standard output instead,
a chunk per write; standard output cannot be read back, so it cannot be resumed.
"""

from __future__ import annotations

import fcntl
import json
import os
import sqlite3
import sys
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from akhbar.models.reader import Reject
from akhbar.models.tasks import STANCE_HEADS

if TYPE_CHECKING:
    import pyarrow as pa

STDOUT = "-"
PARTIAL_SUFFIX = ".partial.jsonl"
REJECTS_SUFFIX = ".rejects.jsonl"
INDEX_SUFFIX = ".ids.sqlite"
_TAIL_BLOCK = 1 << 16
_PARQUET_ROWS = 1024  # rows per Parquet row group, and per conversion step

# What IdIndex.claim answers.
NEW, DONE, DUPLICATE = "new", "done", "duplicate"
# The fields of a result (``POST /analyze``'s shape); --keep-fields may not reuse them.
RESULT_FIELDS = ("id", "topic", "summary", "stances", "warnings", "model_versions")


class OutputError(RuntimeError):
    """The output cannot be used as asked (exists without --resume, unwritable, not ours)."""


def id_key(value: Any) -> str:
    """The id as JSON text, so ``5`` and ``"5"`` stay two different ids, as in the output."""
    return json.dumps(value, ensure_ascii=False)


def rejects_path(output: Path) -> Path:
    """``<output>.rejects.jsonl``, the foundation reader's rejects format."""
    return output.with_name(output.name + REJECTS_SUFFIX)


def _write_all(fd: int, data: bytes) -> None:
    """Write every byte (``os.write`` may write fewer); the crash tests interrupt this."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _fsync_dir(path: Path) -> None:
    """Make a file's creation or rename survive a power cut, not only a killed process."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def repair_tail(path: Path) -> int:
    """Cut ``path`` back to just after its last newline; returns the bytes dropped.

    A kill in the middle of a write leaves a torn last line; it carried no result that
    counts, and its record is scored again.
    """
    size = path.stat().st_size
    end = size
    with path.open("rb") as f:
        while end > 0:
            start = max(0, end - _TAIL_BLOCK)
            f.seek(start)
            block = f.read(end - start)
            cut = block.rfind(b"\n")
            if cut >= 0:
                end = start + cut + 1
                break
            end = start
    if end != size:
        os.truncate(path, end)
    return size - end


class JsonlResults:
    """The append-only results file (see the module docstring).

    Parameters
    ----------
    path: the JSON Lines file to append to.
    resume: continue an existing file; without it an existing file is an error, never
        overwritten.
    shown: the name to use in messages (the user's ``--output`` for a Parquet job).
    """

    def __init__(self, path: Path, resume: bool, shown: Path | None = None) -> None:
        self.path = path
        self.resume = resume
        self.shown = shown or path
        self.repaired_bytes = 0
        self._fd: int | None = None

    def check(self) -> None:
        """Refuse early (before models load) what :meth:`open` would refuse."""
        if self.path.exists() and not self.resume:
            raise OutputError(
                f"{self.shown} exists; pass --resume to continue that job, or choose "
                "another --output (an existing output is never overwritten)"
            )
        if self.path.exists() and not self.path.is_file():
            raise OutputError(f"{self.shown} is not a file")
        probe = self.path.parent  # the nearest folder that exists: open() creates the rest
        while not probe.exists():
            probe = probe.parent
        if not probe.is_dir():
            raise OutputError(f"cannot write {self.shown}: {probe} is not a folder")
        if not os.access(probe, os.W_OK | os.X_OK):
            raise OutputError(f"cannot write {self.shown}: {probe} is not writable")

    def open(self) -> None:
        """Create or reopen the file, locked; on resume, repair a torn last line."""
        self.check()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            created = not self.path.exists()
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        except OSError as exc:
            raise OutputError(f"cannot write {self.shown}: {exc.strerror}") from None
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self.close()
            raise OutputError(
                f"{self.shown} is being written by another akhbar score job"
            ) from None
        if created:
            _fsync_dir(self.path.parent)
        else:
            self.repaired_bytes = repair_tail(self.path)

    def ids(self) -> Iterator[str]:
        """The id key of every result already in the file, streamed."""
        with self.path.open("rb") as f:
            for number, raw in enumerate(f, start=1):
                if not raw.strip(b"\n\x00 "):
                    continue  # zeros a power cut can leave after fsync-less data
                try:
                    yield id_key(json.loads(raw)["id"])
                except (ValueError, KeyError, TypeError):
                    raise OutputError(
                        f"{self.shown} line {number} is not a result of akhbar score; move the "
                        "file aside and start again"
                    ) from None

    def append(self, results: Iterable[dict[str, Any]]) -> int:
        """Append whole lines, then fsync: after this returns they survive any crash."""
        if self._fd is None:
            raise RuntimeError("JsonlResults.append before open")
        lines = [json.dumps(r, ensure_ascii=False) + "\n" for r in results]
        if lines:
            before = os.fstat(self._fd).st_size
            try:
                _write_all(self._fd, "".join(lines).encode("utf-8"))
                os.fsync(self._fd)
            except OSError as exc:
                # A full disk or a file-size limit: drop the part of this chunk that got in, so
                # the file holds whole lines only (--resume would cut it too).
                try:
                    os.ftruncate(self._fd, before)
                except OSError:
                    pass
                raise OutputError(
                    f"cannot write {self.shown}: {exc.strerror or exc}; the results written "
                    "before are kept: make room, then rerun the same command with --resume"
                ) from None
        return len(lines)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # also releases the lock
            self._fd = None


class ResultsOutput:
    """``--output`` as the user named it: JSON Lines directly, or Parquet via a partial file.

    Parameters
    ----------
    output: the ``--output`` path (``.jsonl``/``.json`` or ``.parquet``).
    resume: ``--resume``.
    """

    def __init__(self, output: Path, resume: bool) -> None:
        self.output = output
        self.parquet = output.name.lower().endswith(".parquet")
        self.jsonl = JsonlResults(
            output.with_name(output.name + PARTIAL_SUFFIX) if self.parquet else output,
            resume,
            shown=output,
        )
        self.resume = resume

    def finished(self) -> bool:
        """A Parquet output that exists is complete (it is renamed into place at the end).

        A kill between that rename and removing the partial file leaves both; the partial
        one is then dropped here.
        """
        if not (self.parquet and self.output.exists()):
            return False
        if not self.resume:
            raise OutputError(
                f"{self.output} exists; pass --resume to continue that job, or choose "
                "another --output (an existing output is never overwritten)"
            )
        self.jsonl.path.unlink(missing_ok=True)
        return True

    def check(self) -> None:
        if self.parquet and self.jsonl.path.exists() and not self.resume:
            raise OutputError(
                f"an unfinished job for {self.output} left {self.jsonl.path}; pass --resume to "
                "continue it, or delete that file to start again"
            )
        self.jsonl.check()

    def open(self) -> None:
        self.jsonl.open()

    def ids(self) -> Iterator[str]:
        """The id key of every result already written (for ``--resume``)."""
        return self.jsonl.ids()

    def append(self, results: Iterable[dict[str, Any]]) -> int:
        return self.jsonl.append(results)

    def close(self) -> None:
        self.jsonl.close()

    def finish(self, parts: Callable[[], pa.Schema] | None = None) -> None:
        """Close; for Parquet, convert the partial file (with the result types ``parts()``
        gives, :func:`result_schema`), rename it into place, drop the partial."""
        self.close()
        if not self.parquet:
            return
        temporary = self.output.with_name(f".{self.output.name}.tmp")
        try:
            jsonl_to_parquet(self.jsonl.path, temporary, parts() if parts else None)
            os.replace(temporary, self.output)
            _fsync_dir(self.output.parent)
        except OSError as exc:
            temporary.unlink(missing_ok=True)
            raise OutputError(f"cannot write {self.output}: {exc.strerror or exc}") from None
        self.jsonl.path.unlink()


class StdoutResults:
    """``--output -``: results as JSON Lines on standard output, each chunk written and flushed
    at once, with the interface of :class:`ResultsOutput`. Nothing is kept to resume from."""

    def finished(self) -> bool:
        return False

    def check(self) -> None:
        pass

    def open(self) -> None:
        sys.stdout.flush()  # anything printed before goes first; results go out as bytes

    def ids(self) -> Iterator[str]:
        return iter(())

    def append(self, results: Iterable[dict[str, Any]]) -> int:
        lines = [json.dumps(r, ensure_ascii=False) + "\n" for r in results]
        try:
            sys.stdout.buffer.write("".join(lines).encode("utf-8"))
            sys.stdout.buffer.flush()
        except BrokenPipeError:
            # The reading program stopped (`| head`): point standard output at /dev/null so the
            # interpreter's own flush at exit does not fail a second time.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            raise OutputError(
                "standard output was closed before the job ended (the program reading it stopped)"
            ) from None
        return len(lines)

    def close(self) -> None:
        pass

    def finish(self, parts: Callable[[], pa.Schema] | None = None) -> None:
        pass


def results_output(output: Path, resume: bool) -> ResultsOutput | StdoutResults:
    """Where ``--output`` sends results: standard output for ``-``, else a crash-safe file."""
    return StdoutResults() if str(output) == STDOUT else ResultsOutput(output, resume)


def _jsonl_chunks(path: Path, rows: int) -> Iterator[list[dict[str, Any]]]:
    chunk: list[dict[str, Any]] = []
    with path.open("rb") as f:
        for raw in f:
            if raw.strip():
                chunk.append(json.loads(raw))
                if len(chunk) == rows:
                    yield chunk
                    chunk = []
    if chunk:
        yield chunk


def result_schema(tasks: Iterable[str], labels: dict[str, tuple[str, ...]]) -> pa.Schema:
    """The Arrow types of a result's parts, fixed by the tasks run and the models' labels
    (``{head: labels}``; ``stance_headline`` when the stance model has that head), never by
    the data: ``warnings`` is a list of strings even when every list is empty."""
    import pyarrow as pa

    def scores(names: Iterable[str]) -> pa.DataType:
        return pa.struct([pa.field(name, pa.float64()) for name in dict.fromkeys(names)])

    strings, ints = pa.list_(pa.string()), pa.list_(pa.int64())
    evidence = pa.struct([("text", pa.string()), ("start", pa.int64()), ("end", pa.int64())])
    stance_scores = scores(name for head in STANCE_HEADS for name in labels.get(head, ()))
    columns = [  # (task, column, type), in the order of a result's fields
        (
            "topic",
            "topic",
            pa.struct(
                [
                    ("label", pa.string()),
                    ("scores", scores(labels.get("topic", ()))),
                    ("low_confidence", pa.bool_()),
                ]
            ),
        ),
        (
            "summary",
            "summary",
            pa.struct([("sentences", strings), ("indices", ints), ("offsets", pa.list_(ints))]),
        ),
        (
            "stance",
            "stances",
            pa.list_(
                pa.struct(
                    [
                        ("claim", pa.string()),
                        ("label", pa.string()),
                        ("label_set", pa.string()),
                        ("scores", stance_scores),
                        ("low_confidence", pa.bool_()),
                        ("evidence", pa.list_(evidence)),
                    ]
                )
            ),
        ),
    ]
    return pa.schema(
        [
            *(pa.field(column, kind) for task, column, kind in columns if task in tasks),
            pa.field("warnings", strings),
            pa.field("model_versions", pa.struct([(t, pa.string()) for t in tasks])),
        ]
    )


def _rest(results: list[dict[str, Any]], fixed: Iterable[str]) -> pa.Schema:
    """The inferred types of the fields a result has beyond ``id`` and ``fixed`` (kept input
    fields)."""
    import pyarrow as pa

    skip = {"id", *fixed}
    return pa.Table.from_pylist(
        [{k: v for k, v in r.items() if k not in skip} for r in results]
    ).schema


def _no_nulls(schema: pa.Schema) -> pa.Schema:
    """A field that never had a value is text rather than Arrow's null type."""
    import pyarrow as pa

    return pa.schema([f.with_type(pa.string()) if pa.types.is_null(f.type) else f for f in schema])


def _text_ids(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Ids in a text column: strings as they are, anything else as its JSON (``5`` -> ``"5"``)."""
    return [{**r, "id": r["id"] if isinstance(r["id"], str) else id_key(r["id"])} for r in results]


def results_table(
    results: list[dict[str, Any]], parts: pa.Schema | None, id_type: pa.DataType
) -> pa.Table:
    """One Arrow table of results: ``id`` of ``id_type`` (int64 or text), the result's parts
    with their fixed types (:func:`result_schema`), then the kept fields, inferred."""
    import pyarrow as pa

    fixed = list(parts) if parts is not None else []
    schema = pa.schema([pa.field("id", id_type), *fixed, *_rest(results, (f.name for f in fixed))])
    rows = results if pa.types.is_integer(id_type) else _text_ids(results)
    return pa.Table.from_pylist(rows, schema=schema)


def jsonl_to_parquet(source: Path, target: Path, parts: pa.Schema | None = None) -> None:
    """Stream results from JSON Lines into one Parquet file, ``_PARQUET_ROWS`` at a time.

    ``parts``: the fixed types of the result's parts (:func:`result_schema`); the columns it
    does not name (fields kept from the input) are inferred from the data, in two passes so
    memory stays flat: the first infers and unifies the types of every chunk, the second
    writes. Nested parts stay nested (``topic.scores.economy``). ``id`` is an integer column
    when every id is an integer (line numbers), else text.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    fixed = list(parts) if parts is not None else []
    schemas = []
    all_int_ids = True
    for chunk in _jsonl_chunks(source, _PARQUET_ROWS):
        all_int_ids &= all(
            isinstance(r["id"], int) and not isinstance(r["id"], bool) for r in chunk
        )
        schemas.append(_rest(chunk, (f.name for f in fixed)))
    rest = _no_nulls(
        pa.unify_schemas(schemas, promote_options="permissive") if schemas else pa.schema([])
    )
    id_type = pa.int64() if all_int_ids and schemas else pa.string()
    schema = pa.schema([pa.field("id", id_type), *fixed, *rest])
    with pq.ParquetWriter(target, schema) as writer:
        for chunk in _jsonl_chunks(source, _PARQUET_ROWS):
            rows = chunk if id_type == pa.int64() else _text_ids(chunk)
            writer.write_table(pa.Table.from_pylist(rows, schema=schema))
        if not schemas:
            writer.write_table(schema.empty_table())
    with open(target, "rb") as f:
        os.fsync(f.fileno())


class IdIndex:
    """Which ids this job has met, on disk (SQLite), so memory does not grow with the input.

    Each id key is ``done`` (in the output from an earlier run, not met yet in this pass) or
    ``seen`` (met in this pass). :meth:`claim` answers, for the next input record:
    :data:`NEW` (score it), :data:`DONE` (already in the output: skip it) or
    :data:`DUPLICATE` (an earlier record of this input had the same id: reject it).

    Parameters
    ----------
    path: the SQLite file; replaced if it exists (it is rebuilt from the output each start).
    """

    _COMMIT_EVERY = 2000

    def __init__(self, path: Path) -> None:
        self.path = path
        path.unlink(missing_ok=True)
        self._db = sqlite3.connect(path)
        # A throw-away index: no journal, no syncs; it is rebuilt if a crash damages it.
        self._db.execute("PRAGMA journal_mode=OFF")
        self._db.execute("PRAGMA synchronous=OFF")
        self._db.execute(
            "CREATE TABLE ids (key TEXT PRIMARY KEY, seen INTEGER NOT NULL) WITHOUT ROWID"
        )
        self._pending = 0

    def add_done(self, keys: Iterable[str]) -> int:
        """Record the ids already in the output; returns how many."""
        before = self._count()
        self._db.executemany("INSERT OR IGNORE INTO ids VALUES (?, 0)", ((k,) for k in keys))
        self._db.commit()
        return self._count() - before

    def claim(self, key: str) -> str:
        row = self._db.execute("SELECT seen FROM ids WHERE key = ?", (key,)).fetchone()
        if row is None:
            self._db.execute("INSERT INTO ids VALUES (?, 1)", (key,))
            answer = NEW
        elif row[0] == 0:
            self._db.execute("UPDATE ids SET seen = 1 WHERE key = ?", (key,))
            answer = DONE
        else:
            return DUPLICATE
        self._pending += 1
        if self._pending >= self._COMMIT_EVERY:
            self._db.commit()
            self._pending = 0
        return answer

    def _count(self) -> int:
        return self._db.execute("SELECT COUNT(*) FROM ids").fetchone()[0]

    def close(self) -> None:
        self._db.close()
        self.path.unlink(missing_ok=True)


class RejectsFile:
    """Rejects the batch scorer adds to the reader's own (title and claim limits, duplicate
    ids, records the models failed on), in the same format and the same file.

    Both append whole lines and flush each at once, so a crash keeps the rejects so far.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.count = 0
        self._file = None

    def add(self, reject: Reject) -> None:
        try:
            if self._file is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._file = self.path.open("a", encoding="utf-8")
            self._file.write(reject.to_json() + "\n")
            self._file.flush()
        except OSError as exc:
            raise OutputError(
                f"cannot write {self.path}: {exc.strerror or exc}; the results written before are "
                "kept: make room, then rerun the same command with --resume"
            ) from None
        self.count += 1

    def close(self) -> None:
        if self._file is not None:
            try:
                self._file.close()
            except OSError:
                pass  # add() already reported the failed write
            self._file = None

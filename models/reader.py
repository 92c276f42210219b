"""One reader for every data source akhbar consumes: training, evaluation and batch scoring.

Why one reader: the three callers must agree on what a valid record is, report bad records
the same way, and never crash half-way through a large file because of one bad line.

Sources (chosen by :func:`read_records`):

* a file, by extension: ``.jsonl``, ``.jsonl.gz`` and ``.json`` (all JSON Lines), ``.csv``,
  ``.parquet``;
* ``-``: JSON Lines on standard input;
* a dataset folder holding ``<split>.jsonl.gz`` or ``<split>.jsonl`` files;
* a Hugging Face hub name, ``owner/name`` or ``owner/name:split``.

Every source is streamed (line by line, CSV row by row, Parquet by row batches), so memory
stays flat however large the file. Line numbers are 1-based: the physical line for JSON
Lines (blank lines count but are not records), the data row for CSV with the header as
line 1 (a quoted cell spanning several physical lines is still one line), the row for
Parquet and hub datasets.

Error messages and reject reasons name the field and the problem but never quote article
text, so logs do not leak content; only label values are quoted, truncated.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import io
import json
import os
import re
import sys
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO, Any, Literal, TextIO

from akhbar.extras import MissingExtra, require

from .tasks import TASK_FIELDS, TaskFields

SUPPORTED_EXTENSIONS = (".jsonl", ".jsonl.gz", ".json", ".csv", ".parquet")
SPLIT_EXTENSIONS = (".jsonl.gz", ".jsonl")
# Plain JSON Lines: one record per line, so any line break starts a record.
JSON_LINES_EXTENSIONS = (".jsonl", ".json")
STDIN = "-"
STRICT_HINT = "strict mode stops at the first bad record; use --skip-bad to set bad records aside"
TEXT_FIELD = "text"

_REPO_ROOT = Path(__file__).resolve().parent.parent
_HUB_NAME = re.compile(r"^[\w.-]+/[\w.-]+(?::[\w.-]+)?$")
_SHOWN_VALUE_CHARS = 40
_SHOWN_ERROR_CHARS = 200
_PARQUET_BATCH_ROWS = 1024
# csv's default cell limit (128 KiB) is below the longest news articles.
_CSV_CELL_LIMIT = 2**31 - 1
_JSON_TYPES = {
    bool: "boolean",
    int: "number",
    float: "number",
    str: "string",
    list: "array",
    dict: "object",
    type(None): "null",
}

Policy = Literal["strict", "skip"]


class DataError(ValueError):
    """A source or record akhbar cannot use; the message says where and why in one sentence.

    ``line`` is None for problems with the source as a whole (missing file, unknown format).
    """

    def __init__(
        self, source: str, reason: str, line: int | None = None, hint: str | None = None
    ) -> None:
        where = source if line is None else f"{source} line {line}"
        super().__init__(f"{where}: {reason}" + (f" ({hint})" if hint else ""))
        self.source = source
        self.line = line
        self.reason = reason


@dataclass(frozen=True)
class Reject:
    """One record set aside under the skip policy, as written to the rejects file."""

    line: int
    id: str | int | None
    reason: str

    def to_json(self) -> str:
        """One JSON object, so the rejects file is JSON Lines and easy to re-check."""
        return json.dumps(
            {"line": self.line, "id": self.id, "reason": self.reason}, ensure_ascii=False
        )


@dataclass(frozen=True)
class _Unparsed:
    """A line that never became a record (bad bytes, bad JSON); carries the reason instead."""

    reason: str


Row = dict[str, Any] | _Unparsed
RowSource = Callable[[], Iterator[tuple[int, Row]]]


def data_root() -> Path:
    """Where the shared datasets live: ``$AKHBAR_DATA``, else ``<repo>/../shared/data``.

    The data lake sits beside the repository, never inside it, so tests and tools find it
    without copying it into the project.
    """
    configured = os.environ.get("AKHBAR_DATA")
    return Path(configured).expanduser() if configured else _REPO_ROOT.parent / "shared" / "data"


def dataset_path(name: str) -> Path:
    """``data_root() / name``, checked, e.g. ``dataset_path("topic/ant_v2.1_multisource")``."""
    path = data_root() / name
    if not path.exists():
        raise DataError(
            str(path),
            f"dataset '{name}' does not exist; set AKHBAR_DATA to the "
            "folder that holds the datasets",
        )
    return path


def read_records(
    source: str | Path,
    task: str,
    *,
    labels: Sequence[str] | None = None,
    policy: Policy = "strict",
    rejects_path: str | Path | None = None,
    id_field: str = "id",
    claims_field: str | None = None,
    split: str | None = None,
    max_text_chars: int | None = None,
) -> RecordStream:
    """Validated records of ``task`` from ``source``; see the module docstring for sources.

    Parameters
    ----------
    source: a file path, ``-`` for standard input, a dataset folder, or a hub name.
    task: a key of :data:`akhbar.models.tasks.TASK_FIELDS`.
    labels: the allowed values of the task's label field; None checks no label set.
    policy: ``strict`` raises :class:`DataError` at the first bad record; ``skip`` writes each
        bad record to ``rejects_path`` and goes on.
    rejects_path: JSON Lines file the skip policy appends rejects to (required for skip).
    id_field: the field holding the record id (str or int), shown in rejects.
    claims_field: for task ``score``, an optional field holding a list of claims.
    split: which split of a dataset folder or hub dataset to read.
    max_text_chars: reject records whose ``text`` is longer than this.

    Raises ValueError for inconsistent arguments and DataError for a missing source, an
    unknown format or an unreachable hub, all before any record is read; bad records, and
    files that turn out corrupt (gzip, Parquet, CSV structure), surface while iterating.
    """
    _check_policy(policy, rejects_path)
    schema = record_schema(
        task,
        labels=labels,
        id_field=id_field,
        claims_field=claims_field,
        max_text_chars=max_text_chars,
    )
    name, rows = _resolve_source(source, split, schema.fields)
    return RecordStream(name, rows, schema, Path(rejects_path) if rejects_path else None)


def record_schema(
    task: str,
    *,
    labels: Sequence[str] | None = None,
    id_field: str = "id",
    claims_field: str | None = None,
    max_text_chars: int | None = None,
) -> RecordSchema:
    """The checks :func:`read_records` applies (same parameters), for a caller that parses
    rows itself (:func:`stream_rows`) and handles rejects its own way (the Ray engine)."""
    if max_text_chars is not None and max_text_chars < 1:
        raise ValueError(f"max_text_chars must be at least 1, got {max_text_chars}")
    fields = _task_fields(task, labels, id_field, claims_field)
    return RecordSchema(
        fields, id_field, tuple(labels) if labels is not None else None, max_text_chars
    )


class RecordStream:
    """The records of one source; iterate once, then read ``n_read``, ``n_rejected``.

    A class rather than a bare generator because callers need the counts and the summary
    line after their ``for`` loop. ``n_read`` counts every record seen, rejected ones
    included; blank lines are not records.
    """

    def __init__(
        self, name: str, rows: RowSource, schema: RecordSchema, rejects_path: Path | None
    ) -> None:
        self.name = name
        self.rejects_path = rejects_path
        self.n_read = 0
        self.n_rejected = 0
        self._rows = rows
        self._schema = schema
        self._rejects: TextIO | None = None
        self._started = False

    def __iter__(self) -> Iterator[dict[str, Any]]:
        # Standard input cannot be rewound and a second pass would append rejects twice.
        if self._started:
            raise RuntimeError(
                f"{self.name}: records can be read only once; call read_records again"
            )
        self._started = True
        return self._records()

    def summary(self) -> str:
        """One line for logs, e.g. ``read 120 records, 3 rejected (see out.rejects.jsonl)``."""
        noun = "record" if self.n_read == 1 else "records"
        line = f"read {self.n_read} {noun}, {self.n_rejected} rejected"
        return line + (f" (see {self.rejects_path})" if self.n_rejected else "")

    def _records(self) -> Iterator[dict[str, Any]]:
        try:
            for line, row in self._rows():
                self.n_read += 1
                checked = self._schema.check(line, row)
                if not isinstance(checked, Reject):
                    yield checked
                elif self.rejects_path is None:
                    raise DataError(self.name, checked.reason, line=line, hint=STRICT_HINT)
                else:
                    self._reject(self.rejects_path, checked)
        finally:
            if self._rejects is not None:
                self._rejects.close()

    def _reject(self, path: Path, reject: Reject) -> None:
        """Append and flush at once, so a crash later in the run keeps the rejects so far."""
        if self._rejects is None:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._rejects = path.open("a", encoding="utf-8")
        self._rejects.write(reject.to_json() + "\n")
        self._rejects.flush()
        self.n_rejected += 1


@dataclass(frozen=True)
class RecordSchema:
    """The checks one record must pass, with the caller's field names and limits applied."""

    fields: TaskFields
    id_field: str
    labels: tuple[str, ...] | None
    max_text_chars: int | None

    def check(self, line: int, row: Row) -> dict[str, Any] | Reject:
        """The completed record (:meth:`complete`), or the :class:`Reject` that says why not."""
        reason = row.reason if isinstance(row, _Unparsed) else self.problem(row)
        if reason is None:
            return self.complete(row, line)  # type: ignore[arg-type]
        return Reject(line, self.record_id(row), reason)

    def problem(self, record: dict[str, Any]) -> str | None:
        """The first reason the record is bad, or None; never quotes article text."""
        for name in self.fields.required:
            if record.get(name) is None:
                return f"field '{name}': {'null' if name in record else 'missing'}"
        for name in (*self.fields.required, *self.fields.optional):
            value = record.get(name)
            if value is not None and (problem := self._type_problem(name, value)):
                return f"field '{name}': {problem}"
        for name in self.fields.required:
            if not record[name].strip():
                return f"field '{name}': empty"
        return (
            self._one_of_problem(record)
            or self._label_problem(record)
            or self._length_problem(record)
        )

    def complete(self, record: dict[str, Any], line: int) -> dict[str, Any]:
        """The record with every optional field present (None when absent) and ``_line``."""
        completed = dict(record)
        for name in self.fields.optional:
            completed.setdefault(name, None)
        completed["_line"] = line
        return completed

    def record_id(self, row: Row) -> str | int | None:
        """The id to show in a reject, when the record has a usable one."""
        value = None if isinstance(row, _Unparsed) else row.get(self.id_field)
        return value if _is_id(value) else None

    def _type_problem(self, name: str, value: Any) -> str | None:
        if name == self.id_field:
            return None if _is_id(value) else f"expected a string or an integer, got {_type(value)}"
        if name in self.fields.list_fields:
            return _string_list_problem(value)
        return None if isinstance(value, str) else f"expected a string, got {_type(value)}"

    def _one_of_problem(self, record: dict[str, Any]) -> str | None:
        names = self.fields.one_of
        if not names or any(_has_content(record.get(name)) for name in names):
            return None
        quoted = " or ".join(f"'{name}'" for name in names)
        return f"field {quoted}: missing or empty (the task needs one of them)"

    def _label_problem(self, record: dict[str, Any]) -> str | None:
        field = self.fields.label_field
        if self.labels is None or field is None or record[field] in self.labels:
            return None
        return f"field '{field}': {_quote(record[field])} is not one of {', '.join(self.labels)}"

    def _length_problem(self, record: dict[str, Any]) -> str | None:
        length = len(record[TEXT_FIELD])
        if self.max_text_chars is None or length <= self.max_text_chars:
            return None
        return (
            f"field '{TEXT_FIELD}': {length} characters, more than the limit of "
            f"{self.max_text_chars}"
        )


def _task_fields(
    task: str, labels: Sequence[str] | None, id_field: str, claims_field: str | None
) -> TaskFields:
    """The task's fields with the caller's id and claims field names applied."""
    if task not in TASK_FIELDS:
        raise ValueError(f"unknown task '{task}'; known tasks: {', '.join(TASK_FIELDS)}")
    fields = TASK_FIELDS[task]
    if labels is not None and fields.label_field is None:
        raise ValueError(f"task '{task}' has no label field, so labels= cannot apply")
    if claims_field is not None and task != "score":
        raise ValueError(f"claims_field applies to task 'score' only, not '{task}'")
    optional = tuple(id_field if name == "id" else name for name in fields.optional)
    if claims_field is None:
        return replace(fields, optional=optional)
    return replace(
        fields, optional=(*optional, claims_field), list_fields=(*fields.list_fields, claims_field)
    )


def _check_policy(policy: str, rejects_path: str | Path | None) -> None:
    if policy not in ("strict", "skip"):
        raise ValueError(f"policy must be 'strict' or 'skip', got '{policy}'")
    if policy == "skip" and rejects_path is None:
        raise ValueError("policy 'skip' needs rejects_path: bad records are never dropped silently")
    if policy == "strict" and rejects_path is not None:
        raise ValueError("rejects_path applies to policy 'skip' only; strict mode raises instead")


def _resolve_source(
    source: str | Path, split: str | None, fields: TaskFields
) -> tuple[str, RowSource]:
    """A display name and a row factory; file-level problems raise here, before reading."""
    if isinstance(source, str) and source == STDIN:
        _no_split(STDIN, split)
        return "<stdin>", lambda: _jsonl_rows(sys.stdin.buffer)
    path = Path(source)
    if path.is_dir():
        path = _split_file(path, split)
    elif not path.exists():
        if isinstance(source, str) and _looks_like_hub_name(source):
            return _hub_rows(source, split, fields)
        raise DataError(str(source), "does not exist")
    else:
        _no_split(str(path), split)
    return str(path), _file_rows(path, fields)


def _no_split(name: str, split: str | None) -> None:
    if split is not None:
        raise ValueError(
            f"{name}: split='{split}' applies only to dataset folders and hub "
            "names, not to a single file"
        )


def _split_file(folder: Path, split: str | None) -> Path:
    available = sorted(
        {
            p.name.removesuffix(".gz").removesuffix(".jsonl")
            for p in folder.iterdir()
            if p.name.endswith(SPLIT_EXTENSIONS)
        }
    )
    listed = ", ".join(available) or "none found"
    if split is None:
        raise DataError(str(folder), f"is a dataset folder; pass a split (available: {listed})")
    for extension in SPLIT_EXTENSIONS:
        candidate = folder / f"{split}{extension}"
        if candidate.is_file():
            return candidate
    raise DataError(str(folder), f"has no split '{split}' (available: {listed})")


def _file_rows(path: Path, fields: TaskFields) -> RowSource:
    _extension(str(path))  # an unknown type fails here, before reading

    def rows() -> Iterator[tuple[int, Row]]:
        with path.open("rb") as stream:
            yield from stream_rows(stream, str(path), fields.list_fields)

    return rows


def _extension(name: str) -> str:
    lowered = name.lower()
    extension = next((ext for ext in SUPPORTED_EXTENSIONS if lowered.endswith(ext)), None)
    if extension is None:
        raise DataError(
            name, f"unknown file type; supported extensions are {', '.join(SUPPORTED_EXTENSIONS)}"
        )
    return extension


def stream_rows(
    stream: IO[bytes] | Iterable[bytes], name: str, list_fields: Sequence[str] = ()
) -> Iterator[tuple[int, Row]]:
    """The numbered rows of one file's bytes, in the format its ``name``'s extension says.

    A stream rather than a path, so that the Ray engine parses a file it opened on any
    filesystem (``s3://``...) exactly as the local reader parses a local one. Parquet needs a
    seekable stream; JSON Lines takes any iterable of lines (the Ray engine's byte ranges).
    """
    extension = _extension(name)
    if extension == ".jsonl.gz":
        try:
            yield from _jsonl_rows(gzip.GzipFile(fileobj=stream, mode="rb"))  # type: ignore[arg-type]
        except (OSError, EOFError, zlib.error) as error:
            raise DataError(name, f"not a readable gzip file ({error})") from error
    elif extension in JSON_LINES_EXTENSIONS:
        yield from _jsonl_rows(stream)
    elif extension == ".csv":
        yield from _csv_rows(stream, name, tuple(list_fields))
    else:
        yield from _parquet_rows(stream, name)


def _jsonl_rows(stream: Iterable[bytes]) -> Iterator[tuple[int, Row]]:
    """Parse bytes line by line, so one undecodable line is one bad record, not a crash."""
    for line, raw in enumerate(stream, start=1):
        raw = raw.rstrip(b"\r\n")  # so JSON error columns count within the line
        if line == 1:
            raw = raw.removeprefix(codecs.BOM_UTF8)
        if raw.strip():
            yield line, _parse_json_line(raw)


def _parse_json_line(raw: bytes) -> Row:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return _Unparsed("undecodable bytes (not UTF-8)")
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        return _Unparsed(f"invalid JSON ({error.msg} at column {error.colno})")
    except RecursionError:
        return _Unparsed("invalid JSON (nested too deeply)")
    if not isinstance(value, dict):
        return _Unparsed(
            f"not a JSON object (got {_type(value)}); JSON Lines holds one object per line"
        )
    return value


def _csv_rows(raw: IO[bytes], name: str, list_fields: tuple[str, ...]) -> Iterator[tuple[int, Row]]:
    """Rows as records; a broken CSV structure stops the read under either policy."""
    csv.field_size_limit(max(csv.field_size_limit(), _CSV_CELL_LIMIT))
    # surrogateescape keeps undecodable bytes visible per cell instead of failing the file.
    with io.TextIOWrapper(
        raw, encoding="utf-8-sig", errors="surrogateescape", newline=""
    ) as stream:
        reader = csv.DictReader(stream)
        line = 1
        try:
            for row in reader:
                line += 1
                yield line, _csv_record(row, list_fields)
        except csv.Error as error:
            raise DataError(name, f"broken CSV ({error})", line=line + 1) from error


def _csv_record(row: dict[str | None, str | None], list_fields: tuple[str, ...]) -> Row:
    """Cells stay strings (an empty cell is ""); list fields are JSON arrays in their cell."""
    if None in row:
        return _Unparsed("more cells than header columns")
    record: dict[str, Any] = {}
    for name, value in row.items():
        if value is None:  # a short row: the field is absent
            continue
        if not _is_utf8(value):
            return _Unparsed(f"field '{name}': undecodable bytes (not UTF-8)")
        record[name] = _csv_list(value) if name in list_fields else value  # type: ignore[index]
    return record


def _csv_list(cell: str) -> Any:
    """A JSON array cell as a list; anything else stays as written, for the type check."""
    if not cell.strip():
        return None
    try:
        return json.loads(cell)
    except json.JSONDecodeError:
        return cell


def _parquet_rows(stream: IO[bytes], name: str) -> Iterator[tuple[int, Row]]:
    import pyarrow as pa  # lazy: serving imports this module but never reads Parquet
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(stream)
    except (pa.ArrowException, OSError) as error:
        raise DataError(name, f"not a readable Parquet file ({error})") from error
    line = 0
    with parquet:
        for batch in parquet.iter_batches(batch_size=_PARQUET_BATCH_ROWS):
            for record in batch.to_pylist():
                line += 1
                yield line, record


def _looks_like_hub_name(source: str) -> bool:
    """``owner/name`` or ``owner/name:split`` with no file extension."""
    return bool(_HUB_NAME.match(source)) and not Path(source.partition(":")[0]).suffix


def _hub_rows(source: str, split: str | None, fields: TaskFields) -> tuple[str, RowSource]:
    """Load a hub dataset (downloaded to the local cache, memory-mapped, so memory stays flat)."""
    name, _, named_split = source.partition(":")
    if split and named_split and split != named_split:
        raise ValueError(f"{source}: the name says split '{named_split}' but split='{split}'")
    split = split or named_split
    if not split:
        raise DataError(
            source, "a hub dataset needs a split: pass split= or write owner/name:split"
        )
    try:
        datasets = require("datasets", "a Hugging Face hub dataset name")
    except MissingExtra as error:
        raise DataError(
            f"{name}:{split}",
            f"not a local path, and {error}",
            hint=f"or pass a local file: {', '.join(SUPPORTED_EXTENSIONS)}",
        ) from None
    try:
        dataset = datasets.load_dataset(name, split=split)
    # The hub client fails with OSError, httpx or datasets errors alike; all mean "not loaded".
    except Exception as error:  # noqa: BLE001
        detail = f"{type(error).__name__}: {error}"[:_SHOWN_ERROR_CHARS]
        raise DataError(
            f"{name}:{split}",
            "not a local path, and the Hugging Face hub could not "
            f"be reached or has no such dataset ({detail}); pass a local file "
            f"instead ({', '.join(SUPPORTED_EXTENSIONS)})",
        ) from error
    to_name = _label_names(dataset, fields.label_field)
    return f"{name}:{split}", lambda: (
        (line, to_name(record)) for line, record in enumerate(dataset, start=1)
    )


def _label_names(dataset: Any, label_field: str | None) -> Callable[[dict[str, Any]], Row]:
    """Hub datasets often store labels as ClassLabel ints; turn them back into names."""
    import datasets

    feature = dataset.features.get(label_field) if label_field else None
    if not isinstance(feature, datasets.ClassLabel):
        return lambda record: record

    def to_name(record: dict[str, Any]) -> Row:
        value = record.get(label_field)  # type: ignore[arg-type]
        if isinstance(value, int) and 0 <= value < feature.num_classes:
            record[label_field] = feature.int2str(value)  # type: ignore[index]
        return record

    return to_name


def _is_id(value: Any) -> bool:
    return isinstance(value, str | int) and not isinstance(value, bool)


def _is_utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _has_content(value: Any) -> bool:
    return bool(value.strip()) if isinstance(value, str) else bool(value)


def _string_list_problem(value: Any) -> str | None:
    if not isinstance(value, list):
        return f"expected a list of strings, got {_type(value)}"
    for position, item in enumerate(value, start=1):
        if not isinstance(item, str) or not item.strip():
            return f"item {position} is not a non-empty string"
    return None


def _type(value: Any) -> str:
    return _JSON_TYPES.get(type(value), type(value).__name__)


def _quote(value: Any) -> str:
    shown = str(value)
    if len(shown) > _SHOWN_VALUE_CHARS:
        shown = shown[:_SHOWN_VALUE_CHARS] + "…"
    return f"'{shown}'"

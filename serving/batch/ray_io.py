"""Ray Data's ends of ``akhbar score --engine ray``: the archive in, the results folder out.

**In** (:class:`ArticleSource`): a ``Datasource`` whose read tasks open their file on the
worker that reads it, on any filesystem pyarrow opens (local, ``s3://``, ``gs://``,
``abfs://``, ``hdfs://``), and stream it; a large JSON Lines file is read as byte ranges, one
task each (:class:`Unit`). Rows are parsed by the foundation's own
:func:`~akhbar.models.reader.stream_rows` and checked by its
:class:`~akhbar.models.reader.RecordSchema`, as the local engine's reader does, so a bad record
becomes a reject row naming its file (or range) and line instead of stopping the read (Ray's
stock JSON and CSV readers stop at a bad line and do not number rows).

**Out** (:class:`ResultsSink`): a ``Datasink`` whose write tasks, on the workers, each commit
one shard of results (and one of rejects) exactly once:

1. the shard's files go to ``OUTPUT/_staging/``;
2. its manifest, ``OUTPUT/_manifest/<shard>.json``, is written in one step (a rename on a
   local disk, one PUT on object storage). That is the commit: it names every input row
   (file, line) the shard holds;
3. the files move to ``OUTPUT/<shard>.jsonl|.parquet`` and ``OUTPUT/_rejects/<shard>.jsonl``.

A shard's name is a digest of the rows it holds, so a write task that Ray retries rewrites
the same shard rather than adding a second one. :func:`recover` (the driver, before a
``--resume``) finishes step 3 for every committed shard, drops uncommitted staging files, and
returns the rows already done, which the source then skips: after a kill at any point, a
resumed job writes every input row exactly once and re-scores only the rows that were not
committed. Names starting with ``_`` are skipped by Ray, Spark and pyarrow dataset readers,
so ``OUTPUT`` reads as a plain folder of result shards.
"""

from __future__ import annotations

import bisect
import fnmatch
import functools
import hashlib
import io
import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs
import ray
from ray.data.block import BlockAccessor, BlockMetadata
from ray.data.datasource import Datasink, Datasource, ReadTask

from akhbar.models.reader import (
    JSON_LINES_EXTENSIONS,
    SUPPORTED_EXTENSIONS,
    DataError,
    Reject,
    stream_rows,
)
from akhbar.serving.batch.job import SHARD_ROWS
from akhbar.serving.batch.outputs import results_table

if TYPE_CHECKING:
    from ray.data._internal.execution.interfaces import TaskContext
    from ray.data.datasource.datasink import WriteResult

    from akhbar.models.reader import RecordSchema

# Rows the source yields per block.
READ_ROWS = 1024
READ_BUFFER = 1 << 20  # bytes per read from the input file (object storage: per request)
# A JSON Lines file larger than this is read by several tasks, one per range of this size.
SPLIT_BYTES = 16 << 20
STAGING, MANIFEST, REJECTS, SUCCESS = "_staging", "_manifest", "_rejects", "_SUCCESS"
_GLOB_CHARS = "*?["

# The columns between the stages: the row's file and line, then what became of it.
SOURCE, LINE, RECORD, RESULT, REJECT = "source", "line", "record", "result", "reject"
NODE, GPUS, SECONDS = "node", "gpus", "seconds"

Ranges = list[tuple[int, int]]  # inclusive (first, last) line ranges, sorted, disjoint


class OutputFolderError(RuntimeError):
    """The output folder cannot be used as asked (not empty without --resume, unreadable)."""


# ---------------------------------------------------------------------------------------
# Paths


def filesystem(uri: str) -> tuple[pafs.FileSystem, str]:
    """pyarrow's filesystem for a URI (``s3://...``) or a local path, and the path within it."""
    if "://" in uri:
        return pafs.FileSystem.from_uri(uri)
    return pafs.LocalFileSystem(), Path(uri).expanduser().resolve().as_posix()


def input_files(uri: str) -> tuple[pafs.FileSystem, list[str]]:
    """The files ``--input`` names: a file, a folder of shards (recursively), or a glob, on any
    filesystem pyarrow opens; only names with a supported extension, and not ``_``/``.``
    names, as Ray lists. Raises :class:`DataError` when nothing matches."""
    fs, path = filesystem(uri)
    glob = any(c in path for c in _GLOB_CHARS)
    base = path
    if glob:
        parts = path.split("/")
        first = next(i for i, part in enumerate(parts) if any(c in part for c in _GLOB_CHARS))
        base = "/".join(parts[:first]) or "/"
    info = fs.get_file_info(base)
    if info.type == pafs.FileType.NotFound:
        raise DataError(uri, "does not exist")
    if info.type == pafs.FileType.File and not glob:
        return fs, [path]
    listed = fs.get_file_info(pafs.FileSelector(base, recursive=True))
    files = sorted(
        f.path
        for f in listed
        if f.type == pafs.FileType.File
        and f.path.lower().endswith(SUPPORTED_EXTENSIONS)
        and not any(part.startswith(("_", ".")) for part in f.path[len(base) :].split("/"))
        and (not glob or fnmatch.fnmatchcase(f.path, path))
    )
    if not files:
        raise DataError(
            uri, f"holds no file of articles ({', '.join(SUPPORTED_EXTENSIONS)}) to score"
        )
    return fs, files


# ---------------------------------------------------------------------------------------
# Ranges of lines (what the manifest records, and what a resumed source skips)


def to_ranges(lines: Iterable[int]) -> Ranges:
    """Sorted lines as inclusive ranges: ``[1, 2, 3, 7]`` -> ``[(1, 3), (7, 7)]``."""
    ranges: Ranges = []
    for line in sorted(lines):
        if ranges and line == ranges[-1][1] + 1:
            ranges[-1] = (ranges[-1][0], line)
        else:
            ranges.append((line, line))
    return ranges


def merge_ranges(ranges: Iterable[tuple[int, int]]) -> Ranges:
    merged: Ranges = []
    for first, last in sorted(ranges):
        if merged and first <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(last, merged[-1][1]))
        else:
            merged.append((first, last))
    return merged


def in_ranges(line: int, ranges: Ranges, starts: list[int]) -> bool:
    """Whether ``line`` lies in ``ranges`` (``starts``: their first lines, for bisection)."""
    i = bisect.bisect_right(starts, line) - 1
    return i >= 0 and line <= ranges[i][1]


# ---------------------------------------------------------------------------------------
# Reading


@dataclass(frozen=True)
class Unit:
    """One read task's share of the input: a whole file, or a byte range of a JSON Lines file
    larger than :data:`SPLIT_BYTES`.

    A range holds the lines that *start* inside it (the first is skipped if it began in the
    range before), so the ranges of a file hold each of its lines once. Its lines are numbered
    from 1 within the range, and its rows' ``source`` is :attr:`name`
    (``big.jsonl#bytes=16777216-33554431``), so a reject says where to look without the job
    counting the lines of everything before it. Ranges follow from the file's size alone, so a
    resumed job cuts the same ones.
    """

    path: str
    start: int = 0
    end: int | None = None  # exclusive; None: the whole file

    @property
    def name(self) -> str:
        return self.path if self.end is None else f"{self.path}#bytes={self.start}-{self.end - 1}"


def read_units(
    fs: pafs.FileSystem, files: list[str], split_bytes: int | None = None
) -> list[tuple[Unit, int]]:
    """The units of ``files`` with their sizes in bytes: whole files, except that a JSON Lines
    file (``.jsonl``, ``.json``) of more than ``split_bytes`` (default :data:`SPLIT_BYTES`) is
    cut into ranges of that size. Compressed files, CSV (a quoted field may hold a line break)
    and Parquet stay whole."""
    split_bytes = split_bytes or SPLIT_BYTES
    units: list[tuple[Unit, int]] = []
    for info in fs.get_file_info(files):
        splittable = info.path.lower().endswith(JSON_LINES_EXTENSIONS)
        if not splittable or info.size <= split_bytes:
            units.append((Unit(info.path), info.size))
            continue
        for start in range(0, info.size, split_bytes):
            end = min(start + split_bytes, info.size)
            units.append((Unit(info.path, start, end), end - start))
    return units


def range_lines(f: IO[bytes], start: int, end: int) -> Iterator[bytes]:
    """The lines of a seekable file that start at a byte in ``[start, end)``."""
    f.seek(max(start - 1, 0))
    if start > 0 and f.read(1) != b"\n":
        f.readline()  # the line under way at ``start`` belongs to the range before
    position = f.tell()
    while position < end:
        line = f.readline()
        if not line:
            return
        position += len(line)
        yield line


class ArticleSource(Datasource):
    """The input as rows of ``source``, ``line`` and either ``record`` (the checked record's
    ``fields`` as JSON, which keeps ``5`` and ``"5"`` two ids; a value JSON cannot hold, such as a
    Parquet timestamp, as its text) or ``reject`` (JSON: source, line, id, reason). One read
    task per :class:`Unit`, so no task reads more than :data:`SPLIT_BYTES` of JSON Lines: Ray
    Data starts a read task only when the object store budget allows, and a task that ran for
    a whole large file would read ahead of the actors for as long as it ran.

    Parameters
    ----------
    files: the files to read (:func:`input_files`), on ``fs``.
    fs: their filesystem (pyarrow's, so read tasks open files where they run).
    schema: the reader's checks for ``score`` records, with the job's field names.
    fields: the fields of a record the job reads (the rest stay behind).
    done: ``{unit name: Ranges}`` already in the output (``--resume``); those rows are skipped.
    split_bytes: the size of a JSON Lines file's ranges (default :data:`SPLIT_BYTES`).
    """

    def __init__(
        self,
        files: list[str],
        fs: pafs.FileSystem,
        schema: RecordSchema,
        fields: tuple[str, ...],
        done: Mapping[str, Ranges] | None = None,
        split_bytes: int | None = None,
    ) -> None:
        super().__init__()
        self._units = read_units(fs, files, split_bytes)
        self._fs = fs
        self._schema = schema
        self._fields = fields
        self._done_ref = ray.put(dict(done or {}))  # read tasks fetch it, not each a copy

    def estimate_inmemory_data_size(self) -> int:
        return sum(size for _, size in self._units)

    def get_read_tasks(self, parallelism: int, **_: Any) -> list[ReadTask]:
        # One task per unit whatever ``parallelism`` asks: a unit's rows are numbered within
        # it, and the number of units already bounds each task's work.
        return [
            ReadTask(
                functools.partial(
                    read_unit, unit, self._fs, self._schema, self._fields, self._done_ref
                ),
                BlockMetadata(
                    num_rows=None, size_bytes=size, exec_stats=None, input_files=(unit.path,)
                ),
            )
            for unit, size in self._units
        ]


def read_unit(
    unit: Unit,
    fs: pafs.FileSystem,
    schema: RecordSchema,
    fields: tuple[str, ...],
    done: Any,
) -> Iterator[pa.Table]:
    """One read task: the unit's rows in blocks of :data:`READ_ROWS`, skipping those ``done``
    (``{unit name: Ranges}``, or its object ref) holds. Called directly in the tests."""
    if isinstance(done, ray.ObjectRef):
        done = ray.get(done)
    skip = done.get(unit.name, [])
    starts = [first for first, _ in skip]
    block = _Block(unit.name, fields)
    # Raw bytes from a seekable file: Parquet needs to seek, and gzip is the reader's to undo,
    # so a corrupt file fails with the reader's message. Buffered, because Arrow's file cannot
    # read lines.
    with io.BufferedReader(fs.open_input_file(unit.path), buffer_size=READ_BUFFER) as f:
        lines = f if unit.end is None else range_lines(f, unit.start, unit.end)
        for line, row in stream_rows(lines, unit.path, schema.fields.list_fields):
            if skip and in_ranges(line, skip, starts):
                continue
            block.add(line, schema.check(line, row))
            if len(block) == READ_ROWS:
                yield block.table()
                block = _Block(unit.name, fields)
    if len(block):
        yield block.table()


@dataclass
class _Block:
    source: str
    fields: tuple[str, ...]
    lines: list[int] = field(default_factory=list)
    records: list[str | None] = field(default_factory=list)
    rejects: list[str | None] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.lines)

    def add(self, line: int, checked: dict[str, Any] | Reject) -> None:
        self.lines.append(line)
        if isinstance(checked, Reject):
            self.records.append(None)
            self.rejects.append(reject_json(self.source, checked))
        else:
            kept = {name: checked.get(name) for name in self.fields}
            self.records.append(json.dumps(kept, ensure_ascii=False, default=str))
            self.rejects.append(None)

    def table(self) -> pa.Table:
        return pa.table(
            {
                SOURCE: pa.array([self.source] * len(self), pa.string()),
                LINE: pa.array(self.lines, pa.int64()),
                RECORD: pa.array(self.records, pa.string()),
                REJECT: pa.array(self.rejects, pa.string()),
            }
        )


def reject_json(source: str, reject: Reject) -> str:
    """A reject as the Ray engine writes it: the local engine's fields plus the file."""
    return json.dumps(
        {"source": source, "line": reject.line, "id": reject.id, "reason": reject.reason},
        ensure_ascii=False,
    )


# ---------------------------------------------------------------------------------------
# Writing


@dataclass
class ShardCounts:
    """What one write task committed; summed by the driver."""

    results: int = 0
    rejects: int = 0
    nodes: set[str] = field(default_factory=set)

    def add(self, other: ShardCounts) -> None:
        self.results += other.results
        self.rejects += other.rejects
        self.nodes |= other.nodes


class ResultsSink(Datasink[ShardCounts]):
    """Commit shards of results and rejects to ``output`` exactly once (module docstring).

    Parameters
    ----------
    output: the ``--output`` folder or URI.
    parquet: write Parquet shards (else JSON Lines).
    parts: the fixed Arrow types of a result's parts
        (:func:`~akhbar.serving.batch.outputs.result_schema`), for Parquet.
    shard_rows: the fewest input rows per shard (the last one may have fewer).
    """

    def __init__(
        self,
        output: str,
        parquet: bool,
        parts: pa.Schema | None = None,
        shard_rows: int = SHARD_ROWS,
    ) -> None:
        self.output = output
        self.parquet = parquet
        self.parts = parts
        self.shard_rows = shard_rows
        self.totals = ShardCounts()

    @property
    def min_rows_per_write(self) -> int:
        return self.shard_rows

    def write(self, blocks: Iterable[Any], ctx: TaskContext) -> ShardCounts:
        table = pa.concat_tables(
            [BlockAccessor.for_block(b).to_arrow() for b in blocks], promote_options="default"
        )
        if table.num_rows == 0:
            return ShardCounts()
        fs, root = filesystem(self.output)
        sources = table.column(SOURCE).to_pylist()
        lines = table.column(LINE).to_pylist()
        rows: dict[str, list[int]] = {}
        for source, line in zip(sources, lines, strict=True):
            rows.setdefault(source, []).append(line)
        coverage = {source: to_ranges(found) for source, found in sorted(rows.items())}
        name = "part-" + hashlib.sha256(json.dumps(coverage).encode()).hexdigest()[:20]
        results = [json.loads(r) for r in table.column(RESULT).to_pylist() if r is not None]
        rejects = [r for r in table.column(REJECT).to_pylist() if r is not None]
        nodes = set(table.column(NODE).to_pylist()) - {None}
        gpus = set(table.column(GPUS).to_pylist()) - {None}
        seconds = pc.sum(table.column(SECONDS)).as_py() or 0.0
        files = {}  # staged -> final, relative to the output folder, so it can move
        fs.create_dir(f"{root}/{STAGING}", recursive=True)
        if results:
            suffix = ".parquet" if self.parquet else ".jsonl"
            files[f"{STAGING}/{name}{suffix}"] = f"{name}{suffix}"
            if self.parquet:
                _write_parquet(fs, f"{root}/{STAGING}/{name}{suffix}", results, self.parts)
            else:
                text = "".join(_line(r) for r in results)
                _write_text(fs, f"{root}/{STAGING}/{name}{suffix}", text)
        if rejects:
            files[f"{STAGING}/{name}.rejects.jsonl"] = f"{REJECTS}/{name}.jsonl"
            text = "".join(r + "\n" for r in rejects)
            _write_text(fs, f"{root}/{STAGING}/{name}.rejects.jsonl", text)
        manifest = {
            "shard": name,
            "files": files,
            "results": len(results),
            "rejects": len(rejects),
            "rows": coverage,
            "nodes": sorted(nodes),
            "gpus": sorted(gpus),
            "score_seconds": round(seconds, 3),  # the actors' time on these rows
        }
        staged_manifest = f"{root}/{STAGING}/{name}.manifest.json"
        _write_text(fs, staged_manifest, json.dumps(manifest, ensure_ascii=False))
        fs.create_dir(f"{root}/{MANIFEST}", recursive=True)
        fs.move(staged_manifest, f"{root}/{MANIFEST}/{name}.json")  # the commit
        _publish(fs, root, files)
        return ShardCounts(len(results), len(rejects), nodes)

    def on_write_complete(self, write_result: WriteResult[ShardCounts]) -> None:
        for counts in write_result.write_returns:
            self.totals.add(counts)


def _line(result: dict[str, Any]) -> str:
    return json.dumps(result, ensure_ascii=False) + "\n"


def _write_text(fs: pafs.FileSystem, path: str, text: str) -> None:
    with fs.open_output_stream(path) as out:
        out.write(text.encode("utf-8"))


def _write_parquet(
    fs: pafs.FileSystem, path: str, results: list[dict[str, Any]], parts: pa.Schema | None
) -> None:
    import pyarrow.parquet as pq

    buffer = io.BytesIO()
    pq.write_table(results_table(results, parts, pa.string()), buffer)
    with fs.open_output_stream(path) as out:
        out.write(buffer.getvalue())


def _publish(fs: pafs.FileSystem, root: str, files: Mapping[str, str]) -> None:
    """Move a committed shard's staged files into place (again after a kill: idempotent)."""
    for staged, final in files.items():
        if fs.get_file_info(f"{root}/{staged}").type == pafs.FileType.File:
            fs.create_dir(f"{root}/{final}".rsplit("/", 1)[0], recursive=True)
            fs.move(f"{root}/{staged}", f"{root}/{final}")


# ---------------------------------------------------------------------------------------
# The output folder, on the driver


@dataclass
class Done:
    """What earlier runs committed: rows per file, and their counts."""

    rows: dict[str, Ranges] = field(default_factory=dict)
    results: int = 0
    rejects: int = 0
    complete: bool = False


def recover(output: str, resume: bool) -> Done:
    """Prepare ``output`` for a run: refuse a used folder without ``resume``; with it, finish
    publishing every committed shard, drop what was never committed, and return what is done.
    """
    fs, root = filesystem(output)
    info = fs.get_file_info(root)
    if info.type == pafs.FileType.File:
        raise OutputFolderError(
            f"{output} is a file; with --engine ray, --output names a folder (or a URI) of shards"
        )
    if info.type == pafs.FileType.NotFound:
        return Done()
    present = fs.get_file_info(pafs.FileSelector(root, recursive=False))
    if present and not resume:
        raise OutputFolderError(
            f"{output} is not empty; pass --resume to continue that job, or choose another "
            "--output (an existing output is never overwritten)"
        )
    done = Done(complete=fs.get_file_info(f"{root}/{SUCCESS}").type == pafs.FileType.File)
    manifests = fs.get_file_info(pafs.FileSelector(f"{root}/{MANIFEST}", allow_not_found=True))
    rows: dict[str, Ranges] = {}
    for entry in manifests:
        if not entry.path.endswith(".json"):
            continue
        with fs.open_input_stream(entry.path) as f:
            try:
                manifest = json.loads(f.read())
            except ValueError:
                raise OutputFolderError(
                    f"{entry.path} is not a manifest of akhbar score; move {output} aside and "
                    "start again"
                ) from None
        _publish(fs, root, manifest["files"])
        for source, ranges in manifest["rows"].items():
            rows.setdefault(source, []).extend(tuple(r) for r in ranges)
        done.results += manifest["results"]
        done.rejects += manifest["rejects"]
    fs.delete_dir_contents(f"{root}/{STAGING}", missing_dir_ok=True)
    done.rows = {source: merge_ranges(ranges) for source, ranges in rows.items()}
    return done


def mark_complete(output: str, summary: Mapping[str, Any]) -> None:
    """``OUTPUT/_SUCCESS``: the job ended; its counts, for whoever reads the folder next."""
    fs, root = filesystem(output)
    if fs.get_file_info(f"{root}/{STAGING}").type == pafs.FileType.Directory:
        fs.delete_dir(f"{root}/{STAGING}")
    _write_text(fs, f"{root}/{SUCCESS}", json.dumps(dict(summary), ensure_ascii=False) + "\n")

"""``akhbar score --engine ray``: the same scoring as a Ray Data job (the ``akhbar[ray]`` extra).

The job is one streaming Ray Data pipeline, so nothing passes through this process (the
driver) but the plan and the counts:

1. **Read** (:class:`~akhbar.serving.batch.ray_io.ArticleSource`): read tasks open the input
   files where they run, from a local path, a folder of shards, a glob or a URI (``s3://``...),
   a task per file or per 16 MiB range of a large JSON Lines file, and turn rows into checked
   records or rejects, numbered by file (or range) and line.
2. **Score** (:class:`RayScorer`): ``map_batches`` on an ``ActorPoolStrategy`` of
   ``--concurrency`` actors (``N``, or ``MIN-MAX`` to autoscale), each with ``--actor-cpus``
   CPUs and ``--actor-gpus`` GPUs; an actor loads the models once, makes each record the
   service's Article with the driver's limits, and scores ``--batch-size`` of them per call with
   :func:`~akhbar.serving.batch.job.score_chunk`, as the local engine does.
3. **Write** (:class:`~akhbar.serving.batch.ray_io.ResultsSink`): write tasks commit shards of
   results and rejects to the ``--output`` folder exactly once, with a manifest of the input
   rows each holds; ``--resume`` skips what is committed.

Configuration: the driver reads the scoring configuration (``AKHBAR_*``) and hands it to every
actor, so the driver's settings apply on every node; each actor resolves it for its own
machine (``auto`` precision for its CPU; ``AKHBAR_TORCH_THREADS`` 0: one thread per CPU Ray
reserves for it).

Models: the driver resolves them as the service does. When it joins a cluster
(``--ray-address``), it also puts each bundle's files into the object store once, and an actor
on a node without the driver's model store unpacks them into its temp folder (once per node
and bundle, keyed by content).

What differs from the local engine: the output is a folder of shards in no particular order;
a record is known by its file and line, so ids are not checked for repeats across the archive
(that would take a shuffle of every id); rejects carry their ``source`` file.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from akhbar.serving.batch.job import BatchError, Job, make_reject, score_chunk, to_article
from akhbar.serving.core.config import ScoringConfig, use

if TYPE_CHECKING:
    import pyarrow as pa

logger = logging.getLogger("akhbar.batch")

# A local Ray gets the actors' CPUs plus this many for read and write tasks.
SPARE_CPUS = 1
# Read and write tasks are light (parsing JSON, writing files): a quarter of a CPU each, so
# they fit beside actors that hold every whole CPU.
IO_CPUS = 0.25
# The object store Ray Data may fill, per actor. Its default is a share of the whole store
# (gigabytes), so reading runs ahead of scoring and the store's use grows with the input; a
# few blocks per actor keep it flat, and a block of 1,024 articles is minutes of an actor's work.
STORE_BYTES_PER_ACTOR = 16 << 20


def check_ray() -> None:
    """Fail before anything is loaded when the ``ray`` extra is missing."""
    try:
        import ray  # noqa: F401
        import ray.data  # noqa: F401
    except ImportError:
        raise BatchError(
            "--engine ray needs the ray extra: pip install 'akhbar[ray]' "
            "(with -c constraints.txt for the tested versions)"
        ) from None


# ---------------------------------------------------------------------------------------
# Models that travel with the job


def pack_bundle(path: str | Path) -> tuple[str, dict[str, bytes]]:
    """A bundle directory as ``(content digest, {relative path: bytes})``."""
    root = Path(path)
    files: dict[str, bytes] = {}
    digest = hashlib.sha256()
    for file in sorted(p for p in root.rglob("*") if p.is_file()):
        name = file.relative_to(root).as_posix()
        data = file.read_bytes()
        files[name] = data
        digest.update(name.encode() + b"\0" + hashlib.sha256(data).digest())
    return digest.hexdigest()[:16], files


def _model_cache() -> Path:
    return Path(tempfile.gettempdir()) / "akhbar-models"


def unpack_bundle(packed: tuple[str, dict[str, bytes]], cache: Path | None = None) -> Path:
    """Write a packed bundle under ``cache`` (default: the temp folder) once; its directory
    (:func:`~akhbar.serving.core.store.folder_once`: actors starting together on one node
    neither read a half-written bundle nor write it twice)."""
    from akhbar.serving.core.store import folder_once

    digest, files = packed

    def write(staging: Path) -> None:
        for name, data in files.items():
            (staging / name).parent.mkdir(parents=True, exist_ok=True)
            (staging / name).write_bytes(data)

    return folder_once((cache or _model_cache()) / digest, write)


@dataclass(frozen=True)
class Shipped:
    """A bundle put into the object store: its digest (the node cache's key) and its ref."""

    digest: str
    ref: Any


# ---------------------------------------------------------------------------------------
# The actor


class RayScorer:
    """Score batches of checked records; Ray makes one per actor, so models load once per actor.

    Parameters
    ----------
    bundles: ``{task: bundle directory}`` as resolved on the driver.
    versions: ``{task: store tag or path}``, reported as ``model_versions``.
    job: the job (tasks, field names, summary settings, ``--keep-fields``, actor CPUs).
    config: the driver's scoring configuration; resolved and applied here, on the actor.
    shipped: ``{bundle directory: Shipped}`` for directories this node may lack; None when
        every node sees the driver's paths.

    Called directly (without Ray) in the tests, as the Ray Data docs recommend.
    """

    def __init__(
        self,
        bundles: Mapping[str, str],
        versions: Mapping[str, str],
        job: Job,
        config: ScoringConfig,
        shipped: Mapping[str, Shipped] | None = None,
    ) -> None:
        from akhbar.serving.core.analyzer import Analyzer

        paths = {task: self._local(path, shipped) for task, path in bundles.items()}
        self.job, self.config = job, config
        self.node, self.gpus = _placement()
        runtime = config.runtime(
            cores=max(1, math.floor(job.cpus_per_actor)), device=_device(self.gpus)
        )
        runtime.apply()
        self.analyzer = Analyzer.from_bundles(paths, versions, runtime)

    @staticmethod
    def _local(path: str, shipped: Mapping[str, Shipped] | None) -> str:
        """``path`` if this node has it, else the node's unpacked copy of the shipped bundle
        (fetched from the object store only by the first actor of the node)."""
        if Path(path).is_dir() or not shipped or path not in shipped:
            return path
        bundle = shipped[path]
        cached = _model_cache() / bundle.digest
        if cached.is_dir():
            return str(cached)
        packed = bundle.ref
        if not isinstance(packed, tuple):  # an object ref (a plain tuple in tests)
            import ray

            packed = ray.get(packed)
        return str(unpack_bundle(packed))

    def __call__(self, batch: pa.Table) -> pa.Table:
        """``source``, ``line``, ``record``, ``reject`` in; ``source``, ``line``, ``result``
        (the result as JSON, kept fields included), ``reject`` (JSON), the ``node`` and
        ``gpus`` that scored it, and its share of the call's ``seconds`` out."""
        import pyarrow as pa

        from akhbar.serving.batch.ray_io import (
            GPUS,
            LINE,
            NODE,
            RECORD,
            REJECT,
            RESULT,
            SECONDS,
            SOURCE,
            reject_json,
        )

        started = time.perf_counter()

        sources = batch.column(SOURCE).to_pylist()
        lines = batch.column(LINE).to_pylist()
        rejects: list[str | None] = batch.column(REJECT).to_pylist()
        results: list[str | None] = [None] * len(lines)
        articles, slots = [], []
        limits = use(self.config)  # the Article rules check records against the driver's limits
        try:
            for i, encoded in enumerate(batch.column(RECORD).to_pylist()):
                if encoded is None:
                    continue  # the reader rejected it
                record = json.loads(encoded)
                article, own_id, problem = to_article(self.job, record)
                if article is None:
                    rejects[i] = reject_json(sources[i], make_reject(lines[i], own_id, problem))
                    continue
                kept = {name: record.get(name) for name in self.job.keep_fields}
                articles.append(article)
                slots.append((i, own_id, kept))
        finally:
            limits.var.reset(limits)
        outcomes = score_chunk(self.analyzer, articles, self.job.tasks) if articles else []
        for (i, own_id, kept), outcome in zip(slots, outcomes, strict=True):
            if isinstance(outcome, str):
                rejects[i] = reject_json(sources[i], make_reject(lines[i], own_id, outcome))
            else:
                results[i] = json.dumps({**outcome, **kept}, ensure_ascii=False)
        return pa.table(
            {
                SOURCE: batch.column(SOURCE),
                LINE: batch.column(LINE),
                RESULT: pa.array(results, pa.string()),
                REJECT: pa.array(rejects, pa.string()),
                NODE: pa.array([self.node] * len(lines), pa.string()),
                GPUS: pa.array([self.gpus] * len(lines), pa.string()),
                # The call's time, shared among its rows: summed per shard in the manifest.
                SECONDS: pa.array(
                    [(time.perf_counter() - started) / max(1, len(lines))] * len(lines),
                    pa.float64(),
                ),
            }
        )


def _placement() -> tuple[str | None, str | None]:
    """The Ray node this actor runs on and the GPUs Ray gave it (``"0,1"``), recorded in each
    shard's manifest; None outside Ray or without GPUs."""
    import ray

    if not ray.is_initialized():
        return None, None
    gpus = ray.get_gpu_ids()
    return ray.get_runtime_context().get_node_id(), ",".join(map(str, gpus)) or None


def _device(gpus: str | None) -> str:
    """``cuda`` when Ray gave this actor GPUs that torch can use, else ``cpu``."""
    import torch

    if gpus is None:
        return "cpu"
    if not torch.cuda.is_available():
        logger.warning(
            "akhbar score: Ray gave this actor GPU %s, but torch here has no CUDA; scoring on "
            "the CPU",
            gpus,
        )
        return "cpu"
    return "cuda"


# ---------------------------------------------------------------------------------------
# The driver


@dataclass
class RayRun:
    """What a Ray job did: this run's results and rejects, and what earlier runs had done."""

    scored: int = 0
    rejected: int = 0
    skipped: int = 0
    complete_before: bool = False
    nodes: tuple[str, ...] = ()


def _init(job: Job) -> None:
    import ray

    if job.ray_address:
        ray.init(address=job.ray_address, logging_level=logging.WARNING)
        return
    # A private local Ray: no token file in the home folder, no dashboard (known traps).
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    _, most = job.actors
    ray.init(
        num_cpus=math.ceil(most * job.cpus_per_actor) + SPARE_CPUS,
        include_dashboard=False,
        logging_level=logging.WARNING,
    )


def record_fields(job: Job) -> tuple[str, ...]:
    """The fields of an input record the job reads (:func:`to_article`, ``--keep-fields``)."""
    own = ("_line", "text", "title", job.id_field, job.claims_field)
    summary = ("summary_sentences", "summary_max_words")
    return tuple(dict.fromkeys((*own, *summary, *job.keep_fields)))


def _cause(exc: BaseException, kind: type[BaseException]) -> BaseException | None:
    """The first exception of ``kind`` in the chain Ray wraps a task's error in."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, kind):
            return seen
        seen = getattr(seen, "cause", None) or seen.__cause__
    return None


def _check_gpus(job: Job) -> None:
    """Actors that ask for GPUs a cluster lacks would wait for ever: say so instead."""
    import ray

    have = ray.cluster_resources().get("GPU", 0)
    if job.actor_gpus and have < job.actor_gpus:
        raise BatchError(
            f"--actor-gpus {job.actor_gpus:g}: the Ray cluster has {have:g} GPUs; join one that "
            "has them with --ray-address, or leave --actor-gpus at 0"
        )


def score_with_ray(
    job: Job,
    config: ScoringConfig,
    models: Mapping[str, Any],
    parts: pa.Schema | None,
) -> RayRun:
    """Run ``job`` as a Ray Data job; raises :class:`BatchError` for fatal problems.

    Parameters
    ----------
    job: the job (``--output`` is a folder or URI).
    config: the scoring configuration, handed to every actor.
    models: ``{task: ModelRef}`` from :meth:`ScoringConfig.resolve_models`.
    parts: the fixed Arrow types of results (Parquet output), or None.
    """
    import ray
    import ray.data

    from akhbar.models.reader import DataError, record_schema
    from akhbar.serving.batch.ray_io import (
        ArticleSource,
        OutputFolderError,
        ResultsSink,
        input_files,
        mark_complete,
        recover,
    )

    try:
        done = recover(job.output_uri, job.resume)
        fs, files = input_files(job.input)
    except (OutputFolderError, DataError) as exc:
        raise BatchError(str(exc)) from None
    except OSError as exc:  # pyarrow's filesystems: unreachable storage, no permission
        raise BatchError(f"cannot open the input or the output: {exc}") from None
    if done.complete:
        return RayRun(skipped=done.results + done.rejects, complete_before=True)
    try:
        _init(job)
    except Exception as exc:  # noqa: BLE001 - Ray raises many kinds when a cluster is unreachable
        raise BatchError(f"cannot start or join Ray ({type(exc).__name__}: {exc})") from None
    try:
        _check_gpus(job)
        logging.getLogger("ray.data").setLevel(logging.ERROR)
        context = ray.data.DataContext.get_current()
        context.enable_progress_bars = job.progress
        context.print_on_execution_start = False
        least, most = job.actors
        context.execution_options.resource_limits = context.execution_options.resource_limits.copy(
            object_store_memory=most * STORE_BYTES_PER_ACTOR
        )
        schema = record_schema(
            "score",
            id_field=job.id_field,
            claims_field=job.claims_field if "stance" in job.tasks else None,
        )
        bundles = {t: str(r.path) for t, r in models.items()}
        shipped = None
        if job.ray_address:  # other nodes may not see this machine's model store
            shipped = {}
            for path in set(bundles.values()):
                packed = pack_bundle(path)
                shipped[path] = Shipped(packed[0], ray.put(packed))
        sink = ResultsSink(job.output_uri, job.parquet_shards, parts, job.rows_per_shard)
        (
            ray.data.read_datasource(
                ArticleSource(files, fs, schema, record_fields(job), done.rows), num_cpus=IO_CPUS
            )
            .map_batches(
                RayScorer,
                fn_constructor_args=(
                    bundles,
                    {t: r.version for t, r in models.items()},
                    job,
                    config,
                    shipped,
                ),
                compute=ray.data.ActorPoolStrategy(min_size=least, max_size=most),
                num_cpus=job.cpus_per_actor,
                num_gpus=job.actor_gpus or None,
                batch_size=job.batch_size,
                batch_format="pyarrow",
            )
            .write_datasink(sink, ray_remote_args={"num_cpus": IO_CPUS})
        )
        run = RayRun(
            scored=sink.totals.results,
            rejected=sink.totals.rejects,
            skipped=done.results + done.rejects,
            nodes=tuple(sorted(sink.totals.nodes)),
        )
        mark_complete(
            job.output_uri,
            {
                "results": done.results + run.scored,
                "rejects": done.rejects + run.rejected,
                "nodes": list(run.nodes),
            },
        )
        return run
    except BatchError:
        raise
    except Exception as exc:
        if (unreadable := _cause(exc, DataError)) is not None:
            raise BatchError(
                f"cannot read the input: {unreadable}; the shards committed so far are kept, "
                "rerun with --resume once the input is fixed"
            ) from None
        if not isinstance(exc, ray.exceptions.RayError | ray.data.exceptions.SystemException):
            raise
        raise BatchError(
            f"the Ray job failed ({type(exc).__name__}: {str(exc)[:500]}); the shards "
            "committed so far are kept, rerun with --resume"
        ) from None
    finally:
        ray.shutdown()

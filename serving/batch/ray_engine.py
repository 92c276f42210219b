"""``akhbar score --engine ray``: the same scoring on a Ray cluster (the ``akhbar[ray]`` extra).

How the work is split, and why:

* This process (the driver) reads the input with the foundation's reader, exactly as the
  local engine does, so rejects, line numbers, duplicate ids and ``--resume`` behave the
  same. Reading and checking JSON runs at tens of thousands of records a second, scoring at
  tens to hundreds, so the driver is never the bottleneck. The records to score are put
  into Ray's object store in blocks of ``4 x --batch-size`` (spilled to disk when large),
  which every node of a cluster can read: the input file need not be on shared storage.
* Those blocks form the Ray Dataset; ``map_batches`` runs :class:`RayScorer`, a stateful
  class that loads the models once per actor, on an ``ActorPoolStrategy`` of
  ``--concurrency`` actors, ``--batch-size`` articles per call, each call the same
  :func:`akhbar.serving.batch.job.score_chunk` the local engine makes.
* Results come back to the driver in input order and go through the local engine's writer,
  so the output, its crash safety and ``--resume`` are one implementation.
* Configuration: the driver reads the scoring configuration (``AKHBAR_*``) and hands it to
  every actor, so the driver's settings apply on every node; each actor resolves it for its
  own machine (``auto`` precision for its CPU; ``AKHBAR_TORCH_THREADS`` 0: the one CPU Ray
  reserves for it) and applies it before loading the models.
* Models: the driver resolves them as the service does. When it joins a cluster
  (``--ray-address``), it also ships each bundle's files through the object store, so an
  actor on a node without the driver's model store unpacks them into its temp folder
  (once per node and bundle, keyed by content).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from akhbar.serving.batch.job import BatchError, Job, Outcome, score_chunk
from akhbar.serving.core.config import ScoringConfig

if TYPE_CHECKING:
    from akhbar.serving.core.articles import Article

BLOCK_BATCHES = 4  # batches per object-store block: a multiple, so batches never straddle blocks
LOCAL_CPUS = 2  # a local Ray gets max(this, --concurrency) CPUs
ACTOR_CPUS = (
    1  # CPUs Ray reserves per scoring actor: its torch threads when AKHBAR_TORCH_THREADS is 0
)


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


def unpack_bundle(packed: tuple[str, dict[str, bytes]], cache: Path | None = None) -> Path:
    """Write a packed bundle under ``cache`` (default: the temp folder) once; its directory.

    Written to a private folder and renamed into place, so actors starting together on one
    node neither read a half-written bundle nor write it twice.
    """
    digest, files = packed
    cache = cache or Path(tempfile.gettempdir()) / "akhbar-models"
    target = cache / digest
    if target.is_dir():
        return target
    cache.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{digest}-", dir=cache))
    for name, data in files.items():
        (staging / name).parent.mkdir(parents=True, exist_ok=True)
        (staging / name).write_bytes(data)
    try:
        os.rename(staging, target)
    except OSError:  # another actor got there first
        shutil.rmtree(staging, ignore_errors=True)
    return target


# ---------------------------------------------------------------------------------------
# The actor


class RayScorer:
    """Score blocks of articles; Ray makes one per actor, so models load once per actor.

    Parameters
    ----------
    bundles: ``{task: bundle directory}`` as resolved on the driver.
    versions: ``{task: store tag or path}``, reported as ``model_versions``.
    tasks: the tasks to run.
    config: the driver's scoring configuration; resolved and applied here, on the actor.
    shipped: ``{bundle directory: object ref of pack_bundle(...)}`` for directories this
        node may lack; None when every node sees the driver's paths.

    Called directly (without Ray) in the tests, as the Ray Data docs recommend.
    """

    def __init__(
        self,
        bundles: Mapping[str, str],
        versions: Mapping[str, str],
        tasks: Sequence[str],
        config: ScoringConfig,
        shipped: Mapping[str, Any] | None = None,
    ) -> None:
        from akhbar.serving.core.analyzer import Analyzer

        paths = {}
        for task, path in bundles.items():
            if not Path(path).is_dir() and shipped and path in shipped:
                packed = shipped[path]
                if not isinstance(packed, tuple):  # an object ref (a plain tuple in tests)
                    import ray

                    packed = ray.get(packed)
                path = str(unpack_bundle(packed))
            paths[task] = path
        self.tasks = tuple(tasks)
        runtime = config.runtime(cores=ACTOR_CPUS)
        runtime.apply()
        self.analyzer = Analyzer.from_bundles(paths, versions, runtime)

    def __call__(self, batch: Any) -> Any:
        """``line``, ``article`` (JSON) columns in; ``line``, ``outcome`` (JSON) columns out.

        JSON text rather than Arrow structs keeps ids' types (``5`` and ``"5"``) and the
        result exactly as the local engine writes it.
        """
        import pyarrow as pa

        from akhbar.serving.core.articles import Article

        # Validated on the driver, against its limits: taken as they are.
        articles = [
            Article.model_construct(**json.loads(a)) for a in batch.column("article").to_pylist()
        ]
        outcomes = score_chunk(self.analyzer, articles, self.tasks)
        encoded = [
            json.dumps(o if isinstance(o, dict) else {"id": a.id, "error": o}, ensure_ascii=False)
            for a, o in zip(articles, outcomes, strict=True)
        ]
        return pa.table({"line": batch.column("line"), "outcome": pa.array(encoded, pa.string())})


# ---------------------------------------------------------------------------------------
# The driver


def _init(address: str | None, concurrency: int) -> None:
    import ray

    if address:
        ray.init(address=address, logging_level=logging.WARNING)
        return
    # A private local Ray: no token file in the home folder, no dashboard (known traps).
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    ray.init(
        num_cpus=max(LOCAL_CPUS, concurrency),
        include_dashboard=False,
        logging_level=logging.WARNING,
    )


def _blocks(articles: Iterator[tuple[int, Article]], rows: int) -> Iterator[Any]:
    import pyarrow as pa

    lines: list[int] = []
    encoded: list[str] = []
    for line, article in articles:
        lines.append(line)
        encoded.append(article.model_dump_json())
        if len(lines) == rows:
            yield pa.table(
                {"line": pa.array(lines, pa.int64()), "article": pa.array(encoded, pa.string())}
            )
            lines, encoded = [], []
    if lines:
        yield pa.table(
            {"line": pa.array(lines, pa.int64()), "article": pa.array(encoded, pa.string())}
        )


def score_with_ray(
    job: Job,
    config: ScoringConfig,
    models: Mapping[str, Any],
    articles: Iterator[tuple[int, Article]],
    write: Callable[[list[Outcome]], None],
) -> None:
    """Score ``articles`` on Ray and hand each returned batch to ``write``, in input order.

    Parameters
    ----------
    job: the job (tasks, batch size, ``ray_address``, ``concurrency``).
    config: the scoring configuration, handed to every actor.
    models: ``{task: ModelRef}`` from :meth:`ScoringConfig.resolve_models`.
    articles: ``(line, article)`` pairs to score, validated.
    write: the local engine's writer.
    """
    import ray
    import ray.data

    concurrency = job.concurrency or 1
    try:
        _init(job.ray_address, concurrency)
    except Exception as exc:  # noqa: BLE001 - Ray raises many kinds when a cluster is unreachable
        raise BatchError(f"cannot start or join Ray ({type(exc).__name__}: {exc})") from None
    try:
        # akhbar score prints its own progress and summary; Ray Data's notes would interleave.
        logging.getLogger("ray.data").setLevel(logging.ERROR)
        context = ray.data.DataContext.get_current()
        context.execution_options.preserve_order = True  # results in input order, as local
        context.enable_progress_bars = False  # akhbar score has its own bar
        context.print_on_execution_start = False
        refs = [ray.put(block) for block in _blocks(articles, job.batch_size * BLOCK_BATCHES)]
        if not refs:
            return
        bundles = {t: str(r.path) for t, r in models.items()}
        shipped = None
        if job.ray_address:  # other nodes may not see this machine's model store
            shipped = {path: ray.put(pack_bundle(path)) for path in set(bundles.values())}
        dataset = ray.data.from_arrow_refs(refs).map_batches(
            RayScorer,
            fn_constructor_args=(
                bundles,
                {t: r.version for t, r in models.items()},
                job.tasks,
                config,
                shipped,
            ),
            compute=ray.data.ActorPoolStrategy(size=concurrency),
            num_cpus=ACTOR_CPUS,
            batch_size=job.batch_size,
            batch_format="pyarrow",
        )
        for batch in dataset.iter_batches(batch_size=None, batch_format="pyarrow"):
            outcomes: list[Outcome] = []
            for line, encoded in zip(
                batch.column("line").to_pylist(), batch.column("outcome").to_pylist(), strict=True
            ):
                outcome = json.loads(encoded)
                error = outcome.get("error") if set(outcome) == {"id", "error"} else None
                outcomes.append((line, outcome["id"], error if error is not None else outcome))
            write(outcomes)
    except BatchError:
        raise
    except ray.exceptions.RayError as exc:
        raise BatchError(
            f"the Ray job failed ({type(exc).__name__}: {str(exc)[:500]}); results so far "
            "are kept, rerun with --resume"
        ) from None
    finally:
        ray.shutdown()

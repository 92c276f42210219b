"""``akhbar models``: the BentoML model store for akhbar bundles (list, import, export, promote).

A bundle directory (see :mod:`akhbar.models.bundle`) is imported whole into a BentoML model
(``bentoml.models.create``): the model's folder holds the bundle's files beside BentoML's
``model.yaml``, so the stored copy loads with ``load_bundle(resolve(tag))``. Names are
``akhbar-<task>`` for a bundle imported for one task, and ``akhbar-shared`` for a bundle with
several task heads imported for all of them. Labels record the tasks (``tasks``, comma
separated) and the key metric; metadata holds the bundle's ``metrics.json``.

Promotion. ``promote TAG`` writes the tag into a small JSON pointer file,
``$BENTOML_HOME/akhbar/promoted.json`` (``{"topic": "akhbar-topic:abc", ...}``), written
atomically. A pointer file rather than a label: BentoML treats a stored model as immutable
(labels live in each model's ``model.yaml``), and one file answers "which model is the
default for each task" in one read, with no model left holding a stale "default" label.

Which model a task uses (:func:`resolve_models`, which the service, the batch scorer and the
benchmarks reach through :meth:`akhbar.serving.core.config.ScoringConfig.resolve_models`):

1. ``AKHBAR_<TASK>_MODEL`` when set: a store tag, a bundle directory used in place, or the URI
   of a bundle folder on any filesystem pyarrow opens (``s3://models/topic-v3/``), copied
   once into ``$BENTOML_HOME/akhbar/fetched/`` (:func:`fetch_bundle`);
2. else, inside a built Bento, the model it was built with (:func:`bento_models`);
3. else the promoted tag;
4. else, on first start, the shipped default is imported and promoted: ``models/default/<task>/``,
   or ``models/default/shared/`` (one bundle with every task's head, imported once as
   ``akhbar-shared`` and promoted for all its tasks). When the shipped default changes (a new
   checkout), the new one is imported and replaces the old one wherever the old one was still
   the default; a model someone promoted stays;
5. else start-up stops with one sentence naming the task and the command to run.

``BENTOML_HOME`` (default ``~/bentoml``) is read on every call, so tests can point it at a
temporary folder.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from akhbar.models.tasks import TASKS

NAME_PREFIX = "akhbar-"
SHARED_NAME = "akhbar-shared"
POINTER_FILE = "promoted.json"
BENTO_ALIAS_PREFIX = "akhbar:"  # see bento_alias
# Shipped defaults: models/default/<task>/, beside serving/ in the repository and in a Bento's
# working directory; AKHBAR_DEFAULT_MODELS points elsewhere.
DEFAULT_MODELS_ENV = "AKHBAR_DEFAULT_MODELS"
SHARED_DIR = "shared"  # models/default/shared/: one encoder with a head per task
SHIPPED = "shipped default"  # the ``origin`` label of a model imported from models/default/
# The metric `models list` shows, per task, and where in metrics.json to look for it.
KEY_METRICS = {"topic": "macro_f1", "stance": "macro_f1", "summary": "rougeL"}
METRIC_SECTIONS = ("test", "model", "validation")


class ModelStoreError(RuntimeError):
    """A missing, unknown or corrupt model; the message is one sentence that says what to run."""


# ---------------------------------------------------------------------------------------
# Where things live


def bentoml_home() -> Path:
    home = os.environ.get("BENTOML_HOME") or os.path.join("~", "bentoml")
    return Path(os.path.expandvars(os.path.expanduser(home)))


def _model_store():
    from bentoml._internal.models.model import ModelStore

    path = bentoml_home() / "models"
    path.mkdir(parents=True, exist_ok=True)
    return ModelStore(str(path))


def pointer_path() -> Path:
    return bentoml_home() / "akhbar" / POINTER_FILE


def default_models_dir() -> Path | None:
    """The folder with the shipped ``<task>/`` bundles, or None when there is none."""
    candidates = [os.environ.get(DEFAULT_MODELS_ENV)] if os.environ.get(DEFAULT_MODELS_ENV) else []
    candidates += [
        Path(__file__).resolve().parent.parent / "models" / "default",
        Path.cwd() / "models" / "default",
    ]
    for candidate in candidates:
        if candidate and Path(candidate).is_dir():
            return Path(candidate)
    return None


# ---------------------------------------------------------------------------------------
# Import, look-up, export


def _key_metric(task: str, metrics: dict) -> tuple[str, float] | None:
    """``(section.metric, value)`` for the task's key metric, e.g. ``("test.macro_f1", 0.91)``."""
    name = KEY_METRICS.get(task)
    if not name or not isinstance(metrics, dict):
        return None
    figures = metrics.get("tasks", {}).get(task) if isinstance(metrics.get("tasks"), dict) else None
    if not isinstance(figures, dict):
        return None
    for section in METRIC_SECTIONS:
        value = (
            figures.get(section, {}).get(name) if isinstance(figures.get(section), dict) else None
        )
        if isinstance(value, (int, float)) and math.isfinite(value):
            return f"{section}.{name}", float(value)
    return None


def _plain(value: Any) -> Any:
    """``value`` with what BentoML metadata refuses (None, NaN) replaced by strings."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return str(value)
    return value


def _name_for(task_or_name: str | None, tasks: tuple[str, ...]) -> str:
    if task_or_name in TASKS:
        return NAME_PREFIX + task_or_name
    if task_or_name:
        return task_or_name
    return NAME_PREFIX + tasks[0] if len(tasks) == 1 else SHARED_NAME


def bundle_digest(path: Path) -> str:
    """SHA-256 of the bundle's files (names and contents): tells two versions of a bundle apart."""
    digest = hashlib.sha256()
    for item in sorted(p for p in path.iterdir() if p.is_file()):
        digest.update(item.name.encode() + b"\0")
        with item.open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def import_bundle(
    path: str | Path,
    task_or_name: str | None = None,
    validate: bool = True,
    origin: str | None = None,
) -> str:
    """Copy a bundle directory into the store; returns the new tag (``akhbar-topic:<version>``).

    Parameters
    ----------
    path: the bundle directory.
    task_or_name: a task (``topic``, ``summary``, ``stance``): the model is named
        ``akhbar-<task>`` and serves that task; another string: the model name; None: named
        after the bundle's only task, or ``akhbar-shared`` for a bundle with several.
    validate: load the bundle first (weights included), so a corrupt bundle never enters
        the store; False checks only its files and settings.
    origin: recorded as the ``origin`` label (:data:`SHIPPED` for the shipped defaults).
    """
    import bentoml

    from akhbar.models.bundle import (
        METRICS_FILE,
        BundleError,
        check_files,
        load_bundle,
        read_settings,
    )

    path = Path(path)
    try:
        check_files(path)
        settings = read_settings(path)
        if validate:
            load_bundle(path)
    except BundleError as exc:
        raise ModelStoreError(f"cannot import {exc}.") from None
    bundle_tasks = tuple(settings.tasks)
    if task_or_name in TASKS and task_or_name not in bundle_tasks:
        raise ModelStoreError(
            f"cannot import {path} for {task_or_name}: the bundle only has "
            f"{', '.join(bundle_tasks)}."
        )
    serves = (
        (task_or_name,) if task_or_name in TASKS else tuple(t for t in bundle_tasks if t in TASKS)
    )
    metrics_file = path / METRICS_FILE
    try:
        metrics = (
            json.loads(metrics_file.read_text(encoding="utf-8")) if metrics_file.is_file() else {}
        )
    except json.JSONDecodeError:
        metrics = {}
    labels = {"project": "akhbar", "tasks": ",".join(serves)} | (
        {"origin": origin} if origin else {}
    )
    for task in serves:
        found = _key_metric(task, metrics)
        if found:
            labels[f"{task}_metric"] = f"{found[0]}={found[1]:.4f}"
    metadata = {
        "bundle_tasks": list(bundle_tasks),
        "base_model": settings.base_model,
        "akhbar_version": settings.akhbar_version,
        "source": str(path.resolve()),
        "digest": bundle_digest(path),
        "metrics": _plain(metrics),
    }
    with bentoml.models.create(
        _name_for(task_or_name, bundle_tasks),
        labels=labels,
        metadata=metadata,
        _model_store=_model_store(),
    ) as model:
        for item in path.iterdir():
            target = Path(model.path) / item.name
            if item.is_dir():
                shutil.copytree(item, target)
            elif item.is_file():
                shutil.copy2(item, target)
    return str(model.tag)


def _get(tag: str):
    import bentoml
    from bentoml.exceptions import NotFound

    try:
        return bentoml.models.get(tag, _model_store=_model_store())
    except NotFound:
        raise ModelStoreError(
            f"model {tag} is not in the store at {bentoml_home()}; see `akhbar models list`, "
            "or add one with `akhbar models import DIR --task TASK`."
        ) from None
    except ValueError as exc:  # a malformed tag
        raise ModelStoreError(
            f"{tag!r} is not a model tag ({exc}); tags look like akhbar-topic:VERSION."
        ) from None


def resolve(tag: str) -> Path:
    """The folder of a stored model (the bundle's files), for ``load_bundle``."""
    return Path(_get(tag).path)


def model_tasks(tag: str) -> tuple[str, ...]:
    """The tasks a stored model was imported for."""
    labels = _get(tag).info.labels
    return tuple(t for t in labels.get("tasks", "").split(",") if t)


EXPORT_FORMATS = ("bundle", "hf", "onnx")


def export(
    tag: str, directory: str | Path, format: str = "bundle", task: str | None = None
) -> Path:
    """Write a model to a new directory: ``bundle``, a copy of its bundle files (not BentoML's
    ``model.yaml``); ``hf`` or ``onnx``, one task's encoder and head (:mod:`akhbar.models.exports`).

    ``tag`` is a store tag or a bundle directory; ``task`` names the head an ``hf`` or ``onnx``
    export takes (needed when the bundle has several)."""
    from bentoml._internal.models.model import MODEL_YAML_FILENAME

    directory = Path(directory)
    if directory.exists() and any(directory.iterdir()):
        raise ModelStoreError(f"{directory} is not empty; export into a new or empty directory.")
    source = Path(tag) if Path(tag).is_dir() else resolve(tag)
    if format != "bundle":
        return _export_task(source, task, directory, format)
    directory.mkdir(parents=True, exist_ok=True)
    for item in source.iterdir():
        if item.name == MODEL_YAML_FILENAME:
            continue
        if item.is_dir():
            shutil.copytree(item, directory / item.name)
        else:
            shutil.copy2(item, directory / item.name)
    return directory


def _export_task(source: Path, task: str | None, directory: Path, format: str) -> Path:
    from akhbar.models import exports
    from akhbar.models.bundle import BundleError, load_bundle, read_settings

    try:
        tasks = tuple(read_settings(source).tasks)
        if task is None and len(tasks) > 1:
            raise ModelStoreError(
                f"{source} has several heads ({', '.join(tasks)}); name one with --task."
            )
        return exports.export(load_bundle(source), task or tasks[0], directory, format)
    except BundleError as exc:
        raise ModelStoreError(f"cannot export {exc}.") from None


def push_to_hub(directory: Path, repo_id: str) -> str:
    """Upload an exported folder (its card included) to a Hugging Face model repository,
    creating it (private) when missing; the token is huggingface_hub's (``HF_TOKEN`` or
    ``hf auth login``). Returns the commit's URL."""
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError

    api = HfApi()
    try:
        api.create_repo(repo_id, private=True, exist_ok=True)
        commit = api.upload_folder(
            repo_id=repo_id,
            folder_path=directory,
            commit_message=f"akhbar models export: {directory.name}",
        )
    except (HfHubHTTPError, OSError) as exc:
        raise ModelStoreError(
            f"{directory} was exported, but pushing it to {repo_id} failed: {exc}"
        ) from None
    return commit.commit_url


# ---------------------------------------------------------------------------------------
# Promotion


def promoted() -> dict[str, str]:
    """``{task: tag}`` from the pointer file (empty when nothing was promoted)."""
    path = pointer_path()
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError:
        raise ModelStoreError(
            f"{path} is not valid JSON; "
            "delete it and run `akhbar models promote TAG` for each task."
        ) from None
    return (
        {k: v for k, v in data.items() if k in TASKS and isinstance(v, str)}
        if isinstance(data, dict)
        else {}
    )


def promote(tag: str, tasks: Iterable[str] | None = None) -> tuple[str, dict[str, str]]:
    """Make ``tag`` the default for ``tasks`` (default: every task it was imported for).

    The tag is pinned to its version (``akhbar-topic:latest`` → ``akhbar-topic:abc``), so a
    later import never changes the default by itself. Returns the pinned tag and the pointers.
    """
    model = _get(tag)
    pinned = str(model.tag)
    serves = tuple(t for t in model.info.labels.get("tasks", "").split(",") if t)
    tasks = tuple(tasks) if tasks else serves
    bundle_tasks = model.info.metadata.get("bundle_tasks", serves)
    missing = [t for t in tasks if t not in bundle_tasks]
    if not tasks or missing:
        raise ModelStoreError(
            f"{pinned} has no {', '.join(missing) or 'task'} head; it holds "
            f"{', '.join(bundle_tasks) or 'none'}."
        )
    pointers = {**promoted(), **{t: pinned for t in tasks}}
    path = pointer_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False, suffix=".tmp") as tmp:
        json.dump(pointers, tmp, indent=2, sort_keys=True)
        tmp.write("\n")
    os.replace(tmp.name, path)  # atomic: readers see the old or the new file, never half
    return pinned, pointers


# ---------------------------------------------------------------------------------------
# What the service and the batch scorer load


@dataclass(frozen=True)
class ModelRef:
    """Where one task's model comes from: a folder to load, the version to report, and the
    store tag (None for a bundle directory used in place)."""

    task: str
    path: Path
    version: str
    tag: str | None = None


def bento_alias(tasks: Iterable[str]) -> str:
    """The alias a Bento records for a model it carries: ``akhbar:`` and the tasks it serves."""
    return BENTO_ALIAS_PREFIX + ",".join(tasks)


def bento_models() -> dict[str, str]:
    """``{task: tag}`` of the models the running Bento was built with; empty outside a Bento.

    BentoML sets the aliases a Bento recorded (:func:`bento_alias`) before it imports the
    service, and points its model store at the models inside the Bento.
    """
    from bentoml._internal.configuration.containers import BentoMLContainer

    return {
        task: str(tag)
        for alias, tag in BentoMLContainer.model_aliases.get().items()
        if alias.startswith(BENTO_ALIAS_PREFIX)
        for task in alias.removeprefix(BENTO_ALIAS_PREFIX).split(",")
    }


def _how_to_get(task: str) -> str:
    return (
        f"import one with `akhbar models import DIR --task {task}` and promote it, set "
        f"AKHBAR_{task.upper()}_MODEL to a bundle directory or store tag, or build the shipped "
        "defaults with `make models`"
    )


def _default_bundle(task: str) -> Path | None:
    """The shipped bundle for ``task``: ``models/default/<task>/``, else ``models/default/shared/``
    when its heads include the task."""
    from akhbar.models.bundle import BundleError, read_settings

    root = default_models_dir()
    if root is None:
        return None
    if (root / task).is_dir():
        return root / task
    shared = root / SHARED_DIR
    try:
        return shared if shared.is_dir() and task in read_settings(shared).tasks else None
    except BundleError as exc:
        raise ModelStoreError(
            f"the shipped default models are unusable: {exc} Rebuild them with `make models`."
        ) from None


def _is_current(tag: str, digest: str) -> bool:
    """False for a model imported from an older shipped default; True otherwise (a model
    someone imported themselves is always current, as is one the store cannot read)."""
    try:
        info = _get(tag).info
    except ModelStoreError:
        return True  # resolve_models reports it
    return info.labels.get("origin") != SHIPPED or info.metadata.get("digest") == digest


def _shipped_default(task: str, tag: str | None, digests: dict[Path, str]) -> str | None:
    """The model ``task`` should use when nothing overrides it: ``tag`` (the promoted one),
    unless it is missing or an older shipped default; then the current shipped default is
    imported and promoted, once for a shared bundle. None when there is none. ``digests``
    caches each shipped bundle's digest across the tasks of one look-up (a shared bundle
    serves all three).

    Under a file lock, so several workers starting at once import it once.
    """
    import fcntl

    source = _default_bundle(task)
    if source is None:
        return tag
    if source not in digests:
        digests[source] = bundle_digest(source)
    digest = digests[source]
    if tag is not None and _is_current(tag, digest):
        return tag
    lock_path = pointer_path().with_name(".import.lock")
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        pointers = promoted()
        if task in pointers and _is_current(
            pointers[task], digest
        ):  # another worker got here first
            return pointers[task]
        print(
            f"akhbar: importing the shipped default {task} model from {source} into the model "
            f"store at {bentoml_home()} (once; `akhbar models list` shows it)",
            file=sys.stderr,
        )
        try:
            # The service validates it when it loads it next.
            new = import_bundle(
                source, task if source.name == task else None, validate=False, origin=SHIPPED
            )
        except ModelStoreError as exc:
            raise ModelStoreError(
                f"the shipped default {task} model is unusable: {exc} "
                "Rebuild it with `make models`."
            ) from None
        # Tasks pointing at a model someone promoted keep it; unset and outdated ones move.
        promote(
            new,
            [
                t
                for t in model_tasks(new)
                if t not in pointers or not _is_current(pointers[t], digest)
            ],
        )
    return promoted()[task]


def fetch_bundle(uri: str) -> Path:
    """A local copy of the bundle folder at ``uri`` (``s3://``, ``gs://``, ``hdfs://``...),
    fetched once: kept under ``$BENTOML_HOME/akhbar/fetched/``, keyed by the URI and the size
    and modification time of every file, so a changed bundle is fetched again
    (:func:`folder_once`: processes fetching together never see half a bundle). Raises
    :class:`ModelStoreError` naming the URI when it cannot be listed or read.
    """
    import pyarrow.fs as pafs

    try:
        fs, root = pafs.FileSystem.from_uri(uri)
        listed = [
            f
            for f in fs.get_file_info(pafs.FileSelector(root, recursive=True))
            if f.type == pafs.FileType.File
        ]
    except (OSError, ValueError) as exc:
        raise ModelStoreError(f"cannot read the model at {uri}: {exc}") from None
    if not listed:
        raise ModelStoreError(f"the model at {uri} holds no files; point at a bundle folder")
    digest = hashlib.sha256(uri.encode())
    for f in sorted(listed, key=lambda f: f.path):
        digest.update(f"{f.path}\0{f.size}\0{f.mtime_ns}\0".encode())

    def copy(staging: Path) -> None:
        for f in listed:
            local = staging / f.path[len(root) :].lstrip("/")
            local.parent.mkdir(parents=True, exist_ok=True)
            with fs.open_input_stream(f.path) as source, local.open("wb") as out:
                shutil.copyfileobj(source, out)

    target = bentoml_home() / "akhbar" / "fetched" / digest.hexdigest()[:20]
    try:
        return folder_once(target, copy)
    except OSError as exc:
        raise ModelStoreError(f"cannot fetch the model at {uri}: {exc}") from None


def folder_once(target: Path, fill: Callable[[Path], None]) -> Path:
    """``target``, unless it exists already, filled by ``fill`` in a private folder beside it
    and renamed into place: processes doing this together never see half a folder, and the
    first one's copy stays. Raises the ``OSError`` of a fill or rename that failed while
    ``target`` is still missing (the private folder is removed)."""
    if target.is_dir():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        fill(staging)
        os.rename(staging, target)
    except OSError:
        shutil.rmtree(staging, ignore_errors=True)
        if not target.is_dir():
            raise
    return target


def resolve_models(
    tasks: Iterable[str] = TASKS, overrides: dict[str, str | None] | None = None
) -> dict[str, ModelRef]:
    """The model for each task, in the order the module docstring gives; checks files only.

    Parameters
    ----------
    tasks: the tasks to resolve.
    overrides: ``{task: tag or directory}``, e.g. from ``AKHBAR_<TASK>_MODEL``; None or a
        missing task falls back to the store.
    """
    import bentoml

    from akhbar.models.bundle import BundleError, check_files, read_settings

    overrides = overrides or {}
    pinned = bento_models()
    refs: dict[str, ModelRef] = {}
    digests: dict[Path, str] = {}
    for task in tasks:
        chosen = overrides.get(task)
        if chosen and "://" in chosen:
            path, version, tag = fetch_bundle(chosen), chosen, None
        elif chosen and Path(chosen).expanduser().is_dir():
            path = Path(chosen).expanduser().resolve()
            version, tag = str(path), None
        elif not chosen and task in pinned:
            # Inside a Bento: BentoML's model store is the Bento's own.
            model = bentoml.models.get(pinned[task])
            path, version = Path(model.path), str(model.tag)
            tag = version
        else:
            tag = chosen or _shipped_default(task, promoted().get(task), digests)
            if tag is None:
                raise ModelStoreError(
                    f"no {task} model is set up in {bentoml_home()}; {_how_to_get(task)}."
                )
            try:
                model = _get(tag)
            except ModelStoreError:
                source = f"AKHBAR_{task.upper()}_MODEL" if chosen else f"the promoted {task} model"
                raise ModelStoreError(
                    f"{source} {tag} is neither a bundle directory nor in the store at "
                    f"{bentoml_home()}; {_how_to_get(task)}."
                ) from None
            path, version = Path(model.path), str(model.tag)
            tag = version
        try:
            check_files(path)
            settings = read_settings(path)
        except BundleError as exc:
            raise ModelStoreError(
                f"the {task} model {version} is unusable ({exc}); {_how_to_get(task)}."
            ) from None
        if task not in settings.tasks:
            raise ModelStoreError(
                f"the {task} model {version} has no {task} head (it has "
                f"{', '.join(settings.tasks)}); {_how_to_get(task)}."
            )
        refs[task] = ModelRef(task, path, version, tag)
    return refs


# ---------------------------------------------------------------------------------------
# Command line


def list_models() -> list[dict[str, Any]]:
    """One row per stored akhbar model, newest first: tag, tasks, metrics, promoted-for."""
    pointers = promoted()
    rows = []
    for model in _model_store().list():
        labels = model.info.labels
        if labels.get("project") != "akhbar":
            continue
        tag = str(model.tag)
        tasks = [t for t in labels.get("tasks", "").split(",") if t]
        rows.append(
            {
                "tag": tag,
                "tasks": tasks,
                "metrics": {t: labels[f"{t}_metric"] for t in tasks if f"{t}_metric" in labels},
                "promoted_for": sorted(t for t, p in pointers.items() if p == tag),
                "created": model.info.creation_time,
            }
        )
    return sorted(rows, key=lambda r: r["created"], reverse=True)


def _print_list() -> None:
    rows = list_models()
    if not rows:
        shipped = default_models_dir()
        found = (
            f"The shipped defaults in {shipped} are imported on the first `akhbar serve` or "
            "`akhbar score`."
            if shipped is not None and any(_default_bundle(t) for t in TASKS)
            else f"No shipped defaults were found: set {DEFAULT_MODELS_ENV} to a folder that "
            "holds them (a checkout's models/default)."
        )
        print(
            f"No akhbar models in {bentoml_home()}. {found} Or add a bundle directory with "
            "`akhbar models import DIR --task TASK` (a shared bundle serves every task)."
        )
        return
    lines = [("TAG", "TASKS", "KEY METRIC", "DEFAULT FOR", "CREATED")]
    for r in rows:
        metric = "; ".join(f"{t}: {m}" for t, m in r["metrics"].items()) or "-"
        lines.append(
            (
                r["tag"],
                ",".join(r["tasks"]),
                metric,
                ",".join(r["promoted_for"]) or "-",
                r["created"].strftime("%Y-%m-%d %H:%M"),
            )
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(lines[0]))]
    for line in lines:
        print("  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip())


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="akhbar models",
        description="List, export, import and promote akhbar model bundles "
        "(BentoML model store in $BENTOML_HOME, default ~/bentoml).",
    )
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)

    sub.add_parser(
        "list",
        help="Show the bundles in the store with their tasks and metrics.",
        description="Show the bundles in the store with their tasks and key metric; "
        "the promoted ones are marked.",
    )

    export_ = sub.add_parser(
        "export",
        help="Write a model to a directory: its bundle, or one task for transformers or ONNX.",
        description="Write a model to a new or empty directory: a copy of its bundle "
        "(--format bundle), or one task's encoder and head, to run without akhbar, as a "
        "Hugging Face checkpoint (--format hf: pipeline('text-classification', "
        "trust_remote_code=True)) or an ONNX graph for onnxruntime (--format onnx, needs the "
        "'onnx' extra).",
    )
    export_.add_argument(
        "tag",
        metavar="TAG",
        help="Model tag (e.g. akhbar-topic:latest) or a bundle directory (models/default/shared).",
    )
    export_.add_argument("directory", metavar="DIR", help="Directory to write to (new or empty).")
    export_.add_argument(
        "--format",
        choices=EXPORT_FORMATS,
        default="bundle",
        help="What to write (default: bundle).",
    )
    export_.add_argument(
        "--task",
        choices=TASKS,
        default=None,
        help="The head an hf or onnx export takes (default: the bundle's only head; needed "
        "when it has several).",
    )
    export_.add_argument(
        "--push-to-hub",
        metavar="REPO",
        default=None,
        help="Then upload the folder to this Hugging Face model repository (created private "
        "when missing; token from HF_TOKEN or `hf auth login`; default: no upload).",
    )

    import_ = sub.add_parser(
        "import",
        help="Add a bundle directory to the store.",
        description="Validate a bundle directory and add it to the store; prints its tag. "
        "It becomes the default only once promoted.",
    )
    import_.add_argument("directory", metavar="DIR", help="Bundle directory to import.")
    import_.add_argument(
        "--task",
        choices=TASKS,
        default=None,
        help="Import for this task only, as model akhbar-TASK (default: the bundle's only "
        "task, or all of them as akhbar-shared).",
    )

    promote_ = sub.add_parser(
        "promote",
        help="Make a bundle the default for the service and the batch scorer.",
        description="Make a bundle the one the service and the batch scorer load by default "
        f"(written to $BENTOML_HOME/akhbar/{POINTER_FILE}); restart the service to apply it.",
    )
    promote_.add_argument("tag", metavar="TAG", help="Model tag to promote.")
    promote_.add_argument(
        "--task",
        choices=TASKS,
        action="append",
        default=None,
        help="Promote for this task only; repeatable (default: every task it was imported for).",
    )
    return parser


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """``akhbar models`` arguments, checked, without running anything;
    a bad one exits 2 with usage."""
    return build_parser().parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        if args.action == "list":
            _print_list()
        elif args.action == "import":
            print(import_bundle(args.directory, args.task))
        elif args.action == "export":
            written = export(args.tag, args.directory, args.format, args.task)
            print(written)
            if args.push_to_hub:
                print(push_to_hub(written, args.push_to_hub))
        elif args.action == "promote":
            tag, pointers = promote(args.tag, args.task)
            tasks = sorted(t for t, p in pointers.items() if p == tag)
            print(
                f"{tag} is now the default for {', '.join(tasks)}; restart the service to load it."
            )
    except ModelStoreError as exc:
        print(f"akhbar models {args.action}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

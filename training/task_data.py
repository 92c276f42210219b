"""A task's labelled records for fine-tuning: its splits from every source in ``--data``,
labels renamed by ``--label-map``, and the label set a run trains."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from akhbar.models.reader import data_root, read_records
from akhbar.models.tasks import SENTENCE_LABEL, SEQUENCE, task_kind
from akhbar.training.finetune_config import FinetuneConfig


def resolve_data(path: str) -> Path:
    """A path as given, else relative to the data root (so configs can say topic/ant_...)."""
    p = Path(path)
    return p if p.exists() else data_root() / path


def parse_label_map(text: str | None) -> dict[str, str]:
    """``"other:discuss,x:y"`` → {"other": "discuss", "x": "y"}; a ValueError names a bad pair."""
    mapping = {}
    for pair in filter(None, (text or "").split(",")):
        source, sep, target = pair.partition(":")
        if not sep or not source.strip() or not target.strip():
            raise ValueError(f"--label-map: {pair!r} is not SOURCE:TARGET")
        mapping[source.strip()] = target.strip()
    return mapping


def load_split(
    cfg: FinetuneConfig, which: str, labels: list[str] | None, out: Path | None
) -> list[dict]:
    """Records of one split from every source in ``--data`` (comma-separated), labels mapped.

    With ``--skip-bad``, bad records go to ``out/rejects-SPLIT.jsonl`` (``out`` None: to
    nowhere, for a distributed run's other processes, whose first process writes them) and each
    source's counts to stderr; otherwise the first one stops the run, naming its file and line.
    """
    given = cfg.validation if which == "validation" and cfg.validation else cfg.data
    label_map = parse_label_map(cfg.label_map)
    accepted = sorted(set(labels) | set(label_map)) if labels else None
    policy = "skip" if cfg.skip_bad else "strict"
    records: list[dict] = []
    for name in filter(None, given.split(",")):
        source = resolve_data(name)
        if which == "validation" and not source.is_dir() and not cfg.validation:
            raise ValueError(
                f"--data {name} is a single file, "
                "so pass --validation FILE for early stopping and calibration"
            )
        rejects = None
        if cfg.skip_bad:
            rejects = out / f"rejects-{which}.jsonl" if out else Path(os.devnull)
        stream = read_records(
            source,
            cfg.task,
            labels=accepted,
            policy=policy,
            rejects_path=rejects,
            split=which if source.is_dir() else None,
        )
        records += list(stream)
        if cfg.skip_bad:
            print(f"{name} {which}: {stream.summary()}", file=sys.stderr)
    for r in records:
        if "label" in r:
            r["label"] = label_map.get(r["label"], r["label"])
    limit = cfg.max_train_samples if which == "train" else cfg.max_eval_samples
    return records[:limit] if limit else records


def load_tasks(cfgs: list[FinetuneConfig], out: Path | None) -> tuple[dict, dict, dict]:
    """Every task's train and validation records, and its label list: ``--labels``, else the
    labels its train split holds (sequence tasks), or the one sentence label (summary)."""
    train, val, labels = {}, {}, {}
    for cfg in cfgs:
        fixed = cfg.labels.split(",") if cfg.labels else None
        train[cfg.task] = load_split(cfg, "train", fixed, out)
        sequence = task_kind(cfg.task) == SEQUENCE
        labels[cfg.task] = fixed or (
            sorted({r["label"] for r in train[cfg.task]}) if sequence else [SENTENCE_LABEL]
        )
        val[cfg.task] = load_split(cfg, "validation", labels[cfg.task] if sequence else None, out)
    return train, val, labels

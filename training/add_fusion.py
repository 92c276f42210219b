"""Fit what ``akhbar train`` fits after training into a trained bundle, without retraining
its encoder: a fusion part for a label task, or the lead prior of a sentence task.

The task's data and inputs come from its config (``training/configs/TASK.yaml``, or
``--config``), its validation scores from the serving path (:class:`Predictor`). A fusion
is fitted as in training (:mod:`akhbar.training.fusion_fitting`) and written only when it beats
the encoder on cross-validated validation; the lead prior is the one with the best
validation ROUGE-L. The task's settings and validation figures are updated to match::

    python -m akhbar.training.add_fusion BUNDLE --task stance --kind sentence_encoder
    python -m akhbar.training.add_fusion BUNDLE --task summary --kind lead_prior
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

from akhbar.cli import kebab_flags
from akhbar.models.bundle import METRICS_FILE, SETTINGS_FILE, BundleError, load_bundle
from akhbar.models.fusion import KINDS, remove_fusion
from akhbar.models.predict import Predictor
from akhbar.training.examples import references, sequence_inputs
from akhbar.training.finetune_config import load_config
from akhbar.training.fusion_fitting import choose, fit_fusion
from akhbar.training.metrics import calibrated, classification_report, expected_calibration_error
from akhbar.training.task_data import load_split
from akhbar.training.validation import fit_lead_prior, summary_report

LEAD_PRIOR = "lead_prior"


def add_fusion(bundle_dir: Path, task: str, kind: str, config: str | None = None) -> dict:
    """Fit and (when it wins) store the fusion; returns the task's new validation report."""
    bundle = load_bundle(bundle_dir)
    if task not in bundle.settings.tasks:
        raise BundleError(bundle_dir, f"has no {task} head (it has {', '.join(bundle.tasks)})")
    settings = bundle.settings.tasks[task]
    cfg = replace(
        load_config(task, config), evidence_sentences=settings.evidence_sentences, fusion=kind
    )
    labels = list(settings.labels)
    train, val = (load_split(cfg, split, labels, bundle_dir) for split in ("train", "validation"))
    lid = {name: i for i, name in enumerate(labels)}
    train_y, val_y = (np.array([lid[r["label"]] for r in rows]) for rows in (train, val))
    (texts, first), (val_texts, val_first) = sequence_inputs(cfg, train), sequence_inputs(cfg, val)
    predictor = Predictor(bundle)
    if settings.reads:  # the head reads another task's sentence windows of the article
        _, pooled = predictor.sentence_pass(
            [r["text"] for r in val], settings.reads, (task,), [r.get("title") for r in val]
        )
        logits = pooled[task]
    else:
        logits, _ = predictor.encoder_logits(task, val_texts, val_first)

    report = classification_report(val_y, logits.argmax(1), labels) | {
        "ece_before": expected_calibration_error(calibrated(logits, 1.0), val_y),
        "ece_after": expected_calibration_error(calibrated(logits, settings.temperature), val_y),
        "temperature": settings.temperature,
    }
    fusion, fusion_report = fit_fusion(
        cfg,
        texts,
        first,
        train_y,
        val_texts,
        val_first,
        val_y,
        logits,
        bundle.settings.normalization,
    )
    report, temperature, _, fusion = choose(
        report, settings.temperature, logits.argmax(1), fusion, fusion_report, val_y, labels
    )
    if fusion is not None:
        remove_fusion(bundle_dir, task)
        fusion.save(bundle_dir, task)
    _update(bundle_dir, task, report, temperature=temperature)
    return report


def add_lead_prior(bundle_dir: Path, task: str, config: str | None = None) -> dict:
    """Fit the sentence task's lead prior on validation; returns its new validation report."""
    bundle = load_bundle(bundle_dir)
    if task not in bundle.settings.tasks:
        raise BundleError(bundle_dir, f"has no {task} head (it has {', '.join(bundle.tasks)})")
    cfg = load_config(task, config)
    val = load_split(cfg, "validation", None, bundle_dir)
    bundle.settings.tasks[task] = replace(
        bundle.settings.tasks[task], lead_prior=0.0
    )  # the head alone
    scored = Predictor(bundle).sentence_scores(
        [r["text"] for r in val], task, [r.get("title") for r in val]
    )
    refs = [references(r) for r in val]
    prior, by_prior, picks = fit_lead_prior(
        [d for d, _, _ in scored], [s for _, s, _ in scored], refs, cfg.summary_sentences
    )
    report = summary_report(picks, refs, cfg.summary_sentences, prior, by_prior)
    _update(bundle_dir, task, report, lead_prior=prior)
    return report


def _update(bundle_dir: Path, task: str, report: dict, **settings) -> None:
    """Write the task's new settings into akhbar.json
    and its validation figures into metrics.json."""
    raw = json.loads((bundle_dir / SETTINGS_FILE).read_text())
    raw["tasks"][task].update(settings)
    (bundle_dir / SETTINGS_FILE).write_text(json.dumps(raw, indent=2, ensure_ascii=False) + "\n")
    metrics_file = bundle_dir / METRICS_FILE
    metrics = json.loads(metrics_file.read_text()) if metrics_file.is_file() else {}
    metrics.setdefault("tasks", {}).setdefault(task, {})["validation"] = report
    metrics_file.write_text(json.dumps(metrics, indent=2) + "\n")
    load_bundle(bundle_dir)  # what was written must load


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m akhbar.training.add_fusion", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("bundle", type=Path, help="Bundle directory, updated in place.")
    parser.add_argument("--task", required=True, help="The bundle's task to fit it for (required).")
    parser.add_argument(
        "--kind",
        required=True,
        choices=[*KINDS, LEAD_PRIOR],
        help="A side model fused with the encoder (label tasks), "
        "or the lead prior (sentence tasks) (required).",
    )
    parser.add_argument(
        "--config", default=None, help="The task's YAML (default: training/configs/TASK.yaml)."
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(kebab_flags(sys.argv[1:] if argv is None else argv))
    if args.kind == LEAD_PRIOR:
        report = add_lead_prior(args.bundle, args.task, args.config)
        print(json.dumps(report, indent=2))
    else:
        report = add_fusion(args.bundle, args.task, args.kind, args.config)
        print(json.dumps(report["fusion"], indent=2))
        print(f"{args.task}: {report['fusion']['chosen']} kept in {args.bundle}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

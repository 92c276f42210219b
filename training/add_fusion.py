"""Add a fusion part to a trained bundle, without retraining its encoder.

The task's data and inputs come from its config (``training/configs/TASK.yaml``, or
``--config``), its validation logits from the serving path (:class:`Predictor`). The
fusion is fitted as ``akhbar train`` fits it (:mod:`akhbar.training.fusion`) and written
into the bundle only when it beats the encoder on cross-validated validation; the task's
temperature and validation figures in the bundle are updated to match::

    python -m akhbar.training.add_fusion BUNDLE --task stance --kind sentence_encoder
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

from akhbar.models.bundle import METRICS_FILE, SETTINGS_FILE, BundleError, load_bundle
from akhbar.models.fusion import KINDS
from akhbar.models.predict import Predictor
from akhbar.training.finetune import load_split, parse_args, sequence_inputs
from akhbar.training.fusion import choose, fit_fusion
from akhbar.training.metrics import calibrated, classification_report, expected_calibration_error


def add_fusion(bundle_dir: Path, task: str, kind: str, config: str | None = None) -> dict:
    """Fit and (when it wins) store the fusion; returns the task's new validation report."""
    bundle = load_bundle(bundle_dir)
    if task not in bundle.settings.tasks:
        raise BundleError(bundle_dir, f"has no {task} head (it has {', '.join(bundle.tasks)})")
    settings = bundle.settings.tasks[task]
    [cfg] = parse_args([task, *(["--config", config] if config else [])])
    cfg = replace(cfg, evidence_sentences=settings.evidence_sentences, fusion=kind)
    labels = list(settings.labels)
    train, val = (load_split(cfg, split, labels, bundle_dir) for split in ("train", "validation"))
    lid = {name: i for i, name in enumerate(labels)}
    train_y, val_y = (np.array([lid[r["label"]] for r in rows]) for rows in (train, val))
    (texts, first), (val_texts, val_first) = sequence_inputs(cfg, train), sequence_inputs(cfg, val)
    logits, _ = Predictor(bundle).encoder_logits(task, val_texts, val_first)

    report = classification_report(val_y, logits.argmax(1), labels) | {
        "ece_before": expected_calibration_error(calibrated(logits, 1.0), val_y),
        "ece_after": expected_calibration_error(calibrated(logits, settings.temperature), val_y),
        "temperature": settings.temperature}
    fusion, fusion_report = fit_fusion(kind, texts, first, train_y, val_texts, val_first, val_y, logits,
                                       bundle.settings.normalization, cfg.seed, balanced=cfg.class_weighting)
    report, temperature, _, fusion = choose(report, settings.temperature, logits.argmax(1), fusion, fusion_report,
                                            val_y, labels)
    if fusion is not None:
        for old in KINDS:
            for suffix in (".json", ".safetensors"):
                (bundle_dir / f"{old}_{task}{suffix}").unlink(missing_ok=True)
        fusion.save(bundle_dir, task)
        raw = json.loads((bundle_dir / SETTINGS_FILE).read_text())
        raw["tasks"][task]["temperature"] = temperature
        (bundle_dir / SETTINGS_FILE).write_text(json.dumps(raw, indent=2, ensure_ascii=False) + "\n")
    metrics_file = bundle_dir / METRICS_FILE
    metrics = json.loads(metrics_file.read_text()) if metrics_file.is_file() else {}
    metrics.setdefault("tasks", {}).setdefault(task, {})["validation"] = report
    metrics_file.write_text(json.dumps(metrics, indent=2) + "\n")
    load_bundle(bundle_dir)  # what was written must load
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m akhbar.training.add_fusion", description=__doc__.split("\n\n")[0])
    parser.add_argument("bundle", type=Path)
    parser.add_argument("--task", required=True)
    parser.add_argument("--kind", required=True, choices=list(KINDS))
    parser.add_argument("--config", default=None, help="The task's YAML (default: training/configs/TASK.yaml).")
    args = parser.parse_args(argv)
    report = add_fusion(args.bundle, args.task, args.kind, args.config)
    print(json.dumps(report["fusion"], indent=2))
    print(f"{args.task}: {report['fusion']['chosen']} kept in {args.bundle}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Refit a label task's head on a sentence task's windows, so one encoder pass serves both.

The service scores topic and summary for every article. When the topic head reads the
summary's sentence windows (``reads`` in ``akhbar.json``), one encoder pass gives both, and
the topic pass, about 40% of an article's model FLOPs, is saved (``make bench``).

The encoder stays as trained. The task's new head is fitted on the encoder's mean-pooled
states of those windows (one training example per window, labelled with its article's
label; at inference the window logits are averaged, as for the task's own windows). The
task's fusion and calibration are then refitted on validation, as training fits them
(:mod:`akhbar.training.fusion_fitting`). The bundle is rewritten only when the result loses
at most ``--max-loss`` macro-F1 points on validation against the task's current head, both
fused and cross-validated; the figures before and after go into ``metrics.json`` (under
``shared_pass``)::

    python -m akhbar.training.refit_shared_windows BUNDLE --task topic --reads summary
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

from akhbar.cli import kebab_flags
from akhbar.models.bundle import CARD_FILE, BundleError, BundleSettings, load_bundle, save_bundle
from akhbar.models.fusion import remove_fusion
from akhbar.models.modeling import TaskHead
from akhbar.models.predict import Predictor
from akhbar.models.windowing import pool_logits
from akhbar.training.examples import sequence_inputs
from akhbar.training.finetune_config import load_config
from akhbar.training.fusion_fitting import choose, fit_fusion
from akhbar.training.task_data import load_split
from akhbar.training.validation import calibration_report

HEAD_EPOCHS = 20
HEAD_BATCH = 256
HEAD_LR = 1e-3


def fit_head(states: np.ndarray, y: np.ndarray, head: TaskHead, seed: int) -> TaskHead:
    """Train ``head`` on fixed features: AdamW, shuffled mini-batches, ``HEAD_EPOCHS`` epochs.

    The encoder does not move, so this is a small convex-ish problem over cached states
    (as setfit fits its head on frozen embeddings); no Trainer is needed for it.
    """
    generator = torch.Generator().manual_seed(seed)
    x, target = torch.from_numpy(states), torch.from_numpy(y)
    optimizer = torch.optim.AdamW(head.parameters(), lr=HEAD_LR, weight_decay=0.01)
    head.train()
    for _ in range(HEAD_EPOCHS):
        for batch in torch.randperm(len(x), generator=generator).split(HEAD_BATCH):
            loss = F.cross_entropy(head(x[batch]), target[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return head.eval()


def refit_on_shared_windows(
    bundle_dir: Path, task: str, reads: str, config: str | None = None, max_loss: float = 0.5
) -> dict:
    """Fit, compare and (when within ``max_loss`` points) store; returns the comparison."""
    bundle = load_bundle(bundle_dir)
    for name in (task, reads):
        if name not in bundle.settings.tasks:
            raise BundleError(bundle_dir, f"has no {name} head (it has {', '.join(bundle.tasks)})")
    settings = bundle.settings.tasks[task]
    cfg = load_config(task, config)
    labels = list(settings.labels)
    train, val = (load_split(cfg, split, labels, bundle_dir) for split in ("train", "validation"))
    lid = {name: i for i, name in enumerate(labels)}
    train_y, val_y = (np.array([lid[r["label"]] for r in rows]) for rows in (train, val))
    (texts, first), (val_texts, val_first) = sequence_inputs(cfg, train), sequence_inputs(cfg, val)
    predictor = Predictor(
        bundle
    )  # fp32: the reference the service's precisions are guarded against

    def validated(logits: np.ndarray) -> tuple[dict, float, object]:
        """Validation report, temperature and fusion
        (when the task's config has one and it wins)."""
        report, temperature = calibration_report(logits, val_y, labels)
        if not cfg.fusion:
            return report, temperature, None
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
            report, temperature, logits.argmax(1), fusion, fusion_report, val_y, labels
        )
        return report, temperature, fusion

    report_before, _, _ = validated(predictor.encoder_logits(task, val_texts, val_first)[0])

    _, windows = predictor.sentence_windows(
        [r["text"] for r in train], reads, [r.get("title") for r in train]
    )
    torch.manual_seed(cfg.seed)
    head = TaskHead(bundle.model.encoder.config.hidden_size, settings.head)
    fit_head(predictor.window_states(windows.features), train_y[windows.doc_index], head, cfg.seed)
    bundle.model.heads[task] = head
    _, val_windows = predictor.sentence_windows(
        [r["text"] for r in val], reads, [r.get("title") for r in val]
    )
    with torch.inference_mode():
        window_logits = head(
            torch.from_numpy(predictor.window_states(val_windows.features))
        ).numpy()
    report_after, temperature, fusion = validated(
        pool_logits(window_logits, val_windows.doc_index, len(val))
    )
    # Fused figures are cross-validated on validation (see akhbar.training.fusion_fitting.choose).
    comparison = {
        "task": task,
        "reads": reads,
        "macro_f1_own_windows": report_before["macro_f1"],
        "macro_f1_shared_pass": report_after["macro_f1"],
        "max_loss_points": max_loss,
        "head": {
            "epochs": HEAD_EPOCHS,
            "batch": HEAD_BATCH,
            "learning_rate": HEAD_LR,
            "train_windows": len(windows),
        },
    }
    comparison["kept"] = (
        100 * (comparison["macro_f1_shared_pass"] - comparison["macro_f1_own_windows"]) >= -max_loss
    )
    if not comparison["kept"]:
        return comparison
    tasks = dict(bundle.settings.tasks)
    tasks[task] = replace(settings, reads=reads, temperature=temperature)
    new_settings = BundleSettings(tasks, bundle.settings.normalization, bundle.settings.base_model)
    metrics = dict(bundle.metrics)
    metrics.setdefault("tasks", {}).setdefault(task, {})["validation"] = report_after | {
        "shared_pass": comparison
    }
    card = (
        (bundle_dir / CARD_FILE).read_text(encoding="utf-8")
        if (bundle_dir / CARD_FILE).is_file()
        else ""
    )
    save_bundle(
        bundle_dir, bundle.model, bundle.tokenizer, new_settings, card=card, metrics=metrics
    )
    remove_fusion(bundle_dir, task)
    if fusion is not None:
        fusion.save(bundle_dir, task)
    load_bundle(bundle_dir)  # what was written must load
    return comparison


PROG = "python -m akhbar.training.refit_shared_windows"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "bundle", type=Path, help="Bundle directory, rewritten in place when the refit is kept."
    )
    parser.add_argument(
        "--task", default="topic", help="The label task whose head is refitted (default: topic)."
    )
    parser.add_argument(
        "--reads",
        default="summary",
        help="The sentence task whose windows it reads (default: summary).",
    )
    parser.add_argument(
        "--config", default=None, help="The task's YAML (default: training/configs/TASK.yaml)."
    )
    parser.add_argument(
        "--max-loss",
        type=float,
        default=0.5,
        help="Validation macro-F1 points it may lose (default: 0.5).",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(kebab_flags(sys.argv[1:] if argv is None else argv))
    try:
        comparison = refit_on_shared_windows(
            args.bundle, args.task, args.reads, args.config, args.max_loss
        )
    except (BundleError, ValueError) as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(comparison, indent=2))
    if comparison["kept"]:
        print(
            f"{PROG}: {args.task} now reads the {args.reads} windows in {args.bundle}",
            file=sys.stderr,
        )
    else:  # a decision, not a failure: the bundle keeps its two passes
        print(
            f"{PROG}: {args.task} on the {args.reads} windows loses more than {args.max_loss} "
            f"points; {args.bundle} is unchanged",
            file=sys.stderr,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())

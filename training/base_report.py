"""Does the pretrained base help? One run, one split, one recipe, so only the model differs.

Each candidate base is fine-tuned on the topic train split with the same recipe and the
same number of steps, beside a randomly initialised encoder of the same size and the
TF-IDF baseline, and all are scored on the topic validation split. The report gives
macro-F1 with its bootstrap interval, the paired-bootstrap interval of each difference,
and each base's own pretraining figures (held-out MLM loss, tokens/s).

Run::

    python -m akhbar.training.base_report --bases work/pretrain/cand-mlm,work/pretrain/cand-electra
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from akhbar.cli import kebab_flags
from akhbar.models.inputs import topic_inputs
from akhbar.models.reader import read_records
from akhbar.training.baselines import fit_predict_tfidf
from akhbar.training.card_sections import write_section
from akhbar.training.finetune import run
from akhbar.training.finetune_config import FinetuneConfig
from akhbar.training.flags import add_dataclass_flags, given
from akhbar.training.metrics import bootstrap_diff_ci, classification_report
from akhbar.training.task_data import resolve_data

RANDOM = "random-init"
TFIDF = "tfidf"
SECTION = "base-report"  # the model card section this report owns


@dataclass
class BaseReportConfig:
    """Settings of the base report; every field is a flag (``--output-dir``...)."""

    bases: str = field(metadata={"help": "Comma-separated base model directories to compare."})
    output_dir: str = field(
        default="reports/base", metadata={"help": "Where base_report.json/.md go (committed)."}
    )
    work_dir: str = field(
        default="work/base_report",
        metadata={"help": "Fine-tuning runs and their checkpoints (not committed)."},
    )
    data: str = field(
        default="topic/ant_v2.1_multisource",
        metadata={"help": "Topic dataset folder (train and validation splits)."},
    )
    max_steps: int = field(
        default=740, metadata={"help": "Fine-tuning steps, the same for every encoder."}
    )
    max_length: int = field(
        default=128, metadata={"help": "Tokens per text (one window, no stride)."}
    )
    batch_size: int = field(default=32, metadata={"help": "Training texts per batch."})
    learning_rate: float = field(default=3e-4, metadata={"help": "Peak fine-tuning learning rate."})
    max_train_samples: int = field(
        default=0, metadata={"help": "Keep only the first N training records (0: all)."}
    )
    seed: int = field(default=42, metadata={"help": "Seed of every fine-tuning run."})
    model_card: str | None = field(
        default=None,
        metadata={
            "help": "A README.md whose base-report section is replaced by this report's table."
        },
    )


def finetune(
    cfg: BaseReportConfig, base: str, name: str, random_init: bool
) -> tuple[dict, np.ndarray, np.ndarray]:
    ft = FinetuneConfig(
        task="topic",
        data=cfg.data,
        base_model=base,
        random_init=random_init,
        output_dir=str(Path(cfg.work_dir) / name),
        max_length=cfg.max_length,
        stride=0,
        max_windows=1,
        max_steps=cfg.max_steps,
        eval_steps=cfg.max_steps,
        batch_size=cfg.batch_size,
        learning_rate=cfg.learning_rate,
        max_train_samples=cfg.max_train_samples,
        seed=cfg.seed,
    )
    result = run(ft)
    topic = result.tasks["topic"]
    return result.metrics | {"validation": topic.report}, topic.true, topic.pred


def tfidf(cfg: BaseReportConfig, labels: list[str]) -> tuple[float, np.ndarray]:
    source = resolve_data(cfg.data)
    train = list(read_records(source, "topic", split="train"))
    if cfg.max_train_samples:
        train = train[: cfg.max_train_samples]
    val = list(read_records(source, "topic", split="validation"))
    lid = {name: i for i, name in enumerate(labels)}
    start = time.time()
    pred = fit_predict_tfidf(
        topic_inputs([r["text"] for r in train], [r.get("title") for r in train]),
        np.array([lid[r["label"]] for r in train]),
        topic_inputs([r["text"] for r in val], [r.get("title") for r in val]),
    )
    return time.time() - start, pred


def run_report(cfg: BaseReportConfig) -> dict:
    out = Path(cfg.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    bases = [b for b in cfg.bases.split(",") if b]
    rows: dict[str, dict] = {}
    preds: dict[str, np.ndarray] = {}
    y = labels = None
    for name, base, random_init in [(RANDOM, bases[0], True)] + [
        (Path(b).name, b, False) for b in bases
    ]:
        metrics, y, preds[name] = finetune(cfg, base, name, random_init)
        labels = list(metrics["validation"]["per_class"])
        pretrain_file = Path(base) / "pretrain_report.json"
        rows[name] = {
            "base": base,
            "random_init": random_init,
            "train_seconds": metrics["train_seconds"],
            "pretraining": None
            if random_init or not pretrain_file.exists()
            else json.loads(pretrain_file.read_text()),
        }
    seconds, preds[TFIDF] = tfidf(cfg, labels)
    rows[TFIDF] = {"train_seconds": round(seconds, 1)}
    for name, pred in preds.items():
        rows[name].update(classification_report(y, pred, labels))
        if name != RANDOM:
            rows[name]["diff_vs_random_ci"] = bootstrap_diff_ci(y, pred, preds[RANDOM])
        if name != TFIDF:
            rows[name]["diff_vs_tfidf_ci"] = bootstrap_diff_ci(y, pred, preds[TFIDF])
    report = {"split": "validation", "n": int(len(y)), "config": asdict(cfg), "results": rows}
    (out / "base_report.json").write_text(json.dumps(report, indent=2) + "\n")
    (out / "base_report.md").write_text(markdown(report))
    if cfg.model_card:
        write_section(Path(cfg.model_card), markdown(report), SECTION)
    return report


def markdown(report: dict) -> str:
    lines = [
        f"# Does the base help? Topic validation split (n = {report['n']})",
        "",
        f"Same recipe for every encoder: {report['config']['max_steps']} steps, batch "
        f"{report['config']['batch_size']}, {report['config']['max_length']} tokens, lr "
        f"{report['config']['learning_rate']}.",
        "",
        "| model | macro-F1 | 95% CI | Δ vs random init (95% CI) | Δ vs TF-IDF (95% CI) | "
        "fine-tune s | held-out MLM loss | pretrain tokens/s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, row in report["results"].items():
        pre = row.get("pretraining") or {}
        lines.append(
            f"| {name} | {row['macro_f1']:.3f} | [{row['macro_f1_ci'][0]:.3f}, "
            f"{row['macro_f1_ci'][1]:.3f}] | {_interval(row, 'diff_vs_random_ci')} | "
            f"{_interval(row, 'diff_vs_tfidf_ci')} | {row['train_seconds']:.0f} | "
            f"{_figure(pre, 'heldout_mlm_loss', '.2f')} | "
            f"{_figure(pre, 'tokens_per_second', '.0f')} |"
        )
    lines += [
        "",
        "Held-out MLM loss is measured on texts kept out of the pretraining corpus; for ELECTRA "
        "bases it is the loss of the small generator, so compare it only between runs of one "
        "objective. Tokens/s is the pretraining throughput of each base's own run.",
    ]
    return "\n".join(lines) + "\n"


def _figure(pretraining: dict, key: str, fmt: str) -> str:
    return format(pretraining[key], fmt) if pretraining.get(key) is not None else "-"


def _interval(row: dict, key: str) -> str:
    return f"[{row[key][0]:+.3f}, {row[key][1]:+.3f}]" if key in row else "-"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m akhbar.training.base_report", description=__doc__.split("\n\n")[0]
    )
    add_dataclass_flags(parser, BaseReportConfig)
    return parser


def parse_args(argv: list[str]) -> BaseReportConfig:
    """The report's settings, without running anything (snake_case flags are taken too)."""
    return BaseReportConfig(**given(build_parser().parse_args(kebab_flags(argv)), BaseReportConfig))


def main(argv: list[str] | None = None) -> int:
    report = run_report(parse_args(sys.argv[1:] if argv is None else argv))
    print(markdown(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())

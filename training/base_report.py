"""Which base is better? One run, one split, one recipe per task, so only the encoder differs.

Each candidate base is fine-tuned on each evaluation's train split with that task's own recipe
(its YAML: lengths, windows, learning rate, batch size) for the same number of steps, and scored
on its validation split, beside the task's same-run baseline and, optionally, a randomly
initialised encoder of the same size. The evaluations are topic and unifiedfc stance (256-token
windows, so positions past 128 count) and ANS stance (the headline head: 64 tokens, native
labels), each as the task models read them, and both stance tasks read a second segment.
Fusion is off: the encoder is what differs.

The report gives macro-F1 with its bootstrap interval, the paired-bootstrap interval of each
base's difference from the first base (the control), from random init and from the baseline,
each base's pretraining figures, and every prediction, so that a base trained later can be
paired with these runs without rerunning them (``--reuse`` the earlier report).

Run::

    python -m akhbar.training.base_report --bases models/default/base,work/pretrain/ab-continue
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
from akhbar.training.card_sections import write_section
from akhbar.training.evaluate import baseline_predictions
from akhbar.training.finetune import run
from akhbar.training.finetune_config import load_config
from akhbar.training.flags import add_dataclass_flags, given
from akhbar.training.metrics import bootstrap_diff_ci, classification_report
from akhbar.training.task_data import load_split

RANDOM = "random-init"
SECTION = "base-report"  # the model card section this report owns


@dataclass(frozen=True)
class Evaluation:
    """One fine-tuning comparison: a task's recipe and data (its YAML), for set steps."""

    task: str
    max_steps: int  # -1: the task YAML's epochs
    baseline: str  # the same-run baseline's name in evaluate.baseline_predictions


EVALUATIONS = {
    "topic": Evaluation("topic", 600, "tfidf"),
    "ans": Evaluation("stance_headline", -1, "sentence_encoder"),
    "unifiedfc": Evaluation("stance", -1, "sentence_encoder"),
}


@dataclass
class BaseReportConfig:
    """Settings of the base report; every field is a flag (``--output-dir``...)."""

    bases: str = field(
        metadata={
            "help": "Comma-separated base model directories to compare; "
            "the first is the control the others are paired with."
        }
    )
    evaluations: str = field(
        default=",".join(EVALUATIONS),
        metadata={"help": f"Comma-separated, from: {', '.join(EVALUATIONS)}."},
    )
    random_init: bool = field(
        default=True,
        metadata={
            "help": "Also fine-tune a randomly initialised encoder (the no-pretraining row)."
        },
    )
    output_dir: str = field(
        default="reports/base", metadata={"help": "Where base_report.json/.md go (committed)."}
    )
    work_dir: str = field(
        default="work/base_report",
        metadata={"help": "Fine-tuning runs and their checkpoints (not committed)."},
    )
    data: str | None = field(
        default=None,
        metadata={
            "help": "Dataset folder replacing the evaluation's own (for one evaluation); "
            "none: the task YAML's."
        },
    )
    max_steps: int = field(
        default=0, metadata={"help": "Fine-tuning steps for every run; 0: each evaluation's own."}
    )
    max_length: int = field(
        default=0,
        metadata={
            "help": "Tokens per window (stride an eighth of it) for every run; 0: each task's YAML."
        },
    )
    batch_size: int = field(
        default=0, metadata={"help": "Training rows per batch; 0: each task's YAML."}
    )
    max_train_samples: int = field(
        default=0, metadata={"help": "Keep only the first N training records (0: all)."}
    )
    seed: int = field(default=42, metadata={"help": "Seed of every fine-tuning run."})
    model_card: str | None = field(
        default=None,
        metadata={
            "help": "A README.md whose base-report section is replaced by this report's tables."
        },
    )
    reuse: str | None = field(
        default=None,
        metadata={
            "help": "Comma-separated base_report.json files of earlier runs with the same "
            "settings: their runs of the same name and base directory are taken from them "
            "(figures and predictions) instead of being fine-tuned again; none: fine-tune "
            "every base."
        },
    )

    def __post_init__(self) -> None:
        unknown = sorted(set(self.names) - set(EVALUATIONS))
        if unknown or not self.names:
            raise ValueError(
                f"--evaluations: unknown {', '.join(unknown) or '(none given)'}; "
                f"choose from {', '.join(EVALUATIONS)}"
            )
        if self.data and len(self.names) != 1:
            raise ValueError("--data replaces one evaluation's dataset; name one --evaluations")

    @property
    def names(self) -> list[str]:
        return [name for name in self.evaluations.split(",") if name]


def finetune_config(cfg: BaseReportConfig, name: str, base: str, run_name: str, random_init: bool):
    """The task's own recipe on the evaluation's data, encoder only, validated once at the end."""
    evaluation = EVALUATIONS[name]
    overrides = {
        "max_steps": cfg.max_steps or evaluation.max_steps,
        "max_length": cfg.max_length,
        "stride": cfg.max_length // 8,
        "batch_size": cfg.batch_size,
        "max_train_samples": cfg.max_train_samples,
    }
    if cfg.data:
        overrides["data"] = cfg.data
    ft = load_config(
        evaluation.task,
        fusion="",
        base_model=base,
        random_init=random_init,
        output_dir=str(Path(cfg.work_dir) / name / run_name),
        seed=cfg.seed,
        **{key: value for key, value in overrides.items() if value},
    )
    ft.eval_steps = 10**9  # one validation, after the last step: no selection on the split
    return ft


# What decides a fine-tuning run's outcome besides its base: a run reused from an earlier
# report must have had the same.
RUN_SETTINGS = ("data", "max_steps", "max_length", "batch_size", "max_train_samples", "seed")


def earlier_runs(cfg: BaseReportConfig, name: str) -> dict:
    """The evaluation ``name`` of the ``--reuse`` reports, merged (``{}`` without any), after
    checking that each was made with this run's settings and on the same gold."""
    merged: dict = {}
    for path in filter(None, (cfg.reuse or "").split(",")):
        report = json.loads(Path(path).read_text())
        for key in RUN_SETTINGS:
            if report["config"].get(key) != getattr(cfg, key):
                raise ValueError(
                    f"--reuse {path} was made with --{key.replace('_', '-')} "
                    f"{report['config'].get(key)!r}, this run has {getattr(cfg, key)!r}"
                )
        evaluation = report["evaluations"].get(name)
        if evaluation is None:
            continue
        if merged and merged["gold"] != evaluation["gold"]:
            raise ValueError(f"--reuse {path}: its {name} gold differs from the other reports'")
        merged.setdefault("gold", evaluation["gold"])
        merged.setdefault("labels", evaluation["labels"])
        merged.setdefault("results", {}).update(evaluation["results"])
        merged.setdefault("predictions", {}).update(evaluation["predictions"])
    return merged


def evaluate_bases(cfg: BaseReportConfig, name: str, bases: list[str]) -> dict:
    """Fine-tune every base (and the random-init control) on one evaluation, or take its run
    from the ``--reuse`` report; the figures."""
    runs = [(Path(b).name, b, False) for b in bases]
    if cfg.random_init:
        runs.append((RANDOM, bases[0], True))
    rows: dict[str, dict] = {}
    preds: dict[str, np.ndarray] = {}
    earlier = earlier_runs(cfg, name)
    y = np.asarray(earlier["gold"]) if earlier else None
    labels = earlier.get("labels")
    for run_name, base, random_init in runs:
        old = earlier.get("results", {}).get(run_name)
        if old is not None and (old["base"], old["random_init"]) == (base, random_init):
            keep = ("base", "random_init", "steps", "train_seconds", "pretraining")
            rows[run_name] = {key: old[key] for key in keep} | {"reused": True}
            preds[run_name] = np.asarray(earlier["predictions"][run_name])
            continue
        result = run(finetune_config(cfg, name, base, run_name, random_init))
        part = result.tasks[EVALUATIONS[name].task]
        if y is not None and not np.array_equal(y, part.true):
            raise ValueError(
                f"--reuse {cfg.reuse}: the {name} validation gold there differs from this "
                "run's (the split changed); rerun without --reuse"
            )
        y, preds[run_name] = part.true, np.asarray(part.pred)
        labels = list(part.report["per_class"])
        pretrain_file = Path(base) / "pretrain_report.json"
        rows[run_name] = {
            "base": base,
            "random_init": random_init,
            "steps": result.metrics["steps"],
            "train_seconds": result.metrics["train_seconds"],
            "pretraining": None
            if random_init or not pretrain_file.exists()
            else json.loads(pretrain_file.read_text()),
        }
    baseline = EVALUATIONS[name].baseline
    seconds, preds[baseline] = baseline_run(cfg, name, labels)
    rows[baseline] = {"train_seconds": round(seconds, 1)}
    control = Path(bases[0]).name
    for run_name, pred in preds.items():
        rows[run_name].update(classification_report(y, pred, labels))
        for key, other in (
            ("diff_vs_control_ci", control),
            ("diff_vs_random_ci", RANDOM),
            ("diff_vs_baseline_ci", baseline),
        ):
            if other in preds and run_name != other:
                rows[run_name][key] = bootstrap_diff_ci(y, pred, preds[other])
    return {
        "n": int(len(y)),
        "labels": labels,
        "control": control,
        "baseline": baseline,
        "results": rows,
        "gold": y.tolist(),
        "predictions": {run_name: pred.tolist() for run_name, pred in preds.items()},
    }


def baseline_run(cfg: BaseReportConfig, name: str, labels: list[str]) -> tuple[float, np.ndarray]:
    """The evaluation's same-run baseline on the same train and validation records."""
    ft = finetune_config(cfg, name, "", "baseline", False)
    out = Path(ft.output_dir)
    train = load_split(ft, "train", labels, out)
    val = load_split(ft, "validation", labels, out)
    index = {label: i for i, label in enumerate(labels)}
    start = time.time()
    pred = baseline_predictions(ft.task, val, train, index)[EVALUATIONS[name].baseline]
    return time.time() - start, pred


def run_report(cfg: BaseReportConfig) -> dict:
    out = Path(cfg.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    bases = [b for b in cfg.bases.split(",") if b]
    report = {
        "split": "validation",
        "config": asdict(cfg),
        "evaluations": {name: evaluate_bases(cfg, name, bases) for name in cfg.names},
    }
    (out / "base_report.json").write_text(json.dumps(report, indent=1) + "\n")
    (out / "base_report.md").write_text(markdown(report))
    if cfg.model_card:
        write_section(Path(cfg.model_card), markdown(report), SECTION)
    return report


def markdown(report: dict) -> str:
    config = report["config"]
    lines = [
        "# Which base is better? Validation splits, one fine-tuning recipe per task",
        "",
        "Every encoder is fine-tuned with its task's own recipe (`training/configs/`: window "
        "length, windows, batch size, learning rate), encoder only (no fusion), for the same "
        "steps, and validated once after the last step. Δ columns are paired-bootstrap 95% "
        "intervals of the difference in macro-F1.",
    ]
    if config["max_length"] or config["max_steps"]:
        lines += [
            "",
            f"Overridden for every run: max length {config['max_length'] or 'as the task'}, "
            f"steps {config['max_steps'] or 'as the evaluation'}.",
        ]
    for name, ev in report["evaluations"].items():
        lines += [
            "",
            f"## {name} (n = {ev['n']}; labels {', '.join(ev['labels'])})",
            "",
            f"| model | macro-F1 | 95% CI | Δ vs {ev['control']} | Δ vs random init | "
            f"Δ vs {ev['baseline']} | steps | fine-tune s | held-out MLM loss | "
            "pretrain tokens/s |",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]
        for run_name, row in ev["results"].items():
            pre = row.get("pretraining") or {}
            reused = " (earlier run)" if row.get("reused") else ""
            lines.append(
                f"| {run_name}{reused} | {row['macro_f1']:.3f} | [{row['macro_f1_ci'][0]:.3f}, "
                f"{row['macro_f1_ci'][1]:.3f}] | {_interval(row, 'diff_vs_control_ci')} | "
                f"{_interval(row, 'diff_vs_random_ci')} | "
                f"{_interval(row, 'diff_vs_baseline_ci')} | {row.get('steps', '-')} | "
                f"{row['train_seconds']:.0f} | {_figure(pre, 'heldout_mlm_loss', '.2f')} | "
                f"{_figure(pre, 'tokens_per_second', '.0f')} |"
            )
    lines += [
        "",
        "Held-out MLM loss is measured on texts kept out of the pretraining corpus; for ELECTRA "
        "bases it is the loss of the small generator, so compare it only between runs of one "
        "objective. Tokens/s is the pretraining throughput of each base's own run (its last "
        "stage, for a base that continues another).",
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
    parser = build_parser()
    args = parser.parse_args(kebab_flags(argv))
    try:
        return BaseReportConfig(**given(args, BaseReportConfig))
    except ValueError as err:
        parser.error(str(err))


def main(argv: list[str] | None = None) -> int:
    report = run_report(parse_args(sys.argv[1:] if argv is None else argv))
    print(markdown(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Fine-tuning settings: :class:`FinetuneConfig`, each task's YAML defaults, and their flags.

A task's settings are laid in three layers: the dataclass's defaults, then the task's YAML
(``training/configs/TASK.yaml`` or ``--config``), then the command line. ``akhbar train``
and every command that fine-tunes (the unseen-outlet estimate, the base report) build their
settings here, so a flag means the same thing in each.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from akhbar.models.fusion import KINDS as FUSION_KINDS
from akhbar.models.tasks import SEQUENCE, TASK_KINDS, task_kind
from akhbar.training.flags import add_dataclass_flags, bf16_field, flag, shown

CONFIG_DIR = Path(__file__).parent / "configs"
SHARED_OUTPUT = "work/models/shared"


@dataclass
class FinetuneConfig:
    """Settings of one task in ``akhbar train``; every field but ``task`` is a flag.

    Defaults come from ``training/configs/TASK.yaml`` where it sets them, else from here.
    With several tasks in one run, the first task's training settings (output, base,
    learning rate, steps, seed...) apply to the run, and each task keeps its own data,
    inputs, batch size and epochs.
    """

    task: str = field(default="topic", metadata={"help": "topic, stance or summary."})
    data: str = field(
        default="",
        metadata={
            "help": "Dataset folder(s) with train/validation splits, or a train file; "
            "comma-separated to combine sets."
        },
    )
    validation: str | None = field(
        default=None,
        metadata={
            "help": "Validation file, needed when --data is a single file (else the folder's "
            "validation split)."
        },
    )
    base_model: str = field(
        default="models/default/base",
        metadata={"help": "Hub id or local directory of the encoder."},
    )
    init_from: str | None = field(
        default=None,
        metadata={"help": "Continue from an existing bundle (its encoder and matching head)."},
    )
    output_dir: str = field(
        default="work/models/topic",
        metadata={
            "help": f"Where the bundle is written (several tasks: {SHARED_OUTPUT} unless given)."
        },
    )
    labels: str | None = field(
        default=None,
        metadata={"help": "Comma-separated label set; none: the labels found in the train data."},
    )
    label_map: str | None = field(
        default=None,
        metadata={"help": "Rename labels while reading, e.g. other:discuss (ANS's 'other')."},
    )
    random_init: bool = field(
        default=False,
        metadata={"help": "Re-initialise the encoder (same size): the no-pretraining control."},
    )
    dropout: float = field(
        default=0.1,
        metadata={"help": "Encoder dropout while fine-tuning (the base is pretrained without)."},
    )
    max_length: int = field(default=256, metadata={"help": "Tokens per window."})
    stride: int = field(
        default=32, metadata={"help": "Tokens shared by consecutive windows of a long text."}
    )
    max_windows: int = field(
        default=4,
        metadata={"help": "Windows per text at validation (and in the bundle, for serving)."},
    )
    train_windows: int = field(
        default=1, metadata={"help": "Windows per training text (1 = head only)."}
    )
    evidence_sentences: int = field(
        default=4, metadata={"help": "Stance: article sentences kept per claim."}
    )
    oracle_sentences: int = field(
        default=3, metadata={"help": "Summary: most sentences the ROUGE oracle labels per article."}
    )
    summary_sentences: int = field(
        default=1, metadata={"help": "Summary: k sentences scored on validation."}
    )
    title_tokens: int = field(
        default=0,
        metadata={
            "help": "Summary: title tokens every sentence window starts with, so sentences (and "
            "a topic head reading these windows) see the headline; 0: no title."
        },
    )
    epochs: float = field(
        default=2.0,
        metadata={"help": "Passes over the task's training rows (a fraction cuts the last)."},
    )
    max_steps: int = field(
        default=-1, metadata={"help": "Stop after this many optimizer steps; -1: run every epoch."}
    )
    batch_size: int = field(default=32, metadata={"help": "Training rows (windows) per batch."})
    learning_rate: float = field(
        default=2e-4, metadata={"help": "Peak learning rate (linear warmup, then linear decay)."}
    )
    warmup_ratio: float = field(
        default=0.06, metadata={"help": "Share of the steps spent warming up."}
    )
    weight_decay: float = field(default=0.01, metadata={"help": "AdamW weight decay."})
    class_weighting: bool = field(
        default=False, metadata={"help": "Weight the loss by inverse class frequency."}
    )
    fusion: str = field(
        default="",
        metadata={
            "help": "Also fit a side model + a stacker on validation, kept only if it beats the "
            f"encoder: {' or '.join(FUSION_KINDS)}, for label tasks; '' for none."
        },
    )
    decision_bias: bool = field(
        default=False,
        metadata={
            "help": "With --fusion: tune per-class biases of the fused scores for macro-F1 on "
            "validation, kept only if nested cross-validation says they help (default: off)."
        },
    )
    eval_steps: int = field(
        default=200, metadata={"help": "Validate (and checkpoint) every this many steps."}
    )
    early_stopping_patience: int = field(
        default=3, metadata={"help": "Stop after this many validations without improvement."}
    )
    low_confidence_threshold: float = field(
        default=0.5,
        metadata={
            "help": "Top probability below which the service flags a prediction as low-confidence."
        },
    )
    max_train_samples: int = field(
        default=0,
        metadata={"help": "Keep only the first N training records (0: all), for quick runs."},
    )
    max_eval_samples: int = field(
        default=0, metadata={"help": "Keep only the first N validation records (0: all)."}
    )
    skip_bad: bool = field(
        default=False,
        metadata={
            "help": "Set bad records aside in OUTPUT/rejects-SPLIT.jsonl instead of stopping."
        },
    )
    bf16: bool = bf16_field()
    threads: int = field(default=0, metadata={"help": "torch threads; 0 keeps torch's default."})
    seed: int = field(
        default=42,
        metadata={"help": "Seed for initialisation, batch order and the fusion's folds."},
    )

    def __post_init__(self) -> None:
        if self.task not in TASK_KINDS:
            raise ValueError(f"task must be one of {', '.join(TASK_KINDS)}, got {self.task!r}")
        if self.fusion and (self.fusion not in FUSION_KINDS or task_kind(self.task) != SEQUENCE):
            raise ValueError(
                f"--fusion must be one of {', '.join(FUSION_KINDS)} and is for label tasks, got "
                f"{self.fusion!r} for {self.task}"
            )
        if not self.data:
            raise ValueError("--data is required (a dataset folder or a train file)")
        if not 0 <= self.stride < self.max_length:
            raise ValueError(
                f"--stride must be at least 0 and below --max-length ({self.max_length})"
            )
        if not 0 <= self.title_tokens <= self.max_length // 4:
            raise ValueError(
                f"--title-tokens must be within 0 and a quarter of --max-length "
                f"({self.max_length // 4}), got {self.title_tokens}"
            )
        if not 0 <= self.dropout < 1:
            raise ValueError(f"--dropout must be within [0, 1), got {self.dropout}")
        for name in (
            "max_windows",
            "train_windows",
            "batch_size",
            "evidence_sentences",
            "oracle_sentences",
            "summary_sentences",
        ):
            if getattr(self, name) < 1:
                raise ValueError(f"{flag(name)} must be at least 1, got {getattr(self, name)}")


SETTINGS = {f.name for f in fields(FinetuneConfig)}


def task_defaults(task: str, config_file: str | Path | None = None) -> dict[str, Any]:
    """The settings a task's YAML gives: ``config_file``, else ``training/configs/TASK.yaml``
    ({} when the task has none). A ValueError names a missing ``--config`` or an unknown key."""
    path = Path(config_file) if config_file else CONFIG_DIR / f"{task}.yaml"
    if not path.is_file():
        if config_file:
            raise ValueError(f"--config {config_file}: no such file")
        return {}
    values = yaml.safe_load(path.read_text()) or {}
    unknown = sorted(set(values) - SETTINGS)
    if unknown:
        raise ValueError(f"{path}: unknown setting(s) {', '.join(unknown)}")
    return values


def load_config(
    task: str, config_file: str | Path | None = None, **overrides: Any
) -> FinetuneConfig:
    """One task's settings: dataclass defaults, then its YAML, then ``overrides``."""
    return FinetuneConfig(**task_defaults(task, config_file) | overrides | {"task": task})


def run_configs(
    tasks: list[str], overrides: dict[str, Any], config_file: str | None = None
) -> list[FinetuneConfig]:
    """The settings of a run of ``tasks``: each task reads its own YAML, ``overrides`` apply to all.

    Several tasks train one shared encoder into one bundle, written to ``work/models/shared``
    unless ``overrides`` names an ``output_dir``.
    """
    if len(tasks) > 1 and config_file:
        raise ValueError(
            "--config names one task's file; with several tasks each reads its own YAML"
        )
    cfgs = [load_config(task, config_file, **overrides) for task in tasks]
    if len(cfgs) > 1 and "output_dir" not in overrides:
        for cfg in cfgs:
            cfg.output_dir = SHARED_OUTPUT
    return cfgs


def yaml_defaults(tasks: tuple[str, ...]) -> dict[str, str]:
    """Help text of each setting some task's YAML gives:
    ``from the task's YAML: topic 256; ...``."""
    per_task = {task: task_defaults(task) for task in tasks}
    base = {f.name: f.default for f in fields(FinetuneConfig)}
    return {
        name: "from the task's YAML: "
        + "; ".join(
            f"{task} {shown(values.get(name, base[name]))}" for task, values in per_task.items()
        )
        for name in sorted(SETTINGS - {"task"})
        if any(name in values for values in per_task.values())
    }


def add_finetune_flags(
    parser: argparse.ArgumentParser | argparse._ArgumentGroup,
    skip: tuple[str, ...] = (),
    tasks: tuple[str, ...] = tuple(TASK_KINDS),
) -> None:
    """A flag for every setting but ``task`` and ``skip``,
    its help showing the default of each of ``tasks``."""
    add_dataclass_flags(parser, FinetuneConfig, defaults=yaml_defaults(tasks), skip=("task", *skip))

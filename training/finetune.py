"""Fine-tune a base encoder into a model bundle: :func:`run`, what ``akhbar train`` calls.

run_glue.py in shape: seed → data → labels → windows → model → ``Trainer`` (early stopping
on validation) → temperature calibration → bundle. Sequence tasks (topic, stance) share
this path; the summary task plugs its own inputs into the same steps.

Several tasks train one shared encoder with a head each (the shipped default), through
:class:`akhbar.training.multitask.MultiTaskTrainer`, so one bundle serves every task from
one set of encoder weights.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from transformers import (
    EarlyStoppingCallback,
    PreTrainedModel,
    PreTrainedTokenizerBase,
    TrainingArguments,
    set_seed,
)
from transformers.trainer_utils import get_last_checkpoint

from akhbar import __version__
from akhbar.models.base import load_base
from akhbar.models.bundle import BundleSettings, TaskSettings, load_bundle, save_bundle
from akhbar.models.cards import bundle_card_data, card_text
from akhbar.models.fusion import Fusion
from akhbar.models.modeling import AkhbarModel, HeadSpec, TaskModel
from akhbar.models.normalize import NormalizerConfig
from akhbar.models.tasks import SENTENCE, SEQUENCE, task_kind
from akhbar.models.tokenization import ensure_normalization, stored_normalization
from akhbar.training.distributed import finish, is_main_process, wait
from akhbar.training.examples import sequence_dataset, sequence_inputs, summary_dataset
from akhbar.training.finetune_config import FinetuneConfig
from akhbar.training.fusion_fitting import choose, fit_fusion
from akhbar.training.multitask import (
    MultiTaskTrainer,
    TaskBatches,
    TaskPart,
    training_batches,
    unwrap,
)
from akhbar.training.task_data import load_tasks, resolve_data
from akhbar.training.validation import SequenceEval, SummaryEval


@dataclass
class TaskResult:
    """One task's validation outcome: figures, and predictions for paired tests."""

    report: dict
    true: np.ndarray | None
    pred: np.ndarray | list
    logits: np.ndarray | None = None  # encoder logits per text (sequence tasks)


@dataclass
class FinetuneResult:
    """What a run leaves: the bundle, its metrics, and each task's validation outcome."""

    bundle: Path
    metrics: dict
    tasks: dict[str, TaskResult]


def run(cfgs: FinetuneConfig | list[FinetuneConfig]) -> FinetuneResult | None:
    """Fine-tune one encoder on one task or several at once, into one bundle.

    The first config's training settings (output, base, learning rate, steps, seed...)
    apply to the run; each task keeps its own data, inputs, batch size and epochs.

    Under ``torchrun`` or ``accelerate launch`` every process trains on its share of the
    batches (the ``Trainer``'s data-parallel path); the first alone calibrates, fits fusion
    and writes the bundle, and the others return None after training.
    """
    cfgs = [cfgs] if isinstance(cfgs, FinetuneConfig) else cfgs
    if len({c.task for c in cfgs}) != len(cfgs):
        raise ValueError("each task may appear once in a run")
    lead = cfgs[0]
    if lead.threads:
        torch.set_num_threads(lead.threads)
    set_seed(lead.seed)
    out = Path(lead.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    main = is_main_process()
    train, val, labels = load_tasks(cfgs, out if main else None)
    model, tokenizer, normalization, base_name = build_model(lead, labels)
    parts = {
        c.task: prepare(c, tokenizer, train[c.task], val[c.task], labels[c.task]) for c in cfgs
    }
    weights = {task: part.weights for task, part in parts.items() if part.weights is not None}
    trainer = MultiTaskTrainer(
        model=TaskModel(model, weights),
        args=training_arguments(lead, out),
        processing_class=tokenizer,
        train_dataset=TaskBatches(training_batches(parts, lead.seed), tokenizer.pad_token_id),
        eval_dataset=TaskBatches([], tokenizer.pad_token_id),
        data_collator=unwrap,
        parts=parts,
        callbacks=[EarlyStoppingCallback(lead.early_stopping_patience)],
    )
    start = time.time()
    trainer.train(
        resume_from_checkpoint=resumable_checkpoint(cfgs, out / "checkpoints", record=main)
    )
    train_seconds = time.time() - start
    if not main:
        finish()  # returns once the first process has written the bundle
        return None

    settings, results, fusions = {}, {}, {}
    for task, part in parts.items():
        settings[task], results[task], fusions[task] = finish_task(
            part, trainer.task_logits(task), normalization
        )
    bundle_settings = BundleSettings(
        tasks=settings, normalization=normalization, base_model=base_name
    )
    metrics = {
        "tasks": {task: {"validation": r.report} for task, r in results.items()},
        "train_seconds": round(train_seconds, 1),
        "steps": trainer.state.global_step,
    }
    data = [name for c in cfgs for name in filter(None, c.data.split(","))]
    provenance = {
        "data": {name: file_hash(resolve_data(name)) for name in data},
        "git_commit": git_commit(),
        "akhbar_version": __version__,
    }
    bundle = save_bundle(
        out / "bundle",
        model,
        tokenizer,
        bundle_settings,
        card=model_card(cfgs, metrics, provenance),
        metrics=metrics,
    )
    for task, fusion in fusions.items():
        if fusion is not None:
            fusion.save(bundle, task)
    drop_checkpoints(out / "checkpoints")
    finish()
    return FinetuneResult(bundle, metrics, results)


def build_model(
    cfg: FinetuneConfig, labels: dict[str, list[str]]
) -> tuple[AkhbarModel, PreTrainedTokenizerBase, NormalizerConfig, str]:
    """Encoder + a head per task, or continue from a bundle with ``--init-from``.

    An ``--init-from`` head is reused when its task's labels match, else replaced by a
    fresh one of the right size; heads of tasks not trained here are not kept.
    """
    heads = {task: head_for(task, names) for task, names in labels.items()}
    if cfg.init_from:
        bundle = load_bundle(cfg.init_from)
        encoder, tokenizer = bundle.model.encoder, bundle.tokenizer
        normalization, base_name = bundle.settings.normalization, bundle.settings.base_model
        model = AkhbarModel(encoder, heads)
        for task, names in labels.items():
            old = bundle.settings.tasks.get(task)
            if old is not None and list(old.labels) == names:
                model.heads[task] = bundle.model.heads[task]
    else:
        encoder, tokenizer = load_base(cfg.base_model)
        if cfg.random_init:
            encoder = type(encoder)(encoder.config)
        normalization = stored_normalization(
            cfg.base_model if Path(cfg.base_model).is_dir() else ""
        )
        model = AkhbarModel(encoder, heads)
        base_name = cfg.base_model
    set_dropout(model.encoder, cfg.dropout)
    return model, ensure_normalization(tokenizer, normalization), normalization, base_name


def head_for(task: str, labels: list[str]) -> HeadSpec:
    return TaskSettings(task_kind(task), tuple(labels)).head


def set_dropout(encoder: PreTrainedModel, p: float) -> None:
    """Set every dropout of the encoder (and its saved config) to ``p``."""
    for module in encoder.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = p
    for name in ("hidden_dropout_prob", "attention_probs_dropout_prob"):
        if hasattr(encoder.config, name):
            setattr(encoder.config, name, p)


def prepare(
    cfg: FinetuneConfig,
    tokenizer: PreTrainedTokenizerBase,
    train: list[dict],
    val: list[dict],
    labels: list[str],
) -> TaskPart:
    """Encode one task's training windows and build its validation (as the Predictor would)."""
    if task_kind(cfg.task) != SEQUENCE:
        rows, _, _ = summary_dataset(cfg, tokenizer, train)
        return TaskPart(cfg, labels, train, None, rows, SummaryEval(cfg, tokenizer, val))
    lid = {name: i for i, name in enumerate(labels)}
    train_ids = [lid[r["label"]] for r in train]
    rows, _ = sequence_dataset(cfg, tokenizer, train, train_ids, cfg.train_windows)
    weights = class_weights(train_ids, len(labels)) if cfg.class_weighting else None
    evaluator = SequenceEval(cfg, tokenizer, val, [lid[r["label"]] for r in val], labels)
    return TaskPart(cfg, labels, train, train_ids, rows, evaluator, weights)


class CheckpointConflict(ValueError):
    """The output folder holds checkpoints of a run with other settings."""


def resumable_checkpoint(
    cfgs: list[FinetuneConfig], folder: Path, record: bool = True
) -> str | None:
    """The last checkpoint of a stopped run with these same settings, to resume from.

    Runs take hours on CPU, so a stopped one picks up where it left off. The settings are
    recorded beside the checkpoints; a folder that holds another run's checkpoints is an error
    rather than a silent resume of different work. A run that finished removes its checkpoints
    (:func:`drop_checkpoints`), so running the same command again trains afresh. With
    ``record`` false (the other processes of a distributed run) the settings are checked, not
    written.
    """
    settings_file = folder / "run_settings.json"
    settings = json.loads(json.dumps([asdict(c) for c in cfgs]))
    last = get_last_checkpoint(str(folder)) if folder.is_dir() else None
    if last and (not settings_file.exists() or json.loads(settings_file.read_text()) != settings):
        raise CheckpointConflict(
            f"{folder} holds checkpoints of a run with other settings; "
            "remove it or choose another --output-dir"
        )
    if record:
        folder.mkdir(parents=True, exist_ok=True)
        settings_file.write_text(json.dumps(settings, indent=1))
    if last:
        print(f"resuming from {last}", flush=True)
    return last


def drop_checkpoints(folder: Path) -> None:
    """Remove a finished run's checkpoints (the bundle holds the result); logs stay."""
    for checkpoint in folder.glob("checkpoint-*"):
        shutil.rmtree(checkpoint)
    (folder / "run_settings.json").unlink(missing_ok=True)


def class_weights(label_ids: list[int], n: int) -> torch.Tensor:
    """Inverse class frequency, scaled so that balanced data gets weight 1 everywhere."""
    counts = np.bincount(label_ids, minlength=n).astype(np.float64).clip(min=1)
    return torch.tensor(counts.sum() / (n * counts), dtype=torch.float32)


def training_arguments(cfg: FinetuneConfig, out: Path) -> TrainingArguments:
    """The ``Trainer``'s settings. On a GPU machine it trains there (bf16 on the CPU needs
    ``use_cpu``). Under data parallelism some parameters get no gradient in a step (the
    encoder's pooler, which the heads never read; the other tasks' heads, when a process's
    batch is of one task), which DDP must be told to expect."""
    return TrainingArguments(
        output_dir=str(out / "checkpoints"),
        per_device_train_batch_size=1,  # one item = one whole task batch (TaskBatches)
        per_device_eval_batch_size=1,
        learning_rate=cfg.learning_rate,
        warmup_steps=cfg.warmup_ratio,
        weight_decay=cfg.weight_decay,
        num_train_epochs=1,  # each task's epochs are laid out in its batches
        max_steps=cfg.max_steps,
        eval_strategy="steps",
        eval_steps=cfg.eval_steps,
        save_strategy="steps",
        save_steps=cfg.eval_steps,
        save_total_limit=2,
        load_best_model_at_end=True,
        metric_for_best_model="score",
        greater_is_better=True,
        logging_steps=max(1, min(50, cfg.eval_steps)),
        report_to=["tensorboard"],
        bf16=cfg.bf16,
        use_cpu=not torch.cuda.is_available(),
        ddp_find_unused_parameters=True,
        ddp_timeout=int(wait().total_seconds()),  # the others wait while the first fits fusion
        seed=cfg.seed,
        label_names=["labels"],
        remove_unused_columns=False,
        dataloader_num_workers=0,
    )


def finish_task(
    part: TaskPart, window_logits: np.ndarray, normalization: NormalizerConfig
) -> tuple[TaskSettings, TaskResult, Fusion | None]:
    """Calibrate one task on validation (and fit its fusion); its settings and result."""
    cfg, evaluator = part.cfg, part.evaluator
    report, temperature, pred = evaluator.report(window_logits)
    fusion = None
    if cfg.fusion:
        (texts, first), (val_texts, val_first) = (
            sequence_inputs(cfg, part.train),
            sequence_inputs(cfg, evaluator.records),
        )
        fusion, fusion_report = fit_fusion(
            cfg,
            texts,
            first,
            np.array(part.train_ids),
            val_texts,
            val_first,
            evaluator.y,
            evaluator.doc_logits(window_logits),
            normalization,
        )
        report, temperature, pred, fusion = choose(
            report, temperature, pred, fusion, fusion_report, evaluator.y, part.labels
        )
    settings = TaskSettings(
        task_kind(cfg.task),
        tuple(part.labels),
        temperature=temperature,
        low_confidence_threshold=cfg.low_confidence_threshold,
        max_length=cfg.max_length,
        stride=cfg.stride,
        max_windows=cfg.max_windows,
        evidence_sentences=cfg.evidence_sentences,
        lead_prior=report.get("lead_prior", 0.0),
        title_tokens=cfg.title_tokens if task_kind(cfg.task) == SENTENCE else 0,
    )
    if task_kind(cfg.task) == SEQUENCE:
        return (
            settings,
            TaskResult(report, evaluator.y, pred, evaluator.doc_logits(window_logits)),
            fusion,
        )
    return settings, TaskResult(report, None, pred), fusion


def file_hash(path: Path) -> str:
    """A short content hash of a data file, or of each split file of a dataset folder."""
    if path.is_dir():
        return "; ".join(f"{p.name}={file_hash(p)}" for p in sorted(path.glob("*.jsonl*")))
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def git_commit() -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            cwd=Path(__file__).parent,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def validation_summary(val: dict) -> str:
    if "macro_f1" not in val:
        return (
            "Validation ROUGE-1/2/L F "
            f"{val['rouge1']:.3f}/{val['rouge2']:.3f}/{val['rougeL']:.3f} at k = {val['k']}."
        )
    return (
        f"Validation macro-F1 {val['macro_f1']:.3f} (95% CI "
        f"{val['macro_f1_ci'][0]:.3f}-{val['macro_f1_ci'][1]:.3f}), accuracy "
        f"{val['accuracy']:.3f}; ECE {val['ece_before']:.3f} before and {val['ece_after']:.3f} "
        f"after temperature scaling (T = {val['temperature']:.2f})."
    )


def model_card(cfgs: list[FinetuneConfig], metrics: dict, provenance: dict) -> str:
    """The bundle's README.md: what it was trained from and how, its validation figures."""
    lead, tasks = cfgs[0], [c.task for c in cfgs]
    figures = [
        f"- **{task}**: {validation_summary(metrics['tasks'][task]['validation'])}"
        for task in tasks
    ]
    data = bundle_card_data(
        f"akhbar-{tasks[0] if len(tasks) == 1 else 'shared'}",
        tasks,
        lead.init_from or lead.base_model,
        provenance["data"],
    )
    body = "\n".join(
        [
            f"# akhbar {' + '.join(tasks)} model",
            "",
            f"Fine-tuned from `{lead.init_from or lead.base_model}` "
            f"by `akhbar train {','.join(tasks)}`"
            + (": one shared encoder with a head per task." if len(tasks) > 1 else "."),
            "",
            *figures,
            "",
            f"Training took {metrics['train_seconds']:.0f} s, {metrics['steps']} steps.",
            "",
            "## Licence",
            "",
            "The data's licences carry over (see each dataset's PROVENANCE.md); the project's own "
            "base is CC BY-NC-SA 4.0.",
            "",
            "## Provenance",
            "",
            "```json",
            json.dumps(provenance, indent=2),
            "```",
            "",
            "## Hyper-parameters",
            "",
            "```json",
            json.dumps({c.task: asdict(c) for c in cfgs}, indent=2),
            "```",
            "",
        ]
    )
    return card_text(data, body)

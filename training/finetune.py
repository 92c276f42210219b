"""``akhbar train TASK[,TASK...]``: fine-tune a base encoder into a model bundle.

run_glue.py in shape: a config dataclass (YAML per task + CLI overrides), then one
straight ``run``: seed → data → labels → windows → model → ``Trainer`` (early stopping
on validation) → temperature calibration → bundle. Sequence tasks (topic, stance) share
this path; the summary task plugs its own inputs into the same steps.

Several tasks train one shared encoder with a head each (the shipped default): every
training batch holds one task's rows, and the batches of all tasks are interleaved, so
one bundle serves every task from one set of encoder weights.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np
import torch
import yaml
from torch.utils.data import Dataset as TorchDataset
from transformers import (
    EarlyStoppingCallback,
    HfArgumentParser,
    PreTrainedModel,
    Trainer,
    TrainingArguments,
    set_seed,
)

from akhbar import __version__
from akhbar.models.base import load_base
from akhbar.models.bundle import BundleSettings, TaskSettings, load_bundle, save_bundle
from akhbar.models.fusion import KINDS as FUSION_KINDS
from akhbar.models.inputs import stance_inputs, summary_sentences, topic_inputs
from akhbar.models.modeling import AkhbarModel, HeadSpec, TaskModel
from akhbar.models.predict import pick_sentences, with_lead_prior
from akhbar.models.reader import data_root, read_records
from akhbar.models.sentences import Sentence
from akhbar.models.tasks import SENTENCE_LABEL, SEQUENCE, TASK_KINDS, task_kind
from akhbar.models.tokenization import ensure_normalization, stored_normalization
from akhbar.models.windowing import (
    encode_sentence_windows,
    encode_windows,
    pad_features,
    pool_logits,
)
from akhbar.training.fusion import choose, fit_fusion
from akhbar.training.metrics import (
    calibrated,
    classification_report,
    expected_calibration_error,
    fit_temperature,
)
from akhbar.training.rouge import greedy_oracle, rouge_scores, scorer

CONFIG_DIR = Path(__file__).parent / "configs"
SHARED_OUTPUT = "work/models/shared"


@dataclass
class FinetuneConfig:
    """Settings for ``akhbar train TASK``; defaults come from ``training/configs/TASK.yaml``."""

    task: str = field(default="topic", metadata={"help": "topic, stance or summary."})
    data: str = field(default="", metadata={"help": "Dataset folder(s) with train/validation splits, or a train file; comma-separated to combine sets."})
    validation: str | None = field(default=None, metadata={"help": "Validation file (default: the folder's validation split)."})
    base_model: str = field(default="models/default/base", metadata={"help": "Hub id or local directory of the encoder."})
    init_from: str | None = field(default=None, metadata={"help": "Continue from an existing bundle (its encoder and matching head)."})
    output_dir: str = field(default="work/models/topic", metadata={"help": "Where the bundle is written."})
    labels: str | None = field(default=None, metadata={"help": "Comma-separated label set; default: the labels found in the train data."})
    label_map: str | None = field(default=None, metadata={"help": "Rename labels while reading, e.g. other:discuss (ANS's 'other')."})
    random_init: bool = field(default=False, metadata={"help": "Re-initialise the encoder (same size): the no-pretraining control."})
    dropout: float = field(default=0.1, metadata={"help": "Encoder dropout while fine-tuning (the base is pretrained without)."})
    max_length: int = 256
    stride: int = 32
    max_windows: int = 4
    train_windows: int = field(default=1, metadata={"help": "Windows per training text (1 = head only)."})
    evidence_sentences: int = field(default=4, metadata={"help": "Stance: article sentences kept per claim."})
    oracle_sentences: int = field(default=3, metadata={"help": "Summary: most sentences the ROUGE oracle labels per article."})
    summary_sentences: int = field(default=1, metadata={"help": "Summary: k sentences scored on validation."})
    epochs: float = 2.0
    max_steps: int = -1
    batch_size: int = 32
    learning_rate: float = 2e-4
    warmup_ratio: float = 0.06
    weight_decay: float = 0.01
    class_weighting: bool = field(default=False, metadata={"help": "Weight the loss by inverse class frequency."})
    fusion: str = field(default="", metadata={"help": "Also fit a side model + a stacker on validation, kept only if it beats the encoder: tfidf (topic) or sentence_encoder (stance)."})
    eval_steps: int = 200
    early_stopping_patience: int = 3
    low_confidence_threshold: float = 0.5
    max_train_samples: int = 0
    max_eval_samples: int = 0
    skip_bad: bool = field(default=False, metadata={"help": "Set bad records aside in OUTPUT/rejects.jsonl instead of stopping."})
    bf16: bool = True
    threads: int = 0
    seed: int = 42

    def __post_init__(self) -> None:
        if self.task not in TASK_KINDS:
            raise ValueError(f"task must be one of {', '.join(TASK_KINDS)}, got {self.task!r}")
        if self.fusion and (self.fusion not in FUSION_KINDS or task_kind(self.task) != SEQUENCE):
            raise ValueError(f"--fusion must be one of {', '.join(FUSION_KINDS)} and is for label tasks, got {self.fusion!r} for {self.task}")
        if not self.data:
            raise ValueError("--data is required (a dataset folder or a train file)")
        if not 0 <= self.stride < self.max_length:
            raise ValueError(f"--stride must be at least 0 and below --max_length ({self.max_length})")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"--dropout must be within [0, 1), got {self.dropout}")
        for name in ("max_windows", "train_windows", "batch_size", "evidence_sentences", "oracle_sentences",
                     "summary_sentences"):
            if getattr(self, name) < 1:
                raise ValueError(f"--{name} must be at least 1, got {getattr(self, name)}")


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
            raise ValueError(f"--label_map: {pair!r} is not SOURCE:TARGET")
        mapping[source.strip()] = target.strip()
    return mapping


def load_split(cfg: FinetuneConfig, which: str, labels: list[str] | None, out: Path) -> list[dict]:
    """Records of one split from every source in ``--data`` (comma-separated), labels mapped."""
    given = cfg.validation if which == "validation" and cfg.validation else cfg.data
    label_map = parse_label_map(cfg.label_map)
    accepted = sorted(set(labels) | set(label_map)) if labels else None
    policy = "skip" if cfg.skip_bad else "strict"
    records: list[dict] = []
    for name in filter(None, given.split(",")):
        source = resolve_data(name)
        if which == "validation" and not source.is_dir() and not cfg.validation:
            raise ValueError(f"--data {name} is a single file, so pass --validation FILE for early stopping and calibration")
        rejects = out / f"rejects-{which}.jsonl" if cfg.skip_bad else None
        stream = read_records(source, cfg.task, labels=accepted, policy=policy, rejects_path=rejects,
                              split=which if source.is_dir() else None)
        records += list(stream)
        if cfg.skip_bad:
            print(f"{name} {which}: {stream.summary()}", file=sys.stderr)
    for r in records:
        if "label" in r:
            r["label"] = label_map.get(r["label"], r["label"])
    limit = cfg.max_train_samples if which == "train" else cfg.max_eval_samples
    return records[:limit] if limit else records


def sequence_inputs(cfg: FinetuneConfig, records: list[dict]) -> tuple[list[str], list[str] | None]:
    """(texts, first segments) for a sequence task, built as the Predictor builds them."""
    if cfg.task == "topic":
        return topic_inputs([r["text"] for r in records], [r.get("title") for r in records]), None
    claims = [r["claim"] for r in records]
    return stance_inputs(claims, [r["text"] for r in records], cfg.evidence_sentences)[0], claims


def sequence_dataset(cfg: FinetuneConfig, tokenizer, records: list[dict], label_ids: list[int], max_windows: int):
    texts, first = sequence_inputs(cfg, records)
    windows = encode_windows(tokenizer, texts, cfg.max_length, cfg.stride, max_windows, first)
    rows = [{**f, "labels": label_ids[d]} for f, d in zip(windows.features, windows.doc_index)]
    return rows, windows


def references(record: dict) -> list[str]:
    return record.get("summaries") or [record["summary"]]


def summary_dataset(cfg: FinetuneConfig, tokenizer, records: list[dict]):
    """Sentence windows labelled 1 where the greedy ROUGE oracle picks the sentence."""
    docs = [summary_sentences(r["text"]) for r in records]
    windows = encode_sentence_windows(tokenizer, [[s.text for s in d] for d in docs], cfg.max_length, cfg.max_windows)
    chosen = [set(greedy_oracle([s.text for s in d], references(r), cfg.oracle_sentences)) for d, r in zip(docs, records)]
    rows = [{**f, "labels": [int(i in chosen[d]) for i in index]}
            for f, d, index in zip(windows.features, windows.doc_index, windows.sentence_index)]
    return rows, windows, docs


def head_for(task: str, labels: list[str]) -> HeadSpec:
    return TaskSettings(task_kind(task), tuple(labels)).head


def build_model(cfg: FinetuneConfig, labels: dict[str, list[str]]):
    """Encoder + a head per task, or continue from a bundle with ``--init_from``.

    An ``--init_from`` head is reused when its task's labels match, else replaced by a
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
        normalization = stored_normalization(cfg.base_model if Path(cfg.base_model).is_dir() else "")
        model = AkhbarModel(encoder, heads)
        base_name = cfg.base_model
    set_dropout(model.encoder, cfg.dropout)
    return model, ensure_normalization(tokenizer, normalization), normalization, base_name


def set_dropout(encoder: PreTrainedModel, p: float) -> None:
    """Set every dropout of the encoder (and its saved config) to ``p``."""
    for module in encoder.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = p
    for name in ("hidden_dropout_prob", "attention_probs_dropout_prob"):
        if hasattr(encoder.config, name):
            setattr(encoder.config, name, p)


def class_weights(label_ids: list[int], n: int) -> torch.Tensor:
    counts = np.bincount(label_ids, minlength=n).astype(np.float64).clip(min=1)
    return torch.tensor(counts.sum() / (n * counts), dtype=torch.float32)


def file_hash(path: Path) -> str:
    if path.is_dir():
        return "; ".join(f"{p.name}={file_hash(p)}" for p in sorted(path.glob("*.jsonl*")))
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def git_commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              cwd=Path(__file__).parent, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


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


class SequenceEval:
    """Validation for topic/stance: window logits pooled per text, then macro-F1."""

    def __init__(self, cfg: FinetuneConfig, tokenizer, records: list[dict], label_ids: list[int], labels: list[str]):
        self.rows, self.windows = sequence_dataset(cfg, tokenizer, records, label_ids, cfg.max_windows)
        self.records, self.y, self.labels = records, np.array(label_ids), labels

    def doc_logits(self, window_logits: np.ndarray) -> np.ndarray:
        return pool_logits(window_logits, self.windows.doc_index, len(self.y))

    def score(self, window_logits: np.ndarray) -> float:
        return classification_report(self.y, self.doc_logits(window_logits).argmax(1), self.labels, ci=False)["macro_f1"]

    def report(self, window_logits: np.ndarray) -> tuple[dict, float, np.ndarray]:
        logits = self.doc_logits(window_logits)
        report, temperature = calibration_report(logits, self.y, self.labels)
        return report, temperature, logits.argmax(1)


def calibration_report(logits: np.ndarray, y: np.ndarray, labels: list[str]) -> tuple[dict, float]:
    """Validation figures of a label task's pooled logits, with the temperature fitted on them."""
    temperature = fit_temperature(logits, y)
    report = classification_report(y, logits.argmax(1), labels)
    report |= {"ece_before": expected_calibration_error(calibrated(logits, 1.0), y),
               "ece_after": expected_calibration_error(calibrated(logits, temperature), y),
               "temperature": temperature}
    return report, temperature


LEAD_PRIORS = (0.0, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 1e4)  # 1e4: Lead-k whatever the head says


def fit_lead_prior(docs: list[list[Sentence]], scores: list[np.ndarray], refs: list[list[str]], k: int,
                   priors: tuple[float, ...] = LEAD_PRIORS) -> tuple[float, dict[float, float], list[str]]:
    """The lead prior with the best validation ROUGE-L (the smaller on ties), ROUGE-L per
    prior, and the picks at the chosen prior (see :func:`akhbar.models.predict.with_lead_prior`)."""
    rouge = scorer()
    picks, by_prior = {}, {}
    for prior in priors:
        picks[prior] = [" ".join(s.text for s in pick_sentences(d, with_lead_prior(sc, prior), k).sentences)
                        for d, sc in zip(docs, scores)]
        by_prior[prior] = float(np.mean([rouge_scores(p, r, rouge)["rougeL"] for p, r in zip(picks[prior], refs)]))
    best = max(priors, key=lambda prior: (by_prior[prior], -prior))
    return best, by_prior, picks[best]


class SummaryEval:
    """Validation for summary: the top-k sentences per article, ROUGE-L against the reference."""

    def __init__(self, cfg: FinetuneConfig, tokenizer, records: list[dict]):
        self.rows, self.windows, self.docs = summary_dataset(cfg, tokenizer, records)
        self.refs, self.k = [references(r) for r in records], cfg.summary_sentences

    def doc_scores(self, logits: np.ndarray) -> list[np.ndarray]:
        scores = [np.full(len(d), -np.inf) for d in self.docs]
        for row, doc, index in zip(logits, self.windows.doc_index, self.windows.sentence_index):
            scores[doc][index] = row[: len(index)]
        return scores

    def score(self, logits: np.ndarray) -> float:
        """The head's own validation ROUGE-L (no lead prior): what training improves."""
        return fit_lead_prior(self.docs, self.doc_scores(logits), self.refs, self.k, priors=(0.0,))[1][0.0]

    def report(self, logits: np.ndarray) -> tuple[dict, float, list[str]]:
        """Figures at the lead prior that wins on validation (in ``lead_prior``)."""
        prior, by_prior, picks = fit_lead_prior(self.docs, self.doc_scores(logits), self.refs, self.k)
        return summary_report(picks, self.refs, self.k, prior, by_prior), 1.0, picks


def summary_report(picks: list[str], refs: list[list[str]], k: int, prior: float, by_prior: dict[float, float]) -> dict:
    """ROUGE-1/2/L of the picks, with the lead prior they were made at and ROUGE-L at each prior."""
    rouge = scorer()
    per_doc = [rouge_scores(p, r, rouge) for p, r in zip(picks, refs)]
    return {t: float(np.mean([d[t] for d in per_doc])) for t in per_doc[0]} | {
        "k": k, "lead_prior": prior, "rougeL_by_lead_prior": {str(p): v for p, v in by_prior.items()}}


@dataclass
class TaskPart:
    """One task's share of a run: its settings, labels, training rows and validation."""

    cfg: FinetuneConfig
    labels: list[str]
    train: list[dict]
    train_ids: list[int] | None
    train_rows: list[dict]
    evaluator: SequenceEval | SummaryEval
    weights: torch.Tensor | None = None


def prepare(cfg: FinetuneConfig, tokenizer, train: list[dict], val: list[dict], labels: list[str]) -> TaskPart:
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


class TaskBatches(TorchDataset):
    """Whole one-task batches, one per item: every batch holds one task's rows only.

    Several tasks train together by interleaving their batches; the ``Trainer`` sees
    batches of one item and its sampler shuffles their order.
    """

    def __init__(self, batches: list[tuple[str, list[dict]]], pad_token_id: int):
        self.batches, self.pad_token_id = batches, pad_token_id

    def __len__(self) -> int:
        return len(self.batches)

    def __getitem__(self, index: int) -> dict:
        task, rows = self.batches[index]
        return {"task": task, **pad_features(rows, self.pad_token_id)}


def unwrap(items: list[dict]) -> dict:
    return items[0]


def training_batches(parts: dict[str, TaskPart], seed: int) -> list[tuple[str, list[dict]]]:
    """Each task's rows in fresh random batches for each of its ``epochs`` (a fraction cuts the last)."""
    rng = np.random.default_rng(seed)
    batches = []
    for task, part in parts.items():
        size, n = part.cfg.batch_size, len(part.train_rows)
        for epoch in range(math.ceil(part.cfg.epochs)):
            order = rng.permutation(n)
            chunks = [[part.train_rows[i] for i in order[s:s + size]] for s in range(0, n, size)]
            keep = len(chunks) if epoch + 1 <= part.cfg.epochs else round(len(chunks) * (part.cfg.epochs - epoch))
            batches += [(task, chunk) for chunk in chunks[:keep]]
    return batches


def eval_batches(task: str, rows: list[dict], size: int) -> list[tuple[str, list[dict]]]:
    return [(task, rows[s:s + size]) for s in range(0, len(rows), size)]


class MultiTaskTrainer(Trainer):
    """``Trainer`` whose evaluation scores every task on its own validation set.

    ``eval_score`` (what early stopping and the best checkpoint follow) is the mean of the
    tasks' scores: macro-F1 for topic and stance, ROUGE-L for summary.
    """

    def __init__(self, *args, parts: dict[str, TaskPart], **kwargs):
        super().__init__(*args, **kwargs)
        self.parts = parts

    def task_logits(self, task: str) -> np.ndarray:
        part = self.parts[task]
        data = TaskBatches(eval_batches(task, part.evaluator.rows, part.cfg.batch_size * 2), self.pad_token_id)
        return self.predict(data).predictions

    @property
    def pad_token_id(self) -> int:
        return self.processing_class.pad_token_id

    def evaluate(self, eval_dataset=None, ignore_keys=None, metric_key_prefix: str = "eval") -> dict[str, float]:
        scores = {task: part.evaluator.score(self.task_logits(task)) for task, part in self.parts.items()}
        metrics = {f"{metric_key_prefix}_{task}": score for task, score in scores.items()}
        metrics[f"{metric_key_prefix}_score"] = float(np.mean(list(scores.values())))
        self.log(metrics)
        self.control = self.callback_handler.on_evaluate(self.args, self.state, self.control, metrics)
        return metrics


def load_parts(cfgs: list[FinetuneConfig], out: Path) -> tuple[dict, dict, dict]:
    """Every task's train and validation records, and its label list."""
    train, val, labels = {}, {}, {}
    for cfg in cfgs:
        fixed = cfg.labels.split(",") if cfg.labels else None
        train[cfg.task] = load_split(cfg, "train", fixed, out)
        sequence = task_kind(cfg.task) == SEQUENCE
        labels[cfg.task] = fixed or (sorted({r["label"] for r in train[cfg.task]}) if sequence else [SENTENCE_LABEL])
        val[cfg.task] = load_split(cfg, "validation", labels[cfg.task] if sequence else None, out)
    return train, val, labels


def finish_task(part: TaskPart, window_logits: np.ndarray, normalization) -> tuple[TaskSettings, TaskResult, object]:
    """Calibrate one task on validation (and fit its TF-IDF fusion); its settings and result."""
    cfg, evaluator = part.cfg, part.evaluator
    report, temperature, pred = evaluator.report(window_logits)
    fusion = None
    if cfg.fusion:
        (texts, first), (val_texts, val_first) = sequence_inputs(cfg, part.train), sequence_inputs(cfg, evaluator.records)
        fusion, fusion_report = fit_fusion(cfg.fusion, texts, first, np.array(part.train_ids), val_texts, val_first,
                                           evaluator.y, evaluator.doc_logits(window_logits), normalization, cfg.seed,
                                           balanced=cfg.class_weighting)
        report, temperature, pred, fusion = choose(report, temperature, pred, fusion, fusion_report, evaluator.y,
                                                   part.labels)
    settings = TaskSettings(
        task_kind(cfg.task), tuple(part.labels), temperature=temperature,
        low_confidence_threshold=cfg.low_confidence_threshold, max_length=cfg.max_length, stride=cfg.stride,
        max_windows=cfg.max_windows, evidence_sentences=cfg.evidence_sentences,
        lead_prior=report.get("lead_prior", 0.0),
    )
    if task_kind(cfg.task) == SEQUENCE:
        return settings, TaskResult(report, evaluator.y, pred, evaluator.doc_logits(window_logits)), fusion
    return settings, TaskResult(report, None, pred), fusion


def training_arguments(cfg: FinetuneConfig, out: Path) -> TrainingArguments:
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
        use_cpu=True,
        seed=cfg.seed,
        label_names=["labels"],
        remove_unused_columns=False,
        dataloader_num_workers=0,
    )


def run(cfgs: FinetuneConfig | list[FinetuneConfig]) -> FinetuneResult:
    """Fine-tune one encoder on one task or several at once, into one bundle.

    The first config's training settings (output, base, learning rate, steps, seed...)
    apply to the run; each task keeps its own data, inputs, batch size and epochs.
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
    train, val, labels = load_parts(cfgs, out)
    model, tokenizer, normalization, base_name = build_model(lead, labels)
    parts = {c.task: prepare(c, tokenizer, train[c.task], val[c.task], labels[c.task]) for c in cfgs}
    weights = {task: part.weights for task, part in parts.items() if part.weights is not None}
    trainer = MultiTaskTrainer(
        model=TaskModel(model, weights), args=training_arguments(lead, out), processing_class=tokenizer,
        train_dataset=TaskBatches(training_batches(parts, lead.seed), tokenizer.pad_token_id),
        eval_dataset=TaskBatches([], tokenizer.pad_token_id), data_collator=unwrap, parts=parts,
        callbacks=[EarlyStoppingCallback(lead.early_stopping_patience)],
    )
    start = time.time()
    trainer.train()
    train_seconds = time.time() - start

    settings, results, fusions = {}, {}, {}
    for task, part in parts.items():
        settings[task], results[task], fusions[task] = finish_task(part, trainer.task_logits(task), normalization)
    bundle_settings = BundleSettings(tasks=settings, normalization=normalization, base_model=base_name)
    metrics = {"tasks": {task: {"validation": r.report} for task, r in results.items()},
               "train_seconds": round(train_seconds, 1), "steps": trainer.state.global_step}
    data = [name for c in cfgs for name in filter(None, c.data.split(","))]
    provenance = {"data": {name: file_hash(resolve_data(name)) for name in data},
                  "git_commit": git_commit(), "akhbar_version": __version__}
    bundle = save_bundle(out / "bundle", model, tokenizer, bundle_settings,
                         card=model_card(cfgs, metrics, provenance), metrics=metrics)
    for task, fusion in fusions.items():
        if fusion is not None:
            fusion.save(bundle, task)
    return FinetuneResult(bundle, metrics, results)


def validation_summary(val: dict) -> str:
    if "macro_f1" not in val:
        return f"Validation ROUGE-1/2/L F {val['rouge1']:.3f}/{val['rouge2']:.3f}/{val['rougeL']:.3f} at k = {val['k']}."
    return (f"Validation macro-F1 {val['macro_f1']:.3f} (95% CI {val['macro_f1_ci'][0]:.3f}-{val['macro_f1_ci'][1]:.3f}), "
            f"accuracy {val['accuracy']:.3f}; ECE {val['ece_before']:.3f} before and {val['ece_after']:.3f} after "
            f"temperature scaling (T = {val['temperature']:.2f}).")


def model_card(cfgs: list[FinetuneConfig], metrics: dict, provenance: dict) -> str:
    lead, tasks = cfgs[0], [c.task for c in cfgs]
    figures = [f"- **{task}**: {validation_summary(metrics['tasks'][task]['validation'])}" for task in tasks]
    return "\n".join([
        f"# akhbar {' + '.join(tasks)} model", "",
        f"Fine-tuned from `{lead.init_from or lead.base_model}` by `akhbar train {','.join(tasks)}`"
        + (": one shared encoder with a head per task." if len(tasks) > 1 else "."), "",
        *figures, "",
        f"Training took {metrics['train_seconds']:.0f} s, {metrics['steps']} steps.", "",
        "## Licence", "",
        "The data's licences carry over (see each dataset's PROVENANCE.md); the project's own base is CC BY-NC-SA 4.0.", "",
        "## Provenance", "", "```json", json.dumps(provenance, indent=2), "```", "",
        "## Hyper-parameters", "", "```json", json.dumps({c.task: asdict(c) for c in cfgs}, indent=2), "```", "",
    ])


def parse_task(argv: list[str], task: str, config: str | None) -> FinetuneConfig:
    """One task's settings: its YAML (or ``--config``), then the command line."""
    parser = HfArgumentParser(FinetuneConfig, prog="akhbar train", description=__doc__)
    parser.add_argument("--config", default=None, help="YAML file of settings (default: training/configs/TASK.yaml).")
    known = {f.name for f in fields(FinetuneConfig)}
    config_file = Path(config) if config else CONFIG_DIR / f"{task}.yaml"
    if config_file.is_file():
        defaults = yaml.safe_load(config_file.read_text()) or {}
        unknown = sorted(set(defaults) - known)
        if unknown:
            parser.error(f"{config_file}: unknown setting(s) {', '.join(unknown)}")
        parser.set_defaults(**defaults)
    elif config:
        parser.error(f"--config {config}: no such file")
    cfg, _ = parser.parse_args_into_dataclasses(args=["--task", task, *argv])
    return cfg


def parse_args(argv: list[str]) -> list[FinetuneConfig]:
    """``TASK[,TASK...] [--config FILE] [--flag value ...]``: YAML defaults, then command-line overrides.

    Several tasks train one shared encoder: each reads its own YAML, the command-line flags
    apply to all of them, and the bundle goes to ``work/models/shared`` unless
    ``--output_dir`` says otherwise.
    """
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--config")
    pre.add_argument("--task")
    if argv and not argv[0].startswith("-"):
        tasks, rest = [t.strip() for t in argv[0].split(",")], argv[1:]
    else:
        tasks, rest = [], argv
    known, _ = pre.parse_known_args(rest)
    if tasks and known.task:
        raise SystemExit("akhbar train: name the task(s) once, either first or with --task")
    tasks = tasks or [known.task or "topic"]
    if len(tasks) > 1 and known.config:
        raise SystemExit("akhbar train: --config names one task's file; with several tasks each reads its own YAML")
    cfgs = [parse_task(rest, task, known.config) for task in tasks]
    if len(cfgs) > 1 and not any(a == "--output_dir" or a.startswith("--output_dir=") for a in rest):
        for cfg in cfgs:
            cfg.output_dir = SHARED_OUTPUT
    return cfgs


def main(argv: list[str] | None = None) -> int:
    result = run(parse_args(sys.argv[1:] if argv is None else argv))
    print(json.dumps(result.metrics, indent=2))
    print(f"bundle written to {result.bundle}", file=sys.stderr)
    return 0

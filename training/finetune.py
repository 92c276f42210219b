"""``akhbar train TASK``: fine-tune a base encoder into a model bundle.

run_glue.py in shape: a config dataclass (YAML per task + CLI overrides), then one
straight ``run``: seed → data → labels → windows → model → ``Trainer`` (early stopping
on validation macro-F1) → temperature calibration → bundle. Sequence tasks (topic,
stance) share this path; the summary task plugs its own inputs into the same steps.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field, fields
from functools import partial
from pathlib import Path

import numpy as np
import torch
import yaml
from datasets import Dataset
from transformers import (
    EarlyStoppingCallback,
    EvalPrediction,
    HfArgumentParser,
    Trainer,
    TrainingArguments,
    set_seed,
)

from akhbar import __version__
from akhbar.models.base import load_base
from akhbar.models.bundle import BundleSettings, TaskSettings, load_bundle, save_bundle
from akhbar.models.inputs import stance_inputs, summary_sentences, topic_inputs
from akhbar.models.modeling import AkhbarModel, HeadSpec, TaskModel
from akhbar.models.predict import pick_sentences
from akhbar.models.reader import data_root, read_records
from akhbar.models.tasks import SENTENCE_LABEL, SEQUENCE, TASK_KINDS, task_kind
from akhbar.models.tokenization import ensure_normalization, stored_normalization
from akhbar.models.windowing import (
    encode_sentence_windows,
    encode_windows,
    pad_features,
    pool_logits,
)
from akhbar.training.fusion import fit_fusion
from akhbar.training.metrics import (
    calibrated,
    classification_report,
    expected_calibration_error,
    fit_temperature,
)
from akhbar.training.rouge import greedy_oracle, rouge_scores, scorer

CONFIG_DIR = Path(__file__).parent / "configs"


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
    tfidf_fusion: bool = field(default=False, metadata={"help": "Topic: also fit hashed TF-IDF + a stacker on validation; kept only if it beats the encoder."})
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
        if self.tfidf_fusion and self.task != "topic":
            raise ValueError("--tfidf_fusion is for topic only (n-grams of an evidence text say nothing of stance)")
        if self.task not in TASK_KINDS:
            raise ValueError(f"task must be one of {', '.join(TASK_KINDS)}, got {self.task!r}")
        if not self.data:
            raise ValueError("--data is required (a dataset folder or a train file)")
        if not 0 <= self.stride < self.max_length:
            raise ValueError(f"--stride must be at least 0 and below --max_length ({self.max_length})")
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


def build_model(cfg: FinetuneConfig, labels: list[str]):
    """Encoder + a fresh head, or continue from a bundle with ``--init_from``.

    Only this task's head is trained and saved; an ``--init_from`` head is reused when
    its labels match, else replaced by a fresh one of the right size.
    """
    if cfg.init_from:
        bundle = load_bundle(cfg.init_from)
        encoder, tokenizer = bundle.model.encoder, bundle.tokenizer
        normalization, base_name = bundle.settings.normalization, bundle.settings.base_model
        model = AkhbarModel(encoder, {cfg.task: head_for(cfg.task, labels)})
        old = bundle.settings.tasks.get(cfg.task)
        if old is not None and list(old.labels) == labels:
            model.heads[cfg.task] = bundle.model.heads[cfg.task]
    else:
        encoder, tokenizer = load_base(cfg.base_model)
        if cfg.random_init:
            encoder = type(encoder)(encoder.config)
        normalization = stored_normalization(cfg.base_model if Path(cfg.base_model).is_dir() else "")
        model = AkhbarModel(encoder, {cfg.task: head_for(cfg.task, labels)})
        base_name = cfg.base_model
    return model, ensure_normalization(tokenizer, normalization), normalization, base_name


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
class FinetuneResult:
    """What a run leaves: the bundle, its metrics, and validation predictions (for paired tests)."""

    bundle: Path
    metrics: dict
    validation_true: np.ndarray | None
    validation_pred: np.ndarray | list
    validation_logits: np.ndarray | None = None  # encoder logits per text (sequence tasks)


class SequenceEval:
    """Validation for topic/stance: window logits pooled per text, then macro-F1."""

    def __init__(self, cfg: FinetuneConfig, tokenizer, records: list[dict], label_ids: list[int], labels: list[str]):
        self.rows, self.windows = sequence_dataset(cfg, tokenizer, records, label_ids, cfg.max_windows)
        self.y, self.labels = np.array(label_ids), labels

    def doc_logits(self, window_logits: np.ndarray) -> np.ndarray:
        return pool_logits(window_logits, self.windows.doc_index, len(self.y))

    def __call__(self, pred: EvalPrediction) -> dict:
        return {"score": classification_report(self.y, self.doc_logits(pred.predictions).argmax(1), self.labels, ci=False)["macro_f1"]}

    def report(self, window_logits: np.ndarray) -> tuple[dict, float, np.ndarray]:
        logits = self.doc_logits(window_logits)
        temperature = fit_temperature(logits, self.y)
        report = classification_report(self.y, logits.argmax(1), self.labels)
        report |= {"ece_before": expected_calibration_error(calibrated(logits, 1.0), self.y),
                   "ece_after": expected_calibration_error(calibrated(logits, temperature), self.y),
                   "temperature": temperature}
        return report, temperature, logits.argmax(1)


class SummaryEval:
    """Validation for summary: the top-k sentences per article, ROUGE-L against the reference."""

    def __init__(self, cfg: FinetuneConfig, tokenizer, records: list[dict]):
        self.rows, self.windows, self.docs = summary_dataset(cfg, tokenizer, records)
        self.refs, self.k = [references(r) for r in records], cfg.summary_sentences

    def picks(self, logits: np.ndarray) -> list[str]:
        scores = [np.full(len(d), -np.inf) for d in self.docs]
        for row, doc, index in zip(logits, self.windows.doc_index, self.windows.sentence_index):
            scores[doc][index] = row[: len(index)]
        return [" ".join(s.text for s in pick_sentences(d, sc, self.k).sentences) for d, sc in zip(self.docs, scores)]

    def __call__(self, pred: EvalPrediction) -> dict:
        return {"score": self.report(pred.predictions)[0]["rougeL"]}

    def report(self, logits: np.ndarray) -> tuple[dict, float, list[str]]:
        picks = self.picks(logits)
        rouge = scorer()
        per_doc = [rouge_scores(p, r, rouge) for p, r in zip(picks, self.refs)]
        report = {t: float(np.mean([d[t] for d in per_doc])) for t in per_doc[0]} | {"k": self.k}
        return report, 1.0, picks


def run(cfg: FinetuneConfig) -> FinetuneResult:
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    set_seed(cfg.seed)
    out = Path(cfg.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    fixed = cfg.labels.split(",") if cfg.labels else None
    train = load_split(cfg, "train", fixed, out)
    labels = fixed or (sorted({r["label"] for r in train}) if task_kind(cfg.task) == SEQUENCE else [SENTENCE_LABEL])
    val = load_split(cfg, "validation", labels if task_kind(cfg.task) == SEQUENCE else None, out)
    model, tokenizer, normalization, base_name = build_model(cfg, labels)
    weights = None
    if task_kind(cfg.task) == SEQUENCE:
        lid = {name: i for i, name in enumerate(labels)}
        train_ids = [lid[r["label"]] for r in train]
        train_rows, _ = sequence_dataset(cfg, tokenizer, train, train_ids, cfg.train_windows)
        evaluator = SequenceEval(cfg, tokenizer, val, [lid[r["label"]] for r in val], labels)
        weights = class_weights(train_ids, len(labels)) if cfg.class_weighting else None
    else:
        train_rows, _, _ = summary_dataset(cfg, tokenizer, train)
        evaluator = SummaryEval(cfg, tokenizer, val)

    args = TrainingArguments(
        output_dir=str(out / "checkpoints"),
        per_device_train_batch_size=cfg.batch_size,
        per_device_eval_batch_size=cfg.batch_size * 2,
        learning_rate=cfg.learning_rate,
        warmup_steps=cfg.warmup_ratio,
        weight_decay=cfg.weight_decay,
        num_train_epochs=cfg.epochs,
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
        # Not "group_by_length": transformers 5 applies it to the *evaluation* sampler too, and
        # predictions then come back permuted against their labels.
        dataloader_num_workers=0,
    )
    trainer = Trainer(
        model=TaskModel(model, cfg.task, weights), args=args,
        train_dataset=Dataset.from_list(train_rows), eval_dataset=Dataset.from_list(evaluator.rows),
        data_collator=partial(pad_features, pad_token_id=tokenizer.pad_token_id), compute_metrics=evaluator,
        callbacks=[EarlyStoppingCallback(cfg.early_stopping_patience)],
    )
    start = time.time()
    trainer.train()
    train_seconds = time.time() - start

    window_logits = trainer.predict(Dataset.from_list(evaluator.rows)).predictions
    val_report, temperature, val_pred = evaluator.report(window_logits)
    fusion = None
    if cfg.tfidf_fusion:
        fusion, fusion_report = fit_fusion(sequence_inputs(cfg, train)[0], np.array(train_ids), sequence_inputs(cfg, val)[0],
                                           evaluator.y, evaluator.doc_logits(window_logits), normalization, cfg.seed)
        fused_proba = fusion_report.pop("fused_cv_proba")
        if fusion_report["chosen"] == "fused":
            # The stacker's probabilities are calibrated already: temperature 1.
            temperature, val_pred = 1.0, fused_proba.argmax(1)
            val_report = classification_report(evaluator.y, val_pred, labels) | {
                "ece_before": val_report["ece_before"], "ece_after": expected_calibration_error(fused_proba, evaluator.y),
                "temperature": 1.0, "encoder_only": val_report}
        else:
            fusion = None
        val_report["fusion"] = fusion_report
    task_settings = TaskSettings(
        task_kind(cfg.task), tuple(labels), temperature=temperature, low_confidence_threshold=cfg.low_confidence_threshold,
        max_length=cfg.max_length, stride=cfg.stride, max_windows=cfg.max_windows,
        evidence_sentences=cfg.evidence_sentences,
    )
    settings = BundleSettings(tasks={cfg.task: task_settings}, normalization=normalization, base_model=base_name)
    metrics = {"task": cfg.task, "validation": val_report, "train_seconds": round(train_seconds, 1),
               "steps": trainer.state.global_step}
    provenance = {"data": {name: file_hash(resolve_data(name)) for name in filter(None, cfg.data.split(","))},
                  "git_commit": git_commit(), "akhbar_version": __version__}
    bundle = save_bundle(out / "bundle", model, tokenizer, settings, card=model_card(cfg, metrics, provenance),
                         metrics=metrics)
    if fusion is not None:
        fusion.save(bundle, cfg.task)
    if task_kind(cfg.task) == SEQUENCE:
        return FinetuneResult(bundle, metrics, evaluator.y, val_pred, evaluator.doc_logits(window_logits))
    return FinetuneResult(bundle, metrics, None, val_pred)


def validation_summary(val: dict) -> str:
    if "macro_f1" not in val:
        return f"Validation ROUGE-1/2/L F {val['rouge1']:.3f}/{val['rouge2']:.3f}/{val['rougeL']:.3f} at k = {val['k']}."
    return (f"Validation macro-F1 {val['macro_f1']:.3f} (95% CI {val['macro_f1_ci'][0]:.3f}-{val['macro_f1_ci'][1]:.3f}), "
            f"accuracy {val['accuracy']:.3f}; ECE {val['ece_before']:.3f} before and {val['ece_after']:.3f} after "
            f"temperature scaling (T = {val['temperature']:.2f}).")


def model_card(cfg: FinetuneConfig, metrics: dict, provenance: dict) -> str:
    return "\n".join([
        f"# akhbar {cfg.task} model", "",
        f"Fine-tuned from `{cfg.init_from or cfg.base_model}` by `akhbar train {cfg.task}`.", "",
        f"{validation_summary(metrics['validation'])} Training took {metrics['train_seconds']:.0f} s, "
        f"{metrics['steps']} steps.", "",
        "## Licence", "",
        "The data's licences carry over (see each dataset's PROVENANCE.md); the project's own base is CC BY-NC-SA 4.0.", "",
        "## Provenance", "", "```json", json.dumps(provenance, indent=2), "```", "",
        "## Hyper-parameters", "", "```json", json.dumps(asdict(cfg), indent=2), "```", "",
    ])


def parse_args(argv: list[str]) -> FinetuneConfig:
    """``TASK [--config FILE] [--flag value ...]``: YAML defaults, then command-line overrides."""
    parser = HfArgumentParser(FinetuneConfig, prog="akhbar train", description=__doc__)
    parser.add_argument("--config", default=None, help="YAML file of settings (default: training/configs/TASK.yaml).")
    if argv and not argv[0].startswith("-"):
        argv = ["--task", argv[0], *argv[1:]]
    known = {f.name for f in fields(FinetuneConfig)}
    pre, _ = parser.parse_known_args(argv)
    config_file = Path(pre.config) if pre.config else CONFIG_DIR / f"{pre.task}.yaml"
    if config_file.is_file():
        defaults = yaml.safe_load(config_file.read_text()) or {}
        unknown = sorted(set(defaults) - known)
        if unknown:
            parser.error(f"{config_file}: unknown setting(s) {', '.join(unknown)}")
        parser.set_defaults(**defaults)
    elif pre.config:
        parser.error(f"--config {pre.config}: no such file")
    cfg, _ = parser.parse_args_into_dataclasses(args=argv)
    return cfg


def main(argv: list[str] | None = None) -> int:
    cfg = parse_args(sys.argv[1:] if argv is None else argv)
    result = run(cfg)
    print(json.dumps(result.metrics, indent=2))
    print(f"bundle written to {result.bundle}", file=sys.stderr)
    return 0

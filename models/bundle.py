"""The model bundle: one directory a trained model is saved to and loaded from.

Layout (Hugging Face compatible: ``AutoModel.from_pretrained(bundle)`` loads the encoder)::

    config.json          encoder config; its one label says a classifier pipeline cannot run it
    model.safetensors    encoder weights, plus task heads under ``heads.<task>.``
    tokenizer.json ...   tokenizer files (the normaliser is inside tokenizer.json)
    akhbar.json          tasks, labels, normalisation, lengths, base model, akhbar version
    README.md            model card
    metrics.json         validation/test figures
    <kind>_<task>.json   optional: a side model fused with the encoder (kind: tfidf or
    <kind>_<task>.safetensors   sentence_encoder; see akhbar.models.fusion)

Loading validates everything and refuses, in one sentence naming the bundle and the
problem, a missing file, a pickle-format file, settings that do not parse, or a label
list that does not match its head.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from transformers import AutoConfig, AutoModel, AutoTokenizer, PreTrainedTokenizerBase

from akhbar import __version__
from akhbar.models.fusion import Fusion, load_fusion
from akhbar.models.modeling import AkhbarModel, HeadSpec
from akhbar.models.normalize import NormalizerConfig
from akhbar.models.tasks import KINDS, SENTENCE, SEQUENCE
from akhbar.models.tokenization import applies_normalization

SETTINGS_FILE = "akhbar.json"
WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
TOKENIZER_FILE = "tokenizer.json"
CARD_FILE = "README.md"
METRICS_FILE = "metrics.json"
REQUIRED_FILES = (SETTINGS_FILE, WEIGHTS_FILE, CONFIG_FILE, TOKENIZER_FILE)
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt", ".joblib")
FORMAT_VERSION = 1
HEAD_PREFIX = "heads."
# config.json's only label. transformers picks a sequence classifier by ``model_type`` (bert)
# whatever ``architectures`` says, so `AutoModelForSequenceClassification` and
# `pipeline("text-classification")` load a bundle with a fresh random head; with this label,
# each of their answers says what went wrong, and what to run, instead of a plausible
# LABEL_0. ``AutoModel`` (the encoder alone) and akhbar's own loader ignore it.
NOT_A_CLASSIFIER = (
    "NOT_A_CLASSIFIER: an akhbar bundle; run it with akhbar, or export one task for "
    "transformers with `akhbar models export DIR OUT --format hf --task TASK`"
)


class BundleError(ValueError):
    """A bundle that cannot be saved or loaded; the message names the bundle and the problem."""

    def __init__(self, path: str | Path, problem: str):
        super().__init__(f"model bundle {path}: {problem}")


@dataclass(frozen=True)
class TaskSettings:
    """How one task uses the shared encoder.

    Parameters
    ----------
    kind: ``sequence`` (one label per input) or ``sentence`` (a score per sentence).
    labels: label names in head-output order (``["selected"]`` for sentence tasks).
    temperature: divides the logits before softmax; fitted on validation (calibration).
    low_confidence_threshold: a top probability below this is flagged ``low_confidence``.
    max_length: tokens per window.
    stride: tokens shared by consecutive windows of a long text.
    max_windows: windows per text at most; the rest is reported as truncated.
    evidence_sentences: article sentences a stance model reads per claim.
    lead_prior: sentence tasks: ``lead_prior / (position + 1)`` is added to each sentence's
        score, fitted on validation; 0 keeps the head's ranking, a large value gives Lead-k.
    reads: sequence tasks: the sentence task whose windows this task's head reads ("" = its
        own windows). Then one encoder pass serves both tasks (the service scores topic and
        summary with one pass), and this task's ``max_length``/``stride``/``max_windows``
        are unused. See :mod:`akhbar.training.refit_shared_windows`.
    title_tokens: sentence tasks: every window of an article with a title starts with up to
        this many title tokens (0: no title, as bundles made before this setting), so the
        sentences, and a task that reads these windows, see the headline.
    """

    kind: str
    labels: tuple[str, ...]
    temperature: float = 1.0
    low_confidence_threshold: float = 0.5
    max_length: int = 256
    stride: int = 32
    max_windows: int = 4
    evidence_sentences: int = 4
    lead_prior: float = 0.0
    reads: str = ""
    title_tokens: int = 0

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {', '.join(KINDS)}, got {self.kind!r}")
        if not self.labels or len(set(self.labels)) != len(self.labels):
            raise ValueError("labels must be a non-empty list of distinct names")
        if not self.temperature > 0:
            raise ValueError(f"temperature must be positive, got {self.temperature}")
        if not 0 <= self.low_confidence_threshold <= 1:
            raise ValueError(
                f"low_confidence_threshold must be within 0-1, got {self.low_confidence_threshold}"
            )
        if not 0 <= self.stride < self.max_length:
            raise ValueError(f"stride must be at least 0 and below max_length, got {self.stride}")
        if self.max_windows < 1:
            raise ValueError(f"max_windows must be at least 1, got {self.max_windows}")
        if self.evidence_sentences < 1:
            raise ValueError(
                f"evidence_sentences must be at least 1, got {self.evidence_sentences}"
            )
        if not 0 <= self.lead_prior < float("inf"):
            raise ValueError(
                f"lead_prior must be a finite number of at least 0, got {self.lead_prior}"
            )
        if not 0 <= self.title_tokens <= self.max_length // 4:
            raise ValueError(
                f"title_tokens must be within 0 and a quarter of max_length "
                f"({self.max_length // 4}), got {self.title_tokens}"
            )
        if self.title_tokens and self.kind != SENTENCE:
            raise ValueError(f"only sentence tasks read a title prefix, not a {self.kind} task")
        if self.reads and self.kind != SEQUENCE:
            raise ValueError(
                f"only sequence tasks may read another task's windows, not a {self.kind} task"
            )

    @property
    def head(self) -> HeadSpec:
        return HeadSpec(self.kind, 1 if self.kind == SENTENCE else len(self.labels))


@dataclass(frozen=True)
class BundleSettings:
    """Everything ``akhbar.json`` records; what serving needs to reproduce training exactly."""

    tasks: dict[str, TaskSettings]
    normalization: NormalizerConfig = field(default_factory=NormalizerConfig)
    base_model: str = ""
    akhbar_version: str = __version__
    format_version: int = FORMAT_VERSION

    def __post_init__(self) -> None:
        for name, task in self.tasks.items():
            read = self.tasks.get(task.reads)
            if task.reads and (read is None or read.kind != SENTENCE):
                raise ValueError(
                    f"task {name!r} reads the windows of {task.reads!r}, which is not a sentence "
                    f"task of this bundle"
                )

    def to_dict(self) -> dict[str, Any]:
        return {
            "format_version": self.format_version,
            "akhbar_version": self.akhbar_version,
            "base_model": self.base_model,
            "normalization": self.normalization.to_dict(),
            "tasks": {
                name: {**asdict(t), "labels": list(t.labels)} for name, t in self.tasks.items()
            },
        }

    @classmethod
    def from_dict(cls, data: Any) -> BundleSettings:
        if not isinstance(data, dict):
            raise ValueError("settings must be a JSON object")
        for key in ("tasks", "normalization"):
            if key not in data:
                raise ValueError(f"settings lack {key!r}")
        if data.get("format_version") != FORMAT_VERSION:
            raise ValueError(
                f"format_version {data.get('format_version')!r} is not {FORMAT_VERSION}"
            )
        tasks = data["tasks"]
        if not isinstance(tasks, dict) or not tasks:
            raise ValueError("'tasks' must name at least one task")
        parsed = {}
        for name, raw in tasks.items():
            if not isinstance(raw, dict) or "labels" not in raw or "kind" not in raw:
                raise ValueError(f"task {name!r} lacks 'kind' or 'labels'")
            try:
                parsed[name] = TaskSettings(**{**raw, "labels": tuple(raw["labels"])})
            except TypeError as exc:
                raise ValueError(f"task {name!r}: {exc}") from None
            except ValueError as exc:
                raise ValueError(f"task {name!r}: {exc}") from None
        return cls(
            tasks=parsed,
            normalization=NormalizerConfig.from_dict(data["normalization"]),
            base_model=str(data.get("base_model", "")),
            akhbar_version=str(data.get("akhbar_version", "")),
        )


@dataclass
class Bundle:
    """A loaded bundle: the model (eval mode), its tokenizer and its settings."""

    path: Path
    model: AkhbarModel
    tokenizer: PreTrainedTokenizerBase
    settings: BundleSettings
    metrics: dict = field(default_factory=dict)
    fusions: dict[str, Fusion] = field(default_factory=dict)

    @property
    def tasks(self) -> tuple[str, ...]:
        return tuple(self.settings.tasks)


def save_bundle(
    path: str | Path,
    model: AkhbarModel,
    tokenizer: PreTrainedTokenizerBase,
    settings: BundleSettings,
    card: str = "",
    metrics: dict | None = None,
) -> Path:
    """Write a bundle; the encoder is saved in HF layout, heads beside it in the same file."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    for task, spec in settings.tasks.items():
        if task not in model.heads or model.heads[task].spec != spec.head:
            raise BundleError(
                path, f"task {task!r} in the settings has no matching head in the model"
            )
    model.encoder.config.save_pretrained(path)
    config = json.loads((path / CONFIG_FILE).read_text())
    config |= {"id2label": {"0": NOT_A_CLASSIFIER}, "label2id": {NOT_A_CLASSIFIER: 0}}
    (path / CONFIG_FILE).write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    state = {k: v.detach().contiguous() for k, v in model.encoder.state_dict().items()}
    state.update(
        {f"{HEAD_PREFIX}{k}": v.detach().contiguous() for k, v in model.heads.state_dict().items()}
    )
    save_file(state, str(path / WEIGHTS_FILE), metadata={"format": "pt"})
    tokenizer.save_pretrained(path)
    (path / SETTINGS_FILE).write_text(
        json.dumps(settings.to_dict(), indent=2, ensure_ascii=False) + "\n"
    )
    (path / CARD_FILE).write_text(
        card or f"# akhbar bundle\n\nTasks: {', '.join(settings.tasks)}.\n"
    )
    (path / METRICS_FILE).write_text(json.dumps(metrics or {}, indent=2) + "\n")
    return path


def read_settings(path: str | Path) -> BundleSettings:
    """Parse ``akhbar.json`` alone (cheap: lists and stores use it without loading weights)."""
    path = Path(path)
    settings_file = path / SETTINGS_FILE
    if not settings_file.is_file():
        raise BundleError(path, f"{SETTINGS_FILE} is missing")
    try:
        return BundleSettings.from_dict(json.loads(settings_file.read_text(encoding="utf-8")))
    except json.JSONDecodeError as exc:
        raise BundleError(
            path, f"{SETTINGS_FILE} is not valid JSON ({exc.msg}, line {exc.lineno})"
        ) from None
    except ValueError as exc:
        raise BundleError(path, f"{SETTINGS_FILE} is invalid: {exc}") from None


def check_files(path: Path) -> None:
    if not path.is_dir():
        raise BundleError(path, "is not a directory")
    pickles = sorted(p.name for p in path.iterdir() if p.suffix in PICKLE_SUFFIXES)
    if pickles:
        raise BundleError(
            path, f"holds pickle-format file(s) {', '.join(pickles)}; only safetensors are loaded"
        )
    missing = [name for name in REQUIRED_FILES if not (path / name).is_file()]
    if missing:
        raise BundleError(path, f"lacks {', '.join(missing)}")


def _split_state(path: Path, state: dict[str, torch.Tensor]) -> tuple[dict, dict]:
    encoder = {k: v for k, v in state.items() if not k.startswith(HEAD_PREFIX)}
    heads = {k[len(HEAD_PREFIX) :]: v for k, v in state.items() if k.startswith(HEAD_PREFIX)}
    if not heads:
        raise BundleError(path, f"{WEIGHTS_FILE} holds no task heads")
    return encoder, heads


def _check_heads(path: Path, settings: BundleSettings, heads: dict[str, torch.Tensor]) -> None:
    for task, spec in settings.tasks.items():
        weight = heads.get(f"{task}.out.weight")
        if weight is None:
            raise BundleError(
                path, f"task {task!r} is in {SETTINGS_FILE} but has no head in {WEIGHTS_FILE}"
            )
        if weight.shape[0] != spec.head.n_outputs:
            raise BundleError(
                path,
                f"task {task!r} lists {len(spec.labels)} label(s) but its head has "
                f"{weight.shape[0]} output(s)",
            )
    extra = sorted({k.split(".")[0] for k in heads} - set(settings.tasks))
    if extra:
        raise BundleError(
            path,
            f"{WEIGHTS_FILE} has head(s) {', '.join(extra)} that {SETTINGS_FILE} does not describe",
        )


def _check_tokenizer(
    path: Path, tokenizer: PreTrainedTokenizerBase, settings: BundleSettings, vocab: int
) -> None:
    if not applies_normalization(tokenizer, settings.normalization):
        raise BundleError(
            path, "the tokenizer does not apply the normalisation recorded in akhbar.json"
        )
    if len(tokenizer) > vocab:
        raise BundleError(
            path, f"the tokenizer has {len(tokenizer)} tokens but the encoder only {vocab}"
        )


def load_bundle(path: str | Path) -> Bundle:
    """Load and validate a bundle directory; raises :class:`BundleError` on any problem."""
    path = Path(path)
    check_files(path)
    settings = read_settings(path)
    try:
        state = load_file(str(path / WEIGHTS_FILE))
    except (SafetensorError, OSError) as exc:
        raise BundleError(
            path, f"{WEIGHTS_FILE} cannot be read ({exc}); it may be truncated"
        ) from None
    encoder_state, head_state = _split_state(path, state)
    _check_heads(path, settings, head_state)
    try:
        config = AutoConfig.from_pretrained(path)
        tokenizer = AutoTokenizer.from_pretrained(path)
    except (OSError, ValueError) as exc:
        raise BundleError(path, f"config or tokenizer cannot be loaded ({exc})") from None
    _check_tokenizer(path, tokenizer, settings, config.vocab_size)
    # config.json states the stored dtype (fp16 for shipped bundles); scoring computes in fp32
    # and casts later where a precision asks for it (akhbar.models.precision).
    encoder = AutoModel.from_config(config, dtype=torch.float32)
    model = AkhbarModel(encoder, {t: s.head for t, s in settings.tasks.items()})
    missing, unexpected = encoder.load_state_dict(encoder_state, strict=False)
    missing = [k for k in missing if not k.startswith("pooler.")]
    if missing or unexpected:
        names = ", ".join((missing + unexpected)[:3])
        raise BundleError(path, f"encoder weights do not match config.json (e.g. {names})")
    try:
        model.heads.load_state_dict(head_state, strict=True)
    except RuntimeError as exc:
        raise BundleError(
            path, f"head weights do not match akhbar.json ({str(exc).splitlines()[0]})"
        ) from None
    metrics_file = path / METRICS_FILE
    metrics = json.loads(metrics_file.read_text()) if metrics_file.is_file() else {}
    return Bundle(
        path=path,
        model=model.eval(),
        tokenizer=tokenizer,
        settings=settings,
        metrics=metrics,
        fusions=_load_fusions(path, settings),
    )


def _load_fusions(path: Path, settings: BundleSettings) -> dict[str, Fusion]:
    fusions = {}
    for task, spec in settings.tasks.items():
        try:
            fusion = load_fusion(path, task, settings.normalization)
        except (OSError, KeyError, ValueError, SafetensorError) as exc:
            raise BundleError(
                path, f"the fusion part of task {task!r} cannot be loaded ({exc})"
            ) from None
        if fusion is None:
            continue
        n = len(spec.labels)
        if fusion.weight.shape[0] != n or fusion.stack_weight.shape != (n, 2 * n):
            raise BundleError(
                path, f"the {fusion.kind} part of task {task!r} does not match its {n} label(s)"
            )
        fusions[task] = fusion
    return fusions


__all__ = [
    "SEQUENCE",
    "SENTENCE",
    "Bundle",
    "BundleError",
    "BundleSettings",
    "TaskSettings",
    "load_bundle",
    "read_settings",
    "save_bundle",
]

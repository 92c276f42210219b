"""One task of a bundle, exported to run without akhbar: a Hugging Face checkpoint or ONNX.

Both hold the encoder and the task's head (token ids in, one score per label out) and the
tokenizer (``tokenizer.json``, the Arabic normaliser inside, so raw text goes in as it is):

* ``hf``: ``AutoModelForSequenceClassification`` and ``pipeline("text-classification")`` load
  it with ``trust_remote_code=True`` (the modeling file, :mod:`akhbar.models.hf_modeling`, is
  copied beside the weights: akhbar's heads mean-pool, which no transformers class does). The
  labels are its ``id2label``, and the calibration temperature is folded into the classifier,
  so the pipeline's probabilities are akhbar's.
* ``onnx``: a graph ``onnxruntime`` runs with ``tokenizers`` alone (no torch); ``labels.json``
  holds the labels and the temperature. Needs the ``onnx`` extra.

What akhbar adds around the head (windowing of long articles, the stance evidence sentences, a
fused side model) is in neither; each export's card names those parts and the head's own
validation figure beside the full model's. Topic and stance export; the summary head scores
sentences inside akhbar's sentence windows and does not.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping
from pathlib import Path

import torch
from safetensors.torch import save_file

from akhbar.extras import require
from akhbar.models import hf_modeling
from akhbar.models.bundle import Bundle, BundleError, TaskSettings
from akhbar.models.cards import card_text, export_card_data
from akhbar.models.modeling import AkhbarModel
from akhbar.models.tasks import SEQUENCE, STANCE_HEADS

FORMATS = ("hf", "onnx")
INPUTS = ("input_ids", "attention_mask", "token_type_ids")
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json")
HF_MODELING_FILE = "modeling_akhbar.py"
ONNX_FILE = "model.onnx"
LABELS_FILE = "labels.json"
# What the export's config.json says anew (the bundle's own label is NOT_A_CLASSIFIER).
REPLACED_CONFIG = (
    "model_type",
    "dtype",
    "id2label",
    "label2id",
    "architectures",
    "auto_map",
    "transformers_version",
)
# Stance reads the claim as the first segment and the article's evidence as the second.
PAIRED = set(STANCE_HEADS)
EXAMPLES = {
    "topic": ("أعلن البنك المركزي رفع أسعار الفائدة لكبح التضخم.", None),
    "stance": ("البنك المركزي رفع أسعار الفائدة", "أعلن البنك المركزي رفع أسعار الفائدة."),
    "stance_headline": ("البنك المركزي يرفع الفائدة", "المركزي يرفع أسعار الفائدة"),
}


class SequenceHead(torch.nn.Module):
    """The encoder and one sequence head: what the ONNX graph computes."""

    def __init__(self, model: AkhbarModel, task: str) -> None:
        super().__init__()
        self.model, self.task = model, task

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, token_type_ids: torch.Tensor
    ) -> torch.Tensor:
        hidden = self.model.encode(input_ids, attention_mask, token_type_ids)
        return self.model.sequence_logits(self.task, hidden, attention_mask)


def export(bundle: Bundle, task: str, directory: Path, format: str) -> Path:
    """Write ``task`` of ``bundle`` to ``directory`` (new or empty) in ``format``."""
    settings = _sequence_settings(bundle, task)
    directory.mkdir(parents=True, exist_ok=True)
    if format == "hf":
        _write_hf(bundle, task, settings, directory)
    elif format == "onnx":
        _write_onnx(bundle, task, settings, directory)
    else:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}, got {format!r}")
    for name in TOKENIZER_FILES:
        shutil.copy2(bundle.path / name, directory / name)
    (directory / "README.md").write_text(
        card_text(
            export_card_data(f"akhbar-{task}-{format}", task, bundle.settings.base_model, format),
            _card_body(bundle, task, format),
        )
    )
    return directory


def _sequence_settings(bundle: Bundle, task: str) -> TaskSettings:
    settings = bundle.settings.tasks.get(task)
    if settings is None or settings.kind != SEQUENCE:
        exportable = [t for t, s in bundle.settings.tasks.items() if s.kind == SEQUENCE]
        raise BundleError(
            bundle.path,
            f"has no {task!r} head to export (exportable: {', '.join(exportable)}; "
            "the summary head scores sentences inside akhbar's windows)",
        )
    return settings


def _write_hf(bundle: Bundle, task: str, settings: TaskSettings, directory: Path) -> None:
    """Weights renamed for :class:`~akhbar.models.hf_modeling.AkhbarBertForSequenceClassification`,
    the temperature folded into the classifier, and a config that names the modeling file."""
    encoder = bundle.model.encoder
    kept = {k: v for k, v in encoder.config.to_dict().items() if k not in REPLACED_CONFIG}
    config = hf_modeling.AkhbarBertConfig(
        **kept,
        id2label=dict(enumerate(settings.labels)),
        label2id={label: i for i, label in enumerate(settings.labels)},
        architectures=["AkhbarBertForSequenceClassification"],
        auto_map={
            "AutoConfig": "modeling_akhbar.AkhbarBertConfig",
            "AutoModelForSequenceClassification": (
                "modeling_akhbar.AkhbarBertForSequenceClassification"
            ),
        },
    )
    config.save_pretrained(directory)
    head = bundle.model.heads[task]
    state = {f"bert.{k}": v for k, v in encoder.state_dict().items() if not k.startswith("pooler.")}
    state |= {
        "dense.weight": head.dense.weight,
        "dense.bias": head.dense.bias,
        "classifier.weight": head.out.weight / settings.temperature,
        "classifier.bias": head.out.bias / settings.temperature,
    }
    state = {k: v.detach().float().contiguous() for k, v in state.items()}
    save_file(state, str(directory / "model.safetensors"), metadata={"format": "pt"})
    shutil.copy2(hf_modeling.__file__, directory / HF_MODELING_FILE)


def _write_onnx(bundle: Bundle, task: str, settings: TaskSettings, directory: Path) -> None:
    require("onnxscript", "ONNX export")
    text, pair = EXAMPLES.get(task, EXAMPLES["topic"])
    example = bundle.tokenizer([text, text], [pair, pair] if pair else None, return_tensors="pt")
    export_graph(SequenceHead(bundle.model, task), example, directory / ONNX_FILE, "logits")
    (directory / LABELS_FILE).write_text(
        json.dumps(
            {
                "task": task,
                "labels": list(settings.labels),
                "temperature": settings.temperature,
                "max_length": settings.max_length,
                "pair": task in PAIRED,
            },
            indent=2,
            ensure_ascii=False,
        )
        + "\n"
    )


def export_graph(
    module: torch.nn.Module, example: Mapping[str, torch.Tensor], target: Path, output: str
) -> None:
    """``module`` (token ids, attention mask and token types in; ``output`` out) as one ONNX
    file, exported with the dynamo exporter, its batch and sequence sizes free (up to 512)."""
    batch, sequence = torch.export.Dim("batch"), torch.export.Dim("sequence", max=512)
    torch.onnx.export(
        module.eval(),
        tuple(example[name] for name in INPUTS),
        str(target),
        dynamo=True,
        input_names=list(INPUTS),
        output_names=[output],
        dynamic_shapes={name: {0: batch, 1: sequence} for name in INPUTS},
        external_data=False,  # one file
        verbose=False,
    )


def _usage(task: str, format: str) -> list[str]:
    """The card's example, in Python, for one format."""
    first, second = EXAMPLES.get(task, EXAMPLES["topic"])
    if format == "hf":
        text = f"{{'text': {first!r}, 'text_pair': {second!r}}}" if second else repr(first)
        return [
            "from transformers import pipeline",
            "",
            'classify = pipeline("text-classification", model=".", trust_remote_code=True)',
            f"print(classify({text}, top_k=None))",
        ]
    call = f"tokenizer.encode({first!r}, {second!r})" if second else f"tokenizer.encode({first!r})"
    return [
        "import json",
        "",
        "import numpy as np",
        "import onnxruntime",
        "from tokenizers import Tokenizer",
        "",
        'tokenizer = Tokenizer.from_file("tokenizer.json")',
        'labels = json.load(open("labels.json"))',
        'session = onnxruntime.InferenceSession("model.onnx")',
        f"encoding = {call}",
        "inputs = {",
        '    "input_ids": np.array([encoding.ids], dtype=np.int64),',
        '    "attention_mask": np.array([encoding.attention_mask], dtype=np.int64),',
        '    "token_type_ids": np.array([encoding.type_ids], dtype=np.int64),',
        "}",
        '(logits,) = session.run(["logits"], inputs)',
        'scaled = logits[0] / labels["temperature"]',
        "probs = np.exp(scaled - scaled.max()) / np.exp(scaled - scaled.max()).sum()",
        'print(labels["labels"][int(probs.argmax())], probs.round(3))',
    ]


def _left_out(bundle: Bundle, task: str) -> list[str]:
    """What akhbar adds around the head, with the head's own validation figure."""
    settings = bundle.settings.tasks[task]
    validation = (bundle.metrics.get("tasks", {}).get(task) or {}).get("validation", {})
    fusion = validation.get("fusion") or {}
    lines = [
        f"- **Windowing.** akhbar splits a long text into up to {settings.max_windows} windows of "
        f"{settings.max_length} tokens (stride {settings.stride}) and averages their logits; the "
        "export scores the one sequence it is given.",
    ]
    if settings.reads:
        lines.append(
            f"- **Input.** This head was trained on the {settings.reads} task's sentence windows, "
            "`[CLS] s1 [SEP] s2 [SEP] ...` (each sentence cut at 64 tokens, one segment); give "
            "it an article that way to see what akhbar's head sees."
        )
    if task in PAIRED:
        lines.append(
            "- **Evidence.** akhbar pairs the claim with the article's "
            f"{settings.evidence_sentences} sentences that share most (idf-weighted) words "
            "with it, not the whole article."
        )
    if fusion and fusion.get("side_alone"):
        lines.append(
            f"- **Side model.** akhbar answers {task} with its {fusion['kind']} side model alone: "
            f"on validation it beat this head ({fusion[fusion['kind']]:.3f} against "
            f"{fusion['encoder']:.3f} macro-F1) and every stack of the two, so this head is "
            "not what akhbar's answers come from."
        )
    elif fusion:
        kind = fusion.get("kind", "tfidf")
        lines.append(
            f"- **Side model.** akhbar fuses the head with a {kind} side model "
            f"({'used' if fusion.get('chosen') == 'fused' else 'not used'} by this bundle). "
            f"Validation macro-F1 inside akhbar: head alone {fusion['encoder']:.3f}, fused "
            f"{fusion.get('fused_cv', float('nan')):.3f} (cross-validated)."
        )
    if "macro_f1" in validation:
        lines.append(
            f"- The bundle's own validation macro-F1 for {task}: {validation['macro_f1']:.3f}. "
            "The export alone, fed other inputs than akhbar's windows, was not measured."
        )
    return lines


def _card_body(bundle: Bundle, task: str, format: str) -> str:
    runs_with = {
        "hf": "`transformers` (the modeling file is in this folder, hence `trust_remote_code`)",
        "onnx": "`onnxruntime` and `tokenizers` alone",
    }[format]
    max_length = bundle.settings.tasks[task].max_length
    return "\n".join(
        [
            f"# akhbar {task} head ({format})",
            "",
            f"The {task} head of an akhbar bundle with its encoder, written by `akhbar models "
            f"export --format {format} --task {task}`. It runs with {runs_with}:",
            "",
            "```python",
            *_usage(task, format),
            "```",
            "",
            f"Sequences longer than {max_length} tokens were not seen in training; the encoder "
            "has 512 positions at most.",
            "",
            "## What the export leaves out",
            "",
            *_left_out(bundle, task),
            "",
            "## Licence",
            "",
            "CC BY-NC-SA 4.0, as the bundle it comes from (see its card).",
            "",
        ]
    )

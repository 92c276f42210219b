"""One task of a bundle as an ONNX graph that ``onnxruntime`` runs without akhbar or torch.

The graph is the encoder and the task's head: token ids in, one logit per label out, with the
batch and sequence dimensions left free (up to the encoder's 512 positions). The folder holds
what a caller needs beside it: the tokenizer (``tokenizer.json``, the Arabic normaliser
inside, so raw text goes in as it is), the labels and calibration temperature
(``labels.json``), and a model card with a runnable example. What akhbar adds around the head
(windowing of long articles, the stance evidence sentences, a fused side model) is not in the
graph; the card names each part and the head's own validation figure beside the full model's.

Topic and stance heads export; the summary head scores sentences inside akhbar's sentence
windows and does not. Needs the ``onnx`` extra (``onnx``, ``onnxscript``; ``onnxruntime``
runs the graph).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import torch

from akhbar.extras import require
from akhbar.models.bundle import Bundle, BundleError
from akhbar.models.cards import card_text, export_card_data
from akhbar.models.modeling import AkhbarModel
from akhbar.models.tasks import SEQUENCE

GRAPH_FILE = "model.onnx"
LABELS_FILE = "labels.json"
INPUTS = ("input_ids", "attention_mask", "token_type_ids")
# Stance reads the claim as the first segment and the article's evidence as the second.
PAIRED = {"stance"}
EXAMPLES = {
    "topic": ("أعلن البنك المركزي رفع أسعار الفائدة لكبح التضخم.", None),
    "stance": ("البنك المركزي رفع أسعار الفائدة", "أعلن البنك المركزي رفع أسعار الفائدة."),
}


class SequenceHead(torch.nn.Module):
    """The encoder and one sequence head: what the graph computes."""

    def __init__(self, model: AkhbarModel, task: str) -> None:
        super().__init__()
        self.model, self.task = model, task

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, token_type_ids: torch.Tensor
    ) -> torch.Tensor:
        hidden = self.model.encode(input_ids, attention_mask, token_type_ids)
        return self.model.sequence_logits(self.task, hidden, attention_mask)


def export_onnx(bundle: Bundle, task: str, directory: Path) -> Path:
    """Write ``task`` of ``bundle`` to ``directory`` (new or empty) as an ONNX folder."""
    settings = bundle.settings.tasks.get(task)
    if settings is None or settings.kind != SEQUENCE:
        exportable = [t for t, s in bundle.settings.tasks.items() if s.kind == SEQUENCE]
        raise BundleError(
            bundle.path,
            f"has no {task!r} head to export as ONNX (exportable: {', '.join(exportable)}; "
            "the summary head scores sentences inside akhbar's windows)",
        )
    require("onnxscript", "ONNX export")
    directory.mkdir(parents=True, exist_ok=True)
    text, pair = EXAMPLES.get(task, EXAMPLES["topic"])
    example = bundle.tokenizer([text, text], [pair, pair] if pair else None, return_tensors="pt")
    batch, sequence = torch.export.Dim("batch"), torch.export.Dim("sequence", max=512)
    torch.onnx.export(
        SequenceHead(bundle.model.eval(), task).eval(),
        tuple(example[name] for name in INPUTS),
        str(directory / GRAPH_FILE),
        dynamo=True,
        input_names=list(INPUTS),
        output_names=["logits"],
        dynamic_shapes={name: {0: batch, 1: sequence} for name in INPUTS},
        external_data=False,  # one file
        verbose=False,
    )
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy2(bundle.path / name, directory / name)
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
    (directory / "README.md").write_text(
        card_text(
            export_card_data(f"akhbar-{task}-onnx", task, bundle.settings.base_model, "onnx"),
            export_card_body(bundle, task),
        )
    )
    return directory


def export_card_body(bundle: Bundle, task: str) -> str:
    """The export's card: how to run it, and what it leaves out, with the figures."""
    settings = bundle.settings.tasks[task]
    first, second = EXAMPLES.get(task, EXAMPLES["topic"])
    call = f"tokenizer.encode({first!r}, {second!r})" if second else f"tokenizer.encode({first!r})"
    validation = (bundle.metrics.get("tasks", {}).get(task) or {}).get("validation", {})
    fusion = validation.get("fusion") or {}
    left_out = [
        f"- **Windowing.** akhbar splits a long text into up to {settings.max_windows} windows of "
        f"{settings.max_length} tokens (stride {settings.stride}) and averages their logits; the "
        "graph scores the one sequence it is given.",
    ]
    if task in PAIRED:
        left_out.append(
            "- **Evidence.** akhbar pairs the claim with the article's "
            f"{settings.evidence_sentences} sentences closest to it (a multilingual sentence "
            "encoder chooses them), not the whole article."
        )
    if fusion:
        kind = fusion.get("kind", "tfidf")
        left_out.append(
            f"- **Side model.** akhbar fuses the head with a {kind} side model "
            f"({'used' if fusion.get('chosen') == 'fused' else 'not used'} by this bundle). "
            f"Validation macro-F1 inside akhbar: head alone {fusion['encoder']:.3f}, fused "
            f"{fusion.get('fused_cv', float('nan')):.3f} (cross-validated)."
        )
    if "macro_f1" in validation:
        left_out.append(
            f"- The bundle's own validation macro-F1 for {task}: {validation['macro_f1']:.3f}. "
            "The graph alone, fed other inputs than akhbar's windows, was not measured."
        )
    return "\n".join(
        [
            f"# akhbar {task} head, ONNX",
            "",
            f"The {task} head of an akhbar bundle with its encoder, exported from "
            f"`{bundle.path.name}` by `akhbar models export --format onnx --task {task}`: token "
            "ids in, one logit per label out. It runs with `onnxruntime` and `tokenizers` alone.",
            "",
            "```python",
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
            "```",
            "",
            f"Sequences longer than {settings.max_length} tokens were not seen in training; the "
            "encoder has 512 positions at most.",
            "",
            "## What the graph leaves out",
            "",
            *left_out,
            "",
            "## Licence",
            "",
            "CC BY-NC-SA 4.0, as the bundle it comes from (see its card).",
            "",
        ]
    )

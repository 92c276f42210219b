"""Model cards: Hugging Face front matter (``huggingface_hub``'s ``ModelCardData``) above Markdown.

Every card akhbar writes (the base's, a trained bundle's) takes its metadata from here, so what a
hub shows and tools read has one source: language, licence, library, pipeline, base model,
datasets, tags, and the test figures of ``make eval`` as a ``model-index``. The Markdown below
the front matter is the writer's own (training figures, provenance, hyper-parameters).
"""

from __future__ import annotations

from collections.abc import Iterable

from huggingface_hub import EvalResult, ModelCard, ModelCardData

LANGUAGE = "ar"
# The project's own base and everything fine-tuned from it: non-commercial, share-alike
# (SaudiNewsNet's terms); see LICENSE.
LICENSE = "cc-by-nc-sa-4.0"
TAGS = ("arabic", "news", "akhbar")
# What each task is, in the hub's terms: the pipeline a card names and its task tag.
TASK_TYPES = {
    "topic": ("text-classification", "topic-classification"),
    "stance": ("text-classification", "stance-detection"),
    "stance_headline": ("text-classification", "stance-detection"),
    "summary": ("summarization", "extractive-summarization"),
}


def base_card_data(datasets: Iterable[str]) -> ModelCardData:
    """An encoder loadable with ``AutoModel``: features, not labels."""
    return ModelCardData(
        language=LANGUAGE,
        license=LICENSE,
        library_name="transformers",
        pipeline_tag="feature-extraction",
        datasets=sorted(datasets),
        tags=[*TAGS, "bert"],
    )


def bundle_card_data(
    name: str, tasks: Iterable[str], base_model: str, datasets: Iterable[str]
) -> ModelCardData:
    """A bundle: it runs with akhbar (its heads, windowing and side models are not a
    transformers architecture), so the card names akhbar as its library."""
    tasks = list(tasks)
    return ModelCardData(
        model_name=name,
        language=LANGUAGE,
        license=LICENSE,
        library_name="akhbar",
        pipeline_tag=TASK_TYPES[tasks[0]][0],
        base_model=base_model,
        datasets=sorted(datasets),
        tags=[*TAGS, *(TASK_TYPES[t][1] for t in tasks)],
    )


def export_card_data(name: str, task: str, base_model: str, library: str) -> ModelCardData:
    """One task exported to run without akhbar (``library``: what runs it, e.g. onnx)."""
    return ModelCardData(
        model_name=name,
        language=LANGUAGE,
        license=LICENSE,
        library_name=library,
        pipeline_tag=TASK_TYPES[task][0],
        base_model=base_model,
        tags=[*TAGS, TASK_TYPES[task][1]],
    )


def eval_result(
    task: str, dataset: str, split: str, description: str, metric: str, value: float
) -> EvalResult:
    """One test figure for the ``model-index``: ``metric`` is ``macro_f1`` or ``rougeL``.

    ``description`` says how the figure was measured (split, k or word budget, label set); it
    is also the metric's ``config``, because the hub merges figures on one dataset into one
    entry, and two summary settings on one test split would otherwise look alike."""
    metric_type, metric_name = {"macro_f1": ("f1", "macro-F1"), "rougeL": ("rouge", "ROUGE-L")}[
        metric
    ]
    return EvalResult(
        task_type=TASK_TYPES[task][0],
        task_name=task,
        dataset_type=dataset,
        dataset_name=description,
        dataset_split=split,
        metric_type=metric_type,
        metric_name=metric_name,
        metric_value=round(float(value), 4),
        metric_config=description,
    )


def card_text(data: ModelCardData, body: str) -> str:
    """The README.md of a model: front matter, then ``body``."""
    return str(ModelCard(f"---\n{data.to_yaml()}\n---\n\n{body.lstrip()}"))

"""Stage ``flops``: the model FLOPs each benchmark article costs, counted from the configs.

For every article of the sample (and the median-length article) it builds the same token
windows the service builds (topic windows, summary sentence windows, the claim's stance
windows; :mod:`akhbar.models.windowing`; no topic windows when the topic head reads the
summary windows, as the shipped bundle's does: then topic costs only its head; no stance
windows when the stance side model answers alone, as the shipped one does since 2026-12-07,
for the service then runs no encoder pass for stance) and counts,
per window of ``L`` real tokens, with ``h`` the hidden size, ``i`` the feed-forward size and
``n`` the layers::

    encoder = n · (L · 2 · (4h² + 2h·i)  +  4 · L² · h)
    heads   = 2 · (h² + h · labels)  per window (topic, stance: one pooled vector)
              2 · (h² + h)           per sentence (summary)

``2·4h²`` per token is the Q, K, V and output projections and ``2·2h·i`` the two
feed-forward matrices (a multiply-add counts 2 FLOPs); ``4·L²·h`` is the two attention
products (QKᵀ and the weighted sum of V), each ``L²·h`` multiply-adds per layer. Embedding
look-ups, layer norms, softmax, GELU and biases are left out (element-wise, under 1% at
these sizes), as are the fusion side models (TF-IDF, sentence encoder), which are not
matrix products of the encoder.

These are the useful FLOPs: padding is not counted, so a service that pads its batches
performs more arithmetic than this and the fraction of the compute limit ``run.py``
derives from it is the fraction spent on real tokens.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import load_predictors, read_json, read_jsonl, stage_args, write_json  # noqa: E402

from akhbar.models.inputs import stance_inputs, topic_inputs  # noqa: E402
from akhbar.models.windowing import encode_windows  # noqa: E402


def encoder_flops(length: int, hidden: int, intermediate: int, layers: int) -> int:
    """FLOPs of one encoder pass over ``length`` tokens (see the module docstring)."""
    per_token = 2 * (4 * hidden * hidden + 2 * hidden * intermediate)
    return layers * (length * per_token + 4 * length * length * hidden)


def _shape(predictor) -> tuple[int, int, int]:
    config = predictor.model.encoder.config
    return config.hidden_size, config.intermediate_size, config.num_hidden_layers


def article_cost(article: dict, predictors: dict) -> dict:
    """FLOPs and real tokens per task for one article (one claim per entry of ``claims``)."""
    text, title, claims = article["text"], article.get("title"), article.get("claims") or []
    cost = {"flops": 0, "tokens": {}, "windows": {}}

    def add(task: str, lengths: list[int], head: int) -> None:
        h, i, n = _shape(predictors[task])
        cost["flops"] += sum(encoder_flops(L, h, i, n) for L in lengths) + head
        cost["tokens"][task] = cost["tokens"].get(task, 0) + sum(lengths)
        cost["windows"][task] = cost["windows"].get(task, 0) + len(lengths)

    stance_k = predictors["stance"].bundle.settings.tasks["stance"].evidence_sentences
    topic = predictors["topic"].bundle.settings.tasks["topic"]
    shared = topic.reads == "summary" and predictors["topic"] is predictors["summary"]
    passes = [] if shared else [("topic", topic_inputs([text], [title]), None)]
    stance_fusion = predictors["stance"].bundle.fusions.get("stance")
    if stance_fusion is None or stance_fusion.reads_encoder:
        passes += [("stance", stance_inputs([c], [text], stance_k)[0], [c]) for c in claims]
    for task, inputs, first in passes:
        predictor = predictors[task]
        settings = predictor.bundle.settings.tasks[task]
        windows = encode_windows(
            predictor.bundle.tokenizer,
            inputs,
            settings.max_length,
            settings.stride,
            settings.max_windows,
            first,
        )
        h = _shape(predictor)[0]
        add(
            task,
            [len(f["input_ids"]) for f in windows.features],
            len(windows) * 2 * (h * h + h * len(settings.labels)),
        )

    predictor = predictors["summary"]
    _, windows = predictor.sentence_windows([text], "summary", [title])
    h = _shape(predictor)[0]
    scored = sum(len(index) for index in windows.sentence_index)
    add("summary", [len(f["input_ids"]) for f in windows.features], scored * 2 * (h * h + h))
    if shared:  # the topic head on each summary window's pooled state
        add("topic", [], len(windows) * 2 * (h * h + h * len(topic.labels)))
    return cost


def main() -> int:
    args = stage_args(__doc__.split("\n\n")[0])
    config = read_json(args.config)
    predictors = load_predictors(config["models"], "fp32")  # shapes and tokenizers only
    articles = read_jsonl(config["articles"])
    [median] = read_jsonl(config["median_article"])
    shapes = {
        t: dict(zip(("hidden", "intermediate", "layers"), _shape(p))) for t, p in predictors.items()
    }
    costs = [article_cost(a, predictors) for a in articles]
    write_json(
        args.out,
        {
            "formula": "per window of L tokens: layers * (L * 2 * (4h^2 + 2h*i) + 4 * L^2 * h), "
            "plus task heads",
            "encoder_shapes": shapes,
            "articles": costs,
            "median_article": article_cost(median, predictors),
            "total_gflop": round(sum(c["flops"] for c in costs) / 1e9, 3),
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

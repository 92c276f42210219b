"""Stage ``naive``: the same models, one article at a time, no batching, no padding.

What a script that calls the models directly would do, and the yardstick for what the
service's design adds (adaptive batching across requests, length-sorted batches, one
forward pass over many windows). For each article of the sample, in order:

* topic: the article's topic input (title + body without boilerplate,
  :func:`akhbar.models.inputs.topic_inputs`), its windows, one forward pass per window at
  the window's own length, window logits averaged, the bundle's fusion part, softmax. When
  the topic head reads the summary windows (the shipped bundle), its windows are those,
  passed through the encoder for topic alone, as a script calling topic and summary
  separately would;
* summary: its candidate sentences packed into sentence windows, one forward pass each,
  the top ``k`` sentences (the service's default, ``AKHBAR_SUMMARY_SENTENCES``);
* stance: the claim (the title) with its evidence sentences, one pass per window, fusion;
  no pass where the side model answers alone (the shipped article stance since 2026-12-07),
  which the service skips too: that pass is not part of the model's answer.

The inputs (windows and their tokens) are built by the same functions the service's
:class:`~akhbar.models.predict.Predictor` calls, so both compute the same thing: most
articles fit one window per task, i.e. three forward passes. ``torch.inference_mode``, the
same bundles and tokenizer, the scoring configuration's torch threads for one process
(:mod:`akhbar.serving.core.config`: ``AKHBAR_TORCH_THREADS``, by default every usable core,
which the service's workers share out among themselves) and, explicitly, fp32, the
arithmetic the models were trained in, so ``service_vs_naive`` compares against one fixed
yardstick.
When the service computes in another precision, the loop runs a second time in that
precision, so the report can say how much of the service's lead is arithmetic and how much
is its design. Model loading is timed apart; articles/s counts scoring only.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import torch
from scipy.special import softmax

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (  # noqa: E402
    load_predictors,
    log,
    percentiles_ms,
    read_json,
    read_jsonl,
    service_settings,
    stage_args,
    write_json,
)

from akhbar.models.inputs import stance_inputs, topic_inputs  # noqa: E402
from akhbar.models.predict import pick_sentences, with_lead_prior  # noqa: E402
from akhbar.models.windowing import encode_windows, pool_logits  # noqa: E402

BASELINE_PRECISION = "fp32"  # the yardstick, whatever the service computes in


def _tensors(feature: dict) -> dict[str, torch.Tensor]:
    return {k: torch.tensor([v]) for k, v in feature.items()}


def _label(
    predictor,
    task: str,
    texts: list[str],
    first: list[str] | None,
    article: str | None = None,
    title: str | None = None,
) -> tuple[str, int]:
    """One text's label (windows one at a time); returns (label, forward passes).

    ``article`` and ``title``: the raw text and its title, whose sentence windows a task that
    ``reads`` them scores."""
    settings = predictor.bundle.settings.tasks[task]
    model, tokenizer = predictor.model, predictor.bundle.tokenizer
    fusion = predictor.bundle.fusions.get(task)
    if fusion is not None and not fusion.reads_encoder:
        # The side model answers alone (the shipped article stance): the model has no encoder
        # pass to run, naive or not.
        logits, passes = np.zeros((len(texts), len(settings.labels))), 0
    else:
        if settings.reads:
            _, windows = predictor.sentence_windows([article], settings.reads, [title])
        else:
            windows = encode_windows(
                tokenizer, texts, settings.max_length, settings.stride, settings.max_windows, first
            )
        rows = []
        for feature in windows.features:
            t = _tensors(feature)
            hidden = predictor.encode(t)
            rows.append(model.sequence_logits(task, hidden, t["attention_mask"]).numpy()[0])
        logits, passes = pool_logits(np.stack(rows), windows.doc_index, len(texts)), len(windows)
    if fusion is not None:
        logits = fusion.fuse(logits, texts, first)
    probs = softmax(logits / settings.temperature, axis=1)[0]
    return settings.labels[int(probs.argmax())], passes


def _summary(
    predictor, text: str, title: str | None, k: int, task: str = "summary"
) -> tuple[tuple[int, ...], int]:
    settings, model = predictor.bundle.settings.tasks[task], predictor.model
    [sentences], windows = predictor.sentence_windows([text], task, [title])
    scores = np.full(len(sentences), -np.inf)
    for feature, index in zip(windows.features, windows.sentence_index):
        t = _tensors(feature)
        hidden = predictor.encode(t)
        logits = model.sentence_logits(task, hidden, t["sentence_ids"]).numpy()[0]
        scores[index] = logits[: len(index)]
    scores = with_lead_prior(scores, settings.lead_prior)  # as Predictor.sentence_scores does
    pick = pick_sentences(sentences, scores, k, None, bool(windows.dropped[0]))
    return pick.indices, len(windows)


@torch.inference_mode()
def score(article: dict, predictors: dict, k: int) -> dict:
    """Topic, a ``k``-sentence summary and the stance toward each claim of one article."""
    text, title, claims = article["text"], article.get("title"), article.get("claims") or []
    topic, passes = _label(
        predictors["topic"], "topic", topic_inputs([text], [title]), None, text, title
    )
    indices, n = _summary(predictors["summary"], text, title, k)
    passes += n
    stances = []
    for claim in claims:
        k = predictors["stance"].bundle.settings.tasks["stance"].evidence_sentences
        inputs, _evidence = stance_inputs([claim], [text], k)
        label, n = _label(predictors["stance"], "stance", inputs, [claim])
        stances.append(label)
        passes += n
    return {"topic": topic, "stances": stances, "summary": list(indices), "passes": passes}


def run(articles: list[dict], models: dict, precision: str, k: int, warmup: int) -> dict:
    """Every article once, in order, at ``precision``, ``k`` summary sentences: throughput,
    latency, answers."""
    started = time.perf_counter()
    predictors = load_predictors(models, precision=precision)
    load_s = time.perf_counter() - started
    for article in articles[:warmup]:  # first calls allocate; not timed
        score(article, predictors, k)
    latencies, results = [], []
    wall0 = time.perf_counter()
    for i, article in enumerate(articles):
        start = time.perf_counter()
        result = score(article, predictors, k)
        latencies.append(time.perf_counter() - start)
        results.append({"i": i, **result})
    wall = time.perf_counter() - wall0
    passes = [r["passes"] for r in results]
    log(
        "naive",
        f"{precision}: {len(articles)} articles in {wall:.1f} s, "
        f"{len(articles) / wall:.2f} articles/s",
    )
    return {
        "precision": precision,
        "articles": len(articles),
        "load_s": round(load_s, 2),
        "wall_s": round(wall, 3),
        "articles_per_s": round(len(articles) / wall, 3),
        "latency_ms": percentiles_ms(latencies),
        "torch_threads": torch.get_num_threads(),
        "forward_passes": {
            "total": int(sum(passes)),
            "per_article_mean": round(float(np.mean(passes)), 2),
            "articles_with_exactly_3": int(sum(p == 3 for p in passes)),
        },
        "results": results,
    }


def main() -> int:
    args = stage_args(__doc__.split("\n\n")[0])
    config = read_json(args.config)
    articles = read_jsonl(config["articles"])
    warmup = config.get("naive_warmup", 2)
    runtime = service_settings(
        config.get("server_env", {})
    ).scoring.runtime()  # one process, every usable core
    runtime.apply()
    summary_k = runtime.summary_sentences
    result = run(articles, config["models"], BASELINE_PRECISION, summary_k, warmup)
    if config["precision"] != BASELINE_PRECISION:
        other = run(articles, config["models"], config["precision"], summary_k, warmup)
        result["at_service_precision"] = {
            k: other[k] for k in ("precision", "articles_per_s", "latency_ms")
        }
    write_json(args.out, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Labelled training examples: each task's records as the encoder windows it trains on.

Inputs are built by the same functions the Predictor serves with (:mod:`akhbar.models.inputs`,
:mod:`akhbar.models.windowing`), so a model trains on exactly what it will be given.
"""

from __future__ import annotations

from transformers import PreTrainedTokenizerBase

from akhbar.models.inputs import candidate_sentences, stance_inputs, topic_inputs
from akhbar.models.sentences import Sentence
from akhbar.models.windowing import (
    SentenceWindows,
    Windows,
    encode_sentence_windows,
    encode_windows,
)
from akhbar.training.finetune_config import FinetuneConfig
from akhbar.training.rouge import greedy_oracle


def sequence_inputs(cfg: FinetuneConfig, records: list[dict]) -> tuple[list[str], list[str] | None]:
    """(texts, first segments) for a sequence task: title + text (topic),
    or claim and its evidence (stance)."""
    if cfg.task == "topic":
        return topic_inputs([r["text"] for r in records], [r.get("title") for r in records]), None
    claims = [r["claim"] for r in records]
    return stance_inputs(claims, [r["text"] for r in records], cfg.evidence_sentences)[0], claims


def sequence_dataset(
    cfg: FinetuneConfig,
    tokenizer: PreTrainedTokenizerBase,
    records: list[dict],
    label_ids: list[int],
    max_windows: int,
) -> tuple[list[dict], Windows]:
    """Up to ``max_windows`` windows per record, each labelled with its record's label id."""
    texts, first = sequence_inputs(cfg, records)
    windows = encode_windows(tokenizer, texts, cfg.max_length, cfg.stride, max_windows, first)
    rows = [{**f, "labels": label_ids[d]} for f, d in zip(windows.features, windows.doc_index)]
    return rows, windows


def references(record: dict) -> list[str]:
    """A summary record's reference summaries (one or several)."""
    return record.get("summaries") or [record["summary"]]


def summary_dataset(
    cfg: FinetuneConfig, tokenizer: PreTrainedTokenizerBase, records: list[dict]
) -> tuple[list[dict], SentenceWindows, list[list[Sentence]]]:
    """Sentence windows labelled 1 where the greedy ROUGE oracle picks the sentence."""
    docs = [candidate_sentences(r["text"]) for r in records]
    windows = encode_sentence_windows(
        tokenizer,
        [[s.text for s in d] for d in docs],
        cfg.max_length,
        cfg.max_windows,
        titles=[r.get("title") for r in records],
        title_tokens=cfg.title_tokens,
    )
    chosen = [
        set(greedy_oracle([s.text for s in d], references(r), cfg.oracle_sentences))
        for d, r in zip(docs, records)
    ]
    rows = [
        {**f, "labels": [int(i in chosen[d]) for i in index]}
        for f, d, index in zip(windows.features, windows.doc_index, windows.sentence_index)
    ]
    return rows, windows, docs

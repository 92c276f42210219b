"""Batched inference for a loaded bundle: the one scoring path for evaluation, the HTTP
service and the batch scorer.

Inputs are built by :mod:`akhbar.models.inputs` exactly as in training; windows are
sorted by length before batching so padding stays small; probabilities are
temperature-calibrated with the temperature stored in the bundle.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from scipy.special import softmax

from akhbar.models.bundle import Bundle
from akhbar.models.inputs import stance_inputs, summary_sentences, topic_inputs
from akhbar.models.sentences import Sentence
from akhbar.models.tasks import SENTENCE, SEQUENCE
from akhbar.models.windowing import (
    encode_sentence_windows,
    encode_windows,
    pad_features,
    pool_logits,
)


@dataclass
class LabelPrediction:
    """A calibrated label distribution; ``truncated`` when the text exceeded its windows."""

    label: str
    scores: dict[str, float]
    low_confidence: bool
    truncated: bool = False


@dataclass
class StancePrediction(LabelPrediction):
    claim: str = ""
    evidence: tuple[Sentence, ...] = ()


@dataclass
class SummaryPrediction:
    """Chosen sentences in article order, with their index among the article's sentences."""

    sentences: tuple[Sentence, ...]
    indices: tuple[int, ...]
    truncated: bool = False


class Predictor:
    """Score articles with one bundle.

    Parameters
    ----------
    bundle: a loaded bundle (see :func:`akhbar.models.bundle.load_bundle`).
    batch_size: windows per forward pass.
    """

    def __init__(self, bundle: Bundle, batch_size: int = 32):
        self.bundle, self.batch_size = bundle, batch_size
        self.model = bundle.model.eval()

    def _settings(self, task: str, kind: str):
        settings = self.bundle.settings.tasks.get(task)
        if settings is None or settings.kind != kind:
            raise ValueError(f"bundle {self.bundle.path} has no {kind} task {task!r}")
        return settings

    @torch.inference_mode()
    def _forward(self, task: str, features: list[dict]) -> list[np.ndarray]:
        """Logits per window, in input order; batches are formed in length order."""
        order = sorted(range(len(features)), key=lambda i: len(features[i]["input_ids"]))
        out: list[np.ndarray] = [np.empty(0)] * len(features)
        for start in range(0, len(order), self.batch_size):
            chunk = order[start : start + self.batch_size]
            batch = pad_features([features[i] for i in chunk], self.bundle.tokenizer.pad_token_id)
            hidden = self.model.encode(batch["input_ids"], batch["attention_mask"], batch.get("token_type_ids"))
            if "sentence_ids" not in batch:
                rows = list(self.model.sequence_logits(task, hidden, batch["attention_mask"]).float().numpy())
            else:
                logits = self.model.sentence_logits(task, hidden, batch["sentence_ids"]).float().numpy()
                rows = [row[: int(s.max()) + 1] for row, s in zip(logits.reshape(len(chunk), -1), batch["sentence_ids"])]
            for i, row in zip(chunk, rows):
                out[i] = row
        return out

    def encoder_logits(self, task: str, texts: list[str], first: list[str] | None = None) -> tuple[np.ndarray, list[bool]]:
        """The encoder's logits per text (windows pooled; before any fusion), and which texts were truncated."""
        settings = self._settings(task, SEQUENCE)
        windows = encode_windows(self.bundle.tokenizer, texts, settings.max_length, settings.stride,
                                 settings.max_windows, first)
        logits = np.stack(self._forward(task, windows.features)) if len(windows) else np.zeros((0, len(settings.labels)))
        return pool_logits(logits, windows.doc_index, len(texts)), list(windows.truncated)

    def _classify(self, task: str, texts: list[str], first: list[str] | None = None) -> list[LabelPrediction]:
        settings = self._settings(task, SEQUENCE)
        if not texts:
            return []
        pooled, truncation = self.encoder_logits(task, texts, first)
        fusion = self.bundle.fusions.get(task)
        if fusion is not None:
            pooled = fusion.fuse(pooled, texts, first)
        probs = softmax(pooled / settings.temperature, axis=1)
        results = []
        for row, truncated in zip(probs, truncation):
            best = int(row.argmax())
            results.append(LabelPrediction(
                label=settings.labels[best],
                scores={name: float(p) for name, p in zip(settings.labels, row)},
                low_confidence=bool(row[best] < settings.low_confidence_threshold),
                truncated=truncated,
            ))
        return results

    def topic(self, texts: Sequence[str], titles: Sequence[str | None] | None = None, task: str = "topic") -> list[LabelPrediction]:
        titles = titles or [None] * len(texts)
        return self._classify(task, topic_inputs(texts, titles))

    def stance(self, claims: Sequence[str], texts: Sequence[str], task: str = "stance") -> list[StancePrediction]:
        """One prediction per (claim, article) pair, with the evidence sentences used."""
        inputs, evidence = stance_inputs(claims, texts, self._settings(task, SEQUENCE).evidence_sentences)
        preds = self._classify(task, inputs, list(claims))
        return [StancePrediction(**vars(p), claim=c, evidence=e.sentences) for p, c, e in zip(preds, claims, evidence)]

    def sentence_scores(self, texts: Sequence[str], task: str = "summary") -> list[tuple[list[Sentence], np.ndarray, bool]]:
        """Every candidate sentence of each text with its score (-inf where it did not fit)."""
        settings = self._settings(task, SENTENCE)
        docs = [summary_sentences(t) for t in texts]
        windows = encode_sentence_windows(self.bundle.tokenizer, [[s.text for s in d] for d in docs],
                                          settings.max_length, settings.max_windows)
        scores = [np.full(len(d), -np.inf) for d in docs]
        for doc, index, logits in zip(windows.doc_index, windows.sentence_index, self._forward(task, windows.features)):
            scores[doc][index] = logits[: len(index)]
        return [(d, with_lead_prior(s, settings.lead_prior), bool(dropped))
                for d, s, dropped in zip(docs, scores, windows.dropped)]

    def summary(self, texts: Sequence[str], k: int = 2, max_words: int | None = None,
                task: str = "summary") -> list[SummaryPrediction]:
        return [pick_sentences(sentences, scores, k, max_words, truncated)
                for sentences, scores, truncated in self.sentence_scores(texts, task)]


def with_lead_prior(scores: np.ndarray, prior: float) -> np.ndarray:
    """Scores plus ``prior / (position + 1)``: 0 keeps the head's ranking, a large prior gives Lead-k.

    News puts its point first; the prior lets validation decide how much to trust that.
    """
    return scores + prior / np.arange(1, len(scores) + 1)


def pick_sentences(sentences: list[Sentence], scores: np.ndarray, k: int, max_words: int | None = None,
                   truncated: bool = False) -> SummaryPrediction:
    """The ``k`` best-scoring sentences (all when fewer), within ``max_words`` when given
    (the best sentence is always kept), returned in article order."""
    ranked = sorted(range(len(sentences)), key=lambda i: (-scores[i], i))[:k]
    if max_words is not None:
        kept, words = [], 0
        for i in ranked:
            n = len(sentences[i].text.split())
            if kept and words + n > max_words:
                continue
            kept.append(i)
            words += n
        ranked = kept
    chosen = sorted(ranked)
    return SummaryPrediction(tuple(sentences[i] for i in chosen), tuple(chosen), truncated)

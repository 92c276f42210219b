"""Batched inference for a loaded bundle: the one scoring path for evaluation, the HTTP
service and the batch scorer.

Inputs are built by :mod:`akhbar.models.inputs` exactly as in training; windows are
sorted by length before batching so padding stays small; probabilities are
temperature-calibrated with the temperature stored in the bundle.

The encoder may run in a lower precision than it was trained in (``precision``, see
:mod:`akhbar.models.precision`); task heads and fusions stay fp32. The default is fp32, the
reference training and evaluation score with; the service and the batch scorer pass the
precision their configuration resolved (:mod:`akhbar.serving.core.config`).
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass

import numpy as np
import torch
from scipy.special import softmax

from akhbar.models.bundle import Bundle
from akhbar.models.inputs import candidate_sentences, stance_head, stance_inputs, topic_inputs
from akhbar.models.modeling import mean_pool
from akhbar.models.ort_encoder import OrtEncoder
from akhbar.models.precision import COMPUTED, INT8
from akhbar.models.sentences import Sentence
from akhbar.models.stages import stage
from akhbar.models.tasks import SENTENCE, SEQUENCE, STANCE_HEADS
from akhbar.models.windowing import (
    SentenceWindows,
    Windows,
    encode_sentence_windows,
    encode_windows,
    pad_features,
    pool_logits,
)

# Inference pads each batch to a multiple of this many tokens. Every distinct input shape
# costs memory in the CPU kernels' caches that is never given back: scoring batches of real
# articles at any width, a process grew from 957 to 1,732 MiB in 400 batches and kept
# growing; at multiples of 32 it stayed at 1,030 MiB after 125, for about 2 % more time.
WIDTH_MULTIPLE = 32


@dataclass
class LabelPrediction:
    """A calibrated label distribution; ``truncated`` when the text exceeded its windows."""

    label: str
    scores: dict[str, float]
    low_confidence: bool
    truncated: bool = False


@dataclass
class StancePrediction(LabelPrediction):
    """``label_set`` names the head's labels (:data:`~akhbar.models.tasks.STANCE_HEADS`)."""

    claim: str = ""
    evidence: tuple[Sentence, ...] = ()
    label_set: str = STANCE_HEADS["stance"]


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
    batch_size: windows per forward pass; one for the int8 precisions (see below).
    precision: the encoder's arithmetic, one of :data:`~akhbar.models.precision.COMPUTED`
        (``auto`` is resolved before, with :func:`~akhbar.models.precision.resolve_precision`);
        ``fp32`` = as trained.
    device: where the model runs, ``cpu`` or a CUDA device (``cuda``, ``cuda:1``); int8 and
        onnx-int8 run on the CPU only.
    """

    def __init__(
        self, bundle: Bundle, batch_size: int = 32, precision: str = "fp32", device: str = "cpu"
    ):
        if precision not in COMPUTED:
            raise ValueError(
                f"precision must be one of {', '.join(COMPUTED)} (resolve 'auto' with "
                f"akhbar.models.precision.resolve_precision), got {precision!r}"
            )
        self.device = torch.device(device)
        if self.device.type != "cpu" and precision in INT8:
            raise ValueError(f"precision {precision} runs on the CPU only, not on {device}")
        self.bundle, self.precision = bundle, precision
        # int8 quantises a pass's activations with one scale for the whole pass, so a window
        # would score differently beside others than alone (make bench, 2026-12-07: 2.2% of
        # stance labels changed with the articles batched around it). A window per pass keeps
        # every answer independent of the traffic around it, and cost nothing: 16 callers got
        # 13.5 articles/s with a window per pass against 13.2 with batched passes.
        self.batch_size = 1 if precision in INT8 else batch_size
        self.model = bundle.model.eval().to(self.device)
        self.ort_encoder = (
            OrtEncoder(bundle, torch.get_num_threads()) if precision == "onnx-int8" else None
        )
        if self.precision == "int8":
            with warnings.catch_warnings():  # torch.ao's deprecation notice points at torchao
                warnings.simplefilter("ignore")
                self.model = torch.ao.quantization.quantize_dynamic(
                    copy.deepcopy(self.model), {torch.nn.Linear}, dtype=torch.qint8
                )

    def encode(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Hidden states in fp32, whatever precision the encoder computed in."""
        bf16 = (
            torch.autocast(self.device.type, dtype=torch.bfloat16)
            if self.precision == "bf16"
            else nullcontext()
        )
        encode = self.ort_encoder or self.model.encode
        with bf16:
            hidden = encode(
                batch["input_ids"], batch["attention_mask"], batch.get("token_type_ids")
            )
        return hidden.float()

    def _settings(self, task: str, kind: str):
        settings = self.bundle.settings.tasks.get(task)
        if settings is None or settings.kind != kind:
            raise ValueError(f"bundle {self.bundle.path} has no {kind} task {task!r}")
        return settings

    @torch.inference_mode()
    def _forward(
        self, features: list[dict], heads: Sequence[str], pooled: bool = False
    ) -> tuple[list[dict[str, np.ndarray]], np.ndarray | None]:
        """One encoder pass over ``features`` (windows): per window, in input order, the logits
        of each head in ``heads``, and with ``pooled`` the windows' mean-pooled hidden states
        (what a sequence head reads). Batches are formed in length order."""
        order = sorted(range(len(features)), key=lambda i: len(features[i]["input_ids"]))
        out: list[dict[str, np.ndarray]] = [{} for _ in features]
        states = (
            np.zeros((len(features), self.model.encoder.config.hidden_size), np.float32)
            if pooled
            else None
        )
        for start in range(0, len(order), self.batch_size):
            chunk = order[start : start + self.batch_size]
            with stage("preprocess"):
                batch = pad_features(
                    [features[i] for i in chunk],
                    self.bundle.tokenizer.pad_token_id,
                    WIDTH_MULTIPLE,
                    self.model.encoder.config.max_position_embeddings,
                )
            with stage("encoder"):  # and the heads, which read its hidden states
                batch = {key: value.to(self.device) for key, value in batch.items()}
                hidden = self.encode(batch)
                if states is not None:
                    states[chunk] = mean_pool(hidden, batch["attention_mask"]).cpu().numpy()
                for task in heads:
                    if self.bundle.settings.tasks[task].kind == SEQUENCE:
                        rows = list(
                            self.model.sequence_logits(task, hidden, batch["attention_mask"])
                            .cpu()
                            .numpy()
                        )
                    else:
                        logits = (
                            self.model.sentence_logits(task, hidden, batch["sentence_ids"])
                            .cpu()
                            .numpy()
                        )
                        rows = [
                            row[: int(s.max()) + 1]
                            for row, s in zip(logits.reshape(len(chunk), -1), batch["sentence_ids"])
                        ]
                    for i, row in zip(chunk, rows):
                        out[i][task] = row
        return out, states

    def window_states(self, features: list[dict]) -> np.ndarray:
        """The mean-pooled hidden state of each window (what a sequence head reads),
        (windows, hidden)."""
        return self._forward(features, (), pooled=True)[1]

    def encoder_logits(
        self, task: str, texts: list[str], first: list[str] | None = None
    ) -> tuple[np.ndarray, list[bool]]:
        """The encoder's logits per text (windows pooled; before any fusion), and which texts
        were truncated, for a task that reads its own windows of ``texts``."""
        windows = self._windows(task, texts, first)
        return self._pooled_logits(task, windows, len(texts)), list(windows.truncated)

    def _windows(self, task: str, texts: list[str], first: list[str] | None) -> Windows:
        settings = self._settings(task, SEQUENCE)
        if settings.reads:
            raise ValueError(
                f"task {task!r} reads the {settings.reads} windows of the article; score it with "
                "topic() or sentence_pass()"
            )
        with stage("preprocess"):
            return encode_windows(
                self.bundle.tokenizer,
                texts,
                settings.max_length,
                settings.stride,
                settings.max_windows,
                first,
            )

    def _pooled_logits(self, task: str, windows: Windows, n_texts: int) -> np.ndarray:
        rows, _ = self._forward(windows.features, (task,))
        n_labels = len(self.bundle.settings.tasks[task].labels)
        logits = np.stack([r[task] for r in rows]) if rows else np.zeros((0, n_labels))
        return pool_logits(logits, windows.doc_index, n_texts)

    def sentence_windows(
        self,
        texts: Sequence[str],
        task: str = "summary",
        titles: Sequence[str | None] | None = None,
    ) -> tuple[list[list[Sentence]], SentenceWindows]:
        """Each text's candidate sentences and the windows the sentence task ``task`` reads
        (starting with the title where the task reads one: ``title_tokens``)."""
        settings = self._settings(task, SENTENCE)
        with stage("preprocess"):
            docs = [candidate_sentences(t) for t in texts]
            windows = encode_sentence_windows(
                self.bundle.tokenizer,
                [[s.text for s in d] for d in docs],
                settings.max_length,
                settings.max_windows,
                titles=titles,
                title_tokens=settings.title_tokens,
            )
        return docs, windows

    def sentence_pass(
        self,
        texts: Sequence[str],
        task: str = "summary",
        also: Sequence[str] = (),
        titles: Sequence[str | None] | None = None,
    ) -> tuple[list[tuple[list[Sentence], np.ndarray, bool]], dict[str, np.ndarray]]:
        """One encoder pass over each text's sentence windows: every candidate sentence with its
        ``task`` score (-inf where it did not fit; lead prior added) and whether sentences were
        dropped, plus the pooled logits of each sequence task in ``also`` that reads these
        windows."""
        settings = self._settings(task, SENTENCE)
        for other in also:
            if self._settings(other, SEQUENCE).reads != task:
                raise ValueError(f"task {other!r} does not read the {task} windows")
        docs, windows = self.sentence_windows(texts, task, titles)
        rows, _ = self._forward(windows.features, (task, *also))
        scores = [np.full(len(d), -np.inf) for d in docs]
        for doc, index, row in zip(windows.doc_index, windows.sentence_index, rows):
            scores[doc][index] = row[task][: len(index)]
        scored = [
            (d, with_lead_prior(s, settings.lead_prior), bool(dropped))
            for d, s, dropped in zip(docs, scores, windows.dropped)
        ]
        pooled = {}
        for other in also:
            n_labels = len(self.bundle.settings.tasks[other].labels)
            logits = np.stack([r[other] for r in rows]) if rows else np.zeros((0, n_labels))
            pooled[other] = pool_logits(logits, windows.doc_index, len(docs))
        return scored, pooled

    def _labels(
        self,
        task: str,
        logits: np.ndarray,
        truncation: Sequence[bool],
        texts: list[str],
        first: list[str] | None = None,
    ) -> list[LabelPrediction]:
        """Fusion (on the task's input ``texts``),
        calibration and labels from the encoder's pooled logits."""
        settings = self._settings(task, SEQUENCE)
        fusion = self.bundle.fusions.get(task)
        if fusion is not None:
            with stage("side_models"):
                logits = fusion.fuse(logits, texts, first)
        probs = softmax(logits / settings.temperature, axis=1)
        results = []
        for row, truncated in zip(probs, truncation):
            best = int(row.argmax())
            results.append(
                LabelPrediction(
                    label=settings.labels[best],
                    scores={name: float(p) for name, p in zip(settings.labels, row)},
                    low_confidence=bool(row[best] < settings.low_confidence_threshold),
                    truncated=bool(truncated),
                )
            )
        return results

    def _classify(
        self, task: str, texts: list[str], first: list[str] | None = None
    ) -> list[LabelPrediction]:
        if not texts:
            return []
        windows = self._windows(task, texts, first)
        fusion = self.bundle.fusions.get(task)
        if fusion is None or fusion.reads_encoder:
            logits = self._pooled_logits(task, windows, len(texts))
        else:  # the side model answers alone: the encoder pass would be thrown away
            logits = np.zeros((len(texts), len(self._settings(task, SEQUENCE).labels)), np.float32)
        return self._labels(task, logits, list(windows.truncated), texts, first)

    def topic(
        self, texts: Sequence[str], titles: Sequence[str | None] | None = None, task: str = "topic"
    ) -> list[LabelPrediction]:
        return self.topic_and_sentences(texts, titles, task, None)[0]

    def topic_and_sentences(
        self,
        texts: Sequence[str],
        titles: Sequence[str | None] | None = None,
        task: str = "topic",
        sentence_task: str | None = "summary",
    ) -> tuple[list[LabelPrediction], list[tuple[list[Sentence], np.ndarray, bool]]]:
        """Topic predictions and, unless ``sentence_task`` is None, sentence scores
        (:meth:`sentence_scores`); one encoder pass serves both when the topic head reads that
        task's windows (``reads`` in its settings)."""
        titles = titles or [None] * len(texts)
        with stage("preprocess"):
            inputs = topic_inputs(texts, titles)
        reads = self._settings(task, SEQUENCE).reads
        if not texts:
            return [], []
        if not reads:
            topics = self._classify(task, inputs)
            return topics, (
                self.sentence_scores(texts, sentence_task, titles) if sentence_task else []
            )
        scored, pooled = self.sentence_pass(texts, reads, (task,), titles)
        topics = self._labels(task, pooled[task], [dropped for _, _, dropped in scored], inputs)
        if sentence_task is None:
            return topics, []
        return topics, scored if sentence_task == reads else self.sentence_scores(
            texts, sentence_task, titles
        )

    def stance(self, claims: Sequence[str], texts: Sequence[str]) -> list[StancePrediction]:
        """One prediction per (claim, article) pair, with the evidence sentences used.

        Each pair goes to the head :func:`~akhbar.models.inputs.stance_head` chooses (a
        headline or single sentence to ``stance_headline`` where the bundle has it, an article
        to ``stance``), and its prediction says which label set it is in.
        """
        heads = [stance_head(t, self.bundle.settings.tasks) for t in texts]
        answers: dict[int, StancePrediction] = {}
        for head in dict.fromkeys(heads):
            rows = [i for i, h in enumerate(heads) if h == head]
            pair_claims = [claims[i] for i in rows]
            k = self._settings(head, SEQUENCE).evidence_sentences
            with stage("preprocess"):
                inputs, evidence = stance_inputs(pair_claims, [texts[i] for i in rows], k)
            preds = self._classify(head, inputs, pair_claims)
            for i, p, c, e in zip(rows, preds, pair_claims, evidence, strict=True):
                answers[i] = StancePrediction(
                    **vars(p), claim=c, evidence=e.sentences, label_set=STANCE_HEADS[head]
                )
        return [answers[i] for i in range(len(texts))]

    def sentence_scores(
        self,
        texts: Sequence[str],
        task: str = "summary",
        titles: Sequence[str | None] | None = None,
    ) -> list[tuple[list[Sentence], np.ndarray, bool]]:
        """Every candidate sentence of each text with its score (-inf where it did not fit)."""
        return self.sentence_pass(texts, task, titles=titles)[0]

    def summary(
        self,
        texts: Sequence[str],
        k: int,
        max_words: int | None = None,
        task: str = "summary",
        titles: Sequence[str | None] | None = None,
    ) -> list[SummaryPrediction]:
        """The ``k`` best sentences of each text (:func:`pick_sentences`); no default, because the
        service's k is a setting (``AKHBAR_SUMMARY_SENTENCES``) and evaluation's a flag."""
        return [
            pick_sentences(sentences, scores, k, max_words, truncated)
            for sentences, scores, truncated in self.sentence_scores(texts, task, titles)
        ]


def with_lead_prior(scores: np.ndarray, prior: float) -> np.ndarray:
    """Scores plus ``prior / (position + 1)``: 0 keeps the head's ranking,
    a large prior gives Lead-k.

    News puts its point first; the prior lets validation decide how much to trust that.
    """
    return scores + prior / np.arange(1, len(scores) + 1)


def pick_sentences(
    sentences: list[Sentence],
    scores: np.ndarray,
    k: int,
    max_words: int | None = None,
    truncated: bool = False,
) -> SummaryPrediction:
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

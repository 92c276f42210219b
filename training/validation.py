"""Validation during and after fine-tuning: the score early stopping follows, and the
figures, temperature and lead prior fitted on validation when training ends.

Label tasks pool window logits per text as the Predictor does and score macro-F1; the
summary task ranks sentences and scores ROUGE-L of the top k against the references.
"""

from __future__ import annotations

import numpy as np
from transformers import PreTrainedTokenizerBase

from akhbar.models.predict import pick_sentences, with_lead_prior
from akhbar.models.sentences import Sentence
from akhbar.models.windowing import pool_logits
from akhbar.training.examples import references, sequence_dataset, summary_dataset
from akhbar.training.finetune_config import FinetuneConfig
from akhbar.training.metrics import (
    calibrated,
    classification_report,
    expected_calibration_error,
    fit_temperature,
)
from akhbar.training.rouge import rouge_scores, scorer

LEAD_PRIORS = (0.0, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 1e4)  # 1e4: Lead-k whatever the head says


class SequenceEval:
    """Validation for topic/stance: window logits pooled per text, then macro-F1."""

    def __init__(
        self,
        cfg: FinetuneConfig,
        tokenizer: PreTrainedTokenizerBase,
        records: list[dict],
        label_ids: list[int],
        labels: list[str],
    ):
        self.rows, self.windows = sequence_dataset(
            cfg, tokenizer, records, label_ids, cfg.max_windows
        )
        self.records, self.y, self.labels = records, np.array(label_ids), labels

    def doc_logits(self, window_logits: np.ndarray) -> np.ndarray:
        return pool_logits(window_logits, self.windows.doc_index, len(self.y))

    def score(self, window_logits: np.ndarray) -> float:
        return classification_report(
            self.y, self.doc_logits(window_logits).argmax(1), self.labels, ci=False
        )["macro_f1"]

    def report(self, window_logits: np.ndarray) -> tuple[dict, float, np.ndarray]:
        logits = self.doc_logits(window_logits)
        report, temperature = calibration_report(logits, self.y, self.labels)
        return report, temperature, logits.argmax(1)


def calibration_report(logits: np.ndarray, y: np.ndarray, labels: list[str]) -> tuple[dict, float]:
    """Validation figures of a label task's pooled logits, with the temperature fitted on them."""
    temperature = fit_temperature(logits, y)
    report = classification_report(y, logits.argmax(1), labels)
    report |= {
        "ece_before": expected_calibration_error(calibrated(logits, 1.0), y),
        "ece_after": expected_calibration_error(calibrated(logits, temperature), y),
        "temperature": temperature,
    }
    return report, temperature


def fit_lead_prior(
    docs: list[list[Sentence]],
    scores: list[np.ndarray],
    refs: list[list[str]],
    k: int,
    priors: tuple[float, ...] = LEAD_PRIORS,
) -> tuple[float, dict[float, float], list[str]]:
    """The lead prior with the best validation ROUGE-L (the smaller on ties), ROUGE-L per
    prior, and the picks at the chosen prior (see :func:`akhbar.models.predict.with_lead_prior`)."""
    rouge = scorer()
    picks, by_prior = {}, {}
    for prior in priors:
        picks[prior] = [
            " ".join(s.text for s in pick_sentences(d, with_lead_prior(sc, prior), k).sentences)
            for d, sc in zip(docs, scores)
        ]
        by_prior[prior] = float(
            np.mean([rouge_scores(p, r, rouge)["rougeL"] for p, r in zip(picks[prior], refs)])
        )
    best = max(priors, key=lambda prior: (by_prior[prior], -prior))
    return best, by_prior, picks[best]


class SummaryEval:
    """Validation for summary: the top-k sentences per article, ROUGE-L against the reference."""

    def __init__(
        self, cfg: FinetuneConfig, tokenizer: PreTrainedTokenizerBase, records: list[dict]
    ):
        self.rows, self.windows, self.docs = summary_dataset(cfg, tokenizer, records)
        self.refs, self.k = [references(r) for r in records], cfg.summary_sentences

    def doc_scores(self, logits: np.ndarray) -> list[np.ndarray]:
        scores = [np.full(len(d), -np.inf) for d in self.docs]
        for row, doc, index in zip(logits, self.windows.doc_index, self.windows.sentence_index):
            scores[doc][index] = row[: len(index)]
        return scores

    def score(self, logits: np.ndarray) -> float:
        """The head's own validation ROUGE-L (no lead prior): what training improves."""
        return fit_lead_prior(self.docs, self.doc_scores(logits), self.refs, self.k, priors=(0.0,))[
            1
        ][0.0]

    def report(self, logits: np.ndarray) -> tuple[dict, float, list[str]]:
        """Figures at the lead prior that wins on validation (in ``lead_prior``)."""
        prior, by_prior, picks = fit_lead_prior(
            self.docs, self.doc_scores(logits), self.refs, self.k
        )
        return summary_report(picks, self.refs, self.k, prior, by_prior), 1.0, picks


def summary_report(
    picks: list[str], refs: list[list[str]], k: int, prior: float, by_prior: dict[float, float]
) -> dict:
    """ROUGE-1/2/L of the picks, with the lead prior they were made at and ROUGE-L at each prior."""
    rouge = scorer()
    per_doc = [rouge_scores(p, r, rouge) for p, r in zip(picks, refs)]
    return {t: float(np.mean([d[t] for d in per_doc])) for t in per_doc[0]} | {
        "k": k,
        "lead_prior": prior,
        "rougeL_by_lead_prior": {str(p): v for p, v in by_prior.items()},
    }

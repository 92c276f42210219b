"""Several tasks through one ``Trainer``: one-task batches, interleaved, and an evaluation
that scores every task on its own validation set.

Every training batch holds one task's rows (a task's rows differ in shape and head from
another's), and the batches of all tasks are shuffled together, so one encoder learns
every task at once. A single task is the same path with one part.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import Dataset as TorchDataset
from transformers import Trainer
from transformers.trainer_pt_utils import nested_concat, nested_numpify

from akhbar.models.windowing import pad_features
from akhbar.training.finetune_config import FinetuneConfig
from akhbar.training.validation import SequenceEval, SummaryEval

Batch = tuple[str, list[dict]]  # (task, its rows)


@dataclass
class TaskPart:
    """One task's share of a run: its settings, labels, training rows and validation."""

    cfg: FinetuneConfig
    labels: list[str]
    train: list[dict]
    train_ids: list[int] | None
    train_rows: list[dict]
    evaluator: SequenceEval | SummaryEval
    weights: torch.Tensor | None = None


class TaskBatches(TorchDataset):
    """Whole one-task batches, one per item.

    The ``Trainer`` sees batches of one item (:func:`unwrap` is its collator) and its
    sampler shuffles their order, which interleaves the tasks.
    """

    def __init__(self, batches: list[Batch], pad_token_id: int):
        self.batches, self.pad_token_id = batches, pad_token_id

    def __len__(self) -> int:
        return len(self.batches)

    def __getitem__(self, index: int) -> dict:
        task, rows = self.batches[index]
        return {"task": task, **pad_features(rows, self.pad_token_id)}


def unwrap(items: list[dict]) -> dict:
    """Collator: each item already is a whole padded batch."""
    return items[0]


def training_batches(parts: dict[str, TaskPart], seed: int) -> list[Batch]:
    """Each task's rows in fresh random batches for each of its ``epochs``
    (a fraction cuts the last)."""
    rng = np.random.default_rng(seed)
    batches = []
    for task, part in parts.items():
        size, n = part.cfg.batch_size, len(part.train_rows)
        for epoch in range(math.ceil(part.cfg.epochs)):
            order = rng.permutation(n)
            chunks = [[part.train_rows[i] for i in order[s : s + size]] for s in range(0, n, size)]
            keep = (
                len(chunks)
                if epoch + 1 <= part.cfg.epochs
                else round(len(chunks) * (part.cfg.epochs - epoch))
            )
            batches += [(task, chunk) for chunk in chunks[:keep]]
    return batches


def eval_batches(task: str, rows: list[dict], size: int) -> list[Batch]:
    """A task's validation rows in order (predictions must line up with the records)."""
    return [(task, rows[s : s + size]) for s in range(0, len(rows), size)]


class MultiTaskTrainer(Trainer):
    """``Trainer`` whose evaluation scores every task on its own validation set.

    ``eval_score`` (what early stopping and the best checkpoint follow) is the mean of the
    tasks' scores: macro-F1 for topic and stance, ROUGE-L for summary.
    """

    def __init__(self, *args, parts: dict[str, TaskPart], **kwargs):
        super().__init__(*args, **kwargs)
        self.parts = parts

    def task_logits(self, task: str) -> np.ndarray:
        """The encoder's logits for a task's validation rows, in their order.

        Every process scores the whole set on its own copy of the model, with no gather:
        under torchrun the batches differ in shape, which a gather across processes cannot
        take, and every process must reach the same early-stopping decision.
        """
        part = self.parts[task]
        data = TaskBatches(
            eval_batches(task, part.evaluator.rows, part.cfg.batch_size * 2), self.pad_token_id
        )
        model, logits = self.model.eval(), None
        for i in range(len(data)):
            _, batch, _ = self.prediction_step(
                model, self._prepare_inputs(data[i]), prediction_loss_only=False
            )
            logits = batch if logits is None else nested_concat(logits, batch, padding_index=-100)
        return nested_numpify(logits)

    @property
    def pad_token_id(self) -> int:
        return self.processing_class.pad_token_id

    def evaluate(
        self, eval_dataset=None, ignore_keys=None, metric_key_prefix: str = "eval"
    ) -> dict[str, float]:
        scores = {
            task: part.evaluator.score(self.task_logits(task)) for task, part in self.parts.items()
        }
        metrics = {f"{metric_key_prefix}_{task}": score for task, score in scores.items()}
        metrics[f"{metric_key_prefix}_score"] = float(np.mean(list(scores.values())))
        self.log(metrics)
        self.control = self.callback_handler.on_evaluate(
            self.args, self.state, self.control, metrics
        )
        return metrics

"""One encoder, several task heads: the model every bundle holds.

Topic and stance are *sequence* tasks: mean-pooled token states → a small MLP → one
logit per label. Summary is a *sentence* task (BertSum-style): one encoder pass covers
many sentences, each sentence's tokens are mean-pooled and scored by a linear head.
Because the heads share the encoder, one pass over an article can serve several tasks.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F
from transformers import PreTrainedModel

from akhbar.models.tasks import KINDS, SEQUENCE


def mean_pool(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Average of the token states where ``mask`` is 1; (batch, seq, h) → (batch, h)."""
    weights = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * weights).sum(1) / weights.sum(1).clamp(min=1.0)


def sentence_pool(
    hidden: torch.Tensor, sentence_ids: torch.Tensor, n_sentences: int
) -> torch.Tensor:
    """Mean token state per sentence; ``sentence_ids`` is -1 on tokens outside any sentence.

    Returns (batch, n_sentences, h). Vectorised with ``scatter_add`` (no per-sentence loop).
    """
    batch, _, size = hidden.shape
    valid = sentence_ids >= 0
    index = torch.where(valid, sentence_ids, torch.full_like(sentence_ids, n_sentences))
    sums = hidden.new_zeros(batch, n_sentences + 1, size)
    sums.scatter_add_(
        1, index.unsqueeze(-1).expand(-1, -1, size), hidden * valid.unsqueeze(-1).to(hidden.dtype)
    )
    counts = hidden.new_zeros(batch, n_sentences + 1)
    counts.scatter_add_(1, index, valid.to(hidden.dtype))
    return sums[:, :n_sentences] / counts[:, :n_sentences].clamp(min=1.0).unsqueeze(-1)


@dataclass(frozen=True)
class HeadSpec:
    """Shape of one task head: its kind and how many outputs it has."""

    kind: str
    n_outputs: int

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"head kind must be one of {', '.join(KINDS)}, got {self.kind!r}")
        if self.n_outputs < 1:
            raise ValueError(f"a head needs at least one output, got {self.n_outputs}")


class TaskHead(nn.Module):
    def __init__(self, hidden_size: int, spec: HeadSpec, dropout: float = 0.1):
        super().__init__()
        self.spec = spec
        self.dropout = nn.Dropout(dropout)
        self.dense = nn.Linear(hidden_size, hidden_size)
        self.out = nn.Linear(hidden_size, spec.n_outputs)

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        return self.out(self.dropout(torch.tanh(self.dense(self.dropout(pooled)))))


class AkhbarModel(nn.Module):
    """A Hugging Face encoder plus named task heads.

    Parameters
    ----------
    encoder: any ``AutoModel`` encoder (the project's base or a hub checkpoint).
    heads: task name → :class:`HeadSpec`.
    """

    def __init__(self, encoder: PreTrainedModel, heads: dict[str, HeadSpec], dropout: float = 0.1):
        super().__init__()
        self.encoder = encoder
        self.heads = nn.ModuleDict(
            {
                task: TaskHead(encoder.config.hidden_size, spec, dropout)
                for task, spec in heads.items()
            }
        )

    def encode(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        token_type_ids: torch.Tensor | None = None,
    ) -> torch.Tensor:
        kwargs = {"token_type_ids": token_type_ids} if token_type_ids is not None else {}
        return self.encoder(
            input_ids=input_ids, attention_mask=attention_mask, **kwargs
        ).last_hidden_state

    def sequence_logits(
        self, task: str, hidden: torch.Tensor, attention_mask: torch.Tensor
    ) -> torch.Tensor:
        return self.heads[task](mean_pool(hidden, attention_mask))

    def sentence_logits(
        self, task: str, hidden: torch.Tensor, sentence_ids: torch.Tensor
    ) -> torch.Tensor:
        n = int(sentence_ids.max().item()) + 1 if sentence_ids.numel() else 0
        return self.heads[task](sentence_pool(hidden, sentence_ids, max(n, 1))).squeeze(-1)

    def forward(
        self,
        task: str,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        token_type_ids: torch.Tensor | None = None,
        sentence_ids: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        class_weights: torch.Tensor | None = None,
    ) -> dict:
        hidden = self.encode(input_ids, attention_mask, token_type_ids)
        if self.heads[task].spec.kind == SEQUENCE:
            logits = self.sequence_logits(task, hidden, attention_mask)
            loss = (
                F.cross_entropy(logits.float(), labels, weight=class_weights)
                if labels is not None
                else None
            )
        else:
            if sentence_ids is None:
                raise ValueError(f"task {task!r} scores sentences and needs sentence_ids")
            logits = self.sentence_logits(task, hidden, sentence_ids)
            loss = None
            if labels is not None:
                # labels: 1/0 per sentence, -100 where the sentence slot is padding.
                real = labels != -100
                loss = F.binary_cross_entropy_with_logits(
                    logits[real].float(), labels[real].float()
                )
        return {"loss": loss, "logits": logits} if loss is not None else {"logits": logits}


class TaskModel(nn.Module):
    """What ``Trainer`` trains: :class:`AkhbarModel` with each task's class weights.

    Every batch names its task (``task=...``), so batches of several tasks can be
    interleaved in one run over one shared encoder.
    """

    def __init__(self, model: AkhbarModel, class_weights: dict[str, torch.Tensor] | None = None):
        super().__init__()
        self.model = model
        self.weighted = tuple(class_weights or ())
        for task, weights in (class_weights or {}).items():
            self.register_buffer(f"class_weights_{task}", weights, persistent=False)

    def forward(
        self,
        task: str,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        token_type_ids: torch.Tensor | None = None,
        sentence_ids: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
    ) -> dict:
        weights = getattr(self, f"class_weights_{task}") if task in self.weighted else None
        return self.model(
            task,
            input_ids,
            attention_mask,
            token_type_ids,
            sentence_ids,
            labels,
            class_weights=weights,
        )

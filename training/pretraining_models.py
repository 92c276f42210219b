"""Pretraining objectives for the project's own Arabic BERT.

Both objectives train a standard ``BertModel`` encoder, so the result loads with
``AutoModel.from_pretrained`` like any hub checkpoint:

* :class:`MaskedOnlyBertForMaskedLM` is ``BertForMaskedLM`` whose loss projects only the
  masked positions onto the vocabulary (about 15% of the tokens), never every position.
* :class:`ElectraPretrainer` is ELECTRA's replaced-token detection: a small generator
  fills the masks and the encoder learns from every token by spotting replacements.

Either can be wrapped in :class:`SentenceDistillation`, which adds a second loss: a projection
of the encoder's mean-pooled sentence embedding regresses a teacher sentence encoder's
(Reimers & Gurevych 2020).

Every forward takes ``token_type_ids``: sentence-pair examples train segment 1 as well.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F
from transformers import BertConfig, BertForMaskedLM, BertModel
from transformers.modeling_outputs import MaskedLMOutput

from akhbar.models.modeling import mean_pool

IGNORE_INDEX = -100


def masked_lm_loss(
    mlm: BertForMaskedLM, hidden: torch.Tensor, labels: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Cross-entropy on the masked positions only; returns (loss, their logits)."""
    positions = labels != IGNORE_INDEX
    logits = mlm.cls(hidden[positions])
    return F.cross_entropy(logits.float(), labels[positions]), logits


def sample_tokens(logits: torch.Tensor) -> torch.Tensor:
    """One token per row from ``softmax(logits)``, by inverse CDF: one uniform draw per row.

    The same distribution as ``torch.multinomial(softmax(logits), 1)``, which on the CPU draws an
    exponential for every vocabulary entry of every row (a third of an ELECTRA step here).
    """
    cdf = F.softmax(logits.float(), dim=-1).cumsum_(-1)
    draw = torch.rand(cdf.shape[0], 1, device=cdf.device) * cdf[:, -1:]
    return torch.searchsorted(cdf, draw, right=True).squeeze(-1).clamp_(max=cdf.shape[-1] - 1)


class MaskedOnlyBertForMaskedLM(BertForMaskedLM):
    """``BertForMaskedLM`` with the loss computed on masked positions only.

    The parameter names are BertForMaskedLM's, so the saved checkpoint is a stock one.
    """

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        **kwargs,
    ) -> MaskedLMOutput:
        if labels is None:
            return super().forward(
                input_ids=input_ids,
                attention_mask=attention_mask,
                token_type_ids=token_type_ids,
                **kwargs,
            )
        hidden = self.bert(
            input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
        ).last_hidden_state
        loss, logits = masked_lm_loss(self, hidden, labels)
        return MaskedLMOutput(loss=loss, logits=logits)


def generator_config(config: BertConfig, layers: int) -> BertConfig:
    """A shallower, narrower-FFN copy of ``config`` for ELECTRA's generator.

    The hidden size stays the encoder's so the two share one embedding table.
    """
    gen = BertConfig(**config.to_dict())
    gen.num_hidden_layers = layers
    gen.intermediate_size = config.intermediate_size // 2
    return gen


class ElectraPretrainer(nn.Module):
    """Generator (masked LM) + discriminator (the encoder we keep), sharing embeddings.

    ``discriminator_weight`` follows the ELECTRA paper (50): the per-token detection loss
    is much smaller than the generator's cross-entropy.
    """

    _keys_to_ignore_on_save = None  # read by Trainer when resuming; the tied aliases are not saved

    def __init__(
        self, config: BertConfig, generator_layers: int = 1, discriminator_weight: float = 50.0
    ):
        super().__init__()
        self.config = config
        self.encoder = BertModel(config, add_pooling_layer=False)
        self.generator = MaskedOnlyBertForMaskedLM(generator_config(config, generator_layers))
        self.tie_embeddings()
        self.detector = nn.Sequential(
            nn.Linear(config.hidden_size, config.hidden_size),
            nn.GELU(),
            nn.Linear(config.hidden_size, 1),
        )
        self.discriminator_weight = discriminator_weight

    def tie_embeddings(self) -> None:
        """The generator reads and predicts with the encoder's embeddings (call again after
        replacing ``self.encoder``, or the generator keeps the old table as an untied decoder of
        its own)."""
        self.generator.bert.embeddings = self.encoder.embeddings
        self.generator.cls.predictions.decoder.weight = (
            self.encoder.embeddings.word_embeddings.weight
        )

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        labels: torch.Tensor,
        token_type_ids: torch.Tensor | None = None,
        **_,
    ) -> dict:
        gen_hidden = self.generator.bert(
            input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
        ).last_hidden_state
        gen_loss, gen_logits = masked_lm_loss(self.generator, gen_hidden, labels)
        masked = labels != IGNORE_INDEX
        with torch.no_grad():
            sampled = sample_tokens(gen_logits)
        corrupted = input_ids.clone()
        corrupted[masked] = sampled
        # A sampled token equal to the original counts as original, as in ELECTRA.
        original = torch.where(masked, labels, input_ids)
        replaced = (corrupted != original).float()
        hidden = self.encoder(
            input_ids=corrupted, attention_mask=attention_mask, token_type_ids=token_type_ids
        ).last_hidden_state
        scores = self.detector(hidden).squeeze(-1).float()
        real = attention_mask.bool()
        disc_loss = F.binary_cross_entropy_with_logits(scores[real], replaced[real])
        return {
            "loss": gen_loss + self.discriminator_weight * disc_loss,
            "mlm_loss": gen_loss.detach(),
            "rtd_loss": disc_loss.detach(),
        }


def encoder_of(model: nn.Module) -> BertModel:
    """The ``BertModel`` a pretrainer trains and exports (through a distillation wrapper too)."""
    model = language_model(model)
    return model.encoder if isinstance(model, ElectraPretrainer) else model.bert


def language_model(model: nn.Module) -> nn.Module:
    """The masked-LM or ELECTRA pretrainer itself, without a distillation wrapper around it."""
    return model.pretrainer if isinstance(model, SentenceDistillation) else model


class SentenceDistillation(nn.Module):
    """A pretrainer plus sentence-embedding distillation (Reimers & Gurevych 2020).

    ``projection`` maps the encoder's mean-pooled embedding of a single sentence onto the
    teacher's embedding space; the loss is ``1 − cos`` (the teacher's rows are unit vectors, and
    the student is meant to be compared by cosine), added to the language-model loss with
    ``weight``. Sentences are encoded clean (no masking, no ELECTRA corruption), as the student
    will read them when it is used as a sentence encoder.
    """

    _keys_to_ignore_on_save = None  # read by Trainer when resuming; the tied aliases are not saved

    def __init__(self, pretrainer: nn.Module, teacher_dim: int, weight: float):
        super().__init__()
        self.pretrainer = pretrainer
        self.config = pretrainer.config
        self.projection = nn.Linear(pretrainer.config.hidden_size, teacher_dim)
        self.weight = weight

    def embed(self, sentence_ids: torch.Tensor, sentence_mask: torch.Tensor) -> torch.Tensor:
        """The projected sentence embeddings, one row per sentence."""
        # Explicit token types (segment 0): called as for sentence-pair batches, a compiled
        # encoder reuses its graph instead of compiling another for a call without them.
        hidden = encoder_of(self)(
            input_ids=sentence_ids,
            attention_mask=sentence_mask,
            token_type_ids=torch.zeros_like(sentence_ids),
        ).last_hidden_state
        return self.projection(mean_pool(hidden, sentence_mask))

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        labels: torch.Tensor,
        sentence_ids: torch.Tensor,
        sentence_mask: torch.Tensor,
        teacher: torch.Tensor,
        token_type_ids: torch.Tensor | None = None,
    ) -> dict:
        out = self.pretrainer(
            input_ids=input_ids,
            attention_mask=attention_mask,
            labels=labels,
            token_type_ids=token_type_ids,
        )
        # The masked-LM pretrainer reports one loss; name it so the log tells the parts apart.
        parts = {key: out[key] for key in ("mlm_loss", "rtd_loss") if key in out} or {
            "mlm_loss": out["loss"].detach()
        }
        predicted = self.embed(sentence_ids, sentence_mask).float()
        distill = (1 - F.cosine_similarity(predicted, teacher.float(), dim=-1)).mean()
        return {
            "loss": out["loss"] + self.weight * distill,
            **parts,
            "distill_loss": distill.detach(),
        }

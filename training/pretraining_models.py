"""Pretraining objectives for the project's own Arabic BERT.

Both objectives train a standard ``BertModel`` encoder, so the result loads with
``AutoModel.from_pretrained`` like any hub checkpoint:

* :class:`MaskedOnlyBertForMaskedLM` is ``BertForMaskedLM`` whose loss projects only the
  masked positions onto the vocabulary (about 15% of the tokens), never every position.
* :class:`ElectraPretrainer` is ELECTRA's replaced-token detection: a small generator
  fills the masks and the encoder learns from every token by spotting replacements.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F
from transformers import BertConfig, BertForMaskedLM, BertModel
from transformers.modeling_outputs import MaskedLMOutput

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
        **kwargs,
    ) -> MaskedLMOutput:
        if labels is None:
            return super().forward(input_ids=input_ids, attention_mask=attention_mask, **kwargs)
        hidden = self.bert(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
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
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, labels: torch.Tensor, **_
    ) -> dict:
        gen_hidden = self.generator.bert(
            input_ids=input_ids, attention_mask=attention_mask
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
        hidden = self.encoder(input_ids=corrupted, attention_mask=attention_mask).last_hidden_state
        scores = self.detector(hidden).squeeze(-1).float()
        real = attention_mask.bool()
        disc_loss = F.binary_cross_entropy_with_logits(scores[real], replaced[real])
        return {
            "loss": gen_loss + self.discriminator_weight * disc_loss,
            "mlm_loss": gen_loss.detach(),
            "rtd_loss": disc_loss.detach(),
        }

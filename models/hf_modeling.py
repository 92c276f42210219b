"""An akhbar sequence head as a transformers model: the modeling file of a Hugging Face export.

``akhbar models export --format hf`` copies this file, as it is, into the export's folder
(``modeling_akhbar.py``); ``config.json``'s ``auto_map`` points ``AutoConfig`` and
``AutoModelForSequenceClassification`` at it. It imports only torch and transformers, so the
export runs without akhbar::

    pipeline("text-classification", model=DIR, trust_remote_code=True)

Why custom code: akhbar's heads read the mean of the encoder's token states, and no
transformers classification class pools that way (``BertForSequenceClassification`` reads the
[CLS] state). The ``model_type`` is its own (``akhbar_bert``), so loading without
``trust_remote_code`` fails with transformers' error instead of silently running a BERT
classifier on the wrong pooled state.
"""

from __future__ import annotations

import torch
from torch import nn
from transformers import BertConfig, BertModel, BertPreTrainedModel
from transformers.modeling_outputs import SequenceClassifierOutput


class AkhbarBertConfig(BertConfig):
    model_type = "akhbar_bert"


class AkhbarBertForSequenceClassification(BertPreTrainedModel):
    """BERT, the mean of its token states, then dense + tanh + a linear layer per label.

    The calibration temperature akhbar applies is folded into ``classifier``, so the softmax a
    pipeline takes gives akhbar's probabilities.
    """

    config_class = AkhbarBertConfig

    def __init__(self, config: AkhbarBertConfig) -> None:
        super().__init__(config)
        self.bert = BertModel(config, add_pooling_layer=False)
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)
        self.post_init()

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        **kwargs,
    ) -> SequenceClassifierOutput:
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        hidden = self.bert(
            input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
        ).last_hidden_state
        weights = attention_mask.unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * weights).sum(1) / weights.sum(1).clamp(min=1.0)
        logits = self.classifier(torch.tanh(self.dense(pooled)))
        loss = nn.functional.cross_entropy(logits, labels) if labels is not None else None
        return SequenceClassifierOutput(loss=loss, logits=logits)

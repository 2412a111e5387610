"""ALBERT encoder + sentence-order head, without the masked-LM head: what `AlbertForPreTraining`
computes for `sop_logits`, shaped like transformers' `*ForNextSentencePrediction` (output `.logits`).

transformers has no SOP-only ALBERT class; `AlbertForPreTraining` would also project every token onto
the vocabulary, work NSP scoring throws away. Weight names match `AlbertForPreTraining` (`albert.*`,
`sop_classifier.classifier.*`), so its folders load directly and a folder without the head reports
`sop_classifier.*` as missing.
"""
from __future__ import annotations

import torch
from torch import nn
from transformers import AlbertConfig, AlbertModel
from transformers.modeling_outputs import NextSentencePredictorOutput
from transformers.models.albert.modeling_albert import AlbertPreTrainedModel


class SentenceOrderHead(nn.Module):
    """ALBERT's `AlbertSOPHead` with its 2 outputs fixed (the original reads `config.num_labels`, which a
    fine-tuned config may have changed): logit 0 = "A then B is the original order"."""

    def __init__(self, config: AlbertConfig) -> None:
        super().__init__()
        self.dropout = nn.Dropout(config.classifier_dropout_prob)
        self.classifier = nn.Linear(config.hidden_size, 2)

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.dropout(pooled))


class AlbertForSentenceOrder(AlbertPreTrainedModel):
    """`AlbertModel` + the SOP classifier; `forward(...).logits` are `AlbertForPreTraining`'s `sop_logits`."""

    def __init__(self, config: AlbertConfig) -> None:
        super().__init__(config)
        self.albert = AlbertModel(config)
        self.sop_classifier = SentenceOrderHead(config)
        self.post_init()

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None,
                inputs_embeds=None, **kwargs) -> NextSentencePredictorOutput:
        outputs = self.albert(input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids,
                              position_ids=position_ids, inputs_embeds=inputs_embeds, return_dict=True)
        return NextSentencePredictorOutput(logits=self.sop_classifier(outputs.pooler_output))

"""BERT's forward without the padding: every Linear, GELU and LayerNorm runs on the real tokens only.

Why: a length-sorted batch of 32 pairs still pads its shorter rows to the longest (5-12% of the
tokens in TNEWS-sized batches), and the matrix multiplies that are ~85% of the time run on those pad
rows too. CTranslate2 removes them; splitting the batch by length instead costs more than it saves
(smaller matrices run slower). Here the hidden states are kept as one (tokens × hidden) matrix and
scattered into the padded (batch × length) layout only for the attention scores, the one step that
needs it. The layer's own modules (its Linear layers, whatever kernel or int8 form they have, its
LayerNorms, its activation) run unchanged, so the result is what transformers computes (same weights,
same operations per token): in fp32 and bf16 up to the rounding of differently sized matrix
multiplies (≤ 1e-6 here); torch's int8 ≤ 1e-5; `int8-dynamic` differs by ~2e-4, as its one
activation range per batch no longer sees the pad rows.

Only for models whose structure is known to be plain BERT or ERNIE (`supports`); others run transformers' forward.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

# model class → (its encoder layer class, its self-attention class): the structures `logits` reproduces
SUPPORTED = {"BertForNextSentencePrediction": ("BertLayer", "BertSelfAttention"),
             "ErnieForNextSentencePrediction": ("ErnieLayer", "ErnieSelfAttention")}


def supports(model: torch.nn.Module) -> bool:
    """Whether `model` is a BERT NSP model whose forward `logits` reproduces: an encoder of plain
    bidirectional self-attention layers (no decoder, cross-attention or cache), absolute positions."""
    classes = SUPPORTED.get(type(model).__name__)
    if classes is None or type(model).__module__.split(".")[0] != "transformers":
        return False
    config = model.config
    if getattr(config, "is_decoder", False) or getattr(config, "add_cross_attention", False) \
            or getattr(config, "position_embedding_type", "absolute") != "absolute" \
            or getattr(config, "chunk_size_feed_forward", 0):
        return False
    base = getattr(model, "base_model", None)
    layers = getattr(getattr(base, "encoder", None), "layer", None)
    return bool(layers) and getattr(base, "pooler", None) is not None and all(
        type(layer).__name__ == classes[0]
        and type(getattr(getattr(layer, "attention", None), "self", None)).__name__ == classes[1] for layer in layers)


def _attention(layer: torch.nn.Module, hidden: torch.Tensor, rows: torch.Tensor, shape: tuple[int, int],
               key_mask: torch.Tensor) -> torch.Tensor:
    """Self-attention of one layer: the projections on the real tokens, the scores in the padded layout
    (pad keys masked out; pad queries computed and dropped), back to the real tokens."""
    attention = layer.attention.self
    batch, length = shape
    heads, size = attention.num_attention_heads, attention.attention_head_size

    def padded(projection: torch.nn.Module) -> torch.Tensor:
        values = projection(hidden)
        out = values.new_zeros(batch * length, values.shape[-1])
        out[rows] = values
        return out.view(batch, length, heads, size).transpose(1, 2)

    context = F.scaled_dot_product_attention(padded(attention.query), padded(attention.key),
                                             padded(attention.value), attn_mask=key_mask,
                                             scale=getattr(attention, "scaling", None))  # None: 1/√size
    return context.transpose(1, 2).reshape(batch * length, heads * size)[rows]


def logits(model: torch.nn.Module, input_ids: torch.Tensor, attention_mask: torch.Tensor,
           token_type_ids: torch.Tensor, position_ids: "torch.Tensor | None" = None) -> torch.Tensor:
    """The NSP logits (batch × 2) of a model `supports` accepts, computed on the unpadded tokens.
    Rows are right-padded (as the scorer collates them): each starts with its [CLS], which the pooler
    reads, and its real tokens come first; other masks are refused (ValueError), not misread."""
    bert = model.base_model
    batch, length = input_ids.shape
    if not bool(attention_mask[:, 0].all()) or bool((attention_mask[:, 1:] > attention_mask[:, :-1]).any()):
        raise ValueError("unpadded.logits takes right-padded rows, each starting with a real token")
    embedded = bert.embeddings(input_ids=input_ids, token_type_ids=token_type_ids, position_ids=position_ids)
    mask = attention_mask.bool()
    rows = mask.reshape(-1).nonzero().squeeze(1)
    hidden = embedded.reshape(batch * length, -1)[rows]
    key_mask = mask[:, None, None, :]
    for layer in bert.encoder.layer:
        attended = layer.attention.output(_attention(layer, hidden, rows, (batch, length), key_mask), hidden)
        hidden = layer.output(layer.intermediate(attended), attended)
    lengths = mask.sum(dim=1)
    starts = torch.cumsum(lengths, 0) - lengths  # each row's [CLS] among the real tokens
    return model.cls(bert.pooler(hidden[starts].unsqueeze(1)))

"""BERT's forward without the padding: every Linear, GELU and LayerNorm runs on the real tokens only.

Why: a length-sorted batch of 32 pairs still pads its shorter rows to the longest (5-12% of the
tokens in TNEWS-sized batches), and the matrix multiplies that are ~85% of the time run on those pad
rows too. CTranslate2 removes them; splitting the batch by length instead costs more than it saves
(smaller matrices run slower). Here the hidden states are kept as one (tokens × hidden) matrix and
scattered into the padded (batch × length) layout only for the attention scores, the one step that
needs it. More savings, each measured on BERT-base:

- the pooler reads the last layer's [CLS] alone, so that layer computes keys and values for every
  token but its query, attention output and feed-forward for the [CLS] rows only (1.07×);
- the pad rows of Q, K and V are zeroed once per batch, not once per layer; erf GELU runs in place on
  the fresh Linear output; a plain Linear before a residual LayerNorm adds its product onto
  (residual + bias) in place instead of copying its bias out and adding the residual after (1.04×
  together; for plain Linear layers, outside autocast and autograd: see `_plain`).

The layer's own modules (its Linear layers, whatever kernel or int8 form they have, its LayerNorms,
its activation) run otherwise unchanged, so the result is what transformers computes up to rounding
order: fp32 and bf16 ≤ 1e-6 here. int8's layers quantise each token on its own scale
(`quantize.Int8Linear`), so pad rows no longer change any token's codes; fp32 rounding differences in
between can still cross an int8 rounding step (up to ~3e-3 on BERT-base, as between batch sizes).

Only for models whose structure is known to be plain BERT or ERNIE (`supports`); others run transformers' forward.
For inference: attention-probability dropout is never applied (the scorer runs models in eval mode).
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


def _attention(layer: torch.nn.Module, hidden: torch.Tensor, rows: "torch.Tensor | None", shape: tuple[int, int],
               key_mask: torch.Tensor, scratch: list[torch.Tensor], queries: "torch.Tensor | None" = None
               ) -> torch.Tensor:
    """Self-attention of one layer: the projections on the real tokens, the scores in the padded layout
    (pad keys masked out; pad queries computed and dropped), back to the real tokens; or, given
    `queries` (one token index per row), for those tokens only. `scratch` holds the padded Q, K and V
    of the batch, shared by its layers: real rows are overwritten by each layer, pad rows stay the
    zeros written once. `rows` None: `hidden` is already the padded layout (the export's graph)."""
    attention = layer.attention.self
    batch, length = shape
    heads, size = attention.num_attention_heads, attention.attention_head_size

    def split(values: torch.Tensor, width: int) -> torch.Tensor:  # (batch·width × W) → (batch, heads, width, size)
        return values.view(batch, width, heads, size).transpose(1, 2)

    if rows is None:
        key, value = split(attention.key(hidden), length), split(attention.value(hidden), length)
        query = split(attention.query(hidden), length) if queries is None else None
    else:
        projections = (attention.key, attention.value) + ((attention.query,) if queries is None else ())
        for index, projection in enumerate(projections):
            values = projection(hidden)
            # a fresh buffer for the first layer, a layer of another dtype, or when autograd must keep
            # each layer's own (index_copy_ would overwrite what the previous layer saved for backward)
            if index == 0 and (not scratch or scratch[0].dtype != values.dtype or torch.is_grad_enabled()):
                scratch[:] = [values.new_zeros(3, batch * length, values.shape[-1])]
            scratch[0][index].index_copy_(0, rows, values)  # another dtype than the first: torch raises
        key, value = split(scratch[0][0], length), split(scratch[0][1], length)
        query = split(scratch[0][2], length) if queries is None else None
    if queries is not None:
        query = split(attention.query(hidden[queries]), 1)
    context = F.scaled_dot_product_attention(query, key, value, attn_mask=key_mask,
                                             scale=getattr(attention, "scaling", None))  # None: 1/√size
    context = context.transpose(1, 2).reshape(-1, heads * size)
    return context if queries is not None or rows is None else context.index_select(0, rows)


def _autocast_on(device: torch.device) -> bool:
    """torch.is_autocast_enabled(device_type) exists from torch 2.4; before, the CPU had its own call."""
    try:
        return torch.is_autocast_enabled(device.type)
    except TypeError:  # torch < 2.4: the no-argument form speaks for CUDA only
        return torch.is_autocast_cpu_enabled() if device.type == "cpu" else torch.is_autocast_enabled()


def _plain(linear: torch.nn.Module, x: torch.Tensor) -> bool:
    """Whether `linear` is a plain torch Linear (not a oneDNN or int8 form, nor a user's subclass) with a
    bias, of x's dtype, outside autocast and autograd: the case the fused in-place steps below compute
    as transformers does. Not while tracing for ONNX: the exported graph keeps the plain ops, which
    ONNX Runtime fuses itself."""
    return type(linear) is torch.nn.Linear and linear.bias is not None and x.dtype == linear.weight.dtype \
        and not _autocast_on(x.device) and not torch.is_grad_enabled() and not torch.jit.is_tracing()


def _intermediate(block: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """BertIntermediate: dense then activation; erf GELU in place on the fresh dense output (a pass and
    an allocation of tokens × 3072 saved)."""
    out = block.dense(x)
    act = block.intermediate_act_fn
    if type(act).__name__ == "GELUActivation" and getattr(act, "act", None) is F.gelu and _plain(block.dense, x):
        return torch.ops.aten.gelu_(out)
    return act(out)


def _add_norm(block: torch.nn.Module, x: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
    """BertSelfOutput/BertOutput: LayerNorm(dense(x) + residual). For a plain Linear the product is
    added onto (residual + bias) in place, one pass instead of a bias copy and a residual add; in
    training mode the block runs itself (its dropout applies)."""
    dense = block.dense
    if not _plain(dense, x) or residual.dtype != x.dtype or block.training:
        return block(x, residual)
    return block.LayerNorm(torch.add(residual, dense.bias).addmm_(x, dense.weight.t()))


def logits(model: torch.nn.Module, input_ids: torch.Tensor, attention_mask: torch.Tensor,
           token_type_ids: torch.Tensor, position_ids: "torch.Tensor | None" = None,
           keep_padding: bool = False) -> torch.Tensor:
    """The NSP logits (batch × 2) of a model `supports` accepts, computed on the unpadded tokens.
    Rows are right-padded (as the scorer collates them): each starts with its [CLS], which the pooler
    reads, and its real tokens come first; other masks are refused (ValueError), not misread.

    `keep_padding`: every position is computed as in transformers' forward (no data-dependent shapes,
    so ONNX can trace it; any mask), and only the last layer is cut to each row's first token."""
    bert = model.base_model
    batch, length = input_ids.shape
    embedded = bert.embeddings(input_ids=input_ids, token_type_ids=token_type_ids, position_ids=position_ids)
    mask = attention_mask.bool()
    key_mask = mask[:, None, None, :]
    if keep_padding:
        rows, hidden = None, embedded.reshape(batch * length, -1)
        starts = torch.arange(batch, device=input_ids.device) * length  # each row's first token
    else:
        if not bool(attention_mask[:, 0].all()) or bool((attention_mask[:, 1:] > attention_mask[:, :-1]).any()):
            raise ValueError("unpadded.logits takes right-padded rows, each starting with a real token")
        rows = mask.reshape(-1).nonzero().squeeze(1)
        hidden = embedded.reshape(batch * length, -1).index_select(0, rows)
        lengths = mask.sum(dim=1)
        starts = torch.cumsum(lengths, 0) - lengths  # each row's [CLS] among the real tokens
    scratch: list[torch.Tensor] = []
    layers = list(bert.encoder.layer)
    for depth, layer in enumerate(layers):
        # the pooler reads [CLS] alone: after the last layer's keys and values, only [CLS] rows go on
        queries = starts if depth == len(layers) - 1 else None
        context = _attention(layer, hidden, rows, (batch, length), key_mask, scratch, queries)
        attended = _add_norm(layer.attention.output, context, hidden if queries is None else hidden[queries])
        hidden = _add_norm(layer.output, _intermediate(layer.intermediate, attended), attended)
    return model.cls(bert.pooler(hidden.unsqueeze(1)))

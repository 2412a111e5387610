"""A checkpoint's config, checked before anything is allocated: field types, bounds, agreement with the
weights' shapes, and features the installed transformers cannot run as written.

Why one module: every format (transformers folders, Google TF1 and UER-py configs, every architecture in
`heads.HEADS`) builds its model from these fields, and a wrong one fails far from its cause, or not at
all: `type_vocab_size: 1` is an IndexError at the first sentence B, `num_hidden_layers: 10000000`
allocates without end, an `albert_config.json` that disagrees with the tensors, or a BERT config with
`position_embedding_type: relative_key` (transformers 5 dropped relative positions) scores a model that
is not the checkpoint. Each is one ModelError line naming the file and the field.
"""
from __future__ import annotations

import re
from typing import Mapping, Optional

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..errors import ModelError, shown, type_name

# Generous ceilings (the largest BERT-family checkpoints are far below them), so that a config cannot ask
# for an allocation that never ends; a real model's sizes are also compared with its tensors below.
MAX_LAYERS = 1024
MAX_WIDTH = 65536           # hidden, embedding and feed-forward sizes
MAX_VOCAB = 4_000_000
MAX_POSITIONS = 131072
MAX_PARAMETERS = 20_000_000_000  # what the sizes would allocate, counted before transformers does

# Fields whose value changes what the model computes, with the value every architecture nspzero loads
# computes in the installed transformers: another value would be dropped without a word.
RUNNABLE_AS_IS: dict[str, object] = {"position_embedding_type": "absolute"}


class _Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="allow")


class ConfigFields(_Strict):
    """The fields that size a tensor or set the arithmetic, with their types and bounds (None: absent)."""

    vocab_size: Optional[int] = Field(None, ge=1, le=MAX_VOCAB)
    hidden_size: Optional[int] = Field(None, ge=1, le=MAX_WIDTH)
    embedding_size: Optional[int] = Field(None, ge=1, le=MAX_WIDTH)
    intermediate_size: Optional[int] = Field(None, ge=1, le=4 * MAX_WIDTH)
    num_hidden_layers: Optional[int] = Field(None, ge=1, le=MAX_LAYERS)
    num_attention_heads: Optional[int] = Field(None, ge=1, le=MAX_WIDTH)
    num_hidden_groups: Optional[int] = Field(None, ge=1, le=MAX_LAYERS)
    inner_group_num: Optional[int] = Field(None, ge=1, le=MAX_LAYERS)
    max_position_embeddings: Optional[int] = Field(None, ge=1, le=MAX_POSITIONS)
    # NSP reads sentence A as token type 0 and B as 1: a table of one row cannot embed B
    type_vocab_size: Optional[int] = Field(None, ge=2, le=1024)
    layer_norm_eps: Optional[float] = Field(None, gt=0, lt=1, allow_inf_nan=False)
    initializer_range: Optional[float] = Field(None, ge=0, allow_inf_nan=False)
    hidden_act: Optional[str] = None
    position_embedding_type: Optional[str] = None


def _float_ok(fields: dict) -> dict:
    """JSON writes 1e-12 and 1 alike: an int is a number here (a bool is not: strict mode refuses it)."""
    return {k: (float(v) if k in ("layer_norm_eps", "initializer_range") and type(v) is int else v)
            for k, v in fields.items()}


def check_config(data: Mapping, where: str, model_type: Optional[str] = None) -> ConfigFields:
    """`data` (a config as read from JSON) with every field above of the right type and within bounds, the
    sizes' parameter count bounded, and no feature the installed transformers would drop; else one
    ModelError naming `where` and the field."""
    try:
        fields = ConfigFields.model_validate(_float_ok(dict(data)))
    except ValidationError as exc:
        error = exc.errors()[0]
        field = ".".join(str(p) for p in error["loc"])
        said = error["msg"].removeprefix("Input ")
        value = error.get("input")
        raise ModelError(f"{where}: {field} {said}, got {type_name(value)} {shown(value)}; pass the checkpoint's "
                         f"own config") from None
    for field, plain in RUNNABLE_AS_IS.items():
        value = data.get(field)
        if value is not None and value != plain:
            import transformers

            raise ModelError(f"{where}: {field} {shown(value)} is not computed by transformers "
                             f"{transformers.__version__} for {model_type or 'this'} models (only {plain!r}): the "
                             f"checkpoint would be scored as another model; use a checkpoint with {field} {plain!r}")
    _check_parameters(fields, where)
    return fields


def _check_parameters(fields: ConfigFields, where: str) -> None:
    """What the sizes would allocate, roughly (embeddings + layers), against MAX_PARAMETERS."""
    hidden = fields.hidden_size or 768
    width = fields.embedding_size or hidden
    inner = fields.intermediate_size or 4 * hidden
    layers = fields.num_hidden_groups if fields.num_hidden_groups else (fields.num_hidden_layers or 12)
    count = (fields.vocab_size or 0) * width + (fields.max_position_embeddings or 0) * width \
        + layers * (4 * hidden * hidden + 2 * hidden * inner)
    if count > MAX_PARAMETERS:
        raise ModelError(f"{where}: its sizes (hidden_size {hidden}, intermediate_size {inner}, {layers} layers, "
                         f"vocab_size {fields.vocab_size}) would allocate about {count / 1e9:.0f} billion parameters, "
                         f"more than {MAX_PARAMETERS // 10**9} billion; pass the checkpoint's own config")


# A tensor's name (its end) → the config fields its (rows, columns) give; "layers" counts encoder layers.
_SHAPE_FIELDS: tuple[tuple[str, tuple[Optional[str], Optional[str]]], ...] = (
    (r"(^|\.)embeddings\.word_embeddings\.weight$", ("vocab_size", "word_width")),
    (r"(^|\.)embeddings\.token_type_embeddings\.weight$", ("type_vocab_size", "width")),
    (r"(^|\.)embeddings\.position_embeddings\.weight$", ("max_position_embeddings", "width")),
    (r"(^|\.)pooler(\.dense)?\.weight$", ("hidden_size", "hidden_size")),
    (r"(^|\.)encoder\.layer\.0\.intermediate\.dense\.weight$", ("intermediate_size", None)),
    (r"(^|\.)albert_layer_groups\.0\.albert_layers\.0\.ffn\.weight$", ("intermediate_size", "hidden_size")),
    (r"(^|\.)encoder\.embedding_hidden_mapping_in\.weight$", ("hidden_size", "embedding_size")),
)


def sizes_from_tensors(shapes: Mapping[str, tuple[int, ...]], model_type: str) -> dict[str, int]:
    """The config sizes the weights' shapes imply (only those that can be read from a shape)."""
    found: dict[str, int] = {}
    for name, shape in shapes.items():
        for pattern, fields in _SHAPE_FIELDS:
            if len(shape) == 2 and re.search(pattern, name):
                for field, size in zip(fields, shape):
                    if field in ("width", "word_width"):  # ALBERT's embeddings, MobileBERT's word table: narrower
                        narrow = model_type == "albert" or (model_type == "mobilebert" and field == "word_width")
                        field = "embedding_size" if narrow else "hidden_size"
                    if field is not None:
                        found.setdefault(field, int(size))
    indexes = [int(m.group(1)) for m in (re.search(r"(?:^|\.)encoder\.layer\.(\d+)\.", n) for n in shapes) if m]
    if indexes and model_type != "albert":
        found["num_hidden_layers"] = max(indexes) + 1
    groups = [int(m.group(1)) for m in (re.search(r"albert_layer_groups\.(\d+)\.", n) for n in shapes) if m]
    if groups:
        found["num_hidden_groups"] = max(groups) + 1
    return found


def check_against_tensors(data: Mapping, shapes: Mapping[str, tuple[int, ...]], where: str,
                          model_type: str) -> None:
    """Every config field that sizes a tensor equals what the tensors say (read from the files' headers,
    before anything is allocated); else one ModelError naming the field and both values."""
    for field, size in sorted(sizes_from_tensors(shapes, model_type).items()):
        given = data.get(field)
        if field == "max_position_embeddings" and isinstance(given, int) and given <= size:
            continue  # a shorter limit than the table is a choice (UER's max_seq_length), not a conflict
        if given is not None and given != size:
            raise ModelError(f"{where}: {field} is {shown(given)} but the weights have {size}; pass the config "
                             f"that belongs to these weights")

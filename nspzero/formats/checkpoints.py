"""Foreign checkpoints → a transformers `BertForNextSentencePrediction` (ALBERT: `AlbertForSentenceOrder`),
in memory or as a folder.

The paper's models come as Google TF1 bundles (`bert_model.ckpt.*`, read by `tf_bundle` without
TensorFlow) and as UER-py state dicts (`.bin`, key names that changed over UER-py's history). Both are
renamed here to transformers' BERT names, checked for the pooler and the NSP head (without them the
scores would be noise), and either handed to the scorer or written by `convert_checkpoint`.
"""
from __future__ import annotations

import json
import logging
import math
import os
import re
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Optional

import torch

from ..errors import ModelError, UsageError, first_line, shown
from .configs import check_against_tensors, check_config
from .tf_bundle import TFBundle, bundle_prefix

log = logging.getLogger("nspzero")

SOURCES = ("google", "uer")
UER_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt")
SPECIAL_TOKENS = ("[CLS]", "[SEP]", "[PAD]")
# UER-py's `hidden_act` names → transformers' (UER's "gelu" is the exact erf form, as BERT's).
ACTIVATIONS = {"gelu": "gelu", "gelu_fast": "gelu_new", "gelu_new": "gelu_new", "relu": "relu",
               "silu": "silu", "swish": "silu", "tanh": "tanh", "gelu_python": "gelu_python"}


# ---------------------------------------------------------------------------------------------
# name mapping
# ---------------------------------------------------------------------------------------------

def google_name(tf_name: str) -> tuple[Optional[str], bool]:
    """transformers name for a Google BERT variable and whether its matrix is transposed; (None, _) to skip.

    `bert/encoder/layer_3/attention/self/query/kernel` → `bert.encoder.layer.3.attention.self.query.weight`
    (kernels are [in, out] in TF, [out, in] in torch); gamma/beta are LayerNorm weight/bias; the NSP
    head `cls/seq_relationship/output_weights` is already [2, H]. Optimizer slots, `global_step` and the
    masked-LM head (not used by an NSP model) are skipped."""
    parts = tf_name.split("/")
    if parts[-1] in ("adam_m", "adam_v", "Momentum", "Adagrad") or tf_name == "global_step" \
            or tf_name.startswith(("cls/predictions", "bad_steps", "good_steps", "loss_scale")):
        return None, False
    if parts[:2] == ["cls", "seq_relationship"] and len(parts) == 3:
        leaf = {"output_weights": "weight", "output_bias": "bias"}.get(parts[2])
        return (f"cls.seq_relationship.{leaf}" if leaf else None), False
    if parts[0] != "bert":
        return None, False
    out, transpose = [], False
    for part in parts:
        match = re.fullmatch(r"layer_(\d+)", part)
        if match:
            out += ["layer", match.group(1)]
        elif part in ("kernel", "gamma", "beta"):
            transpose = part == "kernel"
            out.append({"kernel": "weight", "gamma": "weight", "beta": "bias"}[part])
        else:
            out.append(part)
    if parts[-1].endswith("_embeddings"):
        out.append("weight")
    return ".".join(out), transpose


# Google ALBERT's shared layer (`bert/encoder/transformer/group_G/inner_group_I/...`) → transformers' AlbertLayer.
_ALBERT_LAYER = {
    "attention_1/self/query": "attention.query",
    "attention_1/self/key": "attention.key",
    "attention_1/self/value": "attention.value",
    "attention_1/output/dense": "attention.dense",
    "LayerNorm": "attention.LayerNorm",
    "ffn_1/intermediate/dense": "ffn",
    "ffn_1/intermediate/output/dense": "ffn_output",
    "LayerNorm_1": "full_layer_layer_norm",
}
_ALBERT_TOP = {
    "bert/embeddings/word_embeddings": "albert.embeddings.word_embeddings",
    "bert/embeddings/position_embeddings": "albert.embeddings.position_embeddings",
    "bert/embeddings/token_type_embeddings": "albert.embeddings.token_type_embeddings",
    "bert/embeddings/LayerNorm": "albert.embeddings.LayerNorm",
    "bert/encoder/embedding_hidden_mapping_in": "albert.encoder.embedding_hidden_mapping_in",
    "bert/pooler/dense": "albert.pooler",
    "cls/seq_relationship": "sop_classifier.classifier",
}
_TF_LEAF = {"kernel": "weight", "gamma": "weight", "beta": "bias", "bias": "bias", "output_weights": "weight",
            "output_bias": "bias"}


def is_albert_bundle(tf_names) -> bool:
    """Google ALBERT names its factorised-embedding projection and its shared layer group; BERT has neither."""
    return any("embedding_hidden_mapping_in" in n or "/transformer/group_" in n for n in tf_names)


def albert_name(tf_name: str) -> tuple[Optional[str], bool]:
    """transformers name (as `heads`' AlbertForSentenceOrder) for a Google ALBERT variable and whether it is
    a kernel to transpose; (None, _) to skip (optimizer slots, masked-LM head, anything unknown).

    `bert/encoder/transformer/group_0/inner_group_0/ffn_1/intermediate/output/dense/kernel` →
    `albert.encoder.albert_layer_groups.0.albert_layers.0.ffn_output.weight`; the SOP head
    `cls/seq_relationship/output_weights` (already [2, H]) → `sop_classifier.classifier.weight`. A TF-Hub
    export's `module/` prefix is dropped."""
    name = tf_name[len("module/"):] if tf_name.startswith("module/") else tf_name
    if name.endswith("_embeddings") and name in _ALBERT_TOP:
        return f"{_ALBERT_TOP[name]}.weight", False
    stem, _, leaf = name.rpartition("/")
    match = re.fullmatch(r"bert/encoder/transformer/group_(\d+)/inner_group_(\d+)/(.+)", stem)
    if leaf not in _TF_LEAF:  # optimizer slots (.../adam_m), global_step
        return None, False
    if match and match.group(3) in _ALBERT_LAYER:
        out = (f"albert.encoder.albert_layer_groups.{match.group(1)}.albert_layers.{match.group(2)}."
               f"{_ALBERT_LAYER[match.group(3)]}")
    elif stem in _ALBERT_TOP:
        out = _ALBERT_TOP[stem]
    else:  # the masked-LM head (cls/predictions/...) and anything unknown
        return None, False
    return f"{out}.{_TF_LEAF[leaf]}", leaf == "kernel"


_UER_LAYER = {
    "self_attn.linear_layers.0": "attention.self.query",
    "self_attn.linear_layers.1": "attention.self.key",
    "self_attn.linear_layers.2": "attention.self.value",
    "self_attn.final_linear": "attention.output.dense",
    "layer_norm_1": "attention.output.LayerNorm",
    "feed_forward.linear_1": "intermediate.dense",
    "feed_forward.linear_2": "output.dense",
    "layer_norm_2": "output.LayerNorm",
}
_UER_TOP = {
    "embedding.word_embedding": "bert.embeddings.word_embeddings",
    "embedding.word.embedding": "bert.embeddings.word_embeddings",
    "embedding.position_embedding": "bert.embeddings.position_embeddings",
    "embedding.pos.embedding": "bert.embeddings.position_embeddings",
    "embedding.segment_embedding": "bert.embeddings.token_type_embeddings",
    "embedding.seg.embedding": "bert.embeddings.token_type_embeddings",
    "embedding.layer_norm": "bert.embeddings.LayerNorm",
    # the sentence-prediction target in each generation of UER-py: pooler dense + 2-way classifier
    "target.nsp_linear_1": "bert.pooler.dense",
    "target.sp_linear_1": "bert.pooler.dense",
    "target.sp.linear_1": "bert.pooler.dense",
    "target.nsp_linear_2": "cls.seq_relationship",
    "target.sp_linear_2": "cls.seq_relationship",
    "target.sp.linear_2": "cls.seq_relationship",
}
_UER_LEAF = {"gamma": "weight", "beta": "bias", "weight": "weight", "bias": "bias"}


def uer_name(key: str) -> Optional[str]:
    """transformers name for a UER-py key (any generation); None for keys an NSP model does not use
    (masked-LM target `target.mlm*` / `target.layer_norm`, tied output embeddings)."""
    if key.startswith("module."):  # saved from DataParallel
        key = key[len("module."):]
    stem, _, leaf = key.rpartition(".")
    if leaf not in _UER_LEAF:
        return None
    match = re.fullmatch(r"encoder\.transformer\.(\d+)\.(.+)", stem)
    if match and match.group(2) in _UER_LAYER:
        return f"bert.encoder.layer.{match.group(1)}.{_UER_LAYER[match.group(2)]}.{_UER_LEAF[leaf]}"
    if stem in _UER_TOP:
        return f"{_UER_TOP[stem]}.{_UER_LEAF[leaf]}"
    return None


# ---------------------------------------------------------------------------------------------
# reading each format
# ---------------------------------------------------------------------------------------------

# embeddings → the config sizes of their (rows, columns); None: not checked (a UER config's
# max_seq_length, read as max_position_embeddings, may be shorter than the table)
_EMBEDDING_SIZES = {"bert.embeddings.word_embeddings.weight": ("vocab_size", "hidden_size"),
                    "bert.embeddings.position_embeddings.weight": (None, "hidden_size"),
                    "bert.embeddings.token_type_embeddings.weight": ("type_vocab_size", "hidden_size")}


def check_shape(where: str, key: str, name: str, shape: tuple[int, ...], matrix: bool, settings: dict) -> None:
    """Before a tensor is read: a matrix (kernel, embeddings, NSP head) has two dimensions, and an
    embedding's agree with the config, when one is given (a wrong index or config is found here)."""
    sizes = _EMBEDDING_SIZES.get(name)
    if (matrix or sizes or name == "cls.seq_relationship.weight") and len(shape) != 2:
        raise ModelError(f"{where}: {key} has shape {list(shape)}; it must be a matrix (2 dimensions), the checkpoint "
                         f"is corrupt or not a BERT")
    for size, key_size in zip(shape, sizes or ()):
        if key_size is not None and settings.get(key_size) not in (None, size):
            raise ModelError(f"{where}: {key} has shape {list(shape)} but the config says {key_size}="
                             f"{settings[key_size]}; pass the config that belongs to this checkpoint")


def google_state_dict(prefix: str, settings: Optional[dict] = None) -> dict[str, torch.Tensor]:
    """transformers-named float32 tensors of a Google BERT or ALBERT bundle (skipped variables are never
    read); every shape is checked against `settings` (the config) and the shard before it is read."""
    bundle = TFBundle(prefix)
    bundle.check_shards()
    state: dict[str, torch.Tensor] = {}
    rename = albert_name if is_albert_bundle(bundle.entries) else google_name
    for tf_name in sorted(bundle.entries):
        name, transpose = rename(tf_name)
        if name is None:
            continue
        check_shape(bundle.index_path, tf_name, name, bundle.entries[tf_name].shape, transpose, settings or {})
        array = bundle.read(tf_name)
        tensor = torch.from_numpy(array).float()
        if transpose:
            if tensor.dim() != 2:
                raise ModelError(f"checkpoint variable {tf_name} in {bundle.index_path} has shape "
                                 f"{list(array.shape)}; a kernel must be a matrix")
            tensor = tensor.t().contiguous()
        state[name] = tensor
    if not state:
        raise ModelError(f"{bundle.index_path} holds no BERT variables (bert/...); is it a BERT checkpoint?")
    return state


def uer_state_dict(path: str) -> dict[str, torch.Tensor]:
    """transformers-named tensors of a UER-py `.bin` (loaded weights-only: a pickle runs no code)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch's notes about pickle protocols: the error below says enough
            raw = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise ModelError(f"UER checkpoint {path} does not exist") from None
    except Exception as exc:  # noqa: BLE001 - any unpickling failure is a bad file, said in one line
        raise ModelError(f"cannot load {path} as a PyTorch state dict ({first_line(exc)}); download it again, or "
                         f"pass a transformers folder or a Google bert_model.ckpt") from None
    if isinstance(raw, dict) and isinstance(raw.get("state_dict"), dict):
        raw = raw["state_dict"]
    if not isinstance(raw, dict) or not all(isinstance(v, torch.Tensor) for v in raw.values()):
        raise ModelError(f"{path} is not a state dict of tensors; pass UER-py's saved model (.bin)")
    odd = next((k for k in raw if not isinstance(k, str)), None)
    if odd is not None:
        raise ModelError(f"{path} has a {type(odd).__name__} key ({shown(odd)}) where a state dict has parameter "
                         f"names; pass UER-py's saved model (.bin)")
    if any(k.startswith(("target.sop_linear", "target.sop.")) for k in raw):
        raise ModelError(f"{path} has a sentence-order-prediction target (target.sop_*), not next-sentence "
                         f"prediction; NSP-BERT needs a BERT pre-trained with NSP")
    state: dict[str, torch.Tensor] = {}
    for key, tensor in raw.items():
        name = uer_name(key)
        if name is None:
            continue
        if not tensor.is_floating_point():
            raise ModelError(f"UER checkpoint {path}: tensor {key} is {str(tensor.dtype).replace('torch.', '')}, "
                             f"not a float; the file is not a model's weights")
        state[name] = tensor.float()
    if not state:
        if any(k.startswith(("bert.", "embeddings.", "encoder.layer.")) for k in raw):
            raise ModelError(f"{path} is a transformers state dict, not a UER-py one; put it in a folder with its "
                             f"config.json and vocab.txt and pass the folder")
        raise ModelError(f"{path} holds no UER-py BERT keys (embedding.*, encoder.transformer.*); "
                         f"is it a UER-py BERT model?")
    seg = state.get("bert.embeddings.token_type_embeddings.weight")
    if seg is not None:
        if seg.shape[0] != 3:
            raise ModelError(f"{path}: UER's segment embedding should have 3 rows (padding, sentence A, B), "
                             f"it has {seg.shape[0]}")
        state["bert.embeddings.token_type_embeddings.weight"] = seg[1:].clone()
    return state


def read_config_file(path: str) -> dict:
    """A BERT `bert_config.json`/`config.json` or a UER-py config, as BERT config keys."""
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except OSError as exc:
        raise ModelError(f"cannot read config {path}: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise ModelError(f"config {path} is not valid JSON ({exc}); pass the checkpoint's bert_config.json") from None
    if not isinstance(data, dict):
        raise ModelError(f"config {path} holds {type(data).__name__}, not a JSON object; pass the checkpoint's "
                         f"bert_config.json")
    out = {}
    uer = {"heads_num": "num_attention_heads", "layers_num": "num_hidden_layers",
           "feedforward_size": "intermediate_size", "emb_size": "hidden_size", "max_seq_length":
           "max_position_embeddings"}
    for key, value in data.items():
        out.setdefault(uer.get(key, key), value)
    if data.get("layernorm_positioning", "post") != "post":
        raise ModelError(f"config {path}: layernorm_positioning {data['layernorm_positioning']!r} is not BERT's "
                         f"post-LayerNorm; this is not a BERT model")
    check_config(out, f"config {path}", out.get("model_type"))
    return out


def _given(settings: dict, key: str, default: float) -> float:
    """A setting the config may leave out or set to null (TF configs write `initializer_range: null`)."""
    value = settings.get(key)
    return default if value is None else float(value)


def _find_config(src: str, explicit: Optional[str]) -> Optional[str]:
    if explicit:
        return explicit
    folder = src if os.path.isdir(src) else os.path.dirname(src) or "."
    for name in ("bert_config.json", "albert_config.json", "config.json"):
        if os.path.isfile(os.path.join(folder, name)):
            return os.path.join(folder, name)
    return None


def _find_vocab(src: str, explicit: Optional[str]) -> str:
    if explicit:
        if not os.path.isfile(explicit):
            raise ModelError(f"vocab file {explicit} does not exist")
        return explicit
    folder = src if os.path.isdir(src) else os.path.dirname(src) or "."
    for name in ("vocab.txt", "vocab_chinese.txt"):  # the latter: Google's Chinese ALBERT
        if os.path.isfile(os.path.join(folder, name)):
            return os.path.join(folder, name)
    raise ModelError(f"no vocab.txt beside {src}; put the checkpoint's vocab.txt there, or convert it with "
                     f"`nspzero convert {src} OUT_DIR --vocab VOCAB` (UER-py's Chinese BERT uses "
                     f"models/google_zh_vocab.txt)")


def check_vocab(path: str, vocab_size: Optional[int] = None) -> int:
    """Refuse a WordPiece vocab without [CLS]/[SEP]/[PAD] or too small for the model; returns its size."""
    try:
        with open(path, encoding="utf-8") as handle:
            tokens = [line.rstrip("\n").rstrip("\r") for line in handle]
    except (OSError, UnicodeDecodeError) as exc:
        raise ModelError(f"cannot read vocab {path} ({exc}); it must be a UTF-8 vocab.txt, one token a line") from None
    known = set(tokens)
    missing = [t for t in SPECIAL_TOKENS if t not in known]
    if missing:
        raise ModelError(f"vocab {path} has no {'/'.join(missing)} token; NSP needs a BERT WordPiece vocab "
                         f"(use the checkpoint's own vocab.txt)")
    if vocab_size is not None and not vocab_size // 2 <= len(tokens) <= vocab_size:
        raise ModelError(f"vocab {path} has {len(tokens)} tokens but the model has {vocab_size} embeddings; "
                         f"it is not this checkpoint's vocabulary")
    return len(tokens)


def detect_source(src: str) -> Optional[str]:
    """'google' for a TF1 bundle (folder, prefix or .index), 'uer' for a state-dict file (or a folder holding
    exactly one), None otherwise."""
    if bundle_prefix(src):
        return "google"
    if os.path.isfile(src) and src.endswith(UER_SUFFIXES):
        return "uer"
    if os.path.isdir(src) and not os.path.isfile(os.path.join(src, "config.json")):
        bins = [f for f in os.listdir(src) if f.endswith(UER_SUFFIXES)]
        if len(bins) == 1:
            return "uer"
    return None


def _uer_file(src: str) -> str:
    if os.path.isdir(src):
        bins = sorted(f for f in os.listdir(src) if f.endswith(UER_SUFFIXES))
        if len(bins) != 1:
            raise ModelError(f"{src} holds {len(bins)} .bin files; pass the UER-py model file itself")
        return os.path.join(src, bins[0])
    return src


# ---------------------------------------------------------------------------------------------
# building the model
# ---------------------------------------------------------------------------------------------

def _matrix_shape(state: dict[str, torch.Tensor], name: str, where: str, model: str) -> tuple[int, ...]:
    """The shape of a weight the config is derived from: present, and a matrix (sizes: compared later)."""
    if name not in state:
        raise ModelError(f"{where} has no {name.replace('.weight', '')} weights; it is not a complete {model}")
    check_shape(where, name, name, tuple(state[name].shape), True, {})
    return tuple(state[name].shape)


def build_config(state: dict[str, torch.Tensor], settings: dict, where: str):
    """A BertConfig whose sizes come from the tensors; heads, activation and eps from `settings`."""
    from transformers import BertConfig

    def shape(name: str) -> tuple[int, ...]:
        return _matrix_shape(state, name, where, "BERT")

    vocab_size, hidden = shape("bert.embeddings.word_embeddings.weight")
    layers = _index_count(state, r"bert\.encoder\.layer\.(\d+)\.")
    if layers == 0:
        raise ModelError(f"{where} has no encoder layers; it is not a BERT checkpoint")
    derived = {
        "vocab_size": vocab_size, "hidden_size": hidden, "num_hidden_layers": layers,
        "max_position_embeddings": shape("bert.embeddings.position_embeddings.weight")[0],
        "type_vocab_size": shape("bert.embeddings.token_type_embeddings.weight")[0],
        "intermediate_size": shape("bert.encoder.layer.0.intermediate.dense.weight")[0],
    }
    for key, value in derived.items():
        given = settings.get(key)
        if given is not None and key != "max_position_embeddings" and given != value:
            raise ModelError(f"{where}: the config says {key}={given} but the weights have {value}; pass the "
                             f"config that belongs to this checkpoint")
    heads = settings.get("num_attention_heads")
    if heads is None:
        heads = max(1, hidden // 64)
        log.warning("no config gives the number of attention heads of %s; assuming hidden_size/64 = %d "
                    "(pass --config with the checkpoint's config if that is wrong)", where, heads)
    act = _heads_and_activation(heads, hidden, settings, where)
    config = BertConfig(**derived, num_attention_heads=heads, hidden_act=ACTIVATIONS[act],
                        layer_norm_eps=_given(settings, "layer_norm_eps", 1e-12),
                        initializer_range=_given(settings, "initializer_range", 0.02))
    check_config(config.to_dict(), where, "bert")  # sizes read from the tensors meet the same bounds
    return config


def _heads_and_activation(heads, hidden: int, settings: dict, where: str) -> str:
    """Refuse heads that do not divide the hidden size and an unknown activation; returns the activation."""
    if not isinstance(heads, int) or heads < 1 or hidden % heads:
        raise ModelError(f"{where}: {heads} attention heads do not divide hidden size {hidden}; pass the "
                         f"checkpoint's own config")
    act = settings.get("hidden_act") or "gelu"
    if act not in ACTIVATIONS:
        raise ModelError(f"{where}: unknown hidden_act {act!r} in the config; expected one of "
                         f"{', '.join(sorted(ACTIVATIONS))}")
    return act


def _index_count(state: dict[str, torch.Tensor], pattern: str) -> int:
    """1 + the largest index `pattern`'s group matches in the weight names (0 if none matches)."""
    return 1 + max((int(m.group(1)) for m in (re.match(pattern, k) for k in state) if m), default=-1)


def build_albert_config(state: dict[str, torch.Tensor], settings: dict, where: str):
    """An AlbertConfig: sizes from the tensors; the layer count, heads and activation from `settings` (one
    shared layer is stored however often it is applied, so only the config can say how many layers run)."""
    from transformers import AlbertConfig

    def shape(name: str) -> tuple[int, ...]:
        return _matrix_shape(state, name, where, "ALBERT")

    layer = "albert.encoder.albert_layer_groups.0.albert_layers.0."
    vocab_size, embedding = shape("albert.embeddings.word_embeddings.weight")
    hidden = shape("albert.encoder.embedding_hidden_mapping_in.weight")[0]
    groups = _index_count(state, r"albert\.encoder\.albert_layer_groups\.(\d+)\.")
    inner = _index_count(state, r"albert\.encoder\.albert_layer_groups\.0\.albert_layers\.(\d+)\.")
    layers, heads = settings.get("num_hidden_layers"), settings.get("num_attention_heads")
    if groups == 0 or inner == 0:
        raise ModelError(f"{where} has no ALBERT layer (bert/encoder/transformer/group_0/inner_group_0/...); it is not "
                         f"a complete ALBERT checkpoint")
    for key, value in (("num_hidden_layers", layers), ("num_attention_heads", heads)):
        if not isinstance(value, int) or value < 1:
            raise ModelError(f"{where}: ALBERT shares its layer weights, so {key} must come from the checkpoint's "
                             f"albert_config.json (got {value!r}); put it beside the checkpoint or pass --config")
    # the sizes the tensors fix must be the config's: ALBERT's are otherwise taken from the tensors unread
    check_against_tensors(settings, {k: tuple(v.shape) for k, v in state.items()}, where, "albert")
    if settings.get("inner_group_num") not in (None, inner):
        raise ModelError(f"{where}: inner_group_num is {settings['inner_group_num']} but the weights have {inner}; "
                         f"pass the config that belongs to these weights")
    act = _heads_and_activation(heads, hidden, settings, where)
    # Google's ALBERT modeling.py calls its tanh approximation "gelu": transformers names that gelu_new
    config = AlbertConfig(vocab_size=vocab_size, embedding_size=embedding, hidden_size=hidden,
                          num_hidden_layers=layers, num_attention_heads=heads, num_hidden_groups=groups,
                          inner_group_num=inner, intermediate_size=shape(layer + "ffn.weight")[0],
                          max_position_embeddings=shape("albert.embeddings.position_embeddings.weight")[0],
                          type_vocab_size=shape("albert.embeddings.token_type_embeddings.weight")[0],
                          hidden_act="gelu_new" if act == "gelu" else ACTIVATIONS[act],
                          layer_norm_eps=_given(settings, "layer_norm_eps", 1e-12),
                          hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, classifier_dropout_prob=0.1)
    check_config(config.to_dict(), where, "albert")
    return config


def model_from_state(state: dict[str, torch.Tensor], config, where: str):
    """The config's sentence-relation model (heads.HEADS: BERT's NSP or ALBERT's SOP) holding exactly these
    weights; a missing pooler or head is refused."""
    from .heads import HEADS, missing_head

    head = HEADS[config.model_type]
    with torch.device("meta"):  # only the names and shapes, to refuse a missing head in nspzero's words
        expected = head.model_class()(config).state_dict()
    no_head = sorted(k for k in expected if (k.startswith(head.weights) or ".pooler." in k) and k not in state)
    if no_head:
        raise missing_head(head, where, no_head)
    missing = sorted(k for k in expected if k not in state)
    kind = config.model_type.upper()
    if missing:
        raise ModelError(f"{where} lacks {len(missing)} {kind} weights (e.g. {', '.join(missing[:3])}); it is not a "
                         f"complete {kind} checkpoint")
    for name, tensor in expected.items():
        if tuple(state[name].shape) != tuple(tensor.shape):
            raise ModelError(f"{where}: {name} has shape {list(state[name].shape)}, expected "
                             f"{list(tensor.shape)} from the other weights; the checkpoint is inconsistent")
    from ..quiet import quiet_transformers

    with quiet_transformers():  # transformers assigns the tensors (no copy) and rebuilds the index buffers itself
        model = head.model_class().from_pretrained(None, config=config,
                                                   state_dict={k: state[k].contiguous() for k in expected})
    return model.eval()


class ForeignCheckpoint:
    """A Google or UER checkpoint read into memory: `model`, `vocab` path, `source`, `do_lower_case`."""

    def __init__(self, model, vocab: str, source: str, do_lower_case: bool) -> None:
        self.model, self.vocab, self.source, self.do_lower_case = model, vocab, source, do_lower_case


def load_checkpoint(src: str, *, config: Optional[str] = None, vocab: Optional[str] = None,
                    source: Optional[str] = None) -> ForeignCheckpoint:
    """Read a Google TF1 bundle or a UER-py state dict into a transformers NSP model (no TensorFlow)."""
    src = os.path.expanduser(os.fspath(src))
    if source is not None and source not in SOURCES:
        raise UsageError(f"unknown checkpoint format {source!r}; use google or uer")
    if not os.path.exists(src) and not os.path.isfile(src + ".index"):
        raise ModelError(f"checkpoint {src} does not exist")
    found = detect_source(src)
    source = source or found
    if source is None:
        raise ModelError(f"{src} is neither a Google TF checkpoint (bert_model.ckpt.index + .data-*) nor a UER-py "
                         f".bin state dict; pass --from google|uer if it is one of them")
    settings = {}
    config_path = _find_config(src, config)
    if config_path:
        settings = read_config_file(config_path)
    if source == "google":
        prefix = bundle_prefix(src)
        if prefix is None:
            raise ModelError(f"{src} has no TensorFlow checkpoint index (bert_model.ckpt.index)")
        where = prefix + ".index"
        state = google_state_dict(prefix, settings)
    else:
        where = _uer_file(src)
        state = uer_state_dict(where)
    albert = "albert.embeddings.word_embeddings.weight" in state
    model_config = (build_albert_config if albert else build_config)(state, settings, where)
    vocab_path = _find_vocab(src, vocab)
    check_vocab(vocab_path, model_config.vocab_size)
    model = model_from_state(state, model_config, where)
    base = os.path.basename(os.path.normpath(src)).lower()
    cased = "cased" in base and "uncased" not in base
    return ForeignCheckpoint(model, vocab_path, source, do_lower_case=not cased)


def tokenizer_for(vocab: str, do_lower_case: bool = True):
    """A BertTokenizer over `vocab` (from a folder: transformers 5 ignores a bare vocab_file argument)."""
    from transformers import BertTokenizer

    with tempfile.TemporaryDirectory(prefix="nspzero-vocab-") as tmp:
        shutil.copyfile(vocab, os.path.join(tmp, "vocab.txt"))
        return BertTokenizer.from_pretrained(tmp, do_lower_case=do_lower_case)


def convert_checkpoint(src: str | os.PathLike, out_dir: str | os.PathLike, *, config: Optional[str] = None,
                       vocab: Optional[str] = None, source: Optional[str] = None) -> Path:
    """Write a Google TF1 (BERT or ALBERT) or UER-py BERT checkpoint as a transformers folder; returns OUT_DIR.

    OUT_DIR gets config.json, model.safetensors, vocab.txt and the tokenizer config, and loads with plain
    `BertForNextSentencePrediction.from_pretrained` (ALBERT: `AlbertForPreTraining`, masked-LM head unset). It is built in a temporary folder beside OUT_DIR and
    renamed into place, so a failure leaves nothing at OUT_DIR. OUT_DIR must not exist or be an empty
    folder (UsageError otherwise: nothing is overwritten). Bad checkpoints raise ModelError."""
    from ..folders import atomic_folder, new_folder
    from ..quiet import quiet_transformers

    out = new_folder(out_dir)
    checkpoint = load_checkpoint(os.fspath(src), config=config, vocab=vocab, source=source)
    with atomic_folder(out, "converting") as tmp:
        with quiet_transformers():
            checkpoint.model.save_pretrained(tmp)
            tokenizer_for(checkpoint.vocab, checkpoint.do_lower_case).save_pretrained(tmp)
        shutil.copyfile(checkpoint.vocab, tmp / "vocab.txt")  # transformers 5 saves tokenizer.json only
    return out

"""Checkpoint loading: a model name or folder → (tokenizer, NSP-only model), or a ModelError.

Kept apart from scoring because checkpoint formats grow (transformers folders today; Google TF1
bundles and UER-py state dicts next) while the scorer only ever needs a tokenizer and a model.
"""
from __future__ import annotations

import contextlib
import logging
import os
import warnings
from typing import Iterator

import torch

from .errors import ModelError

NSP_CHECKPOINTS = "bert-base-chinese, hfl/chinese-bert-wwm-ext (Chinese) or bert-base-uncased (English)"


def _is_local_path(name: str) -> bool:
    """Hub ids are 'name' or 'org/name'; anything else (or an existing path) is a local path."""
    return os.path.exists(name) or name.startswith(("/", ".", "~")) or name.count("/") > 1 or "\\" in name


@contextlib.contextmanager
def quiet_transformers() -> Iterator[None]:
    """Silence transformers' load report and progress bars: nspzero reports problems itself."""
    from transformers.utils import logging as tlog

    level = tlog.get_verbosity()
    bars = tlog.is_progress_bar_enabled()
    hub_logger = logging.getLogger("huggingface_hub")
    hub_level = hub_logger.level
    tlog.set_verbosity_error()
    tlog.disable_progress_bar()
    hub_logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        tlog.set_verbosity(level)
        hub_logger.setLevel(hub_level)
        if bars:
            tlog.enable_progress_bar()


def load_nsp_model(name_or_path: str) -> tuple["object", torch.nn.Module]:
    """Load (tokenizer, NSP model) from a hub name or a local directory, or raise ModelError.

    Uses the NSP-only model class (no masked-LM head to compute), never `trust_remote_code`,
    safetensors when present and torch's weights-only loader otherwise (transformers' default).
    A checkpoint with any weight missing — above all `cls.seq_relationship.*`, the NSP head —
    is refused instead of running with random weights.
    """
    from transformers import AutoConfig, AutoModelForNextSentencePrediction, AutoTokenizer
    from transformers.models.auto.modeling_auto import MODEL_FOR_NEXT_SENTENCE_PREDICTION_MAPPING_NAMES

    name = os.path.expanduser(str(name_or_path))
    if _is_local_path(name):
        if not os.path.exists(name):
            raise ModelError(f"model directory {name!r} does not exist; pass a folder holding config.json, the weights "
                             f"and vocab.txt, or a hub name such as bert-base-chinese")
        if not os.path.isfile(os.path.join(name, "config.json")):
            raise ModelError(f"{name!r} has no config.json; pass the folder a model was saved to with save_pretrained()")
    with quiet_transformers():
        try:
            config = AutoConfig.from_pretrained(name, trust_remote_code=False)
        except (OSError, ValueError, KeyError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ModelError(f"could not load model {name!r}: {first} — pass a local model directory, or check the "
                             f"hub name and your connection") from None
        if config.model_type not in MODEL_FOR_NEXT_SENTENCE_PREDICTION_MAPPING_NAMES:
            raise ModelError(f"model {name!r} is a {config.model_type!r} model, which has no next-sentence-prediction "
                             f"head; use a BERT checkpoint with one, e.g. {NSP_CHECKPOINTS}")
        try:
            model, info = AutoModelForNextSentencePrediction.from_pretrained(
                name, config=config, output_loading_info=True, trust_remote_code=False)
        except (OSError, ValueError, RuntimeError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ModelError(f"could not load the weights of {name!r}: {first}") from None
        missing = sorted(info.get("missing_keys", ()))
        if missing:
            nsp = [k for k in missing if "seq_relationship" in k]
            what = "its next-sentence-prediction head (" + ", ".join(nsp) + ")" if nsp else ", ".join(missing[:4])
            raise ModelError(f"model {name!r} has no trained weights for {what}; transformers would initialise them "
                             f"randomly and the scores would be noise. Use a checkpoint pre-trained with NSP, e.g. "
                             f"{NSP_CHECKPOINTS}")
        if os.path.isdir(name) and not any(os.path.isfile(os.path.join(name, f)) for f in ("vocab.txt", "tokenizer.json")):
            raise ModelError(f"{name!r} has no vocab.txt or tokenizer.json; copy the checkpoint's vocab.txt into it "
                             f"(without it every text would become [UNK])")
        try:
            tokenizer = AutoTokenizer.from_pretrained(name, trust_remote_code=False)
        except (OSError, ValueError, TypeError) as exc:
            raise ModelError(f"could not load the tokenizer of {name!r}: {exc}; the folder needs vocab.txt "
                             f"(or tokenizer.json)") from None
    if len(tokenizer) < getattr(config, "vocab_size", 0) // 2:
        raise ModelError(f"the tokenizer of {name!r} knows {len(tokenizer)} tokens but the model has "
                         f"{config.vocab_size}: its vocab.txt (or tokenizer.json) is missing or wrong, so every text "
                         f"would become [UNK]; put the checkpoint's vocab.txt beside config.json")
    if tokenizer.cls_token_id is None or tokenizer.sep_token_id is None:
        raise ModelError(f"the tokenizer of {name!r} has no [CLS]/[SEP] tokens; NSP needs a BERT WordPiece vocab")
    model.eval()
    return tokenizer, model

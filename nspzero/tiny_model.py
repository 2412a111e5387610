"""A tiny BERT with random weights, written as a transformers folder: for trying nspzero's plumbing
(CLI, server, page, Ray) without a model hub, the way transformers' own tests use tiny random
checkpoints. Its scores are meaningless: only a checkpoint trained with NSP classifies anything."""
from __future__ import annotations

import os
from pathlib import Path

NOTE = ("This folder holds a tiny BERT with RANDOM weights, written by `nspzero tiny-model`. It runs every nspzero "
        "command, but its scores are meaningless: use it to try the plumbing (CLI, server, page) offline, never to "
        "classify anything. For real scores copy a trained checkpoint (config.json, model.safetensors or "
        "pytorch_model.bin, vocab.txt) or convert the paper's files with `nspzero convert`.\n")
SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
RANDOM_WEIGHTS_KEY = "nspzero_tiny_random"  # in config.json: every load, export and report says so


def has_random_weights(config: object) -> bool:
    """Was this model written by `nspzero tiny-model` (its config carries the mark, exports keep it)?"""
    return bool(getattr(config, RANDOM_WEIGHTS_KEY, False))


def random_weights_note(name: str) -> str:
    """The one line every command that loads, exports or reports on such a model shows."""
    return f"{name} is a tiny model with RANDOM weights (nspzero tiny-model): its scores are meaningless"


def tiny_vocab() -> list[str]:
    """Special tokens, printable ASCII (and each as a ## piece) and every CJK Unified Ideograph, so
    Chinese text is read character by character and English word-piece by word-piece, never [UNK]."""
    ascii_chars = [chr(c) for c in range(33, 127)]
    return SPECIALS + ascii_chars + ["##" + c for c in ascii_chars] + [chr(c) for c in range(0x4E00, 0xA000)]


def write_tiny_model(out_dir: str | os.PathLike, seed: int = 0) -> Path:
    """Write config.json, model.safetensors, vocab.txt (and NOTE.txt saying the scores mean nothing)
    into the new folder `out_dir`, all at once; returns its path."""
    import torch
    from transformers import BertConfig, BertForPreTraining, BertTokenizer

    from .folders import atomic_folder, new_folder
    from .quiet import quiet_transformers

    out = new_folder(out_dir)
    with atomic_folder(out, "writing") as tmp:
        (tmp / "vocab.txt").write_text("\n".join(tiny_vocab()) + "\n", encoding="utf-8")
        config = BertConfig(vocab_size=len(tiny_vocab()), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                            intermediate_size=64, max_position_embeddings=512,
                            **{RANDOM_WEIGHTS_KEY: True})  # the scorer warns on every load
        torch.manual_seed(seed)
        with quiet_transformers():
            BertForPreTraining(config).save_pretrained(str(tmp))
            BertTokenizer.from_pretrained(str(tmp)).save_pretrained(str(tmp))
        (tmp / "NOTE.txt").write_text(NOTE, encoding="utf-8")
    return out

"""Engines a user would pick instead of nspzero, run on the very same pairs for `nspzero bench --peers`.

Each peer scores the token ids nspzero's scorer makes (same truncation, same length-sorted batches),
so the bench's ratios and max |ΔP| compare engines, not tokenizers. CTranslate2 (float32 and
int8_float32) runs BERT's encoder and pooler; the NSP head (one 2×768 matrix) is applied in float32
numpy. ONNX Runtime runs nspzero's own export (`onnx_export`: fp32, and int8 with the head in fp32).
Peers whose package is missing are skipped with one line saying what to install.
"""
from __future__ import annotations

import json
import os
from typing import Callable, Sequence

import numpy as np
import torch

from .formats.heads import IN_ORDER_INDEX
from .scorer import NSPScorer, Pair

PeerFn = Callable[[Sequence[Pair]], np.ndarray]
CT2_TYPES = ("float32", "int8_float32")


def ctranslate2_peers(scorer: NSPScorer, workdir: str, log: Callable[[str], None]) -> dict[str, PeerFn]:
    """{"CTranslate2 float32": fn, "CTranslate2 int8_float32": fn} for the scorer's fp32 torch model."""
    try:
        import ctranslate2
        from ctranslate2.converters import TransformersConverter
    except ImportError:
        log("skipping CTranslate2: pip install ctranslate2 (or the 'peers' extra)")
        return {}
    model = scorer.model
    if getattr(model, "is_onnx", False) or not hasattr(model, "bert") or not hasattr(model, "cls"):
        log("skipping CTranslate2: it converts a torch BERT checkpoint (bench a transformers folder)")
        return {}
    encoder_dir = os.path.join(workdir, "ct2-source")
    model.bert.save_pretrained(encoder_dir)
    with open(os.path.join(encoder_dir, "config.json"), encoding="utf-8") as handle:
        config = json.load(handle)
    config.setdefault("position_embedding_type", "absolute")  # transformers 5 no longer writes it; ct2 reads it
    config["architectures"] = ["BertModel"]
    with open(os.path.join(encoder_dir, "config.json"), "w", encoding="utf-8") as handle:
        json.dump(config, handle)
    scorer.tokenizer.save_pretrained(encoder_dir)
    head = model.cls.seq_relationship
    weight, bias = head.weight.detach().float().numpy(), head.bias.detach().float().numpy()
    threads = torch.get_num_threads()
    peers: dict[str, PeerFn] = {}
    for compute_type in CT2_TYPES:
        out = os.path.join(workdir, f"ct2-{compute_type}")
        TransformersConverter(encoder_dir).convert(out, quantization=compute_type, force=True)
        encoder = ctranslate2.Encoder(out, device="cpu", compute_type=compute_type, intra_threads=threads)

        def score(pairs: Sequence[Pair], encoder=encoder) -> np.ndarray:
            encoded = scorer.encode(pairs)
            result = np.empty(len(pairs))
            for idx in scorer.batches(encoded):
                ids = [encoded[i].input_ids for i in idx]
                types = [encoded[i].token_type_ids for i in idx]
                pooled = np.asarray(encoder.forward_batch(ids, token_type_ids=types).pooler_output, dtype=np.float32)
                logits = pooled @ weight.T + bias
                logits -= logits.max(axis=1, keepdims=True)
                probs = np.exp(logits)
                result[idx] = probs[:, IN_ORDER_INDEX] / probs.sum(axis=1)
            return result
        peers[f"CTranslate2 {compute_type}"] = score
    return peers


def onnxruntime_peers(model_dir: str, workdir: str, max_length: int, batch_size: int,
                      log: Callable[[str], None]) -> dict[str, PeerFn]:
    """{"ONNX Runtime fp32": fn, "ONNX Runtime int8": fn} from nspzero's own export of `model_dir`."""
    from .onnx_model import is_onnx_folder, runtime_problem

    problem = runtime_problem()
    if problem is not None:
        log(f"skipping ONNX Runtime: {problem.message}")
        return {}
    from .onnx_export import export_onnx

    if is_onnx_folder(model_dir):
        log("skipping the ONNX Runtime peers: the model is already an ONNX folder (nspzero fp32 runs it)")
        return {}

    folder = str(export_onnx(model_dir, os.path.join(workdir, "onnx")))
    peers: dict[str, PeerFn] = {}
    for dtype, label in (("float32", "fp32"), ("int8", "int8")):
        scorer = NSPScorer.from_pretrained(folder, max_length=max_length, batch_size=batch_size, dtype=dtype)
        peers[f"ONNX Runtime {label}"] = lambda pairs, s=scorer: s.score(pairs, progress=False)
    return peers

"""A scores cache on disk, so that a killed evaluation resumes without rescoring finished pairs.

One JSON line per scored pair, appended and flushed batch by batch. The file name carries a
fingerprint of the model and scoring settings, so a different model never reads another's
scores. A line cut short by a crash is ignored on load (the valid prefix is kept).
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from .scorer import NSPScorer, Pair


def pair_key(pair: Pair) -> str:
    raw = json.dumps([pair.first, pair.second, pair.prompt, pair.anchor], ensure_ascii=False)
    return hashlib.sha1(raw.encode("utf-8")).hexdigest()[:20]


def config_hash(scorer: NSPScorer) -> str:
    """sha256 of the model's config (as saved), first 12 hex digits."""
    text = scorer.model.config.to_json_string(use_diff=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]


def scorer_fingerprint(scorer: NSPScorer) -> str:
    """Identifies model weights and settings: config, a sample of weights, dtype, max_length."""
    digest = hashlib.sha256(config_hash(scorer).encode())
    for name, tensor in sorted(scorer.model.state_dict().items()):
        if "seq_relationship" in name or "word_embeddings" in name or name.endswith("LayerNorm.weight"):
            if isinstance(tensor, torch.Tensor) and tensor.is_floating_point():
                digest.update(name.encode())
                digest.update(tensor.detach().flatten()[:16384].float().cpu().numpy().tobytes())
    digest.update(f"{scorer.dtype}|{scorer.max_length}".encode())
    return digest.hexdigest()[:16]


class ScoreCache:
    """pair → P(IsNext), loaded from and appended to `path`."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self.scores: dict[str, float] = {}
        if self.path.exists():
            with open(self.path, encoding="utf-8") as handle:
                for line in handle:
                    try:
                        key, score = json.loads(line)
                    except (ValueError, TypeError):
                        continue  # a line cut short by a crash
                    self.scores[key] = float(score)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._handle = None

    def __len__(self) -> int:
        return len(self.scores)

    def lookup(self, pairs: Sequence[Pair]) -> tuple[np.ndarray, list[int]]:
        """(scores with NaN where unknown, indexes of the pairs still to score)."""
        keys = [pair_key(p) for p in pairs]
        out = np.array([self.scores.get(k, np.nan) for k in keys], dtype=np.float64)
        return out, [i for i, v in enumerate(out) if np.isnan(v)]

    def add(self, pairs: Sequence[Pair], scores: Sequence[float]) -> None:
        if self._handle is None:
            # a crash may have left a line without its newline: start on a fresh line
            needs_newline = self.path.exists() and self.path.stat().st_size > 0 and not self._ends_with_newline()
            self._handle = open(self.path, "a", encoding="utf-8")
            if needs_newline:
                self._handle.write("\n")
        lines = []
        for pair, score in zip(pairs, scores):
            key = pair_key(pair)
            self.scores[key] = float(score)
            lines.append(json.dumps([key, float(score)]) + "\n")
        self._handle.write("".join(lines))
        self._handle.flush()

    def _ends_with_newline(self) -> bool:
        with open(self.path, "rb") as handle:
            handle.seek(-1, os.SEEK_END)
            return handle.read(1) == b"\n"

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None

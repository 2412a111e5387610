"""A scores cache on disk, so that a killed evaluation resumes without rescoring finished pairs.

One JSON line per scored pair, appended and flushed batch by batch. The file name carries a
fingerprint of everything that decides a score — every model tensor and the tokenizer files (their
`digests`), dtype, max_length — so replacing weights or vocab.txt in place at the same path rescores
everything. Unreadable lines (a crash mid-write, garbage) are skipped
with one warning naming their count; the pairs they held are rescored.
"""
from __future__ import annotations

import hashlib
import json
import logging
import math
import os
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from .digests import model_digest, tokenizer_digest
from .errors import DataError
from .scorer import NSPScorer, Pair

log = logging.getLogger("nspzero")

# bump when tokenization or encoding changes what a pair's score is (2: special-token strings in
# user text are text, label prompts are never truncated)
FINGERPRINT_VERSION = "3"  # 3: int8 adds its activation range (7 or 8 bits, by CPU)


def pair_key(pair: Pair) -> str:
    raw = json.dumps([pair.first, pair.second, pair.prompt, pair.anchor], ensure_ascii=False)
    return hashlib.sha1(raw.encode("utf-8")).hexdigest()[:20]


def config_hash(scorer: NSPScorer) -> str:
    """sha256 of the model's config (as saved), first 12 hex digits."""
    text = scorer.model.config.to_json_string(use_diff=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]


def int8_reduce_range(model) -> bool:
    """Whether the int8 model's Linear layers quantise activations to 7 bits (else 8)."""
    from . import cpu

    ranges = {module.reduce_range for module in model.modules() if isinstance(getattr(module, "reduce_range", None), bool)}
    return ranges.pop() if len(ranges) == 1 else not cpu.has_vnni()


def scorer_fingerprint(scorer: NSPScorer, by_tensors: bool = False) -> str:
    """Identifies everything that decides a score: config, every weight, the tokenizer, dtype,
    max_length, the int8 activation range and the encoding rules (FINGERPRINT_VERSION). The weights
    are keyed by their files where nspzero loaded them unchanged, else (or with `by_tensors`) by the
    tensors themselves."""
    digest = hashlib.sha256(f"v{FINGERPRINT_VERSION}|{config_hash(scorer)}".encode())
    files = scorer.owns_model and scorer.weights_from_files and not by_tensors
    digest.update(model_digest(scorer.model, files=files).encode())
    digest.update(tokenizer_digest(scorer.tokenizer).encode())
    digest.update(f"{scorer.dtype}|{scorer.max_length}".encode())
    if scorer.dtype == "int8":  # 7- or 8-bit activations follow the CPU (cpu.has_vnni): different scores
        digest.update(f"|reduce_range={int8_reduce_range(scorer.model)}".encode())
        # batch-invariant activation scales (issue 29): earlier int8 scores depended on the batch, never mix them
        digest.update(b"|activations=per-token-fixed-range")
    return digest.hexdigest()[:16]


# ---- the scores file -------------------------------------------------------------------------
def _parse_line(raw: bytes) -> Optional[tuple[str, float]]:
    """[key, score] or None for anything else (a line cut short, garbage, a score out of [0, 1])."""
    try:
        item = json.loads(raw.decode("utf-8"))
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None
    if not (isinstance(item, list) and len(item) == 2 and isinstance(item[0], str)):
        return None
    key, score = item
    if isinstance(score, bool) or not isinstance(score, (int, float)) or not math.isfinite(score) or not 0 <= score <= 1:
        return None
    return key, float(score)


class ScoreCache:
    """pair → P(IsNext), loaded from and appended to `path`."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self.scores: dict[str, float] = {}
        self.skipped = 0
        try:
            if self.path.exists():
                self._load()
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise DataError(f"score cache {self.path}: {exc.strerror or exc}; the output folder's cache/ must be a "
                            f"writable folder (remove or rename what is in the way)") from None
        self._handle = None

    def _load(self) -> None:
        with open(self.path, "rb") as handle:
            for raw in handle:
                if not raw.strip():
                    continue
                parsed = _parse_line(raw)
                if parsed is None:
                    self.skipped += 1
                    continue
                self.scores[parsed[0]] = parsed[1]
        if self.skipped:
            log.warning("score cache %s: skipped %d unreadable line(s) (cut short by a crash, or not written by "
                        "nspzero); their pairs will be scored again", self.path, self.skipped)

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

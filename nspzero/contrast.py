"""Candidates-contrast (method.md §2) and the combine rules: a candidate's pairs → its score → the
best candidate. Kept apart from `mapping` (samples-contrast, a scikit-learn estimator) so that a
request can be built and checked without importing scikit-learn or torch: a usage error comes at once.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from .errors import UsageError, shown


COMBINE_RULES = ("mean", "logmean")


def combine(scores: Sequence[float], how: str = "mean") -> float:
    """One candidate's score from its several pairs (templates × verbalizations): the mean
    P(IsNext), or with "logmean" the geometric mean exp(mean log P), which punishes a single
    template that rejects the candidate."""
    arr = np.asarray(scores, dtype=np.float64)
    if how == "mean":
        return float(arr.mean())
    if how == "logmean":
        return float(np.exp(np.log(np.clip(arr, 1e-12, 1.0)).mean()))
    raise UsageError(f"combine must be one of {', '.join(COMBINE_RULES)}, got {shown(how)}")


def candidates_contrast(scores: np.ndarray) -> np.ndarray:
    """Index of the best candidate per row of an (examples × candidates) matrix; ties → first."""
    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim != 2 or scores.shape[1] == 0:
        raise UsageError(f"candidates_contrast needs an (examples × candidates) matrix, got shape {scores.shape}")
    return np.argmax(scores, axis=1)


def multi_label(scores: np.ndarray, threshold: float) -> list[list[int]]:
    """Per row, the candidates with score ≥ threshold, best first (ties keep candidate order)."""
    scores = np.asarray(scores, dtype=np.float64)
    out = []
    for row in scores:
        order = np.argsort(-row, kind="stable")
        out.append([int(i) for i in order if row[i] >= threshold])
    return out

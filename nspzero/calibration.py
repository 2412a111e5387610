"""Calibration beyond the paper (off by default): correct each label's bias before the argmax.

- content-free (after Zhao et al. 2021, "Calibrate Before Use"): score every label prompt against
  two content-free probes, the text "N/A" and BERT's mask token alone (its id, not the text "[MASK]";
  Zhao et al.'s third, an empty text, has no tokens), and divide each P(IsNext) by that label's mean
  content-free score, so a prompt that "continues" into anything loses its head start;
- prior: divide by the label's mean P(IsNext) over the unlabeled inputs themselves.
Both keep the scores' order within a label; only the comparison across labels changes.
"""
from __future__ import annotations

import numpy as np

from .tokens import MASK_TOKEN

CONTENT_FREE_TEXTS = ("N/A", MASK_TOKEN)  # (a blank " " has no tokens: the scorer refuses it)
CALIBRATIONS = ("content-free", "prior")


def content_free(matrix: np.ndarray, content_free_row: np.ndarray) -> np.ndarray:
    """examples × labels scores divided by each label's content-free score."""
    return np.asarray(matrix, dtype=np.float64) / np.clip(np.asarray(content_free_row, dtype=np.float64), 1e-12, None)


def prior(matrix: np.ndarray) -> np.ndarray:
    """examples × labels scores divided by each label's mean score over the examples."""
    matrix = np.asarray(matrix, dtype=np.float64)
    return matrix / np.clip(matrix.mean(axis=0, keepdims=True), 1e-12, None)

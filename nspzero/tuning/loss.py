"""The tuning losses on NSP logits, as sums over a chunk (the trainer divides by the whole batch's
count, so a step accumulated over chunks is the mean over all of the batch's pairs or texts)."""
from __future__ import annotations

from typing import Sequence

import torch

from ..formats.heads import IN_ORDER_INDEX  # P(IsNext) = softmax(logits)[IN_ORDER_INDEX], as in scoring



def log_is_next(logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(log P(IsNext), log(1 - P(IsNext))) per row, from the 2 NSP logits (stable: log_softmax)."""
    logp = torch.log_softmax(logits.float(), dim=-1)
    return logp[:, IN_ORDER_INDEX], logp[:, 1 - IN_ORDER_INDEX]


def bce_sum(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """The paper's loss: binary cross-entropy on P(IsNext) against 1 (gold label) / 0, summed over pairs."""
    pos, neg = log_is_next(logits)
    return -(targets * pos + (1.0 - targets) * neg).sum()


def softmax_sum(logits: torch.Tensor, label_of: Sequence[torch.Tensor], golds: Sequence[int]) -> torch.Tensor:
    """Cross-entropy over each text's K labels, summed over texts: a label's score is log of the mean
    P(IsNext) of its pairs (its templates and words, as "mean" combines them when classifying).
    `logits` holds the texts' pairs one text after another; `label_of[t]` gives text t's pairs' labels."""
    pos, _ = log_is_next(logits)
    total = logits.new_zeros((), dtype=torch.float32)
    start = 0
    for labels, gold in zip(label_of, golds):
        part = pos[start:start + len(labels)]
        start += len(labels)
        k = int(labels.max()) + 1
        counts = torch.bincount(labels, minlength=k).to(part.dtype)
        # log mean_j p_j per label = logsumexp over its pairs - log(count)
        per_label = torch.full((k, len(labels)), float("-inf"), dtype=part.dtype, device=part.device)
        per_label[labels, torch.arange(len(labels), device=part.device)] = part
        scores = torch.logsumexp(per_label, dim=1) - counts.log()
        total = total - torch.log_softmax(scores, dim=0)[gold]
    return total

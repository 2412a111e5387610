"""Candidates-contrast, written once: candidates → pairs → (scored by `pipeline.forward`) → split →
combine → rank.

The API's labels, a FewCLUE task's labels or ChID idioms, and entity-linking candidates are all
"several candidates per input, each with one or more pairs"; they differ only in how the pairs
are made. Everything after scoring — splitting the flat scores back, combining a candidate's
pairs, aggregating windows, ranking — lives here.
"""
from __future__ import annotations

from dataclasses import dataclass
from itertools import accumulate
from typing import Iterable, Sequence, TypeVar

import numpy as np

from .contrast import candidates_contrast, combine
from .pair import Pair

T = TypeVar("T")


def split_by(items: Sequence[T], counts: Sequence[int]) -> list[Sequence[T]]:
    """Consecutive slices of `items` of the given lengths — the one place flat scores (or pairs, or
    per-text rows) are split back by counts. The counts must add up to len(items)."""
    ends = list(accumulate(counts))
    if (ends[-1] if ends else 0) != len(items):
        raise ValueError(f"counts add up to {ends[-1] if ends else 0}, but there are {len(items)} items")
    return [items[end - n:end] for n, end in zip(counts, ends)]


AGGREGATE_RULES = {"max": np.max, "mean": np.mean}


@dataclass(frozen=True)
class Candidates:
    """One input's candidates: their names, every candidate's pairs (flat, candidate by candidate),
    how many pairs each has, and how a candidate's several scores combine ("mean" or "logmean").

    A long text read in `windows` pieces has each candidate's pairs window by window (all of a
    window's prompts together): its prompts combine per window, then its windows `aggregate`
    ("max" or "mean") into its score over the whole text."""

    names: tuple[str, ...]
    pairs: tuple[Pair, ...]
    counts: tuple[int, ...]
    combine: str = "mean"
    windows: int = 1
    aggregate: str = "max"

    @classmethod
    def of(cls, groups: Iterable[tuple[str, Sequence[Pair]]], how: str = "mean") -> "Candidates":
        """From (name, pairs) per candidate."""
        groups = list(groups)
        return cls(tuple(name for name, _ in groups), tuple(p for _, ps in groups for p in ps),
                   tuple(len(ps) for _, ps in groups), how)

    def scores(self, flat: np.ndarray) -> np.ndarray:
        """This input's flat P(IsNext) (one per pair) → one combined score per candidate."""
        if self.windows == 1:
            return np.array([combine(part, self.combine) for part in split_by(flat, self.counts)], dtype=np.float64)
        reduce = AGGREGATE_RULES[self.aggregate]
        return np.array([reduce([combine(window, self.combine)
                                 for window in np.asarray(part).reshape(self.windows, -1)])
                         for part in split_by(flat, self.counts)], dtype=np.float64)


def best(names: Sequence[str], row: np.ndarray) -> str:
    """The candidate with the highest score; ties go to the one given first."""
    return names[int(candidates_contrast(np.asarray(row, dtype=np.float64)[None, :])[0])]


def ranked(names: Sequence[str], row: np.ndarray) -> dict[str, float]:
    """name → score, highest first (ties keep the given order)."""
    order = np.argsort(-np.asarray(row), kind="stable")
    return {names[i]: float(row[i]) for i in order}

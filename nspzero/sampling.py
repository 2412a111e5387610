"""Stratified samples for quick evaluations (`eval --limit N`).

FewCLUE split files are sorted by label, so "the first N lines" is often a single class. This
module picks N examples so that every gold label keeps its share, and picks the same examples on
every machine, OS and Python/NumPy version: the choice inside a label is a ranking by SHA-256
digests, not a random-number stream whose algorithm may change between versions.

Pure functions only (no I/O, no torch): the caller reads the split, passes one gold label per
example in file order, and keeps the examples at the returned positions. Callers that want the
plain first N (`--head`) simply take `range(min(n, len(labels)))` instead.
"""
from __future__ import annotations

import hashlib
from typing import Hashable, Optional, Sequence

from .errors import UsageError

# The stratum that examples without a gold label (None or "") share; they are sampled like a label.
UNLABELED = "<unlabeled>"


def _stratum(label: Optional[Hashable]) -> Hashable:
    """None and "" (no gold label, e.g. an unlabeled split) all fall into one shared stratum."""
    return UNLABELED if label is None or label == "" else label


def _check_n(n: object) -> int:
    if isinstance(n, bool) or not isinstance(n, int):
        raise UsageError(f"sample size must be a whole number of examples, got {n!r}")
    if n < 1:
        raise UsageError(f"sample size must be at least 1 example, got {n}; pass a positive --limit")
    return n


def allocate(counts: Sequence[int], n: int) -> list[int]:
    """How many of each group to take so that `n` seats follow the group sizes `counts`.

    Proportional allocation with largest-remainder rounding: group i gets floor(n·cᵢ/N), and the
    seats left over go to the largest fractional parts, ties to the earlier group. When n ≥ the
    number of groups, a group left at 0 takes one seat from the group that is most over its exact
    quota (n·cᵢ/N) among those holding two or more (ties: the earlier group). With n ≥ N every
    example is taken. Exact integer arithmetic, so no float rounding can differ between machines.
    """
    n = _check_n(n)
    if any(isinstance(c, bool) or not isinstance(c, int) or c < 1 for c in counts):
        raise UsageError(f"group sizes must be positive whole numbers, got {list(counts)}")
    total = sum(counts)
    if n >= total:
        return list(counts)
    seats = [n * c // total for c in counts]
    remainders = [n * c % total for c in counts]
    for i in sorted(range(len(counts)), key=lambda i: (-remainders[i], i))[:n - sum(seats)]:
        seats[i] += 1
    if n >= len(counts):
        for empty in [i for i, s in enumerate(seats) if s == 0]:
            # excess over the exact quota, scaled by `total` to stay integral: seats·N − n·c
            donor = max((i for i, s in enumerate(seats) if s >= 2),
                        key=lambda i: (seats[i] * total - n * counts[i], -i))
            seats[donor] -= 1
            seats[empty] = 1
    return seats


def rank_key(seed: int, label: Hashable, index: int) -> str:
    """The sort key of one example inside its label: the SHA-256 hex digest of
    f"{seed}:{label}:{index}" (label as str()). Stable across platforms and versions."""
    return hashlib.sha256(f"{seed}:{label}:{index}".encode("utf-8")).hexdigest()


def stratified_sample(gold_labels: Sequence[Optional[Hashable]], n: int, seed: int = 0) -> list[int]:
    """Sorted positions of a stratified sample of `n` examples out of `gold_labels`.

    Each distinct label is a stratum, in order of first appearance; its size is set by
    `allocate` (every label its proportional share, at least one each when n ≥ the number of
    labels). Inside a stratum the examples with the smallest `rank_key(seed, label, position)`
    are taken, so one seed always gives the same sample. Examples without a gold label (None or
    "") form one extra stratum, UNLABELED, sampled like a label; an all-unlabeled input thus gets
    a plain pseudo-random sample. n ≥ len(gold_labels) returns every position. n < 1 is a
    UsageError.
    """
    n = _check_n(n)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise UsageError(f"seed must be a whole number, got {seed!r}")
    if n >= len(gold_labels):
        return list(range(len(gold_labels)))
    strata: dict[Hashable, list[int]] = {}
    for position, label in enumerate(gold_labels):
        strata.setdefault(_stratum(label), []).append(position)
    chosen: list[int] = []
    for (label, positions), take in zip(strata.items(), allocate([len(p) for p in strata.values()], n)):
        ranked = sorted(positions, key=lambda p: rank_key(seed, label, p))
        chosen.extend(ranked[:take])
    return sorted(chosen)


def label_counts(gold_labels: Sequence[Optional[Hashable]], positions: Sequence[int]) -> dict[str, int]:
    """Examples per label among `positions`, labels in order of first appearance in the whole
    input (labels with none drawn are listed with 0): what results.json can record beside the
    positions so a reader sees the sample's make-up."""
    counts = {str(_stratum(label)): 0 for label in gold_labels}
    for p in positions:
        counts[str(_stratum(gold_labels[p]))] += 1
    return counts

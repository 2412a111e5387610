"""Labelled texts × a request → the pairs NSP-tuning trains on: each text's K label prompts made by
the classification path itself (`pipeline.iter_candidates`: templates, placement, words, windows),
target 1 for the gold label's pairs and 0 for every other's; a text's pairs stay together."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Callable, Optional, Sequence

import numpy as np

from ..errors import DataError, UsageError, shown
from ..pipeline import iter_candidates
from ..request import ClassifyRequest, check_text
from ..scorer import NSPScorer, Pair

log = logging.getLogger("nspzero")
Where = Callable[[int], str]  # example i → where it came from, for errors ("train.jsonl:12", "targets[3]")


@dataclass(frozen=True)
class TextPairs:
    """One labelled text's pairs: `pairs` label by label, `label_of[j]` the label index of pair j,
    `targets[j]` 1.0 for the gold label's pairs, else 0.0; `gold` the gold label's index."""

    pairs: tuple[Pair, ...]
    label_of: np.ndarray
    targets: np.ndarray
    gold: int


def check_examples(request: ClassifyRequest, texts: Sequence[str], targets: Sequence[str],
                   where: Optional[Where] = None, what: str = "training") -> list[str]:
    """The checked texts, or one line saying what is wrong and where: lengths differ, an empty text,
    a target not among the request's labels, fewer than 2 examples, one class only (for training).
    Conflicting duplicates (one text, two targets) are a warning: the data says both."""
    where = where or (lambda i: f"texts[{i}]")
    if isinstance(texts, str) or isinstance(targets, str):
        raise UsageError("texts and targets are lists of strings (one target label per text)")
    texts, targets = list(texts), list(targets)
    if len(texts) != len(targets):
        raise UsageError(f"{len(texts)} texts but {len(targets)} targets: give one target label per text")
    if request.label_set is None:
        raise UsageError("no labels given: tuning needs the label set (labels=..., or a prompt set)")
    names = request.labels
    checked = [check_text(t, where(i)) for i, t in enumerate(texts)]
    for i, target in enumerate(targets):
        if not isinstance(target, str) or target not in names:
            raise DataError(f"{where(i)}: target {shown(target)} is not one of the labels "
                            f"({', '.join(names[:20])}{' …' if len(names) > 20 else ''}); fix the label or add it")
    if what == "training":
        if len(checked) < 2:
            raise DataError(f"{len(checked)} {what} example(s): tuning needs at least 2 labelled texts")
        if len(set(targets)) < 2:
            raise DataError(f"every {what} example has the label {targets[0]!r}: tuning needs at least 2 classes "
                            f"(the other labels would only ever be negatives)")
    seen: dict[str, tuple[int, str]] = {}
    for i, (text, target) in enumerate(zip(checked, targets)):
        first = seen.setdefault(text, (i, target))
        if first[1] != target:
            log.warning("%s: the same text as %s has another target (%r vs %r); both are trained on",
                        where(i), where(first[0]), target, first[1])
    return checked


def text_pairs(scorer: NSPScorer, request: ClassifyRequest, texts: Sequence[str],
               targets: Sequence[str]) -> list[TextPairs]:
    """Each (checked) text's pairs and targets, in order (see `check_examples`)."""
    index = {name: i for i, name in enumerate(request.labels)}
    out = []
    for candidates, target in zip(iter_candidates(scorer, request, texts), targets):
        label_of = np.repeat(np.arange(len(candidates.counts)), candidates.counts)
        gold = index[target]
        out.append(TextPairs(candidates.pairs, label_of, (label_of == gold).astype(np.float64), gold))
    return out

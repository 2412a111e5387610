"""The one classification path, shaped like a transformers pipeline: `preprocess` (texts, each with
the request's labels or its own → windows → candidates: prompts rendered, texts tokenized) →
`forward` (score the candidates' distinct pairs in one length-sorted call) → `postprocess` (one
row of label scores per text → results), with ONE chunker (`chunked`) keeping each forward bounded.

Every front door ends here (the Python API, the CLI, the server's batcher, Ray actors, entity
linking); the server's batcher only decides when `forward` runs and on which texts, and the eval
harness runs `forward_chunked` over its tasks' own pairs (its score cache in front of the scorer).
Pairs are made and scored CHUNK_PAIRS at a time — texts are taken in order until a chunk is full,
its pairs scored in one length-sorted call (each distinct pair once) and reduced to label scores
— so memory stays bounded however many texts × labels a call has.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Iterable, Iterator, Optional, Protocol, Sequence, TypeVar, Union

import numpy as np

from .errors import UsageError, shown
from .candidates import Candidates, best, ranked, split_by
from .mapping import multi_label as labels_over
from .request import ClassifyRequest, LabelSet
from .scorer import NSPScorer, Pair, progress_bar, warn_truncated
from .tokens import token_ids
from .windows import split_windows

T = TypeVar("T")
CHUNK_PAIRS = 16384  # pairs made, encoded and scored at a time (a few tens of MB); large enough to sort well


@dataclass
class ClassificationResult:
    """One text's answer: `label` (a list for multi-label, best first) and `scores`
    (label → combined P(IsNext), highest first; only the best `top_k` when the request says so)."""

    text: str
    label: Union[str, list[str], None]
    scores: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"text": self.text, "label": self.label, "scores": self.scores}

    def to_zero_shot(self) -> dict:
        """The answer of transformers' zero-shot pipeline and of hosted zero-shot endpoints."""
        return {"sequence": self.text, "labels": list(self.scores), "scores": list(self.scores.values())}


def make_result(request: ClassifyRequest, text: str, row: np.ndarray,
                label_set: Optional[LabelSet] = None) -> ClassificationResult:
    """The mapping step of one text: C-C argmax, or every label over the threshold (best first),
    decided over all labels; the scores shown are all of them, or the best `request.top_k`, divided
    by their sum with `request.normalize`: every front door gets both from here."""
    names = (label_set or request.label_set).names
    if request.multi_label:
        label: Union[str, list[str]] = [names[i] for i in labels_over(row[None, :], request.threshold)[0]]
    else:
        label = best(names, row)
    scores = ranked(names, row)
    if request.top_k is not None and request.top_k < len(scores):
        scores = dict(list(scores.items())[:request.top_k])
    if request.normalize:  # the scores shown, divided by their sum (ranking and label unchanged)
        total = sum(scores.values()) or 1.0
        scores = {name: score / total for name, score in scores.items()}
    return ClassificationResult(text, label, scores)


class Windowing:
    """The windows each text is read in (`long_text="chunk"`), for one scorer and request: a
    window fits max_length beside the longest prompt of the text's label set, so every label reads
    the same windows. A text that fits is its own single window (as with truncation)."""

    def __init__(self, scorer: NSPScorer, request: ClassifyRequest) -> None:
        self.scorer = scorer
        self.request = request
        self._budgets: dict[LabelSet, int] = {}

    def budget(self, labels: LabelSet) -> int:
        """Text tokens left beside the label set's longest prompt ([CLS], [SEP], [SEP] counted)."""
        if labels not in self._budgets:
            prompts = {p for ps in labels.prompts for p in ps}
            ids = token_ids(self.scorer.tokenizer, prompts, self.scorer.max_length)
            self._budgets[labels] = self.scorer.max_length - 3 - max(len(i) for i in ids.values())
        return self._budgets[labels]

    def __call__(self, text: str, labels: LabelSet) -> Optional[tuple[str, ...]]:
        if self.request.long_text != "chunk":
            return None
        budget = self.budget(labels)
        if budget < 1:  # the prompt leaves no room: the scorer refuses it with its own message
            return None
        return tuple(split_windows(self.scorer.tokenizer, text, budget, min(self.request.overlap, budget // 2)))


def check_distinct_prompts(tokenizer, labels: LabelSet, limit: int) -> None:
    """Refuse two labels whose prompts this tokenizer turns into the same token ids (`Cafe` and `café`
    under an uncased, accent-stripping vocab): they would always score the same, a tie nobody is told
    about. The request is built before the model loads, so the check is here, where the tokenizer first
    meets the labels in every front door."""
    ids = token_ids(tokenizer, {p for ps in labels.prompts for p in ps}, limit)
    if any(len(i) >= limit - 3 for i in ids.values()):
        return  # cut to the limit, prompts may look alike; the scorer refuses a prompt this long by name
    seen: dict[tuple, str] = {}
    for name, prompts in zip(labels.names, labels.prompts):
        key = tuple(sorted(tuple(ids[p]) for p in prompts))
        if key in seen:
            raise UsageError(f"labels {shown(seen[key])} and {shown(name)} give the same tokens to this model's "
                             f"vocabulary (case, accents or characters it does not know), so they would always "
                             f"score the same; keep one of them, or reword one")
        seen[key] = name


def iter_candidates(scorer: NSPScorer, request: ClassifyRequest, texts: Sequence[str],
                    label_sets: Optional[Sequence[Optional[LabelSet]]] = None) -> Iterator[Candidates]:
    """Each text's candidates, made when needed: its label set (own, or the request's) × its windows;
    each distinct label set is checked once for labels the tokenizer cannot tell apart."""
    if label_sets is not None and len(label_sets) != len(texts):
        raise UsageError(f"one label set per text is needed: {len(texts)} texts, {len(label_sets)} label sets")
    windowing = Windowing(scorer, request)
    checked: set[LabelSet] = set()
    for i, text in enumerate(texts):
        own = label_sets[i] if label_sets is not None else None
        if own is None and request.label_set is None:
            raise UsageError(f"texts[{i}] has no labels: give it its own, or labels for every text")
        labels = own if own is not None else request.label_set
        if labels not in checked:
            check_distinct_prompts(scorer.tokenizer, labels, scorer.max_length)
            checked.add(labels)
        yield request.candidates(text, labels, windowing(text, labels))


def preprocess(scorer: NSPScorer, request: ClassifyRequest, texts: Sequence[str],
               label_sets: Optional[Sequence[Optional[LabelSet]]] = None) -> list[Candidates]:
    """Every text's candidates at once (the server counts a request's pairs before queueing it)."""
    return list(iter_candidates(scorer, request, texts, label_sets))


def chunked(items: Iterable[T], size: Callable[[T], int], max_size: int) -> Iterator[list[T]]:
    """The one chunker: consecutive runs of `items` whose sizes add up to at most `max_size`
    (an item bigger than that is a run of its own), so that each forward stays bounded."""
    run: list[T] = []
    total = 0
    for item in items:
        n = size(item)
        if run and total + n > max_size:
            yield run
            run, total = [], 0
        run.append(item)
        total += n
    if run:
        yield run


class PairScoring(Protocol):
    """What `forward` scores pairs with: `NSPScorer` itself, `distributed.RayPairScorer`, or the
    harness's score cache in front of either; `max_length` words the truncation warning."""

    max_length: int

    def score(self, pairs: Sequence[Pair], progress: Optional[bool] = None, desc: str = "scoring",
              on_truncated: Optional[Callable[[int, int], None]] = None) -> np.ndarray: ...


def forward(scorer: PairScoring, candidates: Sequence[Candidates], progress: Optional[bool] = False,
            on_truncated: Optional[Callable[[int, int], None]] = None, desc: str = "scoring") -> list[np.ndarray]:
    """The scoring step: every pair of `candidates` in ONE scoring call (so length-sorting and
    de-duplication span them all), split back → one row per Candidates (its `scores` of its part).
    `on_truncated`: see `NSPScorer.score`."""
    flat = scorer.score([p for c in candidates for p in c.pairs], progress=progress, desc=desc, on_truncated=on_truncated)
    return [c.scores(part) for c, part in zip(candidates, split_by(flat, [len(c.pairs) for c in candidates]))]


def forward_chunked(scorer: PairScoring, candidates: Iterable[Candidates], progress: Optional[bool] = None,
                    chunk_pairs: int = CHUNK_PAIRS, desc: str = "scoring", pairs: int = 0, items: int = 0,
                    over: tuple[str, str] = ("classifying", "text")) -> Iterator[np.ndarray]:
    """`forward` over runs of consecutive candidates of about `chunk_pairs` pairs (the one chunker),
    one row per Candidates, in order. A call of one chunk shows the scorer's pair bar (`desc`); one
    whose `pairs` (an estimate is enough) take several shows a bar over its `items` instead (`over`:
    its desc and unit). Pairs cut to max_length give one warning for the call, summed over its chunks."""
    several = pairs > chunk_pairs
    cut = [0, 0]   # pairs truncated, distinct pairs scored: summed over the chunks

    def count(n_cut: int, n_total: int) -> None:
        cut[0] += n_cut
        cut[1] += n_total
    with progress_bar(progress if several else False, pairs, items, *over) as bar:
        for run_ in chunked(candidates, lambda c: len(c.pairs), chunk_pairs):
            yield from forward(scorer, run_, False if several else progress, count, desc)
            bar.update(len(run_))
    warn_truncated(*cut, scorer.max_length)  # on completion only: a failed call's partial counts would mislead


def postprocess(request: ClassifyRequest, texts: Sequence[str], rows: Sequence[np.ndarray],
                label_sets: Optional[Sequence[Optional[LabelSet]]] = None) -> list[ClassificationResult]:
    """The mapping step of each text (`make_result`)."""
    own = label_sets if label_sets is not None else [None] * len(texts)
    return [make_result(request, text, row, ls) for text, row, ls in zip(texts, rows, own)]


def label_rows(scorer: NSPScorer, request: ClassifyRequest, texts: Sequence[str],
               label_sets: Optional[Sequence[Optional[LabelSet]]] = None, progress: Optional[bool] = None,
               chunk_pairs: int = CHUNK_PAIRS) -> Iterator[np.ndarray]:
    """One row of combined label scores per text, in order; pairs are made and scored in chunks of
    about `chunk_pairs` (whole texts; a single text with more pairs is one chunk)."""
    own = label_sets if label_sets is not None else [None] * len(texts)
    estimate = sum((ls or request.label_set).pairs_per_window for ls in own
                   if ls is not None or request.label_set is not None)
    yield from forward_chunked(scorer, iter_candidates(scorer, request, texts, label_sets), progress, chunk_pairs,
                               pairs=estimate, items=len(texts))


def run(scorer: NSPScorer, request: ClassifyRequest, texts: Sequence[str],
        label_sets: Optional[Sequence[Optional[LabelSet]]] = None, progress: Optional[bool] = None,
        chunk_pairs: int = CHUNK_PAIRS) -> list[ClassificationResult]:
    """Checked texts × a built request (and optionally each text's own labels) → one result each."""
    return postprocess(request, texts, list(label_rows(scorer, request, texts, label_sets, progress, chunk_pairs)),
                       label_sets)

"""NSPClassifier: the public API — texts × labels → pairs → scorer → C-C → results.

Scoring rule for a label with several verbalizations and/or templates: its score is the mean
P(IsNext) over every (template, verbalization) pair of that label (or, with combine="logmean",
the geometric mean). The best label is the one with the highest score; ties go to the label
given first.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional, Sequence, Union

import numpy as np

from .errors import UsageError
from .linking import LinkResult, link
from .mapping import COMBINE_RULES, candidates_contrast, combine, multi_label
from .scorer import NSPScorer, Pair
from .templates import LabelsArg, Template, check_placement, check_unicode, label_words


@dataclass
class ClassificationResult:
    """One text's answer: `label` (a list for multi-label, best first) and `scores`
    (label → mean P(IsNext), highest first)."""

    text: str
    label: Union[str, list[str], None]
    scores: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"text": self.text, "label": self.label, "scores": self.scores}


def check_texts(texts: Union[str, Sequence[str]]) -> tuple[list[str], bool]:
    """Return (texts as a list, whether a single string was given). Empty or non-string items
    are UsageErrors naming their index: an empty text has nothing for the NSP head to read."""
    single = isinstance(texts, str)
    items = [texts] if single else texts
    if items is None or not isinstance(items, Sequence):
        raise UsageError(f"texts must be a string or a list of strings, got {type(texts).__name__}")
    items = list(items)
    if not items:
        raise UsageError("no texts given; pass at least one text")
    for i, t in enumerate(items):
        if not isinstance(t, str):
            raise UsageError(f"texts[{i}] is {type(t).__name__} {t!r}, not a string")
        if not t.strip():
            raise UsageError(f"texts[{i}] is empty; remove empty texts (an empty sentence gives a meaningless score)")
        check_unicode(t, f"texts[{i}]")
    return items, single


def parse_templates(template: Union[str, Sequence[str]]) -> list[Template]:
    """One template or a list of them (their scores are averaged), each needing {label}."""
    sources = [template] if isinstance(template, str) else list(template)
    if not sources:
        raise UsageError("no template given; pass e.g. '{label}' or '这是一则{label}新闻'")
    return [Template.parse(s) for s in sources]


def label_pairs(texts: Sequence[str], words: dict[str, tuple[str, ...]], templates: Sequence[Template],
                placement: str) -> tuple[list[Pair], list[int]]:
    """The NSP pairs of texts × labels, and how many (template, verbalization) pairs each label has.

    Order: text-major, then label, then template, then verbalization — `mean_scores` relies on it.
    """
    prompts = {label: [t.render(label=w) for t in templates for w in ws] for label, ws in words.items()}
    pairs: list[Pair] = []
    for text in texts:
        for label_prompts in prompts.values():
            for p in label_prompts:
                pairs.append(Pair(p, text) if placement == "prefix" else Pair(text, p, prompt="second"))
    return pairs, [len(v) for v in prompts.values()]


def mean_scores(flat: np.ndarray, n_texts: int, counts: Sequence[int], how: str = "mean") -> np.ndarray:
    """Flat P(IsNext) of `label_pairs` → texts × labels matrix of per-label scores (the averaging rule)."""
    expected = n_texts * sum(counts)
    if len(flat) != expected:
        raise ValueError(f"expected {expected} scores for {n_texts} texts, got {len(flat)}")
    matrix = np.empty((n_texts, len(counts)))
    pos = 0
    for i in range(n_texts):
        for j, n in enumerate(counts):
            matrix[i, j] = combine(flat[pos:pos + n], how)
            pos += n
    return matrix


def _result(text: str, names: list[str], row: np.ndarray, multi: bool, threshold: float) -> ClassificationResult:
    order = np.argsort(-row, kind="stable")
    scores = {names[i]: float(row[i]) for i in order}
    if multi:
        label: Union[str, list[str]] = [names[i] for i in multi_label(row[None, :], threshold)[0]]
    else:
        label = names[int(candidates_contrast(row[None, :])[0])]
    return ClassificationResult(text, label, scores)


@dataclass
class PreparedCall:
    """One validated `classify` call, split in two so that a caller (the HTTP server) can score the
    `pairs` of many calls together: `results(flat)` turns this call's scores back into results."""

    texts: list[str]
    single: bool
    names: list[str]
    counts: list[int]
    pairs: list[Pair]
    multi_label: bool
    threshold: float
    combine: str = "mean"

    def results(self, flat: np.ndarray) -> list[ClassificationResult]:
        matrix = mean_scores(flat, len(self.texts), self.counts, self.combine)
        return [_result(text, self.names, row, self.multi_label, self.threshold)
                for text, row in zip(self.texts, matrix)]


def prepare_call(texts: Union[str, Sequence[str]], labels: LabelsArg, template: Union[str, Sequence[str]] = "{label}",
                 placement: str = "prefix", multi_label: bool = False, threshold: float = 0.5,
                 combine: str = "mean") -> PreparedCall:
    """Validate the arguments of `NSPClassifier.classify` (raising its UsageErrors) and build its pairs."""
    items, single = check_texts(texts)
    words = label_words(labels)
    if len(words) < 2 and not multi_label:
        raise UsageError(f"only one label ({next(iter(words))!r}) given; single-label classification needs at "
                         "least two candidates (or use multi_label=True to test one label against a threshold)")
    if not isinstance(threshold, (int, float)) or not 0.0 <= threshold <= 1.0:
        raise UsageError(f"threshold must be a probability between 0 and 1, got {threshold!r}")
    templates = parse_templates(template)
    check_placement(placement)
    if combine not in COMBINE_RULES:
        raise UsageError(f"combine must be one of {', '.join(COMBINE_RULES)}, got {combine!r}")
    pairs, counts = label_pairs(items, words, templates, placement)
    return PreparedCall(items, single, list(words), counts, pairs, bool(multi_label), float(threshold), combine)


class NSPClassifier:
    """Zero-shot classifier built on an NSPScorer (see `from_pretrained`)."""

    def __init__(self, scorer: NSPScorer) -> None:
        self.scorer = scorer

    @classmethod
    def from_pretrained(cls, name_or_path: str, device: Optional[str] = None, max_length: int = 256,
                        batch_size: int = 32, dtype: str = "float32",
                        compile: Union[bool, str] = False) -> "NSPClassifier":
        """Load a BERT checkpoint with a trained NSP head from a hub name or a local directory.
        `compile=True` runs the model through torch.compile (faster for long jobs; see NSPScorer);
        "auto" compiles once scoring has taken AUTO_COMPILE_AFTER_S seconds."""
        return cls(NSPScorer.from_pretrained(name_or_path, device=device, max_length=max_length,
                                             batch_size=batch_size, dtype=dtype, compile=compile))

    def score_pairs(self, first: Sequence[str], second: Sequence[str], progress: Optional[bool] = None) -> np.ndarray:
        """P(IsNext) of each (first[i], second[i]) pair, shape (n,)."""
        if isinstance(first, str) or isinstance(second, str):
            raise UsageError("score_pairs takes two lists of strings; wrap single strings in a list")
        first, second = list(first), list(second)
        if len(first) != len(second):
            raise UsageError(f"score_pairs needs lists of equal length, got {len(first)} and {len(second)}")
        for name, seq in (("first", first), ("second", second)):
            for i, s in enumerate(seq):
                if not isinstance(s, str):
                    raise UsageError(f"{name}[{i}] is {type(s).__name__} {s!r}, not a string")
                check_unicode(s, f"{name}[{i}]")
        return self.scorer.score([Pair(a, b) for a, b in zip(first, second)], progress=progress)

    def label_scores(self, texts: Union[str, Sequence[str]], labels: LabelsArg,
                     template: Union[str, Sequence[str]] = "{label}", placement: str = "prefix",
                     progress: Optional[bool] = None, combine: str = "mean") -> tuple[list[str], np.ndarray]:
        """(label names, texts × labels matrix of combined P(IsNext)) — the scores before mapping."""
        call = prepare_call(texts, labels, template, placement, multi_label=True, threshold=0.0, combine=combine)
        flat = self.scorer.score(call.pairs, progress=progress)
        return call.names, mean_scores(flat, len(call.texts), call.counts, combine)

    def classify(self, texts: Union[str, Sequence[str]], labels: LabelsArg, template: Union[str, Sequence[str]] = "{label}",
                 placement: str = "prefix", multi_label: bool = False, threshold: float = 0.5,
                 progress: Optional[bool] = None, combine: str = "mean",
                 ) -> Union[ClassificationResult, list[ClassificationResult]]:
        """Classify `texts` among `labels`; a single string gives a single result.

        `labels`: a list of names, or a dict name → verbalization(s). `template`: a string with
        {label}, or a list of them. `placement`: 'prefix' (prompt is sentence A, the paper's
        default) or 'suffix'. With `multi_label`, `.label` lists every label whose score ≥
        `threshold`, best first (one label is then allowed); otherwise at least two labels.
        `combine`: how a label's several pairs make its score — "mean" P(IsNext) or "logmean".
        """
        call = prepare_call(texts, labels, template, placement, multi_label, threshold, combine)
        results = call.results(self.scorer.score(call.pairs, progress=progress))
        return results[0] if call.single else results

    def link(self, contexts: Union[str, Sequence[str]], candidates) -> Union[LinkResult, list[LinkResult]]:
        """Entity linking: for each mention context, the candidate entity whose description has the
        highest P(IsNext) after it. `candidates`: dict id → description or list of (id, description);
        with a list of contexts, a list of such candidate sets. A single string gives a single result."""
        items, single = check_texts(contexts)
        results = link(self.scorer, items, [candidates] if single else candidates)
        return results[0] if single else results

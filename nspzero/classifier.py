"""NSPClassifier: the public API — texts × labels → pairs → scorer → C-C → results.

Scoring rule for a label with several verbalizations and/or templates: its score is the mean
P(IsNext) over every (template, verbalization) pair of that label. The best label is the one
with the highest mean; ties go to the label given first.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional, Sequence, Union

import numpy as np

from .errors import UsageError
from .mapping import candidates_contrast, multi_label
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


class NSPClassifier:
    """Zero-shot classifier built on an NSPScorer (see `from_pretrained`)."""

    def __init__(self, scorer: NSPScorer) -> None:
        self.scorer = scorer

    @classmethod
    def from_pretrained(cls, name_or_path: str, device: Optional[str] = None, max_length: int = 256,
                        batch_size: int = 32, dtype: str = "float32") -> "NSPClassifier":
        """Load a BERT checkpoint with a trained NSP head from a hub name or a local directory."""
        return cls(NSPScorer.from_pretrained(name_or_path, device=device, max_length=max_length,
                                             batch_size=batch_size, dtype=dtype))

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

    def label_scores(self, texts: Sequence[str], labels: LabelsArg, template: Union[str, Sequence[str]] = "{label}",
                     placement: str = "prefix", progress: Optional[bool] = None) -> tuple[list[str], np.ndarray]:
        """(label names, texts × labels matrix of mean P(IsNext)) — the scores before mapping."""
        words = label_words(labels)
        templates = parse_templates(template)
        check_placement(placement)
        prompts = {label: [t.render(label=w) for t in templates for w in ws] for label, ws in words.items()}
        pairs: list[Pair] = []
        for text in texts:
            for label_prompts in prompts.values():
                for p in label_prompts:
                    pairs.append(Pair(p, text) if placement == "prefix" else Pair(text, p, prompt="second"))
        flat = self.scorer.score(pairs, progress=progress)
        matrix = np.empty((len(texts), len(words)))
        pos = 0
        for i in range(len(texts)):
            for j, label_prompts in enumerate(prompts.values()):
                matrix[i, j] = flat[pos:pos + len(label_prompts)].mean()
                pos += len(label_prompts)
        return list(words), matrix

    def classify(self, texts: Union[str, Sequence[str]], labels: LabelsArg, template: Union[str, Sequence[str]] = "{label}",
                 placement: str = "prefix", multi_label: bool = False, threshold: float = 0.5,
                 progress: Optional[bool] = None) -> Union[ClassificationResult, list[ClassificationResult]]:
        """Classify `texts` among `labels`; a single string gives a single result.

        `labels`: a list of names, or a dict name → verbalization(s). `template`: a string with
        {label}, or a list of them. `placement`: 'prefix' (prompt is sentence A, the paper's
        default) or 'suffix'. With `multi_label`, `.label` lists every label whose score ≥
        `threshold`, best first (one label is then allowed); otherwise at least two labels.
        """
        items, single = check_texts(texts)
        words = label_words(labels)
        if len(words) < 2 and not multi_label:
            raise UsageError(f"only one label ({next(iter(words))!r}) given; single-label classification needs at "
                             "least two candidates (or use multi_label=True to test one label against a threshold)")
        if not isinstance(threshold, (int, float)) or not 0.0 <= threshold <= 1.0:
            raise UsageError(f"threshold must be a probability between 0 and 1, got {threshold!r}")
        names, matrix = self.label_scores(items, words, template, placement, progress)
        results = [self._result(text, names, row, multi_label, threshold) for text, row in zip(items, matrix)]
        return results[0] if single else results

    @staticmethod
    def _result(text: str, names: list[str], row: np.ndarray, multi: bool, threshold: float) -> ClassificationResult:
        order = np.argsort(-row, kind="stable")
        scores = {names[i]: float(row[i]) for i in order}
        if multi:
            label: Union[str, list[str]] = [names[i] for i in multi_label(row[None, :], threshold)[0]]
        else:
            label = names[int(candidates_contrast(row[None, :])[0])]
        return ClassificationResult(text, label, scores)

"""Samples-contrast tasks: one pair, one score per example; examples are compared with each
other (method.md §2). `pair` (OCNLI, BUSTM, CSL) and `coref` (CLUEWSC) differ only in config:
which fields fill the prompt's first and second sentences."""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from ..errors import DataError, UsageError
from ..mapping import SamplesContrast, batched_samples_contrast
from ..prompt_sets import PromptVariant
from ..scorer import Pair
from .base import Decision, Example, Task, TaskConfig

BATCHED_CHUNKS = (1, 2, 4, 8, 16, 32, 64, 128)


class PairTask(Task):
    needs_dev = True

    def __init__(self, config: TaskConfig, prompt: PromptVariant) -> None:
        super().__init__(config)
        if len(config.label_order) < 2:
            raise UsageError(f"{config.source}: task {config.name} needs 'label_order' (labels by rising score)")
        if "label" not in config.fields:
            raise UsageError(f"{config.source}: task {config.name} needs a 'label' field")
        roles = tuple(r for r in config.fields if r != "label")
        try:
            self.first, self.second = prompt.pair_templates(roles)
        except UsageError as exc:
            raise UsageError(f"prompt {prompt.key} does not fit task {config.name} (fields {', '.join(roles)}): {exc}") from None
        self.prompt = prompt
        self.text_roles = roles

    def check_example(self, example: Example) -> None:
        if example.gold not in self.config.label_order:
            raise DataError(f"{example.where}: label {example.gold!r} is not one of {', '.join(self.config.label_order)}")

    def example_pairs(self, example: Example) -> list[Pair]:
        join = self.config.join
        values = {k: join.join(map(str, v)) if isinstance(v, list) else str(v) for k, v in example.fields.items()}
        return [Pair(self.first.render(**values), self.second.render(**values))]

    def decide(self, test: Sequence[Example], test_scores: Sequence[np.ndarray],
               dev_scores: Optional[Sequence[np.ndarray]] = None) -> Decision:
        labels = self.config.label_order
        scores = np.array([s[0] for s in test_scores])
        if dev_scores is None:
            raise DataError(f"task {self.config.name}: samples-contrast needs dev scores to learn thresholds")
        mapping = SamplesContrast(len(labels)).fit([s[0] for s in dev_scores])
        predictions = [labels[i] for i in mapping.predict(scores)]
        gold = np.array([e.gold for e in test])
        batched = {}
        for chunk in BATCHED_CHUNKS + (len(scores),):
            pred = np.array([labels[i] for i in batched_samples_contrast(scores, len(labels), chunk)])
            batched[str(chunk) if chunk in BATCHED_CHUNKS else "all"] = float(np.mean(pred == gold))
        extra = {"thresholds": [float(t) for t in mapping.thresholds_], "label_order": list(labels),
                 "dev_examples": len(dev_scores), "batched_accuracy": batched}
        return Decision(predictions, [{"score": float(s)} for s in scores], extra)

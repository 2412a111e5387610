"""Candidates-contrast tasks: several candidates per example, the highest mean P(IsNext) wins.

`classification` (EPRSTMT, TNEWS, CSLDCP, IFLYTEK): candidates are the prompt set's labels.
`cloze` (ChID): candidates are the example's idioms, placed at the blank by soft positions.
"""
from __future__ import annotations

from typing import Any, Optional, Sequence

import numpy as np

from ..errors import DataError
from ..mapping import candidates_contrast, combine
from ..prompt_sets import PromptVariant
from ..scorer import Pair
from .base import Decision, Example, Task, TaskConfig, require_fields


class CandidatesTask(Task):
    """C-C: `candidates(example)` gives (name, pairs) per candidate; the rest is shared."""

    combine_rule = "mean"

    def candidates(self, example: Example) -> list[tuple[str, list[Pair]]]:
        raise NotImplementedError

    def example_pairs(self, example: Example) -> list[Pair]:
        return [p for _, pairs in self.candidates(example) for p in pairs]

    def decide(self, test: Sequence[Example], test_scores: Sequence[np.ndarray],
               dev_scores: Optional[Sequence[np.ndarray]] = None) -> Decision:
        predictions, evidence = [], []
        for example, flat in zip(test, test_scores):
            names, means, pos = [], [], 0
            for name, pairs in self.candidates(example):
                names.append(name)
                means.append(combine(flat[pos:pos + len(pairs)], self.combine_rule))
                pos += len(pairs)
            best = names[int(candidates_contrast(np.array([means]))[0])]
            predictions.append(best)
            evidence.append({"scores": dict(zip(names, means))})
        return Decision(predictions, evidence)


class ClassificationTask(CandidatesTask):
    def __init__(self, config: TaskConfig, prompt: PromptVariant) -> None:
        super().__init__(config)
        require_fields(config, ("text", "label"))
        if prompt.words is None:
            raise DataError(f"{config.source}: task {config.name} needs a label prompt (template + words), "
                            f"but {prompt.key} is a pair prompt")
        self.prompt = prompt
        self.combine_rule = prompt.combine
        from ..templates import Template

        templates = [Template.parse(t) for t in prompt.templates]
        self.prompts = {label: [t.render(label=w) for t in templates for w in words]
                        for label, words in prompt.words.items()}

    def check_example(self, example: Example) -> None:
        if example.gold not in self.prompts:
            raise DataError(f"{example.where}: label {example.gold!r} is not among the {len(self.prompts)} labels "
                            f"of prompt {self.prompt.key}")

    def candidates(self, example: Example) -> list[tuple[str, list[Pair]]]:
        text = str(example.fields["text"])
        if self.prompt.placement == "prefix":
            return [(label, [Pair(p, text, prompt="first") for p in ps]) for label, ps in self.prompts.items()]
        return [(label, [Pair(text, p, prompt="second") for p in ps]) for label, ps in self.prompts.items()]


class ClozeTask(CandidatesTask):
    """ChID: the blank is removed from the passage; with soft positions each candidate's tokens
    get the position ids of the blank (method.md §4). Extra blanks in a passage are removed."""

    def __init__(self, config: TaskConfig, prompt: PromptVariant) -> None:
        super().__init__(config)
        require_fields(config, ("content", "candidates", "answer"))
        self.first, _ = prompt.pair_templates(("candidate", "content"))
        self.prompt = prompt

    def gold_of(self, record: dict, fields: dict[str, Any], where: str) -> str:
        candidates, answer = fields["candidates"], fields["answer"]
        if not isinstance(candidates, list) or not candidates or not all(isinstance(c, str) for c in candidates):
            raise DataError(f"{where}: field {self.config.fields['candidates']!r} must be a list of idioms")
        if isinstance(answer, bool) or not isinstance(answer, int) or not 0 <= answer < len(candidates):
            raise DataError(f"{where}: answer {answer!r} is not an index into the {len(candidates)} candidates")
        if self.config.blank not in str(fields["content"]):
            raise DataError(f"{where}: the passage has no blank {self.config.blank!r}")
        return candidates[answer]

    def candidates(self, example: Example) -> list[tuple[str, list[Pair]]]:
        content = str(example.fields["content"])
        anchor = content.index(self.config.blank)
        passage = content[:anchor] + content[anchor:].replace(self.config.blank, "")
        out = []
        for idiom in example.fields["candidates"]:
            first = self.first.render(candidate=idiom, content=passage)
            out.append((idiom, [Pair(first, passage, anchor=anchor if self.config.soft_positions else None)]))
        return out

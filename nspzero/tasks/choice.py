"""Choice tasks (candidates-contrast): several candidates per example, the highest mean P(IsNext) wins.

The scoring itself is `nspzero.candidates`; this module only says where each task's candidates come from.

`classification` (EPRSTMT, TNEWS, CSLDCP, IFLYTEK): candidates are the prompt set's labels.
`cloze` (ChID): candidates are the example's idioms, placed at the blank by soft positions.
"""
from __future__ import annotations

from typing import Any, Optional, Sequence

import numpy as np

from ..calibration import CONTENT_FREE_TEXTS, content_free, prior
from ..candidates import Candidates, best
from ..errors import DataError
from ..mapping import candidates_contrast
from ..metrics import compute
from ..prompt_sets import PromptVariant, prompt_family
from ..request import ClassifyRequest, build_request
from ..scorer import Pair
from .base import Decision, Example, ExampleScoring, Task, TaskConfig, require_fields


class CandidatesTask(Task):
    """C-C: `candidates(example)` gives the example's `Candidates`; scoring, combining and ranking
    are the library's one candidates-contrast path (nspzero.candidates)."""

    def candidates(self, example: Example) -> Candidates:
        raise NotImplementedError

    def example_pairs(self, example: Example) -> list[Pair]:
        return list(self.candidates(example).pairs)

    def decide(self, test: Sequence[Example], test_scores: Sequence[np.ndarray],
               dev_scores: Optional[Sequence[np.ndarray]] = None) -> Decision:
        predictions, evidence = [], []
        for example, flat in zip(test, test_scores):
            cands = self.candidates(example)
            row = cands.scores(flat)
            predictions.append(best(cands.names, row))
            evidence.append({"scores": dict(zip(cands.names, row.tolist()))})
        return Decision(predictions, evidence)


class ClassificationTask(CandidatesTask):
    """The task form of `NSPClassifier.classify`: the prompt variant becomes the same
    `ClassifyRequest` the API builds, so a task and an API call score identical pairs."""

    text_roles = ("text",)

    def __init__(self, config: TaskConfig, prompt: PromptVariant) -> None:
        super().__init__(config)
        require_fields(config, ("text", "label"))
        if prompt.words is None:
            raise DataError(f"{config.source}: task {config.name} needs a label prompt (template + words), "
                            f"but {prompt.key} is a pair prompt")
        self.prompt = prompt
        self.request = request_for(prompt)

    def check_example(self, example: Example) -> None:
        if example.gold not in self.request.labels:
            raise DataError(f"{example.where}: label {example.gold!r} is not among the {len(self.request.labels)} "
                            f"labels of prompt {self.prompt.key}")

    def candidates(self, example: Example) -> Candidates:
        return self.request.candidates(str(example.fields["text"]))

    def extra_results(self, test: Sequence[Example], test_scores: Sequence[np.ndarray], decision: Decision,
                      score: ExampleScoring, compare_prompts: bool = False,
                      calibration: Sequence[str] = ()) -> dict[str, Any]:
        """Prompt variants / ensembles (`compare_prompts`) and calibrated accuracies. Pairs already
        scored come from the harness's cache, so each distinct pair runs once."""
        gold = [e.gold for e in test]
        extra: dict[str, Any] = {}
        if compare_prompts:
            variants = {}
            for variant in prompt_family(self.prompt):
                other = ClassificationTask(self.config, variant)
                predictions = other.decide(test, score(other, test, f"{self.config.name} {variant.name}")).predictions
                variants[variant.name] = {"accuracy": compute(["accuracy"], gold, predictions)["accuracy"],
                                          "templates": list(variant.templates), "combine": variant.combine}
            extra["variants"] = variants
        if calibration:
            names = list(self.request.labels)
            matrix = np.array([[ev["scores"][n] for n in names] for ev in decision.evidence])
            calibrated = {}
            for how in calibration:
                if how == "content-free":
                    probes = [Example(-1, {"text": t}, "") for t in CONTENT_FREE_TEXTS]
                    rows = score(self, probes, f"{self.config.name} content-free")
                    adjusted = content_free(matrix, np.mean([self.candidates(p).scores(r)
                                                             for p, r in zip(probes, rows)], axis=0))
                else:
                    adjusted = prior(matrix)
                predictions = [names[i] for i in candidates_contrast(adjusted)]
                calibrated[how] = compute(["accuracy"], gold, predictions)["accuracy"]
            extra["calibrated"] = calibrated
        return extra


class ClozeTask(CandidatesTask):
    """ChID: the blank is removed from the passage; with soft positions each candidate's tokens
    get the position ids of the blank (method.md §4). Extra blanks in a passage are removed."""

    text_roles = ("content",)

    def __init__(self, config: TaskConfig, prompt: PromptVariant) -> None:
        super().__init__(config)
        require_fields(config, ("content", "candidates", "answer"))
        self.first, _ = prompt.pair_templates(("candidate", "content"))
        self.prompt = prompt

    def describe(self) -> dict[str, Any]:
        return {"soft_positions": self.config.soft_positions}

    def stratum(self, example: Example) -> Any:
        """The answer's position among the candidates (the gold idiom differs in every example)."""
        return example.fields["answer"]

    def gold_of(self, record: dict, fields: dict[str, Any], where: str) -> str:
        candidates, answer = fields["candidates"], fields["answer"]
        if not isinstance(candidates, list) or not candidates or not all(isinstance(c, str) for c in candidates):
            raise DataError(f"{where}: field {self.config.fields['candidates']!r} must be a list of idioms")
        if isinstance(answer, bool) or not isinstance(answer, int) or not 0 <= answer < len(candidates):
            raise DataError(f"{where}: answer {answer!r} is not an index into the {len(candidates)} candidates")
        if self.config.blank not in str(fields["content"]):
            raise DataError(f"{where}: the passage has no blank {self.config.blank!r}")
        return candidates[answer]

    def candidates(self, example: Example) -> Candidates:
        content = str(example.fields["content"])
        anchor = content.index(self.config.blank)
        passage = content[:anchor] + content[anchor:].replace(self.config.blank, "")
        out = []
        for idiom in example.fields["candidates"]:
            first = self.first.render(candidate=idiom, content=passage)
            out.append((idiom, [Pair(first, passage, anchor=anchor if self.config.soft_positions else None)]))
        return Candidates.of(out)


def request_for(variant: PromptVariant) -> ClassifyRequest:
    """The classification request of a label prompt variant (its templates, words, placement, combine)."""
    return build_request({label: list(words) for label, words in variant.words.items()},
                         template=list(variant.templates), placement=variant.placement, combine=variant.combine,
                         multi_label=True, threshold=0.0)

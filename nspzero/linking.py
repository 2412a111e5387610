"""Entity linking / typing with NSP (method.md §5): the mention in context is sentence A, each
candidate entity's knowledge-base description is sentence B; candidates-contrast picks the entity."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence, Union

from .errors import UsageError, shown
from .candidates import best, ranked
from .pipeline import label_rows
from .request import build_request
from .scorer import NSPScorer

EntityCandidates = Union[Mapping[str, str], Sequence[Sequence[str]]]


@dataclass
class LinkResult:
    """The best entity id for one mention context, and every candidate's P(IsNext), best first."""

    text: str
    entity: str
    scores: dict[str, float]

    def to_dict(self) -> dict:
        return {"text": self.text, "entity": self.entity, "scores": self.scores}


def check_candidates(candidates: EntityCandidates, where: str = "candidates") -> list[tuple[str, str]]:
    """(entity id, description) pairs from a dict or a list of pairs/objects; ids must be distinct."""
    if isinstance(candidates, Mapping):
        items = list(candidates.items())
    elif isinstance(candidates, Sequence) and not isinstance(candidates, str):
        items = []
        for i, c in enumerate(candidates):
            if isinstance(c, Mapping) and "id" in c and "description" in c:
                items.append((c["id"], c["description"]))
            elif isinstance(c, Sequence) and not isinstance(c, str) and len(c) == 2:
                items.append((c[0], c[1]))
            else:
                raise UsageError(f"{where}[{i}] must be (entity id, description) or "
                                 f'{{"id": ..., "description": ...}}, got {shown(c)}')
    else:
        raise UsageError(f"{where} must be a dict id → description or a list of (id, description)")
    if not items:
        raise UsageError(f"{where} is empty; give at least one candidate entity")
    seen = set()
    out = []
    for i, (entity, description) in enumerate(items):
        entity = str(entity)
        if entity in seen:
            raise UsageError(f"{where}: entity id {shown(entity)} is given twice")
        if not isinstance(description, str) or not description.strip():
            raise UsageError(f"{where}: entity {shown(entity)} has an empty description")
        seen.add(entity)
        out.append((entity, description))
    return out


def link(scorer: NSPScorer, contexts: Sequence[str], candidates: Sequence[EntityCandidates]) -> list[LinkResult]:
    """One LinkResult per mention context: per-row classification where each context's labels are
    its candidate entities, each with its description as the prompt sentence after the context
    (both sides are data, cut by the paper's rule); the same path, one scoring call for all pairs."""
    if len(contexts) != len(candidates):
        raise UsageError(f"link needs one candidate list per context, got {len(contexts)} and {len(candidates)}")
    request = build_request(None, labels_per_row=True, placement="suffix", multi_label=True, threshold=0.0,
                            cut_prompts=True)
    label_sets = [request.labels_for({entity: {"description": text} for entity, text in
                                      check_candidates(c, f"candidates[{i}]")}, f"candidates[{i}]")
                  for i, c in enumerate(candidates)]
    rows = label_rows(scorer, request, contexts, label_sets)
    return [LinkResult(text, best(labels.names, row), ranked(labels.names, row))
            for text, labels, row in zip(contexts, label_sets, rows)]

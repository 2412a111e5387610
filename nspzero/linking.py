"""Entity linking / typing with NSP (method.md §5): the mention in context is sentence A, each
candidate entity's knowledge-base description is sentence B; candidates-contrast picks the entity."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence, Union

from .errors import UsageError
from .candidates import Candidates, best, ranked, score_candidates
from .scorer import NSPScorer, Pair

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
                                 f'{{"id": ..., "description": ...}}, got {c!r}')
    else:
        raise UsageError(f"{where} must be a dict id → description or a list of (id, description)")
    if not items:
        raise UsageError(f"{where} is empty; give at least one candidate entity")
    seen = set()
    out = []
    for i, (entity, description) in enumerate(items):
        entity = str(entity)
        if entity in seen:
            raise UsageError(f"{where}: entity id {entity!r} is given twice")
        if not isinstance(description, str) or not description.strip():
            raise UsageError(f"{where}: entity {entity!r} has an empty description")
        seen.add(entity)
        out.append((entity, description))
    return out


def link(scorer: NSPScorer, contexts: Sequence[str], candidates: Sequence[EntityCandidates]) -> list[LinkResult]:
    """One LinkResult per mention context; all pairs of the call are scored together, through the
    same candidates-contrast path as classification (one pair per candidate entity)."""
    if len(contexts) != len(candidates):
        raise UsageError(f"link needs one candidate list per context, got {len(contexts)} and {len(candidates)}")
    checked = [check_candidates(c, f"candidates[{i}]") for i, c in enumerate(candidates)]
    sets = [Candidates.of((entity, [Pair(text, description)]) for entity, description in cands)
            for text, cands in zip(contexts, checked)]
    rows = score_candidates(scorer.score, sets)
    return [LinkResult(text, best(s.names, row), ranked(s.names, row)) for text, s, row in zip(contexts, sets, rows)]

"""TEMPORARY stub (helper's module replaces it)."""
from __future__ import annotations


def split_windows(tokenizer, text: str, budget: int, overlap: int = 0) -> list[str]:
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    offs = enc["offset_mapping"]
    if len(offs) <= budget:
        return [text]
    out = []
    start = 0
    while True:
        end = min(start + budget, len(offs))
        out.append(text[offs[start][0]:offs[end - 1][1]])
        if end == len(offs):
            return out
        start = end - overlap

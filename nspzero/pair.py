"""One NSP input, the pair: kept apart from the scorer (torch) so that requests and candidates are
built, and refused, without importing torch."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Optional


@dataclass(frozen=True)
class Pair:
    """One NSP input: `[CLS] first [SEP] second [SEP]`.

    `prompt` says which side is a label prompt (C-C classification: template + label word):
    "first" or "second". That side is never truncated; only the other (the text) is, and a
    prompt that leaves fewer than MIN_TEXT_TOKENS text tokens is a UsageError. `None` (the
    default) means both sides are data (S-C pairs such as OCNLI/BUSTM/CSL/CLUEWSC, ChID's idiom
    and passage, entity linking, `score_pairs`): the paper's rule applies, the longer side is
    cut from its end, and on a tie the second side gives the token (transformers 5's `longest_first`
    cuts the first side on a tie, so the two can differ by one token there).
    `anchor` (soft positions, method.md §4): a character offset into `second`; the tokens of
    `first` then get the position ids of a hole of their size at that offset, as if `second`
    read ``second[:anchor] + first + second[anchor:]``.
    """

    first: str
    second: str
    prompt: Optional[Literal["first", "second"]] = None
    anchor: Optional[int] = None

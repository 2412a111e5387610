"""Split a long text into windows that each fit the model beside the prompt (long_text="chunk").

BERT sees at most `max_length` tokens, so a long text is scored as several windows, each a
contiguous slice of the text. Windows break after sentences where they can (so no window starts
or ends mid-thought), pack whole sentences greedily, cut a sentence longer than the budget at a
word boundary, and may repeat a little of the previous window (`overlap`) so that no sentence is
only ever seen without its context. The text is tokenized once, with offsets, so the cost is one
tokenization however long the text is; every cut lies on a word boundary, so re-tokenizing a
window gives exactly the tokens it spans in the whole text (scoring a window scores those tokens).
The one exception is a single word of more word pieces than the budget: it is cut between its
pieces, and those windows are re-tokenized to check that they still fit.
"""
from __future__ import annotations

import numbers
import re
from bisect import bisect_left, bisect_right
from itertools import chain
from typing import Optional, Sequence

import numpy as np

from .errors import UsageError, shown
from .tokens import _CJK_CLASS, is_safe_cut, supports_prefix

# Sentence ends: a run of terminators (full-width and ASCII), with the closing quotes and
# brackets that follow it kept in the same sentence; and each line break.
TERMINATORS = "。！？!?；;"
CLOSERS = "”’\"'」』）)]】》〉〕"
_SPACE = re.compile("[ \t\n\r]")
_BREAK = re.compile(f"[ \t\n\r]|[^\\w\\s]|[{_CJK_CLASS}]")
# the longest text read in windows (a long novel); memory and pairs grow with it
MAX_CHUNK_CHARS = 1_000_000
PIECE_CHARS = 1 << 13   # a long text is tokenized in pieces of about this many characters
_SENTENCE_END = re.compile(f"[{re.escape(TERMINATORS)}]+[{re.escape(CLOSERS)}]*|\r\n|\n|\r")

# how a window ended: at the end of the text, after a sentence, between words, or (only inside a
# word longer than the budget) between two pieces of one word
_END, _SENTENCE, _WORD, _FORCED = "end", "sentence", "word", "forced"


def sentence_ends(text: str) -> list[int]:
    """Character positions just after each sentence end in `text`, ascending.

    A sentence ends after a run of 。！？!?；; together with the closing quotes or brackets right
    after it (”」』）) …: the quote belongs to the sentence it closes), and after each line break.
    The windows are cut only at these positions unless a sentence is longer than the budget."""
    return [match.end() for match in _SENTENCE_END.finditer(text)]


def _whole(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _check(budget: int, overlap: int) -> None:
    if not _whole(budget) or budget < 1:
        raise UsageError(f"the window budget must be a whole number of tokens ≥ 1, got {shown(budget)}; make max_length "
                         f"larger than the prompt (max_length - 3 - the longest prompt's tokens must be ≥ 1)")
    if not _whole(overlap) or overlap < 0:
        raise UsageError(f"the window overlap must be a whole number of tokens ≥ 0, got {shown(overlap)}")
    if overlap >= budget:
        raise UsageError(f"the window overlap ({overlap} tokens) must be smaller than the window budget ({budget} "
                         f"tokens), or no window could move on; lower the overlap")


def _encode(tokenizer, texts: Sequence[str]) -> list[tuple[np.ndarray, np.ndarray]]:
    """Each text's token offsets (n × 2 array) and word ids, in one tokenizer call, never special
    tokens ("[SEP]" in a text is text, as the scorer tokenizes it).

    A long text goes to the tokenizer as ~8 k-character pieces cut where BERT's pre-tokenizer
    surely splits (see tokens.is_safe_cut), which gives the same tokens as the whole text at half
    the cost: the Rust tokenizer is slower per character on one huge string."""
    if not getattr(tokenizer, "is_fast", False):
        raise UsageError("splitting long texts into windows needs a fast (Rust) tokenizer, for its character "
                         "offsets; load the model's tokenizer with AutoTokenizer (use_fast=True)")
    prefix_ok: Optional[bool] = None
    cjk_words = False
    pieces: list[str] = []
    layout: list[list[int]] = []     # per text: where its pieces start in it
    for text in texts:
        cuts = [0, len(text)]
        if len(text) > 2 * PIECE_CHARS:
            if prefix_ok is None:
                normalizer = getattr(getattr(tokenizer, "backend_tokenizer", None), "normalizer", None)
                prefix_ok = supports_prefix(tokenizer)
                cjk_words = getattr(normalizer, "handle_chinese_chars", False) is True
            if prefix_ok:
                cuts = _piece_cuts(text, cjk_words)
        pieces.extend(text[a:b] for a, b in zip(cuts, cuts[1:]))
        layout.append(cuts[:-1])
    if not pieces:
        return []
    encoding = tokenizer(pieces, add_special_tokens=False, split_special_tokens=True, return_offsets_mapping=True,
                         return_attention_mask=False, return_token_type_ids=False, truncation=False, verbose=False)
    all_offsets = encoding["offset_mapping"]
    out, index = [], 0
    for starts in layout:
        bounds, words, word_base = [], [], 0
        for start in starts:
            offsets = all_offsets[index]
            n = len(offsets)
            if n:
                piece_bounds = np.fromiter(chain.from_iterable(offsets), dtype=np.int64, count=2 * n).reshape(n, 2)
                piece_words = np.fromiter((-1 if w is None else w for w in encoding.word_ids(index)),
                                          dtype=np.int64, count=n)
                bounds.append(piece_bounds + start)
                words.append(piece_words + word_base)   # word ids restart in each piece: keep them distinct
                word_base += int(piece_words.max()) + 1
            index += 1
        out.append((np.concatenate(bounds), np.concatenate(words)) if bounds else
                   (np.zeros((0, 2), dtype=np.int64), np.zeros(0, dtype=np.int64)))
    return out


def _piece_cuts(text: str, cjk_words: bool) -> list[int]:
    """0, cuts about every PIECE_CHARS characters where tokenizing the pieces apart changes no
    token, and len(text): the first safe cut (tokens.is_safe_cut) after each PIECE_CHARS — before
    whitespace, or (when the normalizer makes each CJK character a word, as BERT's does unless
    tokenize_chinese_chars=False) next to a CJK or punctuation character."""
    breaks = _BREAK if cjk_words else _SPACE
    cuts = [0]
    while len(text) - cuts[-1] > 2 * PIECE_CHARS:
        cut, match = None, breaks.search(text, cuts[-1] + PIECE_CHARS)
        while match is not None and cut is None:
            cut = next((j for j in (match.start(), match.end()) if j < len(text) and is_safe_cut(text, j)), None)
            match = breaks.search(text, match.end())
        if cut is None:
            break
        cuts.append(cut)
    cuts.append(len(text))
    return cuts


def _count(tokenizer, text: str) -> int:
    """How many tokens the scorer will see for `text` (only windows cut inside a word need this)."""
    return len(tokenizer(text, add_special_tokens=False, split_special_tokens=True, truncation=False,
                         verbose=False)["input_ids"])


def window_spans(tokenizer, text: str, budget: int, overlap: int = 0) -> list[tuple[int, int]]:
    """The (start, end) character spans of `split_windows` (same arguments): text[start:end] is a window.

    A text that fits is one span (0, len(text)). Otherwise each span runs from its first token's
    first character to its last token's last character (whitespace between windows is in none)."""
    return window_spans_many(tokenizer, [text], budget, overlap)[0]


def window_spans_many(tokenizer, texts: Sequence[str], budget: int, overlap: int = 0) -> list[list[tuple[int, int]]]:
    """`window_spans` of each text, with all texts tokenized in one tokenizer call."""
    _check(budget, overlap)
    texts = list(texts)
    if any(not isinstance(text, str) for text in texts):
        bad = next(text for text in texts if not isinstance(text, str))
        raise UsageError(f"texts must be strings, got {type(bad).__name__} {shown(bad)}")
    longest = max(map(len, texts), default=0)
    if longest > MAX_CHUNK_CHARS:  # before tokenizing: memory grows with the text and its windows
        raise UsageError(f"a text of {longest:,} characters is longer than long_text='chunk' reads "
                         f"({MAX_CHUNK_CHARS:,} characters, about {MAX_CHUNK_CHARS // budget:,} windows); split it "
                         f"into parts first")
    encoded = _encode(tokenizer, texts)
    return [_spans(tokenizer, text, bounds, word, int(budget), int(overlap))
            for text, (bounds, word) in zip(texts, encoded)]


def _spans(tokenizer, text: str, bounds: np.ndarray, word: np.ndarray, budget: int,
           overlap: int) -> list[tuple[int, int]]:
    """The windows of one text, from its token offsets and word ids: a walk over token indices
    (cuts found by bisection in sorted lists), so the cost is O(tokens + windows · log tokens)."""
    n = len(word)
    if n <= budget:
        return [(0, len(text))]
    starts, ends = bounds[:, 0], bounds[:, 1]
    # a cut before token k (0 < k < n) is clean when k starts a new word and no token straddles it
    clean = np.zeros(n + 1, dtype=bool)
    clean[0] = clean[n] = True
    clean[1:n] = (word[1:] != word[:-1]) & (ends[:-1] <= starts[1:])
    word_cuts = (np.flatnonzero(clean[1:n]) + 1).tolist()
    # a sentence end at character p is the cut before the first token starting at or after p
    positions = np.asarray(sentence_ends(text), dtype=np.int64)
    k = np.searchsorted(starts, positions, side="left")
    inside = (k > 0) & (k < n)
    k, positions = k[inside], positions[inside]
    k = k[(ends[k - 1] <= positions) & clean[k]]
    sentence_cuts = np.unique(k).tolist()

    def window_end(start: int, past: int) -> tuple[int, str]:
        """Where the window from token `start` ends: past token `past`, within the budget."""
        limit = start + budget
        if limit >= n:
            return n, _END
        for cuts, kind in ((sentence_cuts, _SENTENCE), (word_cuts, _WORD)):
            i = bisect_right(cuts, limit) - 1
            if i >= 0 and cuts[i] > past:
                return cuts[i], kind
        return limit, _FORCED   # one word longer than the budget: cut between its pieces

    def fits(start: int, end: int) -> bool:
        return _count(tokenizer, text[int(starts[start]):int(ends[end - 1])]) <= budget

    def next_start(start: int, end: int, kind: str) -> int:
        """Where the window after [start, end) begins: `overlap` tokens back at most."""
        if overlap == 0:
            return end
        if kind == _SENTENCE:
            # the trailing whole sentences of this window holding at most `overlap` tokens; fewer
            # of them when they would leave no room for the next sentence
            lo, hi = bisect_left(sentence_cuts, max(end - overlap, start)), bisect_left(sentence_cuts, end)
            candidates = sentence_cuts[lo:hi] + [end]
            for candidate in candidates:
                if window_end(candidate, end)[1] in (_END, _SENTENCE):
                    return candidate
            return candidates[0]   # the next sentence is longer than the budget anyway: keep the context
        if kind == _WORD:
            back = max(end - overlap, start)   # exactly `overlap` tokens back, or the next word start
            if clean[back]:
                return back
            i = bisect_right(word_cuts, back)
            return word_cuts[i] if i < len(word_cuts) and word_cuts[i] < end else end
        return max(end - overlap, start + 1)

    spans: list[tuple[int, int]] = []
    start, past = 0, 0
    while True:
        end, kind = window_end(start, past)
        if not (clean[start] and clean[end]):
            # a window starting or ending inside a word re-tokenizes differently ("##ab" alone is
            # "ab", maybe two tokens): make it fit, giving up new tokens, then overlap, if need be
            while end - 1 > past and not fits(start, end):
                end, kind = end - 1, _FORCED
            while start < past and not fits(start, end):
                start += 1
        spans.append((int(starts[start]), int(ends[end - 1])))
        if end >= n:
            return spans
        start, past = next_start(start, end, kind), end


def split_windows(tokenizer, text: str, budget: int, overlap: int = 0) -> list[str]:
    """Split `text` into windows of at most `budget` tokens each (tokenized without special tokens).

    A text that fits is returned whole ([text], so short texts score as before). Otherwise windows
    are contiguous slices, in order, covering every token of the text: whole sentences packed
    greedily (see `sentence_ends`); a sentence longer than the budget is cut between words; each
    window after the first repeats the previous window's trailing whole sentences totalling at
    most `overlap` tokens (after a cut inside a sentence: `overlap` tokens, moved forward to a word
    start). For BERT, budget = max_length - 3 - the prompt's tokens ([CLS] and two [SEP]).
    Raises UsageError when budget < 1, overlap < 0, overlap ≥ budget, or the tokenizer is not fast."""
    return [text[start:end] for start, end in window_spans(tokenizer, text, budget, overlap)]

"""Tokenize texts for the scorer with memory bounded by max_length, not by text length.

A text longer than the pair budget is cut after tokenization anyway, so only a prefix that can
survive truncation is tokenized: the first `limit` ids are exactly those of tokenizing the whole
text (a 50 MB line costs what its first few hundred characters cost). User text never becomes
special tokens: "[SEP]" in a text is the three text tokens "[", "sep", "]".
"""
from __future__ import annotations

import re
import string
import unicodedata
from typing import Iterable, Optional, Sequence

from .errors import UsageError

# Characters every BERT normalizer (Python BasicTokenizer and the Rust BertNormalizer) deletes
# before anything else (control and format characters, NUL, U+FFFD; not \t \n \r): removing them
# first changes no token and keeps a line of NULs or zero-width spaces from growing the prefix.
_INVISIBLE_CLASS = ("\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u00ad\u061c\u180e\u200b-\u200f\u202a-\u202e"
                    "\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb\ufffd")
_INVISIBLE = re.compile(f"[{_INVISIBLE_CLASS}]")
_VISIBLE = re.compile(f"[^{_INVISIBLE_CLASS}]")
# a long word is one [UNK] past max_input_chars_per_word, however long it goes on, so a
# multi-megabyte word need not be tokenized (or even kept): its end is found by this scan, which
# stops at anything but letters, digits, combining accents and invisible characters (then checked)
_CJK_CLASS = ("\u4e00-\u9fff\u3400-\u4dbf\uf900-\ufaff\U00020000-\U0002a6df\U0002a700-\U0002b73f"
              "\U0002b740-\U0002b81f\U0002b820-\U0002ceaf\U0002f800-\U0002fa1f")
_CJK = re.compile(f"[{_CJK_CLASS}]")
_WORD_STOP = re.compile(f"[^\\w\u0300-\u036f{_INVISIBLE_CLASS}]|[_{_CJK_CLASS}]")
_SPACE = frozenset(" \t\n\r")
_ASCII_PUNCT = frozenset(string.punctuation)
_ASCII_ALNUM = frozenset(string.ascii_letters + string.digits)
SCAN_CHUNK = 1 << 16   # at most this many characters are read at a time from a long text
BERT_PRE_TOKENIZERS = ("BertPreTokenizer",)
# Stands for the tokenizer's own mask token where nspzero itself needs it (calibration's content-free
# probe): the text "[MASK]" is three text tokens, and BERT's normalizer deletes NUL, so no text a user
# can mean reads as this string.
MASK_TOKEN = "\x00[MASK]\x00"


def _is_space(c: str) -> bool:
    return c in _SPACE or unicodedata.category(c) == "Zs"


def _is_cjk(c: str) -> bool:
    """BERT's "Chinese character" ranges (_CJK_CLASS): each such character is a word of its own."""
    return _CJK.match(c) is not None


def _is_punct(c: str) -> bool:
    return c in _ASCII_PUNCT or unicodedata.category(c).startswith("P")


def _ends_word(c: str) -> bool:
    return _is_space(c) or _is_cjk(c) or _is_punct(c)


def is_safe_cut(text: str, j: int) -> bool:
    """Whether `text[:j]` tokenizes to exactly the first tokens of `text` under BERT's rules.

    True where a word surely ends at j and the next character can neither join it nor compose
    with it (NFC, accent stripping): after/before whitespace, or between a CJK/punctuation
    character and a CJK/punctuation/ASCII letter-or-digit character."""
    if j <= 0 or j >= len(text):
        return j == len(text)
    left, right = text[j - 1], text[j]
    if _is_space(left) or _is_space(right):
        return True
    return (_is_cjk(left) or _is_punct(left)) and (_is_cjk(right) or _is_punct(right) or right in _ASCII_ALNUM)


def _last_safe_cut(text: str, lowest: int) -> int:
    """The largest safe cut in (lowest, len(text)), or 0 when there is none."""
    for j in range(len(text) - 1, max(lowest, 0), -1):
        if is_safe_cut(text, j):
            return j
    return 0


def supports_prefix(tokenizer) -> bool:
    """Whether the prefix rule is valid for `tokenizer`: BERT WordPiece pre-tokenization
    (whitespace + punctuation + CJK). Other tokenizers are given whole texts."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        return type(backend.pre_tokenizer).__name__ in BERT_PRE_TOKENIZERS
    return hasattr(tokenizer, "basic_tokenizer")


def _ids(tokenizer, texts: Sequence[str]) -> list[list[int]]:
    """Text ids, never special tokens: "[SEP]" in user text is text (its brackets included). verbose=False:
    a text longer than the model is cut (or windowed) by nspzero, which says so itself; transformers'
    "Token indices sequence length is longer … (495 > 128)" would only alarm."""
    return tokenizer(list(texts), add_special_tokens=False, split_special_tokens=True, verbose=False)["input_ids"]


def short_enough(text: str, limit: int, start: int = 0) -> bool:
    """Texts this short are tokenized whole (in one batch): reading a prefix would save nothing."""
    return len(text) - start <= 8 * limit + 256


def _max_word(tokenizer) -> int:
    """WordPiece's max_input_chars_per_word (longer words become one [UNK]); BERT's is 100."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    model = backend.model if backend is not None else getattr(tokenizer, "wordpiece_tokenizer", None)
    return int(getattr(model, "max_input_chars_per_word", 100) or 100)


def token_prefix(tokenizer, text: str, limit: int, start: int = 0) -> list[int]:
    """The first `limit` ids of tokenizing `text[start:]` whole (all of them if it has fewer),
    reading only as much of it as that needs, so memory is O(limit) (`start` is 0 or a word start)."""
    if limit <= 0:
        return []
    if short_enough(text, limit, start) or not supports_prefix(tokenizer):
        return _ids(tokenizer, [text[start:] if start else text])[0][:limit]
    want = 4 * limit + 64      # visible characters to gather before trying a cut
    pieces: list[str] = []
    have, pos = 0, start
    while True:
        while have < want and pos < len(text):
            visible = _VISIBLE.search(text, pos)  # jump over invisible junk (NULs, zero-width) in one scan
            if visible is None:
                pos = len(text)
                break
            pos = visible.start()
            step = min(SCAN_CHUNK, max(want - have, 1024))
            piece = _INVISIBLE.sub("", text[pos:pos + step])
            pos += step
            pieces.append(piece)
            have += len(piece)
        prefix = "".join(pieces)
        pieces = [prefix]
        if pos >= len(text):
            return _ids(tokenizer, [prefix])[0][:limit]
        cut = _last_safe_cut(prefix, len(prefix) - want // 2 - 1)
        if cut:
            ids = _ids(tokenizer, [prefix[:cut]])[0]
            if len(ids) >= limit:
                return ids[:limit]
        else:
            skipped = _skip_long_word(tokenizer, text, prefix, pos, limit)
            if skipped is not None:
                return skipped
        want *= 2


def _word_start(prefix: str) -> int:
    """Where the word that `prefix` ends in begins (BERT words end at whitespace, punctuation and
    CJK characters; invisible characters are already gone from `prefix`)."""
    j = len(prefix)
    while j and not _ends_word(prefix[j - 1]):
        j -= 1
    return j


def _word_end(text: str, pos: int) -> Optional[int]:
    """Where the word running through text[pos] ends (the first whitespace, punctuation or CJK
    character), or None when it runs to the end. A regex jumps over letters, digits and marks; only
    the characters it stops at are looked at one by one, so a 50 MB word costs no memory."""
    while True:
        stop = _WORD_STOP.search(text, pos)
        if stop is None:
            return None
        if _ends_word(stop.group()):
            return stop.start()
        pos = stop.end()  # e.g. a symbol or a rarer mark: still inside the word


def _skip_long_word(tokenizer, text: str, prefix: str, pos: int, limit: int):
    """When `prefix` ends in a word longer than WordPiece takes (more than max_input_chars_per_word
    characters even after accents are stripped), that word is one [UNK] however far it goes: its
    tokens are those before it, [UNK], and those of the text after its end (found by a scan, not by
    tokenizing). Any script: ASCII, Cyrillic, accented letters… None when that does not apply."""
    begin = _word_start(prefix)
    run = prefix[begin:]
    if tokenizer.unk_token_id is None or sum(unicodedata.category(c) != "Mn" for c in run) <= _max_word(tokenizer):
        return None
    if begin and not (is_safe_cut(prefix, begin) or _clean_boundary(prefix, begin)):
        return None
    after = _word_end(text, pos)
    head = (_ids(tokenizer, [prefix[:begin]])[0] if begin else []) + [tokenizer.unk_token_id]
    if len(head) >= limit or after is None:
        return head[:limit]
    return head + token_prefix(tokenizer, text, limit - len(head), after)


def _clean_boundary(text: str, j: int) -> bool:
    """A word boundary no normalisation can blur: text[j-1] ends a word, text[j] is no combining
    mark, and NFC leaves the pair as it is."""
    pair = text[j - 1:j + 1]
    return _ends_word(text[j - 1]) and unicodedata.category(text[j]) != "Mn" and unicodedata.normalize("NFC", pair) == pair


def _mask_id(tokenizer) -> int:
    if tokenizer.mask_token_id is None:
        raise UsageError("this model's tokenizer has no mask token, which the content-free calibration probe "
                         "needs; calibrate with 'prior' instead")
    return tokenizer.mask_token_id


def token_ids(tokenizer, strings: Iterable[str], limit: int) -> dict[str, list[int]]:
    """Each distinct string → its first `limit` token ids (see `token_prefix`). Short strings
    (nearly all) go through the tokenizer in one batch."""
    unique = sorted(set(strings))
    out: dict[str, list[int]] = {}
    if MASK_TOKEN in unique:
        out[MASK_TOKEN] = [_mask_id(tokenizer)]
        unique.remove(MASK_TOKEN)
    short = [s for s in unique if short_enough(s, limit)]
    out.update(zip(short, (ids[:limit] for ids in _ids(tokenizer, short))) if short else ())
    for s in unique:
        if s not in out:
            out[s] = token_prefix(tokenizer, s, limit)
    return out

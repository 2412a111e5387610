"""Templates and label words: what the prompt says, and which words stand for a label.

A template is parsed and validated once, when it is made: only the placeholder names its
caller allows are ever substituted, so a user-supplied template can never reach attributes
or indexes of the values (`{label.__class__}`, `{label[0]}`, `{0}` are errors, not lookups).
"""
from __future__ import annotations

import re
import string
import unicodedata
from dataclasses import dataclass
from typing import Any, Iterable, Literal, Mapping, Optional, Sequence, Union

from .errors import UsageError, shown, type_name

Placement = Literal["prefix", "suffix"]
PLACEMENTS: tuple[str, ...] = ("prefix", "suffix")

LabelsArg = Union[Sequence[str], Mapping[str, Union[str, Sequence[str], Mapping[str, Any]]]]


@dataclass(frozen=True)
class Template:
    """A prompt string with named placeholders, e.g. ``"这是一则{label}新闻"``.

    `parts` holds the parsed template: literal strings and placeholder names alternate so that
    `render` is a join, not a `str.format` call on user input.
    """

    source: str
    parts: tuple[tuple[str, str | None], ...]

    @classmethod
    def parse(
        cls,
        source: str,
        allowed: Iterable[str] = ("label",),
        required: Iterable[str] = ("label",),
    ) -> "Template":
        """Parse `source`, allowing only the placeholder names in `allowed`.

        Raises UsageError naming the template for unknown, positional, attribute or index
        placeholders, format specs, unbalanced braces, and missing required placeholders.
        """
        allowed = tuple(allowed)
        if not isinstance(source, str):
            raise UsageError(f"template must be a string, got {type(source).__name__}: {shown(source)}")
        check_unicode(source, f"template {shown(source)}")
        hint = f"use only {', '.join('{' + a + '}' for a in allowed)} (write {{{{ and }}}} for literal braces)"
        try:
            parsed = list(string.Formatter().parse(source))
        except ValueError as exc:
            raise UsageError(f"template {shown(source)}: {exc} (unbalanced braces?); {hint}") from None
        parts: list[tuple[str, str | None]] = []
        seen: set[str] = set()
        for literal, field, spec, conversion in parsed:
            if field is None:
                parts.append((literal, None))
                continue
            if field not in allowed or spec or conversion:
                placeholder = "{" + field + ("!" + conversion if conversion else "") + (":" + spec if spec else "") + "}"
                placeholder = placeholder if len(placeholder) <= 60 else placeholder[:58] + "…}"
                raise UsageError(f"template {shown(source)}: placeholder {placeholder} is not allowed; {hint}")
            parts.append((literal, field))
            seen.add(field)
        for name in required:
            if name not in seen:
                raise UsageError(f"template {shown(source)} has no {{{name}}} placeholder; add one, e.g. {shown(source + '{' + name + '}')}")
        return cls(source, tuple(parts))

    @property
    def fields(self) -> frozenset[str]:
        return frozenset(f for _, f in self.parts if f is not None)

    def render(self, **values: str) -> str:
        """Substitute the placeholders by the given values (every used name must be given)."""
        out: list[str] = []
        for literal, field in self.parts:
            out.append(literal)
            if field is not None:
                out.append(values[field])
        return "".join(out)


def check_unicode(value: str, what: str) -> str:
    """Return `value`, or raise a UsageError if it holds a lone surrogate (undecodable bytes from
    argv or a JSON escape such as \\ud800): tokenizers cannot take such strings."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise UsageError(f"{what} is not valid Unicode: lone surrogate {shown(value[exc.start])} at character {exc.start} "
                         f"(undecodable bytes?); pass UTF-8 text") from None
    return value


# characters that carry no content for the NSP head: controls, format (zero-width space and joiner,
# soft hyphen, bidi marks), separators, surrogates, private use, unassigned
INVISIBLE_CATEGORIES = frozenset(("Cc", "Cf", "Zs", "Zl", "Zp", "Cs", "Co", "Cn"))
# BERT's tokenizer puts spaces around every CJK ideograph, so spaces beside one change nothing
_CJK_SPACE = re.compile(r"\s*([\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002fa1f])\s*")
_ACCENTED_SCRIPTS = 0x0530  # below: Latin, Greek, Cyrillic, whose combining accents BERT strips


def has_content(text: str) -> bool:
    """Whether `text` holds anything but whitespace, control, zero-width or other invisible characters."""
    return any(not ch.isspace() and unicodedata.category(ch) not in INVISIBLE_CATEGORIES for ch in text)


def label_key(text: str) -> str:
    """What a label (or word) amounts to once the tokenizer has read it: NFKC, no invisible
    characters, no accents on Latin/Greek/Cyrillic letters, spaces collapsed and none beside CJK.
    Two labels with one key score identically and the first would always win."""
    out: list[str] = []
    base = 0
    for ch in unicodedata.normalize("NFD", unicodedata.normalize("NFKC", text)):
        category = unicodedata.category(ch)
        if ch.isspace():
            out.append(" ")
        elif category == "Mn" and base < _ACCENTED_SCRIPTS:
            continue
        elif category not in INVISIBLE_CATEGORIES:
            out.append(ch)
            base = ord(ch) if category != "Mn" else base
    return unicodedata.normalize("NFC", _CJK_SPACE.sub(r"\1", " ".join("".join(out).split())))


class DistinctLabels:
    """Labels (or words) met so far, by `label_key`: finds one that is an earlier one again, or only
    looks different from it (invisible characters, accents, spacing, Unicode form)."""

    def __init__(self) -> None:
        self.seen: dict[str, tuple[str, Any]] = {}

    def earlier(self, value: str, place: Any = None) -> Optional[tuple[str, Any]]:
        """The earlier (value, place) that `value` is the same label as; None (and `value`, at
        `place`, is remembered) when it is new."""
        key = label_key(value)
        if key in self.seen:
            return self.seen[key]
        self.seen[key] = (value, place)
        return None


def same_label(first: str, value: str) -> str:
    """The message for `value` being the label `first` again (see `DistinctLabels`)."""
    if first == value:
        return f"label {shown(value)} is given twice"
    return (f"labels {shown(first)} and {shown(value)} differ only in invisible characters, accents, spacing or "
            f"Unicode form ({ascii(first[:40])} vs {ascii(value[:40])}), so they score the same")


def check_placement(placement: str) -> Placement:
    """Return `placement` if it is 'prefix' or 'suffix', else raise a UsageError."""
    if placement not in PLACEMENTS:
        raise UsageError(f"placement must be 'prefix' (prompt first, the paper's default) or 'suffix', got {shown(placement)}")
    return placement  # type: ignore[return-value]


LABEL_SPEC_KEYS = ("words", "description", "descriptions")


@dataclass(frozen=True)
class LabelSpec:
    """A label's verbalizations (put into the template's {label}) and descriptions (whole prompt
    sentences used as they are, e.g. from a labels file or a knowledge base); at least one of them."""

    words: tuple[str, ...]
    descriptions: tuple[str, ...] = ()


# the longest label name or word: a few words name a label (WordPiece reads a word over 100
# characters as one unknown token); a long text is a description (docs/limits.md)
MAX_LABEL_CHARS = 200


def check_label(label: Any) -> str:
    """The one rule for a label's name, whatever the front door: a visible string of at most
    MAX_LABEL_CHARS. Messages carry no place: a reader that knows the file:line puts it first."""
    if not isinstance(label, str):
        raise UsageError(f"a label must be a string, got {type_name(label)} {shown(label)}")
    check_unicode(label, f"label {shown(label)}")
    if not has_content(label):
        invisible = f" once invisible characters are removed ({ascii(label[:20])})" if label.strip() else ""
        raise UsageError(f"a label is an empty string{invisible}; every label needs a visible name")
    _check_length(label, "label")
    return label


def _check_length(text: str, what: str) -> None:
    if len(text) > MAX_LABEL_CHARS:
        raise UsageError(f"{what} {shown(text)} has {len(text):,} characters, more than the {MAX_LABEL_CHARS} a label "
                         f"name or word may have; name it in a few words and give the long text as a description")


def label_texts(value: Any, what: str, kind: Literal["word", "sentence"] = "word") -> tuple[str, ...]:
    """A label's words (or description sentences): one visible string or a non-empty list of them,
    words at most MAX_LABEL_CHARS long; `what` names the field in the message."""
    listed = isinstance(value, Sequence) and not isinstance(value, str)
    items = list(value) if listed else [value]
    if not items:
        raise UsageError(f"{what} is an empty list; give at least one, or leave it out")
    for i, item in enumerate(items):
        place = f"{what}[{i}]" if listed else what
        if not isinstance(item, str):
            hint = " (quote it)" if isinstance(item, (int, float, bool)) else ""
            raise UsageError(f"{place} must be a {kind} or a list of {kind}s, got {type_name(item)} "
                             f"{shown(item)}{hint}")
        check_unicode(item, place)
        if not has_content(item):
            raise UsageError(f"{place} is empty{' once invisible characters are removed' if item.strip() else ''}; "
                             f"write it or remove it")
        if kind == "word":
            _check_length(item, place)
    return tuple(items)


def _given(value: Any) -> bool:
    """A words/description entry that is there: not None and not an empty list (a label file's
    description-only label has words=())."""
    return value is not None and not (isinstance(value, (list, tuple)) and not value)


def label_specs(labels: LabelsArg) -> dict[str, LabelSpec]:
    """Normalise `labels` to an ordered mapping label → LabelSpec.

    A list gives each label itself as its only word; a dict maps each label to one word, a list of
    words, or {"words": ..., "description": ...}. Empty, duplicate or non-string labels, words and
    descriptions are UsageErrors.
    """
    if isinstance(labels, str):
        raise UsageError(f"labels must be a list or a dict of label names, got the single string {shown(labels)}; "
                         "split it, e.g. labels.split(',')")
    if isinstance(labels, Mapping):
        items = list(labels.items())
    else:
        try:
            items = [(label, label) for label in labels]
        except TypeError:
            raise UsageError(f"labels must be a list or a dict of label names, got {type(labels).__name__}") from None
    out: dict[str, LabelSpec] = {}
    names = DistinctLabels()
    for label, value in items:
        first = names.earlier(check_label(label))
        if first is not None:
            raise UsageError(f"{same_label(first[0], label)}; labels must be distinct")
        if isinstance(value, Mapping):
            unknown = [k for k in value if k not in LABEL_SPEC_KEYS]
            if unknown or not value:
                raise UsageError(f"label {shown(label)}: {'unknown key ' + shown(unknown[0]) if unknown else 'nothing given'}"
                                 f"; give {{\"words\": ..., \"description\": ...}} (one or both)")
            words = label_texts(value["words"], f"label {shown(label)}: words") if _given(value.get("words")) else ()
            descriptions = tuple(d for key in ("description", "descriptions") if _given(value.get(key))
                                 for d in label_texts(value[key], f"label {shown(label)}: {key}", "sentence"))
            if not words and not descriptions:
                raise UsageError(f"label {shown(label)} has neither words nor a description; give one of them")
            out[label] = LabelSpec(words, descriptions)
        else:
            out[label] = LabelSpec(label_texts(value, f"label {shown(label)}: its verbalization"))
    if not out:
        raise UsageError("no labels given; pass at least two candidate labels")
    _check_shared_words(out)
    return out


def _check_shared_words(specs: Mapping[str, LabelSpec]) -> None:
    """A word (or description) standing for two labels makes them tie on it: refused, naming both."""
    for kind, of in (("word", lambda spec: spec.words), ("description", lambda spec: spec.descriptions)):
        seen = DistinctLabels()
        for label, spec in specs.items():
            for word in dict.fromkeys(of(spec)):
                first = seen.earlier(word, label)
                if first is not None and first[1] != label:
                    both = shown(word) if first[0] == word else f"{shown(first[0])} / {shown(word)}"
                    raise UsageError(f"labels {shown(first[1])} and {shown(label)} share the {kind} {both}, so they tie on it; "
                                     f"give each label its own {kind}s")


def label_words(labels: LabelsArg) -> dict[str, tuple[str, ...]]:
    """Normalise `labels` to an ordered mapping label → verbalizations (no descriptions: prompt sets
    and tasks verbalize every label through their templates)."""
    out = {}
    for label, spec in label_specs(labels).items():
        if spec.descriptions or not spec.words:
            raise UsageError(f"label {shown(label)}: give its verbalization(s) as a string or a list of strings here "
                             f"(descriptions are not taken)")
        out[label] = spec.words
    return out

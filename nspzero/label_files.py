"""Read `--labels-file`: hundreds to thousands of labels, with their words and descriptions.

A label has a name (what the output says), words (verbalizations put into the template's
{label}) and descriptions (whole prompt sentences, used as they are). Typing thousands of
labels on a command line is not possible, and a mistake in line 3,817 must be found without
reading the file by eye: every problem is one UsageError naming `file:line` (or the entry) and
what to do. Formats, by suffix:

* .txt — one label per line: `name`, `name<TAB>word1|word2` or `name<TAB>word1|word2<TAB>description`
  (the words field may be empty when a description follows); blank lines and `#` lines are skipped
  (a label whose name starts with `#` needs .json or .yaml); spaces around fields are dropped.
* .json / .yaml / .yml — a list of names; a mapping name → word, [words] or
  {words: word or [words], description: text or [texts]}; or a list of
  {name, words, description} objects (names and objects may be mixed in one list).

A label given by its name alone gets its name as its only word. YAML is read with the strict
loader of yamlcheck (no tags, no duplicate keys, lines remembered).
"""
from __future__ import annotations

import json
import os
import re
from collections import Counter
from typing import Any, Callable, Optional, TypeVar

from .errors import UsageError, shown
from .templates import DistinctLabels, check_label, label_texts, same_label
from .yamlcheck import decode_utf8, read_yaml, type_name

SUFFIXES = {".txt": "txt", ".json": "json", ".yaml": "yaml", ".yml": "yaml"}
OBJECT_KEYS = ("words", "description")           # the value of `name: {...}` in a mapping
ENTRY_KEYS = ("name",) + OBJECT_KEYS             # an object in a list
TXT_FORMAT = "name, or name<TAB>word1|word2, or name<TAB>word1|word2<TAB>description"
_BOM = "\ufeff"
# a labels file's limits, checked before its entries are read: every label is one more NSP pair
# per text (per template and word), so more labels than this is a run of hours per text on a CPU
MAX_LABELS = 20_000
MAX_LABELS_FILE_BYTES = 16 * 2**20
_JSON_SPACE = re.compile(r"[ \t\n\r]*")
T = TypeVar("T")


class _Where:
    """Where an entry is, for messages: `file:line` when the line is known, else `file: entry N`."""

    __slots__ = ("path", "line", "entry")

    def __init__(self, path: str, line: Optional[int], entry: int):
        self.path, self.line, self.entry = path, line, entry

    def __str__(self) -> str:
        return f"{self.path}:{self.line}" if self.line else f"{self.path}: entry {self.entry}"

    @property
    def short(self) -> str:
        return f"line {self.line}" if self.line else f"entry {self.entry}"


def _at(where: _Where, check: Callable[..., T], *args: Any) -> T:
    """`check(*args)`, one of the label rules of templates, with its refusal placed at `where`."""
    try:
        return check(*args)
    except UsageError as exc:
        raise UsageError(f"{where}: {exc}") from None


class _Labels:
    """The labels read so far, in file order; refuses a name given twice, naming both places."""

    def __init__(self) -> None:
        self.labels: dict[str, dict] = {}
        self.names = DistinctLabels()

    def add(self, name: str, words: tuple[str, ...], descriptions: tuple[str, ...], where: _Where) -> None:
        first = self.names.earlier(name, where)
        if first is not None:
            raise UsageError(f"{where}: {same_label(first[0], name)} (first at {first[1].short}); keep "
                             f"one, with all its words and descriptions")
        if not words and not descriptions:
            words = (name,)
        self.labels[name] = {"words": words, "descriptions": descriptions}


def read_labels_file(path: str) -> dict[str, dict]:
    """Labels from a .txt, .json or .yaml/.yml file: name → {"words": (...), "descriptions": (...)}.

    In file order. At least one of words/descriptions is non-empty (a bare name has words=(name,)).
    Raises UsageError (missing file, unknown suffix, not UTF-8, no labels, a name given twice,
    empty names or words, wrong types, unknown keys, lone surrogates) naming file:line or the entry."""
    path = os.fspath(path)
    suffix = os.path.splitext(path)[1].lower()
    if suffix not in SUFFIXES:
        raise UsageError(f"{path}: unknown labels file type {suffix or '(no suffix)'!r}; use .txt (one label per line: "
                         f"{TXT_FORMAT}), .json or .yaml/.yml")
    try:
        with open(path, "rb") as handle:
            content = handle.read(MAX_LABELS_FILE_BYTES + 1)
    except OSError as exc:
        raise UsageError(f"{path}: cannot read the labels file ({exc.strerror or exc}); check the path") from None
    if len(content) > MAX_LABELS_FILE_BYTES:
        raise UsageError(f"{path}: larger than {MAX_LABELS_FILE_BYTES // 2**20} MiB, the most a labels file may be "
                         f"(at most {MAX_LABELS:,} labels); split it, or give each row its own candidates")
    text = _decode(content, path)
    kind = SUFFIXES[suffix]
    if kind == "txt":
        _check_count(sum(1 for line in text.split("\n") if line.strip() and not line.lstrip().startswith("#")), path)
        labels = _from_txt(text, path)
    elif kind == "json":
        labels = _from_json(text, path)
    else:
        data = read_yaml(text, path)
        _check_count(len(data) if isinstance(data, (list, dict)) else 0, path)
        labels = _from_data(data, path, None)
    if not labels:
        raise UsageError(f"{path}: no labels in it; write one label per line ({TXT_FORMAT})" if kind == "txt" else
                         f"{path}: no labels in it; write a list of names, or a mapping name → words")
    return labels


def _decode(content: bytes, path: str) -> str:
    """UTF-8 text without its byte-order mark (Windows editors write one)."""
    text = decode_utf8(content, path)
    return text[1:] if text.startswith(_BOM) else text


# --- .txt ------------------------------------------------------------------------------------

def _from_txt(text: str, path: str) -> dict[str, dict]:
    labels = _Labels()
    for number, raw in enumerate(text.split("\n"), 1):
        line = raw.rstrip()            # trailing spaces, tabs and \r are invisible in editors
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        where = _Where(path, number, number)
        fields = line.split("\t")
        if len(fields) > 3:
            raise UsageError(f"{where}: {len(fields)} tab-separated fields, at most 3 ({TXT_FORMAT}); a description "
                             f"cannot hold a tab")
        name = fields[0].strip()
        if not name:
            raise UsageError(f"{where}: the line starts with a tab, so the label has no name; put the name first "
                             f"({TXT_FORMAT})")
        _at(where, check_label, name)
        if "|" in name:
            raise UsageError(f"{where}: label name {shown(name)} holds '|'; separate the name from its words with a TAB, "
                             f"not spaces ({TXT_FORMAT})")
        words: tuple[str, ...] = ()
        if len(fields) > 1 and fields[1].strip():
            words = _at(where, label_texts, [word.strip() for word in fields[1].split("|")], f"label {shown(name)}: words")
        descriptions = (fields[2].strip(),) if len(fields) > 2 and fields[2].strip() else ()
        labels.add(name, words, descriptions, where)
    return labels.labels


# --- .json -----------------------------------------------------------------------------------

class _JsonObject(dict):
    """A JSON object that keeps every (key, value) pair in order, duplicates included, which
    json.loads would silently drop (the last one would win)."""

    pairs: list

    @classmethod
    def of(cls, pairs: list) -> "_JsonObject":
        out = cls(pairs)
        out.pairs = pairs
        return out


def _from_json(text: str, path: str) -> dict[str, dict]:
    try:
        data = json.loads(text, object_pairs_hook=_JsonObject.of)
    except json.JSONDecodeError as exc:
        raise UsageError(f"{path}:{exc.lineno}:{exc.colno}: invalid JSON ({exc.msg})") from None
    except RecursionError:
        raise UsageError(f"{path}: invalid JSON (nested too deeply)") from None
    _check_count(len(data) if isinstance(data, (list, dict)) else 0, path)
    return _from_data(data, path, _json_entry_lines(text) if isinstance(data, (list, dict)) else None)


def _check_count(count: int, path: str) -> None:
    """Refuse more than MAX_LABELS entries before any of them is read."""
    if count > MAX_LABELS:
        raise UsageError(f"{path}: {count:,} labels; at most {MAX_LABELS:,} are taken (each label is one more NSP "
                         f"pair per text); split the file, or give each row its own candidates")


def _json_entry_lines(text: str) -> list[int]:
    """The line of each entry of the (valid) top-level JSON list or object, in order: json.loads
    gives no positions, so the top level is walked here and each entry skipped with raw_decode."""
    decoder = json.JSONDecoder()

    def space(at: int) -> int:
        return _JSON_SPACE.match(text, at).end()

    pos = space(0)
    is_object = text[pos] == "{"
    pos = space(pos + 1)
    starts: list[int] = []
    while text[pos] not in "]}":
        starts.append(pos)
        if is_object:
            pos = space(decoder.raw_decode(text, pos)[1]) + 1   # the key, then ':'
        pos = space(decoder.raw_decode(text, space(pos))[1])
        if text[pos] == ",":
            pos = space(pos + 1)
    lines, line, last = [], 1, 0
    for start in starts:
        line += text.count("\n", last, start)
        lines.append(line)
        last = start
    return lines


# --- JSON and YAML data ----------------------------------------------------------------------

def _from_data(data: Any, path: str, lines: Optional[list[int]]) -> dict[str, dict]:
    """Labels from parsed JSON (`lines`: each top-level entry's line) or YAML (key lines kept by
    yamlcheck's mappings; a bare name in a YAML list is known by its entry number only)."""
    labels = _Labels()
    if data is None or (isinstance(data, (list, dict)) and not data):
        return labels.labels
    if isinstance(data, dict):
        items = data.pairs if isinstance(data, _JsonObject) else list(data.items())
        for index, (key, value) in enumerate(items):
            line = lines[index] if lines is not None else getattr(data, "lines", {}).get(key)
            where = _Where(path, line, index + 1)
            name = _name(key, where)
            words, descriptions = _value(value, name, where)
            labels.add(name, words, descriptions, where)
    elif isinstance(data, list):
        for index, item in enumerate(data):
            line = lines[index] if lines is not None else _first_line(item)
            where = _Where(path, line, index + 1)
            if isinstance(item, dict):
                _check_keys(item, ENTRY_KEYS, where, "a label object in a list")
                if "name" not in item:
                    raise UsageError(f"{where}: a label object without 'name'; give each one a name (keys: "
                                     f"{', '.join(ENTRY_KEYS)})")
                name = _name(item["name"], _Where(path, _key_line(item, "name", line), index + 1))
                words, descriptions = _fields(item, name, where)
            else:
                name = _name(item, where)
                words, descriptions = (), ()
            labels.add(name, words, descriptions, where)
    else:
        raise UsageError(f"{path}: expected a list of labels or a mapping name → words at the top level, got "
                         f"{type_name(data)} {shown(data)}")
    return labels.labels


def _first_line(item: Any) -> Optional[int]:
    lines = getattr(item, "lines", None)
    return min(lines.values()) if lines else None


def _key_line(obj: Any, key: str, default: Optional[int]) -> Optional[int]:
    return getattr(obj, "lines", {}).get(key, default)


def _name(value: Any, where: _Where) -> str:
    """A label name: a non-empty string, or an integer (its digits), as data files spell labels."""
    if isinstance(value, bool):
        raise UsageError(f"{where}: label name {shown(value)} is a boolean (YAML reads yes/no/on/off/true/false so); quote "
                         f"it, e.g. 'no'")
    return _at(where, check_label, str(value) if isinstance(value, int) else value)


def _value(value: Any, name: str, where: _Where) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """What a mapping gives a name: null (the name alone), a word, a list of words, or an object."""
    if value is None:
        return (), ()
    if isinstance(value, dict):
        _check_keys(value, OBJECT_KEYS, where, f"label {shown(name)}")
        return _fields(value, name, where)
    return _at(where, label_texts, value, f"label {shown(name)}: words"), ()


def _check_keys(obj: dict, allowed: tuple[str, ...], where: _Where, what: str) -> None:
    if isinstance(obj, _JsonObject) and len(obj.pairs) != len(obj):
        twice = next(key for key, count in Counter(k for k, _ in obj.pairs).items() if count > 1)
        raise UsageError(f"{where}: {what} has the key {shown(twice)} twice; keep one")
    unknown = [key for key in obj if key not in allowed]
    if unknown:
        raise UsageError(f"{where}: {what} has unknown key{'s' if len(unknown) > 1 else ''} "
                         f"{shown(unknown)[1:-1]}; the allowed keys are {', '.join(allowed)}")


def _fields(obj: dict, name: str, where: _Where) -> tuple[tuple[str, ...], tuple[str, ...]]:
    words = descriptions = ()
    if "words" in obj:
        words = _at(_Where(where.path, _key_line(obj, "words", where.line), where.entry), label_texts,
                    obj["words"], f"label {shown(name)}: words")
    if "description" in obj:
        descriptions = _at(_Where(where.path, _key_line(obj, "description", where.line), where.entry), label_texts,
                           obj["description"], f"label {shown(name)}: description", "sentence")
    return words, descriptions

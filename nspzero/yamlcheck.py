"""Strict reading of the YAML files users write (task configs, prompt sets).

One place for: UTF-8 decoding, YAML syntax, refusing tags (`!!python/...`) and duplicate keys,
remembering the line of every key, and strict type checks — so every mistake is one UsageError
naming `file:line` and the field, never a traceback and never a silently coerced value
(`soft_positions: 'no'` is not True).
"""
from __future__ import annotations

import re
from typing import Any, Iterable, Optional, Union

import yaml

from .errors import UsageError, shown, type_name
from .templates import has_content

# names end up in file names (results, predictions) and in "set:variant" specs
IDENTIFIER = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}\Z")
# values a YAML document may hold once its aliases are expanded: a few-hundred-byte file of nested
# aliases ("billion laughs") would otherwise expand to billions when walked or shown in a message
MAX_YAML_VALUES = 1_000_000


class Mapping(dict):
    """A YAML mapping that remembers the (1-based) line of each key."""

    lines: dict


class _Loader(yaml.SafeLoader):
    """SafeLoader (no Python objects) whose mappings remember key lines and refuse duplicate keys."""

    where = "<yaml>"

    def construct_mapping(self, node, deep=False):
        if not isinstance(node, yaml.MappingNode):
            return super().construct_mapping(node, deep=deep)
        self.flatten_mapping(node)
        out = Mapping()
        out.lines = {}
        for key_node, value_node in node.value:
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            try:
                hash(key)
            except TypeError:
                raise UsageError(f"{self.where}:{line}: a mapping key must be a plain value, not {type(key).__name__}") from None
            if key in out:
                raise UsageError(f"{self.where}:{line}: key {key!r} appears twice in one mapping (the first is on "
                                 f"line {out.lines[key]}); keep one")
            out[key] = self.construct_object(value_node, deep=deep)
            out.lines[key] = line
        return out


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _Loader.construct_mapping)


def decode_utf8(content: bytes, where: str) -> str:
    """A user file's bytes as text; not UTF-8 is a one-line UsageError naming `where:line` and the byte."""
    try:
        return content.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = content[:exc.start].count(b"\n") + 1
        raise UsageError(f"{where}:{line}: not UTF-8 (byte 0x{content[exc.start]:02x} at offset {exc.start}); "
                         f"save the file as UTF-8") from None


def read_yaml(content: Union[str, bytes], where: str) -> Any:
    """Parse one YAML document; every problem is a one-line UsageError naming `where:line`."""
    if isinstance(content, bytes):
        content = decode_utf8(content, where)
    loader_class = type("Loader", (_Loader,), {"where": where})
    loader = loader_class(content)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _check_expansion(node, where)
        return loader.construct_document(node)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        problem = str(getattr(exc, "problem", None) or exc).strip().splitlines()[0]
        if "constructor for the tag" in problem or "unknown tag" in problem:
            problem += "; tags such as !!python/... are not allowed in nspzero files"
        raise UsageError(f"{where}{line}: invalid YAML ({problem})") from None
    except RecursionError:
        raise UsageError(f"{where}: invalid YAML (nested too deeply)") from None
    except UsageError:
        raise
    except ValueError as exc:  # e.g. an integer with more digits than Python converts
        raise UsageError(f"{where}: invalid YAML value ({str(exc).splitlines()[0][:200]})") from None
    finally:
        loader.dispose()


def _check_expansion(root: yaml.Node, where: str) -> None:
    """Refuse a document whose aliases expand to more than MAX_YAML_VALUES values, or refer to
    themselves, counted on the composed nodes (each counted once) before anything is built."""
    sizes: dict[int, int] = {}
    busy: set[int] = set()

    def size(node: yaml.Node) -> int:
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in busy:
            raise UsageError(f"{where}:{node.start_mark.line + 1}: a YAML alias refers to the value that holds it; "
                             f"write the value out")
        busy.add(key)
        children = (node.value if isinstance(node, yaml.SequenceNode) else
                    [n for pair in node.value for n in pair] if isinstance(node, yaml.MappingNode) else [])
        total = 1
        for child in children:
            total += size(child)
            if total > MAX_YAML_VALUES:
                raise UsageError(f"{where}: its YAML aliases (*name) expand to more than {MAX_YAML_VALUES:,} values; "
                                 f"write the values out or use fewer aliases")
        busy.discard(key)
        sizes[key] = total
        return total

    size(root)


def read_yaml_file(path: str) -> Any:
    try:
        with open(path, "rb") as handle:
            content = handle.read()
    except OSError as exc:
        raise UsageError(f"{path}: cannot read it ({exc.strerror or exc})") from None
    return read_yaml(content, path)


def at(where: str, data: Any, key: Any, field: Optional[str] = None) -> str:
    """'file:line: field NAME' for error messages (the key's line when known)."""
    line = getattr(data, "lines", {}).get(key)
    return f"{where}{f':{line}' if line else ''}: field {field or key!r}"


def expect_str(value: Any, place: str, *, empty: bool = False) -> str:
    if not isinstance(value, str):
        raise UsageError(f"{place} must be a string, got {type_name(value)} {shown(value)}")
    if not empty and not value.strip():
        raise UsageError(f"{place} must not be empty")
    return value


def expect_identifier(value: Any, place: str) -> str:
    expect_str(value, place)
    if not IDENTIFIER.match(value):
        raise UsageError(f"{place} must be a name of letters, digits, '_' or '-' (at most 64, starting with a letter "
                         f"or digit), got {shown(value)}")
    return value


def expect_bool(value: Any, place: str) -> bool:
    if not isinstance(value, bool):
        raise UsageError(f"{place} must be true or false, got {type_name(value)} {shown(value)}")
    return value


def expect_number(value: Any, place: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise UsageError(f"{place} must be a number, got {type_name(value)} {shown(value)}")
    return float(value)


def expect_label(value: Any, place: str) -> str:
    """A label as the data spells it: a string, or an integer (written as its digits)."""
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise UsageError(f"{place} must hold labels (strings or integers), got {type_name(value)} {shown(value)}")
    text = str(value)
    if not has_content(text):
        raise UsageError(f"{place} holds an empty label (nothing but whitespace or invisible characters)")
    return text


def expect_mapping(value: Any, place: str) -> dict:
    if not isinstance(value, dict):
        raise UsageError(f"{place} must be a mapping (key: value lines), got {type_name(value)}")
    return value


def expect_list(value: Any, place: str) -> list:
    if not isinstance(value, list):
        raise UsageError(f"{place} must be a list, got {type_name(value)} {shown(value)}")
    return value


def expect_choice(value: Any, place: str, choices: Iterable[str]) -> str:
    choices = tuple(choices)
    if not isinstance(value, str) or value not in choices:
        raise UsageError(f"{place} must be one of {', '.join(choices)}, got {shown(value)}")
    return value

"""Named prompt sets: YAML files in prompts/ (shipped as nspzero.prompts), validated on load.

A prompt set holds named variants. A label variant (C-C tasks, `classify --prompt`) has a
template (or a list, averaged) with {label} and a vocabulary: label (as in the data) → word(s).
A pair variant (S-C tasks, ChID) has `first`/`second` templates over the task's fields.
Select a variant with "name:variant"; "name" alone takes the set's default.
"""
from __future__ import annotations

import difflib
import os
from dataclasses import dataclass
from importlib import resources
from typing import Optional, Union

from .errors import UsageError, shown
from .contrast import COMBINE_RULES
from .templates import Template, check_placement, label_words
from .yamlcheck import (at, expect_choice, expect_identifier, expect_label, expect_mapping, expect_str,
                        read_yaml, read_yaml_file, type_name)


@dataclass(frozen=True)
class PromptVariant:
    """One way of prompting a task. Exactly one of (templates + words) or (first + second)."""

    prompt_set: str
    name: str
    placement: str = "prefix"
    templates: tuple[str, ...] = ()
    words: Optional[dict[str, tuple[str, ...]]] = None
    first: Optional[str] = None
    second: Optional[str] = None
    combine: str = "mean"   # how a label's several (template, word) scores combine

    @property
    def key(self) -> str:
        return f"{self.prompt_set}:{self.name}"

    @property
    def labels(self) -> list[str]:
        return list(self.words or {})

    def pair_templates(self, fields: tuple[str, ...]) -> tuple[Template, Template]:
        """Parse `first`/`second`, allowing only the task's field names."""
        if self.first is None or self.second is None:
            raise UsageError(f"prompt {self.key} has no first/second pair templates; it is a label prompt")
        return (Template.parse(self.first, allowed=fields, required=()),
                Template.parse(self.second, allowed=fields, required=()))


def _where(name: str) -> str:
    return f"prompts/{name}.yaml"


def _read_yaml(text: Union[str, bytes], where: str) -> dict:
    data = read_yaml(text, where)
    if not isinstance(data, dict):
        raise UsageError(f"{where}: expected a mapping at the top level (name: ..., variants: ...), got {type_name(data)}")
    return data


SET_FIELDS = ("name", "description", "placement", "default", "words", "variants")
VARIANT_FIELDS = ("template", "words", "placement", "combine", "first", "second", "description")


def _key_name(key: object, place: str) -> str:
    """Vocabulary names may be written as numbers ("2022" or 2022); both mean the same name."""
    if isinstance(key, bool) or not isinstance(key, (str, int)):
        raise UsageError(f"{place}: a name must be a string, got {type_name(key)} {shown(key)}")
    return str(key)


def _vocabularies(data: dict, where: str) -> dict[str, dict[str, tuple[str, ...]]]:
    """words: {vocabulary: {label: word or [words]}}, every entry type-checked."""
    if "words" not in data or data["words"] is None:
        return {}
    raw = expect_mapping(data["words"], at(where, data, "words"))
    out: dict[str, dict[str, tuple[str, ...]]] = {}
    for vocab, table in raw.items():
        place = at(where, raw, vocab, f"words.{vocab}")
        name = _key_name(vocab, place)
        table = expect_mapping(table, place)
        labels: dict[str, object] = {}
        for label, words in table.items():
            lplace = at(where, table, label, f"words.{vocab}.{label}")
            label = expect_label(label, lplace)
            if isinstance(words, list):
                if not words:
                    raise UsageError(f"{lplace} must give at least one word")
                words = [expect_str(w, lplace) for w in words]
            else:
                words = expect_str(words, lplace)
            labels[label] = words
        try:
            out[name] = label_words(labels)
        except UsageError as exc:
            raise UsageError(f"{place}: {exc}") from None
    return out


def _templates(value: object, place: str) -> tuple[str, ...]:
    if not isinstance(value, (str, list)):
        raise UsageError(f"{place} must be a template string or a list of them, got {type_name(value)} {shown(value)}")
    sources = (value,) if isinstance(value, str) else tuple(value)
    if not sources:
        raise UsageError(f"{place} must give at least one template")
    for source in sources:
        expect_str(source, place)
        try:
            Template.parse(source)
        except UsageError as exc:
            raise UsageError(f"{place}: {exc}") from None
    return sources


def _placement(value: object, place: str) -> str:
    return expect_choice(value, place, ("prefix", "suffix"))


def parse_prompt_set(data: dict, where: str) -> dict[str, PromptVariant]:
    """Validate a prompt-set mapping strictly; errors name the file, the line and the field."""
    if not isinstance(data, dict):
        raise UsageError(f"{where}: expected a mapping at the top level, got {type_name(data)}")
    for key in data:
        if key not in SET_FIELDS:
            raise UsageError(f"{at(where, data, key)} is not a prompt-set field (known: {', '.join(SET_FIELDS)})")
    if "name" not in data:
        raise UsageError(f"{where}: field 'name' is missing")
    name = expect_identifier(data["name"], at(where, data, "name"))
    if "description" in data:
        expect_str(data["description"], at(where, data, "description"), empty=True)
    placement = check_placement(_placement(data.get("placement", "prefix"), at(where, data, "placement")))
    vocabularies = _vocabularies(data, where)
    if "variants" not in data:
        raise UsageError(f"{where}: field 'variants' is missing; it maps variant names to their settings")
    variants = expect_mapping(data["variants"], at(where, data, "variants"))
    if not variants:
        raise UsageError(f"{at(where, data, 'variants')} must map variant names to their settings")
    out: dict[str, PromptVariant] = {}
    for vname, spec in variants.items():
        field = f"variants.{vname}"
        vname = expect_identifier(vname, at(where, variants, vname, field))
        spec = expect_mapping(spec, at(where, variants, vname, field))
        for key in spec:
            if key not in VARIANT_FIELDS:
                raise UsageError(f"{at(where, spec, key, f'{field}.{key}')} is not a variant field "
                                 f"(known: {', '.join(VARIANT_FIELDS)})")
        place = lambda key: at(where, spec, key, f"{field}.{key}")  # noqa: E731
        vplacement = _placement(spec["placement"], place("placement")) if "placement" in spec else placement
        if "description" in spec:
            expect_str(spec["description"], place("description"), empty=True)
        if "template" in spec:
            sources = _templates(spec["template"], place("template"))
            if "words" not in spec:
                raise UsageError(f"{where}: {field}: a label prompt needs 'words' (the name of a vocabulary under 'words')")
            vocab = _key_name(spec["words"], place("words"))
            if vocab not in vocabularies:
                raise UsageError(f"{place('words')}: no vocabulary {shown(vocab)} under 'words' "
                                 f"(have: {', '.join(vocabularies) or 'none'})")
            how = expect_choice(spec.get("combine", "mean"), place("combine"), COMBINE_RULES)
            out[vname] = PromptVariant(name, vname, vplacement, sources, vocabularies[vocab], combine=how)
        elif "first" in spec and "second" in spec:
            first = expect_str(spec["first"], place("first"))
            second = expect_str(spec["second"], place("second"))
            for key in ("words", "combine"):
                if key in spec:
                    raise UsageError(f"{place(key)} belongs to label prompts (with 'template'), not pair prompts")
            out[vname] = PromptVariant(name, vname, vplacement, first=first, second=second)
        else:
            raise UsageError(f"{at(where, variants, vname, field)} needs 'template' and 'words' (label prompt) or "
                             f"'first' and 'second' (pair prompt)")
    default = expect_identifier(data["default"], at(where, data, "default")) if "default" in data else next(iter(out))
    if default not in out:
        raise UsageError(f"{at(where, data, 'default')}: {shown(default)} is not one of its variants ({', '.join(out)})")
    out[""] = out[default]
    return out


def prompt_family(variant: PromptVariant) -> list[PromptVariant]:
    """Every label variant of `variant`'s prompt set that uses the same vocabulary, plus two
    ensembles of all their templates (mean P and mean log P): what `eval --compare-prompts` runs."""
    if variant.words is None:
        return [variant]
    siblings = {v.name: v for k, v in load_prompt_set(variant.prompt_set).items()
                if k and v.words == variant.words and v.placement == variant.placement}
    templates = tuple(dict.fromkeys(t for v in siblings.values() for t in v.templates))
    out = list(siblings.values())
    if len(templates) > 1:
        for how in COMBINE_RULES:
            out.append(PromptVariant(variant.prompt_set, f"ensemble-{how}", variant.placement, templates,
                                     variant.words, combine=how))
    return out


def list_prompt_sets() -> list[str]:
    return sorted(p.name[:-5] for p in resources.files("nspzero.prompts").iterdir() if p.name.endswith(".yaml"))


def load_prompt(spec: str) -> PromptVariant:
    """'tnews' → its default variant; 'tnews:news-2021' → that variant; a .yaml path works too."""
    name, _, variant = spec.partition(":")
    variants = load_prompt_set(name)
    if variant not in variants:
        names = [v for v in variants if v]
        close = difflib.get_close_matches(variant, names, n=1)
        hint = f"did you mean {shown(close[0])}? " if close else ""
        raise UsageError(f"prompt set {shown(name)} has no variant {shown(variant)}; {hint}variants: {', '.join(names)}")
    return variants[variant]


def load_prompt_set(name: str) -> dict[str, PromptVariant]:
    """All variants of a prompt set by name (or .yaml path); key "" is the default."""
    if name.endswith((".yaml", ".yml")) or os.sep in name:
        if not os.path.isfile(name):
            raise UsageError(f"prompt file {shown(name)} does not exist")
        data = read_yaml_file(name)
        if not isinstance(data, dict):
            raise UsageError(f"{name}: expected a mapping at the top level (name: ..., variants: ...), got {type_name(data)}")
        variants = parse_prompt_set(data, name)
    else:
        known = list_prompt_sets()
        if name not in known:
            close = difflib.get_close_matches(name, known, n=1)
            hint = f"did you mean {shown(close[0])}? " if close else ""
            raise UsageError(f"unknown prompt set {shown(name)}; {hint}known: {', '.join(known)}")
        raw = resources.files("nspzero.prompts").joinpath(f"{name}.yaml").read_bytes()
        variants = parse_prompt_set(_read_yaml(raw, _where(name)), _where(name))
    return variants

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
from typing import Any, Optional

import yaml

from .errors import UsageError
from .mapping import COMBINE_RULES
from .templates import Template, check_placement, label_words


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


def _read_yaml(text: str, where: str) -> dict:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        raise UsageError(f"{where}{line}: invalid YAML ({getattr(exc, 'problem', exc)})") from None
    if not isinstance(data, dict):
        raise UsageError(f"{where}: expected a mapping at the top level")
    return data


def parse_prompt_set(data: dict, where: str) -> dict[str, PromptVariant]:
    """Validate a prompt-set mapping; errors name the file and the field."""
    name = data.get("name")
    if not isinstance(name, str) or not name:
        raise UsageError(f"{where}: field 'name' is missing")
    placement = check_placement(data.get("placement", "prefix"))
    vocabularies: dict[str, Any] = data.get("words") or {}
    variants = data.get("variants")
    if not isinstance(variants, dict) or not variants:
        raise UsageError(f"{where}: field 'variants' must map variant names to their settings")
    out: dict[str, PromptVariant] = {}
    for vname, spec in variants.items():
        vname = str(vname)
        at = f"{where}: variants.{vname}"
        if not isinstance(spec, dict):
            raise UsageError(f"{at}: expected a mapping")
        vplacement = check_placement(spec.get("placement", placement))
        if "template" in spec:
            sources = spec["template"]
            sources = (sources,) if isinstance(sources, str) else tuple(sources)
            try:
                for s in sources:
                    Template.parse(s)
            except UsageError as exc:
                raise UsageError(f"{at}.template: {exc}") from None
            vocab = spec.get("words")
            if str(vocab) not in {str(k) for k in vocabularies}:
                raise UsageError(f"{at}.words: no vocabulary {vocab!r} under 'words' "
                                 f"(have: {', '.join(map(str, vocabularies))})")
            raw = {str(k): v for k, v in vocabularies.items()}[str(vocab)]
            try:
                words = label_words({str(k): v for k, v in raw.items()})
            except UsageError as exc:
                raise UsageError(f"{where}: words.{vocab}: {exc}") from None
            how = str(spec.get("combine", "mean"))
            if how not in COMBINE_RULES:
                raise UsageError(f"{at}.combine: must be one of {', '.join(COMBINE_RULES)}, got {how!r}")
            out[vname] = PromptVariant(name, vname, vplacement, sources, words, combine=how)
        elif "first" in spec and "second" in spec:
            out[vname] = PromptVariant(name, vname, vplacement, first=str(spec["first"]), second=str(spec["second"]))
        else:
            raise UsageError(f"{at}: needs 'template' and 'words' (label prompt) or 'first' and 'second' (pair prompt)")
    default = str(data.get("default", next(iter(out))))
    if default not in out:
        raise UsageError(f"{where}: default {default!r} is not one of its variants ({', '.join(out)})")
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
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise UsageError(f"prompt set {name!r} has no variant {variant!r}; {hint}variants: {', '.join(names)}")
    return variants[variant]


def load_prompt_set(name: str) -> dict[str, PromptVariant]:
    """All variants of a prompt set by name (or .yaml path); key "" is the default."""
    if name.endswith((".yaml", ".yml")) or os.sep in name:
        if not os.path.isfile(name):
            raise UsageError(f"prompt file {name!r} does not exist")
        with open(name, encoding="utf-8") as handle:
            variants = parse_prompt_set(_read_yaml(handle.read(), name), name)
    else:
        known = list_prompt_sets()
        if name not in known:
            close = difflib.get_close_matches(name, known, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise UsageError(f"unknown prompt set {name!r}; {hint}known: {', '.join(known)}")
        text = resources.files("nspzero.prompts").joinpath(f"{name}.yaml").read_text(encoding="utf-8")
        variants = parse_prompt_set(_read_yaml(text, _where(name)), _where(name))
    return variants

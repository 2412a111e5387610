"""The one request: a validated, frozen description of a classification call.

Every front door (Python, CLI, HTTP, Ray, the web page) builds a `ClassifyRequest` with
`build_request` before any model loads, so the rules and messages are the same everywhere:
a named prompt set gives labels, words, templates, placement and combine rule, and whatever the
caller states explicitly overrides it. Nothing else resolves prompts. The request also renders
its prompt sentences once and turns a text into its `Candidates` (the pairs to score).
"""
from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from typing import Any, Mapping, Optional, Sequence, Union

from .candidates import Candidates
from .errors import UsageError
from .mapping import COMBINE_RULES
from .scorer import Pair
from .templates import LabelsArg, Template, check_placement, check_unicode, label_words

DEFAULT_TEMPLATE = "{label}"
# characters that carry no content for the NSP head: controls, format (zero-width), separators
_EMPTY_CATEGORIES = ("Cc", "Cf", "Zs", "Zl", "Zp", "Cs", "Co", "Cn")


def split_labels(value: str) -> list[str]:
    """'体育,财经' → ['体育', '财经'] (ASCII or full-width commas); blanks are kept so that
    validation can name them."""
    return [part.strip() for part in value.replace("，", ",").split(",")]


def has_content(text: str) -> bool:
    """Whether `text` holds anything but whitespace, control, zero-width or other invisible characters."""
    return any(not ch.isspace() and unicodedata.category(ch) not in _EMPTY_CATEGORIES for ch in text)


def check_text(value: Any, where: str) -> str:
    """The one rule for a text, wherever it comes from (API list, file record, HTTP body): a string
    with visible content and valid Unicode. `where` names it in the message ("texts[3]", "a.jsonl:7: field 'text'")."""
    if not isinstance(value, str):
        shown = repr(value) if len(repr(value)) <= 60 else repr(value)[:60] + "…"
        raise UsageError(f"{where} is {type(value).__name__} {shown}, not a string")
    if not has_content(value):
        raise UsageError(f"{where} is empty (nothing but whitespace or invisible characters); remove or fill it "
                         f"(an empty sentence gives a meaningless score)")
    return check_unicode(value, where)


def check_texts(texts: Union[str, Sequence[str]]) -> tuple[list[str], bool]:
    """(texts as a list, whether a single string was given); each checked by `check_text`."""
    single = isinstance(texts, str)
    items = [texts] if single else texts
    if items is None or not isinstance(items, Sequence):
        raise UsageError(f"texts must be a string or a list of strings, got {type(texts).__name__}")
    items = list(items)
    if not items:
        raise UsageError("no texts given; pass at least one text")
    for i, t in enumerate(items):
        check_text(t, f"texts[{i}]")
    return items, single


def prompt_pair(prompt: str, text: str, placement: str) -> Pair:
    """The NSP pair of a prompt sentence and a text: prompt first ("prefix", the paper's) or second."""
    return Pair(prompt, text, prompt="first") if placement == "prefix" else Pair(text, prompt, prompt="second")


@dataclass(frozen=True)
class ClassifyRequest:
    """What to classify texts into, and how. Build it with `build_request` (which validates it).

    `words[i]` are the verbalizations of `labels[i]`; `prompts[i]` the prompt sentences of that
    label (every template × every word), rendered once; a label's score combines its prompts'
    P(IsNext) by `combine`. `prompt` names the prompt set variant it came from, if any.
    """

    labels: tuple[str, ...]
    words: tuple[tuple[str, ...], ...]
    templates: tuple[str, ...]
    placement: str
    combine: str
    multi_label: bool
    threshold: float
    prompt: Optional[str] = None
    prompts: tuple[tuple[str, ...], ...] = ()

    def candidates(self, text: str) -> Candidates:
        """The text's pairs, label by label (the input of candidates-contrast)."""
        return Candidates(self.labels, tuple(prompt_pair(p, text, self.placement) for ps in self.prompts for p in ps),
                          tuple(len(ps) for ps in self.prompts), self.combine)

    @property
    def pairs_per_text(self) -> int:
        return sum(len(ps) for ps in self.prompts)

    def to_dict(self) -> dict:
        """The request as plain data (provenance in outputs, the web page, logs)."""
        return {"labels": {label: list(ws) for label, ws in zip(self.labels, self.words)},
                "templates": list(self.templates), "placement": self.placement, "combine": self.combine,
                "multi_label": self.multi_label, "threshold": self.threshold, "prompt": self.prompt}


def _check_choice(name: str, value: Any, choices: Sequence[str]) -> str:
    if not isinstance(value, str) or value not in choices:
        raise UsageError(f"{name} must be one of {', '.join(choices)}, got {value!r}")
    return value


def _prompt_labels(variant, labels: Any) -> dict[str, tuple[str, ...]]:
    """A prompt set's label → words, or the subset `labels` (a list of its label names) picks."""
    words = dict(variant.words)
    if labels is None:
        return words
    if isinstance(labels, Mapping) or not isinstance(labels, Sequence) or not all(isinstance(w, str) for w in labels):
        raise UsageError(f"with prompt {variant.key}, labels must be a list of its label names (to pick some); "
                         f"leave out the prompt to give your own words")
    unknown = [w for w in labels if w not in words]
    if unknown:
        raise UsageError(f"labels {', '.join(map(repr, unknown))} not in prompt {variant.key} "
                         f"(its labels: {', '.join(words)})")
    return {w: words[w] for w in labels}


def build_request(labels: Optional[LabelsArg] = None, *, prompt: Optional[str] = None,
                  template: Union[str, Sequence[str], None] = None, placement: Optional[str] = None,
                  combine: Optional[str] = None, multi_label: bool = False, threshold: float = 0.5,
                  prompt_files: bool = True) -> ClassifyRequest:
    """Validate a classification call and build its request (UsageErrors, one line each).

    `labels`: names, or name → verbalization(s); with `prompt` (a named prompt set such as
    "tnews" or "tnews:news-2021"), a list picking some of its labels. `template`, `placement` and
    `combine` left as None take the prompt set's (or "{label}", "prefix", "mean"); given, they
    override it. `prompt_files=False` refuses prompt-set paths (the HTTP server reads no files).
    """
    variant = None
    if prompt is not None:
        from .prompt_sets import list_prompt_sets, load_prompt

        if not isinstance(prompt, str) or not prompt.strip():
            raise UsageError(f"prompt must be the name of a prompt set, e.g. tnews or tnews:news-2021, got {prompt!r}")
        name = prompt.partition(":")[0]
        if not prompt_files and (name.endswith((".yaml", ".yml")) or "/" in name or "\\" in name):
            raise UsageError(f"prompt {prompt!r}: only named prompt sets are accepted here "
                             f"({', '.join(list_prompt_sets())}), not files")
        variant = load_prompt(prompt)
        if variant.words is None:
            raise UsageError(f"prompt {variant.key} is a sentence-pair prompt; classification needs a label prompt "
                             f"such as tnews, iflytek, csldcp or eprstmt")
        words = label_words(_prompt_labels(variant, labels))
    else:
        if labels is None:
            raise UsageError("no labels given: pass labels (e.g. 体育,财经, or label → word(s)) or a prompt set name")
        words = label_words(labels)
    if not isinstance(multi_label, bool):
        raise UsageError(f"multi_label must be true or false, got {multi_label!r}")
    if len(words) < 2 and not multi_label:
        raise UsageError(f"only one label ({next(iter(words))!r}) given; single-label classification needs at "
                         "least two candidates (or use multi-label to test one label against a threshold)")
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0.0 <= threshold <= 1.0:
        raise UsageError(f"threshold must be a probability between 0 and 1, got {threshold!r}")
    if template is None:
        sources = list(variant.templates) if variant is not None else [DEFAULT_TEMPLATE]
    else:
        if not isinstance(template, (str, Sequence)):
            raise UsageError(f"template must be a string with {{label}} or a list of them, got {template!r}")
        sources = [template] if isinstance(template, str) else list(template)
        if not sources:
            raise UsageError("no template given; pass e.g. '{label}' or '这是一则{label}新闻'")
    templates = [Template.parse(s) for s in sources]
    placement = check_placement(placement if placement is not None else variant.placement if variant else "prefix")
    how = _check_choice("combine", combine if combine is not None else variant.combine if variant else "mean",
                        COMBINE_RULES)
    prompts = tuple(tuple(t.render(label=w) for t in templates for w in ws) for ws in words.values())
    return ClassifyRequest(tuple(words), tuple(words.values()), tuple(sources), placement, how, multi_label,
                           float(threshold), variant.key if variant is not None else None, prompts)

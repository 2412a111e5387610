"""The one request: a validated, frozen description of a classification call.

Every front door (Python, CLI, HTTP, Ray, the web page) builds a `ClassifyRequest` with
`build_request` before any model loads, so the rules and messages are the same everywhere:
a named prompt set gives labels, words, templates, placement and combine rule, and whatever the
caller states explicitly overrides it. Nothing else resolves prompts. The request also renders
its prompt sentences once and turns a text into its `Candidates` (the pairs to score).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Mapping, Optional, Sequence, Union

from .candidates import Candidates
from .errors import DataError, UsageError
from .mapping import COMBINE_RULES
from .scorer import Pair
from .templates import LabelSpec, LabelsArg, Template, check_placement, check_unicode, has_content, label_specs

DEFAULT_TEMPLATE = "{label}"


def split_labels(value: str) -> list[str]:
    """'体育,财经' → ['体育', '财经'] (ASCII or full-width commas); blanks are kept so that
    validation can name them."""
    return [part.strip() for part in value.replace("，", ",").split(",")]


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


def prompt_pair(prompt: str, text: str, placement: str, cut: bool = False) -> Pair:
    """The NSP pair of a prompt sentence and a text: prompt first ("prefix", the paper's) or second.
    The prompt side is never cut, unless `cut` (entity linking: a description is data too)."""
    if placement == "prefix":
        return Pair(prompt, text, prompt=None if cut else "first")
    return Pair(text, prompt, prompt=None if cut else "second")


LONG_TEXT_MODES = ("truncate", "chunk")
AGGREGATES = ("max", "mean")
DEFAULT_OVERLAP = 32  # tokens a window repeats from the one before (whole sentences where they fit)


@dataclass(frozen=True)
class LabelSet:
    """One text's candidate labels: names, verbalizations, descriptions, and each label's prompt
    sentences (every template × every word, then its descriptions as they are), rendered once."""

    names: tuple[str, ...]
    words: tuple[tuple[str, ...], ...]
    descriptions: tuple[tuple[str, ...], ...]
    prompts: tuple[tuple[str, ...], ...]

    @property
    def pairs_per_window(self) -> int:
        return sum(len(ps) for ps in self.prompts)

    def to_dict(self) -> dict:
        return {name: (list(ws) if not ds else {"words": list(ws), "descriptions": list(ds)})
                for name, ws, ds in zip(self.names, self.words, self.descriptions)}


@dataclass(frozen=True)
class ClassifyRequest:
    """What to classify texts into, and how. Build it with `build_request` (which validates it).

    `label_set` holds the labels every text is classified into, unless a text brings its own
    (`labels_for`, per-row labels); it is None when every text must. A label's score combines its
    prompts' P(IsNext) by `combine`. With `long_text="chunk"` a long text is read in windows
    (`overlap` tokens repeated between neighbours) and a label's score is the `aggregate` (max or
    mean) of its per-window scores. `top_k` keeps only the best K labels' scores in a result (the
    decision still uses all). `prompt` names the prompt set variant it came from, if any.
    """

    label_set: Optional[LabelSet]
    templates: tuple[str, ...]
    placement: str
    combine: str
    multi_label: bool
    threshold: float
    prompt: Optional[str] = None
    long_text: str = "truncate"
    aggregate: str = "max"
    overlap: int = DEFAULT_OVERLAP
    top_k: Optional[int] = None
    cut_prompts: bool = False  # entity linking: KB descriptions are data, cut like texts when too long
    _prompt_words: Optional[tuple[tuple[str, tuple[str, ...]], ...]] = field(default=None, repr=False)
    _row_cache: dict = field(default_factory=dict, repr=False, compare=False, hash=False)

    @property
    def labels(self) -> tuple[str, ...]:
        return self.label_set.names if self.label_set is not None else ()

    @property
    def words(self) -> tuple[tuple[str, ...], ...]:
        return self.label_set.words if self.label_set is not None else ()

    @property
    def prompts(self) -> tuple[tuple[str, ...], ...]:
        return self.label_set.prompts if self.label_set is not None else ()

    @property
    def pairs_per_text(self) -> int:
        """Pairs per text (per window when chunking) with the request's own labels."""
        return self.label_set.pairs_per_window if self.label_set is not None else 0

    def labels_for(self, value: Any, where: str) -> LabelSet:
        """A text's own label set (per-row labels: a list, a comma string, or label → word(s)),
        checked by the same rules as the request's; with a prompt set, names picking its labels.
        Equal label sets are built once per request (a file's rows often repeat them)."""
        key = _cache_key(value)
        cached = self._row_cache.get(key) if key is not None else None
        if cached is not None:
            return cached
        try:
            labels = split_labels(value) if isinstance(value, str) else value
            if self._prompt_words is not None:
                specs = label_specs(_prompt_labels(self.prompt, dict(self._prompt_words), labels))
            else:
                specs = label_specs(labels)
            made = _label_set(specs, [Template.parse(t) for t in self.templates], self.multi_label)
        except UsageError as exc:
            raise UsageError(f"{where}: {exc}") from None
        if key is not None and len(self._row_cache) < ROW_CACHE_SIZE:
            self._row_cache[key] = made
        return made

    def labels_per_text(self, values: Sequence[Any], n_texts: int) -> list[Optional[LabelSet]]:
        """Per-row labels given as one list (or dict, or comma string) per text, as the Python API
        and the server take them: one checked label set each, named `labels[i]` in errors. A None
        item takes the request's labels (a per-row call has none, so the text is then refused)."""
        if len(values) != n_texts:
            raise UsageError(f"labels: one label set per text is needed, got {len(values)} label sets for "
                             f"{n_texts} texts (or give one list of labels for all)")
        return [None if value is None else self.labels_for(value, f"labels[{i}]") for i, value in enumerate(values)]

    def row_labels(self, value: Any, where: str) -> Optional[LabelSet]:
        """A file row's own labels (its `labels` field: a list, a comma string, or label → word(s)),
        or None when it has none and the request's apply; a DataError naming `where` (file:line)."""
        if value is None or (isinstance(value, str) and not value.strip()):
            if self.label_set is None:
                raise DataError(f"{where}: no labels for this row: give it a 'labels' field (a list, or a comma "
                                f"string such as \"体育,财经\") or pass labels for every row (--labels/--prompt)")
            return None
        try:
            return self.labels_for(value, f"{where}: field 'labels'")
        except UsageError as exc:
            raise DataError(str(exc)) from None

    def candidates(self, text: str, label_set: Optional[LabelSet] = None,
                   windows: Optional[Sequence[str]] = None) -> Candidates:
        """The text's pairs, label by label, window by window (the input of candidates-contrast).
        `label_set`: the text's own labels (default: the request's); `windows`: the pieces a long
        text is read in (default: the text itself)."""
        labels = label_set if label_set is not None else self.label_set
        if labels is None:
            raise UsageError("no labels for this text: give it its own labels, or labels for every text")
        pieces = tuple(windows) if windows is not None else (text,)
        pairs = tuple(prompt_pair(p, piece, self.placement, self.cut_prompts)
                      for ps in labels.prompts for piece in pieces for p in ps)
        return Candidates(labels.names, pairs, tuple(len(ps) * len(pieces) for ps in labels.prompts), self.combine,
                          windows=len(pieces), aggregate=self.aggregate)

    def to_dict(self) -> dict:
        """The request as plain data (provenance in outputs, the web page, logs)."""
        return {"labels": self.label_set.to_dict() if self.label_set is not None else None,
                "templates": list(self.templates), "placement": self.placement, "combine": self.combine,
                "multi_label": self.multi_label, "threshold": self.threshold, "prompt": self.prompt,
                "long_text": self.long_text, "aggregate": self.aggregate, "overlap": self.overlap,
                "top_k": self.top_k}


ROW_CACHE_SIZE = 4096  # distinct per-row label sets remembered per request


def _cache_key(value: Any) -> Optional[str]:
    try:
        return json.dumps(value, ensure_ascii=False, sort_keys=False)
    except (TypeError, ValueError):
        return None


def _label_set(specs: Mapping[str, LabelSpec], templates: Sequence[Template], multi_label: bool) -> LabelSet:
    """Labels → their prompt sentences; single-label classification needs two candidates."""
    if len(specs) < 2 and not multi_label:
        raise UsageError(f"only one label ({next(iter(specs))!r}) given; single-label classification needs at "
                         "least two candidates (or use multi-label to test one label against a threshold)")
    prompts = tuple(tuple(t.render(label=w) for t in templates for w in spec.words) + spec.descriptions
                    for spec in specs.values())
    return LabelSet(tuple(specs), tuple(s.words for s in specs.values()), tuple(s.descriptions for s in specs.values()),
                    prompts)


def _check_choice(name: str, value: Any, choices: Sequence[str]) -> str:
    if not isinstance(value, str) or value not in choices:
        raise UsageError(f"{name} must be one of {', '.join(choices)}, got {value!r}")
    return value


def _check_count(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise UsageError(f"{name} must be an integer ≥ {minimum}, got {value!r}")
    return value


def _prompt_labels(key: Optional[str], words: Mapping[str, tuple[str, ...]], labels: Any) -> dict[str, tuple[str, ...]]:
    """A prompt set's label → words, or the subset `labels` (a list of its label names) picks."""
    if labels is None:
        return dict(words)
    if isinstance(labels, Mapping) or not isinstance(labels, Sequence) or not all(isinstance(w, str) for w in labels):
        raise UsageError(f"with prompt {key}, labels must be a list of its label names (to pick some); "
                         f"leave out the prompt to give your own words")
    unknown = [w for w in labels if w not in words]
    if unknown:
        raise UsageError(f"labels {', '.join(map(repr, unknown))} not in prompt {key} "
                         f"(its labels: {', '.join(words)})")
    return {w: words[w] for w in labels}


def is_per_row(labels: Any) -> bool:
    """Whether `labels` is one label set per text (a list of lists, dicts or comma strings) rather
    than one label set: a list whose items are not all plain label names."""
    return (isinstance(labels, Sequence) and not isinstance(labels, str) and len(labels) > 0
            and any(not isinstance(item, str) for item in labels)
            and all(isinstance(item, (Sequence, Mapping)) or item is None for item in labels))


def build_request(labels: Optional[LabelsArg] = None, *, prompt: Optional[str] = None,
                  template: Union[str, Sequence[str], None] = None, placement: Optional[str] = None,
                  combine: Optional[str] = None, multi_label: bool = False, threshold: float = 0.5,
                  long_text: str = "truncate", aggregate: str = "max", overlap: int = DEFAULT_OVERLAP,
                  top_k: Optional[int] = None, labels_per_row: bool = False, cut_prompts: bool = False,
                  prompt_files: bool = True) -> ClassifyRequest:
    """Validate a classification call and build its request (UsageErrors, one line each).

    `labels`: names, or name → verbalization(s) (or {"words": ..., "description": ...}); with
    `prompt` (a named prompt set such as "tnews" or "tnews:news-2021"), a list picking some of
    its labels. `template`, `placement` and `combine` left as None take the prompt set's (or
    "{label}", "prefix", "mean"); given, they override it. `labels_per_row`: labels may be left
    out because every text brings its own (`ClassifyRequest.labels_for`). `long_text`: "truncate"
    (the paper's) or "chunk" (windows of `overlap` tokens overlap; `aggregate` max or mean).
    `top_k`: keep only the K best labels' scores per result. `prompt_files=False` refuses
    prompt-set paths (the HTTP server reads no files).
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
        specs: Optional[dict[str, LabelSpec]] = label_specs(_prompt_labels(variant.key, dict(variant.words), labels))
    elif labels is None:
        if not labels_per_row:
            raise UsageError("no labels given: pass labels (e.g. 体育,财经, or label → word(s)) or a prompt set name")
        specs = None
    else:
        specs = label_specs(labels)
    if not isinstance(multi_label, bool):
        raise UsageError(f"multi_label must be true or false, got {multi_label!r}")
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
    _check_choice("long_text", long_text, LONG_TEXT_MODES)
    _check_choice("aggregate", aggregate, AGGREGATES)
    _check_count("overlap", overlap, 0)
    if top_k is not None:
        _check_count("top_k", top_k, 1)
    label_set = _label_set(specs, templates, multi_label) if specs is not None else None
    return ClassifyRequest(label_set, tuple(sources), placement, how, multi_label, float(threshold),
                           variant.key if variant is not None else None, long_text, aggregate, overlap, top_k,
                           cut_prompts, tuple(variant.words.items()) if variant is not None else None)

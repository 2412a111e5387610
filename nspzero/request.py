"""The one request: a validated, frozen description of a classification call.

Every front door (Python, CLI, HTTP, Ray, the web page) states its call as one `ClassifyArgs`
(a strict pydantic model: the HTTP body, the Python keywords, what `build_request` validates) and
builds a `ClassifyRequest` from it before any model loads, so the rules and messages are the same
everywhere; an error is a `RequestError` naming its field (the server's 422 `field`):
a named prompt set gives labels, words, templates, placement and combine rule, and whatever the
caller states explicitly overrides it. Nothing else resolves prompts. The request also renders
its prompt sentences once and turns a text into its `Candidates` (the pairs to score).
"""
from __future__ import annotations

import json
import numbers
import operator
from dataclasses import dataclass, field
from contextlib import contextmanager
from typing import Annotated, Any, Iterable, Iterator, Literal, Mapping, Optional, Sequence, Union

from pydantic import BaseModel, ConfigDict, Field, ValidationError, WithJsonSchema, field_validator

from .candidates import Candidates
from .errors import DataError, UsageError, shown
from .contrast import COMBINE_RULES
from .pair import Pair
from .templates import (PLACEMENTS, LabelSpec, LabelsArg, Template, check_placement, check_unicode, has_content,
                        label_specs)

DEFAULT_TEMPLATE = "{label}"


def split_labels(value: str) -> list[str]:
    """'体育,财经' → ['体育', '财经'] (ASCII or full-width commas); blanks are kept so that
    validation can name them."""
    return [part.strip() for part in value.replace("，", ",").split(",")]


def zero_shot_prompts(candidate_labels: Any, hypothesis_template: Any) -> tuple[Any, str]:
    """Zero-shot pipeline arguments → (labels, template): a comma string of labels is split, and the
    template's `{}` marks the label as `{label}` does (the Python call and the HTTP payload alike)."""
    labels = split_labels(candidate_labels) if isinstance(candidate_labels, str) else candidate_labels
    if not isinstance(hypothesis_template, str):
        raise UsageError(f"hypothesis_template must be a string with {{}}, got {shown(hypothesis_template)}")
    return labels, hypothesis_template.replace("{}", "{label}")


def check_text(value: Any, where: str) -> str:
    """The one rule for a text, wherever it comes from (API list, file record, HTTP body): a string
    with visible content and valid Unicode. `where` names it in the message ("texts[3]", "a.jsonl:7: field 'text'")."""
    if not isinstance(value, str):
        raise UsageError(f"{where} is {type(value).__name__} {shown(value)}, not a string")
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
    normalize: bool = False   # the scores shown divided by their sum (pipeline.make_result)
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
            made = _label_set(specs, [Template.parse(t) for t in self.templates])
        except UsageError as exc:
            raise UsageError(f"{where}: {exc}") from None
        if key is not None and len(self._row_cache) < ROW_CACHE_SIZE:
            self._row_cache[key] = made
        return made

    def labels_per_text(self, values: Sequence[Any], n_texts: int) -> list[Optional[LabelSet]]:
        """Per-row labels given as one list (or dict, or comma string) per text (`labels_per_text`
        of the Python API and the server): one checked label set each, named in errors. A None
        item takes the request's labels (a per-row call has none, so the text is then refused)."""
        if len(values) != n_texts:
            raise UsageError(f"labels_per_text: one label set per text is needed, got {len(values)} label sets for "
                             f"{n_texts} texts (or give one label set for all in labels)")
        return [None if value is None else self.labels_for(value, f"labels_per_text[{i}]")
                for i, value in enumerate(values)]

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


def _label_set(specs: Mapping[str, LabelSpec], templates: Sequence[Template]) -> LabelSet:
    """Labels → their prompt sentences. One label is answered, as transformers' zero-shot pipeline answers
    it: that label, with its own P(IsNext) as its score (to decide yes/no against a threshold, multi_label)."""
    prompts = tuple(tuple(t.render(label=w) for t in templates for w in spec.words) + spec.descriptions
                    for spec in specs.values())
    return LabelSet(tuple(specs), tuple(s.words for s in specs.values()), tuple(s.descriptions for s in specs.values()),
                    prompts)


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


class RequestError(UsageError):
    """A request argument that is wrong: the one-line message, and the `field` it is about (the
    server answers 422 {"detail", "field"}; the page places the message by `field`)."""

    def __init__(self, message: str, field: Optional[str] = None) -> None:
        super().__init__(message)
        self.field = field


@contextmanager
def about(field_name: str) -> Iterator[None]:
    """Library errors raised inside (label and template rules) become RequestErrors naming `field_name`."""
    try:
        yield
    except RequestError:
        raise
    except UsageError as exc:
        raise RequestError(str(exc), field_name) from None


def _plain(value: Any, field_name: str) -> Any:
    """A Python-door value as JSON would hold it (see `ClassifyArgs.of`); anything else as given,
    for the model to refuse with its message."""
    if isinstance(value, str):
        return str(value)  # numpy's str_ as a plain str
    if isinstance(value, (set, frozenset)):
        raise RequestError(f"{field_name} is a {type(value).__name__}, which has no order; pass a list (e.g. "
                           f"sorted(...)) so that results come in a fixed order", field_name.partition("[")[0])
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, Iterable) and not isinstance(value, (bytes, bytearray)):
        return [str(v) if isinstance(v, str) else v for v in value]
    return value


FIELD_NAME_CHARS = 40  # a field name longer than this (or not a name) is shown as a cut key: ['xxx…']


def field_path(loc: Sequence[Any]) -> str:
    """("labels_per_text", 3, "pos") → "labels_per_text[3].pos" (the way messages name a field). A
    part that is not a short identifier (an unknown 30,000-character key) is shown cut, as ['…']."""
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif isinstance(part, str) and part.isidentifier() and len(part) <= FIELD_NAME_CHARS:
            path += f".{part}" if path else part
        else:
            path += f"[{shown(part)}]"
    return path


_TYPE_TAGS = {"str", "int", "float", "bool", "dict", "list", "none", "tuple"}


def _real_loc(loc: Sequence[Any]) -> tuple:
    """An error's location without pydantic's union-member tags ("str", "list[str]", "function-after[…]")."""
    return tuple(x for x in loc if x != "body" and not (isinstance(x, str) and (
        x in _TYPE_TAGS or "[" in x or x.startswith("function-"))))


def describe_errors(errors: Sequence[Mapping[str, Any]]) -> tuple[str, Optional[str]]:
    """Pydantic errors → (one line naming each field, the first field): "top_k: Input should be a
    valid integer, got True". A union's alternatives make one message; inputs are shown cut (`shown`)."""
    merged: dict[tuple, list[Mapping[str, Any]]] = {}
    for err in errors:
        merged.setdefault(_real_loc(err.get("loc", ())), []).append(err)
    parts, first = [], None
    for loc, group in list(merged.items())[:3]:
        err = group[0]
        if err.get("type") == "json_invalid":
            reason = (err.get("ctx") or {}).get("error", "")
            parts.append("the request body is not valid JSON" + (f" at character {loc[0]}" if loc else "")
                         + (f" ({reason})" if reason else ""))
            continue
        path = field_path(loc)
        named = loc and isinstance(loc[0], str) and (err.get("type") != "extra_forbidden" or (
            loc[0].isidentifier() and len(loc[0]) <= FIELD_NAME_CHARS))  # a long unknown name: said once, cut
        if first is None and named:
            first = loc[0]
        msgs = [str((e.get("ctx") or {}).get("error", e.get("msg"))) if e.get("type") == "value_error"
                else e.get("msg", "invalid value") for e in group]
        msg = msgs[0] + "".join(" or " + m.removeprefix("Input should be ") for m in msgs[1:])
        if err.get("type") == "extra_forbidden":
            msg = "unknown field (see /docs for the fields a request takes)"
        elif err.get("type") == "missing":
            msg = "missing" if path else "no JSON body; send an object such as {\"texts\": [...], \"labels\": [...]}"
        elif err.get("type") != "value_error" and "input" in err:
            msg += f", got {shown(err['input'])}"
        parts.append(msg if path and msg.startswith(path + " ") else f"{path}: {msg}" if path else
                     f"request body: {msg}")
    if len(merged) > 3:
        parts.append(f"and {len(merged) - 3} more")
    return "; ".join(parts or ["the request does not match the schema (see /docs)"]), first


_LABEL_VALUE = {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}},
                          {"type": "object", "properties": {"words": {}, "description": {}}}]}
_LABEL_SET = {"anyOf": [{"type": "array", "items": {"type": "string"}},
                        {"type": "object", "additionalProperties": _LABEL_VALUE}]}
LabelSetArg = Annotated[Any, WithJsonSchema({"anyOf": [_LABEL_SET, {"type": "null"}]})]
RowLabelsArg = Annotated[Any, WithJsonSchema({"anyOf": [{"type": "array", "items": {"anyOf": [
    _LABEL_SET, {"type": "string"}, {"type": "null"}]}}, {"type": "null"}]})]


class ClassifyArgs(BaseModel):
    """A classification call as data: the body of POST /classify, the keywords of
    `NSPClassifier.classify`, what `build_request` validates (strict: `true` is no number, and an
    unknown field is refused). `to_request()` turns it into a ClassifyRequest."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True, json_schema_extra={"examples": [
        {"texts": ["皇马客场三比一取胜", "央行宣布降准"], "labels": ["体育", "财经"], "template": "这是一则{label}新闻"},
        {"text": "东西很好", "labels": {"pos": ["很好", "不错"], "neg": "很差"}, "template": "这次买的东西{label}"},
        {"texts": ["皇马客场三比一取胜", "东西很好"], "labels_per_text": [["体育", "财经"], "好评,差评"]},
        {"text": "皇马客场三比一取胜", "prompt": "tnews"},
    ]})

    texts: Optional[list[str]] = Field(None, description="Texts to classify (or `text` for one).")
    text: Optional[str] = Field(None, description="One text to classify (instead of `texts`).")
    labels: LabelSetArg = Field(None, description="One label set for every text: label names, or label → "
                                                  "verbalization(s) (or {words, description}). With `prompt`: a list "
                                                  "picking some of its labels.")
    labels_per_text: RowLabelsArg = Field(None, description="One label set per text instead (a list, a dict, or a "
                                                            "comma string such as \"好评,差评\"; null: `labels`).")
    template: Optional[Union[str, list[str]]] = Field(
        None, description="Template(s) with {label}; several are averaged. Default: the prompt set's, else {label}.")
    placement: Optional[Literal[PLACEMENTS]] = Field(
        None, description="prefix: prompt first (the paper's default); suffix: text first. Default: the prompt "
                          "set's, else prefix.")
    multi_label: bool = Field(False, description="Return every label whose score reaches `threshold`.")
    threshold: float = Field(0.5, description="P(IsNext) threshold for `multi_label`, between 0 and 1.",
                             json_schema_extra={"minimum": 0, "maximum": 1})
    prompt: Optional[str] = Field(None, description="A named prompt set, e.g. tnews or tnews:news-2021: gives "
                                                    "labels, words, template(s) and placement.")
    combine: Optional[Literal[COMBINE_RULES]] = Field(
        None, description="How a label's several pairs combine: mean (default) or logmean; with `prompt`, the "
                          "prompt's own rule by default.")
    long_text: Literal[LONG_TEXT_MODES] = Field(
        "truncate", description="truncate: a long text is cut to max_length (the paper's); chunk: read in windows "
                                "on sentence boundaries.")
    aggregate: Literal[AGGREGATES] = Field("max", description="long_text chunk: a label's score is the max or "
                                                                 "mean over windows.")
    overlap: int = Field(DEFAULT_OVERLAP, ge=0, description="long_text chunk: tokens repeated between neighbouring "
                                                            "windows (whole sentences where they fit).")
    top_k: Optional[int] = Field(None, ge=1, description="Return only the K best labels' scores per text (the "
                                                        "decision uses every label).")
    normalize: bool = Field(False, description="Divide each text's scores by their sum (the ranking is unchanged).")

    @field_validator("placement", mode="before")
    @classmethod
    def _placement(cls, value: Any) -> Any:
        """The library's own rule and message (templates.check_placement)."""
        if value is None or not isinstance(value, str):
            return value
        try:
            return check_placement(value)
        except UsageError as exc:
            raise ValueError(str(exc)) from None

    @field_validator("threshold")
    @classmethod
    def _probability(cls, value: float) -> float:
        if not 0.0 <= value <= 1.0:  # NaN fails too
            raise ValueError(f"threshold must be a probability between 0 and 1, got {shown(value)}")
        return value

    @field_validator("labels")
    @classmethod
    def _one_label_set(cls, value: Any) -> Any:
        """One label set, stated as one: a list of names or a dict; a list of lists is refused
        (per-text label sets go in `labels_per_text`, so nothing is guessed from the shape)."""
        if value is None:
            return value
        if isinstance(value, str):
            raise ValueError(f"a single string {shown(value)}; give a list of label names (or split it at commas)")
        if not isinstance(value, (list, dict)):
            raise ValueError(f"must be a list of label names or a dict label → word(s), got {type(value).__name__}")
        if isinstance(value, list) and any(isinstance(item, (list, dict)) or item is None for item in value):
            raise ValueError("a list holds label names only; for one label set per text use labels_per_text")
        for name in value if isinstance(value, list) else ():  # a list of comma strings reads as per-text sets
            if isinstance(name, str) and any(c in name for c in ",，"):
                raise ValueError(f"label {shown(name)} holds a comma: give one name per item (for one label set "
                                 f"per text use labels_per_text)")
        return value

    @field_validator("labels_per_text")
    @classmethod
    def _label_sets(cls, value: Any) -> Any:
        if value is not None and not isinstance(value, list):
            raise ValueError(f"must be a list with one label set per text, got {type(value).__name__}")
        return value

    @classmethod
    def of(cls, **kwargs: Any) -> "ClassifyArgs":
        """The model from Python keywords, or a RequestError. Python's and numpy's ways of holding
        values are taken as the JSON ones: tuples, arrays, dict views, pandas' unique() and generators
        as lists, mappings as dicts, numpy numbers as int/float (a set is refused: it has no order)."""
        for key in ("texts", "labels", "labels_per_text", "template"):
            kwargs[key] = _plain(kwargs.get(key), key)
        if isinstance(kwargs.get("labels_per_text"), list):
            kwargs["labels_per_text"] = [_plain(v, f"labels_per_text[{i}]")
                                         for i, v in enumerate(kwargs["labels_per_text"])]
        for key in ("top_k", "overlap"):
            if isinstance(kwargs.get(key), numbers.Integral) and not isinstance(kwargs[key], (bool, int)):
                kwargs[key] = operator.index(kwargs[key])
        if isinstance(kwargs.get("threshold"), numbers.Real) and not isinstance(kwargs["threshold"], (bool, int)):
            kwargs["threshold"] = float(kwargs["threshold"])
        try:
            return cls(**kwargs)
        except ValidationError as exc:
            raise RequestError(*describe_errors(exc.errors(include_url=False))) from None

    def text_list(self) -> tuple[list[str], bool]:
        """(the texts, whether one `text` was given), each checked by `check_text`."""
        if self.texts is not None and self.text is not None:
            raise RequestError("give `texts` (a list) or `text` (one string), not both", "texts")
        if self.texts is None and self.text is None:
            raise RequestError("no texts: give `texts` (a list of strings) or `text` (one string)", "texts")
        with about("texts" if self.texts is not None else "text"):
            return check_texts(self.text if self.text is not None else self.texts)

    def label_sets(self, request: "ClassifyRequest", n_texts: int) -> Optional[list[Optional[LabelSet]]]:
        """Each text's own label set (None: the request's), or None without `labels_per_text`."""
        if self.labels_per_text is None:
            return None
        with about("labels_per_text"):
            return request.labels_per_text(self.labels_per_text, n_texts)

    def to_request(self, labels_per_row: bool = False, cut_prompts: bool = False,
                   prompt_files: bool = True) -> "ClassifyRequest":
        """The validated request (RequestErrors naming their field). `labels_per_row`: labels may be
        left out because every text (or file row) brings its own; `prompt_files=False` refuses
        prompt-set paths (the HTTP server reads no files)."""
        per_row = labels_per_row or self.labels_per_text is not None
        variant = None
        with about("prompt"):
            if self.prompt is not None:
                variant = _load_prompt(self.prompt, prompt_files)
        with about("labels"):
            if variant is not None:
                specs: Optional[dict[str, LabelSpec]] = label_specs(
                    _prompt_labels(variant.key, dict(variant.words), self.labels))
            elif self.labels is None:
                if not per_row:
                    raise UsageError("no labels given: pass labels (e.g. 体育,财经, or label → word(s)) or a prompt "
                                     "set name")
                specs = None
            else:
                specs = label_specs(self.labels)
        with about("template"):
            if self.template is None:
                sources = list(variant.templates) if variant is not None else [DEFAULT_TEMPLATE]
            else:
                sources = [self.template] if isinstance(self.template, str) else list(self.template)
                if not sources:
                    raise UsageError("no template given; pass e.g. '{label}' or '这是一则{label}新闻'")
            templates = [Template.parse(s) for s in sources]
        placement = check_placement(self.placement or (variant.placement if variant else "prefix"))
        how = self.combine or (variant.combine if variant else "mean")
        with about("labels"):
            label_set = _label_set(specs, templates) if specs is not None else None
        return ClassifyRequest(label_set, tuple(sources), placement, how, self.multi_label, float(self.threshold),
                               variant.key if variant is not None else None, self.long_text, self.aggregate,
                               self.overlap, self.top_k, self.normalize, cut_prompts,
                               tuple(variant.words.items()) if variant is not None else None)


def _load_prompt(prompt: str, prompt_files: bool):
    """A named prompt set's variant (a label prompt), or a UsageError."""
    from .prompt_sets import list_prompt_sets, load_prompt

    if not prompt.strip():
        raise UsageError(f"prompt must be the name of a prompt set, e.g. tnews or tnews:news-2021, got {shown(prompt)}")
    name = prompt.partition(":")[0]
    if not prompt_files and (name.endswith((".yaml", ".yml")) or "/" in name or "\\" in name):
        raise UsageError(f"prompt {shown(prompt)}: only named prompt sets are accepted here "
                         f"({', '.join(list_prompt_sets())}), not files")
    variant = load_prompt(prompt)
    if variant.words is None:
        raise UsageError(f"prompt {variant.key} is a sentence-pair prompt; classification needs a label prompt "
                         f"such as tnews, iflytek, csldcp or eprstmt")
    return variant


def build_request(labels: Optional[LabelsArg] = None, *, prompt: Optional[str] = None,
                  template: Union[str, Sequence[str], None] = None, placement: Optional[str] = None,
                  combine: Optional[str] = None, multi_label: bool = False, threshold: float = 0.5,
                  long_text: str = "truncate", aggregate: str = "max", overlap: int = DEFAULT_OVERLAP,
                  top_k: Optional[int] = None, labels_per_row: bool = False, cut_prompts: bool = False,
                  prompt_files: bool = True) -> ClassifyRequest:
    """Validate a classification call (through `ClassifyArgs`) and build its request (RequestErrors,
    one line each, naming the field).

    `labels`: names, or name → verbalization(s) (or {"words": ..., "description": ...}); with
    `prompt` (a named prompt set such as "tnews" or "tnews:news-2021"), a list picking some of
    its labels. `template`, `placement` and `combine` left as None take the prompt set's (or
    "{label}", "prefix", "mean"); given, they override it. `labels_per_row`: labels may be left
    out because every text brings its own (`ClassifyRequest.labels_for`). `long_text`: "truncate"
    (the paper's) or "chunk" (windows of `overlap` tokens overlap; `aggregate` max or mean).
    `top_k`: keep only the K best labels' scores per result. `prompt_files=False` refuses
    prompt-set paths (the HTTP server reads no files).
    """
    args = ClassifyArgs.of(labels=labels, prompt=prompt, template=template, placement=placement, combine=combine,
                           multi_label=multi_label, threshold=threshold, long_text=long_text, aggregate=aggregate,
                           overlap=overlap, top_k=top_k)
    return args.to_request(labels_per_row=labels_per_row, cut_prompts=cut_prompts, prompt_files=prompt_files)

"""What the routes depend on (FastAPI `Depends`): the app's classifier, batcher and limits, and a
request's size checked from its counts BEFORE anything is rendered, so an oversized body is
answered 413 at once; `prepare` then does the CPU work (prompts, tokens, windows) off the loop."""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Annotated, Optional

from fastapi import Depends, Request

from ..classifier import NSPClassifier
from ..errors import NSPZeroError
from ..http_limits import MAX_PAIRS
from ..request import ClassifyArgs, about, split_labels
from ..scorer import NSPScorer
from .batcher import Call, MicroBatcher
from .models import ZeroShotPayload, zero_shot_fields


class TooLarge(NSPZeroError):
    """A request over one of the server's limits: HTTP 413 naming the option that raises it."""

    def __init__(self, what: str, limit: str, option: str, field: Optional[str],
                 hint: str = "split the request") -> None:
        super().__init__(f"{what}; the server accepts at most {limit}: {hint}, or start the server with a larger "
                         f"{option} (create_app: {option[2:].replace('-', '_')}=)")
        self.field = field


@dataclass(frozen=True)
class Limits:
    """Per-request limits (GET /limits shows them; the page chunks uploads by them)."""

    max_texts: int = 256
    max_labels: int = 256
    max_text_chars: int = 20000
    max_pairs: int = MAX_PAIRS

    def to_dict(self) -> dict:
        return asdict(self)


def get_limits(request: Request) -> Limits:
    return request.app.state.limits


def get_classifier(request: Request) -> NSPClassifier:
    return request.app.state.classifier


def get_batcher(request: Request) -> MicroBatcher:
    return request.app.state.batcher


def _n_labels(value: Any) -> int:
    """Labels in one label set as the client sent it (a comma string counts its parts)."""
    if isinstance(value, str):
        return len(split_labels(value))
    return len(value) if isinstance(value, (list, dict)) else 0


def _n_prompts(value: Any, n_templates: int) -> int:
    """Prompt sentences a label set will render (its pairs per text, per window), counted from its
    shape without rendering: at most what the request will really score."""
    if isinstance(value, str):
        return _n_labels(value) * n_templates
    if isinstance(value, list):
        return len(value) * n_templates
    if not isinstance(value, dict):
        return 0
    total = 0
    for spec in value.values():
        if isinstance(spec, dict):
            words, descriptions = spec.get("words"), [spec.get("description"), spec.get("descriptions")]
            total += (len(words) if isinstance(words, list) else 1 if words else 0) * n_templates
            total += sum(len(d) if isinstance(d, list) else 1 for d in descriptions if d)
        else:
            total += (len(spec) if isinstance(spec, list) else 1) * n_templates
    return total


def check_sizes(args: ClassifyArgs, limits: Limits) -> ClassifyArgs:
    """The request's counts against the limits, before any rendering (TooLarge → 413)."""
    texts = args.texts if args.texts is not None else [args.text] if args.text is not None else []
    if not texts:
        args.text_list()  # no texts: its RequestError (422), before any label or prompt count
    if len(texts) > limits.max_texts:
        raise TooLarge(f"too many texts: {len(texts)}", f"{limits.max_texts} texts per request", "--max-texts",
                       "texts")
    for i, t in enumerate(texts):
        if len(t) > limits.max_text_chars:
            what = "text" if args.texts is None else f"texts[{i}]"
            raise TooLarge(f"{what} is too long: {len(t)} characters", f"{limits.max_text_chars} characters per "
                           f"text", "--max-text-chars", "texts" if args.texts is not None else "text",
                           hint="shorten it (with long_text truncate the model reads at most max_length tokens of it)")
    n_labels = _n_labels(args.labels)
    if n_labels > limits.max_labels:
        raise TooLarge(f"too many labels: {n_labels}", f"{limits.max_labels} labels per request", "--max-labels",
                       "labels")
    n_templates = len(args.template) if isinstance(args.template, list) else 1
    rows = args.labels_per_text or []
    for i, own in enumerate(rows):
        n_own = _n_labels(own)
        if n_own > limits.max_labels:
            raise TooLarge(f"too many labels in labels_per_text[{i}]: {n_own}",
                           f"{limits.max_labels} labels per text", "--max-labels", "labels_per_text")
    shared = _n_prompts(args.labels, n_templates)
    row_prompts = [_n_prompts(own, n_templates) for own in rows]
    for what, n, field in [("templates", n_templates, "template"), ("prompts: labels × templates", shared, "labels")] + [
            (f"prompts in labels_per_text[{i}]", n, "labels_per_text") for i, n in enumerate(row_prompts)]:
        if n > limits.max_pairs:  # each prompt is at least one pair: bounded whatever the texts
            raise TooLarge(f"too many {what}: {n}", f"{limits.max_pairs} pairs per request", "--max-pairs", field)
    at_least = sum(row_prompts[i] if i < len(rows) and rows[i] is not None else shared for i in range(len(texts)))
    if at_least > limits.max_pairs:
        raise TooLarge(f"too many pairs to score: {len(texts)} texts × their prompts = at least {at_least}",
                       f"{limits.max_pairs} pairs per request", "--max-pairs", "texts")
    return args


def classify_args(args: ClassifyArgs, limits: Annotated[Limits, Depends(get_limits)]) -> ClassifyArgs:
    """The body of POST /classify, within the limits."""
    return check_sizes(args, limits)


def zero_shot_args(payload: ZeroShotPayload, limits: Annotated[Limits, Depends(get_limits)]) -> ClassifyArgs:
    """A Hugging Face zero-shot payload as the same request, within the limits."""
    with zero_shot_fields():
        return check_sizes(payload.to_args(), limits)


def prepare(scorer: NSPScorer, args: ClassifyArgs, limits: Limits) -> Call:
    """The CPU work of a request, run off the event loop: build the request (prompt sets resolved,
    prompts rendered), check the texts, cut windows, count the exact pairs (TooLarge → 413)."""
    items, _ = args.text_list()  # the texts first: a request without any is refused before rendering
    request = args.to_request(prompt_files=False)
    label_sets = args.label_sets(request, len(items))
    if len(request.labels) > limits.max_labels:  # a prompt set's labels, known only now
        raise TooLarge(f"too many labels: {len(request.labels)}", f"{limits.max_labels} labels per request",
                       "--max-labels", "labels")
    with about("labels_per_text" if args.labels_per_text is not None else "texts"):  # a text left without labels
        call = Call.of(scorer, request, items, label_sets)
    if call.n_pairs > limits.max_pairs:
        raise TooLarge(f"too many pairs to score: {len(items)} texts × their prompts"
                       f"{' and windows' if request.long_text == 'chunk' else ''} = {call.n_pairs}",
                       f"{limits.max_pairs} pairs per request", "--max-pairs", "texts")
    return call

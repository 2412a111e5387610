"""The server's own models: responses, and the Hugging Face Inference API zero-shot payload.

The classify body is the library's `ClassifyArgs` itself (nspzero.request), not a copy of it.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator, Optional, Union

from pydantic import BaseModel, ConfigDict, Field

from ..request import ClassifyArgs, zero_shot_prompts


class ClassifyResult(BaseModel):
    text: str
    label: Union[str, list[str], None] = Field(description="Best label; a list (best first) with multi_label.")
    scores: dict[str, float] = Field(description="Label → P(IsNext) of the label's prompts, highest first.")


class ClassifyResponse(BaseModel):
    results: list[ClassifyResult]


class HealthResponse(BaseModel):
    status: str
    model: str
    random_weights: bool = Field(False, description="The model is a `nspzero tiny-model` folder: its scores are "
                                                    "meaningless (the page says so above every answer).")
    tuned_labels: Optional[list[str]] = Field(None, description="A tuned folder's (`nspzero tune`) label names: a "
                                              "request without labels and templates uses the tuned ones.")


class ErrorResponse(BaseModel):
    detail: str = Field(description="What was wrong and what to do, in one line.")
    field: Optional[str] = Field(None, description="The request field it is about (the page shows it there).")


class ZeroShotParameters(BaseModel):
    """`parameters` of a Hugging Face Inference API zero-shot request."""

    model_config = ConfigDict(strict=True, extra="forbid")

    candidate_labels: Union[str, list[str]] = Field(description="Label names (a list or a comma string).")
    hypothesis_template: str = Field("{}", description="The prompt, `{}` standing for the label (placed before "
                                                       "the text, as NSP-BERT's prefix prompt).")
    multi_label: bool = Field(False, description="Judge every label on its own (threshold 0.5).")
    normalize: bool = Field(False, description="Divide the scores by their sum (they are P(IsNext) per label, "
                                               "not a softmax over the labels).")


class ZeroShotPayload(BaseModel):
    """A Hugging Face Inference API zero-shot request: `{"inputs": ..., "parameters": {...}}`."""

    model_config = ConfigDict(strict=True, extra="forbid", json_schema_extra={"examples": [
        {"inputs": "皇马客场三比一取胜", "parameters": {"candidate_labels": ["体育", "财经"],
                                                   "hypothesis_template": "这是一则{}新闻"}}]})

    inputs: Union[str, list[str]] = Field(description="One text, or a list of texts.")
    parameters: ZeroShotParameters
    options: Optional[dict[str, Any]] = Field(None, description="Accepted and ignored (use_cache, wait_for_model).")

    def to_args(self) -> ClassifyArgs:
        """The same call as `NSPClassifier.__call__` makes: labels, the template with {label}, prefix."""
        p = self.parameters
        labels, template = zero_shot_prompts(p.candidate_labels, p.hypothesis_template)
        single = isinstance(self.inputs, str)
        return ClassifyArgs.of(text=self.inputs if single else None, texts=None if single else self.inputs,
                               labels=labels, template=template,
                               multi_label=p.multi_label, normalize=p.normalize)


# a field of the request a zero-shot payload became → the payload's own name for it (in error messages)
ZERO_SHOT_FIELDS = {"labels": "parameters.candidate_labels", "template": "parameters.hypothesis_template",
                    "text": "inputs", "texts": "inputs"}


@contextmanager
def zero_shot_fields() -> Iterator[None]:
    """Errors raised inside name the zero-shot payload's fields, not the request's."""
    try:
        yield
    except Exception as exc:
        field = getattr(exc, "field", None)
        if field in ZERO_SHOT_FIELDS:
            exc.field = ZERO_SHOT_FIELDS[field]
        raise


class ZeroShotAnswer(BaseModel):
    sequence: str
    labels: list[str] = Field(description="Labels, best first.")
    scores: list[float] = Field(description="Their scores, in the same order.")

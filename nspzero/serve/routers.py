"""The API's routes: GET /health, POST /classify (the library's request as JSON) and POST / (the
Hugging Face Inference API zero-shot payload). Each handler only awaits: the request's CPU work
runs in the thread pool (`prepare`), its scoring on the batcher's scoring thread."""
from __future__ import annotations

from typing import Annotated, Union

from fastapi import APIRouter, Depends
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from ..classifier import ClassificationResult, NSPClassifier
from ..request import ClassifyArgs
from .batcher import MicroBatcher, ScoringFailed
from .dependencies import Limits, classify_args, get_batcher, get_classifier, get_limits, prepare, zero_shot_args
from .models import ClassifyResponse, ErrorResponse, HealthResponse, ZeroShotAnswer, zero_shot_fields

router = APIRouter()

ERRORS = {413: {"model": ErrorResponse, "description": "Too many texts, labels or pairs, or a text too long"},
          422: {"model": ErrorResponse, "description": "Invalid request (one line in `detail`, its `field`)"},
          500: {"model": ErrorResponse, "description": "Scoring failed for this request's batch"}}


@router.get("/health", response_model=HealthResponse)
async def health(classifier: Annotated[NSPClassifier, Depends(get_classifier)]) -> dict:
    tuned = getattr(classifier, "defaults", None) or {}
    return {"status": "ok", "model": classifier.scorer.name,
            "random_weights": bool(getattr(classifier.scorer, "random_weights", False)),
            "tuned_labels": list(tuned["labels"]) if tuned.get("labels") else None}


async def _results(args: ClassifyArgs, classifier: NSPClassifier, batcher: MicroBatcher,
                   limits: Limits) -> Union[list[ClassificationResult], JSONResponse]:
    """The request prepared off the loop, queued, scored: the results, or the failure as JSON."""
    call = await run_in_threadpool(prepare, classifier.scorer, args, limits)
    try:
        return await batcher.submit(call)
    except ScoringFailed as exc:
        return JSONResponse({"detail": str(exc), "field": None}, status_code=exc.status)


@router.post("/classify", response_model=ClassifyResponse, responses=ERRORS)
async def classify(args: Annotated[ClassifyArgs, Depends(classify_args)],
                   classifier: Annotated[NSPClassifier, Depends(get_classifier)],
                   batcher: Annotated[MicroBatcher, Depends(get_batcher)],
                   limits: Annotated[Limits, Depends(get_limits)]):
    """Classify `texts` (or one `text`) among `labels` (or `labels_per_text`); the same results as
    `NSPClassifier.classify` with the same arguments (always a list, also for a single `text`); a tuned
    model's own labels and templates fill what the body leaves out."""
    results = await _results(classifier.fill_args(args), classifier, batcher, limits)
    if isinstance(results, JSONResponse):
        return results
    return JSONResponse({"results": [r.to_dict() for r in results]})


@router.post("/", response_model=Union[ZeroShotAnswer, list[ZeroShotAnswer]], responses=ERRORS,
             summary="Hugging Face Inference API zero-shot classification")
async def zero_shot(args: Annotated[ClassifyArgs, Depends(zero_shot_args)],
                    classifier: Annotated[NSPClassifier, Depends(get_classifier)],
                    batcher: Annotated[MicroBatcher, Depends(get_batcher)],
                    limits: Annotated[Limits, Depends(get_limits)]):
    """`{"inputs": ..., "parameters": {"candidate_labels", "hypothesis_template", "multi_label"}}` →
    `{"sequence", "labels", "scores"}` (a list of them for a list of inputs), labels best first: what
    a client of a hosted zero-shot endpoint expects, and what `NSPClassifier.__call__` returns."""
    with zero_shot_fields():
        results = await _results(args, classifier, batcher, limits)
    if isinstance(results, JSONResponse):
        return results
    answers = [r.to_zero_shot() for r in results]
    return JSONResponse(answers[0] if args.text is not None else answers)

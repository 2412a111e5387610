"""The server's micro-batcher: it only decides WHEN the pipeline's `forward` runs and on which texts.

Requests are prepared off the event loop (`Call.of`: the pipeline's preprocess) and queued. One
worker task takes the requests that arrive within `window_ms` of each other (up to
`max_batch_pairs` pairs; a bigger request is cut by the pipeline's one chunker into pieces of whole
texts that take turns with the others) and runs ONE `pipeline.forward` over all their candidates on
a scoring thread, so length-sorting and de-duplication span requests and the event loop stays
free; `pipeline.postprocess` then gives each request its results. Scores are batch-invariant, so a
request gets the numbers (within 1e-5) of an in-process `classify` call.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
from collections import deque
from dataclasses import dataclass, field
from typing import Optional

from ..candidates import Candidates, split_by
from ..classifier import ClassificationResult, NSPClassifier
from ..errors import NSPZeroError, UsageError
from ..pipeline import chunked, forward, postprocess, preprocess
from ..request import ClassifyRequest, LabelSet
from ..scorer import NSPScorer

log = logging.getLogger("nspzero")


class ScoringFailed(Exception):
    """Scoring a request's texts raised: that request gets this message, with 422 when the request
    itself was at fault (e.g. a prompt too long for max_length), else 500."""

    def __init__(self, message: str, status: int = 500) -> None:
        super().__init__(message)
        self.status = status


def _failure(exc: BaseException) -> ScoringFailed:
    """A scoring error as the one-line message its request gets (library errors keep their text)."""
    if isinstance(exc, UsageError):
        return ScoringFailed(str(exc), 422)
    if isinstance(exc, NSPZeroError):
        return ScoringFailed(f"scoring failed: {exc}")
    return _internal("scoring failed", exc)


INTERNAL = "an internal error (the server log has the details); the server keeps serving"


def _internal(what: str, exc: BaseException) -> ScoringFailed:
    """An unexpected error: its traceback to the log, a generic line to the client (no internals)."""
    log.error("%s", what, exc_info=exc)
    return ScoringFailed(f"{what}: {INTERNAL}")


@dataclass
class Call:
    """One request's work: the texts, their own label sets (None: the request's) and their
    candidates (windows included), built and checked before queueing."""

    request: ClassifyRequest
    texts: list[str]
    label_sets: list[Optional[LabelSet]]
    sets: list[Candidates]

    @classmethod
    def of(cls, scorer: NSPScorer, request: ClassifyRequest, texts: list[str],
           label_sets: Optional[list[Optional[LabelSet]]] = None) -> "Call":
        label_sets = label_sets if label_sets is not None else [None] * len(texts)
        return cls(request, texts, label_sets, preprocess(scorer, request, texts, label_sets))

    @property
    def n_pairs(self) -> int:
        return sum(len(s.pairs) for s in self.sets)

    def pieces(self, max_pairs: int) -> list["Call"]:
        """This call cut into runs of whole texts of at most `max_pairs` pairs (at least one text each),
        so that a big request is scored piece by piece, taking turns with the others."""
        out: list[Call] = []
        start = 0
        for run in chunked(self.sets, lambda s: len(s.pairs), max_pairs):
            out.append(self._slice(start, start + len(run)))
            start += len(run)
        return out

    def _slice(self, start: int, end: int) -> "Call":
        return Call(self.request, self.texts[start:end], self.label_sets[start:end], self.sets[start:end])


@dataclass
class _Job:
    """One request in the queue: its pieces, how many are taken and scored, their results so far."""

    pieces: list[Call]
    future: asyncio.Future
    taken: int = 0
    scored: int = 0
    results: list = field(default_factory=list)

    @property
    def pending_pairs(self) -> int:
        return sum(p.n_pairs for p in self.pieces[self.taken:])


class MicroBatcher:
    """Queue of prepared calls, scored together by one worker task on one scoring thread."""

    def __init__(self, classifier: NSPClassifier, window_ms: float, max_batch_pairs: int) -> None:
        self.classifier = classifier
        self.window = window_ms / 1000.0
        self.max_batch_pairs = max_batch_pairs
        self.pending: deque[_Job] = deque()
        self.executor: Optional[concurrent.futures.ThreadPoolExecutor] = None
        self._task: Optional[asyncio.Task] = None
        self._wakeup: Optional[asyncio.Event] = None
        self.batches = 0  # batches scored so far (for tests and logs)
        # a scorer whose scores move with their batch-mates (torch's int8) scores each request's pieces
        # alone, so that an answer never depends on what other clients send at the same time
        self.shared = getattr(classifier.scorer, "batch_invariant", True)

    def start(self) -> None:
        """Start the worker on the running loop (again, should it have stopped)."""
        if self._task is not None and not self._task.done():
            return
        if self.executor is None:
            self.executor = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="nspzero-score")
        self._wakeup = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._run(), name="nspzero-batcher")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        while self.pending:
            job = self.pending.popleft()
            if not job.future.done():
                job.future.set_exception(ScoringFailed("the server is shutting down"))
        if self.executor is not None:
            self.executor.shutdown(wait=False, cancel_futures=True)
            self.executor = None

    async def submit(self, call: Call) -> list[ClassificationResult]:
        """Queue one call; resolves to its list of ClassificationResult."""
        self.start()
        job = _Job(call.pieces(self.max_batch_pairs), asyncio.get_running_loop().create_future())
        self.pending.append(job)
        self._wakeup.set()
        return await job.future

    def _take(self) -> list[tuple[_Job, Call]]:
        """The next batch: the next piece of each waiting request in turn while their pairs fit (always
        at least one). A request with more pieces goes to the back of the queue, so a small request
        that arrives while a big one is being scored waits for one piece, not for the whole request."""
        taken: list[tuple[_Job, Call]] = []
        n = 0
        while self.pending:
            job = self.pending[0]
            if job.future.done():  # the client went away, or an earlier piece failed
                self.pending.popleft()
                continue
            piece = job.pieces[job.taken]
            if taken and (n + piece.n_pairs > self.max_batch_pairs or not self.shared):
                break
            self.pending.popleft()
            taken.append((job, piece))
            job.taken += 1
            n += piece.n_pairs
            if job.taken < len(job.pieces):
                self.pending.append(job)
        return taken

    def _pending_pairs(self) -> int:
        return sum(j.pending_pairs for j in self.pending)

    async def _run(self) -> None:
        while True:
            while not self.pending:
                self._wakeup.clear()
                await self._wakeup.wait()
            if self.window > 0 and self._pending_pairs() < self.max_batch_pairs:
                await asyncio.sleep(self.window)  # let concurrent requests join this batch
            taken = self._take()
            if taken:
                await self._run_batch(taken)

    async def _score_off_loop(self, pieces: list[Call]) -> list:
        return await asyncio.get_running_loop().run_in_executor(self.executor, self._score, pieces)

    async def _run_batch(self, taken: list[tuple[_Job, Call]]) -> None:
        """Score one batch and hand each piece's results to its request. When the batch fails, its
        pieces are scored again one by one, so that only the piece that fails fails its request."""
        pieces = [piece for _, piece in taken]
        try:
            try:
                outcomes = await self._score_off_loop(pieces)
            except Exception:  # noqa: BLE001 - find the culprit: every piece alone
                if len(pieces) == 1:
                    raise
                outcomes = []
                for piece in pieces:
                    try:
                        outcomes.extend(await self._score_off_loop([piece]))
                    except Exception as exc:  # noqa: BLE001
                        outcomes.append(_failure(exc))
        except asyncio.CancelledError:
            for job, _ in taken:
                if not job.future.done():
                    job.future.set_exception(ScoringFailed("the server is shutting down"))
            raise
        except Exception as exc:  # noqa: BLE001 - a failed batch must never stop the worker
            outcomes = [_failure(exc)]
        self.batches += 1
        for (job, _), outcome in zip(taken, outcomes):
            if job.future.done():  # cancelled (the client went away) or an earlier piece failed
                continue
            if isinstance(outcome, BaseException):
                job.future.set_exception(outcome)
                continue
            job.results.extend(outcome)
            job.scored += 1
            if job.scored == len(job.pieces):
                job.future.set_result(job.results)

    def _score(self, calls: list[Call]) -> list:
        """On the scoring thread: all pairs of all calls in one scoring call, split back per call."""
        rows = forward(self.classifier.scorer, [s for call in calls for s in call.sets], progress=False)
        out: list = []
        for call, call_rows in zip(calls, split_by(rows, [len(call.texts) for call in calls])):
            try:
                out.append(postprocess(call.request, call.texts, call_rows, call.label_sets))
            except Exception as exc:  # noqa: BLE001 - fail this request only
                out.append(_internal("building the results failed", exc))
        return out

"""HTTP serving (`nspzero serve`, the optional 'serve' extra): a thin FastAPI layer over NSPClassifier.

- `GET /health` → `{"status": "ok", "model": <model name>}`.
- `POST /classify` → `{"results": [{"text", "label", "scores"}, ...]}`: the results of
  `NSPClassifier.classify` for the same arguments (always a list, also for a single `text`).

Requests are validated by the library's own checks (their one-line messages come back as 422),
then queued. One background worker takes the requests that arrive within `window_ms` of each
other (up to `max_batch_pairs` pairs), scores all their pairs in ONE `NSPScorer.score` call on a
scoring thread — so length-sorting and de-duplication span requests and the event loop stays
free — and splits the scores back per request. Scores are batch-invariant, so a request gets the
same numbers (within 1e-5) as an in-process `classify` call.

This module knows nothing of the CLI; `nspzero/cli_serve.py` adds the `serve` command.
"""
import asyncio
import concurrent.futures
import contextlib
import ipaddress
import logging
from collections import deque
from dataclasses import dataclass, field
from typing import Annotated, Any, Optional, Union

from .candidates import Candidates, score_candidates, split_by
from .classifier import ClassificationResult, NSPClassifier
from .extras import install_hint
from .pipeline import build_candidates, make_result
from .errors import NSPZeroError, UsageError
from .http_limits import (BODY_TIMEOUT_S, HEADER_TIMEOUT_S, MAX_CONNECTIONS, MAX_PAIRS, BodyTimeoutMiddleware,
                          raise_file_limit, timed_protocol)
from .request import DEFAULT_OVERLAP, ClassifyRequest, LabelSet, build_request, check_texts, is_per_row
from .scorer import NSPScorer

log = logging.getLogger("nspzero")

EXTRA_MISSING = f"nspzero serve needs the 'serve' extra: {install_hint('serve')}"

try:  # the 'serve' extra; without it, importing this module still works and run_server says what to install
    import fastapi
    from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema
except ImportError:  # pragma: no cover - exercised only without the extra
    fastapi = None


def _require_extra() -> None:
    try:
        import fastapi  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError:
        raise UsageError(EXTRA_MISSING) from None


if fastapi is not None:
    _LABEL_VALUE = {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}},
                              {"type": "object", "properties": {"words": {}, "description": {}}}]}

    class ClassifyBody(BaseModel):
        """Body of POST /classify: the arguments of `NSPClassifier.classify`, as JSON."""

        model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
            {"texts": ["皇马客场三比一取胜", "央行宣布降准"], "labels": ["体育", "财经"], "template": "这是一则{label}新闻"},
            {"text": "东西很好", "labels": {"pos": ["很好", "不错"], "neg": "很差"}, "template": "这次买的东西{label}"},
            {"text": "皇马客场三比一取胜", "prompt": "tnews"},
        ]})

        texts: Optional[list[str]] = Field(None, description="Texts to classify (or `text` for one).")
        text: Optional[str] = Field(None, description="One text to classify (instead of `texts`).")
        # checked by nspzero.templates.label_words (its messages), shown in the schema as list or dict
        labels: Annotated[Any, WithJsonSchema({"anyOf": [
            {"type": "array", "items": {"type": "string"}},
            {"type": "object", "additionalProperties": _LABEL_VALUE},
            {"type": "array", "items": {"anyOf": [{"type": "array", "items": {"type": "string"}},
                                                  {"type": "object", "additionalProperties": _LABEL_VALUE},
                                                  {"type": "string"}]}},
            {"type": "null"}]})] = Field(
            None, description="Label names, or label → verbalization(s) (or {words, description}); or one such "
                              "list/dict (or comma string) per text in `texts`. With `prompt`: a list picking some "
                              "of its labels.")
        template: Optional[Union[str, list[str]]] = Field(
            None, description="Template(s) with {label}; several are averaged. Default: the prompt set's, else {label}.")
        placement: Optional[str] = Field(None, description="prefix: prompt first (the paper's default); suffix: text "
                                                           "first. Default: the prompt set's, else prefix.")
        multi_label: bool = Field(False, description="Return every label whose score reaches `threshold`.")
        threshold: float = Field(0.5, description="P(IsNext) threshold for `multi_label`.")
        prompt: Optional[str] = Field(None, description="A named prompt set, e.g. tnews or tnews:news-2021: gives "
                                                        "labels, words, template(s) and placement.")
        combine: Optional[str] = Field(None, description="How a label's several pairs combine: mean (default) or "
                                                         "logmean; with `prompt`, the prompt's own rule by default.")
        long_text: str = Field("truncate", description="truncate: a long text is cut to max_length (the paper's); "
                                                       "chunk: read in windows on sentence boundaries.")
        aggregate: str = Field("max", description="long_text chunk: a label's score is the max or mean over windows.")
        overlap: int = Field(DEFAULT_OVERLAP, description="long_text chunk: tokens repeated between neighbouring "
                                                          "windows (whole sentences where they fit).")
        top_k: Optional[int] = Field(None, description="Return only the K best labels' scores per text (the "
                                                       "decision uses every label).")

    class ClassifyResult(BaseModel):
        text: str
        label: Union[str, list[str], None] = Field(description="Best label; a list (best first) with multi_label.")
        scores: dict[str, float] = Field(description="Label → mean P(IsNext), highest first.")

    class ClassifyResponse(BaseModel):
        results: list[ClassifyResult]

    class HealthResponse(BaseModel):
        status: str
        model: str


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
    log.error("scoring failed: %s: %s", type(exc).__name__, exc)
    return ScoringFailed(f"scoring failed: {type(exc).__name__}: {exc} (the server keeps serving)")


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
        return cls(request, texts, label_sets, build_candidates(scorer, request, texts, label_sets))

    @property
    def n_pairs(self) -> int:
        return sum(len(s.pairs) for s in self.sets)

    def pieces(self, max_pairs: int) -> list["Call"]:
        """This call cut into runs of whole texts of at most `max_pairs` pairs (at least one text each),
        so that a big request is scored piece by piece, taking turns with the others."""
        out: list[Call] = []
        start, n = 0, 0
        for i, s in enumerate(self.sets):
            if i > start and n + len(s.pairs) > max_pairs:
                out.append(self._slice(start, i))
                start, n = i, 0
            n += len(s.pairs)
        out.append(self._slice(start, len(self.sets)))
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
            if taken and n + piece.n_pairs > self.max_batch_pairs:
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
        rows = score_candidates(lambda pairs: self.classifier.scorer.score(pairs, progress=False),
                                [s for call in calls for s in call.sets])
        out: list = []
        for call, call_rows in zip(calls, split_by(rows, [len(call.texts) for call in calls])):
            try:
                out.append([make_result(call.request, t, row, own)
                            for t, row, own in zip(call.texts, call_rows, call.label_sets)])
            except Exception as exc:  # noqa: BLE001 - fail this request only
                out.append(ScoringFailed(f"building the results failed: {type(exc).__name__}: {exc}"))
        return out


def _check_limits(**limits: Any) -> None:
    for name, value in limits.items():
        minimum = 0 if name == "window_ms" else 1
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < minimum:
            option = "" if name == "window_ms" else f" (--{name.replace('_', '-')})"
            raise UsageError(f"{name}{option} must be a number ≥ {minimum}, got {value!r}")


def _too_large(what: str, limit: str, option: str, hint: str = "split the request") -> "fastapi.HTTPException":
    return fastapi.HTTPException(413, f"{what}; the server accepts at most {limit}: {hint}, or start the server with "
                                      f"a larger {option} (create_app: {option[2:].replace('-', '_')}=)")


def _validation_detail(errors: list) -> str:
    """Pydantic/JSON errors → one line, e.g. "texts[0]: Input should be a valid string"."""
    parts = []
    for err in errors:
        loc = [str(x) for x in err.get("loc", ()) if x != "body"]
        if err.get("type") == "json_invalid":
            where = f" at character {loc[0]}" if loc else ""
            reason = (err.get("ctx") or {}).get("error", "")
            parts.append(f"the request body is not valid JSON{where}" + (f" ({reason})" if reason else ""))
            continue
        path = ""
        for x in loc:
            path += f"[{x}]" if x.isdigit() else (f".{x}" if path else x)
        msg = err.get("msg", "invalid value")
        if not path and err.get("type") == "missing":
            msg = "no JSON body; send an object such as {\"texts\": [...], \"labels\": [...]}"
        parts.append(f"{path}: {msg}" if path else f"request body: {msg}")
    return "invalid request: " + "; ".join(parts or ["the body does not match the schema (see /docs)"])


def create_app(classifier: NSPClassifier, *, max_texts: int = 256, max_labels: int = 256, max_text_chars: int = 20000,
               max_pairs: int = MAX_PAIRS, window_ms: float = 5, max_batch_pairs: int = 2048,
               results_dir: Optional[str] = None, body_timeout: float = BODY_TIMEOUT_S) -> "fastapi.FastAPI":
    """A FastAPI app serving `classifier` (see the module docstring); run it with any ASGI server."""
    _require_extra()
    from fastapi.encoders import jsonable_encoder
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse

    _check_limits(max_texts=max_texts, max_labels=max_labels, max_text_chars=max_text_chars, max_pairs=max_pairs,
                  window_ms=window_ms, max_batch_pairs=max_batch_pairs)
    batcher = MicroBatcher(classifier, window_ms, max_batch_pairs)

    @contextlib.asynccontextmanager
    async def lifespan(_app):
        batcher.start()
        try:
            yield
        finally:
            await batcher.stop()

    from . import __version__

    app = fastapi.FastAPI(title="nspzero", version=__version__, lifespan=lifespan, docs_url=None, redoc_url=None,
                          description="Zero-shot text classification with BERT's next-sentence-prediction head.")
    app.state.classifier = classifier
    app.state.batcher = batcher
    app.add_middleware(BodyTimeoutMiddleware, timeout=body_timeout)

    @app.exception_handler(NSPZeroError)
    async def _library_error(_request, exc: NSPZeroError):
        return JSONResponse({"detail": str(exc)}, status_code=422)

    @app.exception_handler(Exception)
    async def _unexpected(_request, exc: Exception):  # never a plain-text 500
        log.error("request failed: %s: %s", type(exc).__name__, exc)
        return JSONResponse({"detail": f"internal error: {type(exc).__name__}: {exc}"}, status_code=500)

    @app.exception_handler(RequestValidationError)
    async def _invalid_request(_request, exc: RequestValidationError):
        errors = exc.errors()
        errors = [{k: v for k, v in e.items() if k != "input"} for e in errors]  # don't echo big inputs back
        return JSONResponse({"detail": _validation_detail(errors), "errors": jsonable_encoder(errors)},
                            status_code=422)

    @app.get("/health", response_model=HealthResponse)
    async def health():
        return {"status": "ok", "model": classifier.scorer.name}

    @app.post("/classify", response_model=ClassifyResponse,
              responses={413: {"description": "Too many texts or labels, or a text too long"},
                         422: {"description": "Invalid request (the library's one-line message in `detail`)"},
                         500: {"description": "Scoring failed for this request's batch"}})
    async def classify(req: ClassifyBody):
        """Classify `texts` (or one `text`) among `labels`; the same results as `NSPClassifier.classify`."""
        if req.texts is not None and req.text is not None:
            raise UsageError("give `texts` (a list) or `text` (one string), not both")
        if req.texts is None and req.text is None:
            raise UsageError("no texts: give `texts` (a list of strings) or `text` (one string)")
        texts: Union[str, list[str]] = req.text if req.text is not None else req.texts
        if req.texts is not None and len(req.texts) > max_texts:
            raise _too_large(f"too many texts: {len(req.texts)}", f"{max_texts} texts per request", "--max-texts")
        for i, t in enumerate([texts] if isinstance(texts, str) else texts):
            if len(t) > max_text_chars:
                what = "text" if isinstance(texts, str) else f"texts[{i}]"
                raise _too_large(f"{what} is too long: {len(t)} characters", f"{max_text_chars} characters per text",
                                 "--max-text-chars", hint="shorten it (with long_text truncate the model reads at most "
                                                           "max_length tokens of it)")
        items, _ = check_texts(texts)
        per_row = is_per_row(req.labels)
        label_sets = None
        if per_row:
            for i, own in enumerate(req.labels):
                if isinstance(own, (list, dict)) and len(own) > max_labels:
                    raise _too_large(f"too many labels in labels[{i}]: {len(own)}", f"{max_labels} labels per text",
                                     "--max-labels")
        elif isinstance(req.labels, (list, dict)) and len(req.labels) > max_labels:
            raise _too_large(f"too many labels: {len(req.labels)}", f"{max_labels} labels per request", "--max-labels")
        request = build_request(None if per_row else req.labels, prompt=req.prompt, template=req.template,
                                placement=req.placement, combine=req.combine, multi_label=req.multi_label,
                                threshold=req.threshold, long_text=req.long_text, aggregate=req.aggregate,
                                overlap=req.overlap, top_k=req.top_k, labels_per_row=per_row, prompt_files=False)
        if per_row:
            label_sets = request.labels_per_text(req.labels, len(items))
        sizes = [len(ls.names) for ls in label_sets if ls is not None] if label_sets else [len(request.labels)]
        if max(sizes, default=0) > max_labels:
            raise _too_large(f"too many labels: {max(sizes)}", f"{max_labels} labels per request", "--max-labels")
        call = Call.of(classifier.scorer, request, items, label_sets)
        if call.n_pairs > max_pairs:
            raise _too_large(f"too many pairs to score: {len(items)} texts × their prompts"
                             f"{' and windows' if request.long_text == 'chunk' else ''} = {call.n_pairs}",
                             f"{max_pairs} pairs per request", "--max-pairs")
        try:
            results = await batcher.submit(call)
        except ScoringFailed as exc:
            return JSONResponse({"detail": str(exc)}, status_code=exc.status)
        return JSONResponse({"results": [r.to_dict() for r in results]})

    from .web import mount_web  # the page at /, GET /prompts and /limits, /docs and /redoc with local assets

    mount_web(app, max_texts=max_texts, max_labels=max_labels, max_text_chars=max_text_chars, max_pairs=max_pairs,
              results_dir=results_dir)
    return app


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _check_bindable(host: str, port: int) -> None:
    """Fail in one line before the model loads (not in uvicorn's log dump) when the address cannot
    be bound: a port in use, an unknown host."""
    import socket

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise UsageError(f"--host {host!r} is not an address of this machine ({exc.strerror}); use 127.0.0.1, "
                         f"0.0.0.0 or a local IP") from None
    family, _, _, _, address = infos[0]
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(address)
        except OSError as exc:
            raise NSPZeroError(f"cannot serve on {host}:{port}: {exc.strerror or exc}; pick another --port "
                               f"(or stop what is using it)") from None


def run_server(model: str, host: str = "127.0.0.1", port: int = 8000, dtype: str = "float32",
               device: Optional[str] = None, max_length: Optional[int] = None, batch_size: int = 32, max_texts: int = 256,
               max_labels: int = 256, max_text_chars: int = 20000, max_pairs: int = MAX_PAIRS,
               compile: Union[bool, str] = False, results_dir: Optional[str] = None,
               header_timeout: float = HEADER_TIMEOUT_S, body_timeout: float = BODY_TIMEOUT_S,
               max_connections: int = MAX_CONNECTIONS) -> None:
    """Load `model` and serve it with uvicorn until interrupted (127.0.0.1 only unless `host` says otherwise).
    Slow clients are bounded by `header_timeout`, `body_timeout` and `max_connections` (nspzero.http_limits)."""
    _require_extra()
    import uvicorn

    _check_limits(max_texts=max_texts, max_labels=max_labels, max_text_chars=max_text_chars, max_pairs=max_pairs,
                  header_timeout=header_timeout, body_timeout=body_timeout, max_connections=max_connections)
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        raise UsageError(f"port must be an integer between 0 and 65535, got {port!r}")
    _check_bindable(host, port)
    classifier = NSPClassifier.from_pretrained(model, device=device, max_length=max_length, batch_size=batch_size,
                                               dtype=dtype, compile=compile)
    app = create_app(classifier, max_texts=max_texts, max_labels=max_labels, max_text_chars=max_text_chars,
                     max_pairs=max_pairs, results_dir=results_dir, body_timeout=body_timeout)
    if not _is_loopback(host):
        log.warning("serving on %s: the server has no authentication; anyone who can reach this address can use it",
                    host)
    raise_file_limit()
    uvicorn.run(app, host=host, port=port, log_level="info", http=timed_protocol(header_timeout),
                limit_concurrency=max_connections, timeout_keep_alive=5)

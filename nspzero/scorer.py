"""NSPScorer: sentence pairs in, P(IsNext) out — the one place a model runs.

It knows nothing of labels or tasks. It tokenizes each distinct string once (only the part that
can survive truncation, see tokens.py), refuses texts with no tokens and prompts that do not fit,
truncates pairs the way the paper does, sorts all pairs of a call by length into padded batches,
and returns scores in input order — or a ModelError when the model gives non-finite scores.
"""
from __future__ import annotations

import contextlib
import copy
import logging
import os
import time
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator, Optional, Sequence, Union

import numpy as np
import torch

from . import cpu, unpadded
from .backends import BACKENDS, onednn_available, set_active, use_onednn
from .errors import ModelError, UsageError, first_line, shown
from .formats.heads import IN_ORDER_INDEX  # "B follows A" / "in order": the same logit for every head
from .loading import load_nsp_model
from .pair import Pair  # re-exported: `from nspzero.scorer import Pair` keeps working
from .tiny_model import has_random_weights, random_weights_note
from .tokens import token_ids

DTYPES = ("float32", "bfloat16", "float16", "int8", "int8-dynamic")  # int8-dynamic: the previous int8
PROGRESS_MIN_PAIRS = 512  # calls smaller than this stay silent
DEFAULT_MAX_LENGTH = 256  # max_length=None: this, or the model's position limit if that is smaller
PROGRESS_DELAY_S = 3.0    # progress=None: a bar appears only once a call has run this long, on a terminal
# compile="auto": compile once this many seconds have gone into forward passes, when the one-off
# compilation is sure to pay for itself on the rest (timings in docs/speed.md)
AUTO_COMPILE_AFTER_S = 300.0
# then time this many batches both ways (compiled and eager, on the same batches) and keep the
# faster: on some CPUs (eager already near the matmul peak) compiling is slower
AUTO_TRIAL_BATCHES = 4
# backend="auto" (fp32 on CPU): once this many seconds have gone into forward passes, time the Linear
# layers through torch's default kernels and through oneDNN on the same AUTO_TRIAL_BATCHES batches and
# keep the faster (see backends.py); short calls never pay for the trial or the packed weights
AUTO_BACKEND_AFTER_S = 2.0
# oneDNN must beat torch's kernels by this fraction to be kept: never slower than torch by noise
BACKEND_MARGIN = 0.03
# a label prompt must leave room for at least this many text tokens, or the pair is a usage error
MIN_TEXT_TOKENS = 8
DEVICE_TYPES = ("cpu", "cuda")
BENCH_ADVICE = " (check with `nspzero bench`)"  # left out of warnings shown while the bench runs

log = logging.getLogger("nspzero")
_WARNED: set[str] = set()


def _warn_once(message: str) -> None:
    """Log `message` as a warning the first time this process meets it (a broken install is met per scorer)."""
    if message not in _WARNED:
        _WARNED.add(message)
        log.warning("%s", message)


@dataclass(frozen=True)
class Encoded:
    """Token ids of one pair after truncation, with optional explicit position ids."""

    input_ids: list[int]
    token_type_ids: list[int]
    position_ids: Optional[list[int]]


class EncodedPairs(Sequence[Encoded]):
    """What `NSPScorer.encode` returns: the encoded pairs (a sequence, in input order) and how
    many of them were truncated — per call, so no state is left on the scorer."""

    def __init__(self, items: list[Encoded], truncated: int) -> None:
        self.items = items
        self.truncated = truncated

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index):
        return self.items[index]

    def __iter__(self) -> Iterator[Encoded]:
        return iter(self.items)


def truncated_lengths(len_a: int, len_b: int, budget: int, protect_first: bool = True) -> tuple[int, int]:
    """Lengths after cutting the longer segment from its end, one token at a time.

    On a tie the unprotected segment (the text, not the prompt) loses the token. Closed form
    of the one-token-at-a-time loop, so long texts cost nothing extra.
    """
    if len_a + len_b <= budget:
        return len_a, len_b
    short, long_ = min(len_a, len_b), max(len_a, len_b)
    if long_ - (len_a + len_b - budget) >= short:  # cutting only the longer one suffices
        cut_long = budget - short
        return (cut_long, len_b) if len_a > len_b or (len_a == len_b and not protect_first) else (len_a, cut_long)
    # both end up within one token of budget / 2; the protected side keeps the odd token
    half, odd = divmod(budget, 2)
    return (half + odd, half) if protect_first else (half, half + odd)


def soft_position_ids(k: int, n1: int, n2: int) -> list[int]:
    """Position ids of `[CLS] first(k) [SEP] before(n1) after(n2) [SEP]` read as
    `[CLS] [SEP] before first after [SEP]` (the authors' ChID layout, method.md §4)."""
    return ([0] + list(range(2 + n1, 2 + n1 + k)) + [1] + list(range(2, 2 + n1))
            + list(range(2 + n1 + k, 2 + n1 + k + n2)) + [2 + n1 + k + n2])


def resolve_device(device: Optional[str]) -> torch.device:
    """'auto'/None picks CUDA when available, else CPU; otherwise 'cpu', 'cuda' or 'cuda:N' that
    exists here. Other torch devices (meta, mps, xpu, …) are refused: nspzero runs on CPU/CUDA."""
    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise UsageError(f"device {shown(device)} is not a device name; use 'cpu', 'cuda', 'cuda:0' or 'auto'") from None
    if dev.type not in DEVICE_TYPES:
        raise UsageError(f"device {shown(device)} is not supported: nspzero runs on 'cpu' or 'cuda' ('cuda:N'); "
                         f"use --device cpu, cuda or auto")
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise UsageError(f"device {shown(device)} was asked for but CUDA is not available here; use --device cpu")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise UsageError(f"device {shown(device)} does not exist: this machine has {torch.cuda.device_count()} "
                             f"CUDA device(s) (cuda:0 …); use --device cuda")
    return dev


def _preview(text: str, width: int = 24) -> str:
    """A short repr of a text for error messages (enough to find it, never a whole document)."""
    return repr(text[:width]) + ("…" if len(text) > width else "")


def _is_compile_error(exc: BaseException) -> bool:
    """Whether `exc` came from torch.compile (dynamo/inductor), not from running the model: only
    those are worth an eager retry. (RuntimeErrors qualify when dynamo/inductor raised them, e.g.
    "Dynamo is not supported on Python 3.12+".)"""
    import torch._dynamo

    if isinstance(exc, torch._dynamo.exc.TorchDynamoException):
        return True
    tb = exc.__traceback__
    while tb is not None:
        module = tb.tb_frame.f_globals.get("__name__", "")
        if module.startswith(("torch._dynamo", "torch._inductor", "torch.compiler")):
            return True
        tb = tb.tb_next
    return False


def progress_bar(progress: Optional[bool], pairs: int, total: int, desc: str, unit: str):
    """The library's one rule for a bar, so a script calling classify() in a loop stays quiet, as
    transformers' pipelines do: True always draws one, False never; None draws one only for a long
    call (at least PROGRESS_MIN_PAIRS pairs, still running after PROGRESS_DELAY_S) when stderr is a
    terminal. Returns a tqdm bar (a disabled one, that draws nothing, when there is to be none)."""
    import sys

    from tqdm.auto import tqdm

    auto = progress is None
    off = progress is False or (auto and pairs < PROGRESS_MIN_PAIRS)
    return tqdm(total=total, desc=desc, unit=unit, leave=False, file=sys.stderr,
                disable=True if off else None if auto else False, delay=PROGRESS_DELAY_S if auto else 0)


def score_distinct(pairs: Sequence[Pair], score_parts: Callable[[list[Pair], list[int], Callable[[int, int], None]],
                                                   Iterable[tuple[Sequence[int], np.ndarray]]],
                   max_length: int, progress: Optional[bool] = None,
                   on_batch: Optional[Callable[[list[Pair], np.ndarray], None]] = None, desc: str = "scoring",
                   on_truncated: Optional[Callable[[int, int], None]] = None) -> np.ndarray:
    """The frame every scoring engine shares (in-process batches, a Ray actor pool): each distinct
    pair is scored once by `score_parts(unique, origin, on_truncated)` (origin: each one's first
    index in `pairs`, for errors), which yields (indexes into `unique`, scores) as batches finish and
    reports the pairs it truncated (default: `warn_truncated`); `on_batch` sees every batch (the
    harness caches it), one progress bar counts them (see `progress_bar`), results come in input
    order. How many pairs one call gets is the caller's (`pipeline.chunked`)."""
    distinct: dict[Pair, int] = {}
    where = np.array([distinct.setdefault(p, len(distinct)) for p in pairs], dtype=np.int64)
    unique = list(distinct)
    scores = np.full(len(unique), np.nan)
    if not unique:
        return scores[where]
    origin = np.unique(where, return_index=True)[1].tolist()
    report = on_truncated or (lambda cut, total: warn_truncated(cut, total, max_length))
    with progress_bar(progress, len(unique), len(unique), desc, "pair") as bar:
        for idx, part in score_parts(unique, origin, report):
            idx = np.asarray(idx, dtype=np.int64)
            scores[idx] = part
            if on_batch is not None:
                on_batch([unique[i] for i in idx], scores[idx])
            bar.update(len(idx))
    return scores[where]


def warn_truncated(cut: int, total: int, max_length: int) -> None:
    """The one warning about pairs cut to max_length (one per call, however it was chunked)."""
    if cut:
        log.warning("%d of %d pairs were longer than max_length=%d tokens and were truncated (text cut from its end)",
                    cut, total, max_length)


class TimedTrial:
    """Two ways of running the same batches, timed side by side: the first call of each is a warm-up
    (compiling, kernel set-up) and not timed, then AUTO_TRIAL_BATCHES batches count."""

    def __init__(self) -> None:
        self.seconds = [0.0, 0.0]
        self.batches = -1

    def run(self, first: Callable[[], object], second: Callable[[], object]) -> tuple[object, object, bool]:
        """(first's result, second's result, whether the trial is over); second is not run when first
        returns None (it could not run)."""
        start = time.perf_counter()
        a = first()
        if a is None:
            return None, None, False
        middle = time.perf_counter()
        b = second()
        end = time.perf_counter()
        self.batches += 1
        if self.batches > 0:
            self.seconds[0] += middle - start
            self.seconds[1] += end - middle
        return a, b, self.batches >= AUTO_TRIAL_BATCHES

    def per_batch_ms(self) -> tuple[float, float]:
        return 1000 * self.seconds[0] / AUTO_TRIAL_BATCHES, 1000 * self.seconds[1] / AUTO_TRIAL_BATCHES


# protobuf's limit on one .onnx file (the export writes no external data)
ONNX_FILE_LIMIT = 2**31 - 2**26


class NSPScorer:
    """Scores sentence pairs with P(IsNext) = softmax(NSP or SOP logits)[IN_ORDER_INDEX] (see `heads`)."""

    def __init__(self, tokenizer, model: torch.nn.Module, *, device: Optional[str] = None,
                 dtype: str = "float32", max_length: Optional[int] = None, batch_size: int = 32,
                 name: str = "<model>", compile: Union[bool, str] = False,
                 backend: Optional[str] = None, _owns_model: bool = False) -> None:
        # _owns_model (from_pretrained): nobody else holds `model`, so it may be quantised in place and have
        # its Linear layers swapped by backend "auto"; a caller's model is never changed behind its back
        if dtype not in DTYPES:
            raise UsageError(f"dtype must be one of {', '.join(DTYPES[:-1])}, got {shown(dtype)} ({DTYPES[-1]}, the previous "
                             f"int8, is kept for comparison)")
        if not (isinstance(compile, bool) or compile == "auto"):
            raise UsageError(f"compile must be True, False or 'auto', got {shown(compile)}")
        if compile is True and dtype not in ("float32", "bfloat16"):
            raise UsageError(f"compile works with dtype float32 or bfloat16, not {dtype}")
        explicit = backend is not None  # NSPZERO_BACKEND is a preference: where it cannot apply, torch runs
        backend = os.environ.get("NSPZERO_BACKEND", "auto") if backend is None else backend
        if backend not in BACKENDS:
            raise UsageError(f"backend must be one of {', '.join(BACKENDS)}, got {shown(backend)} (NSPZERO_BACKEND or "
                             f"backend=)")
        if not isinstance(batch_size, int) or batch_size < 1:
            raise UsageError(f"batch_size must be a positive integer, got {shown(batch_size)}")
        limit = getattr(model.config, "max_position_embeddings", 512)
        if max_length is None:
            max_length = min(DEFAULT_MAX_LENGTH, limit)
        if not isinstance(max_length, int) or not 4 <= max_length <= limit:
            raise UsageError(f"max_length must be an integer between 4 and {limit} (the model's position limit), "
                             f"got {shown(max_length)}")
        self.tokenizer = tokenizer
        self.name = name
        onnx = getattr(model, "is_onnx", False)  # an exported folder runs on ONNX Runtime's CPU provider
        self.device = resolve_device("cpu" if onnx and device in (None, "auto") else device)
        self.dtype = dtype
        self.max_length = max_length
        self.batch_size = batch_size
        self.owns_model = _owns_model
        self.weights_from_files = True  # False once the weights were changed in memory (`weights_changed`)
        if not onnx and self._onnxruntime_asked(backend, explicit, model):
            if compile is True and explicit:
                raise UsageError("compile=True compiles the torch model; backend onnxruntime runs an ONNX export: "
                                 "choose one")
            exported = self._exported(model, required=explicit)
            if exported is not None:
                model, onnx = exported, True
        self.model = self._prepare(model)
        self._warn_slow_precision()
        self.random_weights = has_random_weights(model.config)
        if self.random_weights:
            log.warning("%s", random_weights_note(name))
        # "auto" compiles after AUTO_COMPILE_AFTER_S seconds of forward passes (fp32/bf16 only)
        self.compile: Union[bool, str] = compile if dtype in ("float32", "bfloat16") and not onnx else False
        self._compiled: Optional[Callable[..., object]] = None
        self.forward_seconds = 0.0
        self.backend = self._initial_backend(backend, onnx, explicit)
        # the eager forward skips pad tokens where the architecture is known (see `unpadded`); CPU only:
        # it is where the matrix multiplies on pad rows cost (GPUs were not measured)
        self.unpad = self.device.type == "cpu" and not onnx and unpadded.supports(self.model)

    @classmethod
    def from_pretrained(cls, name_or_path: str, **kwargs) -> "NSPScorer":
        tokenizer, model = load_nsp_model(name_or_path)
        return cls(tokenizer, model, name=str(name_or_path), _owns_model=True, **kwargs)

    def _prepare(self, model: torch.nn.Module) -> torch.nn.Module:
        """Move to the device and apply the precision. bfloat16 stores only the Linear weights in
        bf16 (autocast would cast them on every call, to the same values); LayerNorm, embeddings and
        softmax stay fp32 under autocast, which keeps |ΔP| well below a plain `.to(bf16)`'s (docs/speed.md)."""
        if getattr(model, "is_onnx", False):  # an exported folder (onnx_model): ONNX Runtime, fp32 or int8
            if self.dtype not in ("float32", "int8"):
                raise UsageError(f"an exported ONNX model runs in float32 or int8 (model.int8.onnx), not {self.dtype}")
            model = model.to(self.device).with_variant(self.dtype)
            model.session  # noqa: B018 - build it now: a broken file is a load error, not a scoring one
            return model
        if self.dtype == "float16" and self.device.type != "cuda":
            raise UsageError("dtype float16 needs a CUDA device; on CPU use bfloat16")
        if self.dtype in ("int8", "int8-dynamic"):
            if self.device.type != "cpu":
                raise UsageError(f"dtype {self.dtype} runs on CPU only; use bfloat16/float16 on GPU")
            from .quantize import dynamic_int8, quantize_int8

            if self.dtype == "int8":  # in place when ours: a copy would hold fp32 and int8 weights at once (peak memory)
                model = quantize_int8((model if self.owns_model else copy.deepcopy(model)).float(), inplace=True)
            else:
                model = dynamic_int8(model)
        elif self.dtype in ("float16", "bfloat16") and not self.owns_model:
            model = copy.deepcopy(model)  # the conversion below is in place: a caller's model stays fp32
        model = model.to(self.device)
        if self.dtype == "float16":
            model = model.half()
        if self.dtype == "bfloat16":
            for module in model.modules():
                if isinstance(module, torch.nn.Linear):
                    module.to(torch.bfloat16)
        return model.eval()

    def _onnxruntime_asked(self, asked: str, explicit: bool, model: torch.nn.Module) -> bool:
        """Whether a torch model runs on ONNX Runtime (exported once, `onnx_export.cached_export`): asked
        for, or dtype int8 with backend "auto" when onnxruntime and onnx are installed — its int8 was faster
        than torch's on every CPU measured (docs/speed.md). An explicit ask it cannot meet is an error."""
        if asked not in ("auto", "onnxruntime") or (asked == "auto" and self.dtype != "int8"):
            return False
        problem = None
        if self.dtype not in ("float32", "int8") or self.device.type != "cpu":
            problem = f"runs float32 or int8 on the CPU, not {self.dtype} on {self.device}"
        elif sum(p.numel() for p in model.parameters()) * 4 >= ONNX_FILE_LIMIT:
            problem = "exports one ONNX file, which holds at most 2 GB of fp32 weights (this model has more)"
        else:
            from .onnx_model import runtime_problem

            missing = runtime_problem()
            if missing is not None:
                problem = f"needs onnxruntime and onnx ({missing.message})"
                if missing.broken and not (asked == "onnxruntime" and explicit):  # said once, then torch runs
                    _warn_once(f"running on torch's kernels: {missing.message}")
        if problem is not None and asked == "onnxruntime" and explicit:
            raise UsageError(f"backend onnxruntime {problem}; use backend auto or torch")
        return problem is None

    def _exported(self, model: torch.nn.Module, required: bool):
        """`model` as the ONNX Runtime model of its cached export (the torch weights are then dropped). A
        cached folder ONNX Runtime cannot load is removed and exported again, once. When the export
        fails: an error if ONNX Runtime was asked for (`required`), else one warning and None (torch runs)."""
        import shutil

        from .onnx_export import cached_export
        from .onnx_model import OnnxNSPModel

        if next(model.parameters()).dtype != torch.float32:
            model = copy.deepcopy(model).float()  # the exporter traces fp32
        try:
            for attempt in (1, 2):
                folder = cached_export(model, loaded_by_nspzero=self.owns_model)
                exported = OnnxNSPModel(str(folder), model.config, variant="int8" if self.dtype == "int8" else "float32")
                try:
                    exported.session  # noqa: B018 - a damaged cached file shows here
                    return exported
                except ModelError:
                    if attempt == 2:
                        raise
                    log.warning("the cached ONNX export %s cannot be loaded: exporting it again", folder)
                    shutil.rmtree(folder, ignore_errors=True)
        except Exception as exc:  # noqa: BLE001 - the exporter's own errors are of any type
            if required:
                raise
            log.warning("running torch's kernels: the ONNX export for ONNX Runtime failed (%s); "
                        "NSPZERO_BACKEND=torch skips the attempt", first_line(exc))
            return None

    def _initial_backend(self, asked: str, onnx: bool, explicit: bool) -> str:
        """What runs the model: "onnxruntime" for an exported folder; "torch" where the choice does not
        apply (GPU, reduced precision, compile=True: inductor packs its own weights); else `asked`, with
        "auto" settled by a timed trial in `forward` (see AUTO_BACKEND_AFTER_S)."""
        if onnx:
            return "onnxruntime"
        if asked == "onnxruntime":  # NSPZERO_BACKEND's preference where it cannot apply (an explicit ask raised)
            return "torch"
        if self.device.type != "cpu" or self.dtype != "float32" or self.compile is True or not onednn_available():
            if asked == "onednn" and explicit:
                raise UsageError(f"backend onednn runs fp32 on a CPU with a oneDNN-enabled torch, not dtype "
                                 f"{self.dtype} on {self.device} (compile={self.compile}); use backend auto")
            return "torch"
        if asked == "onednn":
            if not self.owns_model:  # the swap is in place: a caller's model keeps its own Linear layers
                self.model = copy.deepcopy(self.model)
            use_onednn(self.model)
        if asked == "auto" and not self.owns_model:  # the trial swaps Linear layers: only in a model we loaded
            return "torch"
        return asked

    @property
    def batch_invariant(self) -> bool:
        """Whether a pair's score is the same whatever other pairs share its batch (to 1e-5): true for
        every path but torch's int8, whose rounding magnifies fp32 attention's ~1e-7 reordering across
        padded lengths (up to ~3e-3; docs/reliability.md, "int8: what it promises"). The server keeps
        such a scorer's requests out of each other's batches."""
        return self.dtype not in ("int8", "int8-dynamic") or getattr(self.model, "is_onnx", False)

    @property
    def engine(self) -> str:
        """One line saying which path scores: backend, dtype, device (for logs and the bench table)."""
        backend = {"torch": "torch default kernels", "onednn": "oneDNN prepacked Linear",
                   "onnxruntime": "ONNX Runtime", "auto": "torch kernels until the oneDNN trial",
                   "trial": "timing torch vs oneDNN"}[self.backend]
        return f"{backend}, {self.dtype}, {self.device}" + (", torch.compile" if self.compile is True else "") \
            + (", pad tokens skipped" if self.unpad and self.compile is not True else "")

    def _warn_slow_precision(self) -> None:
        if self.dtype != "bfloat16" or self.device.type != "cpu" or cpu.has_amx():
            return
        capability = cpu.capability()
        if not cpu.has_native_bf16():
            log.warning("this CPU has no native bfloat16 matmul (AVX-512 BF16 or AMX; torch reports %s): "
                        "dtype bfloat16 will be much slower than float32 here; use float32 or int8", capability)
        else:
            log.warning("this CPU multiplies bfloat16 with AVX-512 BF16 but has no AMX (torch reports %s): "
                        "bfloat16 is usually slower than float32 here; int8 is the faster reduced precision%s",
                        capability, BENCH_ADVICE)

    def _autocast(self):
        if self.dtype == "bfloat16":
            return torch.autocast(device_type=self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    # ---- preprocess -------------------------------------------------------------------------
    def _token_ids(self, strings: set[str]) -> dict[str, list[int]]:
        """Tokenize every distinct string once (prompts repeat across thousands of pairs), keeping
        at most budget + 1 ids: more can never survive truncation, and truncated_lengths gives the
        same result for any length above the budget."""
        return token_ids(self.tokenizer, strings, self.max_length - 3 + 1)

    def encode(self, pairs: Sequence[Pair], origin: Optional[Sequence[int]] = None) -> EncodedPairs:
        """Pairs → truncated token ids (and soft position ids where a pair has an anchor), with the
        number of pairs truncated. UsageError (before any scoring) for a side with no tokens or a
        label prompt too long for max_length; `origin[i]` is pair i's index in the caller's list."""
        strings: set[str] = set()
        for p in pairs:
            strings.add(p.first)
            if p.anchor is None:
                strings.add(p.second)
            else:
                strings.update((p.second[:p.anchor], p.second[p.anchor:]))
        ids = self._token_ids(strings)
        cls_id, sep_id = self.tokenizer.cls_token_id, self.tokenizer.sep_token_id
        budget = self.max_length - 3
        out: list[Encoded] = []
        truncated = 0
        for i, p in enumerate(pairs):
            a = ids[p.first]
            if p.anchor is None:
                b, n_before = ids[p.second], None
            else:
                before, after = ids[p.second[:p.anchor]], ids[p.second[p.anchor:]]
                b, n_before = before + after, len(before)
            self._check(p, a, b, i if origin is None else origin[i])
            if p.prompt is None:
                la, lb = truncated_lengths(len(a), len(b), budget)
            elif p.prompt == "first":
                la, lb = len(a), min(len(b), budget - len(a))
            else:
                la, lb = min(len(a), budget - len(b)), len(b)
            if (la, lb) != (len(a), len(b)):
                truncated += 1
            input_ids = [cls_id] + a[:la] + [sep_id] + b[:lb] + [sep_id]
            types = [0] * (la + 2) + [1] * (lb + 1)
            positions = None
            if n_before is not None:
                n1 = min(n_before, lb)
                positions = soft_position_ids(la, n1, lb - n1)
            out.append(Encoded(input_ids, types, positions))
        return EncodedPairs(out, truncated)

    def _check(self, pair: Pair, a: list[int], b: list[int], index: int) -> None:
        """Refuse a side that tokenizes to nothing, and a label prompt that leaves no room for text."""
        for side, text, ids in (("first", pair.first, a), ("second", pair.second, b)):
            if not ids:
                raise UsageError(f"pair {index}: its {side} text {_preview(text)} has no tokens (nothing but "
                                 f"whitespace, control or zero-width characters); give it content or drop it")
        if pair.prompt is not None:
            prompt, ids = (pair.first, a) if pair.prompt == "first" else (pair.second, b)
            room = self.max_length - 3 - MIN_TEXT_TOKENS
            if len(ids) > room:
                cut = len(ids) > self.max_length - 3  # tokenized no further than max_length: its size is a floor
                need = f"{'at least ' if cut else ''}{len(ids) + 3 + MIN_TEXT_TOKENS}"
                size = f"more than {len(ids) - 1}" if cut else str(len(ids))
                if room < 1:  # no prompt at all fits: the limit is the problem, not this prompt
                    raise UsageError(f"max_length={self.max_length} is too small for any prompt: a pair keeps 3 "
                                     f"special tokens and at least {MIN_TEXT_TOKENS} text tokens; prompt "
                                     f"{_preview(prompt, 40)} needs --max-length {need}")
                raise UsageError(f"prompt {_preview(prompt, 40)} is {size} tokens long, but max_length="
                                 f"{self.max_length} leaves room for {room} prompt tokens (at least "
                                 f"{MIN_TEXT_TOKENS} are kept for the text); shorten the template or label words, "
                                 f"or raise --max-length to {need}")

    def batches(self, encoded: Sequence[Encoded]) -> list[list[int]]:
        """Indexes of `encoded` grouped into batches of similar length, longest first."""
        order = sorted(range(len(encoded)), key=lambda i: -len(encoded[i].input_ids))
        return [order[i:i + self.batch_size] for i in range(0, len(order), self.batch_size)]

    def _collate(self, items: Sequence[Encoded]) -> dict[str, torch.Tensor]:
        width = max(len(e.input_ids) for e in items)
        n = len(items)
        input_ids = torch.full((n, width), self.tokenizer.pad_token_id or 0, dtype=torch.long)
        types = torch.zeros((n, width), dtype=torch.long)
        mask = torch.zeros((n, width), dtype=torch.long)
        use_pos = any(e.position_ids is not None for e in items)
        positions = torch.zeros((n, width), dtype=torch.long) if use_pos else None
        for row, e in enumerate(items):
            length = len(e.input_ids)
            input_ids[row, :length] = torch.tensor(e.input_ids)
            types[row, :length] = torch.tensor(e.token_type_ids)
            mask[row, :length] = 1
            if positions is not None:
                positions[row, :length] = torch.tensor(e.position_ids if e.position_ids is not None else range(length))
        batch = {"input_ids": input_ids, "token_type_ids": types, "attention_mask": mask}
        if positions is not None:
            batch["position_ids"] = positions
        return {k: v.to(self.device) for k, v in batch.items()}

    # ---- forward ----------------------------------------------------------------------------
    @torch.inference_mode()
    def forward(self, batch: dict[str, torch.Tensor]) -> np.ndarray:
        """One padded batch → P(IsNext) per row (softmax taken in float32)."""
        if self.compile == "auto" and self.forward_seconds >= AUTO_COMPILE_AFTER_S and self.backend in ("torch", "auto"):
            self.backend = "torch"  # inductor packs its own weights: the compiled model runs plain Linear layers
            log.warning("scoring has taken %.0f s so far: compiling the model (torch.compile) and timing it "
                        "against eager on the next %d batches, to keep the faster (a one-off pause of ~30-60 s "
                        "for BERT-base; --compile off to skip)", self.forward_seconds, AUTO_TRIAL_BATCHES)
            self.compile = "trial"
            self._compile_trial_timer = TimedTrial()  # compiled, eager
        if self.backend == "auto" and self.forward_seconds >= AUTO_BACKEND_AFTER_S:
            self.backend = "trial"
            self._backend_trial_timer = TimedTrial()  # torch, oneDNN
        start = time.perf_counter()
        with self._autocast():
            if self.backend == "trial":
                logits = self._backend_trial(batch)
            else:
                logits = self._trial(batch) if self.compile == "trial" else self._run(batch)
        out = torch.softmax(logits.float(), dim=-1)[:, IN_ORDER_INDEX].cpu().numpy().astype(np.float64)
        self.forward_seconds += time.perf_counter() - start
        if not np.isfinite(out).all():  # one check per batch, on a few numbers already on the CPU
            raise ModelError(f"model {self.name} gave non-finite NSP scores (NaN/inf) for {int((~np.isfinite(out)).sum())} "
                             f"of {len(out)} pairs: its weights are probably corrupt (NaN/inf in the checkpoint) or "
                             f"dtype {self.dtype} overflowed; check the checkpoint, or use dtype float32")
        return out

    def _backend_trial(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """backend="auto" after its budget: the same batch through torch's kernels and through oneDNN,
        timed, for AUTO_TRIAL_BATCHES batches (torch's logits are returned meanwhile); then oneDNN is kept
        only if it was faster by BACKEND_MARGIN, said in one log line."""
        def run(onednn: bool):
            set_active(self.model, onednn)
            return self._eager(batch)

        def run_onednn():
            try:
                if self._backend_trial_timer.batches < 0:  # first (untimed) trial batch: pack the weights
                    use_onednn(self.model)
                return run(True)
            except RuntimeError as exc:  # a oneDNN this torch build or CPU cannot run: torch's kernels stay
                use_onednn(self.model, False)
                self.backend = "torch"
                log.warning("oneDNN Linear failed (%s): running torch's kernels", first_line(exc)[:200])
                return None

        logits, _, done = self._backend_trial_timer.run(lambda: run(False), run_onednn)
        if self.backend == "torch":
            return logits
        if done:
            torch_ms, onednn_ms = self._backend_trial_timer.per_batch_ms()
            self.backend = "onednn" if onednn_ms < (1 - BACKEND_MARGIN) * torch_ms else "torch"
            if self.backend == "torch":
                use_onednn(self.model, False)  # frees the packed weights
            elif self.compile == "auto":  # inductor would pack the weights again; oneDNN already has them
                self.compile = False
                log.info("compile auto: off, since the oneDNN kernels won their trial (inductor would pack "
                         "the weights again)")
            log.info("fp32 Linear layers: %.1f ms per batch with torch's kernels, %.1f ms with oneDNN (prepacked) "
                     "over %d batches: running %s", torch_ms, onednn_ms, AUTO_TRIAL_BATCHES,
                     "oneDNN" if self.backend == "onednn" else "torch's kernels")
        return logits

    def _trial(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """compile="auto" after its budget: the same batch through the compiled and the eager model,
        timed, for AUTO_TRIAL_BATCHES batches; then the faster is kept, said in one log line."""
        compiled, _, done = self._compile_trial_timer.run(lambda: self._run_compiled(batch),
                                                          lambda: self._eager(batch))
        if compiled is None:  # compilation failed: _run_compiled warned and turned compiling off
            return self._eager(batch)
        if done:
            compiled_ms, eager_ms = self._compile_trial_timer.per_batch_ms()
            self.compile = compiled_ms < eager_ms
            if not self.compile:
                self._compiled = None
            log.warning("torch.compile: %.1f ms per batch compiled vs %.1f ms eager over %d batches: keeping the "
                        "%s model", compiled_ms, eager_ms, AUTO_TRIAL_BATCHES, "compiled" if self.compile else "eager")
        return compiled.logits

    def _run(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """The logits of the model, or with `compile=True` of its torch.compile'd form (see `_run_compiled`)."""
        if self.compile is True:
            out = self._run_compiled(batch)
            if out is not None:
                return out.logits
        return self._eager(batch)

    def _eager(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """The logits of the model run eagerly: without the padding where `unpadded` knows the
        architecture (same scores, fewer operations), else transformers' own forward."""
        if self.unpad:
            return unpadded.logits(self.model, **batch)
        return self.model(**batch).logits

    def _run_compiled(self, batch: dict[str, torch.Tensor]):
        """The torch.compile'd model's output (inductor, dynamic shapes, frozen weights; compiled once
        per process: speed and cost in docs/speed.md), or None when the
        compilation failed (e.g. no C++ compiler, an unsupported Python): then compiling is off, with
        one warning. Errors that are not compilation errors propagate as they are."""
        import torch._dynamo
        import torch._inductor.config as inductor_config

        try:
            if self._compiled is None:
                self._compiled = torch.compile(self.model, dynamic=True)
            with inductor_config.patch(freezing=True):  # constant-fold the weights into the graph
                return self._compiled(**batch)
        except (torch._dynamo.exc.TorchDynamoException, RuntimeError) as exc:
            if isinstance(exc, torch.cuda.OutOfMemoryError) or not _is_compile_error(exc):
                raise
            log.warning("torch.compile failed (%s); scoring without it", first_line(exc)[:200])
            self.compile = False
        return None

    # ---- public -----------------------------------------------------------------------------
    def weights_changed(self) -> None:
        """The model's weights were changed in place (NSP-tuning): drop what was made from the old ones
        (the compiled graph, whose weights are frozen in; oneDNN's packed copies, repacked) and key the
        scores cache and the ONNX export cache by the tensors from now on, not by the files loaded."""
        self._compiled = None
        if self.backend in ("onednn", "trial"):
            use_onednn(self.model)
        self.weights_from_files = False

    def settle_backend(self, batches: Sequence[Sequence[Pair]]) -> bool:
        """Run backend "auto"'s torch-vs-oneDNN trial to its end now, on `batches` in turn (it would
        otherwise start after AUTO_BACKEND_AFTER_S of scoring); True if there was a trial to run. For a
        benchmark: while the trial runs every batch runs twice, so a timed round holding it times neither."""
        if self.backend not in ("auto", "trial") or not batches:
            return False
        self.forward_seconds = max(self.forward_seconds, AUTO_BACKEND_AFTER_S)
        for i in range(AUTO_TRIAL_BATCHES + 2):  # a warm-up batch, the timed ones, one to spare
            if self.backend not in ("auto", "trial"):
                break
            self.score(batches[i % len(batches)], progress=False)
        return True

    def score(self, pairs: Sequence[Pair], progress: Optional[bool] = None,
              on_batch: Optional[Callable[[list[Pair], np.ndarray], None]] = None,
              desc: str = "scoring", on_truncated: Optional[Callable[[int, int], None]] = None) -> np.ndarray:
        """P(IsNext) for exactly the pairs given (no chunking: see `pipeline.chunked`), in input order.
        Identical pairs are scored once.

        `progress`: see `progress_bar`. `on_batch(pairs, scores)` is called after each batch (the
        harness caches finished work). Pairs cut to max_length give one warning, or, with
        `on_truncated`, a call `on_truncated(cut, distinct)` instead, also when none is cut (a caller scoring in chunks
        sums them into one warning). Errors about one pair name its index in `pairs`.
        """
        return score_distinct(pairs, self._score_batches, self.max_length, progress, on_batch, desc, on_truncated)

    def _score_batches(self, unique: list[Pair], origin: Sequence[int],
                       on_truncated: Callable[[int, int], None]) -> Iterator[tuple[list[int], np.ndarray]]:
        """(indexes into `unique`, their scores), one length-sorted padded batch at a time."""
        encoded = self.encode(unique, origin)
        on_truncated(encoded.truncated, len(unique))
        for idx in self.batches(encoded):
            yield idx, self.forward(self._collate([encoded[i] for i in idx]))

"""A scores cache on disk, so that a killed evaluation resumes without rescoring finished pairs.

One JSON line per scored pair, appended and flushed batch by batch. The file name carries a
fingerprint of everything that decides a score — every model tensor (via the weight files'
contents, or the tensors themselves for a model not loaded from a folder), the tokenizer files,
dtype, max_length — so replacing weights or vocab.txt in place at the same path rescores
everything. File hashes are memoised by path + size + mtime_ns + ctime_ns + inode in a small
JSON file in the user cache dir (NSPZERO_CACHE_DIR, else $XDG_CACHE_HOME/nspzero), so reruns of
BERT-base cost a few stat() calls. Unreadable lines (a crash mid-write, garbage) are skipped
with one warning naming their count; the pairs they held are rescored.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import os
import tempfile
from pathlib import Path
from typing import Iterable, Optional, Sequence

import numpy as np
import torch

from .errors import DataError
from .scorer import NSPScorer, Pair

log = logging.getLogger("nspzero")

# bump when tokenization or encoding changes what a pair's score is (2: special-token strings in
# user text are text, label prompts are never truncated)
FINGERPRINT_VERSION = "3"  # 3: int8 adds its activation range (7 or 8 bits, by CPU)
MODEL_FILE_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".index.json", ".onnx")
TOKENIZER_FILES = ("vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                   "added_tokens.json")
MEMO_NAME = "file-hashes.json"
MEMO_MAX_ENTRIES = 4096
HASH_BLOCK = 1 << 20


def pair_key(pair: Pair) -> str:
    raw = json.dumps([pair.first, pair.second, pair.prompt, pair.anchor], ensure_ascii=False)
    return hashlib.sha1(raw.encode("utf-8")).hexdigest()[:20]


def config_hash(scorer: NSPScorer) -> str:
    """sha256 of the model's config (as saved), first 12 hex digits."""
    text = scorer.model.config.to_json_string(use_diff=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]


# ---- file hashes, memoised ---------------------------------------------------------------------
def memo_dir() -> Path:
    """Where the file-hash memo lives: NSPZERO_CACHE_DIR, else $XDG_CACHE_HOME/nspzero, else ~/.cache/nspzero."""
    if os.environ.get("NSPZERO_CACHE_DIR"):
        return Path(os.environ["NSPZERO_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "nspzero"


def _load_memo(path: Path) -> dict[str, str]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {k: v for k, v in data.items() if isinstance(k, str) and isinstance(v, str)} if isinstance(data, dict) else {}


def _save_memo(path: Path, memo: dict[str, str]) -> None:
    """Atomic replace; a read-only or missing cache dir only costs the memo, never the run."""
    items = list(memo.items())[-MEMO_MAX_ENTRIES:]
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".file-hashes-", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(dict(items), handle)
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
    except OSError:
        pass


def _stat_key(path: str) -> str:
    st = os.stat(path)
    return f"{os.path.realpath(path)}|{st.st_size}|{st.st_mtime_ns}|{st.st_ctime_ns}|{st.st_ino}"


def _hash_file(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(HASH_BLOCK), b""):
            digest.update(block)
    return digest.hexdigest()


def file_digests(paths: Iterable[str]) -> dict[str, str]:
    """sha256 of each file's contents, memoised by path + size + mtime_ns + ctime_ns + inode
    (an in-place replacement changes ctime even when mtime is preserved)."""
    memo_path = memo_dir() / MEMO_NAME
    memo = _load_memo(memo_path)
    out, changed = {}, False
    for path in paths:
        key = _stat_key(path)
        if key not in memo:
            memo[key] = _hash_file(path)
            changed = True
        out[path] = memo[key]
    if changed:
        _save_memo(memo_path, memo)
    return out


def _folder_files(folder: str, wanted) -> list[str]:
    try:
        names = sorted(os.listdir(folder))
    except OSError:
        return []
    return [os.path.join(folder, n) for n in names if wanted(n) and os.path.isfile(os.path.join(folder, n))]


def _digest_files(digest, folder: str, files: Sequence[str]) -> None:
    for path, hexdigest in file_digests(files).items():
        digest.update(f"{os.path.relpath(path, folder)}={hexdigest};".encode("utf-8"))


# ---- tensors ---------------------------------------------------------------------------------
def _update_with_value(digest, name: str, value) -> None:
    """Every tensor of a state dict, quantized ones included (int8 packs weights in tuples)."""
    if isinstance(value, (tuple, list)):
        for i, item in enumerate(value):
            _update_with_value(digest, f"{name}.{i}", item)
        return
    digest.update(name.encode("utf-8"))
    if not isinstance(value, torch.Tensor):
        digest.update(repr(value).encode("utf-8"))
        return
    tensor = value.detach().cpu()
    if tensor.is_quantized:
        if tensor.qscheme() in (torch.per_channel_affine, torch.per_channel_symmetric):
            extra = (tensor.q_per_channel_scales(), tensor.q_per_channel_zero_points())
            digest.update(repr(tensor.q_per_channel_axis()).encode())
        else:
            extra = ()
            digest.update(repr((tensor.q_scale(), tensor.q_zero_point())).encode())
        tensor = tensor.int_repr()
        for e in extra:
            _update_with_value(digest, name + ".q", e)
    digest.update(f"{tensor.dtype}{tuple(tensor.shape)}".encode())
    if tensor.numel():
        digest.update(tensor.contiguous().reshape(-1).view(torch.uint8).numpy())


def tensor_digest(model: torch.nn.Module) -> str:
    """sha256 over every entry of the model's state dict (names, dtypes, shapes, bytes)."""
    digest = hashlib.sha256()
    for name, value in sorted(model.state_dict().items()):
        _update_with_value(digest, name, value)
    return digest.hexdigest()


# ---- model and tokenizer ----------------------------------------------------------------------
def model_digest(model: torch.nn.Module) -> str:
    """The weight files' contents (+ config.json) when the model was loaded from a folder, else
    (a hub name, a model built in memory) every tensor."""
    folder = str(getattr(model, "name_or_path", "") or "")
    if folder and os.path.isdir(folder):
        loaded = getattr(model, "loaded_files", None)  # a model that says which files it read (ONNX)
        weights = [f for f in loaded() if os.path.isfile(f)] if loaded is not None else \
            _folder_files(folder, lambda n: n.endswith(MODEL_FILE_SUFFIXES))
        if weights:
            digest = hashlib.sha256(b"files:")
            _digest_files(digest, folder, _folder_files(folder, lambda n: n == "config.json") + weights)
            return digest.hexdigest()
    return "tensors:" + tensor_digest(model)


def tokenizer_digest(tokenizer) -> str:
    """The tokenizer files' contents when loaded from a folder, else its vocabulary and settings."""
    digest = hashlib.sha256(type(tokenizer).__name__.encode())
    folder = str(getattr(tokenizer, "name_or_path", "") or "")
    files = _folder_files(folder, lambda n: n in TOKENIZER_FILES) if folder and os.path.isdir(folder) else []
    if files:
        _digest_files(digest, folder, files)
    else:
        vocab = sorted(tokenizer.get_vocab().items())
        digest.update(json.dumps(vocab, ensure_ascii=False).encode("utf-8"))
        settings = {k: repr(v) for k, v in sorted(getattr(tokenizer, "init_kwargs", {}).items())
                    if k in ("do_lower_case", "strip_accents", "tokenize_chinese_chars")}
        digest.update(json.dumps(settings).encode("utf-8"))
    return digest.hexdigest()


def int8_reduce_range(model) -> bool:
    """Whether the int8 model's Linear layers quantise activations to 7 bits (else 8)."""
    from . import cpu

    ranges = {module.reduce_range for module in model.modules() if isinstance(getattr(module, "reduce_range", None), bool)}
    return ranges.pop() if len(ranges) == 1 else not cpu.has_vnni()


def scorer_fingerprint(scorer: NSPScorer) -> str:
    """Identifies everything that decides a score: config, every weight, the tokenizer, dtype,
    max_length, the int8 activation range and the encoding rules (FINGERPRINT_VERSION)."""
    digest = hashlib.sha256(f"v{FINGERPRINT_VERSION}|{config_hash(scorer)}".encode())
    digest.update(model_digest(scorer.model).encode())
    digest.update(tokenizer_digest(scorer.tokenizer).encode())
    digest.update(f"{scorer.dtype}|{scorer.max_length}".encode())
    if scorer.dtype == "int8":  # 7- or 8-bit activations follow the CPU (cpu.has_vnni): different scores
        digest.update(f"|reduce_range={int8_reduce_range(scorer.model)}".encode())
    return digest.hexdigest()[:16]


# ---- the scores file -------------------------------------------------------------------------
def _parse_line(raw: bytes) -> Optional[tuple[str, float]]:
    """[key, score] or None for anything else (a line cut short, garbage, a score out of [0, 1])."""
    try:
        item = json.loads(raw.decode("utf-8"))
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None
    if not (isinstance(item, list) and len(item) == 2 and isinstance(item[0], str)):
        return None
    key, score = item
    if isinstance(score, bool) or not isinstance(score, (int, float)) or not math.isfinite(score) or not 0 <= score <= 1:
        return None
    return key, float(score)


class ScoreCache:
    """pair → P(IsNext), loaded from and appended to `path`."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self.scores: dict[str, float] = {}
        self.skipped = 0
        try:
            if self.path.exists():
                self._load()
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise DataError(f"score cache {self.path}: {exc.strerror or exc}; the output folder's cache/ must be a "
                            f"writable folder (remove or rename what is in the way)") from None
        self._handle = None

    def _load(self) -> None:
        with open(self.path, "rb") as handle:
            for raw in handle:
                if not raw.strip():
                    continue
                parsed = _parse_line(raw)
                if parsed is None:
                    self.skipped += 1
                    continue
                self.scores[parsed[0]] = parsed[1]
        if self.skipped:
            log.warning("score cache %s: skipped %d unreadable line(s) (cut short by a crash, or not written by "
                        "nspzero); their pairs will be scored again", self.path, self.skipped)

    def __len__(self) -> int:
        return len(self.scores)

    def lookup(self, pairs: Sequence[Pair]) -> tuple[np.ndarray, list[int]]:
        """(scores with NaN where unknown, indexes of the pairs still to score)."""
        keys = [pair_key(p) for p in pairs]
        out = np.array([self.scores.get(k, np.nan) for k in keys], dtype=np.float64)
        return out, [i for i, v in enumerate(out) if np.isnan(v)]

    def add(self, pairs: Sequence[Pair], scores: Sequence[float]) -> None:
        if self._handle is None:
            # a crash may have left a line without its newline: start on a fresh line
            needs_newline = self.path.exists() and self.path.stat().st_size > 0 and not self._ends_with_newline()
            self._handle = open(self.path, "a", encoding="utf-8")
            if needs_newline:
                self._handle.write("\n")
        lines = []
        for pair, score in zip(pairs, scores):
            key = pair_key(pair)
            self.scores[key] = float(score)
            lines.append(json.dumps([key, float(score)]) + "\n")
        self._handle.write("".join(lines))
        self._handle.flush()

    def _ends_with_newline(self) -> bool:
        with open(self.path, "rb") as handle:
            handle.seek(-1, os.SEEK_END)
            return handle.read(1) == b"\n"

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None

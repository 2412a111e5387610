"""What identifies a model's and a tokenizer's content, cheaply: sha256 of their files, memoised by
path + size + mtime_ns + ctime_ns + inode in a small JSON file in the user cache dir (NSPZERO_CACHE_DIR,
else $XDG_CACHE_HOME/nspzero), or of the tensors themselves for a model built in memory. The scores
cache (`cache`) and the ONNX export cache (`onnx_export.cached_export`) key their entries by it, so
replacing weights or vocab.txt in place at the same path is noticed, and reruns cost a few stat() calls.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Iterable, Sequence

import torch

MODEL_FILE_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".index.json", ".onnx")
TOKENIZER_FILES = ("vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                   "added_tokens.json")
MEMO_NAME = "file-hashes.json"
MEMO_MAX_ENTRIES = 4096
HASH_BLOCK = 1 << 20


# ---- file hashes, memoised ---------------------------------------------------------------------
def memo_dir() -> Path:
    """Where the file-hash memo lives: NSPZERO_CACHE_DIR, else $XDG_CACHE_HOME/nspzero, else ~/.cache/nspzero.
    A relative XDG_CACHE_HOME is ignored, as the XDG spec says (the cache would follow the current folder)."""
    if os.environ.get("NSPZERO_CACHE_DIR"):
        return Path(os.environ["NSPZERO_CACHE_DIR"])
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    base = xdg if os.path.isabs(xdg) else os.path.join(os.path.expanduser("~"), ".cache")
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
def model_digest(model: torch.nn.Module, files: bool = True) -> str:
    """The weight files' contents (+ config.json) when the model was loaded from a folder and `files`
    (the caller knows nobody changed it since: nspzero loaded it), else (a hub name, a model built or
    changed in memory) every tensor and the config."""
    folder = str(getattr(model, "name_or_path", "") or "")
    if (files or getattr(model, "is_onnx", False)) and folder and os.path.isdir(folder):
        loaded = getattr(model, "loaded_files", None)  # a model that says which files it read (ONNX)
        weights = [f for f in loaded() if os.path.isfile(f)] if loaded is not None else \
            _folder_files(folder, lambda n: n.endswith(MODEL_FILE_SUFFIXES))
        if weights:
            digest = hashlib.sha256(b"files:")
            _digest_files(digest, folder, _folder_files(folder, lambda n: n == "config.json") + weights)
            return digest.hexdigest()
    config = getattr(model, "config", None)
    settings = config.to_json_string(use_diff=False) if hasattr(config, "to_json_string") else ""
    return "tensors:" + hashlib.sha256(settings.encode("utf-8")).hexdigest()[:16] + tensor_digest(model)


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


# ---- a model named by its path, not loaded ---------------------------------------------------------
NOT_MODEL_SUFFIXES = (".md", ".h5", ".msgpack", ".ot", ".gitattributes", ".lock", ".tmp")


def _model_files(folder: str) -> list[str]:
    """The files of a model folder that can decide a score: every regular file at its top level
    but documentation, other frameworks' weights and hidden files (subfolders, e.g. an ONNX
    export cache, are derived from these)."""
    return _folder_files(folder, lambda n: not n.startswith(".") and not n.endswith(NOT_MODEL_SUFFIXES)
                         and not (n.endswith(".txt") and not n.startswith("vocab")))


def path_digest(name_or_path: str) -> str:
    """What identifies a model given as `--model` without loading it (an engine whose model loads
    elsewhere, e.g. on Ray actors, needs this): the contents of its folder's files (a file, such
    as a UER-py .bin, with the files beside it; a Google TF1 prefix, its folder), memoised like
    every file hash; a hub name, its cached snapshot's files, else (not cached here) its name."""
    path = os.path.expanduser(str(name_or_path))
    folder = path if os.path.isdir(path) else os.path.dirname(path) or "."
    files = _model_files(folder) if os.path.isdir(folder) and (os.path.exists(path) or os.sep in path) else []
    if not files:
        try:
            from huggingface_hub import try_to_load_from_cache

            cached = try_to_load_from_cache(str(name_or_path), "config.json")
        except Exception:  # noqa: BLE001 - not a valid repo id, no cache: known by its name
            cached = None
        if isinstance(cached, str):
            folder = os.path.dirname(cached)
            files = _model_files(folder)
    if not files:
        return "name:" + hashlib.sha256(str(name_or_path).encode("utf-8")).hexdigest()
    digest = hashlib.sha256(b"path:")
    _digest_files(digest, folder, files)
    return digest.hexdigest()

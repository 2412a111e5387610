"""Resumable file outputs (`classify --output OUT --resume`, local and Ray engines), and the one
streaming loop every file classification runs, resumed or not.

The loop (`stream`) takes the rows in fixed-size chunks; each chunk's results come from `score`
and go to `emit` in input order. With a `Progress`, each chunk is a *shard*: before scoring, a
shard already saved is read back instead; after scoring, it is saved (atomically, one file each)
in the progress folder beside the output, `OUT.progress/`. The output itself is still written
by the one atomic writer from every shard's results, so a resumed run ends with the same bytes as
an uninterrupted one; the folder is removed once OUT is in place.

The folder holds `manifest.json` (the fingerprint: the input file's content, reader and text
field; the model's files (`digests.path_digest`); the request; the settings that change scores),
`lock` (held with flock while a run works: a second run is refused, a dead run's lock is free),
and `shard-NNNNNN.jsonl` (a result per line). A run whose fingerprint differs is refused in one
line rather than mixed.
"""
from __future__ import annotations

import errno
import hashlib
import json
import logging
import os
import shutil
from pathlib import Path
from typing import Any, Callable, Iterable, Optional, Sequence, TypeVar

from .digests import file_digests, path_digest
from .errors import DataError, UsageError, failure_reason
from .folders import locked_file
from .io import atomic_write, atomic_write_json

log = logging.getLogger("nspzero")

T = TypeVar("T")
SHARD_ROWS = 512           # rows per chunk (and per shard): what the CLI has always scored per call
PROGRESS_SUFFIX = ".progress"
MANIFEST = "manifest.json"
LOCK = "lock"
FORMAT_VERSION = 1         # of the progress folder's layout
PARTS = {"input": "input file", "model": "model", "request": "request (labels, templates, options)",
         "settings": "scoring settings (dtype, max length, device)"}


def progress_folder(output: str | os.PathLike) -> Path:
    """Where `--resume` keeps the progress of `output`: `OUT.progress/` beside it."""
    out = Path(output)
    return out.with_name(out.name + PROGRESS_SUFFIX)


def _sha(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, ensure_ascii=False, sort_keys=True).encode("utf-8")).hexdigest()


def fingerprint(*, input_path: str, input_format: str, text_field: str, model: str, request: Any,
                dtype: str, max_length: Optional[int], device: Optional[str], backend: str = "torch",
                compile: Any = False) -> dict[str, str]:
    """What must not change between a run and its resumption, part by part (so a refusal can say
    which): the input's bytes and how they are read; the model's files; the request; the settings
    that change a score (dtype, max length, device type, the kernels (`pinned`), the int8
    activation range, nspzero's own encoding rules). Batch size, thread and actor counts do not
    change scores and are free."""
    from .cache import FINGERPRINT_VERSION
    from .scorer import resolve_device

    settings: dict[str, Any] = {"dtype": dtype, "max_length": max_length, "device": resolve_device(device).type,
                                "encoding": FINGERPRINT_VERSION, "backend": backend, "compile": compile}
    if dtype.startswith("int8"):
        from . import cpu

        settings["vnni"] = cpu.has_vnni()
    request_data = {**request.to_dict(), "normalize": request.normalize, "cut_prompts": request.cut_prompts}
    return {"input": _sha([file_digests([input_path])[input_path], input_format, text_field]),
            "model": path_digest(model), "request": _sha(request_data), "settings": _sha(settings)}


def pinned(load_args: dict) -> dict:
    """The load arguments of a resumable run: the choices a process makes by timing itself
    (backend "auto": torch's or oneDNN's kernels; compile "auto": torch.compile after 5 minutes)
    are fixed, to torch's kernels and no compile unless asked for by name, so that every run of
    one output computes each score the same way, to the last bit."""
    backend = load_args.get("backend") or os.environ.get("NSPZERO_BACKEND", "auto")
    compile_ = load_args.get("compile", False)
    return {**load_args, "backend": "torch" if backend == "auto" else backend,
            "compile": False if compile_ == "auto" else compile_}


class Progress:
    """The progress folder of one output, locked while in use (a context manager). `load` and
    `save` read and write one shard; `finish` removes the folder once the output is complete."""

    def __init__(self, output: str | os.PathLike, parts: dict[str, str], shard_rows: int = SHARD_ROWS) -> None:
        self.output = Path(output)
        self.folder = progress_folder(output)
        self.parts = dict(parts)
        self.shard_rows = shard_rows
        self.resumed = 0           # shards read back rather than scored
        self._fd: Optional[int] = None

    # ---- the lock and the manifest -----------------------------------------------------------------
    def __enter__(self) -> "Progress":
        self._lock()
        try:
            self._check_manifest()
        except BaseException:
            self._unlock()
            raise
        return self

    def __exit__(self, *exc: Any) -> None:
        self._unlock()

    def _lock(self) -> None:
        """flock the folder's lock file (`folders.locked_file`); a second run is refused at once. The
        kernel frees the lock of a run that died (kill -9 too), so a stale lock is simply taken. A
        folder removed by a run that finished while this one opened it is made again."""
        try:
            import fcntl  # noqa: F401 - locked_file's
        except ImportError:  # pragma: no cover - not POSIX
            raise UsageError("--resume needs POSIX file locks (Linux, macOS); run without --resume") from None
        path = self.folder / LOCK
        while True:
            try:
                self.folder.mkdir(exist_ok=True)
                fd = locked_file(path, wait=False)
                break
            except FileNotFoundError:  # the folder went (its run finished) after our mkdir: again
                continue
            except BlockingIOError:
                try:
                    holder = path.read_text(encoding="ascii", errors="replace").strip()
                except OSError:
                    holder = ""
                raise DataError(f"another run{f' (pid {holder})' if holder.isdigit() else ''} is writing "
                                f"{self.output} with --resume; wait for it to end, or stop it first") from None
            except OSError as exc:
                raise DataError(f"cannot keep --resume progress in {self.folder}: {failure_reason(exc)}") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode("ascii"), 0)
        self._fd = fd

    def _unlock(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def _check_manifest(self) -> None:
        """A new folder gets this run's manifest; an existing one must match it part by part."""
        path = self.folder / MANIFEST
        wanted = {"version": FORMAT_VERSION, "shard_rows": self.shard_rows, "fingerprint": self.parts}
        try:
            saved = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            saved = None
        except (OSError, ValueError) as exc:
            raise DataError(f"{path} is unreadable ({failure_reason(exc)}); delete {self.folder} to start "
                            f"over") from None
        if saved is None:
            self._write(lambda: atomic_write_json(path, wanted))
            return
        if not isinstance(saved, dict) or saved.get("version") != FORMAT_VERSION or \
                not isinstance(saved.get("fingerprint"), dict) or not isinstance(saved.get("shard_rows"), int):
            raise DataError(f"{path} was not written by this version of nspzero; delete {self.folder} to start over")
        changed = [PARTS[k] for k in PARTS if saved["fingerprint"].get(k) != self.parts.get(k)]
        if changed:
            raise DataError(f"--resume: {self.output} was begun with another {' and '.join(changed)}; its progress "
                            f"cannot be mixed with this run's: rerun with the same ones, or delete {self.folder} to "
                            f"start over")
        self.shard_rows = saved["shard_rows"]

    # ---- shards ------------------------------------------------------------------------------------
    def shard_path(self, index: int) -> Path:
        return self.folder / f"shard-{index:06d}.jsonl"

    def load(self, index: int, texts: Sequence[str]) -> Optional[list[dict]]:
        """Shard `index`'s results when it was saved for exactly these `texts`; None otherwise (never
        saved, or unreadable: its rows are scored again, with a warning)."""
        path = self.shard_path(index)
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise DataError(f"cannot read {path}: {failure_reason(exc)}") from None
        try:
            results = [json.loads(line) for line in raw.decode("utf-8").splitlines()]
            ok = len(results) == len(texts) and all(isinstance(r, dict) and r.get("text") == t
                                                     for r, t in zip(results, texts))
        except (ValueError, UnicodeDecodeError):
            ok = False
        if not ok:
            log.warning("%s does not hold the results of its %d rows; they are scored again", path, len(texts))
            path.unlink(missing_ok=True)
            return None
        return results

    def pending(self, texts: Sequence[str]) -> list[int]:
        """The shards of `texts` (all rows, in order) still to score: an engine that plans its work
        ahead (Ray) sends only their rows. An unreadable shard is removed here (and so counts)."""
        size = self.shard_rows
        return [i for i in range((len(texts) + size - 1) // size)
                if not self.shard_path(i).exists() or self.load(i, texts[i * size:(i + 1) * size]) is None]

    def save(self, index: int, results: Sequence[dict]) -> None:
        """Shard `index`, atomically: the shards saved before stay valid whatever happens here."""
        text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in results).encode("utf-8")
        self._write(lambda: atomic_write(self.shard_path(index), lambda handle: handle.write(text)))

    def _write(self, write: Callable[[], Any]) -> None:
        try:
            write()
        except OSError as exc:
            full = " (the disk is full)" if exc.errno in (errno.ENOSPC, errno.EDQUOT) else ""
            reason = os.strerror(exc.errno) if exc.errno else failure_reason(exc)  # not io's wording for one file
            raise DataError(f"cannot save --resume progress in {self.folder}: {reason}{full}; the "
                            f"shards saved before are kept: free some space and rerun with --resume") from None

    def finish(self) -> None:
        """The output is in place: the progress is no longer needed. Removed under the lock (a run
        waiting on the removed lock file sees it gone and starts a new folder)."""
        shutil.rmtree(self.folder, ignore_errors=True)
        self._unlock()


def stream(rows: Iterable[T], score: Callable[[list[T]], Sequence[dict]],
           emit: Callable[[list[T], Sequence[dict]], None], progress: Optional[Progress] = None,
           text: Callable[[T], str] = lambda row: row.text, chunk_rows: int = SHARD_ROWS) -> int:
    """The one streaming loop of a file classification: `rows` in chunks of `chunk_rows` (a
    progress's shard size when resuming) → each chunk's result dicts (`score(chunk)`, or the saved
    shard) → `emit(chunk, results)`, in input order. Returns the rows seen."""
    from .pipeline import chunked

    size = progress.shard_rows if progress is not None else chunk_rows
    seen = 0
    for index, chunk in enumerate(chunked(rows, lambda _: 1, size)):
        results = progress.load(index, [text(r) for r in chunk]) if progress is not None else None
        if results is not None:
            progress.resumed += 1
        else:
            results = list(score(chunk))
            if progress is not None:
                progress.save(index, results)
        emit(chunk, results)
        seen += len(chunk)
    return seen

"""Reading inputs and writing outputs without surprises.

Readers name the file and line (or byte offset) of anything malformed. Writers either replace a
file atomically (temp file + rename) or append whole lines with a flush, so an interrupted run
leaves the old file or a valid prefix — never a half-written line.
"""
from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import IO, Any, Callable, Iterable, Iterator, Optional, Sequence

from .errors import DataError, UsageError

INPUT_FORMATS = ("txt", "jsonl", "csv")
CSV_FIELD_LIMIT = 2**31 - 1  # csv's default (131072 characters) would reject long texts


def _decode(raw: bytes, path: str, line_no: int, offset: int) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}:{line_no}: not valid UTF-8 at byte offset {offset + exc.start} "
                        f"({exc.reason}); re-encode the file as UTF-8 (e.g. iconv -f GBK -t UTF-8)") from None


def iter_lines(path: str, stream: Optional[IO[bytes]] = None) -> Iterator[tuple[int, str]]:
    """(1-based line number, decoded line without its newline) for a file, or a binary stream."""
    if stream is None:
        if not os.path.exists(path):
            raise DataError(f"input file {path!r} does not exist")
        if os.path.isdir(path):
            raise DataError(f"input {path!r} is a directory, not a file")
    try:
        handle = stream if stream is not None else open(path, "rb")
    except OSError as exc:
        raise DataError(f"cannot read input file {path!r}: {exc.strerror or exc}") from None
    try:
        offset = 0
        for line_no, raw in enumerate(handle, start=1):
            text = _decode(raw, path, line_no, offset)
            offset += len(raw)
            if line_no == 1 and text.startswith("\ufeff"):
                text = text[1:]
            yield line_no, text.rstrip("\r\n")
    finally:
        if stream is None:
            handle.close()


def iter_jsonl(path: str, stream: Optional[IO[bytes]] = None) -> Iterator[tuple[int, dict]]:
    """(line number, object) for each non-blank line of a JSON-lines file."""
    for line_no, line in iter_lines(path, stream):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(f"{path}:{line_no}: malformed JSON ({exc.msg} at column {exc.colno}); "
                            f"each line must be one JSON object") from None
        except RecursionError:
            raise DataError(f"{path}:{line_no}: JSON nested too deeply; each line must be one JSON object") from None
        if not isinstance(obj, dict):
            raise DataError(f"{path}:{line_no}: expected a JSON object, got {type(obj).__name__}")
        yield line_no, obj


def field_text(obj: dict, field: str, path: str, line_no: int) -> str:
    """The string in `obj[field]`, or a DataError naming file:line and the fields that exist."""
    if field not in obj:
        raise DataError(f"{path}:{line_no}: no field {field!r} (fields: {', '.join(map(str, obj)) or 'none'}); "
                        f"choose the text field with --text-field")
    value = obj[field]
    if not isinstance(value, str):
        raise DataError(f"{path}:{line_no}: field {field!r} is {type(value).__name__}, not a string")
    if not value.strip():
        raise DataError(f"{path}:{line_no}: field {field!r} is empty; remove or fill that line")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:  # a JSON escape such as \\ud800 gives a lone surrogate
        raise DataError(f"{path}:{line_no}: field {field!r} is not valid Unicode (lone surrogate "
                        f"{value[exc.start]!r} at character {exc.start})") from None
    return value


def detect_format(path: str, fmt: Optional[str]) -> str:
    if fmt is not None:
        if fmt not in INPUT_FORMATS:
            raise UsageError(f"input format must be one of {', '.join(INPUT_FORMATS)}, got {fmt!r}")
        return fmt
    if path == "-":
        return "txt"
    suffix = Path(path).suffix.lower().lstrip(".")
    if suffix in ("jsonl", "json", "ndjson"):
        return "jsonl"
    if suffix in ("csv", "tsv"):
        return "csv"
    return "txt"


def iter_records(path: str, fmt: Optional[str] = None, stream: Optional[IO[bytes]] = None,
                 required: Sequence[str] = ()) -> Iterator[tuple[int, dict]]:
    """(line number, record) from a .jsonl (one object per line) or .csv/.tsv file (a header row;
    the line number is the row's last physical line). CSV columns in `required` are checked first."""
    fmt = detect_format(path, fmt)
    if fmt == "jsonl":
        yield from iter_jsonl(path, stream)
        return
    if fmt != "csv":
        raise DataError(f"{path}: expected a .jsonl or .csv file of records")
    lines = (line for _, line in iter_lines(path, stream))
    delimiter = "\t" if path.lower().endswith(".tsv") else ","
    if csv.field_size_limit() < CSV_FIELD_LIMIT:  # long texts are fine (they are truncated later)
        csv.field_size_limit(CSV_FIELD_LIMIT)
    reader = csv.DictReader(lines, delimiter=delimiter)
    try:
        header = reader.fieldnames or []
        for column in required:
            if column not in header:
                raise DataError(f"{path}:1: CSV has no column {column!r} (columns: {', '.join(header) or 'none'}); "
                                f"choose it with --text-field")
        for row in reader:
            yield reader.line_num, row
    except csv.Error as exc:
        raise DataError(f"{path}:{reader.reader.line_num}: malformed CSV ({exc})") from None


def iter_texts(path: str, fmt: Optional[str] = None, text_field: str = "text") -> Iterator[str]:
    """Texts from a .txt (one per non-blank line), .jsonl (field `text_field`) or .csv file, or
    stdin when `path` is '-'. Streams: nothing is read before it is needed."""
    fmt = detect_format(path, fmt)
    stream = sys.stdin.buffer if path == "-" else None
    name = "<stdin>" if path == "-" else path
    if fmt == "txt":
        for _, line in iter_lines(name, stream):
            if line.strip():
                yield line
        return
    for line_no, record in iter_records(name, fmt, stream, required=(text_field,) if fmt == "csv" else ()):
        yield field_text(record, text_field, name, line_no)


def atomic_write(path: str | os.PathLike, fill: Callable[[IO[bytes]], Any]) -> Path:
    """Write `path` through a temp file in the same folder (`fill` writes the bytes), then rename
    it into place: readers see the old file or the new one, and a failure leaves no temp file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix="." + path.name + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            fill(handle)
            handle.flush()
            os.fsync(handle.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; outputs get the usual permissions
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Replace `path` with `text` (UTF-8) atomically."""
    atomic_write(path, lambda handle: handle.write(text.encode("utf-8")))


def atomic_write_json(path: str | os.PathLike, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, ensure_ascii=False, indent=2) + "\n")


def atomic_write_jsonl(path: str | os.PathLike, rows: Iterable[Any]) -> None:
    atomic_write_text(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))


class LineWriter:
    """Appends one complete line per record and flushes it, for streaming outputs."""

    def __init__(self, handle: IO[str]) -> None:
        self.handle = handle

    def write(self, line: str) -> None:
        self.handle.write(line if line.endswith("\n") else line + "\n")
        self.handle.flush()


def csv_line(values: Iterable[Any]) -> str:
    """One CSV record as a string (quoted as needed), newline included."""
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow(list(values))
    return buf.getvalue()

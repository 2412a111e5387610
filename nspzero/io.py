"""The one reader and the one writer: every command, engine and front door reads and writes here.

Reader: .txt (a text per non-blank line), .jsonl/.json/.ndjson (an object per line, or one array of
objects: what a .json output holds, so an output reads back as an input), .csv/.tsv
(a header row; quoted newlines kept), .parquet, and stdin ("-"). Every data error names
file:line. Every record keeps all its fields, so outputs can carry the input's other columns.

Writer: the format follows the output's suffix (.jsonl, .json, .csv, .parquet); an output file
is written to a temp file beside it and renamed into place only when complete, so a failure
(bad row, Ctrl-C, full disk, scoring error) leaves the old file byte for byte and no temp file.
CSV and Parquet carry every field of every row (the union of columns, mixed types widened).
"""
from __future__ import annotations

import contextlib
import csv
import json
import os
import pickle
import re
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import IO, Any, Callable, Iterator, Optional, Sequence

from .display import spreadsheet_safe
from .errors import DataError, NSPZeroError, UsageError, shown
from .extras import install_hint
from .folders import clean_leftovers, current_umask, temp_prefix

INPUT_SUFFIXES = {".txt": "txt", ".jsonl": "jsonl", ".json": "jsonl", ".ndjson": "jsonl", ".csv": "csv",
                  ".tsv": "tsv", ".parquet": "parquet"}
INPUT_FORMATS = ("txt", "jsonl", "csv", "tsv", "parquet")
OUTPUT_SUFFIXES = {".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "json", ".csv": "csv", ".parquet": "parquet"}
OUTPUT_FORMATS = ("jsonl", "json", "csv", "parquet", "table")
STDOUT_FORMATS = ("jsonl", "json", "csv", "table")
CSV_FIELD_LIMIT = 2**31 - 1  # csv's default (131072 characters) would reject long texts
RESULT_FIELDS = ("text", "label", "scores", "entity")
CLASSIFY_COLUMNS = ("text", "label", "scores")  # what a classification output has, even with no rows
LABELS_FIELD = "labels"  # an input record's own candidate labels (per-row labels)
PARQUET_ROWS_PER_GROUP = 4096
INPUT_PREFIX = "input_"      # an input column whose name an output field takes is carried as input_<name>


# ---- reading -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Record:
    """One input record: where it is ("file:line") and all its fields."""

    where: str
    fields: dict[str, Any]
    line: int = 0      # the physical line (JSONL, CSV: where the row ends) or row number (Parquet)


@dataclass(frozen=True)
class TextRow:
    """One text to classify, where it came from, and the record's other fields (carried to the output)."""

    where: str
    text: str
    extra: dict[str, Any] = field(default_factory=dict)
    labels: Any = None   # the record's own labels (its LABELS_FIELD), as read; None: the request's apply


def input_format(path: str, fmt: Optional[str] = None) -> str:
    """The reader for `path`: `fmt` if given, else from the suffix (stdin and unknown suffixes: txt)."""
    if fmt is not None:
        if fmt not in INPUT_FORMATS:
            raise UsageError(f"input format must be one of {', '.join(INPUT_FORMATS)}, got {shown(fmt)}")
        return fmt
    if path == "-":
        return "txt"
    return INPUT_SUFFIXES.get(Path(path).suffix.lower(), "txt")


def _decode(raw: bytes, path: str, line_no: int, offset: int) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}:{line_no}: not valid UTF-8 at byte offset {offset + exc.start} "
                        f"({exc.reason}); re-encode the file as UTF-8 (e.g. iconv -f GBK -t UTF-8)") from None


def _open_input(path: str) -> IO[bytes]:
    if path == "-":
        return sys.stdin.buffer
    if not os.path.exists(path):
        raise DataError(f"input file {path!r} does not exist")
    if os.path.isdir(path):
        raise DataError(f"input {path!r} is a directory, not a file")
    try:
        return open(path, "rb")
    except OSError as exc:
        raise DataError(f"cannot read input file {path!r}: {exc.strerror or exc}") from None


def iter_lines(path: str, keep_ends: bool = False) -> Iterator[tuple[int, str]]:
    """(1-based line number, decoded line) of a file or stdin ("-"); a leading BOM is dropped."""
    handle = _open_input(path)
    name = _display(path)
    try:
        offset = 0
        for line_no, raw in enumerate(handle, start=1):
            text = _decode(raw, name, line_no, offset)
            offset += len(raw)
            if line_no == 1 and text.startswith("\ufeff"):
                text = text[1:]
            yield line_no, text if keep_ends else text.rstrip("\r\n")
    finally:
        if handle is not sys.stdin.buffer:
            handle.close()


def _display(path: str) -> str:
    return "<stdin>" if path == "-" else path


def _jsonl(path: str) -> Iterator[Record]:
    name = _display(path)
    lines = iter_lines(path, keep_ends=True)
    first = True
    for line_no, line in lines:
        if not line.strip():
            continue
        if first and line.lstrip().startswith("["):  # one array of objects, as `--output x.json` writes it
            yield from _json_array(name, line_no, line + "".join(rest for _, rest in lines))
            return
        first = False
        obj = _decoded(lambda: json.loads(line.rstrip("\r\n")), name, line_no, line_no, "each line must be one JSON object")
        if not isinstance(obj, dict):
            raise DataError(f"{name}:{line_no}: expected a JSON object, got {type(obj).__name__}")
        yield Record(f"{name}:{line_no}", obj, line_no)


def _decoded(decode: Callable[[], Any], name: str, line: int, first_line: int, rule: str) -> Any:
    """`decode()`, its JSON errors as one-line DataErrors naming `name:line` (a syntax error its own
    line, counted from the text's `first_line`) and saying the file's `rule`."""
    try:
        return decode()
    except json.JSONDecodeError as exc:
        raise DataError(f"{name}:{first_line + exc.lineno - 1}: malformed JSON ({exc.msg} at column {exc.colno}); "
                        f"{rule}") from None
    except RecursionError:
        raise DataError(f"{name}:{line}: JSON nested too deeply; {rule}") from None
    except ValueError as exc:  # e.g. an integer with more digits than Python converts
        raise DataError(f"{name}:{line}: unreadable JSON value ({str(exc).splitlines()[0]})") from None


def _json_array(name: str, first_line: int, text: str) -> Iterator[Record]:
    """The objects of one JSON array (the whole rest of the file), each named by the line it starts on."""
    decoder = json.JSONDecoder()
    pos = text.index("[") + 1
    line, counted, after = first_line, 0, "["   # after: what came last ("[", "," or an object)
    while True:
        while pos < len(text) and text[pos].isspace():
            pos += 1
        line += text.count("\n", counted, pos)
        counted = pos
        if pos == len(text):
            raise DataError(f"{name}:{line}: the JSON array is not closed (no ']'); the file may be cut short")
        char = text[pos]
        if after != "," and char == "]":
            if text[pos + 1:].strip():
                raise DataError(f"{name}:{line}: text after the JSON array's closing ']'; a .json input holds one array")
            return
        if after == "object":
            if char != ",":
                raise DataError(f"{name}:{line}: expected ',' or ']' after the array's object, got {char!r}")
            pos, after = pos + 1, ","
            continue
        obj, pos = _decoded(lambda: decoder.raw_decode(text, pos), name, line, first_line,
                            "a .json input holds one array of objects")
        if not isinstance(obj, dict):
            raise DataError(f"{name}:{line}: expected a JSON object in the array, got {type(obj).__name__}")
        yield Record(f"{name}:{line}", obj, line)
        after = "object"


def _csv(path: str, delimiter: str, required: Sequence[str] = ()) -> Iterator[Record]:
    """Rows of a CSV/TSV with a header; lines are read with their newlines so that a quoted field
    keeps its line breaks. A row's "line" is the physical line it ends on."""
    name = _display(path)
    if csv.field_size_limit() < CSV_FIELD_LIMIT:  # long texts are fine (they are truncated later)
        csv.field_size_limit(CSV_FIELD_LIMIT)
    reader = csv.reader((line for _, line in iter_lines(path, keep_ends=True)), delimiter=delimiter)
    try:
        header = next(reader, None)
        if header is None:
            raise DataError(f"{name}: empty CSV file; the first line must be a header naming the columns")
        for column in required:
            if column not in header:
                raise DataError(f"{name}:1: CSV has no column {shown(column)} (columns: {', '.join(header) or 'none'}); "
                                f"choose it with --text-field")
        twice = sorted({c for c in header if header.count(c) > 1})
        if twice:
            raise DataError(f"{name}:1: column(s) {', '.join(map(repr, twice))} appear more than once in the "
                            f"header; rename them so each column has one name")
        for row in reader:
            if not row:
                continue
            if len(row) > len(header):
                raise DataError(f"{name}:{reader.line_num}: {len(row)} fields but the header has {len(header)}; "
                                f"quote fields that contain {delimiter!r}")
            yield Record(f"{name}:{reader.line_num}", dict(zip(header, row + [""] * (len(header) - len(row)))),
                         reader.line_num)
    except csv.Error as exc:
        raise DataError(f"{name}:{reader.line_num}: malformed CSV ({exc})") from None


def _parquet(path: str) -> Iterator[Record]:
    if path == "-":
        raise UsageError("Parquet cannot be read from stdin; pass the file's path")
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise UsageError(f"reading .parquet needs pyarrow: {install_hint('parquet')} (or pip install pyarrow)") from None
    _open_input(path).close()
    try:
        parquet = pq.ParquetFile(path)
        row = 0
        for batch in parquet.iter_batches():
            for values in batch.to_pylist():
                row += 1
                yield Record(f"{path}:row {row}", values, row)
    except (OSError, ValueError) as exc:  # pyarrow's ArrowInvalid is a ValueError
        raise DataError(f"{path}: not a readable Parquet file ({str(exc).splitlines()[0]})") from None


def read_records(path: str, fmt: Optional[str] = None, required: Sequence[str] = ()) -> Iterator[Record]:
    """Every record of a .jsonl/.csv/.tsv/.parquet file (or stdin), streamed, with its file:line.
    CSV columns in `required` are checked on the header line."""
    fmt = input_format(path, fmt)
    if fmt == "jsonl":
        return _jsonl(path)
    if fmt in ("csv", "tsv"):
        return _csv(path, "\t" if fmt == "tsv" else ",", required)
    if fmt == "parquet":
        return _parquet(path)
    raise UsageError(f"{_display(path)}: expected a file of records (.jsonl, .csv, .tsv or .parquet), got {fmt}")


def field_text(record: Record, text_field: str) -> str:
    """The text in `record`'s `text_field`, checked by the one text rule; a DataError naming file:line."""
    from .request import check_text

    if text_field not in record.fields:
        raise DataError(f"{record.where}: no field {shown(text_field)} (fields: {', '.join(map(str, record.fields)) or 'none'}); "
                        f"choose the text field with --text-field")
    try:
        return check_text(record.fields[text_field], f"field {shown(text_field)}")
    except UsageError as exc:
        raise DataError(f"{record.where}: {exc}") from None


def read_texts(path: str, fmt: Optional[str] = None, text_field: str = "text",
               labels_field: Optional[str] = LABELS_FIELD) -> Iterator[TextRow]:
    """Texts to classify: a .txt line each (blank lines skipped) or the `text_field` of each record,
    with the record's own labels (its `labels_field`, if it has one) and its other fields.
    Streams: nothing is read before it is needed."""
    fmt = input_format(path, fmt)
    if fmt == "txt":
        from .request import check_text

        for line_no, line in iter_lines(path):
            if line.strip():
                where = f"{_display(path)}:{line_no}"
                try:
                    yield TextRow(where, check_text(line, "the line"))
                except UsageError as exc:
                    raise DataError(f"{where}: {exc}") from None
        return
    for record in read_records(path, fmt, required=(text_field,)):
        text = field_text(record, text_field)
        yield TextRow(record.where, text, {k: v for k, v in record.fields.items() if k not in (text_field, labels_field)},
                      record.fields.get(labels_field) if labels_field is not None else None)


# ---- writing -------------------------------------------------------------------------------------
@contextlib.contextmanager
def atomic_file(path: str | os.PathLike) -> Iterator[IO[bytes]]:
    """A binary handle on a temp file beside `path`, renamed onto `path` when the block ends
    normally: readers see the old file or the new one; a failure leaves the old file and no temp."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        clean_leftovers(path, once=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=temp_prefix(path, "writing"), suffix=".tmp")
    except OSError as exc:
        raise DataError(f"cannot write {str(path)!r}: {exc.strerror or exc}") from None
    try:  # an OSError here (full disk, I/O error) stays an OSError, with the path and a reassurance added
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o666 & ~current_umask())  # mkstemp makes 0600; outputs get the usual permissions
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(exc, OSError) and not isinstance(exc, NSPZeroError):
            raise OSError(exc.errno, f"cannot write {str(path)!r}: {exc.strerror or exc}; the previous file "
                                     f"(if any) is unchanged") from None
        raise


def atomic_write(path: str | os.PathLike, fill: Callable[[IO[bytes]], Any]) -> Path:
    """Write `path` atomically; `fill(handle)` writes the bytes."""
    with atomic_file(path) as handle:
        fill(handle)
    return Path(path)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Replace `path` with `text` (UTF-8) atomically."""
    atomic_write(path, lambda handle: handle.write(text.encode("utf-8")))


def atomic_write_json(path: str | os.PathLike, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, ensure_ascii=False, indent=2) + "\n")


def atomic_write_jsonl(path: str | os.PathLike, rows: Sequence[Any]) -> None:
    atomic_write_text(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))


def output_format(output: Optional[str], fmt: Optional[str] = None) -> str:
    """The format of an output: a file's suffix decides (`fmt` may only confirm it); stdout takes
    `fmt` (default jsonl). Contradictions are usage errors, before anything runs."""
    if fmt is not None and fmt not in OUTPUT_FORMATS:
        raise UsageError(f"--format must be one of {', '.join(STDOUT_FORMATS)} (stdout) or parquet (with --output "
                         f"FILE.parquet), got {shown(fmt)}")
    if output is None or output == "-":
        if fmt == "parquet":
            raise UsageError("--format parquet writes a file; add --output FILE.parquet")
        return fmt or "jsonl"
    suffix = Path(output).suffix.lower()
    by_suffix = OUTPUT_SUFFIXES.get(suffix)
    if by_suffix is None:
        raise UsageError(f"--output {output!r}: the suffix picks the format; use .jsonl, .json, .csv or .parquet "
                         f"(got {shown(suffix or 'no suffix')})")
    if fmt is not None and fmt != by_suffix:
        raise UsageError(f"--format {fmt} contradicts --output {output!r}, which writes {by_suffix}; "
                         f"drop --format or change the suffix")
    return by_suffix


def check_output(output: Optional[str], inputs: Sequence[Optional[str]] = ()) -> None:
    """Fail before a model loads when `output` cannot be written or is one of the `inputs` (the same
    file by path, symlink or hard link; for an input folder such as a model's, a file in it):
    writing it would destroy the data being read."""
    if output is None or output == "-":
        return
    target = Path(output)
    if target.is_dir():
        raise DataError(f"cannot write --output {output!r}: Is a directory; give a file name")
    for source in inputs:
        if not source or source == "-" or not target.exists() or not os.path.exists(source):
            continue
        if os.path.samefile(target, source) or (os.path.isdir(source) and
                                                target.resolve().is_relative_to(Path(source).resolve())):
            what = "in the input folder" if os.path.isdir(source) else "the input file"
            raise UsageError(f"--output {output!r} is {what} {source!r}; write the results elsewhere")
    parent = target.parent
    if not parent.is_dir():
        what = "is a file, not a folder" if parent.exists() else "does not exist"
        raise DataError(f"cannot write --output {output!r}: folder {str(parent)!r} {what}; create it first")
    if not os.access(parent, os.W_OK):
        raise DataError(f"cannot write --output {output!r}: folder {str(parent)!r} is not writable")


def carried(extra: dict[str, Any]) -> dict[str, Any]:
    """An input record's other fields as output columns; names that an output field takes get INPUT_PREFIX."""
    return {(INPUT_PREFIX + k if k in RESULT_FIELDS else k): v for k, v in extra.items()}


def output_columns(request, fmt: str, own_labels: bool = False) -> Optional[tuple[str, ...]]:
    """The labels whose scores become one CSV column each: the request's, when every row has them
    all (no per-row labels, no top-k); else None and the scores stay one JSON column."""
    if fmt != "csv" or request.label_set is None or request.top_k is not None or own_labels:
        return None
    return request.labels


def result_row(result: dict[str, Any], extra: dict[str, Any], fmt: str,
               labels: Optional[Sequence[str]] = None) -> dict[str, Any]:
    """An output row: the result's fields, then the input record's other fields. For CSV, a
    classification's scores become one column per label (in `labels` order), so rows stay flat."""
    row = dict(result)
    if fmt == "csv" and labels is not None and isinstance(row.get("scores"), dict):
        scores = row.pop("scores")
        row.update({label: scores[label] for label in labels})
    row.update(carried(extra))
    return row


_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")


def _cell(value: Any, safe: bool = True) -> Any:
    """A CSV cell: lists joined by '|' (multi-label), mappings as JSON, floats to 6 places. With `safe`,
    a text a spreadsheet would run as a formula gets a leading apostrophe (`display.spreadsheet_safe`);
    a text that is a plain number ("-5", "+1.5e3") is not a formula and stays as it is."""
    if isinstance(value, float):
        return f"{value:.6f}"
    if isinstance(value, (list, tuple)):
        value = "|".join(map(str, value))
    elif isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False)
    if safe and isinstance(value, str) and not _NUMBER.fullmatch(value):
        return spreadsheet_safe(value)
    return value


def _as_text(value: Any) -> Any:
    """A value of a column that holds texts beside other types, as a text (None stays a null)."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, (bool, int, float, list, tuple, dict)):
        return json.dumps(value, ensure_ascii=False, default=str)
    return str(value)


class _Spool:
    """Rows held in an unnamed temp file (pickled, in order) until every row's columns are known: a CSV
    header and a Parquet schema must name every column of every row, also one that first appears in
    the last row. The file is unlinked at once, so a killed run leaves nothing behind."""

    def __init__(self, near: Optional[str]) -> None:
        folder = str(Path(near).parent) if near is not None else None
        try:
            self.file = tempfile.TemporaryFile(dir=folder)
        except OSError as exc:
            raise DataError(f"cannot write a temp file in {folder or tempfile.gettempdir()!r}: "
                            f"{exc.strerror or exc}") from None

    def add(self, item: Any) -> None:
        pickle.dump(item, self.file, protocol=pickle.HIGHEST_PROTOCOL)

    def __iter__(self) -> Iterator[Any]:
        self.file.seek(0)
        while True:
            try:
                yield pickle.load(self.file)
            except EOFError:
                return

    def close(self) -> None:
        self.file.close()


def _arrow_type(values: list[Any]) -> Any:
    """The Arrow type pyarrow infers for `values`, or None when they do not share one (an int beside a
    string, an int too big for int64): such a column is written as text."""
    import pyarrow as pa

    try:
        return pa.array(values).type
    except (pa.ArrowException, TypeError, ValueError, OverflowError):
        return None


def _widest(types: list[Any]) -> Any:
    """One Arrow type that holds every group's values: int64 with float64 gives float64, null takes the
    other type; types that do not widen into each other (int and string) give string."""
    import pyarrow as pa

    if any(t is None for t in types):
        return pa.string()
    known = [t for t in types if not pa.types.is_null(t)]
    if not known:
        return pa.string()
    try:
        return pa.unify_schemas([pa.schema([("c", t)]) for t in known], promote_options="permissive").field("c").type
    except (pa.ArrowException, TypeError, ValueError):
        return pa.string()


class RowWriter:
    """Writes result rows (dicts) as JSON lines, a JSON array, CSV or Parquet, to stdout or to a file
    (atomic: complete or not at all). Use as a context manager. JSON lines stream, a line as each row
    comes; CSV and Parquet are held in a temp file until the end, because their header (schema) holds
    every column of every row: a field that first appears in a later row is a column too, and a
    column whose rows mix types (an int beside a text) is widened (to float, else to text), never
    dropped or refused. `columns`: the columns an output without rows still has (Parquet).
    `raw_csv`: CSV cells as they are (by default a text that would run as a spreadsheet formula gets
    a leading apostrophe, `display.spreadsheet_safe`)."""

    def __init__(self, output: Optional[str], fmt: str, columns: Sequence[str] = ("text",),
                 raw_csv: bool = False) -> None:
        self.output = None if output in (None, "-") else output
        self.fmt = fmt
        self.empty_columns = list(columns)  # the columns of an output with no rows
        self.raw_csv = raw_csv
        self.rows = 0
        self._stack = contextlib.ExitStack()
        self._handle: Optional[IO[bytes]] = None
        self._spool: Optional[_Spool] = None
        self._columns: dict[str, None] = {}       # every column seen, in order of first appearance
        self._group_types: list[dict[str, Any]] = []  # Parquet: each row group's inferred type per column
        self._buffer: list[Any] = []  # rows held back: a JSON array's, or Parquet's next row group

    def __enter__(self) -> "RowWriter":
        if self.output is not None:
            self._handle = self._stack.enter_context(atomic_file(self.output))
        else:
            self._handle = sys.stdout.buffer if hasattr(sys.stdout, "buffer") else None
        if self.fmt in ("csv", "parquet"):
            self._spool = _Spool(self.output)
            self._stack.callback(self._spool.close)
        return self

    def _emit(self, text: str) -> None:
        if self._handle is None:  # a text-only stdout (e.g. captured in tests)
            sys.stdout.write(text)
            sys.stdout.flush()
            return
        self._handle.write(text.encode("utf-8"))
        if self.output is None:
            self._handle.flush()

    def write(self, row: dict[str, Any]) -> None:
        self.rows += 1
        if self.fmt == "jsonl":
            self._emit(json.dumps(row, ensure_ascii=False, default=str) + "\n")
        elif self.fmt == "json":
            self._buffer.append(row)
        elif self.fmt == "csv":
            self._columns.update(dict.fromkeys(row))
            self._spool.add({k: _cell(v, not self.raw_csv) for k, v in row.items()})
        elif self.fmt == "parquet":
            self._columns.update(dict.fromkeys(row))
            self._buffer.append({k: json.dumps(v, ensure_ascii=False) if isinstance(v, dict) else v
                                 for k, v in row.items()})
            if len(self._buffer) >= PARQUET_ROWS_PER_GROUP:
                self._hold_group()
        else:
            raise UsageError(f"format {self.fmt!r} is not a row format")

    def _hold_group(self) -> None:
        """Parquet: note the buffered rows' type per column, then move them to the spool as one row group."""
        if not self._buffer:
            return
        self._group_types.append({c: _arrow_type([r.get(c) for r in self._buffer]) for c in self._columns})
        self._spool.add(self._buffer)
        self._buffer = []

    def _finish_csv(self) -> None:
        if not self.rows:
            return
        writer = csv.DictWriter(SimpleNamespace(write=self._emit), list(self._columns), restval="",
                                lineterminator="\n")
        writer.writeheader()
        for cells in self._spool:
            writer.writerow(cells)

    def _finish_parquet(self) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        self._hold_group()
        if not self._group_types:
            pq.write_table(pa.table({c: pa.array([], pa.string()) for c in self.empty_columns}), self._handle)
            return
        schema = pa.schema([(c, _widest([g.get(c, pa.null()) for g in self._group_types])) for c in self._columns])
        with pq.ParquetWriter(self._handle, schema) as parquet:
            for group in self._spool:
                arrays = []
                for column in schema:
                    values = [r.get(column.name) for r in group]
                    if pa.types.is_string(column.type):
                        values = [_as_text(v) for v in values]
                    arrays.append(pa.array(values, type=column.type))
                parquet.write_table(pa.Table.from_arrays(arrays, schema=schema))

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if exc_type is None:
                if self.fmt == "json":
                    self._emit(json.dumps(self._buffer, ensure_ascii=False, indent=1, default=str) + "\n")
                elif self.fmt == "csv":
                    self._finish_csv()
                elif self.fmt == "parquet":
                    self._finish_parquet()
        except BaseException:
            self._stack.__exit__(*sys.exc_info())
            raise
        self._stack.__exit__(exc_type, exc, tb)

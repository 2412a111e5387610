"""Classify a big JSONL/CSV/Parquet file on Ray Data: a thin layer over `NSPClassifier`.

Each actor of a pool loads one `NSPClassifier` and classifies batches of rows with `classify()`,
so the scores are the local ones (batch-invariant). The output keeps the input's row order and
has the shape of `nspzero classify --format jsonl`: `text`, `label`, `scores` (best first), then
the input row's other columns. It is written by the driver to a temp file and renamed into place,
so an interrupted run leaves the old output (or none), never a partial one.

Needs the optional extra: `pip install 'nspzero[ray]'` (ray[data], which brings pyarrow).
"""
from __future__ import annotations

import contextlib
import json
import logging
import os
import re
from pathlib import Path
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Iterator, Optional, Sequence, Union

from .errors import DataError, ModelError, NSPZeroError, UsageError
from .scorer import Pair
from .templates import LabelsArg

if TYPE_CHECKING:
    import numpy as np

log = logging.getLogger("nspzero")

INPUT_SUFFIXES = {".jsonl": "jsonl", ".json": "jsonl", ".ndjson": "jsonl", ".csv": "csv", ".tsv": "csv",
                  ".parquet": "parquet"}
OUTPUT_SUFFIXES = {".jsonl": "jsonl", ".parquet": "parquet"}
RESULT_COLUMNS = ("text", "label", "scores")
INPUT_PREFIX = "input_"  # an input column named text/label/scores is passed through as input_<name>


def _import_ray():
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError:
        raise UsageError("Ray is not installed; the ray engine needs it: pip install 'nspzero[ray]'") from None
    return ray


def _passthrough_name(column: str) -> str:
    return INPUT_PREFIX + column if column in RESULT_COLUMNS else column


def _check_input(path: str, text_field: str) -> tuple[str, list[str]]:
    """The input's format and the columns to read as strings (the text; for JSONL every field that
    is a string in the first record, for CSV every column), so that Arrow's type inference does not
    turn "007" into 7 or a date string into a timestamp. DataErrors for a missing file or a missing
    text column (checked on the first record, before Ray starts)."""
    fmt = INPUT_SUFFIXES.get(Path(path).suffix.lower())
    if fmt is None:
        raise UsageError(f"input {path!r}: the ray engine reads .jsonl, .csv or .parquet files "
                         f"(got suffix {Path(path).suffix or 'none'!r})")
    if not os.path.exists(path):
        raise DataError(f"input file {path!r} does not exist")
    if os.path.isdir(path):
        raise DataError(f"input {path!r} is a directory, not a file")
    if fmt == "parquet":
        import pyarrow.parquet as pq

        try:
            columns = pq.read_schema(path).names
        except Exception as exc:  # pyarrow raises ArrowInvalid / OSError for non-parquet files
            raise DataError(f"{path}: not a readable Parquet file ({exc})") from None
        if text_field not in columns:
            raise DataError(f"{path}: no column {text_field!r} (columns: {', '.join(columns) or 'none'}); "
                            f"choose the text field with --text-field")
        return fmt, []
    from .io import field_text, iter_records

    for line_no, record in iter_records(path, fmt, required=(text_field,) if fmt == "csv" else ()):
        field_text(record, text_field, path, line_no)
        strings = [k for k, v in record.items() if isinstance(v, str) or fmt == "csv"]
        return fmt, [text_field] + [k for k in strings if k != text_field]
    raise DataError(f"input file {path!r} has no records")


def _scan_records(path: str, fmt: str, text_field: str) -> None:
    """Read every record on the driver with the local readers: their DataError names file:line."""
    from .io import field_text, iter_records

    for line_no, record in iter_records(path, fmt, required=(text_field,) if fmt == "csv" else ()):
        field_text(record, text_field, path, line_no)


class _ClassifyBatch:
    """Ray Data callable class: one NSPClassifier per actor, loaded in __init__."""

    def __init__(self, model: str, device: Optional[str], max_length: int, batch_size: int, dtype: str,
                 labels: Any, template: Any, placement: str, multi_label: bool, threshold: float, combine: str,
                 text_field: str, input_path: str, torch_threads: Optional[int],
                 compile: Union[bool, str] = False) -> None:
        if torch_threads:
            import torch

            torch.set_num_threads(torch_threads)
        from .classifier import NSPClassifier

        self.clf = NSPClassifier.from_pretrained(model, device=device, max_length=max_length,
                                                 batch_size=batch_size, dtype=dtype, compile=compile)
        self.args = dict(labels=labels, template=template, placement=placement, multi_label=multi_label,
                         threshold=threshold, combine=combine)
        self.text_field = text_field
        self.input_path = input_path

    def _bad_row(self, table, i: int, what: str) -> DataError:
        others = {c: table.column(c)[i].as_py() for c in table.column_names if c != self.text_field}
        shown = json.dumps(others, ensure_ascii=False, default=str)
        shown = shown if len(shown) <= 200 else shown[:200] + "…"
        return DataError(f"{self.input_path}: field {self.text_field!r} is {what} in the row with {shown}; "
                         f"remove or fill that row")

    def __call__(self, table):
        import pyarrow as pa

        texts = table.column(self.text_field).to_pylist()
        for i, t in enumerate(texts):
            if t is None:
                raise self._bad_row(table, i, "missing (null)")
            if not isinstance(t, str):
                raise self._bad_row(table, i, f"{type(t).__name__} {t!r}, not a string")
            if not t.strip():
                raise self._bad_row(table, i, "empty")
        results = self.clf.classify(texts, progress=False, **self.args) if texts else []
        columns = {
            "text": pa.array(texts, type=pa.string()),
            "label": pa.array([r.label for r in results],
                              type=pa.list_(pa.string()) if self.args["multi_label"] else pa.string()),
            # JSON keeps the best-first order of the labels and every float exactly (repr round-trips)
            "scores": pa.array([json.dumps(r.scores, ensure_ascii=False) for r in results], type=pa.string()),
        }
        for name in table.column_names:
            if name != self.text_field:
                columns[_passthrough_name(name)] = table.column(name)
        return pa.table(columns)


_ERROR_LINE = re.compile(r"^nspzero\.errors\.(UsageError|DataError|ModelError|NSPZeroError): (.+)$", re.M)
_ERRORS = {"UsageError": UsageError, "DataError": DataError, "ModelError": ModelError, "NSPZeroError": NSPZeroError}


def _unwrap(exc: BaseException) -> Optional[NSPZeroError]:
    """The NSPZeroError raised inside a Ray worker (in `classify` or an actor's __init__), as itself.

    Ray Data re-raises a worker's error as RayTaskError(UserCodeException) or ActorDiedError whose
    chained cause does not survive the trip to the driver; only the worker's traceback text does,
    whose last line is `nspzero.errors.<Class>: <message>`."""
    seen: set[int] = set()
    stack: list[Optional[BaseException]] = [exc]
    while stack:
        e = stack.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        if isinstance(e, NSPZeroError) and not _from_ray(e):
            return type(e)(_message(e))
        cause = getattr(e, "cause", None)  # ray.exceptions.RayTaskError keeps the original here (sometimes)
        stack.extend([e.__cause__, e.__context__, cause if isinstance(cause, BaseException) else None])
    matches = _ERROR_LINE.findall(str(exc))
    if matches:
        name, message = matches[-1]
        return _ERRORS[name](message.strip())
    return None


_ANY_ERROR_LINE = re.compile(r"^\s*([\w.]*(?:Error|Exception|Invalid)): (.+)$", re.M)


def _last_error_line(exc: BaseException) -> str:
    """`Class: message` of the innermost error in a Ray error's text (its worker traceback)."""
    matches = _ANY_ERROR_LINE.findall(str(exc))
    if not matches:
        return type(exc).__name__
    name, message = matches[-1]
    return f"{name.rsplit('.', 1)[-1]}: {message.strip()}"


def _from_ray(e: BaseException) -> bool:
    """Ray re-raises a worker's DataError as a class deriving from both RayTaskError and DataError,
    whose message is the whole worker traceback: such errors are unwrapped by their text."""
    return any(c.__module__.startswith("ray.") for c in type(e).__mro__)


def _reraise(exc: Exception, ray: Any, what: str, error: type = DataError, hint: str = "") -> None:
    """Turn an error out of a Ray job into one nspzero error line; returns for other errors (the
    caller re-raises them as they are)."""
    inner = _unwrap(exc)
    if inner is not None:
        raise inner from None
    if isinstance(exc, ray.exceptions.RayError):
        raise error(f"{what}: {_last_error_line(exc)}{hint}") from None


def _check_writable(output_path: str) -> None:
    """Fail before Ray starts when the output's folder cannot be created or written."""
    folder = Path(output_path).resolve().parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(f"cannot write output {output_path!r}: {exc.strerror or exc}") from None
    if not os.access(folder, os.W_OK):
        raise DataError(f"cannot write output {output_path!r}: folder {str(folder)!r} is not writable")


def _message(e: NSPZeroError) -> str:
    return str(e.args[0]) if e.args else str(e)


def _write_atomically(ds, output_path: str, out_fmt: str) -> int:
    """Stream the dataset's rows, in order, into `output_path` through `io.atomic_write` (a failed
    run leaves the old file); returns the number of rows written."""
    from .io import atomic_write

    rows = 0

    def fill(handle) -> None:
        nonlocal rows
        batches = ds.iter_batches(batch_format="pyarrow", batch_size=None)
        if out_fmt == "jsonl":
            for batch in batches:
                for row in batch.to_pylist():
                    row["scores"] = json.loads(row["scores"])
                    handle.write((json.dumps(row, ensure_ascii=False, default=str) + "\n").encode("utf-8"))
                    rows += 1
            return
        import pyarrow.parquet as pq

        writer = None
        try:
            for batch in batches:
                if batch.num_rows == 0:
                    continue
                if writer is None:
                    writer = pq.ParquetWriter(handle, batch.schema)
                writer.write_table(batch.cast(writer.schema) if batch.schema != writer.schema else batch)
                rows += batch.num_rows
            if writer is None:  # no rows: still a valid Parquet file
                import pyarrow as pa

                pq.write_table(pa.table({"text": pa.array([], pa.string()), "label": pa.array([], pa.string()),
                                         "scores": pa.array([], pa.string())}), handle)
        finally:
            if writer is not None:
                writer.close()

    try:
        atomic_write(output_path, fill)
    except OSError as exc:
        raise DataError(f"cannot write output {output_path!r}: {exc.strerror or exc}") from None
    return rows


@dataclass(frozen=True)
class ActorResources:
    """How a job's CPUs are split: the read task must keep some, or a pool of one-CPU actors under
    `ray.init(num_cpus=2)` takes every CPU and the job waits forever at 0 rows."""

    read_cpus: float
    actor_cpus: float
    actor_gpus: int
    torch_threads: int


def actor_resources(total_cpus: float, num_actors: int, device: Optional[str], read: bool = True,
                    node_cpus: Optional[float] = None) -> ActorResources:
    """With `read`, reading keeps up to one CPU (half of a small cluster); the actors share the rest
    (fractions are fine: Ray only books them), each at most what one node has, and run that many
    torch threads. `cuda` devices give each actor one GPU."""
    read_cpus = round(min(1.0, total_cpus / 2), 2) if read else 0.0
    per_actor = (total_cpus - read_cpus) / num_actors
    if node_cpus:
        per_actor = min(per_actor, node_cpus - read_cpus if node_cpus - read_cpus >= 1 else node_cpus / 2)
    per_actor = round(max(0.01, per_actor), 2)
    gpus = 1 if device is not None and str(device).startswith("cuda") else 0
    return ActorResources(read_cpus, per_actor, gpus, max(1, int(per_actor)))


def _cluster_resources(ray: Any, num_actors: int, device: Optional[str], read: bool) -> ActorResources:
    """`actor_resources` for the running cluster; a UsageError when its GPUs cannot hold the pool
    (Ray would wait for them forever)."""
    nodes = [n.get("Resources", {}) for n in ray.nodes() if n.get("Alive", True)]
    res = actor_resources(float(ray.cluster_resources().get("CPU", 1.0)), num_actors, device, read,
                          max((float(n.get("CPU", 0)) for n in nodes), default=None))
    gpus = float(ray.cluster_resources().get("GPU", 0))
    if res.actor_gpus and gpus < num_actors:
        raise UsageError(f"--device {device} gives each actor one GPU, and the Ray cluster has {gpus:g} GPUs "
                         f"for {num_actors} actors; lower --num-actors")
    return res


def actor_device(device: Optional[str]) -> str:
    """The device name for actors, resolved on the driver: inside a Ray actor its one GPU is
    always `cuda` (index 0), whatever `cuda:N` was asked for."""
    from .scorer import resolve_device

    return "cuda" if resolve_device(device).type == "cuda" else "cpu"


@contextlib.contextmanager
def ray_session(address: Optional[str] = None) -> Iterator[Any]:
    """Ray for one job, rows kept in order: joins a running Ray, or starts a local one (or connects
    to `address`) and shuts it down afterwards. Yields the `ray` module."""
    ray = _import_ray()
    started = False
    if not ray.is_initialized():
        kwargs: dict[str, Any] = {"logging_level": logging.WARNING, "log_to_driver": False}
        if address is None:
            kwargs["include_dashboard"] = False
        try:
            ray.init(address=address, **kwargs)
        except (ConnectionError, ValueError, RuntimeError) as exc:
            raise UsageError(f"cannot start or reach Ray{f' at {address!r}' if address else ''}: "
                             f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None
        started = True
    ctx = ray.data.DataContext.get_current()
    saved_order = ctx.execution_options.preserve_order
    ctx.execution_options.preserve_order = True  # rows come back in the input's order
    try:
        yield ray
    finally:
        ctx.execution_options.preserve_order = saved_order
        if started:
            ray.shutdown()


def _check_positive(**values: Any) -> None:
    for name, value in values.items():
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise UsageError(f"{name} must be a positive integer, got {value!r}")


def classify_with_ray(input_path: str, output_path: str, model: str, labels: LabelsArg,
                      template: Union[str, Sequence[str]] = "{label}", placement: str = "prefix",
                      multi_label: bool = False, threshold: float = 0.5, text_field: str = "text",
                      num_actors: int = 1, batch_size: int = 32, max_length: int = 256, dtype: str = "float32",
                      device: Optional[str] = None, ray_address: Optional[str] = None, rows_per_batch: int = 256,
                      combine: str = "mean", compile: Union[bool, str] = False) -> int:
    """Classify the `text_field` of every row of a .jsonl/.csv/.parquet file on Ray Data and write
    `output_path` (.jsonl or .parquet) in the input's row order; returns the number of rows written.

    `num_actors` actors each load `model` once (a hub name, or a directory every Ray node can read;
    nspzero must be installed on every node). `rows_per_batch` rows go to `classify()` per call,
    `batch_size` pairs per forward pass. Ray is started locally unless it is already running in this
    process or `ray_address` names a cluster (e.g. "ray://head:10001" or "auto").
    """
    from .classifier import prepare_call

    # validate everything the library can validate before Ray starts (its UsageErrors, one line each)
    prepare_call(["x"], labels, template, placement, multi_label, threshold, combine)
    _check_positive(num_actors=num_actors, rows_per_batch=rows_per_batch, batch_size=batch_size,
                    max_length=max_length)
    out_fmt = OUTPUT_SUFFIXES.get(Path(output_path).suffix.lower())
    if out_fmt is None:
        raise UsageError(f"output {output_path!r}: the ray engine writes .jsonl or .parquet files")
    if os.path.abspath(output_path) == os.path.abspath(input_path):
        raise UsageError("output must not be the input file")
    _check_writable(output_path)
    in_fmt, string_columns = _check_input(input_path, text_field)
    device = actor_device(device)
    with ray_session(ray_address) as ray:
        import pyarrow as pa

        res = _cluster_resources(ray, num_actors, device, read=True)
        read_args = {"ray_remote_args": {"num_cpus": res.read_cpus}}
        path = os.path.abspath(input_path)
        if in_fmt == "jsonl":
            # Arrow's JSON reader (which reads JSON lines), not read_json(lines=True): that one goes
            # through pandas, which turns a text "123" into the float 123.0 and an id "007" into 7.
            import pyarrow.json as pajson

            ds = ray.data.read_json(
                path, file_extensions=None, **read_args,
                parse_options=pajson.ParseOptions(explicit_schema=pa.schema([(c, pa.string()) for c in string_columns])))
        elif in_fmt == "csv":
            import pyarrow.csv as pacsv

            ds = ray.data.read_csv(
                path, file_extensions=None, **read_args,
                parse_options=pacsv.ParseOptions(delimiter="\t" if path.lower().endswith(".tsv") else ","),
                convert_options=pacsv.ConvertOptions(column_types={c: pa.string() for c in string_columns}))
        else:
            ds = ray.data.read_parquet(path, file_extensions=None, **read_args)
        ds = ds.map_batches(
            _ClassifyBatch,
            fn_constructor_kwargs=dict(model=model, device=device, max_length=max_length, batch_size=batch_size,
                                       dtype=dtype, labels=labels, template=template, placement=placement,
                                       multi_label=multi_label, threshold=threshold, combine=combine,
                                       text_field=text_field, input_path=input_path,
                                       torch_threads=res.torch_threads, compile=compile),
            batch_size=rows_per_batch, batch_format="pyarrow", compute=ray.data.ActorPoolStrategy(size=num_actors),
            num_cpus=res.actor_cpus, num_gpus=res.actor_gpus)
        try:
            return _write_atomically(ds, output_path, out_fmt)
        except Exception as exc:
            if isinstance(exc, NSPZeroError) and not _from_ray(exc):
                raise
            if _unwrap(exc) is None and isinstance(exc, ray.exceptions.RayError) and in_fmt != "parquet":
                _scan_records(input_path, in_fmt, text_field)  # e.g. a malformed line: named as file:line
            hint = ("; every line must be one JSON object, and each field must keep one type across lines"
                    if in_fmt == "jsonl" else "")
            _reraise(exc, ray, f"{input_path}: the Ray job failed", DataError, hint)
            raise


class _PairScorerActor:
    """A Ray actor holding one NSPScorer; kept alive across the harness's calls."""

    def __init__(self, model: str, device: Optional[str], max_length: int, batch_size: int, dtype: str,
                 torch_threads: int, compile: Union[bool, str] = False) -> None:
        import torch

        torch.set_num_threads(torch_threads)
        from .scorer import NSPScorer

        self.scorer = NSPScorer.from_pretrained(model, device=device, max_length=max_length,
                                                batch_size=batch_size, dtype=dtype, compile=compile)

    def score(self, chunk: int, pairs: list[Pair]) -> tuple[int, "np.ndarray"]:
        return chunk, self.scorer.score(pairs, progress=False)


class RayPairScorer:
    """`NSPScorer.score` spread over a pool of Ray actors, for the harness (`nspzero eval --engine ray`).

    Same signature and the same scores (the scorer is batch-invariant). The actors (each loading the
    model once) start on the first call and live until `close()`, so the harness's many calls (per
    task, per split) pay for the model load once. `on_batch` runs on the driver as each chunk comes
    back, so the harness's cache keeps finished work. Use it inside `ray_session()`.
    """

    def __init__(self, model: str, num_actors: int = 1, device: Optional[str] = None, max_length: int = 128,
                 batch_size: int = 32, dtype: str = "float32", rows_per_batch: int = 512,
                 compile: Union[bool, str] = False) -> None:
        _check_positive(num_actors=num_actors, rows_per_batch=rows_per_batch, batch_size=batch_size,
                        max_length=max_length)
        _import_ray()  # fail before any model is loaded
        self.model, self.num_actors, self.device = model, num_actors, actor_device(device)
        self.max_length, self.batch_size, self.dtype = max_length, batch_size, dtype
        self.rows_per_batch, self.compile = rows_per_batch, compile
        self._actors: list[Any] = []

    def __enter__(self) -> "RayPairScorer":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        """Stop the actors (a Ray started for the job stops them anyway; a shared cluster does not)."""
        if self._actors:
            ray = _import_ray()
            for actor in self._actors:
                with contextlib.suppress(Exception):
                    ray.kill(actor)
            self._actors = []

    def _pool(self):
        ray = _import_ray()
        from ray.util import ActorPool

        if not self._actors:
            res = _cluster_resources(ray, self.num_actors, self.device, read=False)
            actor_class = ray.remote(num_cpus=res.actor_cpus, num_gpus=res.actor_gpus)(_PairScorerActor)
            self._actors = [actor_class.remote(self.model, self.device, self.max_length, self.batch_size,
                                               self.dtype, res.torch_threads, self.compile)
                            for _ in range(self.num_actors)]
        return ActorPool(self._actors)

    def score(self, pairs: Sequence[Pair], progress: Optional[bool] = None,
              on_batch: Optional[Callable[[list[Pair], "np.ndarray"], None]] = None,
              desc: str = "scoring") -> "np.ndarray":
        from .scorer import score_distinct

        ray = _import_ray()
        try:
            return score_distinct(list(pairs), self._score_chunks, progress, on_batch, desc)
        except Exception as exc:
            if isinstance(exc, NSPZeroError) and not _from_ray(exc):
                raise
            self.close()
            _reraise(exc, ray, "the Ray scoring job failed", ModelError)
            raise

    def _score_chunks(self, unique: list[Pair]) -> Iterator[tuple[list[int], "np.ndarray"]]:
        """(indexes into `unique`, their scores) as the actors finish chunks of similar length (so
        each actor's batches pad little; the scorer sorts within a chunk)."""
        order = sorted(range(len(unique)), key=lambda i: len(unique[i].first) + len(unique[i].second))
        chunks = [order[i:i + self.rows_per_batch] for i in range(0, len(order), self.rows_per_batch)]
        pool = self._pool()
        for n, chunk in enumerate(chunks):
            pool.submit(lambda actor, job: actor.score.remote(*job), (n, [unique[i] for i in chunk]))
        while pool.has_next():
            n, chunk_scores = pool.get_next_unordered()
            yield chunks[n], chunk_scores

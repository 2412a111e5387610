"""The numbers behind every eval report, computed once: the HTML page, results.md and the PNG plots
only draw them, so the three can never disagree (they used to count the same matrix twice).

results.json is validated here, at the boundary, with pydantic: a malformed file (missing keys, wrong
types, NaN, out-of-range values) is one line naming the field, never a traceback or a wrong figure.
Confusion matrices come from sklearn.metrics, histograms from numpy.
"""
from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Callable, Optional, Union

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr, ValidationError, field_validator

from ..errors import DataError

MISCLASSIFIED_PER_TASK = 5
MAX_CONFUSION_CLASSES = 150          # a confusion view holds at most this many rows and columns (IFLYTEK: 119)
MAX_HISTOGRAM_LABELS = 20            # samples contrast: score panels drawn at most (FewCLUE's tasks: 2 or 3)
MAX_SCORES_SHOWN = 6                # per misclassified example (the gold label's score is always shown)
MAX_RESULTS_BYTES = 64 * 2**20      # results.json: a real one is a few KB
MAX_PREDICTIONS_BYTES = 512 * 2**20  # one <task>.predictions.jsonl (IFLYTEK with 119 scores per row: ~2 MB)
GOLD_ROLES = ("label", "answer")    # task fields that hold the gold answer: not repeated as text

Finite = Annotated[float, Field(allow_inf_nan=False)]
Fraction = Annotated[float, Field(allow_inf_nan=False, ge=0, le=1)]
Count = Annotated[int, Field(ge=0)]
Scalar = Union[StrictStr, StrictBool, StrictInt, Finite, None]
Label = Union[StrictStr, StrictBool, StrictInt, Finite]


def label_text(value: Any) -> str:
    """One spelling per label: strings as they are, anything else as JSON (true, 3), so a gold
    `true` and a label_order "true" meet in the same matrix cell."""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


class _Entry(BaseModel):
    model_config = ConfigDict(strict=True, extra="allow")


class Variant(_Entry):
    templates: list[StrictStr] = []
    combine: StrictStr = ""
    accuracy: Optional[Fraction] = None


class FewShotEntry(_Entry):
    """A task's few-shot (NSP-tuned) result; `tuned` false with a note where the paper does not tune it."""
    tuned: StrictBool = False
    note: Optional[StrictStr] = None
    accuracy: Optional[Fraction] = None
    best_epoch: Optional[Count] = None
    best_dev_accuracy: Optional[Fraction] = None
    train_examples: Optional[Count] = None


class TaskEntry(_Entry):
    accuracy: Optional[Fraction] = None
    macro_f1: Optional[Fraction] = None
    examples: Optional[Count] = None
    type: Optional[StrictStr] = None
    prompt: Optional[StrictStr] = None
    split: Optional[StrictStr] = None
    reference: Optional[Annotated[float, Field(allow_inf_nan=False, ge=0, le=100)]] = None
    dev_split: Optional[StrictStr] = None
    dev_examples: Optional[Count] = None
    pairs: Optional[Count] = None
    pairs_scored: Optional[Count] = None
    seconds: Optional[Annotated[float, Field(allow_inf_nan=False, ge=0)]] = None
    thresholds: list[Finite] = []
    label_order: list[Label] = []
    variants: dict[str, Variant] = {}
    calibrated: dict[str, Optional[Fraction]] = {}
    batched_accuracy: dict[str, Optional[Fraction]] = {}
    sample: Optional[dict[str, Any]] = None
    few_shot: Optional[FewShotEntry] = None

    @field_validator("label_order")
    @classmethod
    def _as_text(cls, value: list[Any]) -> list[str]:
        return [label_text(v) for v in value]


class Settings(_Entry):
    data_dir: Optional[StrictStr] = None
    split: Scalar = None
    max_length: Scalar = None
    dtype: Scalar = None
    device: Scalar = None
    engine: Scalar = None
    limit: Optional[Count] = None
    sample: Scalar = None
    calibration: list[StrictStr] = []


class Results(_Entry):
    """What the reports read from results.json (other keys are kept but not used)."""
    model: StrictStr = "?"
    random_weights: StrictBool = False  # a `nspzero tiny-model` folder: the report says its scores are meaningless
    config_hash: StrictStr = "?"
    versions: dict[str, Scalar] = {}
    settings: Settings = Settings()
    fewclue_score: Optional[Fraction] = None
    mean_accuracy: Optional[Fraction] = None
    tasks: dict[str, TaskEntry]


class Row(BaseModel):
    """One line of <task>.predictions.jsonl, labels spelled by label_text."""
    model_config = ConfigDict(strict=True, extra="ignore")
    index: Optional[StrictInt] = None
    gold: Label
    prediction: Optional[Label] = None
    scores: Optional[dict[str, Finite]] = None
    score: Optional[Finite] = None

    @field_validator("gold", "prediction")
    @classmethod
    def _as_text(cls, value: Any) -> Optional[str]:
        return None if value is None else label_text(value)


def one_line(exc: ValidationError) -> str:
    """The first problem of a validation error as `where: what` (never the offending value, which
    may be megabytes), plus how many more there are."""
    errors = exc.errors(include_input=False, include_url=False)
    first = errors[0]
    where = ".".join(shorten(part, 40) for part in first["loc"]) or "top level"
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{where}: {first['msg'].lower()}{more}"


def shorten(value: Any, limit: int) -> str:
    """`value` as text of at most `limit` characters (an ellipsis marks the cut)."""
    text = str(value)
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _looks_like_data(folder: Path) -> bool:
    """A FewCLUE-style data folder: sub-folders holding .json/.jsonl files (an eval folder holds results.json)."""
    try:
        return any(sub.is_dir() and sub.name != "cache" and any(sub.glob("*.json*")) for sub in folder.iterdir())
    except OSError:
        return False


def read_results(out_dir: str | os.PathLike[str]) -> Results:
    """results.json of an eval folder, validated; DataError (one line) when missing or malformed."""
    out = Path(out_dir)
    path = out / "results.json"
    if not out.is_dir():
        raise DataError(f"{out}: no such folder; give the --output-dir of an `nspzero eval` run")
    if not path.is_file():
        if _looks_like_data(out):  # eval refuses to write into its data, so never suggest it
            raise DataError(f"{out} holds task folders of .json data, not eval results; run `nspzero eval -d {out} "
                            f"-o nspzero-results` first, then `nspzero report nspzero-results`")
        raise DataError(f"{path}: missing; give the --output-dir of an `nspzero eval` run "
                        f"(or run `nspzero eval ... --output-dir {out}` first)")
    if path.stat().st_size > MAX_RESULTS_BYTES:
        raise DataError(f"{path}: {path.stat().st_size:,} bytes, more than an eval writes "
                        f"(at most {MAX_RESULTS_BYTES:,}); give the results.json of an `nspzero eval` run")
    try:
        data = json.loads(path.read_bytes().decode("utf-8"))
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, UnicodeDecodeError, deep nesting
        reason = "nested too deeply" if isinstance(exc, RecursionError) else shorten(exc, 120)
        raise DataError(f"{path}: not valid JSON ({reason}); re-run the eval to rewrite it") from None
    if not isinstance(data, dict) or not isinstance(data.get("tasks"), dict):
        raise DataError(f"{path}: not an nspzero results file (no 'tasks' mapping)")
    try:
        return Results.model_validate(data)
    except ValidationError as exc:
        raise DataError(f"{path}: {one_line(exc)}; re-run the eval to rewrite it") from None


def read_rows(path: Path) -> tuple[Optional[list[Row]], int]:
    """The prediction rows of a task and how many lines were unreadable; (None, 0) when the file is
    missing. A file larger than any eval writes is refused (DataError), not read into memory."""
    if not path.is_file():
        return None, 0
    if path.stat().st_size > MAX_PREDICTIONS_BYTES:
        raise DataError(f"{path}: {path.stat().st_size:,} bytes, more than an eval writes "
                        f"(at most {MAX_PREDICTIONS_BYTES:,}); give the folder of an `nspzero eval` run")
    rows, bad = [], 0
    for line in path.read_bytes().decode("utf-8", errors="replace").splitlines():
        if not line.strip():
            continue
        try:
            rows.append(Row.model_validate(json.loads(line)))
        except (ValueError, RecursionError):  # JSONDecodeError and ValidationError are ValueErrors
            bad += 1
    return rows, bad


def is_file_part(name: str) -> bool:
    """Whether a task name can be part of a file name in the eval folder (no path separators):
    a crafted results.json never makes the report read outside its folder."""
    return bool(name) and "/" not in name and "\\" not in name and "\0" not in name and name not in (".", "..")


@lru_cache(maxsize=1)
def paper_rows() -> dict:
    """The paper's Table 1 rows (nspzero/eval/paper.yaml)."""
    from importlib import resources

    import yaml

    text = resources.files("nspzero.eval").joinpath("paper.yaml").read_text(encoding="utf-8")
    return yaml.safe_load(text)


def task_columns(tasks: Any) -> list[str]:
    """Task names in the paper's FewCLUE order, then any others in their own order."""
    from ..tasks.registry import FEWCLUE

    return [t for t in FEWCLUE if t in tasks] + [t for t in tasks if t not in FEWCLUE]


def pct(value: Optional[float]) -> str:
    return "—" if value is None else f"{100 * value:.1f}"


def short_numbers(values: list[float]) -> list[str]:
    """Values with the fewest significant digits (3 to 6) that still tell distinct ones apart:
    thresholds of a tiny model differ by 1e-6, a real model's by 1e-2; nobody reads 15 digits."""
    for digits in range(3, 7):
        shown = [f"{v:.{digits}g}" for v in values]
        if len(set(shown)) == len(set(values)):
            return shown
    return [f"{v:.6g}" for v in values]


# ---------------------------------------------------------------- per task


@dataclass
class Confusion:
    classes: list[str]
    matrix: np.ndarray                 # gold (rows) × prediction (columns)
    hidden: int = 0                    # labels past MAX_CONFUSION_CLASSES, counted in the last class ("other")

    @property
    def totals(self) -> list[int]:
        return [int(v) for v in self.matrix.sum(axis=1)]

    @property
    def recall(self) -> list[Optional[float]]:
        return [float(self.matrix[i, i]) / t if t else None for i, t in enumerate(self.totals)]

    def top_confusions(self, k: int = 5) -> list[tuple[str, str, int]]:
        """The k most frequent (gold, predicted, count) off the diagonal."""
        n = len(self.classes)
        cells = sorted(((int(self.matrix[i, j]), i, j) for i in range(n) for j in range(n)
                        if i != j and self.matrix[i, j]), key=lambda t: (-t[0], t[1], t[2]))[:k]
        return [(self.classes[i], self.classes[j], v) for v, i, j in cells]


@dataclass
class Histograms:
    """Samples contrast: score counts per gold label over shared bin edges, and the thresholds."""
    order: list[str]
    counts: dict[str, np.ndarray]
    sizes: dict[str, int]
    edges: np.ndarray
    thresholds: list[float]
    threshold_text: list[str]
    between: list[str]                 # "A | B": the labels each threshold separates

    @property
    def low(self) -> float:
        return float(self.edges[0])

    @property
    def high(self) -> float:
        return float(self.edges[-1])


@dataclass
class ClozePositions:
    """ChID: accuracy by the answer's position among the candidates, and by candidate count."""
    positions: list[int]
    answers: dict[int, list[int]]      # position → [1 if right else 0] per example whose answer sits there
    predicted: dict[int, int]          # position → how many predictions fall there
    by_count: dict[int, list[int]]     # candidate count → [1/0]

    @staticmethod
    def accuracy(hits: list[int]) -> Optional[float]:
        return sum(hits) / len(hits) if hits else None


@dataclass
class Misclassified:
    row: Row
    fields: dict[str, str]             # role → text, when the data folder is still there
    scores: list[tuple[str, float]]    # the ones shown, best first


@dataclass
class TaskDiagnostics:
    name: str
    entry: TaskEntry
    rows: Optional[list[Row]]          # None: no predictions file
    skipped_rows: int = 0
    confusion: Optional[Confusion] = None
    histograms: Optional[Histograms] = None
    cloze: Optional[ClozePositions] = None
    wrong: int = 0
    misclassified: list[Misclassified] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)   # what the views leave out (their bounds)

    @property
    def accuracy(self) -> Optional[float]:
        if self.entry.accuracy is not None or not self.rows:
            return self.entry.accuracy
        return float(np.mean([r.gold == r.prediction for r in self.rows]))


def is_cloze(rows: list[Row], entry: TaskEntry) -> bool:
    """ChID-like: typed 'cloze', or rows whose candidate sets (their scores' keys) differ."""
    if entry.type == "cloze":
        return bool(rows) and all(r.scores is not None and r.gold in r.scores for r in rows)
    return bool(rows) and all(r.scores is not None and r.gold in r.scores for r in rows) \
        and len({tuple(r.scores) for r in rows}) > 1


def is_samples_contrast(rows: list[Row], entry: TaskEntry) -> bool:
    return bool(rows) and all(r.score is not None for r in rows) and bool(entry.thresholds) \
        and bool(entry.label_order)


def _sort_key(label: str) -> tuple[int, float, str]:
    try:
        return (0, float(label), label)
    except ValueError:
        return (1, 0.0, label)


def classes_of(rows: list[Row], entry: TaskEntry) -> list[str]:
    """`label_order` (else a C-C row's score keys), then any other label seen, sorted."""
    order = list(entry.label_order) or next((list(r.scores) for r in rows if r.scores is not None), [])
    seen = {r.gold for r in rows} | {r.prediction for r in rows if r.prediction is not None}
    return order + sorted(seen - set(order), key=_sort_key)


def confusion(rows: list[Row], entry: TaskEntry, limit: int = MAX_CONFUSION_CLASSES) -> Confusion:
    """Gold × predicted counts over `classes_of`. Past `limit` classes (a label_order of 20,000 names
    would be a 20,000² view), the `limit - 1` labels met most often in the rows are kept in their
    order and every other label is counted in one last class, "(N other labels)": the view's size
    is bounded whatever results.json says, and no count is lost."""
    classes = classes_of(rows, entry)
    pairs = [(r.gold, r.prediction) for r in rows if r.prediction is not None]
    hidden = 0
    if len(classes) > limit:
        met: dict[str, int] = {}
        for gold, predicted in pairs:
            met[gold] = met.get(gold, 0) + 1
            met[predicted] = met.get(predicted, 0) + 1
        position = {name: k for k, name in enumerate(classes)}
        ranked = sorted(met, key=lambda name: (-met[name], position[name])) + [n for n in classes if n not in met]
        kept = set(ranked[:limit - 1])  # the labels met most often, then label_order's first ones
        hidden = len(classes) - len(kept)
        classes = [name for name in classes if name in kept] + [f"({hidden:,} other labels)"]
    index = {name: k for k, name in enumerate(classes)}
    other = len(classes) - 1
    matrix = np.zeros((len(classes), len(classes)), dtype=np.int64)
    for gold, predicted in pairs:
        matrix[index.get(gold, other), index.get(predicted, other)] += 1
    return Confusion(classes, matrix, hidden)


def histograms(rows: list[Row], entry: TaskEntry) -> Histograms:
    order = list(entry.label_order)
    order += sorted({r.gold for r in rows} - set(order), key=_sort_key)
    thresholds = list(entry.thresholds)
    by_label = {label: np.array([r.score for r in rows if r.gold == label], dtype=float) for label in order}
    values = np.concatenate([*by_label.values(), np.array(thresholds, dtype=float)])
    low, high = (float(values.min()), float(values.max())) if values.size else (0.0, 1.0)
    pad = (high - low) * 0.04 or 0.01
    n_scores = sum(s.size for s in by_label.values())
    bins = int(min(40, max(10, 2 * math.sqrt(max(n_scores, 1)))))
    edges = np.linspace(low - pad, high + pad, bins + 1)
    counts = {label: np.histogram(s, bins=edges)[0] for label, s in by_label.items()}
    between = [f"{order[i]} | {order[i + 1]}" if i + 1 < len(order) else f"t{i + 1}" for i in range(len(thresholds))]
    return Histograms(order, counts, {k: int(v.size) for k, v in by_label.items()}, edges, thresholds,
                      short_numbers(thresholds), between)


def cloze_positions(rows: list[Row]) -> ClozePositions:
    answers: dict[int, list[int]] = {}
    predicted: dict[int, int] = {}
    by_count: dict[int, list[int]] = {}
    for r in rows:
        names = list(r.scores or {})
        if r.gold not in names:
            continue
        correct = int(r.prediction == r.gold)
        answers.setdefault(names.index(r.gold) + 1, []).append(correct)
        by_count.setdefault(len(names), []).append(correct)
        if r.prediction in names:
            p = names.index(r.prediction) + 1
            predicted[p] = predicted.get(p, 0) + 1
    return ClozePositions(sorted(set(answers) | set(predicted)), answers, predicted, dict(sorted(by_count.items())))


def wrong_margin(row: Row, entry: TaskEntry) -> float:
    """How confidently wrong a row is (larger first): the predicted label's score above the gold's,
    or for a single score its distance from the gold label's threshold interval."""
    if row.scores is not None:
        return row.scores.get(row.prediction or "", 0.0) - row.scores.get(row.gold, 0.0)
    order, thresholds = entry.label_order, entry.thresholds
    if row.score is None or row.gold not in order or len(thresholds) != len(order) - 1:
        return 0.0
    k = order.index(row.gold)
    low = thresholds[k - 1] if k > 0 else -math.inf
    high = thresholds[k] if k < len(thresholds) else math.inf
    return max(low - row.score, row.score - high, 0.0)


def shown_scores(row: Row) -> list[tuple[str, float]]:
    """The best MAX_SCORES_SHOWN scores of a row, and the gold label's when it is not among them."""
    if row.scores is None:
        return []
    keep = sorted(row.scores.items(), key=lambda kv: -kv[1])[:MAX_SCORES_SHOWN]
    if row.gold in row.scores and row.gold not in dict(keep):
        keep.append((row.gold, row.scores[row.gold]))
    return keep


TextsLookup = Callable[[str, TaskEntry, list[int]], dict[int, dict[str, str]]]


def task_diagnostics(name: str, rows: Optional[list[Row]], entry: TaskEntry, skipped_rows: int = 0,
                     texts: Optional[TextsLookup] = None) -> TaskDiagnostics:
    """Everything the reports show for one task. `texts(name, entry, indices)` may return the
    misclassified examples' fields (role → text); without it they show by index only."""
    out = TaskDiagnostics(name, entry, rows, skipped_rows)
    if not rows:
        return out
    if is_cloze(rows, entry):
        out.cloze = cloze_positions(rows)
    else:
        out.confusion = confusion(rows, entry)
        if out.confusion.hidden:
            out.notes.append(f"The confusion matrix shows the {len(out.confusion.classes) - 1} labels met most often; "
                             f"the other {out.confusion.hidden:,} labels are counted together in its last row and "
                             f"column.")
        if is_samples_contrast(rows, entry):
            if len(entry.label_order) <= MAX_HISTOGRAM_LABELS:
                out.histograms = histograms(rows, entry)
            else:
                out.notes.append(f"No score histograms: {len(entry.label_order):,} labels in label_order, more than "
                                 f"the {MAX_HISTOGRAM_LABELS} a report draws.")
    wrong = [r for r in rows if r.gold != r.prediction]
    out.wrong = len(wrong)
    shown = sorted(wrong, key=lambda r: -wrong_margin(r, entry))[:MISCLASSIFIED_PER_TASK]
    found = texts(name, entry, [r.index for r in shown if r.index is not None]) if texts else {}
    out.misclassified = [Misclassified(r, found.get(r.index, {}) if r.index is not None else {}, shown_scores(r))
                         for r in shown]
    return out


def rows_from_dicts(rows: list[dict]) -> list[Row]:
    """Prediction rows held in memory (the harness's) as Rows; rows that do not fit are dropped."""
    out = []
    for row in rows:
        try:
            out.append(Row.model_validate(row))
        except ValidationError:
            continue
    return out


# ---------------------------------------------------------------- a whole eval folder


@dataclass
class Diagnostics:
    results: Results
    columns: list[str]
    paper: dict
    tasks: list[TaskDiagnostics]


def _flat(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return ", ".join(map(str, value))
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def _texts_from(data_dir: Optional[str]) -> TextsLookup:
    """index → the example's fields, read back from the eval's data folder when it is still there."""
    def lookup(name: str, entry: TaskEntry, indices: list[int]) -> dict[int, dict[str, str]]:
        wanted = set(indices)
        if not wanted or not data_dir or not os.path.isdir(data_dir):
            return {}
        try:
            from ..tasks.registry import load_task

            task = load_task(name)
            examples = task.read(data_dir, entry.split or task.config.test_split, limit=max(wanted) + 1)
        except Exception:  # noqa: BLE001 - texts are a nicety; the report never fails for them
            return {}
        return {e.index: {role: _flat(v) for role, v in e.fields.items() if role not in GOLD_ROLES}
                for e in examples if e.index in wanted}
    return lookup


def folder_diagnostics(out_dir: str | os.PathLike[str]) -> Diagnostics:
    """Read an eval output folder (results.json and each task's predictions) and compute its
    diagnostics. Raises DataError (one line) when results.json is missing or malformed."""
    out = Path(out_dir)
    return _diagnostics(read_results(out), lambda name: read_rows(out / f"{name}.predictions.jsonl")
                        if is_file_part(name) else (None, 0))


def eval_diagnostics(results: dict, predictions: dict[str, list[dict]]) -> Diagnostics:
    """The diagnostics of an eval still in memory (its results and prediction rows): what
    `folder_diagnostics` would read back from the files it writes, computed once for its plots and report."""
    checked = Results.model_validate(json.loads(json.dumps(results)))  # as results.json holds it
    return _diagnostics(checked, lambda name: (rows_from_dicts(predictions.get(name, [])), 0))


def _diagnostics(results: Results, rows_of: Callable[[str], tuple[Optional[list[Row]], int]]) -> Diagnostics:
    """Every task's diagnostics, in the paper's order; `rows_of(name)` gives (rows, unreadable rows)."""
    columns = task_columns(results.tasks)
    texts = _texts_from(results.settings.data_dir)
    tasks = []
    for name in columns:
        rows, bad = rows_of(name)
        tasks.append(task_diagnostics(name, rows, results.tasks[name], bad, texts))
    return Diagnostics(results, columns, paper_rows(), tasks)

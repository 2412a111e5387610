"""What every task shares: its YAML config, reading its examples, and the two hooks that make
tasks differ — how one example becomes pairs, and how scores become predictions."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Sequence

import numpy as np

from pydantic import BaseModel, ConfigDict, Field

from ..errors import DataError, UsageError
from ..io import read_records
from ..metrics import compute, metric_names
from ..scorer import Pair

TASK_TYPES = ("classification", "pair", "cloze", "coref")


class FewShotRecipe(BaseModel):
    """How `eval --few-shot` NSP-tunes a task (YAML `few_shot:`): data, not code, so the paper's
    per-task recipe (batch 1 for the largest label sets) is read beside the task it belongs to."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)
    train_split: str = Field("train_few_all", pattern=r"^[A-Za-z0-9_-]+$")
    learning_rate: float = Field(1e-5, gt=0, lt=1, allow_inf_nan=False)
    batch_size: int = Field(8, ge=1, le=4096)
    epochs: int = Field(10, ge=1, le=1000)
    max_length: int = Field(128, ge=8, le=4096)
# the harness's scoring of more examples for a task: (task, examples, progress label) → scores per example
ExampleScoring = Callable[["Task", Sequence["Example"], str], list[np.ndarray]]
SPLIT_SUFFIXES = (".json", ".jsonl", ".csv", ".tsv")


@dataclass(frozen=True)
class TaskConfig:
    """A task as declared in eval/tasks/<name>.yaml (see docs/eval.md, "Prompt sets and task configs")."""

    name: str
    type: str
    prompt: str
    fields: dict[str, str]
    data: str = ""                      # folder under the data dir; default: the task name
    description: str = ""
    test_split: str = "test_public"
    dev_split: str = "dev_few_all"
    label_order: tuple[str, ...] = ()   # S-C: labels by rising NSP score
    join: str = ","                     # joins list-valued fields (CSL keywords)
    blank: str = "#idiom#"              # cloze: the blank marker in the passage
    soft_positions: bool = True         # cloze: method.md §4
    metrics: tuple[str, ...] = ("accuracy",)  # YAML `metric:` (one name or a list): what the harness reports
    reference: Optional[float] = None   # the paper's NSP-BERT accuracy (%)
    few_shot: Optional[FewShotRecipe] = None  # the paper's NSP-tuning recipe; None: the paper does not tune it
    source: str = ""                    # where the config was read from, for error messages

    @property
    def folder(self) -> str:
        return self.data or self.name


@dataclass
class Example:
    """One record of a split: its `index` (0-based line of a JSONL file, 0-based row of a CSV),
    its fields by role, and its gold label."""

    index: int
    fields: dict[str, Any]
    gold: str
    where: str = ""   # "file:line", for error messages


@dataclass
class Decision:
    """A task's answers for a split: predictions, per-example evidence, and extra results."""

    predictions: list[str]
    evidence: list[dict[str, Any]]
    extra: dict[str, Any] = field(default_factory=dict)


def get_path(obj: dict, dotted: str) -> Any:
    """obj['a']['b'] for 'a.b'; KeyError when any part is missing."""
    value: Any = obj
    for part in dotted.split("."):
        if not isinstance(value, dict) or part not in value:
            raise KeyError(dotted)
        value = value[part]
    return value


def split_path(data_dir: str, config: TaskConfig, split: str) -> str:
    """DIR/<task>/<split>.json, or a DataError listing the splits that do exist."""
    folder = os.path.join(data_dir, config.folder)
    if not os.path.isdir(folder):
        raise DataError(f"task {config.name}: no folder {folder!r}; --data-dir must hold one folder per task "
                        f"(<task>/<split>.json, as in FewCLUE's datasets/)")
    for suffix in SPLIT_SUFFIXES:
        path = os.path.join(folder, split + suffix)
        if os.path.isfile(path):
            return path
    have = sorted(f.rsplit(".", 1)[0] for f in os.listdir(folder) if f.endswith(SPLIT_SUFFIXES))
    raise DataError(f"task {config.name}: no split {split!r} in {folder} (have: {', '.join(have) or 'none'})")


class Task:
    """Base of the task types. Subclasses implement `example_pairs` and `decide`."""

    needs_dev = False
    text_roles: tuple[str, ...] = ()   # roles holding text for the model: checked by the one text rule

    def __init__(self, config: TaskConfig) -> None:
        self.config = config

    @property
    def metrics(self) -> tuple[str, ...]:
        """The metrics the task's YAML asks for (`metric:`), e.g. ("accuracy",) or ("accuracy", "macro_f1")."""
        return self.config.metrics

    def gold_of(self, record: dict, fields: dict[str, Any], where: str) -> str:
        return str(fields["label"])

    def check_example(self, example: Example) -> None:
        """Raise DataError for an example the task cannot use (e.g. an unknown gold label)."""

    def stratum(self, example: Example) -> Any:
        """What a stratified sample (`eval --limit`) keeps the shares of: the gold label."""
        return example.gold

    def read(self, data_dir: str, split: str, limit: Optional[int] = None) -> list[Example]:
        """The first `limit` examples of a split, each field found by its dotted path."""
        path = split_path(data_dir, self.config, split)
        examples: list[Example] = []
        is_jsonl = path.endswith((".json", ".jsonl"))
        for count, rec in enumerate(read_records(path), start=1):
            if limit is not None and count > limit:
                break
            where, record, line_no = rec.where, rec.fields, rec.line
            fields: dict[str, Any] = {}
            for role, dotted in self.config.fields.items():
                try:
                    value = get_path(record, dotted)
                except KeyError:
                    raise DataError(f"{where}: no field {dotted!r} (task {self.config.name} reads it as {role!r}; "
                                    f"fields here: {', '.join(record)})") from None
                if role in self.text_roles:
                    check_field_text(value, where, dotted)
                fields[role] = value
            index = line_no - 1 if is_jsonl else count - 1  # JSONL: 0-based line; CSV: 0-based row
            example = Example(index, fields, self.gold_of(record, fields, where), where)
            self.check_example(example)
            examples.append(example)
        if not examples:
            raise DataError(f"{path}: no examples")
        return examples

    def example_pairs(self, example: Example) -> list[Pair]:
        raise NotImplementedError

    def measure(self, gold: Sequence[str], predictions: Sequence[str]) -> dict[str, float]:
        """The task's metrics over its predictions (YAML `metric:`; accuracy always, first)."""
        return compute(metric_names(self.metrics), gold, predictions)

    def describe(self) -> dict[str, Any]:
        """Settings of this task worth recording beside its results (none by default)."""
        return {}

    def extra_results(self, test: Sequence[Example], test_scores: Sequence[np.ndarray], decision: "Decision",
                      score: ExampleScoring, compare_prompts: bool = False,
                      calibration: Sequence[str] = ()) -> dict[str, Any]:
        """Rows beyond the main result (prompt variants, calibration) that this task type supports;
        `score(task, examples, desc)` scores more examples through the harness's cache."""
        return {}

    def decide(self, test: Sequence[Example], test_scores: Sequence[np.ndarray],
               dev_scores: Optional[Sequence[np.ndarray]] = None) -> Decision:
        raise NotImplementedError


def check_field_text(value: Any, where: str, dotted: str) -> None:
    """A text field of a data record passes the same rule as a text given to classify (a list of
    texts, e.g. CSL's keywords, is checked item by item); a DataError names file:line and the field."""
    from ..request import check_text

    try:
        if isinstance(value, list) and value:
            for i, item in enumerate(value):
                check_text(item, f"field {dotted!r}[{i}]")
        else:
            check_text(value, f"field {dotted!r}")
    except UsageError as exc:
        raise DataError(f"{where}: {exc}") from None


def require_fields(config: TaskConfig, roles: Sequence[str]) -> None:
    missing = [r for r in roles if r not in config.fields]
    if missing:
        raise UsageError(f"{config.source}: task {config.name} ({config.type}) needs fields "
                         f"{', '.join(missing)} under 'fields'")

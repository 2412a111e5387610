"""Task metrics by name (a task's YAML `metric:`), computed with scikit-learn.

Accuracy is always reported (the paper's table and the FewCLUE score use it); macro-F1 is the
fairer extra column for the many-label tasks, where a classifier can score well on a few big
classes alone.
"""
from __future__ import annotations

from typing import Callable, Sequence, Union

from .errors import UsageError

METRICS = ("accuracy", "macro_f1")


def _metric(name: str) -> Callable[[Sequence[str], Sequence[str]], float]:
    from sklearn.metrics import accuracy_score, f1_score

    if name == "accuracy":
        return lambda gold, pred: float(accuracy_score(gold, pred))
    return lambda gold, pred: float(f1_score(gold, pred, average="macro", zero_division=0))


def metric_names(value: Union[str, Sequence[str], None]) -> tuple[str, ...]:
    """A YAML `metric:` value (one name or a list) → the metric names, accuracy first."""
    names = [value] if isinstance(value, str) else list(value or ())
    for name in names:
        if name not in METRICS:
            raise UsageError(f"metric {name!r} is not one of {', '.join(METRICS)}")
    return tuple(dict.fromkeys(["accuracy", *names]))


def compute(names: Sequence[str], gold: Sequence[str], predictions: Sequence[str]) -> dict[str, float]:
    """{metric name: value} over the gold labels and predictions."""
    return {name: _metric(name)(list(gold), list(predictions)) for name in names}

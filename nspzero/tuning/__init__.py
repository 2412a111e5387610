"""NSP-tuning, the paper's few-shot learner: labelled texts → each text's K label pairs (`pairs`),
BCE on P(IsNext) or a softmax over the labels (`loss`), the training loop (`trainer`), resume state
(`state`), and tuned folders (`saved`). `tune` is imported on first use, so reading a tuned folder's
defaults (`tuned_defaults`) loads no torch."""
from __future__ import annotations

from typing import Any

from .saved import save_tuned, tuned_defaults
from .settings import EpochRecord, TuneReport, TuneSettings

__all__ = ["TuneSettings", "TuneReport", "EpochRecord", "tune", "save_tuned", "tuned_defaults"]


def __getattr__(name: str) -> Any:
    if name == "tune":
        from .trainer import tune

        return tune
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

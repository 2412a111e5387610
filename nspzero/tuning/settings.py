"""The tuning recipe's settings and its record, as plain data (no torch): the CLI and a tuned
folder's json read them without loading a model."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Optional

from ..errors import UsageError

LOSSES = ("bce", "softmax")


@dataclass(frozen=True)
class TuneSettings:
    """NSP-tuning as the paper runs it (Adam with torch's defaults, no decay/schedule/clipping):
    `batch_size` texts a step (all K pairs of each), `chunk_pairs` pairs a forward (gradients
    accumulated, so memory is bounded whatever K is), `loss` "bce" (the paper's) or "softmax"
    (cross-entropy over a text's K labels), `bf16` autocast training on CPUs with native bf16."""

    epochs: int = 10
    learning_rate: float = 1e-5
    batch_size: int = 8
    seed: int = 0
    max_length: int = 128
    loss: str = "bce"
    chunk_pairs: int = 256
    bf16: bool = False

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size", "chunk_pairs", "max_length"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise UsageError(f"{name} must be a positive integer, got {value!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise UsageError(f"seed must be an integer, got {self.seed!r}")
        lr = self.learning_rate
        if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not 0 < lr < 1:
            raise UsageError(f"learning_rate must be a number between 0 and 1 (the paper's: 1e-5), got {lr!r}")
        if self.loss not in LOSSES:
            raise UsageError(f"loss must be one of {', '.join(LOSSES)}, got {self.loss!r}")

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class EpochRecord:
    """One finished epoch: mean training loss over its pairs, dev accuracy (None without dev), seconds."""

    epoch: int
    loss: float
    dev_accuracy: Optional[float]
    seconds: float

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class TuneReport:
    """Every epoch's record and the epoch whose weights were kept (1-based): the best dev accuracy
    (ties: the earlier), or the last epoch without dev."""

    epochs: list[EpochRecord] = field(default_factory=list)
    best_epoch: int = 0

    def to_dict(self) -> dict:
        return {"epochs": [e.to_dict() for e in self.epochs], "best_epoch": self.best_epoch}

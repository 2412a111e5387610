"""The eval's few-shot leg (`eval --few-shot`): NSP-tune the base model on a task's few-shot split
with the recipe its YAML gives (`few_shot:`, the paper's), keep the best dev epoch, then put the
base weights back so every task starts from the same fresh model.

The tuned model's scores are cached under a key made of its own weights (`tuned_fingerprint`),
never under the base model's zero-shot key: a tuned model cannot be served the base model's scores,
nor leave its scores where a zero-shot run would read them.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator, Optional, Sequence

from .cache import scorer_fingerprint
from .scorer import NSPScorer
from .tasks.base import Example, FewShotRecipe, Task
from .tuning import TuneReport, TuneSettings, tune

NOT_TUNED = "not tuned in the paper"


def recipe_settings(recipe: FewShotRecipe, seed: int = 0) -> TuneSettings:
    """The tuning library's settings for a task's recipe (Adam, BCE over the pairs: the paper's)."""
    return TuneSettings(epochs=recipe.epochs, learning_rate=recipe.learning_rate, batch_size=recipe.batch_size,
                        seed=seed, max_length=recipe.max_length)


def tunes(task: Task) -> Optional[FewShotRecipe]:
    """The task's recipe when the paper NSP-tunes it (a label task with `few_shot:`), else None."""
    return task.config.few_shot if getattr(task, "request", None) is not None else None


class BaseWeights:
    """The base model's weights, copied once, so each task is tuned from the same fresh model and
    the caller's scorer is given back unchanged (one copy of the weights in memory, not a reload)."""

    def __init__(self, scorer: NSPScorer) -> None:
        self.scorer = scorer
        self.saved = {k: v.detach().clone() for k, v in scorer.model.state_dict().items()}
        self.from_files = scorer.weights_from_files

    @contextmanager
    def tuning(self) -> Iterator[None]:
        """Tune inside the block; after it the base weights are back, with what the scorer made from
        the tuned ones dropped, and its files describe its weights again as they did before."""
        try:
            yield
        finally:
            self.scorer.model.load_state_dict(self.saved)
            self.scorer.model.eval()
            self.scorer.weights_changed()
            self.scorer.weights_from_files = self.from_files


def tune_task(scorer: NSPScorer, task: Task, train: Sequence[Example], dev: Sequence[Example],
              recipe: FewShotRecipe, seed: int = 0, progress: Optional[bool] = None,
              state_dir: Optional[str] = None) -> TuneReport:
    """Tune `scorer`'s model in place on `train` with the task's own request (its labels, words,
    templates), keeping the epoch with the best accuracy on `dev`; the model is left in eval mode.
    `state_dir`: each finished epoch is kept there, so a killed eval goes on from it (a state of
    another run there is dropped, not refused: nobody asked for it by name)."""
    report = tune(scorer, task.request, [str(e.fields["text"]) for e in train], [e.gold for e in train],
                  settings=recipe_settings(recipe, seed),
                  dev=([str(e.fields["text"]) for e in dev], [e.gold for e in dev]), progress=progress,
                  state_dir=state_dir, restart_other_state=True)
    scorer.model.eval()
    return report


def tuned_fingerprint(scorer: NSPScorer) -> str:
    """The score-cache key of a model tuned in memory: the scores cache's own fingerprint, with every
    tensor as it is now (never the files it was loaded from, which still hold the base weights)."""
    return scorer_fingerprint(scorer, by_tensors=True)


def report_entry(recipe: FewShotRecipe, settings: TuneSettings, report: TuneReport) -> dict:
    """What results.json records of one tuning: the recipe, the per-epoch log and the epoch kept."""
    best = report.epochs[report.best_epoch - 1]
    return {"tuned": True, "train_split": recipe.train_split, "best_epoch": report.best_epoch,
            "best_dev_accuracy": best.dev_accuracy,
            "recipe": {"learning_rate": settings.learning_rate, "batch_size": settings.batch_size,
                       "epochs": settings.epochs, "max_length": settings.max_length, "seed": settings.seed,
                       "loss": settings.loss},
            "epochs": [{"epoch": r.epoch, "loss": r.loss, "dev_accuracy": r.dev_accuracy,
                        "seconds": round(r.seconds, 3)} for r in report.epochs]}

"""The evaluation harness: one runner for every task.

data → pairs (the task) → scores (the pipeline's chunked forward stage, through the score cache) →
predictions (the task's mapping) → metrics → OUT/<task>.predictions.jsonl, results.json, results.md.
Every scored batch is appended to the cache as it finishes, so an interrupted run loses at most one
batch and resumes where it stopped; the outputs are written (atomically) only when every task is
done, so a failed run never leaves a mix of old and new results.
"""
from __future__ import annotations

import logging
import os
import platform
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Optional, Sequence

import numpy as np

from . import __version__
from .cache import ScoreCache, config_hash, scorer_fingerprint
from .errors import failure_reason
from .folders import check_folder_output, clean_leftovers, replaced_folder
from .io import atomic_write, atomic_write_json, atomic_write_jsonl, atomic_write_text
from .reports.markdown import results_markdown
from .pipeline import CHUNK_PAIRS, PairScoring, forward_chunked
from .scorer import NSPScorer, Pair
from .tasks.base import Example, Task
from .sampling import label_counts, stratified_sample
from .tasks.registry import FEWCLUE, check_distinct_names, load_task

if TYPE_CHECKING:  # the few-shot leg (and torch's optimiser) loads only when asked for
    from .fewshot import BaseWeights

log = logging.getLogger("nspzero")
# every file an eval run may write into its folder: the folder holds one run's files, so a rerun that
# does not write one of them (no --report, no --plots, fewer tasks) removes the previous run's copy;
# the cache/ and files nspzero does not write are carried over
RUN_FILES = ("results.json", "results.md", "report.html", "*.predictions.jsonl", "*.positions.png",
             "*.confusion.png", "*.scores.png")


@dataclass
class EvalSettings:
    data_dir: str
    tasks: Sequence[str] = FEWCLUE
    split: Optional[str] = None        # None: each task's test split (test_public)
    dev_split: Optional[str] = None    # None: each task's dev split (dev_few_all)
    limit: Optional[int] = None         # a stratified sample of this many examples per split (or the first N: head)
    seed: int = 0
    head: bool = False
    soft_positions: Optional[bool] = None  # None: as the task config says (on for ChID)
    prompt_overrides: dict[str, str] = field(default_factory=dict)
    fields: dict[str, str] = field(default_factory=dict)  # role → data field, for every task having the role
    compare_prompts: bool = False      # C-C label tasks: every variant of the vocabulary + ensembles
    calibration: Sequence[str] = ()    # extra rows: "content-free", "prior"
    plots: bool = False
    report: bool = False               # also OUT/report.html (nspzero report), part of the same unit
    few_shot: bool = False             # also NSP-tune each task the paper tunes and score it (a second column)


class CachedScoring:
    """The harness's engine for the pipeline's forward stage: the cache in front of a scorer (an
    `NSPScorer` or a `distributed.RayPairScorer`). Known pairs are read back; new ones are scored
    and appended batch by batch, so an interrupted eval resumes losing at most one batch."""

    def __init__(self, engine: PairScoring, cache: ScoreCache) -> None:
        self.engine = engine
        self.cache = cache
        self.max_length = engine.max_length
        self.scored = 0
        self.requested: set[Pair] = set()  # distinct pairs asked for since the caller last cleared it

    def score(self, pairs: Sequence[Pair], progress: Optional[bool] = None, desc: str = "scoring",
              on_truncated: Optional[Callable[[int, int], None]] = None) -> np.ndarray:
        self.requested.update(pairs)
        scores, todo = self.cache.lookup(pairs)
        if todo:
            fresh = [pairs[i] for i in todo]
            scores[todo] = self.engine.score(fresh, progress=progress, on_batch=self.cache.add, desc=desc,
                                             on_truncated=on_truncated)
            self.scored += len(set(fresh))
        return scores


@dataclass(frozen=True)
class ExamplePairs:
    """One example's pairs, as the pipeline's forward stage takes candidates; its scores stay one
    per pair (the task's `decide` maps them)."""

    pairs: tuple[Pair, ...]

    def scores(self, flat: np.ndarray) -> np.ndarray:
        return np.asarray(flat, dtype=np.float64)


def score_examples(task: Task, examples: Sequence[Example], scoring: CachedScoring, desc: str,
                   chunk_pairs: int = CHUNK_PAIRS) -> list[np.ndarray]:
    """Every example's pair scores, through the pipeline's one chunker and forward stage (each chunk
    one length-sorted call); a split of several chunks shows one bar over its examples."""
    sets = [ExamplePairs(tuple(task.example_pairs(e))) for e in examples]
    return list(forward_chunked(scoring, sets, True, chunk_pairs, desc, sum(len(s.pairs) for s in sets), len(sets),
                                (desc, "example")))


def read_split(task: Task, settings: EvalSettings, split: str) -> tuple[list[Example], Optional[dict]]:
    """A split's examples: all of them, the first `limit` (`head`), or a stratified sample of
    `limit` by the task's strata (gold labels) that is the same on every machine; with a
    description of the sample for results.json (None when every example is used)."""
    if settings.limit is None:
        return task.read(settings.data_dir, split), None
    if settings.head:
        examples = task.read(settings.data_dir, split, settings.limit)
        return examples, {"method": "head", "n": len(examples), "indexes": [e.index for e in examples]}
    examples = task.read(settings.data_dir, split)
    strata = [task.stratum(e) for e in examples]
    keep = stratified_sample(strata, settings.limit, settings.seed)
    return [examples[i] for i in keep], {
        "method": "stratified", "seed": settings.seed, "n": len(keep), "of": len(examples),
        "per_label": label_counts(strata, keep), "indexes": [examples[i].index for i in keep]}


def run_task(task: Task, settings: EvalSettings, scoring: CachedScoring) -> tuple[dict, list[dict]]:
    """Run one task; returns (its results entry, its prediction rows)."""
    config = task.config
    start = time.perf_counter()
    scored_before = scoring.scored
    scoring.requested.clear()
    split = settings.split or config.test_split
    test, sample = read_split(task, settings, split)
    test_scores = score_examples(task, test, scoring, f"{config.name} {split}")
    dev_scores = None
    if task.needs_dev:
        dev_split = settings.dev_split or config.dev_split
        dev, dev_sample = read_split(task, settings, dev_split)
        dev_scores = score_examples(task, dev, scoring, f"{config.name} {dev_split}")
    decision = task.decide(test, test_scores, dev_scores)
    extra = task.extra_results(test, test_scores, decision,
                               lambda t, examples, desc: score_examples(t, examples, scoring, desc),
                               compare_prompts=settings.compare_prompts, calibration=settings.calibration)
    rows = [{"index": e.index, "gold": e.gold, "prediction": p, **ev}
            for e, p, ev in zip(test, decision.predictions, decision.evidence)]
    entry = task.measure([r["gold"] for r in rows], [r["prediction"] for r in rows])
    # pairs: the distinct pairs the task needed (test, dev, and any variant/calibration rows)
    entry.update({"examples": len(rows), "pairs": len(scoring.requested),
                  "pairs_scored": scoring.scored - scored_before, "seconds": round(time.perf_counter() - start, 3),
                  "split": split, "prompt": task.prompt.key, "type": config.type, "reference": config.reference})
    if task.needs_dev:
        entry["dev_split"] = settings.dev_split or config.dev_split
    if sample is not None:
        entry["sample"] = sample if not task.needs_dev else {"test": sample, "dev": dev_sample}
    entry.update(task.describe())
    entry.update(decision.extra)
    entry.update(extra)
    return entry, rows


def run_few_shot(task: Task, settings: EvalSettings, scorer: NSPScorer, base: BaseWeights,
                 cache_dir: Path) -> tuple[dict, list[dict]]:
    """The task's few-shot entry and prediction rows: tune a fresh copy of the base model on the
    recipe's split (`--limit` samples it as every split), keep the best epoch on the dev split, and
    score the same test examples through the same path zero-shot uses, under the tuned weights' own
    cache key. A task the paper does not tune gets a note and no rows."""
    from .fewshot import NOT_TUNED, recipe_settings, report_entry, tune_task, tuned_fingerprint, tunes

    recipe = tunes(task)
    if recipe is None:
        return {"tuned": False, "note": NOT_TUNED}, []
    config = task.config
    start = time.perf_counter()
    split = settings.split or config.test_split
    dev_split = settings.dev_split or config.dev_split
    train, train_sample = read_split(task, settings, recipe.train_split)
    dev, dev_sample = read_split(task, settings, dev_split)
    test, _ = read_split(task, settings, split)
    with base.tuning():
        # the tuning state stays in cache/ (a killed run goes on from its last epoch; a finished one
        # gets its tuned weights back from it, and so its scores from the cache, without training)
        report = tune_task(scorer, task, train, dev, recipe, seed=settings.seed,
                           state_dir=str(cache_dir / f"tune-{config.name}"))
        cache = ScoreCache(cache_dir / f"scores-tuned-{tuned_fingerprint(scorer)}.jsonl")
        scoring = CachedScoring(scorer, cache)
        try:
            test_scores = score_examples(task, test, scoring, f"{config.name} {split} (tuned)")
        finally:
            cache.close()
    decision = task.decide(test, test_scores)
    rows = [{"index": e.index, "gold": e.gold, "prediction": p, **ev}
            for e, p, ev in zip(test, decision.predictions, decision.evidence)]
    entry = task.measure([r["gold"] for r in rows], [r["prediction"] for r in rows])
    entry.update(report_entry(recipe, recipe_settings(recipe, settings.seed), report))
    entry.update({"examples": len(rows), "train_examples": len(train), "dev_examples": len(dev),
                  "dev_split": dev_split, "pairs_scored": scoring.scored,
                  "cache": str(Path("cache") / cache.path.name), "seconds": round(time.perf_counter() - start, 3)})
    if train_sample is not None:
        entry["sample"] = {"train": train_sample, "dev": dev_sample}
    return entry, rows


def package_versions() -> dict[str, str]:
    import sklearn
    import torch
    import transformers

    return {"nspzero": __version__, "torch": torch.__version__, "transformers": transformers.__version__,
            "scikit-learn": sklearn.__version__, "numpy": np.__version__, "python": platform.python_version()}


def evaluate(scorer: NSPScorer, settings: EvalSettings, output_dir: str | Path,
             on_task_done: Optional[Callable[[str, dict], None]] = None,
             engine: Optional[PairScoring] = None, engine_name: str = "local") -> dict:
    """Run every task in `settings.tasks` and write the outputs into `output_dir`.

    `scorer` names the model and keys the cache; `engine` (default: `scorer`) scores the pairs the
    cache lacks, e.g. a `RayPairScorer` loading the same model on a Ray actor pool."""
    out = Path(output_dir)
    check_folder_output(out, [settings.data_dir])
    if settings.few_shot:
        from .fewshot import BaseWeights
        from .tuning.trainer import check_trainable

        check_trainable(scorer)
    if out.parent.is_dir():  # before mkdir: a killed run's moved-aside results go back into place first
        clean_leftovers(Path(os.path.realpath(out)))
    out.mkdir(parents=True, exist_ok=True)
    tasks = [load_task(name, settings.prompt_overrides.get(name), settings.soft_positions, _fields_for(name, settings))
             for name in settings.tasks]
    check_distinct_names([t.config for t in tasks])
    cache = ScoreCache(out / "cache" / f"scores-{scorer_fingerprint(scorer)}.jsonl")
    scoring = CachedScoring(engine if engine is not None else scorer, cache)
    results: dict = {
        "model": scorer.name, "random_weights": bool(getattr(scorer, "random_weights", False)),
        "config_hash": config_hash(scorer), "versions": package_versions(),
        "settings": {"data_dir": str(settings.data_dir),
                     "split": settings.split or "each task's test split (FewCLUE: test_public)",
                     "dev_split": settings.dev_split or "each task's dev split (FewCLUE: dev_few_all)",
                     "limit": settings.limit,
                     "sample": None if settings.limit is None else ("head" if settings.head else
                                                                     f"stratified, seed {settings.seed}"),
                     "max_length": scorer.max_length, "dtype": scorer.dtype, "batch_size": scorer.batch_size,
                     "device": str(scorer.device), "engine": engine_name, "soft_positions": settings.soft_positions,
                     "compare_prompts": settings.compare_prompts, "calibration": list(settings.calibration),
                     "few_shot": settings.few_shot},
        "tasks": {}, "cache": {"file": str(cache.path.relative_to(out)), "pairs_before": len(cache)},
    }
    start = time.perf_counter()
    predictions: dict[str, list[dict]] = {}
    few_shot_rows: dict[str, list[dict]] = {}
    base = BaseWeights(scorer) if settings.few_shot else None
    try:
        for task in tasks:
            entry, rows = run_task(task, settings, scoring)
            if base is not None:
                entry["few_shot"], few_shot_rows[task.config.name] = run_few_shot(task, settings, scorer, base,
                                                                                  out / "cache")
            results["tasks"][task.config.name] = entry
            predictions[task.config.name] = rows
            if on_task_done is not None:
                on_task_done(task.config.name, entry)
    finally:
        cache.close()
    results["seconds"] = round(time.perf_counter() - start, 3)
    if engine is None:  # which kernels scored, as settled during the run (a Ray actor settles its own)
        results["settings"]["path"] = scorer.engine
    _summarise(results)
    # the outputs are written only once every task is done, into a folder beside `out` that takes
    # its place in one rename: a failed or interrupted run, at any point, leaves every file of the
    # previous run as it was (its finished work is in the cache, so a rerun is quick)
    with replaced_folder(out, owned=RUN_FILES) as stage:
        for name, rows in predictions.items():
            atomic_write_jsonl(stage / f"{name}.predictions.jsonl", rows)
        for name, rows in few_shot_rows.items():
            if rows:
                atomic_write_jsonl(stage / f"{name}.few-shot.predictions.jsonl", rows)
        atomic_write_json(stage / "results.json", results)
        atomic_write_text(stage / "results.md", results_markdown(results))
        if settings.plots or settings.report:
            _views(stage, results, predictions, settings)
    return results


def _views(stage: Path, results: dict, predictions: dict[str, list[dict]], settings: EvalSettings) -> None:
    """The PNG plots and the HTML report, both drawn from ONE diagnostics computed from memory. They
    are views of the results: a missing matplotlib is one notice, a failed report one warning, never
    the loss of a finished eval (the predictions and results are written without them)."""
    from .reports.diagnostics import eval_diagnostics

    def warn(what: str, exc: Exception) -> None:
        log.warning("could not write %s (%s); the results are written, retry with `nspzero report`", what,
                    failure_reason(exc))
    try:
        diagnostics = eval_diagnostics(results, predictions)
    except Exception as exc:  # noqa: BLE001 - e.g. a value results.json's schema refuses: the results still count
        return warn("the plots or report.html", exc)
    if settings.plots:
        try:
            from .reports.png import task_pngs

            for task in diagnostics.tasks:
                for name, data in task_pngs(task, diagnostics.results.model).items():
                    atomic_write(stage / name, lambda handle, data=data: handle.write(data))
        except ImportError as exc:
            log.warning("%s; skipping plots", exc)
    if settings.report:
        try:
            from .reports.html import render_diagnostics

            atomic_write_text(stage / "report.html", render_diagnostics(diagnostics))
        except Exception as exc:  # noqa: BLE001 - a template or disk error: the results still count
            warn("report.html", exc)


def _fields_for(name: str, settings: EvalSettings) -> dict[str, str]:
    """The --text-field/--label-field overrides that apply to this task's roles."""
    from .tasks.registry import load_config

    roles = load_config(name).fields
    return {role: value for role, value in settings.fields.items() if role in roles}


def _summarise(results: dict) -> None:
    accs = {name: t["accuracy"] for name, t in results["tasks"].items()}
    complete = all(name in accs for name in FEWCLUE)
    results["fewclue_score"] = float(np.mean([accs[n] for n in FEWCLUE])) if complete else None
    results["mean_accuracy"] = float(np.mean(list(accs.values()))) if accs else None
    tuned = {name: t["few_shot"]["accuracy"] for name, t in results["tasks"].items()
             if t.get("few_shot", {}).get("tuned")}
    if any("few_shot" in t for t in results["tasks"].values()):
        results["few_shot_mean_accuracy"] = float(np.mean(list(tuned.values()))) if tuned else None

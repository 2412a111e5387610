"""`nspzero eval`: reproduce the paper's FewCLUE table (or run any task config) with the harness."""
import contextlib
import os
from typing import List, Optional

import typer

from ..errors import UsageError, shown
from ..folders import check_folder_output
from .app import app
from .options import NUM_ACTORS_OPTION, RAY_ADDRESS_OPTION, ModelOptions, check_engine, with_model_options


def pairs_note(pairs: int, scored: int) -> str:
    """Where a task's pairs came from: a rerun served by the cache says so, not "0/4760 pairs scored"."""
    cached = max(pairs - scored, 0)
    if not cached:
        return f"{pairs} pairs scored"
    if not scored:
        return f"{pairs} pairs, all from the cache"
    return f"{pairs} pairs: {scored} scored, {cached} from the cache"


@app.command("eval")
@with_model_options(max_length=128)
def eval_cmd(
    data_dir: str = typer.Option(..., "--data-dir", "-d", help="FewCLUE datasets folder: <task>/<split>.json."),
    tasks: str = typer.Option("all", help="'all' (the nine FewCLUE tasks) or a list such as eprstmt,tnews."),
    split: Optional[str] = typer.Option(None, help="Split to report (default: each task's, test_public)."),
    dev_split: Optional[str] = typer.Option(None, help="Split S-C tasks learn thresholds on (default dev_few_all)."),
    limit: Optional[int] = typer.Option(None, help="A quick run: N examples of every split read, sampled so that "
                                                   "every label keeps its share (the same sample on every machine)."),
    seed: int = typer.Option(0, help="--limit: which stratified sample (recorded in results.json)."),
    head: bool = typer.Option(False, "--head", help="--limit: take the first N examples instead of a stratified sample."),
    output_dir: str = typer.Option("nspzero-results", "--output-dir", "-o", help="Where results and the cache go."),
    soft_positions: bool = typer.Option(True, "--soft-positions/--no-soft-positions",
                                        help="ChID: put the idiom's position ids at the blank (docs/method.md)."),
    prompt: Optional[List[str]] = typer.Option(None, help="Override a task's prompt: TASK=SET[:VARIANT], repeatable."),
    text_field: Optional[str] = typer.Option(None, help="Data field holding the text (tasks with a 'text' role)."),
    label_field: Optional[str] = typer.Option(None, help="Data field holding the gold label."),
    compare_prompts: bool = typer.Option(False, "--compare-prompts",
                                         help="Also run every template variant and their ensembles (label tasks)."),
    calibrate: Optional[str] = typer.Option(None, help="Extra calibrated rows: content-free, prior or both "
                                                       "(comma-separated); off by default."),
    plots: bool = typer.Option(False, "--plots", help="Write <task>.confusion.png (and S-C score histograms)."),
    html_report: bool = typer.Option(False, "--report", help="Also write OUT/report.html (nspzero report)."),
    few_shot: bool = typer.Option(False, "--few-shot",
                                  help="Also NSP-tune a fresh model per task the paper tunes (EPRSTMT, TNEWS, "
                                       "CSLDCP, IFLYTEK) on train_few_all with the task's recipe, keep the best "
                                       "dev epoch and report a few-shot column. --limit bounds every split."),
    engine: str = typer.Option("local", help="local (this process) | ray (score pairs on a Ray actor pool, "
                                             "extra 'ray')."),
    ray_address: Optional[str] = RAY_ADDRESS_OPTION,
    num_actors: int = NUM_ACTORS_OPTION,
    models: ModelOptions = None,
) -> None:
    """Reproduce the NSP-BERT zero-shot FewCLUE table (results.json, results.md, predictions)."""
    from ..calibration import CALIBRATIONS
    from ..harness import EvalSettings, evaluate
    from ..tasks.registry import resolve_task_list

    if limit is not None and limit < 1:
        raise UsageError(f"--limit must be a positive number of examples, got {limit}")
    if not os.path.isdir(data_dir):
        raise UsageError(f"--data-dir {data_dir!r} is not a directory")
    if os.path.exists(output_dir) and not os.path.isdir(output_dir):
        raise UsageError(f"--output-dir {output_dir!r} is a file; give a folder")
    names = resolve_task_list(tasks)
    overrides = {}
    for item in prompt or []:
        task_name, sep, spec = item.partition("=")
        if not sep or task_name not in names:
            raise UsageError(f"--prompt {shown(item)}: expected TASK=SET[:VARIANT] for one of {', '.join(names)}")
        overrides[task_name] = spec
    check_folder_output(output_dir, [data_dir, models.model] + [spec.partition(":")[0] for spec in overrides.values()])
    calibration = [c.strip() for c in calibrate.split(",") if c.strip()] if calibrate else []
    for c in calibration:
        if c not in CALIBRATIONS:
            raise UsageError(f"--calibrate {shown(c)}: choose from {', '.join(CALIBRATIONS)}")
    check_engine(engine, ray_address, num_actors)
    if few_shot and models.dtype != "float32":  # before the model loads: tuning trains float32 weights
        raise UsageError(f"--few-shot tunes float32 weights, not --dtype {models.dtype}; drop --dtype")
    fields = {role: value for role, value in (("text", text_field), ("label", label_field)) if value}
    if head and limit is None:
        raise UsageError("--head takes the first --limit N examples; add --limit N")
    settings = EvalSettings(data_dir=data_dir, tasks=names, split=split, dev_split=dev_split, limit=limit,
                            seed=seed, head=head,
                            soft_positions=soft_positions, prompt_overrides=overrides, fields=fields,
                            compare_prompts=compare_prompts, calibration=calibration, plots=plots,
                            report=html_report, few_shot=few_shot)
    engine_scorer = contextlib.nullcontext()
    if engine == "ray":  # before the model loads: a missing Ray fails at once
        from ..distributed.pairs import RayPairScorer

        engine_scorer = RayPairScorer(models.model, num_actors=num_actors, **models.load_args)
    # the local scorer names the model and keys the cache; with --engine ray the actors do the scoring
    scorer = models.scorer(compile=models.compile if engine == "local" else False)

    def report(name: str, entry: dict) -> None:
        typer.echo(f"{name:8s} accuracy {100 * entry['accuracy']:5.1f}%  ({entry['examples']} examples, "
                   f"{pairs_note(entry['pairs'], entry['pairs_scored'])}, {entry['seconds']:.1f}s)", err=True)
        tuned = entry.get("few_shot")
        if tuned and tuned.get("tuned"):
            typer.echo(f"{name:8s} few-shot {100 * tuned['accuracy']:5.1f}%  (tuned on {tuned['train_examples']}, "
                       f"best epoch {tuned['best_epoch']}, {tuned['seconds']:.1f}s)", err=True)
        elif tuned:
            typer.echo(f"{name:8s} few-shot: {tuned['note']}", err=True)

    if engine == "ray":
        from ..distributed.common import ray_session

        with ray_session(ray_address), engine_scorer:
            results = evaluate(scorer, settings, output_dir, on_task_done=report, engine=engine_scorer,
                               engine_name=f"ray ({num_actors} actor{'s' if num_actors > 1 else ''})")
    else:
        results = evaluate(scorer, settings, output_dir, on_task_done=report)
    with open(os.path.join(output_dir, "results.md"), encoding="utf-8") as handle:
        typer.echo(handle.read())
    if results.get("fewclue_score") is not None:
        typer.echo(f"FewCLUE score: {100 * results['fewclue_score']:.2f}", err=True)
    if html_report and os.path.exists(os.path.join(output_dir, "report.html")):  # a failed report is a warning
        typer.echo(f"report: {os.path.join(output_dir, 'report.html')}", err=True)

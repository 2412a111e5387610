"""The command line only: parse arguments, call the library, print errors as one line.

Exit codes: 0 success, 2 usage errors (bad options, templates, labels), 1 data or model errors.
"""
from __future__ import annotations

import contextlib
import json
import logging
import sys
from itertools import islice
from typing import Callable, Iterable, Iterator, List, Optional, TypeVar, Union

import typer

from .errors import DataError, NSPZeroError, UsageError
from .io import LineWriter

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Zero-shot text classification with BERT's next-sentence-prediction head (NSP-BERT).")

OUTPUT_FORMATS = ("jsonl", "csv", "table")
T = TypeVar("T")


@app.callback()
def _root() -> None:
    """Zero-shot text classification with BERT's next-sentence-prediction head (NSP-BERT)."""
STREAM_CHUNK = 512  # texts classified per chunk when streaming a file


def split_labels(value: str) -> list[str]:
    """'体育,财经' → ['体育', '财经'] (ASCII or full-width commas); blanks are kept so that
    validation can name them."""
    return [part.strip() for part in value.replace("，", ",").split(",")]


def _chunks(items: Iterable[str], size: int) -> Iterator[list[str]]:
    it = iter(items)
    while chunk := list(islice(it, size)):
        yield chunk


def _open_output(output: Optional[str]):
    """Open --output before the (slow) model load so a bad path fails at once; opened for append
    and truncated by the caller once the model has loaded, so a failed load keeps the old file."""
    if not output:
        return sys.stdout
    try:
        return open(output, "a", encoding="utf-8")
    except OSError as exc:
        raise DataError(f"cannot write --output {output!r}: {exc.strerror}") from None


@contextlib.contextmanager
def _streamed_output(output: Optional[str], load: Callable[[], T]) -> Iterator[tuple[T, LineWriter]]:
    """Open --output (failing fast on a bad path), run the slow `load` (the model), then truncate
    the file and yield a line writer: a failed load keeps the old file, Ctrl-C leaves whole lines."""
    handle = _open_output(output)
    try:
        loaded = load()
        if output:
            handle.truncate(0)
        yield loaded, LineWriter(handle)
    finally:
        if output:
            handle.close()


def _table(results, console) -> None:
    from rich.table import Table

    table = Table(show_lines=False)
    table.add_column("text", overflow="fold", max_width=60)
    table.add_column("label")
    table.add_column("top scores")
    for r in results:
        label = ", ".join(r.label) if isinstance(r.label, list) else r.label
        top = "  ".join(f"{k} {v:.3f}" for k, v in list(r.scores.items())[:3])
        table.add_row(r.text, label or "—", top)
    console.print(table)


ENGINES = ("local", "ray")
# options that classify and eval share, declared once
RAY_ADDRESS_OPTION = typer.Option(None, "--ray-address", help="--engine ray: a cluster (auto, ray://HEAD:10001); "
                                                              "default: start Ray on this machine.")
NUM_ACTORS_OPTION = typer.Option(1, "--num-actors", help="--engine ray: actors, each loading the model once.")
COMPILE_OPTION = typer.Option("auto", "--compile", help="torch.compile the model (~1.15x faster on CPU after ~30-60 s "
                                                        "of compiling): on | off | auto (once scoring has taken "
                                                        "5 minutes).")
COMPILE_CHOICES = {"auto": "auto", "on": True, "off": False}


def compile_choice(value: str) -> Union[bool, str]:
    """--compile on|off|auto → the `compile=` argument of from_pretrained."""
    if value not in COMPILE_CHOICES:
        raise UsageError(f"--compile must be one of {', '.join(COMPILE_CHOICES)}, got {value!r}")
    return COMPILE_CHOICES[value]


def check_engine(engine: str, ray_address: Optional[str], num_actors: int) -> None:
    if engine not in ENGINES:
        raise UsageError(f"--engine must be one of {', '.join(ENGINES)}, got {engine!r}")
    if num_actors < 1:
        raise UsageError(f"--num-actors must be a positive number, got {num_actors}")
    if engine == "local" and (ray_address is not None or num_actors != 1):
        raise UsageError("--ray-address and --num-actors apply to --engine ray; add --engine ray")


@app.command()
def classify(
    texts: Optional[List[str]] = typer.Argument(None, help="Texts to classify (or use --input)."),
    model: str = typer.Option(..., "--model", "-m", help="Hub name or local directory of a BERT with an NSP head."),
    labels: Optional[str] = typer.Option(None, "--labels", "-l", help="Comma-separated candidate labels, e.g. 体育,财经."),
    prompt: Optional[str] = typer.Option(None, "--prompt", "-p",
                                         help="A named prompt set (e.g. tnews, tnews:news-2021) giving labels, words, "
                                              "template and placement."),
    template: Optional[List[str]] = typer.Option(None, "--template", "-t",
                                                 help="Prompt with {label}; repeat to average several. Default '{label}'."),
    placement: str = typer.Option("prefix", help="prefix: prompt first (the paper's default); suffix: text first."),
    multi_label: bool = typer.Option(False, "--multi-label", help="Return every label with score ≥ --threshold."),
    threshold: float = typer.Option(0.5, help="P(IsNext) threshold for --multi-label."),
    input_path: Optional[str] = typer.Option(None, "--input", "-i", help="File of texts (.txt/.jsonl/.csv) or - for stdin."),
    input_format: Optional[str] = typer.Option(None, help="txt|jsonl|csv; default from the file suffix (stdin: txt)."),
    text_field: str = typer.Option("text", help="Field (jsonl) or column (csv) holding the text."),
    output: Optional[str] = typer.Option(None, "--output", "-o", help="Write results here (streamed) instead of stdout."),
    fmt: str = typer.Option("jsonl", "--format", "-f", help="jsonl | csv | table."),
    device: Optional[str] = typer.Option(None, help="cpu, cuda, cuda:N or auto (default)."),
    dtype: str = typer.Option("float32", help="float32 (exact, default) | bfloat16 | float16 (GPU) | int8 (CPU)."),
    max_length: int = typer.Option(256, help="Max tokens per pair; longer texts are cut from their end."),
    batch_size: int = typer.Option(32, help="Pairs per forward pass."),
    engine: str = typer.Option("local", help="local (this process) | ray (Ray Data actor pool; needs "
                                             "--input FILE and --output .jsonl/.parquet, extra 'ray')."),
    ray_address: Optional[str] = RAY_ADDRESS_OPTION,
    num_actors: int = NUM_ACTORS_OPTION,
    compile_model: str = COMPILE_OPTION,
) -> None:
    """Classify texts among candidate labels, zero-shot."""
    from .classifier import NSPClassifier, parse_templates
    from .io import csv_line, iter_texts
    from .templates import check_placement, label_words

    if fmt not in OUTPUT_FORMATS:
        raise UsageError(f"--format must be one of {', '.join(OUTPUT_FORMATS)}, got {fmt!r}")
    compile_arg = compile_choice(compile_model)
    if prompt is not None:
        from .prompt_sets import load_prompt

        variant = load_prompt(prompt)
        if variant.words is None:
            raise UsageError(f"prompt {variant.key} is a sentence-pair prompt; classify needs a label prompt "
                             f"such as tnews, iflytek, csldcp or eprstmt")
        label_arg = {k: list(v) for k, v in variant.words.items()}
        if labels is not None:  # keep only the labels asked for, in the prompt's words
            wanted = split_labels(labels)
            unknown = [w for w in wanted if w not in label_arg]
            if unknown:
                raise UsageError(f"--labels {', '.join(unknown)} not in prompt {variant.key} "
                                 f"(its labels: {', '.join(label_arg)})")
            label_arg = {w: label_arg[w] for w in wanted}
        templates = template or list(variant.templates)
        placement = variant.placement if placement == "prefix" else placement
    else:
        if labels is None:
            raise UsageError("--labels is required (or --prompt NAME), e.g. --labels 体育,财经")
        label_arg = split_labels(labels)
        templates = template or ["{label}"]
    words = label_words(label_arg)
    label_list = list(words)
    if len(words) < 2 and not multi_label:
        raise UsageError(f"--labels gives one label ({label_list[0]!r}); give at least two, or add --multi-label")
    parse_templates(templates)
    check_placement(placement)
    if texts and input_path:
        raise UsageError("give texts as arguments or with --input, not both")
    if not texts and not input_path:
        raise UsageError("no texts: pass them as arguments, or use --input FILE (or --input - for stdin)")
    check_engine(engine, ray_address, num_actors)
    if engine == "ray":
        if not input_path or input_path == "-" or not output:
            raise UsageError("--engine ray reads --input FILE (.jsonl/.csv/.parquet) and writes --output FILE "
                             "(.jsonl/.parquet); give both")
        if fmt != "jsonl":
            raise UsageError(f"--engine ray writes JSON lines or Parquet (chosen by the --output suffix); "
                             f"drop --format {fmt}")
        if input_format is not None:
            raise UsageError("--engine ray picks the reader from the --input suffix (.jsonl, .csv, .tsv, .parquet); "
                             "drop --input-format")
        from .distributed import classify_with_ray

        rows = classify_with_ray(input_path, output, model, label_arg, templates, placement, multi_label, threshold,
                                 text_field=text_field, num_actors=num_actors, batch_size=batch_size,
                                 max_length=max_length, dtype=dtype, device=device, ray_address=ray_address,
                                 compile=compile_arg)
        typer.echo(f"{rows} rows classified on Ray → {output}", err=True)
        return
    source: Iterable[str] = texts if texts else iter_texts(input_path, input_format, text_field)

    load = lambda: NSPClassifier.from_pretrained(model, device=device, max_length=max_length,  # noqa: E731
                                                 batch_size=batch_size, dtype=dtype, compile=compile_arg)
    with _streamed_output(output, load) as (clf, writer):
        if fmt == "csv":
            writer.write(csv_line(["text", "label"] + label_list))
        for chunk in _chunks(source, STREAM_CHUNK):
            results = clf.classify(chunk, label_arg, templates, placement, multi_label, threshold)
            if fmt == "table":
                from rich.console import Console
                _table(results, Console(file=writer.handle, soft_wrap=False))
                continue
            for r in results:
                if fmt == "jsonl":
                    writer.write(json.dumps(r.to_dict(), ensure_ascii=False))
                else:
                    label = "|".join(r.label) if isinstance(r.label, list) else r.label
                    writer.write(csv_line([r.text, label] + [f"{r.scores[name]:.6f}" for name in label_list]))


@app.command()
def link(
    model: str = typer.Option(..., "--model", "-m", help="Hub name or local directory of a BERT with an NSP head."),
    input_path: str = typer.Option(..., "--input", "-i", help="JSONL: one mention context and its candidates per line."),
    output: Optional[str] = typer.Option(None, "--output", "-o", help="Write results here (streamed) instead of stdout."),
    text_field: str = typer.Option("text", help="Field holding the mention in its context."),
    candidates_field: str = typer.Option("candidates", help='Field holding [{"id": ..., "description": ...}, ...].'),
    device: Optional[str] = typer.Option(None, help="cpu, cuda, cuda:N or auto (default)."),
    dtype: str = typer.Option("float32", help="float32 | bfloat16 | float16 (GPU) | int8 (CPU)."),
    max_length: int = typer.Option(256, help="Max tokens per pair."),
    batch_size: int = typer.Option(32, help="Pairs per forward pass."),
) -> None:
    """Entity linking: pick each mention's entity by P(IsNext) of (context, entity description)."""
    from .classifier import NSPClassifier
    from .io import field_text, iter_records

    def queries() -> Iterator[tuple[str, object]]:
        for line_no, record in iter_records(input_path, "jsonl"):
            text = field_text(record, text_field, input_path, line_no)
            if candidates_field not in record:
                raise DataError(f"{input_path}:{line_no}: no field {candidates_field!r}; choose it with --candidates-field")
            yield text, record[candidates_field]

    load = lambda: NSPClassifier.from_pretrained(model, device=device, max_length=max_length,  # noqa: E731
                                                 batch_size=batch_size, dtype=dtype)
    with _streamed_output(output, load) as (clf, writer):
        for chunk in _chunks(queries(), STREAM_CHUNK):
            for result in clf.link([t for t, _ in chunk], [c for _, c in chunk]):
                writer.write(json.dumps(result.to_dict(), ensure_ascii=False))


@app.command("eval")
def eval_cmd(
    model: str = typer.Option(..., "--model", "-m", help="Hub name or local directory of a BERT with an NSP head."),
    data_dir: str = typer.Option(..., "--data-dir", "-d", help="FewCLUE datasets folder: <task>/<split>.json."),
    tasks: str = typer.Option("all", help="'all' (the nine FewCLUE tasks) or a list such as eprstmt,tnews."),
    split: Optional[str] = typer.Option(None, help="Split to report (default: each task's, test_public)."),
    dev_split: Optional[str] = typer.Option(None, help="Split S-C tasks learn thresholds on (default dev_few_all)."),
    limit: Optional[int] = typer.Option(None, help="Keep the first N examples of every split file read."),
    max_length: int = typer.Option(128, help="Max tokens per pair (the paper's 128)."),
    output_dir: str = typer.Option("nspzero-results", "--output-dir", "-o", help="Where results and the cache go."),
    soft_positions: bool = typer.Option(True, "--soft-positions/--no-soft-positions",
                                        help="ChID: put the idiom's position ids at the blank (method.md §4)."),
    prompt: Optional[List[str]] = typer.Option(None, help="Override a task's prompt: TASK=SET[:VARIANT], repeatable."),
    text_field: Optional[str] = typer.Option(None, help="Data field holding the text (tasks with a 'text' role)."),
    label_field: Optional[str] = typer.Option(None, help="Data field holding the gold label."),
    compare_prompts: bool = typer.Option(False, "--compare-prompts",
                                         help="Also run every template variant and their ensembles (label tasks)."),
    calibrate: Optional[str] = typer.Option(None, help="Extra calibrated rows: content-free, prior or both "
                                                       "(comma-separated); off by default."),
    plots: bool = typer.Option(False, "--plots", help="Write <task>.confusion.png (and S-C score histograms)."),
    device: Optional[str] = typer.Option(None, help="cpu, cuda, cuda:N or auto (default)."),
    dtype: str = typer.Option("float32", help="float32 (default) | bfloat16 | float16 (GPU) | int8 (CPU)."),
    batch_size: int = typer.Option(32, help="Pairs per forward pass."),
    engine: str = typer.Option("local", help="local (this process) | ray (score pairs on a Ray actor pool, "
                                             "extra 'ray')."),
    ray_address: Optional[str] = RAY_ADDRESS_OPTION,
    num_actors: int = NUM_ACTORS_OPTION,
    compile_model: str = COMPILE_OPTION,
) -> None:
    """Reproduce the NSP-BERT zero-shot FewCLUE table (results.json, results.md, predictions)."""
    import os

    from .harness import EvalSettings, evaluate
    from .scorer import NSPScorer
    from .tasks.registry import resolve_task_list

    if limit is not None and limit < 1:
        raise UsageError(f"--limit must be a positive number of examples, got {limit}")
    if not os.path.isdir(data_dir):
        raise UsageError(f"--data-dir {data_dir!r} is not a directory")
    names = resolve_task_list(tasks)
    overrides = {}
    for item in prompt or []:
        task_name, sep, spec = item.partition("=")
        if not sep or task_name not in names:
            raise UsageError(f"--prompt {item!r}: expected TASK=SET[:VARIANT] for one of {', '.join(names)}")
        overrides[task_name] = spec
    from .calibration import CALIBRATIONS

    calibration = [c.strip() for c in calibrate.split(",") if c.strip()] if calibrate else []
    for c in calibration:
        if c not in CALIBRATIONS:
            raise UsageError(f"--calibrate {c!r}: choose from {', '.join(CALIBRATIONS)}")
    check_engine(engine, ray_address, num_actors)
    compile_arg = compile_choice(compile_model)
    fields = {role: value for role, value in (("text", text_field), ("label", label_field)) if value}
    settings = EvalSettings(data_dir=data_dir, tasks=names, split=split, dev_split=dev_split, limit=limit,
                            soft_positions=soft_positions, prompt_overrides=overrides, fields=fields,
                            compare_prompts=compare_prompts, calibration=calibration, plots=plots)
    engine_scorer = contextlib.nullcontext()
    if engine == "ray":  # before the model loads: a missing Ray fails at once
        from .distributed import RayPairScorer, ray_session

        engine_scorer = RayPairScorer(model, num_actors=num_actors, device=device, max_length=max_length,
                                      batch_size=batch_size, dtype=dtype, compile=compile_arg)
    # the local scorer names the model and keys the cache; with --engine ray the actors do the scoring
    scorer = NSPScorer.from_pretrained(model, device=device, dtype=dtype, max_length=max_length,
                                       batch_size=batch_size, compile=compile_arg if engine == "local" else False)

    def report(name: str, entry: dict) -> None:
        typer.echo(f"{name:8s} accuracy {100 * entry['accuracy']:5.1f}%  ({entry['examples']} examples, "
                   f"{entry['pairs_scored']}/{entry['pairs']} pairs scored, {entry['seconds']:.1f}s)", err=True)

    if engine == "ray":
        with ray_session(ray_address), engine_scorer:
            results = evaluate(scorer, settings, output_dir, on_task_done=report, engine=engine_scorer,
                               engine_name=f"ray ({num_actors} actor{'s' if num_actors > 1 else ''})")
    else:
        results = evaluate(scorer, settings, output_dir, on_task_done=report)
    typer.echo(open(os.path.join(output_dir, "results.md"), encoding="utf-8").read())
    if results.get("fewclue_score") is not None:
        typer.echo(f"FewCLUE score: {100 * results['fewclue_score']:.2f}", err=True)


@app.command()
def bench(
    model: Optional[str] = typer.Option(None, "--model", "-m", help="Benchmark this checkpoint instead of random weights."),
    config: Optional[str] = typer.Option(None, help="BERT config.json for the random model (default bert-base-chinese's shape)."),
    vocab: Optional[str] = typer.Option(None, help="vocab.txt for the random model (e.g. bert-base-chinese's)."),
    data_dir: Optional[str] = typer.Option(None, "--data-dir", "-d", help="FewCLUE folder for real texts (else synthetic)."),
    tasks: str = typer.Option("tnews,iflytek", help="Label tasks whose texts and default prompts to use."),
    pairs: int = typer.Option(240, help="About this many pairs per task."),
    rounds: int = typer.Option(2, help="Interleaved timing rounds (the best round counts)."),
    max_length: int = typer.Option(128, help="Max tokens per pair."),
    batch_size: int = typer.Option(32, help="Pairs per forward pass."),
    dtypes: Optional[str] = typer.Option(None, help="Reduced precisions to compare, e.g. bfloat16,int8 (default: int8, "
                                                    "plus bfloat16 where the CPU has native bf16)."),
    no_pipeline: bool = typer.Option(False, "--no-pipeline", help="Skip transformers' NLI pipeline baseline."),
    json_path: Optional[str] = typer.Option(None, "--json", help="Also write the figures as JSON here."),
    compile_model: bool = typer.Option(False, "--compile", help="Also time the torch.compile'd fp32 (and bf16) paths."),
) -> None:
    """Throughput of nspzero's paths vs a pad-to-max baseline and transformers' NLI pipeline, side by side."""
    from .bench import format_table, run_benchmark, save_json

    if pairs < 1 or rounds < 1:
        raise UsageError("--pairs and --rounds must be positive")
    summary = run_benchmark(model=model, config_path=config, vocab_path=vocab, data_dir=data_dir,
                            tasks=[t.strip() for t in tasks.split(",") if t.strip()], pairs_per_task=pairs,
                            rounds=rounds, max_length=max_length, batch_size=batch_size,
                            include_pipeline=not no_pipeline,
                            dtypes=[d.strip() for d in dtypes.split(",")] if dtypes else None,
                            log=lambda m: typer.echo(m, err=True), compile=compile_model)
    typer.echo(format_table(summary))
    if json_path:
        save_json(summary, json_path)


from . import cli_serve  # noqa: E402,F401  (registers `nspzero serve`; needs `app` defined above)


def main(argv: Optional[list[str]] = None) -> None:
    """Console entry point: NSPZeroErrors become one line on stderr and an exit code."""
    logger = logging.getLogger("nspzero")
    if not any(getattr(h, "_nspzero_cli", False) for h in logger.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("nspzero: warning: %(message)s"))
        handler._nspzero_cli = True  # type: ignore[attr-defined]
        logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.setLevel(logging.WARNING)
        code = app(args=argv, standalone_mode=False)
        if isinstance(code, int) and code:  # typer turns Ctrl-C into a return value of 130
            if code == 130:
                print("nspzero: interrupted; results written so far are complete lines", file=sys.stderr)
            sys.exit(code)
    except NSPZeroError as exc:
        print(f"nspzero: error: {exc}", file=sys.stderr)
        sys.exit(exc.exit_code)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        print("nspzero: aborted", file=sys.stderr)
        sys.exit(130)
    except KeyboardInterrupt:
        print("nspzero: interrupted", file=sys.stderr)
        sys.exit(130)
    except typer.TyperException as exc:  # usage errors from the parser (typer vendors click)
        message = exc.format_message() if hasattr(exc, "format_message") else str(exc)
        if message:  # (empty when the parser has already printed the help)
            print(f"nspzero: error: {message} (see nspzero --help)", file=sys.stderr)
        sys.exit(getattr(exc, "exit_code", 2))

if __name__ == "__main__":
    main()

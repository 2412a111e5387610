"""`nspzero classify`: texts (arguments, a file or stdin) × one request → results, through the one
reader and the one writer (local) or a Ray Data actor pool (--engine ray)."""
import contextlib
import os
import sys
from typing import Any, Iterable, List, Optional

import typer

from ..errors import DataError, UsageError
from ..io import (CLASSIFY_COLUMNS, RowWriter, TextRow, check_output, input_format as resolve_input_format, output_columns,
                  output_format, read_texts, result_row)
from .app import app
from .options import (NUM_ACTORS_OPTION, RAW_CSV_OPTION, RAY_ADDRESS_OPTION, ModelOptions, check_engine,
                      label_option, with_model_options)

STREAM_CHUNK = 512  # texts classified per call when streaming a file (with --resume: rows per shard)


@app.command()
@with_model_options(long_text=True)
def classify(
    texts: Optional[List[str]] = typer.Argument(None, help="Texts to classify (or use --input)."),
    labels: Optional[List[str]] = typer.Option(None, "--labels", "-l",
                                               help="Candidate labels, comma-separated (体育,财经) or repeated (-l 体育 "
                                                    "-l 财经). A file row's own 'labels' field overrides them."),
    labels_file: Optional[str] = typer.Option(None, "--labels-file", help="Candidate labels from a file: .txt (a name "
                                              "per line; name<TAB>word|word<TAB>description), .json or .yaml."),
    prompt: Optional[str] = typer.Option(None, "--prompt", "-p",
                                         help="A named prompt set (e.g. tnews, tnews:news-2021) giving labels, words, "
                                              "templates, placement and combine rule; options given override it."),
    template: Optional[List[str]] = typer.Option(None, "--template", "-t",
                                                 help="Prompt with {label}; repeat to average several. Default '{label}'."),
    placement: Optional[str] = typer.Option(None, help="prefix: prompt first (the paper's default); suffix: text first."),
    combine: Optional[str] = typer.Option(None, help="How a label's several prompts combine: mean (default) | logmean."),
    multi_label: bool = typer.Option(False, "--multi-label", help="Return every label with score ≥ --threshold."),
    threshold: float = typer.Option(0.5, help="P(IsNext) threshold for --multi-label."),
    long_text: str = typer.Option("truncate", "--long-text", help="truncate: cut a long text to --max-length (the "
                                  "paper's); chunk: read it in windows on sentence boundaries."),
    aggregate: str = typer.Option("max", help="--long-text chunk: a label's score over a text is the max | mean of "
                                              "its windows' scores."),
    overlap: Optional[int] = typer.Option(None, help="--long-text chunk: tokens a window repeats from the one before "
                                                     "(whole sentences where they fit; at most half a window). "
                                                     "Default 32."),
    top_k: Optional[int] = typer.Option(None, "--top-k", help="Output only the K best labels' scores per text (the "
                                                             "decision still uses every label)."),
    input_path: Optional[str] = typer.Option(None, "--input", "-i",
                                             help="File of texts (.txt/.jsonl/.csv/.tsv/.parquet) or - for stdin."),
    input_format: Optional[str] = typer.Option(None, help="txt|jsonl|csv|tsv|parquet; default from the suffix "
                                                          "(stdin: txt)."),
    text_field: str = typer.Option("text", help="Field (jsonl) or column (csv, parquet) holding the text."),
    output: Optional[str] = typer.Option(None, "--output", "-o",
                                         help="Write results here; the suffix picks the format (.jsonl, .json, .csv, "
                                              ".parquet). Written in full or not at all."),
    fmt: Optional[str] = typer.Option(None, "--format", "-f", help="jsonl (default) | json | csv | table on stdout; "
                                                                   "with --output it may only confirm the suffix "
                                                                   "(jsonl, json, csv, parquet)."),
    raw_csv: bool = RAW_CSV_OPTION,
    engine: str = typer.Option("local", help="local (this process) | ray (Ray Data actor pool; needs --input FILE "
                                             "and --output FILE, extra 'ray')."),
    ray_address: Optional[str] = RAY_ADDRESS_OPTION,
    num_actors: int = NUM_ACTORS_OPTION,
    resume: bool = typer.Option(False, "--resume", help="With --input FILE --output FILE: keep finished shards in "
                                "OUT.progress/ as the run goes; rerun with --resume after a crash or kill to score "
                                "only what is missing (same input, model and request; the folder goes on success)."),
    models: ModelOptions = None,
) -> None:
    """Classify texts among candidate labels, zero-shot."""
    from ..request import build_request, check_text  # here, so --help loads no torch
    from ..tuning.saved import tuned_defaults, with_defaults

    label_arg = label_option(labels, labels_file)
    # a tuned folder's labels and templates fill what is not given (its json is read before torch loads)
    tuned = tuned_defaults(models.model) if os.path.isdir(os.path.expanduser(models.model)) else None
    fields = with_defaults(tuned, label_arg, template or None, placement, combine, prompt)
    if fields["labels"] is None and prompt is None and not input_path:
        raise UsageError("--labels is required (or --labels-file FILE, or --prompt NAME), e.g. --labels 体育,财经")
    request = build_request(fields["labels"], prompt=prompt, template=fields["template"],
                            placement=fields["placement"], combine=fields["combine"],
                            multi_label=multi_label, threshold=threshold, long_text=long_text, aggregate=aggregate,
                            top_k=top_k, labels_per_row=bool(input_path),
                            **({} if overlap is None else {"overlap": overlap}))
    if texts and input_path:
        raise UsageError("give texts as arguments or with --input, not both")
    if not texts and not input_path:
        raise UsageError("no texts: pass them as arguments, or use --input FILE (or --input - for stdin)")
    if input_path:
        resolve_input_format(input_path, input_format)
    check_output(output, [input_path, labels_file, prompt and prompt.partition(":")[0], models.model])
    fmt = output_format(output, fmt)
    if fmt == "table" and output:
        raise UsageError("--format table is for the terminal; write a file as .jsonl, .json, .csv or .parquet")
    check_engine(engine, ray_address, num_actors)
    if resume and (not input_path or input_path == "-" or not output or output == "-"):
        raise UsageError("--resume reads --input FILE and writes --output FILE (stdin and texts given as arguments "
                         "cannot be read again); give both")
    if engine == "ray":
        if not input_path or input_path == "-" or not output:
            raise UsageError("--engine ray reads --input FILE and writes --output FILE; give both")
        from ..distributed.classify import classify_with_ray

        rows = classify_with_ray(input_path, output, models.model, request=request, text_field=text_field,
                                 input_format=input_format, num_actors=num_actors, ray_address=ray_address,
                                 raw_csv=raw_csv, resume=resume, **models.load_args)
        typer.echo(f"{rows} rows classified on Ray → {output} ({fmt})", err=True)
        return
    own_labels = False
    if texts:
        source: Iterable[TextRow] = [TextRow(f"texts[{i}]", check_text(t, f"texts[{i}]")) for i, t in enumerate(texts)]
        total: Optional[int] = len(texts)
    else:  # a file is read once before the model loads: its errors come at once, and the bar gets an ETA
        total = None
        if input_path != "-":
            total, own_labels = 0, False
            for row in read_texts(input_path, input_format, text_field):
                total += 1
                own_labels |= request.row_labels(row.labels, row.where) is not None
        source = read_texts(input_path, input_format, text_field)
    flat = output_columns(request, fmt, own_labels)
    from ..resume import Progress, fingerprint, pinned, stream

    progress: Any = contextlib.nullcontext()
    written = 0  # rows handed to the writer (kept shards included): what the closing line reports
    load_args = pinned(models.load_args) if resume else models.load_args
    if resume:  # locked and checked before the model loads
        parts = fingerprint(input_path=input_path, input_format=resolve_input_format(input_path, input_format),
                            text_field=text_field, model=models.model, request=request,
                            **{k: load_args[k] for k in ("dtype", "max_length", "device", "backend", "compile")})
        progress = Progress(output, parts, STREAM_CHUNK)
    with progress:
        from ..classifier import NSPClassifier

        clf = NSPClassifier.from_pretrained(models.model, **load_args)
        from ..scorer import PROGRESS_MIN_PAIRS, progress_bar

        def score(chunk: list[TextRow]) -> list[dict]:
            label_sets = [request.row_labels(r.labels, r.where) for r in chunk]
            if flat is not None and any(ls is not None for ls in label_sets):
                where = next(r.where for r, ls in zip(chunk, label_sets) if ls is not None)
                raise DataError(f"{where}: this row has its own labels, but the CSV output already has one column "
                                f"per label of --labels; write .jsonl (or give every row its labels)")
            return [r.to_dict() for r in clf.run(request, [r.text for r in chunk], progress=False,
                                                 label_sets=label_sets)]

        def emit(chunk: list[TextRow], results: list[dict]) -> None:
            nonlocal written
            written += len(chunk)
            if fmt == "table":
                _table(results)
            else:
                for row, result in zip(chunk, results):
                    writer.write(result_row(result, row.extra, fmt, flat))
            bar.update(len(chunk))

        # one bar over the whole input (texts, with an overall ETA) by the library's rule for bars
        pairs = PROGRESS_MIN_PAIRS if total is None else total * request.pairs_per_text
        with RowWriter(output, fmt, columns=CLASSIFY_COLUMNS, raw_csv=raw_csv) as writer, \
                progress_bar(None, pairs, total, "classifying", "text") as bar:
            stream(source, score, emit, progress if resume else None, chunk_rows=STREAM_CHUNK)
        if resume:
            progress.finish()
            if progress.resumed:
                typer.echo(f"{progress.resumed} of the output's shards were kept from the interrupted run "
                           f"→ {output}", err=True)
    if output and output != "-":  # the file appears only now (written whole), so say what it holds, as the Ray path does
        typer.echo(f"{written} rows classified → {output} ({fmt})", err=True)


def _table(results) -> None:
    """A rich table on stdout (results as dicts), one line per text: a text longer than the terminal's width is cut
    with "…" (the file formats keep it whole). Texts and labels are shown as text (no markup is
    interpreted), their control characters as visible stand-ins (`display.visible_controls`: an ESC
    sequence never reaches the terminal, a newline never breaks the line)."""
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    from ..display import visible_controls

    table = Table(show_lines=False)
    table.add_column("text", overflow="ellipsis", no_wrap=True, ratio=1)
    table.add_column("label", no_wrap=True)
    table.add_column("top scores", no_wrap=True)
    for r in results:
        label = ", ".join(r["label"]) if isinstance(r["label"], list) else r["label"]
        top = "  ".join(f"{k} {v:.3f}" for k, v in list(r["scores"].items())[:3])
        table.add_row(*(Text(visible_controls(cell)) for cell in (r["text"], label or "—", top)))
    Console(file=sys.stdout, soft_wrap=False).print(table)

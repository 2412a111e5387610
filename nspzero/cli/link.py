"""`nspzero link`: entity linking over a file of mention contexts and their candidates."""
from typing import Optional

import typer

from ..errors import DataError, UsageError, shown
from ..io import RowWriter, check_output, field_text, output_format, read_records, result_row
from .app import app
from .options import RAW_CSV_OPTION, ModelOptions, with_model_options

STREAM_CHUNK = 512


@app.command()
@with_model_options()
def link(
    input_path: str = typer.Option(..., "--input", "-i", help="JSONL/CSV/Parquet: one mention context and its "
                                                              "candidates per record, or - for JSON lines on stdin."),
    input_format: Optional[str] = typer.Option(None, help="jsonl|csv|tsv|parquet; default from the suffix "
                                                          "(stdin: jsonl)."),
    output: Optional[str] = typer.Option(None, "--output", "-o",
                                         help="Write results here; the suffix picks the format (.jsonl, .json, "
                                              ".csv, .parquet). Written in full or not at all."),
    fmt: Optional[str] = typer.Option(None, "--format", "-f", help="jsonl (default) | json | csv on stdout; with "
                                                                   "--output it may only confirm the suffix (jsonl, "
                                                                   "json, csv, parquet)."),
    text_field: str = typer.Option("text", help="Field holding the mention in its context."),
    candidates_field: str = typer.Option("candidates", help='Field holding [{"id": ..., "description": ...}, ...].'),
    raw_csv: bool = RAW_CSV_OPTION,
    models: ModelOptions = None,
) -> None:
    """Entity linking: pick each mention's entity by P(IsNext) of (context, entity description)."""
    from ..linking import check_candidates  # here, so --help loads no torch

    check_output(output, [input_path])
    fmt = output_format(output, fmt)
    if fmt == "table":
        raise UsageError("link writes jsonl, json, csv or parquet; drop --format table")
    if input_path == "-" and input_format is None:
        input_format = "jsonl"

    def queries():
        for record in read_records(input_path, input_format):
            text = field_text(record, text_field)
            if candidates_field not in record.fields:
                raise DataError(f"{record.where}: no field {shown(candidates_field)}; choose it with --candidates-field")
            try:
                candidates = check_candidates(record.fields[candidates_field], f"field {shown(candidates_field)}")
            except UsageError as exc:
                raise DataError(f"{record.where}: {exc}") from None
            extra = {k: v for k, v in record.fields.items() if k not in (text_field, candidates_field)}
            yield text, candidates, extra

    if input_path != "-":
        sum(1 for _ in queries())  # the file's errors come before the model loads
    from ..pipeline import chunked

    clf = models.classifier()
    with RowWriter(output, fmt, raw_csv=raw_csv) as writer:
        for chunk in chunked(queries(), lambda _: 1, STREAM_CHUNK):
            for (_, _, extra), result in zip(chunk, clf.link([t for t, _, _ in chunk], [c for _, c, _ in chunk])):
                writer.write(result_row(result.to_dict(), extra, fmt))

"""`nspzero report`: an eval output folder → one self-contained HTML file (opens offline)."""
from typing import Optional

import typer

from .app import app


@app.command()
def report(
    out_dir: str = typer.Argument(..., help="An eval output folder (holding results.json)."),
    output: Optional[str] = typer.Option(None, "--output", "-o", help="Where to write the HTML "
                                                                      "(default OUT_DIR/report.html)."),
) -> None:
    """Write an eval's HTML report: results beside the paper, confusion matrices, histograms, examples."""
    from ..reports.html import write_report

    typer.echo(str(write_report(out_dir, output)))

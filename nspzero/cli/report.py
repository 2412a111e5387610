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
    from pathlib import Path

    from ..html_report import write_report
    from ..io import check_output

    folder = Path(out_dir)
    check_output(output, [str(folder / "results.json")] + [str(p) for pattern in ("*.predictions.jsonl", "*.png")
                                                         for p in folder.glob(pattern)])
    typer.echo(str(write_report(out_dir, output)))

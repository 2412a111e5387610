"""`nspzero export-onnx`: a checkpoint → an ONNX folder (fp32 and int8) for ONNX Runtime, atomically."""
import typer

from .app import app


@app.command("export-onnx")
def export_onnx(
    out_dir: str = typer.Argument(..., help="The folder to write (must not exist, or be empty)."),
    model: str = typer.Option(..., "--model", "-m", help="The checkpoint to export (a folder or hub name)."),
    int8: bool = typer.Option(True, "--int8/--no-int8", help="Also write model.int8.onnx (ONNX Runtime int8)."),
) -> None:
    """Write model.onnx (fp32), model.int8.onnx, config.json and the tokenizer to OUT_DIR; load it back
    with --model OUT_DIR (and --dtype int8 for the int8 file). Needs pip install 'nspzero[onnx]'."""
    from ..onnx_export import export_onnx as export

    out = export(model, out_dir, int8=int8)
    typer.echo(f"wrote {out}")

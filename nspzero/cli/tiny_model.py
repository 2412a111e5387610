"""`nspzero tiny-model`: a tiny random BERT folder for trying the commands offline (meaningless scores)."""
import typer

from .app import app


@app.command("tiny-model")
def tiny_model(
    out_dir: str = typer.Argument(..., help="The folder to write (must not exist, or be empty)."),
    seed: int = typer.Option(0, help="Random seed of the weights."),
) -> None:
    """Write a tiny BERT with RANDOM weights (~3 MB) for trying nspzero offline. Its scores are meaningless."""
    from ..tiny_model import write_tiny_model

    out = write_tiny_model(out_dir, seed=seed)
    typer.echo(f"wrote {out}: random weights, so every score it gives is MEANINGLESS; use it to try the CLI, "
               f"server and page offline (--model {out}), never to classify", err=True)

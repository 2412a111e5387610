"""`nspzero convert`: a Google TF1 or UER-py checkpoint → a transformers folder (atomically)."""
from typing import Optional

import typer

from .app import app


@app.command()
def convert(
    src: str = typer.Argument(..., help="A Google BERT or ALBERT checkpoint (folder with bert_model.ckpt.index or "
                                        "model.ckpt-best.index, or the prefix) or a UER-py .bin state dict."),
    out_dir: str = typer.Argument(..., help="The transformers folder to write (must not exist, or be empty)."),
    config: Optional[str] = typer.Option(None, help="bert_config.json, albert_config.json or UER config (default: found beside SRC)."),
    vocab: Optional[str] = typer.Option(None, help="vocab.txt (default: vocab.txt or vocab_chinese.txt beside SRC)."),
    source: Optional[str] = typer.Option(None, "--from", help="google | uer (default: detected)."),
) -> None:
    """Convert the paper's own checkpoint formats to config.json + model.safetensors + vocab.txt."""
    from ..formats.checkpoints import convert_checkpoint

    out = convert_checkpoint(src, out_dir, config=config, vocab=vocab, source=source)
    typer.echo(f"wrote {out}")

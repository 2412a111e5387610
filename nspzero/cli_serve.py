"""`nspzero serve`: registered on the CLI's app when nspzero.cli imports this module.

Kept apart from nspzero/cli.py so that the CLI works without the 'serve' extra: fastapi and
uvicorn are imported only when the command runs (and their absence is a one-line usage error).
"""
from __future__ import annotations

from typing import Optional

import typer

from .cli import app


@app.command()
def serve(
    model: str = typer.Option(..., "--model", "-m", help="Hub name or local directory of a BERT with an NSP head."),
    host: str = typer.Option("127.0.0.1", help="Address to bind; the default serves this machine only "
                                               "(the server has no authentication)."),
    port: int = typer.Option(8000, help="TCP port."),
    dtype: str = typer.Option("float32", help="float32 (exact, default) | bfloat16 | float16 (GPU) | int8 (CPU)."),
    device: Optional[str] = typer.Option(None, help="cpu, cuda, cuda:N or auto (default)."),
    max_length: int = typer.Option(256, help="Max tokens per pair; longer texts are cut from their end."),
    batch_size: int = typer.Option(32, help="Pairs per forward pass."),
    max_texts: int = typer.Option(256, help="Most texts one request may hold (more: HTTP 413)."),
    max_labels: int = typer.Option(256, help="Most labels one request may hold (more: HTTP 413)."),
    max_text_chars: int = typer.Option(20000, help="Most characters one text may have (more: HTTP 413)."),
) -> None:
    """Serve zero-shot classification over HTTP (POST /classify, GET /health, docs at /docs)."""
    from .serve import run_server

    run_server(model, host=host, port=port, dtype=dtype, device=device, max_length=max_length,
               batch_size=batch_size, max_texts=max_texts, max_labels=max_labels, max_text_chars=max_text_chars)

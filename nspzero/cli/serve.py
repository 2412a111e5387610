"""`nspzero serve`: the HTTP server. fastapi and uvicorn (the 'serve' extra) are imported only when
the command runs, so the rest of the CLI works without them."""
from typing import Optional

import typer

from ..http_limits import BODY_TIMEOUT_S, HEADER_TIMEOUT_S, MAX_CONNECTIONS, MAX_PAIRS
from .app import app
from .options import ModelOptions, with_model_options


@app.command()
@with_model_options(compile_default="off")
def serve(
    host: str = typer.Option("127.0.0.1", help="Address to bind; the default serves this machine only "
                                               "(the server has no authentication)."),
    port: int = typer.Option(8000, help="TCP port."),
    max_texts: int = typer.Option(256, help="Most texts one request may hold (more: HTTP 413)."),
    max_labels: int = typer.Option(256, help="Most labels one request may hold (more: HTTP 413)."),
    max_text_chars: int = typer.Option(20000, help="Most characters one text may have (more: HTTP 413)."),
    max_pairs: int = typer.Option(MAX_PAIRS, help="Most pairs (texts × labels × templates × words) one request may ask "
                                              "to score (more: HTTP 413)."),
    header_timeout: float = typer.Option(HEADER_TIMEOUT_S, help="Seconds a client may take to send a request's head; then "
                                                    "the connection is closed."),
    body_timeout: float = typer.Option(BODY_TIMEOUT_S, help="Seconds a request body may stall; then HTTP 408."),
    max_connections: int = typer.Option(MAX_CONNECTIONS, help="Most open connections; more get HTTP 503 (lowered to "
                                                              "what the file-descriptor limit allows)."),
    allowed_hosts: Optional[str] = typer.Option(None, "--allowed-hosts",
                                                help="Comma-separated Host names the server answers (others: HTTP "
                                                     "400), against DNS rebinding; '*' for any. Default: localhost, "
                                                     "127.0.0.1, [::1] when bound to loopback, else any."),
    results: Optional[str] = typer.Option(None, "--results", help="An eval output folder: its HTML report at "
                                                                   "/report, linked from the page."),
    models: ModelOptions = None,
) -> None:
    """Serve zero-shot classification over HTTP: the page at /, POST /classify, POST / (the Hugging Face
    zero-shot payload), GET /health, docs at /docs."""
    from ..serve import run_server

    if results is not None:
        from ..web import report_html

        report_html(results)  # rendered now: a folder that is no eval output fails here, not at the first visit
    hosts = [h.strip() for h in allowed_hosts.split(",") if h.strip()] if allowed_hosts is not None else None

    run_server(models.model, host=host, port=port, max_texts=max_texts, max_labels=max_labels,
               max_text_chars=max_text_chars, max_pairs=max_pairs, results_dir=results, header_timeout=header_timeout,
               body_timeout=body_timeout, max_connections=max_connections, allowed_hosts=hosts, **models.load_args)

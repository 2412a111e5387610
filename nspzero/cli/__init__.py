"""The command line only: parse arguments, build the library's request, call it, print errors as one line.

`app.py` holds the typer app and the entry point; `options.py` declares the options commands
share; each command has its own module and registers itself on the app when imported here.
`python -m nspzero.cli` is the `nspzero` command.
"""
from . import bench, classify, convert, evaluate, export, link, report, serve, tiny_model, tune  # noqa: F401  (each registers its command)
from .app import app, main

__all__ = ["app", "main"]

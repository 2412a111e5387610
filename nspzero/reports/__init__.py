"""Eval reports from one diagnostics model (diagnostics.py): the HTML page (html.py, jinja2
templates), results.md (markdown.py) and the PNG plots (png.py) all draw the same numbers."""

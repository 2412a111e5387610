"""`nspzero report`: one self-contained HTML file from an eval output folder, to read or send on.

The page is rendered by jinja2 with autoescape from templates/report.html.j2, so every value from
results.json (task names, labels, texts; in SVG <title>s and attributes too) is escaped by the
engine, never by hand. The file holds no script at all and says so in its Content-Security-Policy:
even a value that slipped through could not run. Everything is inline (CSS, SVG; no font or image
download), so it opens from disk with no internet.
"""
from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Any, Optional

from .diagnostics import Diagnostics, Histograms, folder_diagnostics, pct, short_numbers, shorten

# no script, no fetch; inline CSS (the <style> block and the cells' shading) is the only thing allowed
CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'"
BAR_COLOURS = ("#2f6fde", "#e07b39", "#1f9d55", "#9c4dcc", "#c62828", "#00838f", "#6d4c41", "#5c6bc0")
NUMBERED_ABOVE = 20         # classes: above this many, columns carry numbers and the table gets small


def render_report_html(out_dir: str | os.PathLike[str]) -> str:
    """The report of the eval in `out_dir`, as one HTML string (the entry point of `nspzero report`,
    `eval --report` and the server's GET /report). Raises DataError for a missing or malformed
    results.json."""
    return render_diagnostics(folder_diagnostics(out_dir))


def write_report(out_dir: str | os.PathLike[str], output: Optional[str | os.PathLike[str]] = None) -> Path:
    """Write the HTML report of the eval in `out_dir` to `output` (default: OUT_DIR/report.html),
    atomically; returns its path. Nothing is written when results.json is unreadable, or when
    `output` is one of the files the report reads (results.json, a predictions file)."""
    from ..io import atomic_write_text, check_output

    path = Path(output) if output is not None else Path(out_dir) / "report.html"
    if path.parent.is_dir():
        inputs = [Path(out_dir) / "results.json", *Path(out_dir).glob("*.predictions.jsonl")]
        check_output(str(path), [str(p) for p in inputs])
    atomic_write_text(path, render_report_html(out_dir))
    return path


@lru_cache(maxsize=1)
def _environment() -> Any:
    import jinja2

    env = jinja2.Environment(loader=jinja2.PackageLoader("nspzero.reports", "templates"),
                             autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["pct"] = pct
    env.filters["short"] = shorten
    return env


def render_diagnostics(diagnostics: Diagnostics) -> str:
    """The HTML page of computed diagnostics (no file read here)."""
    reference = diagnostics.paper["rows"].get("NSP-BERT", {})
    return _environment().get_template("report.html.j2").render(
        d=diagnostics, r=diagnostics.results, csp=CSP, reference=reference,
        bars=_accuracy_bars(diagnostics, reference),
        tasks=[{"t": t, "confusion": _confusion_view(t.confusion) if t.confusion else None,
                "histograms": _histogram_view(t.histograms) if t.histograms else None} for t in diagnostics.tasks])


def _accuracy_bars(d: Diagnostics, reference: dict) -> dict:
    """Per task: our accuracy and the paper's NSP-BERT accuracy as two horizontal bars (SVG)."""
    left, width, row_h = 90, 520, 34
    rows = []
    for k, t in enumerate(d.tasks):
        acc = t.entry.accuracy or 0.0
        ref = reference.get(t.name, t.entry.reference)
        rows.append({"name": t.name, "y": 22 + k * row_h, "acc": 100 * acc, "w": width * acc,
                     "ref": ref, "ref_w": None if ref is None else width * ref / 100})
    return {"left": left, "width": width, "total": left + width + 70, "height": 30 + row_h * len(d.tasks),
            "ticks": [(left + width * i / 100, i) for i in range(0, 101, 20)], "rows": rows}


def _confusion_view(c: Any) -> dict:
    """Cell colours (green diagonal, blue elsewhere, alpha by count) and the header style."""
    top = int(c.matrix.max()) if c.matrix.size else 0
    cells = []
    for i in range(len(c.classes)):
        row = []
        for j in range(len(c.classes)):
            v = int(c.matrix[i, j])
            alpha = v / (top or 1)
            colour = (f"rgba(31,157,85,{0.15 + 0.75 * alpha:.2f})" if i == j
                      else f"rgba(47,111,222,{0.1 + 0.8 * alpha:.2f})")
            row.append({"v": v, "diag": i == j, "light": alpha > 0.55, "colour": colour})
        cells.append(row)
    return {"c": c, "cells": cells, "numbered": len(c.classes) > NUMBERED_ABOVE}


def _histogram_view(h: Histograms) -> dict:
    """SVG geometry: one panel per gold label; the threshold labels sit in rows of their own above
    the panels and the dashed lines start below them, so no label crosses a line."""
    left, width, panel_h, gap, line_h = 150, 560, 54, 12, 14
    head = 8 + line_h * len(h.thresholds) + 6
    span = (h.high - h.low) or 1.0

    def x(v: float) -> float:
        return left + width * (v - h.low) / span

    panels = []
    for k, label in enumerate(h.order):
        top = head + k * (panel_h + gap)
        counts = h.counts[label]
        peak = int(counts.max()) if counts.size else 0
        bars = [{"x": x(float(h.edges[b])), "w": max(0.5, x(float(h.edges[b + 1])) - x(float(h.edges[b])) - 1),
                 "h": panel_h * int(n) / (peak or 1), "n": int(n)} for b, n in enumerate(counts) if n]
        panels.append({"label": label, "n": h.sizes[label], "top": top, "bottom": top + panel_h, "bars": bars,
                       "colour": BAR_COLOURS[k % len(BAR_COLOURS)]})
    bottom = head + len(h.order) * (panel_h + gap)
    ticks = [h.low + span * k / 4 for k in range(5)]
    thresholds = []
    for i, (t, text, between) in enumerate(zip(h.thresholds, h.threshold_text, h.between)):
        at = x(t)
        right_half = at > left + width * 0.6
        thresholds.append({"x": at, "y": 8 + line_h * (i + 1) - 3, "anchor": "end" if right_half else "start",
                           "text_x": at + (-4 if right_half else 4), "label": f"{shorten(between, 30)}  {text}"})
    return {"h": h, "left": left, "width": width, "total": left + width + 60, "height": bottom + 30,
            "head": head, "bottom": bottom, "panels": panels, "thresholds": thresholds,
            "ticks": list(zip([x(t) for t in ticks], short_numbers(ticks)))}

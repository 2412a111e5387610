"""Compatibility: results.md moved to nspzero.reports.markdown."""
from .reports.diagnostics import paper_rows  # noqa: F401
from .reports.markdown import results_markdown  # noqa: F401

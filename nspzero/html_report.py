"""Compatibility: the HTML report moved to nspzero.reports.html (render_report_html, write_report)."""
from .reports.html import render_report_html as render_report, write_report  # noqa: F401

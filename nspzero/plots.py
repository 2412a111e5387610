"""Compatibility: the PNG plots moved to nspzero.reports.png."""
from .reports.png import plots_available, plots_for, write_task_plots  # noqa: F401

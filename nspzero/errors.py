"""Errors meant for people: each says what was wrong, where, and what to do.

The CLI prints any `NSPZeroError` as one line and exits with its `exit_code`
(2 for usage errors, 1 for data or model errors) instead of showing a traceback.
"""
from __future__ import annotations


class NSPZeroError(Exception):
    """Base class of every error nspzero raises on purpose."""

    exit_code = 1


class UsageError(NSPZeroError, ValueError):
    """The caller asked for something invalid (arguments, templates, labels)."""

    exit_code = 2


class DataError(NSPZeroError, ValueError):
    """An input file or record is missing, unreadable or malformed."""

    exit_code = 1


class ModelError(NSPZeroError, OSError):
    """A model could not be loaded, or is not usable for NSP scoring."""

    exit_code = 1

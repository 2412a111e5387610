"""Errors meant for people: each says what was wrong, where, and what to do.

The CLI prints any `NSPZeroError` as one line and exits with its `exit_code`
(2 for usage errors, 1 for data or model errors) instead of showing a traceback.
"""
from __future__ import annotations

import reprlib
from typing import Any


class NSPZeroError(Exception):
    """Base class of every error nspzero raises on purpose. Its text is bounded (`bounded`): values
    are shown through `shown`, and a message built around an unbounded value anyway is cut in the
    middle, so a 1 MB input never makes a 1 MB error line (CLI, server, logs)."""

    exit_code = 1

    def __str__(self) -> str:
        return bounded(super().__str__())


class UsageError(NSPZeroError, ValueError):
    """The caller asked for something invalid (arguments, templates, labels)."""

    exit_code = 2


class DataError(NSPZeroError, ValueError):
    """An input file or record is missing, unreadable or malformed."""

    exit_code = 1


class ModelError(NSPZeroError, OSError):
    """A model could not be loaded, or is not usable for NSP scoring."""

    exit_code = 1


# ---- showing a value in a message ----------------------------------------------------------
SHOWN_CHARS = 160  # the longest a value is shown in a message


class _Bounded(reprlib.Repr):
    """reprlib's bounded repr, also for dict and list subclasses (YAML mappings, JSON objects),
    which reprlib would hand to the builtin (unbounded) repr."""

    def __init__(self) -> None:
        super().__init__()
        self.maxlevel, self.maxstring, self.maxother, self.maxlong, self.maxlist = 3, 80, 80, 40, 4

    def repr1(self, x: Any, level: int) -> str:
        if isinstance(x, dict) and type(x) is not dict:
            return self.repr_dict(x, level)
        if isinstance(x, list) and type(x) is not list:
            return self.repr_list(x, level)
        return super().repr1(x, level)

    def repr_int(self, x: int, level: int) -> str:
        return super().repr_int(x, level) if x.bit_length() < 1000 else f"<an integer of {x.bit_length()} bits>"


def shown(value: Any) -> str:
    """`value` as a message shows it: a repr of bounded length however big or nested the value is."""
    text = _Bounded().repr(value)
    return text if len(text) <= SHOWN_CHARS else text[:SHOWN_CHARS - 1] + "…"


MESSAGE_CHARS = 1000  # the longest an error message is: its start (what, where) and end (what to do) are kept


def bounded(message: str) -> str:
    """`message` cut in the middle to at most MESSAGE_CHARS, saying how much was left out."""
    if len(message) <= MESSAGE_CHARS:
        return message
    kept = MESSAGE_CHARS - 60  # room for the note
    head = kept * 2 // 3
    return f"{message[:head]} …[{len(message) - kept:,} characters not shown]… {message[len(message) - (kept - head):]}"


def type_name(value: Any) -> str:
    """A value's type as YAML and JSON name it in messages: null, mapping, list, str, int, float, bool."""
    if value is None:
        return "null"
    return "mapping" if isinstance(value, dict) else "list" if isinstance(value, list) else type(value).__name__


def first_line(exc: BaseException) -> str:
    """An exception as one line of a message: its first line, or its type when it says nothing."""
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]


def failure_reason(exc: BaseException) -> str:
    """Why a write failed, in words: the OS's own text for an OSError ("No space left on device")."""
    return exc.strerror if isinstance(exc, OSError) and exc.strerror else first_line(exc)


class ClusterError(NSPZeroError):
    """Ray could not be started here or reached at the address given (exit code 1, not a usage error:
    the command was right, the cluster was not there)."""

    exit_code = 1

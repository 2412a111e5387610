"""errors.py: the error classes' exit codes and bases, and the helpers that keep every message one
bounded line (`shown`, `first_line`, `failure_reason`)."""
import errno

from nspzero.errors import (SHOWN_CHARS, DataError, ModelError, NSPZeroError, UsageError, failure_reason, first_line,
                            shown)


def test_exit_codes_and_the_builtin_bases_callers_catch():
    assert (UsageError.exit_code, DataError.exit_code, ModelError.exit_code, NSPZeroError.exit_code) == (2, 1, 1, 1)
    assert issubclass(UsageError, ValueError) and issubclass(DataError, ValueError)
    assert issubclass(ModelError, OSError)
    assert all(issubclass(c, NSPZeroError) for c in (UsageError, DataError, ModelError))


class Mapping(dict):
    """A dict subclass (as YAML loaders and JSON hooks give), which reprlib alone would show whole."""


def test_shown_is_bounded_however_big_or_nested_the_value():
    for value in ("x" * 1_000_000, list(range(100_000)), Mapping({str(i): "y" * 1000 for i in range(1000)}),
                  [[[[["deep"] * 50] * 50] * 50] * 50], 10 ** 5000):
        text = shown(value)
        assert len(text) <= SHOWN_CHARS and "\n" not in text, text[:200]
    assert shown("体育") == "'体育'"                                  # small values are shown whole
    assert shown(10 ** 5000) == "<an integer of 16610 bits>"


def test_first_line_and_failure_reason():
    assert first_line(ValueError("bad value\nsecond line")) == "bad value"
    assert first_line(ValueError("")) == "ValueError"
    assert len(first_line(ValueError("z" * 10_000))) == 300
    disk_full = OSError(errno.ENOSPC, "No space left on device")
    assert failure_reason(disk_full) == "No space left on device"
    assert failure_reason(RuntimeError("boom\ntrace")) == "boom"


def test_every_error_message_is_bounded_however_it_was_built():
    """Class: a message built around an unbounded value (f-string, a library's text). Its start (what,
    where) and its end (what to do) are kept; the middle is cut, saying how much."""
    from nspzero.errors import MESSAGE_CHARS, DataError, ModelError, UsageError, bounded

    value = "x" * 1_000_000
    for cls in (UsageError, DataError, ModelError):
        text = str(cls(f"file.txt:3: template {value}: add {{label}}, e.g. --template '{{label}}'"))
        assert len(text) <= MESSAGE_CHARS and text.startswith("file.txt:3: template xxx")
        assert text.endswith("e.g. --template '{label}'") and "characters not shown" in text and "\n" not in text
    assert bounded("short") == "short"


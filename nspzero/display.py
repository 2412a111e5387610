"""Values made harmless for the person who reads them: in a terminal (control characters shown,
never run) and in a spreadsheet (a cell that would run as a formula shown as the text it is).

The data formats (JSON, Parquet, raw CSV) keep values as they are; only what a terminal or a
spreadsheet would act on is changed, and only where the user sees it."""
from __future__ import annotations

import re
from typing import Any

# C0 controls, DEL, C1 controls, and the bidi controls that reorder what a terminal shows
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")  # OWASP's CSV injection list, as the web page has it


def _visible(match: re.Match) -> str:
    char = match.group()
    code = ord(char)
    if code < 0x20:
        return chr(0x2400 + code)  # Unicode's control pictures: ␛ for ESC, ␊ for a newline, ␉ for a tab
    if code == 0x7F:
        return "\u2421"  # ␡
    return f"\\u{code:04x}"


def visible_controls(text: str) -> str:
    """`text` with every control character (ESC sequences, newlines, tabs, bidi overrides) replaced by a
    visible stand-in, so that printing it cannot move the cursor, retitle or clear the terminal, or
    break one line per text."""
    return _CONTROL.sub(_visible, text)


def spreadsheet_safe(value: Any) -> Any:
    """A CSV cell that a spreadsheet would run as a formula (a text starting with = + - @, a tab or CR)
    with a leading apostrophe, so that it shows as the text it is. Numbers and other values stay as
    they are. The web page's CSV download applies the same rule in its own script (it builds the
    file in the browser from results it already holds)."""
    return "'" + value if isinstance(value, str) and value.startswith(FORMULA_START) else value

"""display.py: what a terminal or a spreadsheet would act on is shown, never run."""
import unicodedata

import pytest

from nspzero.display import spreadsheet_safe, visible_controls

CONTROLS = ["\x1b]0;owned\x07", "\x1b[2J\x1b[H", "a\nb", "a\r\nb", "tab\there", "\x9b31m", "\x7f", "\x00",
            "\u202eevil", "\u2066x\u2069"]


@pytest.mark.parametrize("text", CONTROLS)
def test_terminal_control_characters_are_shown_visibly(text):
    """Class: any control character (C0, DEL, C1, bidi controls) in a text shown in a terminal."""
    shown = visible_controls(text)
    assert not any(unicodedata.category(c) == "Cc" for c in shown)
    assert not any(c in shown for c in "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c")
    assert len(shown.splitlines()) == 1
    plain = "今天比赛 — ok ☃ é"
    assert visible_controls(plain) == plain


def test_control_pictures_name_the_character():
    assert visible_controls("\x1b[2J") == "\u241b[2J" and visible_controls("a\nb") == "a\u240ab"
    assert visible_controls("\x9b") == "\\u009b"


@pytest.mark.parametrize("cell", ["=1+1", "=HYPERLINK(\"http://x\")", "+cmd", "-2+3", "@SUM(A1)", "\tx", "\rx"])
def test_formula_cells_are_neutralised(cell):
    """Class: a text a spreadsheet would run (OWASP's starting characters)."""
    assert spreadsheet_safe(cell) == "'" + cell


@pytest.mark.parametrize("value", ["text", "体育", "", " =x", 1.5, -3, None, True])
def test_other_values_stay_as_they_are(value):
    assert spreadsheet_safe(value) == value

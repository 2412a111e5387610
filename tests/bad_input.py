"""Bad-input rows, one shape in every test file: each module's test file keeps the rows for its own
module as `case(id, fn, exc, message)` and runs them with `check_case` — the right exception type,
a one-line message that names the problem, never a traceback. Shared sample inputs live here."""
from __future__ import annotations

from pathlib import Path

import pytest

from nspzero.errors import NSPZeroError

# Non-UTF-8 bytes (GBK 你好 = c4e3 bae3) inside files of each format, with the expected byte offset.
GBK = "你好".encode("gbk")
BAD_TXT = b"ok line\n" + GBK + b"\n"                       # line 2, offset 8
BAD_JSONL = b'{"text": "ok"}\n{"text": "' + GBK + b'"}\n'   # line 2, offset 15 + 10 = 25
BAD_CSV = b"id,text\n1,ok\n2," + GBK + b"\n"                # line 3, offset 8 + 5 + 2 = 15

TASK_OK = "name: mine\ntype: classification\nprompt: tnews\nfields: {text: sentence, label: label_desc}\n"
PROMPT_OK = 'name: mine\nwords:\n  w: {pos: 好, neg: 差}\nvariants:\n  v: {template: "这是{label}", words: w}\n'


def task_line(field: str, value: str) -> str:
    """TASK_OK with one field replaced (or added), as YAML text."""
    lines = [ln for ln in TASK_OK.splitlines() if not ln.startswith(field + ":")]
    return "\n".join(lines + [f"{field}: {value}"]) + "\n"


class Files:
    """What a row may need: a scratch folder to write input files into, and monkeypatch."""

    def __init__(self, tmp_path: Path, monkeypatch) -> None:
        self.tmp = tmp_path
        self.monkeypatch = monkeypatch

    def file(self, name: str, content) -> str:
        path = self.tmp / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, str):
            content = content.encode("utf-8")
        path.write_bytes(content)
        return str(path)


def case(id, fn, exc, message, marks=()):
    return pytest.param(fn, exc, message, id=id, marks=marks)


def check_case(fn, env, exc, message: str) -> None:
    """`fn(env)` raises `exc`, an NSPZeroError whose one-line message contains `message`."""
    with pytest.raises(exc) as info:
        fn(env)
    assert isinstance(info.value, NSPZeroError)
    text = str(info.value)
    assert message in text
    assert "\n" not in text

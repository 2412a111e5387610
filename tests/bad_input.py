"""Bad-input rows, one shape in every test file: each module's test file keeps the rows for its own
module as `case(id, fn, exc, message)` and runs them with `check_case` — the right exception type,
a one-line message that names the problem, never a traceback. Shared sample inputs live here, and
what rows with a model need: `env` (the classifier and broken model folders) and the CLI rows'
`cli_case` / `check_cli_case` (exit code 2 for usage, 1 for data/model errors, one stderr line)."""
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


# ---- rows that need a model: the classifier, model folders of each broken kind, the CLI battery's runner ----
def _copy_model(model_dir: str, dest: Path, keep) -> str:
    import os
    import shutil

    dest.mkdir(parents=True, exist_ok=True)
    for name in os.listdir(model_dir):
        if keep(name):
            shutil.copy(os.path.join(model_dir, name), dest / name)
    return str(dest)


class Env(Files):
    """Files, plus the session's classifier and model folders (built once by conftest's fixtures)."""

    def __init__(self, request, tmp_path: Path, monkeypatch) -> None:
        super().__init__(tmp_path, monkeypatch)
        self.request = request

    @property
    def clf(self):
        return self.request.getfixturevalue("clf")

    def model(self, kind: str = "model") -> str:
        """A model folder: model, headless, gpt2, empty, missing, onlycfg, badcfg, novocab."""
        base = self.request.getfixturevalue("model_dir")
        if kind == "model":
            return base
        if kind == "headless":
            return self.request.getfixturevalue("headless_model_dir")
        if kind == "gpt2":
            return self.request.getfixturevalue("gpt2_model_dir")
        if kind == "missing":
            return str(self.tmp / "no" / "such" / "model")
        dest = self.tmp / f"model-{kind}"
        if kind == "empty":
            dest.mkdir(exist_ok=True)
            return str(dest)
        if kind == "onlycfg":
            return _copy_model(base, dest, lambda n: n == "config.json")
        if kind == "badcfg":
            dest.mkdir(exist_ok=True)
            (dest / "config.json").write_text("{not json", encoding="utf-8")
            return str(dest)
        if kind == "novocab":  # config + weights, but no vocab.txt / tokenizer files
            return _copy_model(base, dest, lambda n: n in ("config.json", "model.safetensors", "pytorch_model.bin"))
        raise KeyError(kind)


@pytest.fixture
def env(request, tmp_path, monkeypatch) -> Env:
    """Import it beside the rows that use it (`from bad_input import env, gpt2_model_dir`)."""
    return Env(request, tmp_path, monkeypatch)


@pytest.fixture(scope="module")
def gpt2_model_dir(tmp_path_factory) -> str:
    """A model without any next-sentence head (GPT-2), to be refused by name."""
    from transformers import GPT2Config, GPT2LMHeadModel

    path = tmp_path_factory.mktemp("tiny-gpt2")
    config = GPT2Config(n_layer=1, n_embd=16, n_head=2, vocab_size=50, n_positions=32)
    GPT2LMHeadModel(config).save_pretrained(str(path))
    return str(path)


def cli_case(id, argv, code, message, files=None, marks=()):
    """A CLI row: argv (with @model, @headless, … and @tmp placeholders), files to write first
    ("<stdin>" feeds stdin), the exit code and a distinctive part of the one-line message."""
    return pytest.param(argv, files or {}, code, message, id="cli-" + id, marks=marks)


MODEL_PLACEHOLDERS = ("@model", "@headless", "@gpt2", "@missing", "@empty", "@novocab")


def assert_one_line_error(err: str, code: int, got: int, message: str) -> None:
    """stderr is exactly one `nspzero: error:` line holding `message`, and the exit code is `code`."""
    assert got == code, err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("nspzero: error: "), err
    assert message in lines[0], err


def check_cli_case(env: Env, capsys, argv, files, code: int, message: str) -> None:
    """Run one CLI row in-process (conftest.run_cli) and check its exit code and one-line error."""
    import io
    import sys

    from conftest import run_cli

    for name, content in files.items():
        if name == "<stdin>":
            data = content if isinstance(content, bytes) else content.encode("utf-8")
            env.monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data), encoding="utf-8"))
        else:
            env.file(name, content)
    args = [env.model(a[1:]) if a in MODEL_PLACEHOLDERS else a.replace("@tmp", str(env.tmp)) for a in argv]
    capsys.readouterr()  # what building a model folder printed is not the command's
    got, _, err = run_cli(args, capsys)
    assert_one_line_error(err, code, got, message)

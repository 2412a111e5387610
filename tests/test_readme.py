"""The README is a user's guide whose commands must stay true: every `nspzero <command>` it shows (in code
blocks, their `#   [--option ...]` lines, and inline code) names a command that exists and only options
that command's --help lists; every relative link of the README and docs/ points at a file (and README
anchor) that exists, and none points outside the repository. Nothing here loads a model."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from conftest import run_cli

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DOCS = sorted((ROOT / "docs").glob("*.md"))
OPTION = re.compile(r"(?<![\w/.{-])(--?[A-Za-z][A-Za-z0-9-]*)")


def _code_blocks(text: str) -> list[str]:
    return re.findall(r"^```[a-z]*\n(.*?)^```", text, flags=re.S | re.M)


def _split(shown: str) -> tuple[str, str]:
    """`nspzero CMD REST` → (CMD, REST)."""
    words = shown.split(None, 2) + ["", ""]
    return words[1], words[2]


def nspzero_commands(text: str) -> list[tuple[str, list[str]]]:
    """(command, options) of each `nspzero ...` shown: code-block lines (continuations joined, and the
    `#   [--x ...]` option lines that follow one counted as its options) and inline code spans."""
    shown: list[tuple[str, str]] = []
    for block in _code_blocks(text):
        for line in block.replace("\\\n", " ").splitlines():
            code = line.split("  #", 1)[0].strip()
            if code.startswith("nspzero "):
                shown.append(_split(code))
            elif re.match(r"#\s+\[", line.strip()) and shown:
                shown.append((shown[-1][0], line.strip()[1:].split("  #", 1)[0]))
    prose = re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)
    for span in re.findall(r"`(nspzero\s[^`]+)`", prose):
        shown.append(_split(span))
    return [(cmd, OPTION.findall(rest)) for cmd, rest in shown]


def help_options(command: str, capsys) -> set[str] | None:
    """The options `nspzero COMMAND --help` lists, or None when there is no such command."""
    code, out, err = run_cli([command, "--help"], capsys)
    if code != 0:
        return None
    return set(OPTION.findall(out)) | {"--help"}


def test_the_readme_shows_the_main_commands():
    commands = {cmd for cmd, _ in nspzero_commands(README.read_text(encoding="utf-8"))}
    assert {"classify", "eval", "serve", "tiny-model", "convert", "export-onnx", "report", "link", "bench"} <= commands


@pytest.mark.parametrize("doc", [README, *DOCS], ids=lambda p: p.name)
def test_every_command_and_option_shown_exists(doc, capsys):
    wrong = []
    helps: dict[str, set[str] | None] = {}
    for command, options in nspzero_commands(doc.read_text(encoding="utf-8")):
        if command == "--help":
            continue
        if command not in helps:
            helps[command] = help_options(command, capsys)
        if helps[command] is None:
            wrong.append(f"nspzero {command}: no such command")
        else:
            wrong += [f"nspzero {command} {o}: no such option" for o in options if o not in helps[command]]
    assert not wrong, wrong


def test_the_checker_sees_a_wrong_option(capsys):
    """The check above can fail: a made-up option and a made-up command are caught."""
    shown = nspzero_commands("```bash\nnspzero classify --labelz a,b \\\n    --template x\nnspzero clasify x\n```\n")
    assert shown == [("classify", ["--labelz", "--template"]), ("clasify", [])]
    assert "--labelz" not in help_options("classify", capsys) and help_options("clasify", capsys) is None


def _anchor(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation but - and _ dropped, spaces to -."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


@pytest.mark.parametrize("doc", [README, *DOCS], ids=lambda p: p.name)
def test_relative_links_point_at_files_and_headings_that_exist(doc):
    text = doc.read_text(encoding="utf-8")
    bad = []
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"[a-z]+:", target):
            continue
        path, _, anchor = target.partition("#")
        file = (doc.parent / path).resolve() if path else doc
        if ROOT not in file.parents and file != ROOT:
            bad.append(f"{target}: outside the repository")
        elif not file.exists():
            bad.append(f"{target}: no such file")
        elif anchor and file.suffix == ".md":
            headings = re.findall(r"^#+ (.+)$", re.sub(r"^```.*?^```", "", file.read_text(encoding="utf-8"),
                                                          flags=re.S | re.M), flags=re.M)
            if anchor not in {_anchor(h) for h in headings}:
                bad.append(f"{target}: no such heading")
    assert not bad, bad
    assert "../shared" not in text and "/work/shared" not in text

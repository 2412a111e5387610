"""The one reader and the one writer: formats, file:line errors, carried columns, output checks,
and the promise that a failed run leaves the previous output byte for byte (every command)."""
import json
import os

import pytest

import nspzero.io
from nspzero.errors import DataError, ModelError, UsageError
from nspzero.io import (RowWriter, check_output, output_format, read_records, read_texts, result_row)
from nspzero.scorer import NSPScorer

from conftest import run_cli
from bad_input import BAD_CSV, BAD_JSONL, BAD_TXT, Files, case, check_case


# ---- reading -------------------------------------------------------------------------------------
def test_quoted_csv_newlines_are_kept_and_rows_keep_their_other_columns(tmp_path):
    src = tmp_path / "in.csv"
    src.write_text('id,text\n1,"第一行\n第二行"\n2,今天比赛\n', encoding="utf-8")
    rows = list(read_texts(str(src)))
    assert [r.text for r in rows] == ["第一行\n第二行", "今天比赛"]
    assert [r.extra for r in rows] == [{"id": "1"}, {"id": "2"}]
    assert [r.where.rsplit(":", 1)[1] for r in rows] == ["3", "4"]  # the line each row ends on


def test_tsv_parquet_and_jsonl_read_alike(tmp_path):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    (tmp_path / "in.tsv").write_text("id\ttext\n7\t今天比赛\n", encoding="utf-8")
    (tmp_path / "in.jsonl").write_text('{"id": "7", "text": "今天比赛"}\n', encoding="utf-8")
    pq.write_table(pa.table({"id": ["7"], "text": ["今天比赛"]}), tmp_path / "in.parquet")
    got = [[(r.text, r.extra) for r in read_texts(str(tmp_path / f"in.{s}"))] for s in ("tsv", "jsonl", "parquet")]
    assert got[0] == got[1] == got[2] == [("今天比赛", {"id": "7"})]


@pytest.mark.parametrize("name, content, message", [
    ("in.csv", "text,text\na,b\n", "in.csv:1: column(s) 'text' appear more than once"),
    ("in.csv", "id,text\n1,a,extra\n", "in.csv:2: 3 fields but the header has 2"),
    ("in.jsonl", '{"text": ' + "9" * 5000 + "}\n", "in.jsonl:1: unreadable JSON value"),
    ("in.jsonl", '{"text": null}\n', "in.jsonl:1: field 'text' is NoneType None, not a string"),
    ("in.jsonl", '{"text": ["a"]}\n', "in.jsonl:1: field 'text' is list"),
    ("in.jsonl", '{"text": "\\u0000\\u200b"}\n', "in.jsonl:1: field 'text' is empty"),
    ("in.txt", "好\n\u200b\u200b\n", "in.txt:2: the line is empty"),
    ("in.json", '[\n {"text": "a"},\n {"text": null}\n]\n', "in.json:3: field 'text' is NoneType"),
    ("in.json", '[\n {"text": "a"}\n {"text": "b"}\n]\n', "in.json:3: expected ',' or ']' after the array's object"),
    ("in.json", '[\n {"text": "a"},\n "b"\n]\n', "in.json:3: expected a JSON object in the array, got str"),
    ("in.json", '[\n {"text": "a"},\n', "in.json:3: the JSON array is not closed"),
    ("in.json", '[{"text": "a"},]', "in.json:1: malformed JSON"),
    ("in.json", '[{"text": "a"}] {"text": "b"}', "in.json:1: text after the JSON array's closing"),
    ("in.json", '[\n {"text": "a",\n  "id": tru}]', "in.json:3: malformed JSON"),
])
def test_data_errors_name_file_and_line(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    with pytest.raises(DataError, match=message.replace("(", r"\(").replace(")", r"\)")):
        list(read_texts(str(path)))


def test_records_carry_every_field_and_result_fields_win_names(tmp_path):
    src = tmp_path / "in.jsonl"
    src.write_text('{"text": "a", "label": "gold", "n": 3}\n', encoding="utf-8")
    record = next(read_records(str(src)))
    row = result_row({"text": "a", "label": "x", "scores": {"x": 0.9, "y": 0.1}}, {"label": "gold", "n": 3}, "jsonl")
    assert record.fields == {"text": "a", "label": "gold", "n": 3}
    assert row == {"text": "a", "label": "x", "scores": {"x": 0.9, "y": 0.1}, "input_label": "gold", "n": 3}
    flat = result_row({"text": "a", "label": "x", "scores": {"y": 0.1, "x": 0.9}}, {}, "csv", ["x", "y"])
    assert list(flat) == ["text", "label", "x", "y"]  # one column per label, in the request's order


# ---- writing -------------------------------------------------------------------------------------
@pytest.mark.parametrize("output, fmt, expected", [
    (None, None, "jsonl"), (None, "csv", "csv"), ("-", "table", "table"), ("o.csv", None, "csv"),
    ("o.JSONL", None, "jsonl"), ("o.json", None, "json"), ("o.parquet", None, "parquet"), ("o.csv", "csv", "csv"),
])
def test_the_suffix_picks_the_format(output, fmt, expected):
    assert output_format(output, fmt) == expected


@pytest.mark.parametrize("output, fmt, message", [
    ("o.csv", "jsonl", "--format jsonl contradicts --output 'o.csv'"),
    ("o.txt", None, "the suffix picks the format"),
    ("out", None, "no suffix"),
    (None, "parquet", "add --output FILE.parquet"),
    (None, "xml", "--format must be one of"),
])
def test_format_contradictions_are_usage_errors(output, fmt, message):
    with pytest.raises(UsageError, match=message):
        output_format(output, fmt)


@pytest.mark.parametrize("link", ["same", "symlink", "hardlink"])
def test_output_that_is_the_input_is_refused(tmp_path, link):
    src = tmp_path / "in.jsonl"
    src.write_text('{"text": "a"}\n', encoding="utf-8")
    out = src if link == "same" else tmp_path / "out.jsonl"
    if link == "symlink":
        out.symlink_to(src)
    elif link == "hardlink":
        os.link(src, out)
    with pytest.raises(UsageError, match="is the input file"):
        check_output(str(out), [str(src)])


@pytest.mark.parametrize("fmt", ["jsonl", "json", "csv", "parquet"])
def test_every_format_round_trips_and_a_failure_keeps_the_old_file(tmp_path, fmt):
    if fmt == "parquet":
        pytest.importorskip("pyarrow")
    out = tmp_path / f"out.{fmt}"
    rows = [{"text": "a", "label": "x", "scores": {"x": 0.5}}, {"text": "b", "label": "y", "scores": {"y": 0.25}}]
    with RowWriter(str(out), fmt) as writer:
        for row in rows:
            writer.write(row)
    old = out.read_bytes()
    assert old
    with pytest.raises(RuntimeError):
        with RowWriter(str(out), fmt) as writer:
            writer.write(rows[0])
            raise RuntimeError("scoring failed at row 2")
    assert out.read_bytes() == old and sorted(p.name for p in tmp_path.iterdir()) == [out.name]


@pytest.mark.parametrize("fmt", ["jsonl", "json", "csv", "parquet"])
def test_every_output_reads_back_as_an_input(tmp_path, fmt):
    """An output file (any suffix) is a valid --input: the same texts, its other fields carried."""
    if fmt == "parquet":
        pytest.importorskip("pyarrow")
    out = tmp_path / f"out.{fmt}"
    rows = [{"text": "今天比赛", "label": "体育", "id": 7}, {"text": "a\nb", "label": "财经", "id": 8}]
    with RowWriter(str(out), fmt, columns=("text", "label", "id")) as writer:
        for row in rows:
            writer.write(row)
    back = list(read_texts(str(out)))
    assert [r.text for r in back] == ["今天比赛", "a\nb"]
    assert [str(r.extra["label"]) for r in back] == ["体育", "财经"] and [str(r.extra["id"]) for r in back] == ["7", "8"]
    if fmt == "json":
        assert [r.where for r in back] == [f"{out}:2", f"{out}:7"]   # the line each object starts on


def test_an_empty_json_array_is_no_records(tmp_path):
    (tmp_path / "in.json").write_text("[]\n", encoding="utf-8")
    assert list(read_records(str(tmp_path / "in.json"))) == []


# ---- every file-writing command keeps its old output when it fails ----------------------------------
def _inject(monkeypatch, kind):
    """Make the 2nd forward pass fail: a library error, Ctrl-C; or make the final rename fail (disk full)."""
    if kind == "disk-full":
        def replace(src, dst):
            raise OSError(28, "No space left on device")
        monkeypatch.setattr(os, "replace", replace)
        return
    calls = {"n": 0}
    original = NSPScorer.forward

    def forward(self, batch):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt if kind == "ctrl-c" else ModelError("model /m gave NaN scores")
        return original(self, batch)

    monkeypatch.setattr(NSPScorer, "forward", forward)


EXIT = {"error-after-rows": 1, "ctrl-c": 130, "disk-full": 1}


@pytest.fixture
def inputs(tmp_path):
    texts = [f"今天比赛{i}" for i in range(40)]
    (tmp_path / "in.txt").write_text("\n".join(texts) + "\n", encoding="utf-8")
    cands = [{"id": "Q1", "description": "体育新闻"}, {"id": "Q2", "description": "财经新闻"}]
    (tmp_path / "mentions.jsonl").write_text("".join(json.dumps({"text": t, "candidates": cands}, ensure_ascii=False)
                                                     + "\n" for t in texts), encoding="utf-8")
    return tmp_path


@pytest.mark.parametrize("kind", list(EXIT))
@pytest.mark.parametrize("command", ["classify", "link"])
def test_a_failed_run_leaves_the_previous_output_byte_identical(model_dir, inputs, capsys, monkeypatch, command, kind):
    out = inputs / "out.jsonl"
    args = (["classify", "-i", str(inputs / "in.txt"), "-l", "体育,财经"] if command == "classify"
            else ["link", "-i", str(inputs / "mentions.jsonl")])
    args += ["-m", model_dir, "--batch-size", "4", "--max-length", "32", "-o", str(out)]
    code, _, err = run_cli(args, capsys)
    assert code == 0, err
    old = out.read_bytes()
    assert len(old.splitlines()) == 40
    with monkeypatch.context() as m:
        _inject(m, kind)
        code, _, err = run_cli(args, capsys)
    assert code == EXIT[kind], err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert out.read_bytes() == old
    assert not [p.name for p in inputs.iterdir() if p.name.endswith(".tmp")]


@pytest.mark.parametrize("kind", list(EXIT))
def test_a_failed_eval_leaves_the_previous_results(model_dir, tmp_path, capsys, monkeypatch, kind):
    from fewclue_fixture import write_fewclue

    data = write_fewclue(tmp_path / "data")
    out = tmp_path / "out"
    args = ["eval", "-m", model_dir, "-d", str(data), "--tasks", "eprstmt,ocnli", "-o", str(out), "--max-length", "32"]
    assert run_cli(args, capsys)[0] == 0
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    assert {"results.json", "results.md", "eprstmt.predictions.jsonl"} <= set(before)
    with monkeypatch.context() as m:
        _inject(m, kind)
        code, _, err = run_cli(args[:-1] + ["40"], capsys)  # another max length: a new cache, so rescored
    assert code == EXIT[kind], err
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before


def test_a_failed_report_leaves_the_previous_report(model_dir, tmp_path, capsys, monkeypatch):
    from fewclue_fixture import write_fewclue

    out = tmp_path / "out"
    assert run_cli(["eval", "-m", model_dir, "-d", str(write_fewclue(tmp_path / "data")), "--tasks", "eprstmt",
                    "-o", str(out), "--max-length", "32", "--report"], capsys)[0] == 0
    old = (out / "report.html").read_bytes()
    _inject(monkeypatch, "disk-full")
    code, _, err = run_cli(["report", str(out)], capsys)
    assert code == 1 and "No space left on device" in err and len(err.strip().splitlines()) == 1, err
    assert (out / "report.html").read_bytes() == old
    assert not [p.name for p in out.iterdir() if p.name.endswith(".tmp")]


def test_a_records_labels_field_is_read_apart_from_the_carried_fields(tmp_path):
    from nspzero.io import read_texts

    src = tmp_path / "in.csv"
    src.write_text('id,text,labels\n1,今天比赛,"体育,财经"\n2,市场上涨,\n', encoding="utf-8")
    rows = list(read_texts(str(src)))
    assert [(r.text, r.labels, r.extra) for r in rows] == [("今天比赛", "体育,财经", {"id": "1"}),
                                                           ("市场上涨", "", {"id": "2"})]
    jsonl = tmp_path / "in.jsonl"
    jsonl.write_text('{"text": "今天比赛", "labels": ["体育", "财经"], "id": 1}\n', encoding="utf-8")
    assert [(r.labels, r.extra) for r in read_texts(str(jsonl))] == [(["体育", "财经"], {"id": 1})]
    assert [(r.labels, r.extra) for r in read_texts(str(jsonl), labels_field=None)] == [
        (None, {"labels": ["体育", "财经"], "id": 1})]


def test_output_inside_an_input_folder_is_refused_only_over_an_existing_file(tmp_path):
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text("{}")
    with pytest.raises(UsageError, match="is in the input folder .*model'; write the results elsewhere"):
        check_output(str(model / "config.json"), [str(model)])
    check_output(str(model / "new.jsonl"), [str(model)])   # a new file beside the model destroys nothing


def test_temp_files_of_a_killed_writer_are_removed_by_the_next_write_in_that_folder_once(tmp_path):
    """kill -9 (or a killed Ray driver) leaves its temp file (named with its pid); the first write
    in that folder removes it and leaves a living writer's alone; later writes do not look again."""
    from nspzero.io import atomic_write_text

    dead = _dead_pid()
    stale = tmp_path / f".out.jsonl.writing-{dead}-abc.tmp"
    living = tmp_path / f".out.jsonl.writing-{os.getpid()}-def.tmp"
    other = tmp_path / f".other.jsonl.writing-{dead}-ghi.tmp"   # another output's, same folder: swept too
    for path in (stale, living, other):
        path.write_text("half")
    atomic_write_text(tmp_path / "out.jsonl", "new\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([living.name, "out.jsonl"])
    stale.write_text("half")                     # a later death in the same run: not looked for per row
    atomic_write_text(tmp_path / "out.jsonl", "newer\n")
    assert stale.exists() and (tmp_path / "out.jsonl").read_text() == "newer\n"


def _dead_pid() -> int:
    import subprocess
    import sys

    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_a_json_lines_syntax_error_names_its_own_line(tmp_path):
    (tmp_path / "in.jsonl").write_text('{"text": "a"}\n{"text": "c"\n{"text": "d"}\n', encoding="utf-8")
    with pytest.raises(DataError, match=r"in\.jsonl:2: malformed JSON \(Expecting ',' delimiter at column 13\)"):
        list(read_texts(str(tmp_path / "in.jsonl")))


def iter_texts(path, fmt=None, text_field="text"):
    return (row.text for row in read_texts(path, fmt, text_field))


def _deny_open(e: Files):
    def denied(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    e.monkeypatch.setattr(nspzero.io, "open", denied, raising=False)  # (the tests run as root: chmod won't do)


BAD_INPUT = [
    case("txt-not-utf8", lambda e: list(iter_texts(e.file("in.txt", BAD_TXT))), DataError,
         "in.txt:2: not valid UTF-8 at byte offset 8"),
    case("jsonl-not-utf8", lambda e: list(iter_texts(e.file("in.jsonl", BAD_JSONL))), DataError,
         "in.jsonl:2: not valid UTF-8 at byte offset 25"),
    case("csv-not-utf8", lambda e: list(iter_texts(e.file("in.csv", BAD_CSV))), DataError,
         "in.csv:3: not valid UTF-8 at byte offset 15"),
    case("utf16-file", lambda e: list(iter_texts(e.file("in.txt", "你好\n".encode("utf-16")))), DataError,
         "in.txt:1: not valid UTF-8 at byte offset 0"),
    case("jsonl-malformed", lambda e: list(iter_texts(e.file("in.jsonl", '{"text": "a"}\n\n{"text": "b",}\n'))),
         DataError, "in.jsonl:3: malformed JSON"),
    case("jsonl-not-object", lambda e: list(iter_texts(e.file("in.jsonl", '{"text": "a"}\n["b"]\n'))), DataError,
         "in.jsonl:2: expected a JSON object, got list"),
    case("jsonl-too-deep", lambda e: list(iter_texts(e.file("in.jsonl", "[" * 100000 + "\n"))), DataError,
         "in.jsonl:1: JSON nested too deeply"),
    case("jsonl-missing-field", lambda e: list(iter_texts(e.file("in.jsonl", '{"id": 1, "body": "a"}\n'))),
         DataError, "in.jsonl:1: no field 'text' (fields: id, body)"),
    case("jsonl-empty-field", lambda e: list(iter_texts(e.file("in.jsonl", '{"text": "a"}\n{"text": "  "}\n'))),
         DataError, "in.jsonl:2: field 'text' is empty"),
    case("jsonl-field-not-string", lambda e: list(iter_texts(e.file("in.jsonl", '{"text": 5}\n'))), DataError,
         "in.jsonl:1: field 'text' is int 5, not a string"),
    case("jsonl-lone-surrogate", lambda e: list(iter_texts(e.file("in.jsonl", '{"text": "a\\ud800b"}\n'))),
         DataError, "in.jsonl:1: field 'text' is not valid Unicode"),
    case("csv-no-text-column", lambda e: list(iter_texts(e.file("in.csv", "id,body\n1,a\n"))), DataError,
         "in.csv:1: CSV has no column 'text' (columns: id, body)"),
    case("csv-empty-file", lambda e: list(iter_texts(e.file("in.csv", ""))), DataError,
         "empty CSV file; the first line must be a header"),
    case("csv-empty-cell-after-blank-line", lambda e: list(iter_texts(e.file("in.csv", "id,text\n1,a\n\n2,\n"))),
         DataError, "in.csv:4: field 'text' is empty"),
    case("csv-stray-carriage-return", lambda e: list(iter_texts(e.file("in.csv", b"id,text\n1,a\rb\n"))), DataError,
         "in.csv:2: malformed CSV"),
    case("input-missing", lambda e: list(iter_texts(str(e.tmp / "nope.txt"))), DataError, "does not exist"),
    case("input-is-directory", lambda e: list(iter_texts(str(e.tmp))), DataError, "is a directory"),
    case("input-unreadable", lambda e: (_deny_open(e), list(iter_texts(e.file("in.txt", "a\n")))), DataError,
         "cannot read input file"),
    case("input-format-unknown", lambda e: list(iter_texts(e.file("in.txt", "a\n"), fmt="xml")), UsageError,
         "input format must be one of txt, jsonl, csv, tsv, parquet, got 'xml'"),
]


@pytest.mark.parametrize("fn, exc, message", BAD_INPUT)
def test_bad_input_is_a_one_line_error(tmp_path, monkeypatch, fn, exc, message):
    """The reader: file:line (and byte offset) of the bad row, and what to do."""
    check_case(fn, Files(tmp_path, monkeypatch), exc, message)


ROWS_OF_MANY_SHAPES = [
    {"text": "a", "id": 1},
    {"text": "b", "id": "x7"},                       # an int column that turns into text
    {"text": "c", "id": 2, "late": 3},               # a field first seen in a later row (and group)
    {"text": "d", "late": 4.5, "tags": ["p", "q"]},  # int widened to float; a list column
    {"text": "e", "id": None, "meta": {"k": 1}},
]


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
@pytest.mark.parametrize("group", [1, 2, 4096])
def test_every_writer_carries_every_field_of_every_row(tmp_path, monkeypatch, fmt, group):
    """Class: writers that decide their columns from the first rows. Every column of every row is
    written, whatever row (or Parquet row group) it first appears in; mixed types are widened."""
    import nspzero.io as io_module

    monkeypatch.setattr(io_module, "PARQUET_ROWS_PER_GROUP", group)
    out = tmp_path / f"out.{fmt}"
    with RowWriter(str(out), fmt) as writer:
        for row in ROWS_OF_MANY_SHAPES:
            writer.write(row)
    back = [r.fields for r in read_records(str(out))]
    assert list(back[0]) == ["text", "id", "late", "tags", "meta"]
    if fmt == "csv":
        assert [r["id"] for r in back] == ["1", "x7", "2", "", ""]
        assert [r["late"] for r in back] == ["", "", "3", "4.500000", ""]
        assert back[3]["tags"] == "p|q" and json.loads(back[4]["meta"]) == {"k": 1}
    else:
        assert [r["id"] for r in back] == ["1", "x7", "2", None, None]   # int beside text: text
        assert [r["late"] for r in back] == [None, None, 3.0, 4.5, None]  # int beside float: float
        assert back[3]["tags"] == ["p", "q"] and back[0]["tags"] is None
        assert json.loads(back[4]["meta"]) == {"k": 1}


def test_a_parquet_output_keeps_a_value_too_big_for_int64_as_text(tmp_path):
    out = tmp_path / "out.parquet"
    with RowWriter(str(out), "parquet") as writer:
        writer.write({"text": "a", "n": 1})
        writer.write({"text": "b", "n": 2**70})
    assert [r.fields["n"] for r in read_records(str(out))] == ["1", str(2**70)]


def test_a_csv_cell_that_would_run_as_a_formula_is_neutralised_unless_raw(tmp_path):
    """Class: CSV formula injection. Texts, labels and carried fields starting with = + - @ (not plain
    numbers) get a leading apostrophe by default; raw_csv keeps them."""
    row = {"text": "=1+1", "label": ["@x", "ok"], "id": "-5", "note": "+cmd|' /C calc'!A0", "score": -0.25}
    for raw, want in ((False, ["'=1+1", "'@x|ok", "-5", "'+cmd|' /C calc'!A0", "-0.250000"]),
                      (True, ["=1+1", "@x|ok", "-5", "+cmd|' /C calc'!A0", "-0.250000"])):
        out = tmp_path / f"out-{raw}.csv"
        with RowWriter(str(out), "csv", raw_csv=raw) as writer:
            writer.write(row)
        assert list(next(read_records(str(out))).fields.values()) == want

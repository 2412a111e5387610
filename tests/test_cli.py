import json
import re
import subprocess
import sys

import pytest

from conftest import run_cli as run


def test_classify_positional_texts_jsonl(model_dir, capsys):
    code, out, err = run(["classify", "--model", model_dir, "--labels", "体育,财经", "今天比赛", "市场上涨"], capsys)
    assert code == 0, err
    rows = [json.loads(line) for line in out.splitlines()]
    assert [r["text"] for r in rows] == ["今天比赛", "市场上涨"]
    for r in rows:
        assert set(r["scores"]) == {"体育", "财经"} and r["label"] in r["scores"]


def test_cli_scores_equal_api(model_dir, clf, capsys, tmp_path):
    src = tmp_path / "in.jsonl"
    src.write_text('{"text": "今天比赛", "id": 1}\n\n{"text": "市场上涨"}\n', encoding="utf-8")
    out_file = tmp_path / "out.jsonl"
    code, _, err = run(["classify", "-m", model_dir, "-l", "体育，财经", "-t", "这是一则{label}新闻",
                        "--input", str(src), "--output", str(out_file)], capsys)
    assert code == 0, err
    rows = [json.loads(line) for line in out_file.read_text(encoding="utf-8").splitlines()]
    api = clf.classify(["今天比赛", "市场上涨"], ["体育", "财经"], template="这是一则{label}新闻")
    for row, res in zip(rows, api):
        assert row["label"] == res.label
        assert row["scores"] == pytest.approx(res.scores, abs=1e-5)


def test_classify_txt_and_csv_inputs(model_dir, capsys, tmp_path):
    txt = tmp_path / "in.txt"
    txt.write_text("今天比赛\n\n市场上涨\n", encoding="utf-8")
    code, out, err = run(["classify", "-m", model_dir, "-l", "体育,财经", "-i", str(txt), "--format", "csv"], capsys)
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == "text,label,体育,财经" and len(lines) == 3
    csv_in = tmp_path / "in.csv"
    csv_in.write_text("id,body\n1,今天比赛\n", encoding="utf-8")
    code, out, err = run(["classify", "-m", model_dir, "-l", "体育,财经", "-i", str(csv_in), "--text-field", "body"], capsys)
    assert code == 0, err and json.loads(out)["text"] == "今天比赛"


def test_classify_table_and_multi_label(model_dir, capsys):
    code, out, err = run(["classify", "-m", model_dir, "-l", "体育,财经", "--multi-label", "--threshold", "0",
                          "--format", "table", "今天比赛"], capsys)
    assert code == 0, err
    assert "今天比赛" in out and "体育" in out


def test_stdin_end_to_end_subprocess(model_dir):
    proc = subprocess.run([sys.executable, "-m", "nspzero.cli", "classify", "-m", model_dir, "-l", "体育,财经",
                           "--input", "-"], input="今天比赛\n市场上涨\n".encode(), capture_output=True, timeout=120)
    assert proc.returncode == 0, proc.stderr.decode()
    assert len(proc.stdout.decode().splitlines()) == 2
    assert b"Traceback" not in proc.stderr


@pytest.mark.parametrize("args, code, message", [
    (["classify", "-m", "{model}", "-l", "体育,体育", "x"], 2, "given twice"),
    (["classify", "-m", "{model}", "x"], 2, "--labels is required"),
    (["classify", "-m", "{model}", "-l", "a,b"], 2, "no texts"),
    (["classify", "-m", "{model}", "-l", "a,b", "-t", "{0}", "x"], 2, "not allowed"),
    (["classify", "-m", "{model}", "-l", "a,b", "--format", "xml", "x"], 2, "--format"),
    (["classify", "-m", "/no/such/dir", "-l", "a,b", "x"], 1, "does not exist"),
    (["classify", "-m", "{model}", "-l", "a,b", "-i", "/no/such.txt"], 1, "does not exist"),
    (["classify", "-m", "{model}", "-l", "a,b", "--bogus"], 2, "No such option"),
])
def test_cli_errors_are_one_line_with_exit_code(model_dir, capsys, args, code, message):
    args = [a.replace("{model}", model_dir) for a in args]
    got, _, err = run(args, capsys)
    assert got == code
    assert message in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_headless_model_refused_on_cli(headless_model_dir, capsys):
    code, _, err = run(["classify", "-m", headless_model_dir, "-l", "a,b", "x"], capsys)
    assert code == 1 and "next-sentence-prediction head" in err


def test_classify_with_a_named_prompt_set(model_dir, capsys):
    code, out, err = run(["classify", "-m", model_dir, "--prompt", "tnews", "今天比赛"], capsys)
    assert code == 0, err
    row = json.loads(out)
    assert len(row["scores"]) == 15 and "news_sports" in row["scores"]
    code, out, err = run(["classify", "-m", model_dir, "--prompt", "tnews", "-l", "news_sports,news_finance", "今天比赛"],
                         capsys)
    assert code == 0 and set(json.loads(out)["scores"]) == {"news_sports", "news_finance"}
    code, _, err = run(["classify", "-m", model_dir, "--prompt", "ocnli", "x"], capsys)
    assert code == 2 and "sentence-pair prompt" in err
    code, _, err = run(["classify", "-m", model_dir, "--prompt", "tnew", "x"], capsys)
    assert code == 2 and "did you mean 'tnews'" in err


def test_eval_usage_errors(model_dir, capsys, tmp_path):
    code, _, err = run(["eval", "-m", model_dir, "--data-dir", str(tmp_path), "--tasks", "tnewz"], capsys)
    assert code == 2 and "did you mean 'tnews'" in err
    code, _, err = run(["eval", "-m", model_dir, "--data-dir", str(tmp_path / "no")], capsys)
    assert code == 2 and "not a directory" in err
    code, _, err = run(["eval", "-m", model_dir, "--data-dir", str(tmp_path), "--tasks", "tnews",
                        "--output-dir", str(tmp_path / "out")], capsys)
    assert code == 1 and "no folder" in err


@pytest.mark.parametrize("command, flags", [("classify", ["--multi-label"]),
                                            ("eval", ["--head", "--report", "--plots", "--compare-prompts"])])
def test_boolean_options_show_as_flags_in_help(capsys, command, flags):
    code, out, _ = run([command, "--help"], capsys)
    assert code == 0
    for flag in flags:
        line = next(line for line in out.splitlines() if line.strip().startswith(flag))
        assert "<bool>" not in line and "BOOLEAN" not in line, line


def test_output_suffix_picks_the_format_and_input_columns_are_carried(model_dir, capsys, tmp_path):
    import csv

    src = tmp_path / "in.csv"
    src.write_text('id,text\n7,"今天比赛\n球队赢了"\n8,市场上涨\n', encoding="utf-8")
    out = tmp_path / "out.csv"
    code, _, err = run(["classify", "-m", model_dir, "-l", "体育,财经", "-i", str(src), "-o", str(out)], capsys)
    assert code == 0, err
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    assert [r["id"] for r in rows] == ["7", "8"] and rows[0]["text"] == "今天比赛\n球队赢了"  # quoted newline kept
    assert set(rows[0]) == {"text", "label", "体育", "财经", "id"}
    out_json = tmp_path / "out.json"
    assert run(["classify", "-m", model_dir, "-l", "体育,财经", "-i", str(src), "-o", str(out_json)], capsys)[0] == 0
    assert [r["id"] for r in json.loads(out_json.read_text(encoding="utf-8"))] == ["7", "8"]


def test_output_that_is_the_input_is_refused_before_the_model_loads(capsys, tmp_path):
    src = tmp_path / "in.jsonl"
    src.write_text('{"text": "今天比赛"}\n', encoding="utf-8")
    (tmp_path / "link.jsonl").symlink_to(src)
    code, _, err = run(["classify", "-m", "/no/such/model", "-l", "a,b", "-i", str(src), "-o",
                        str(tmp_path / "link.jsonl")], capsys)
    assert code == 2 and "is the input file" in err
    assert src.read_text(encoding="utf-8") == '{"text": "今天比赛"}\n'


def test_link_reads_stdin(model_dir, capsys, monkeypatch):
    import io
    import sys

    line = json.dumps({"text": "苹果发布了新款手机", "id": 3, "candidates": [
        {"id": "Q312", "description": "苹果公司"}, {"id": "Q89", "description": "苹果，水果"}]}, ensure_ascii=False)
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO((line + "\n").encode("utf-8"))))
    code, out, err = run(["link", "-m", model_dir, "--input", "-"], capsys)
    assert code == 0, err
    row = json.loads(out)
    assert row["entity"] in ("Q312", "Q89") and row["id"] == 3 and set(row["scores"]) == {"Q312", "Q89"}


def test_without_model_the_default_is_named_and_nsp_model_sets_another(model_dir, capsys, monkeypatch):
    import time

    monkeypatch.delenv("NSP_MODEL", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", "/nonexistent-config-home")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    start = time.perf_counter()
    code, _, err = run(["classify", "-l", "体育,财经", "今天比赛"], capsys)
    lines = err.strip().splitlines()
    assert lines[0] == "nspzero: note: using model bert-base-chinese (built-in default); pass --model to choose another"
    assert code == 1 and "bert-base-chinese" in lines[-1] and "Traceback" not in err  # offline here: a clear error
    assert time.perf_counter() - start < 15
    monkeypatch.setenv("NSP_MODEL", model_dir)
    code, out, err = run(["classify", "-l", "体育,财经", "今天比赛"], capsys)
    assert code == 0 and f"using model {model_dir} (NSP_MODEL)" in err and json.loads(out)["text"] == "今天比赛"


def test_convert_and_a_google_folder_as_model_give_the_same_scores(model_dir, capsys, tmp_path):
    """`nspzero convert` on a Google TF1 bundle, and the bundle folder given straight to --model."""
    import os

    from transformers import BertForPreTraining

    from checkpoint_writers import write_google_bert

    model = BertForPreTraining.from_pretrained(model_dir).eval()
    google = write_google_bert(str(tmp_path / "chinese_L-2_H-32_A-2"), model, os.path.join(model_dir, "vocab.txt"))
    out = tmp_path / "converted"
    code, stdout, err = run(["convert", google, str(out)], capsys)
    assert code == 0 and str(out) in stdout, err
    rows = {}
    for name, path in (("original", model_dir), ("google", google), ("converted", str(out))):
        code, stdout, err = run(["classify", "-m", path, "-l", "体育,财经", "今天比赛"], capsys)
        assert code == 0, err
        rows[name] = json.loads(stdout)["scores"]
    for name in ("google", "converted"):
        assert max(abs(rows[name][k] - rows["original"][k]) for k in rows["original"]) <= 1e-5
    code, _, err = run(["convert", google, str(out)], capsys)  # an existing, non-empty folder is never overwritten
    assert code == 2 and len(err.strip().splitlines()) == 1, err


def test_sigterm_leaves_the_old_output_and_no_temp_file(model_dir, tmp_path):
    """`kill` during a run unwinds like Ctrl-C: exit 130, the previous output byte for byte, no temp file."""
    import signal
    import time

    src = tmp_path / "in.txt"
    src.write_text("\n".join(f"今天比赛{i}" for i in range(20000)) + "\n", encoding="utf-8")
    out = tmp_path / "out.jsonl"
    out.write_bytes(b'{"text": "old"}\n')
    proc = subprocess.Popen([sys.executable, "-m", "nspzero.cli", "classify", "-m", model_dir, "-l", "体育,财经",
                             "-i", str(src), "-o", str(out)], stderr=subprocess.PIPE)
    deadline = time.time() + 120
    while not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")] and time.time() < deadline:
        time.sleep(0.1)  # wait until it is writing its temp file
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err.decode()
    assert out.read_bytes() == b'{"text": "old"}\n'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.txt", "out.jsonl"]


def test_a_row_labels_field_overrides_labels_and_csv_keeps_scores_as_json(model_dir, clf, capsys, tmp_path):
    src = tmp_path / "in.jsonl"
    src.write_text('{"text": "今天比赛", "labels": ["体育", "财经"]}\n{"text": "东西很好", "labels": "好,差,不错"}\n'
                   '{"text": "市场上涨"}\n', encoding="utf-8")
    out = tmp_path / "out.csv"
    code, _, err = run(["classify", "-m", model_dir, "-l", "科技,教育", "-i", str(src), "-o", str(out)], capsys)
    assert code == 0, err
    import csv

    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    assert list(rows[0]) == ["text", "label", "scores"] and "labels" not in rows[0]
    for row, (text, labels) in zip(rows, [("今天比赛", ["体育", "财经"]), ("东西很好", ["好", "差", "不错"]),
                                          ("市场上涨", ["科技", "教育"])]):
        want = clf.classify(text, labels)
        assert row["label"] == want.label and json.loads(row["scores"]) == pytest.approx(want.scores, abs=1e-5)


@pytest.mark.parametrize("content, message", [
    ('{"text": "今天比赛", "labels": ["体育", "体育"]}\n', "in.jsonl:1: field 'labels': label '体育' is given twice"),
    ('{"text": "今天比赛", "labels": 3}\n', "in.jsonl:1: field 'labels': labels must be a list or a dict"),
    ('{"text": "今天比赛", "labels": "体育,财经"}\n{"text": "市场上涨"}\n', "in.jsonl:2: no labels for this row"),
])
def test_bad_row_labels_name_file_and_line_before_the_model_loads(capsys, tmp_path, content, message):
    src = tmp_path / "in.jsonl"
    src.write_text(content, encoding="utf-8")
    code, _, err = run(["classify", "-m", str(tmp_path / "no-model"), "-i", str(src)], capsys)
    assert code == 1 and message in err and len(err.strip().splitlines()) == 1, err


def test_top_k_and_long_text_options(model_dir, clf, capsys):
    text = "今天比赛球队赢了。" * 12
    code, out, err = run(["classify", "-m", model_dir, "--max-length", "64", "-l", "体育,财经,科技,教育",
                          "-t", "这是一则{label}新闻", "--long-text", "chunk", "--aggregate", "mean", "--overlap", "0",
                          "--top-k", "2", text], capsys)
    assert code == 0, err
    row = json.loads(out)
    want = clf.classify(text, ["体育", "财经", "科技", "教育"], template="这是一则{label}新闻", long_text="chunk",
                        aggregate="mean", overlap=0, top_k=2)
    assert row["label"] == want.label and list(row["scores"]) == list(want.scores) and len(want.scores) == 2
    assert row["scores"] == pytest.approx(want.scores, abs=1e-5)


def test_labels_file_gives_names_words_and_descriptions(model_dir, clf, capsys, tmp_path):
    labels = tmp_path / "labels.json"
    labels.write_text(json.dumps({"体育": {"words": ["体育", "比赛"]}, "财经": {"description": "这是一则财经新闻"},
                                  "科技": "科技"}, ensure_ascii=False), encoding="utf-8")
    code, out, err = run(["classify", "-m", model_dir, "--labels-file", str(labels), "今天比赛"], capsys)
    assert code == 0, err
    want = clf.classify("今天比赛", {"体育": ["体育", "比赛"], "财经": {"description": "这是一则财经新闻"}, "科技": "科技"})
    assert json.loads(out)["scores"] == pytest.approx(want.scores, abs=1e-5)
    code, _, err = run(["classify", "-m", model_dir, "--labels-file", str(labels), "-l", "a,b", "x"], capsys)
    assert code == 2 and "give --labels or --labels-file, not both" in err


@pytest.mark.parametrize("which", ["labels file", "prompt file", "model file"])
def test_output_that_is_another_input_of_the_run_is_refused_before_the_model_loads(capsys, tmp_path, which):
    labels = tmp_path / "labels.json"
    labels.write_text('["体育", "财经"]', encoding="utf-8")
    prompt = tmp_path / "p.json"     # a prompt set is YAML, and JSON is YAML: a file an output could name
    prompt.write_text('{"name": "p", "words": {"w": {"a": "体育", "b": "财经"}}, '
                      '"variants": {"x": {"template": "{label}", "words": "w"}}}', encoding="utf-8")
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text("{}", encoding="utf-8")
    target = {"labels file": labels, "prompt file": prompt, "model file": model / "config.json"}[which]
    before = target.read_bytes()
    args = ["classify", "-m", str(model), "今天比赛", "-o", str(target)]
    args += ["--prompt", f"{prompt}:x"] if which == "prompt file" else ["--labels-file", str(labels)]
    code, _, err = run(args, capsys)
    assert code == 2 and ("the input file" in err or "in the input folder" in err), err
    assert target.read_bytes() == before


def test_eval_refuses_an_output_folder_holding_the_model_before_it_loads(capsys, tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "runs" / "model").mkdir(parents=True)
    code, _, err = run(["eval", "-m", str(tmp_path / "runs" / "model"), "-d", str(tmp_path / "data"),
                        "-o", str(tmp_path / "runs"), "--tasks", "eprstmt"], capsys)
    assert code == 2 and "is or holds the input" in err and "model" in err, err


def test_a_second_ctrl_c_while_exiting_still_exits_130(tmp_path):
    """Users press Ctrl-C twice: the second one, arriving while nspzero prints that it was
    interrupted, used to escape main() as a KeyboardInterrupt, and Python then ended the process
    by SIGINT (exit -2 to a parent, no 130)."""
    child = tmp_path / "twice.py"
    child.write_text(
        "import os, signal, sys\nimport nspzero.cli as cli\n\n\n"
        "class Stderr:  # the user presses Ctrl-C again as nspzero says it was interrupted\n"
        "    def __init__(self, real):\n        self.real = real\n\n"
        "    def write(self, text):\n        os.kill(os.getpid(), signal.SIGINT)\n        return self.real.write(text)\n\n"
        "    def flush(self):\n        self.real.flush()\n\n\n"
        "@cli.app.command('stop')\ndef stop() -> None:\n    sys.stderr = Stderr(sys.stderr)\n"
        "    raise KeyboardInterrupt\n\n\ncli.main(['stop'])\n", encoding="utf-8")
    proc = subprocess.run([sys.executable, str(child)], capture_output=True, timeout=120)
    assert proc.returncode == 130, proc.stderr.decode()
    assert proc.stderr.decode().strip() == "nspzero: interrupted; no output file was changed"


HEAVY = ("torch", "transformers", "sklearn")
LOADED = ("import sys\nfrom nspzero.cli import main\ntry:\n    main(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
          "print(sorted(m for m in {heavy!r} if m in sys.modules), file=sys.stderr)")


@pytest.mark.parametrize("args", [["--help"], ["classify", "--help"], ["eval", "--help"], ["link", "--help"],
                                  ["serve", "--help"], ["classify", "--bogus"], ["eval", "--limit", "x"]])
def test_help_and_usage_errors_import_no_torch(args):
    """--help and parser errors print at once: torch, transformers and scikit-learn stay unloaded."""
    done = subprocess.run([sys.executable, "-c", LOADED.format(heavy=HEAVY), *args], capture_output=True, text=True,
                          timeout=120)
    assert done.stderr.splitlines()[-1] == "[]", done.stderr
    assert "Usage" in done.stdout or "nspzero: error:" in done.stderr


def test_import_nspzero_is_lazy_and_names_still_work():
    code = ("import sys, nspzero\nassert 'torch' not in sys.modules\nfrom nspzero import NSPClassifier, UsageError\n"
            "assert 'torch' in sys.modules and NSPClassifier.__name__ == 'NSPClassifier'\n"
            "assert 'NSPScorer' in dir(nspzero)\ntry:\n    nspzero.nope\nexcept AttributeError as e:\n    print(e)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "module 'nspzero' has no attribute 'nope'", done.stderr


def test_overlap_help_states_the_request_default():
    from nspzero.request import DEFAULT_OVERLAP

    done = subprocess.run([sys.executable, "-m", "nspzero.cli", "classify", "--help"], capture_output=True, text=True,
                          timeout=120, env={**__import__("os").environ, "COLUMNS": "200"})
    assert f"Default {DEFAULT_OVERLAP}." in " ".join(done.stdout.split())


def test_table_cuts_long_texts_to_the_terminal_width(model_dir, capsys, monkeypatch):
    from rich.cells import cell_len

    monkeypatch.setenv("COLUMNS", "80")
    long_text = "今天比赛球队赢了" * 190   # 1,520 characters
    code, out, err = run(["classify", "-m", model_dir, "-l", "体育,财经", "-f", "table", long_text, "市场上涨"], capsys)
    assert code == 0, err
    lines = out.splitlines()
    assert max(cell_len(line) for line in lines) <= 80 and len(lines) <= 8, out   # one line per text
    assert "…" in out and "市场上涨" in out


def test_repeated_labels_option_adds_labels(model_dir, capsys):
    code, out, err = run(["classify", "-m", model_dir, "-l", "体育", "-l", "财经，科技", "今天比赛"], capsys)
    assert code == 0, err
    assert list(json.loads(out)["scores"]) and set(json.loads(out)["scores"]) == {"体育", "财经", "科技"}


@pytest.mark.parametrize("command, default", [("classify", "Default 256, or the model's position limit"),
                                              ("link", "Default 256, or the model's position limit"),
                                              ("serve", "Default 256, or the model's position limit"),
                                              ("eval", "Default 128.")])
def test_max_length_help_names_its_default_and_only_options_the_command_has(capsys, command, default):
    code, out, _ = run([command, "--help"], capsys)
    line = " ".join(out[out.index("--max-length"):out.index("--batch-size")].split())
    assert code == 0 and default in line
    assert ("--long-text" in line) == (command == "classify"), line


def test_max_length_defaults_to_the_model_positions_when_fewer(tmp_path, capsys):
    from conftest import build_model_dir
    from nspzero.scorer import NSPScorer

    short = build_model_dir(tmp_path / "short", max_position=40)
    assert NSPScorer.from_pretrained(short).max_length == 40
    assert NSPScorer.from_pretrained(short, max_length=32).max_length == 32
    code, out, err = run(["classify", "-m", short, "-l", "体育,财经", "今天比赛" * 30], capsys)
    assert code == 0, err   # 256 would be refused: "max_length must be an integer between 4 and 40"


@pytest.mark.parametrize("command", ["classify", "link"])
def test_format_help_names_every_format_the_option_accepts(capsys, command):
    from nspzero.io import OUTPUT_FORMATS

    code, out, _ = run([command, "--help"], capsys)
    lines = out.splitlines()
    start = next(i for i, l in enumerate(lines) if re.match(r"\s+(-f, )?--format ", l))
    indent = len(lines[start]) - len(lines[start].lstrip())
    end = next(i for i in range(start + 1, len(lines))    # the next option, at the same indent
               if len(lines[i]) - len(lines[i].lstrip()) <= indent)
    text = " ".join(" ".join(lines[start:end]).split())
    accepted = [f for f in OUTPUT_FORMATS if not (command == "link" and f == "table")]   # link refuses table
    assert code == 0 and all(f in text for f in accepted), text


# ==== Bad-input rows (moved here from test_bad_input.py: the CLI battery: exit code 2 for usage errors, 1 for data/model errors, stderr exactly one line; long inputs that must work) ====
from bad_input import (BAD_CSV, BAD_JSONL, BAD_TXT, GBK, TASK_OK, check_cli_case, cli_case,  # noqa: E402
                       env, gpt2_model_dir, task_line)  # noqa: F401  (env, gpt2_model_dir: fixtures)

LONG_TEXT = "今天比赛球队赢了市场上涨公司发布手机" * 30  # ~540 tokens, far beyond max_length
LONG_PROMPT = "这是一则体育新闻" * 7  # 56 tokens
M = ["classify", "-m", "@model"]
C = M + ["-l", "体育,财经"]
E = ["eval", "-m", "@model", "-o", "@tmp/out"]
TNEWS_ROW = '{"label": 103, "label_desc": "news_sports", "sentence": "今天比赛", "id": 0}\n'

CLI_CASES = [
    # texts
    cli_case("empty-text", C + [""], 2, "texts[0] is empty"),
    cli_case("whitespace-text", C + ["今天比赛", "   "], 2, "texts[1] is empty"),
    cli_case("lone-surrogate-text", C + ["好\udcff"], 2, "texts[0] is not valid Unicode"),
    cli_case("no-texts", C, 2, "no texts: pass them as arguments, or use --input FILE"),
    cli_case("texts-and-input", C + ["-i", "@tmp/in.txt", "今天比赛"], 2, "give texts as arguments or with --input, not both",
             files={"in.txt": "a\n"}),
    # labels
    cli_case("labels-missing", M + ["今天比赛"], 2, "--labels is required"),
    cli_case("labels-empty", M + ["-l", "", "今天比赛"], 2, "a label is an empty string"),
    cli_case("labels-only-commas", M + ["-l", ",", "今天比赛"], 2, "a label is an empty string"),
    cli_case("duplicate-labels", M + ["-l", "体育,财经,体育", "今天比赛"], 2, "label '体育' is given twice"),
    cli_case("empty-label-between", M + ["-l", "体育,,财经", "今天比赛"], 2, "a label is an empty string"),
    cli_case("lone-surrogate-label", M + ["-l", "体育\udcff,财经", "今天比赛"], 2, "is not valid Unicode"),
    # templates
    cli_case("template-without-label", C + ["-t", "这是一则新闻", "今天比赛"], 2, "has no {label} placeholder"),
    cli_case("template-attribute", C + ["-t", "{label.__class__}", "今天比赛"], 2, "{label.__class__} is not allowed"),
    cli_case("template-index", C + ["-t", "{label[0]}", "今天比赛"], 2, "{label[0]} is not allowed"),
    cli_case("template-positional", C + ["-t", "{0}", "今天比赛"], 2, "{0} is not allowed"),
    cli_case("template-empty-braces", C + ["-t", "{}", "今天比赛"], 2, "placeholder {} is not allowed"),
    cli_case("template-unbalanced-open", C + ["-t", "{label", "今天比赛"], 2, "unbalanced braces?"),
    cli_case("template-unbalanced-close", C + ["-t", "label}", "今天比赛"], 2, "unbalanced braces?"),
    cli_case("template-second-bad", C + ["-t", "{label}", "-t", "{label!s}", "今天比赛"], 2, "{label!s} is not allowed"),
    # options
    cli_case("placement-typo", C + ["--placement", "prefx", "今天比赛"], 2, "placement must be 'prefix'"),
    cli_case("threshold-above-1", C + ["--multi-label", "--threshold", "1.5", "今天比赛"], 2,
             "threshold must be a probability between 0 and 1, got 1.5"),
    cli_case("threshold-negative", C + ["--multi-label", "--threshold", "-0.5", "今天比赛"], 2, "got -0.5"),
    cli_case("threshold-not-a-number", C + ["--threshold", "half", "今天比赛"], 2, "Invalid value for '--threshold'"),
    cli_case("format-typo", C + ["--format", "jsnol", "今天比赛"], 2, "--format must be one of jsonl, json, csv, table (stdout) or parquet (with --output FILE.parquet), got 'jsnol'"),
    cli_case("dtype-float8", C + ["--dtype", "float8", "今天比赛"], 2, "dtype must be one of float32, bfloat16, float16, int8"),
    cli_case("max-length-huge", C + ["--max-length", "100000", "今天比赛"], 2, "max_length must be an integer between 4 and 512"),
    cli_case("max-length-not-int", C + ["--max-length", "abc", "今天比赛"], 2, "Invalid value for '--max-length'"),
    cli_case("batch-size-zero", C + ["--batch-size", "0", "今天比赛"], 2, "batch_size must be a positive integer, got 0"),
    cli_case("device-unknown", C + ["--device", "tpu", "今天比赛"], 2, "device 'tpu' is not a device name"),
    cli_case("input-format-unknown", C + ["-i", "@tmp/in.txt", "--input-format", "xml"], 2, "input format must be one of",
             files={"in.txt": "a\n"}),
    cli_case("unknown-option", C + ["--bogus", "今天比赛"], 2, "No such option: --bogus"),
    # prompt sets
    cli_case("prompt-unknown", M + ["--prompt", "tnewz", "今天比赛"], 2, "unknown prompt set 'tnewz'; did you mean 'tnews'?"),
    cli_case("prompt-variant-unknown", M + ["--prompt", "tnews:news", "今天比赛"], 2, "has no variant 'news'"),
    cli_case("prompt-pair-set", M + ["--prompt", "ocnli", "今天比赛"], 2, "is a sentence-pair prompt; classification needs a label prompt"),
    cli_case("prompt-label-not-in-set", M + ["--prompt", "tnews", "-l", "news_sports,sports", "今天比赛"], 2,
             "labels 'sports' not in prompt tnews"),
    # input files
    cli_case("txt-not-utf8", C + ["-i", "@tmp/in.txt"], 1, "in.txt:2: not valid UTF-8 at byte offset 8",
             files={"in.txt": BAD_TXT}),
    cli_case("jsonl-not-utf8", C + ["-i", "@tmp/in.jsonl"], 1, "in.jsonl:2: not valid UTF-8 at byte offset 25",
             files={"in.jsonl": BAD_JSONL}),
    cli_case("csv-not-utf8", C + ["-i", "@tmp/in.csv"], 1, "in.csv:3: not valid UTF-8 at byte offset 15",
             files={"in.csv": BAD_CSV}),
    cli_case("jsonl-malformed", C + ["-i", "@tmp/in.jsonl"], 1, "in.jsonl:3: malformed JSON",
             files={"in.jsonl": '{"text": "a"}\n{"text": "b"}\n{"text": "c"\n'}),
    cli_case("jsonl-not-object", C + ["-i", "@tmp/in.jsonl"], 1, "in.jsonl:1: expected a JSON object, got str",
             files={"in.jsonl": '"just a string"\n'}),
    cli_case("jsonl-missing-field", C + ["-i", "@tmp/in.jsonl"], 1, "in.jsonl:1: no field 'text' (fields: id, sentence)",
             files={"in.jsonl": '{"id": 1, "sentence": "a"}\n'}),
    cli_case("jsonl-text-field-typo", C + ["-i", "@tmp/in.jsonl", "--text-field", "sentense"], 1,
             "no field 'sentense' (fields: id, sentence)", files={"in.jsonl": '{"id": 1, "sentence": "a"}\n'}),
    cli_case("jsonl-empty-text", C + ["-i", "@tmp/in.jsonl"], 1, "in.jsonl:2: field 'text' is empty",
             files={"in.jsonl": '{"text": "a"}\n{"text": ""}\n'}),
    cli_case("jsonl-lone-surrogate", C + ["-i", "@tmp/in.jsonl"], 1, "in.jsonl:1: field 'text' is not valid Unicode",
             files={"in.jsonl": '{"text": "a\\udc80"}\n'}),
    cli_case("csv-no-text-column", C + ["-i", "@tmp/in.csv"], 1, "in.csv:1: CSV has no column 'text' (columns: id, body)",
             files={"in.csv": "id,body\n1,a\n"}),
    cli_case("input-missing", C + ["-i", "@tmp/nope.txt"], 1, "does not exist"),
    cli_case("input-is-directory", C + ["-i", "@tmp"], 1, "is a directory"),
    cli_case("stdin-not-utf8", C + ["-i", "-"], 1, "<stdin>:2: not valid UTF-8 at byte offset 8", files={"<stdin>": BAD_TXT}),
    # models
    cli_case("model-missing", ["classify", "-m", "@missing", "-l", "体育,财经", "今天比赛"], 1, "does not exist"),
    cli_case("model-dir-without-config", ["classify", "-m", "@empty", "-l", "体育,财经", "今天比赛"], 1, "has no config.json"),
    cli_case("model-not-bert", ["classify", "-m", "@gpt2", "-l", "体育,财经", "今天比赛"], 1,
             "is a 'gpt2' model, which has no next-sentence-prediction head"),
    cli_case("model-without-nsp-head", ["classify", "-m", "@headless", "-l", "体育,财经", "今天比赛"], 1,
             "no trained weights for its next-sentence-prediction head"),
    cli_case("model-without-vocab", ["classify", "-m", "@novocab", "-l", "体育,财经", "今天比赛"], 1, "vocab"),
    # outputs
    cli_case("output-dir-missing", C + ["-o", "@tmp/no/such/dir/out.jsonl", "今天比赛"], 1, "no/such/dir"),
    cli_case("output-is-directory", C + ["-o", "@tmp", "今天比赛"], 1, "Is a directory"),
    # eval
    cli_case("eval-limit-zero", E + ["--data-dir", "@tmp", "--limit", "0"], 2,
             "--limit must be a positive number of examples, got 0"),
    cli_case("eval-data-dir-missing", E + ["--data-dir", "@tmp/FewCLUE"], 2, "FewCLUE' is not a directory"),
    cli_case("eval-task-unknown", E + ["--data-dir", "@tmp", "--tasks", "eprstmt,tnewz"], 2,
             "unknown task 'tnewz'; did you mean 'tnews'?"),
    cli_case("eval-tasks-empty", E + ["--data-dir", "@tmp", "--tasks", ","], 2, "--tasks is empty"),
    cli_case("eval-task-folder-missing", E + ["--data-dir", "@tmp/data", "--tasks", "tnews"], 1, "task tnews: no folder",
             files={"data/eprstmt/test_public.json": TNEWS_ROW}),
    cli_case("eval-split-missing", E + ["--data-dir", "@tmp/data", "--tasks", "tnews"], 1,
             "task tnews: no split 'test_public'", files={"data/tnews/dev_few_all.json": TNEWS_ROW}),
    cli_case("eval-split-typo", E + ["--data-dir", "@tmp/data", "--tasks", "tnews", "--split", "test_pubic"], 1,
             "no split 'test_pubic'", files={"data/tnews/test_public.json": TNEWS_ROW}),
    cli_case("eval-split-malformed", E + ["--data-dir", "@tmp/data", "--tasks", "tnews"], 1,
             "test_public.json:2: malformed JSON", files={"data/tnews/test_public.json": TNEWS_ROW + "{oops\n"}),
    cli_case("eval-split-missing-field", E + ["--data-dir", "@tmp/data", "--tasks", "tnews"], 1,
             "test_public.json:1: no field 'sentence'", files={"data/tnews/test_public.json": '{"label_desc": "news_sports"}\n'}),
    cli_case("eval-prompt-malformed", E + ["--data-dir", "@tmp", "--tasks", "tnews", "--prompt", "tnews"], 2,
             "expected TASK=SET[:VARIANT]"),
    cli_case("eval-prompt-unknown-set", E + ["--data-dir", "@tmp/data", "--tasks", "tnews", "--prompt", "tnews=tnewz"], 2,
             "unknown prompt set 'tnewz'", files={"data/tnews/test_public.json": TNEWS_ROW}),
]

ISSUE11_CLI_CASES = [
    cli_case("device-meta", C + ["--device", "meta", "今天比赛"], 2, "device 'meta' is not supported"),
    cli_case("device-mps", C + ["--device", "mps", "今天比赛"], 2, "device 'mps' is not supported"),
    cli_case("nul-text", C + ["\x00\x00"], 2, "texts[0] is empty"),
    cli_case("zero-width-text", C + ["今天", "\u200b\u200b"], 2, "texts[1] is empty"),
    cli_case("prompt-too-long-suffix", C + ["--placement", "suffix", "--template", LONG_PROMPT + "{label}", "--max-length",
                                        "32", "今天比赛"], 2, "tokens long, but max_length=32 leaves room for 21"),
    cli_case("prompt-file-python-tag", M + ["--prompt", "@tmp/p.yaml", "今天比赛"], 2, "p.yaml:1: invalid YAML",
             files={"p.yaml": "name: !!python/object/apply:os.system ['true']\n"}),
    cli_case("prompt-file-not-utf8", M + ["--prompt", "@tmp/p.yaml", "今天比赛"], 2, "p.yaml:1: not UTF-8",
             files={"p.yaml": b"name: " + GBK + b"\n"}),
    cli_case("eval-task-name-traversal", E + ["--data-dir", "@tmp", "--tasks", "@tmp/t.yaml"], 2,
             "t.yaml:4: field 'name' must be a name", files={"t.yaml": task_line("name", "../../x")}),
    cli_case("eval-task-soft-positions-string", E + ["--data-dir", "@tmp", "--tasks", "@tmp/t.yaml"], 2,
             "field 'soft_positions' must be true or false", files={"t.yaml": task_line("soft_positions", "'no'")}),
    cli_case("eval-task-yaml-syntax", E + ["--data-dir", "@tmp", "--tasks", "@tmp/t.yaml"], 2, "invalid YAML",
             files={"t.yaml": "name: [x\n"}),
    cli_case("control-text", C + ["\x07\x1b"], 2, "texts[0] is empty"),
    cli_case("eval-task-metric-unknown", E + ["--data-dir", "@tmp", "--tasks", "@tmp/t.yaml"], 2,
             "field 'metric' must be one of accuracy, macro_f1", files={"t.yaml": task_line("metric", "f1")}),
    cli_case("eval-task-not-utf8", E + ["--data-dir", "@tmp", "--tasks", "@tmp/t.yaml"], 2, "t.yaml:5: not UTF-8",
             files={"t.yaml": TASK_OK.encode() + b"description: " + GBK + b"\n"}),
    cli_case("eval-task-duplicate-names", E + ["--data-dir", "@tmp", "--tasks", "tnews,@tmp/t.yaml"], 2,
             "two tasks are named 'tnews'", files={"t.yaml": task_line("name", "tnews")}),
]


@pytest.mark.usefixtures("one_torch_thread")
@pytest.mark.parametrize("argv, files, code, message", CLI_CASES + ISSUE11_CLI_CASES)
def test_cli_bad_input(env, capsys, argv, files, code, message):
    check_cli_case(env, capsys, argv, files, code, message)


def test_cli_long_text_succeeds_with_one_warning_line(model_dir, capsys):
    code, out, err = run(["classify", "-m", model_dir, "-l", "体育,财经", "--max-length", "32", LONG_TEXT, "今天比赛"],
                         capsys)
    assert code == 0, err
    assert len(out.splitlines()) == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith("nspzero: warning: 2 of 4 pairs were longer than max_length=32"), err


def test_csv_with_a_very_long_text_cell_succeeds(model_dir, capsys, tmp_path):
    src = tmp_path / "in.csv"
    src.write_text("id,text\n1," + "好" * 200_000 + "\n2,今天比赛\n", encoding="utf-8")  # > csv's 131072 field limit
    code, out, err = run(["classify", "-m", model_dir, "-l", "体育,财经", "-i", str(src)], capsys)
    assert code == 0, err
    assert len(out.splitlines()) == 2


def test_cli_called_twice_prints_each_warning_once(model_dir, capsys):
    argv = ["classify", "-m", model_dir, "-l", "体育,财经", "--max-length", "32", LONG_TEXT]
    run(argv, capsys)
    code, _, err = run(argv, capsys)
    assert code == 0
    assert len(err.strip().splitlines()) == 1, err
# ==== end of the moved bad-input rows ====


@pytest.mark.parametrize("min_pairs, drawn", [(4, True), (100, False)])
def test_classify_draws_one_bar_over_its_input_by_the_librarys_rule(model_dir, capsys, monkeypatch, tmp_path,
                                                                      min_pairs, drawn):
    """`nspzero classify --input` shows one bar over its texts on a terminal, by `scorer.progress_bar`'s
    rule (a small input stays quiet)."""
    import io

    from nspzero import scorer

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    src = tmp_path / "in.txt"
    src.write_text("今天比赛\n市场上涨\n东西很好\n", encoding="utf-8")   # 3 texts × 2 labels = 6 pairs
    terminal = Terminal()
    monkeypatch.setattr(scorer, "PROGRESS_DELAY_S", 0.0)
    monkeypatch.setattr(scorer, "PROGRESS_MIN_PAIRS", min_pairs)
    monkeypatch.setattr(sys, "stderr", terminal)
    code, out, _ = run(["classify", "--model", model_dir, "--labels", "体育,财经", "--input", str(src)], capsys)
    assert code == 0 and len(out.splitlines()) == 3
    assert ("classifying" in terminal.getvalue() and "/3" in terminal.getvalue()) == drawn, terminal.getvalue()



def test_table_shows_terminal_control_characters_visibly(model_dir, capsys):
    """Class: texts that would drive the terminal (ESC sequences, bidi overrides) or break one line per text."""
    texts = ["\x1b]0;owned\x07标题", "清屏\x1b[2J\x1b[H", "两\n行", "\u202e反向"]
    code, out, err = run(["classify", "-m", model_dir, "-l", "体育,财经", "-f", "table", *texts], capsys)
    assert code == 0, err
    assert "\x1b" not in out and "\x07" not in out and "\u202e" not in out
    assert "\u241b]0;owned" in out and "两\u240a行" in out
    code, out, err = run(["classify", "-m", model_dir, "-l", "体育,财经", *texts], capsys)
    assert [json.loads(line)["text"] for line in out.splitlines()] == texts  # JSON keeps the data as it is


def test_csv_output_neutralises_formula_cells_unless_raw(model_dir, capsys, tmp_path):
    """Class: CSV formula cells, in the CLI's CSV as in the page's download; --raw-csv keeps them."""
    src = tmp_path / "in.jsonl"
    src.write_text('{"text": "=HYPERLINK(\\"http://x\\")", "id": "@A1"}\n{"text": "市场", "id": "-5"}\n',
                   encoding="utf-8")
    code, out, err = run(["classify", "-m", model_dir, "-l", "体育,财经", "-i", str(src), "-f", "csv"], capsys)
    assert code == 0, err
    lines = out.splitlines()
    assert lines[1].startswith('"\'=HYPERLINK(') and ",'@A1" in lines[1] and lines[2].endswith(",-5")
    code, out, err = run(["classify", "-m", model_dir, "-l", "体育,财经", "-i", str(src), "-f", "csv", "--raw-csv"],
                         capsys)
    assert code == 0, err
    assert out.splitlines()[1].startswith('"=HYPERLINK(') and ",@A1" in out.splitlines()[1]


@pytest.mark.parametrize("args", [
    ["-t", "x" * 30_000, "今天"],                     # a template without {label}
    ["-t", "{label}" + "x" * 30_000 + "{", "今天"],   # unbalanced
    ["-l", "体育," + "x" * 30_000, "今天"],           # a label too long
    ["--placement", "x" * 30_000, "今天"],
    ["--threshold", "x" * 30_000, "今天"],            # the parser's own message
    ["--input", "-", "--text-field", "x" * 30_000, "--input-format", "jsonl"],
])
def test_a_usage_error_never_echoes_an_input_whole(model_dir, capsys, args, monkeypatch):
    """Class: error lines built around an input, in the CLI: one short line on stderr."""
    import io

    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b'{"text": "t"}\n')))
    code, out, err = run(["classify", "-m", model_dir, "-l", "体育,财经", *args], capsys)
    assert code in (1, 2) and len(err) < 1200 and err.count("\n") == 1 and "x" * 200 not in err, err[:300]


# ---- first-hour messages (issue 29, item 17) ---------------------------------------------------------
def test_version_is_printed_without_loading_torch():
    import subprocess
    import sys

    from importlib.metadata import version

    code = ("import atexit, sys; atexit.register(lambda: print('torch' in sys.modules, file=sys.stderr)); "
            "from nspzero.cli import main; main(['--version'])")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout == f"nspzero {version('nspzero')}\n", proc.stderr
    assert proc.stderr.strip() == "False"


@pytest.mark.parametrize("args, hint", [
    (["eval"], "(see nspzero eval --help)"),
    (["classify", "--bogus"], "(see nspzero classify --help)"),
    (["evl"], "(see nspzero --help)"),
])
def test_a_parser_error_points_to_the_help_of_its_own_command(capsys, args, hint):
    code, _, err = run(args, capsys)
    assert code == 2 and err.strip().endswith(hint), err


def test_output_file_gets_one_line_saying_what_was_written(model_dir, tmp_path, capsys):
    out = tmp_path / "r.csv"
    code, stdout, err = run(["classify", "-m", model_dir, "--max-length", "32", "-l", "体育,财经", "-o", str(out),
                             "今天比赛", "市场上涨"], capsys)
    assert code == 0 and stdout == "", err
    assert f"2 rows classified → {out} (csv)" in err.splitlines()


def test_a_rerun_served_by_the_cache_says_so(model_dir, tmp_path, capsys):
    """Not "0/N pairs scored": the second run's pairs all come from the folder's cache, and the line says it."""
    from fewclue_fixture import write_fewclue

    data = write_fewclue(tmp_path / "data", n=4)
    argv = ["eval", "-m", model_dir, "-d", str(data), "--tasks", "eprstmt", "-o", str(tmp_path / "o"),
            "--max-length", "32"]
    code, _, first = run(argv, capsys)
    assert code == 0 and re.search(r"eprstmt .*\(4 examples, \d+ pairs scored,", first), first
    pairs = int(re.search(r"(\d+) pairs scored", first).group(1))
    code, _, again = run(argv, capsys)
    assert code == 0 and f", {pairs} pairs, all from the cache," in again, again
    assert f"0/{pairs}" not in again, again


@pytest.mark.parametrize("args, message", [
    (["classify", "-l", "体育,财经"], "no texts"),
    (["classify", "-l", "体育,体育", "今天比赛"], "given twice"),
    (["classify", "-l", "体育,财经", "-t", "{0}", "今天比赛"], "not allowed"),
    (["classify", "--prompt", "tnewz", "今天比赛"], "unknown prompt set"),
])
def test_a_request_usage_error_comes_before_torch_loads(args, message):
    """The request is built and checked (pydantic, numpy) before the model: torch, transformers and
    scikit-learn are not imported for a usage error, so it is answered at once, not after seconds."""
    code = ("import atexit, sys; atexit.register(lambda: print(sorted(m for m in ('torch', 'transformers', 'sklearn') "
            f"if m in sys.modules), file=sys.stderr)); from nspzero.cli import main; main({args!r})")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and message in lines[-2], proc.stderr
    assert lines[-1] == "[]", proc.stderr


def test_eval_few_shot_writes_a_few_shot_column(decisive_model_dir, capsys, tmp_path):
    """The issue's pin: `nspzero eval --few-shot --tasks eprstmt --limit 16` tunes, scores and writes the
    few-shot column (and the baselines) in results.md; --limit bounds the training split too."""
    from fewclue_fixture import write_fewclue

    data = write_fewclue(tmp_path / "data", n=20)
    out = tmp_path / "out"
    code, _, err = run(["eval", "-m", decisive_model_dir, "--data-dir", str(data), "--tasks", "eprstmt,ocnli",
                        "--limit", "16", "--few-shot", "--report", "--output-dir", str(out)], capsys)
    assert code == 0, err
    md = (out / "results.md").read_text(encoding="utf-8")
    row = next(line for line in md.splitlines() if line.startswith("| nspzero few-shot (NSP-tuning) |"))
    results = json.loads((out / "results.json").read_text(encoding="utf-8"))
    few = results["tasks"]["eprstmt"]["few_shot"]
    assert row.endswith(f"| {100 * few['accuracy']:.1f} | not tuned |")
    assert few["train_examples"] == few["dev_examples"] == few["examples"] == 16
    assert "| EFL few-shot (paper) | (paper) | 56.54 | 85.6 | — |" in md
    assert "eprstmt  few-shot" in err and "ocnli    few-shot: not tuned in the paper" in err
    assert 'data-testid="few-shot-row"' in (out / "report.html").read_text(encoding="utf-8")
    code, _, err = run(["eval", "-m", decisive_model_dir, "--data-dir", str(data), "--tasks", "eprstmt",
                        "--few-shot", "--dtype", "int8", "--output-dir", str(tmp_path / "no")], capsys)
    assert code == 2 and "--few-shot tunes float32 weights" in err and not (tmp_path / "no").exists()

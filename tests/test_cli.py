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
    (["classify", "-m", "{model}", "-l", "体育", "x"], 2, "one label"),
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
    ('{"text": "今天比赛", "labels": ["体育"]}\n', "in.jsonl:1: field 'labels': only one label ('体育') given"),
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

"""Bad-input battery ("Hardening"): every wrong input gets the right exception type or exit code
and a message that names the problem — never a traceback.

Rows for one module live in that module's test file (readers in test_io, task YAML in test_registry,
prompt-set YAML in test_prompt_sets, ChID data in test_tasks, the cache in test_cache, the request's
rules in test_request; shared shape in bad_input.py); what stays here is scoring (`score_pairs`, prompts
that do not fit, non-finite scores), model loading and devices, and the CLI battery.

API cases: the exception type and a distinctive part of its (one-line) message.
CLI cases: `nspzero.cli.main([...])` in-process; the exit code (2 usage errors, 1 data/model
errors), a distinctive part of the message, and stderr is exactly one line without "Traceback".
"""
from __future__ import annotations

import json
import logging
import os
import shutil
import sys
from pathlib import Path

import pytest

from nspzero import NSPClassifier
from nspzero.errors import ModelError, UsageError

from bad_input import BAD_CSV, BAD_JSONL, BAD_TXT, GBK, TASK_OK, Files, check_case
from bad_input import case as _api
from bad_input import task_line as _task_line
from conftest import run_cli as run

pytestmark = pytest.mark.usefixtures("one_torch_thread")

LABELS = ["体育", "财经"]
LONG_TEXT = "今天比赛球队赢了市场上涨公司发布手机" * 30  # ~540 tokens, far beyond max_length


# ---- shared helpers / fixtures ----------------------------------------------------------------
def assert_one_line_error(err: str, code: int, got: int, message: str) -> None:
    assert got == code, err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("nspzero: error: "), err
    assert message in lines[0], err


@pytest.fixture(scope="module")
def gpt2_model_dir(tmp_path_factory) -> str:
    from transformers import GPT2Config, GPT2LMHeadModel

    path = tmp_path_factory.mktemp("tiny-gpt2")
    config = GPT2Config(n_layer=1, n_embd=16, n_head=2, vocab_size=50, n_positions=32)
    GPT2LMHeadModel(config).save_pretrained(str(path))
    return str(path)


def _copy_model(model_dir: str, dest: Path, keep) -> str:
    dest.mkdir(parents=True, exist_ok=True)
    for name in os.listdir(model_dir):
        if keep(name):
            shutil.copy(os.path.join(model_dir, name), dest / name)
    return str(dest)


class Env(Files):
    """What a case may need: the classifier, model folders and a scratch folder for files."""

    def __init__(self, request, tmp_path: Path, monkeypatch) -> None:
        super().__init__(tmp_path, monkeypatch)
        self.request = request

    @property
    def clf(self) -> NSPClassifier:
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
    return Env(request, tmp_path, monkeypatch)


# ---- the API battery ----------------------------------------------------------------------------
API_CASES = [
    # score_pairs
    _api("score-pairs-strings", lambda e: e.clf.score_pairs("a", "b"), UsageError, "takes two lists of strings"),
    _api("score-pairs-unequal", lambda e: e.clf.score_pairs(["a", "b"], ["c"]), UsageError,
         "lists of equal length, got 2 and 1"),
    _api("score-pairs-none", lambda e: e.clf.score_pairs(["a"], [None]), UsageError, "second[0] is NoneType"),
    _api("score-pairs-surrogate", lambda e: e.clf.score_pairs(["a\ud800"], ["b"]), UsageError,
         "first[0] is not valid Unicode"),
    # from_pretrained
    _api("model-missing", lambda e: NSPClassifier.from_pretrained(e.model("missing")), ModelError,
         "does not exist"),
    _api("model-dir-without-config", lambda e: NSPClassifier.from_pretrained(e.model("empty")), ModelError,
         "has no config.json"),
    _api("model-bad-config-json", lambda e: NSPClassifier.from_pretrained(e.model("badcfg")), ModelError,
         "not a valid JSON file"),
    _api("model-without-weights", lambda e: NSPClassifier.from_pretrained(e.model("onlycfg")), ModelError,
         "could not load the weights"),
    _api("model-not-bert", lambda e: NSPClassifier.from_pretrained(e.model("gpt2")), ModelError,
         "is a 'gpt2' model, which has no next-sentence-prediction head"),
    _api("model-without-nsp-head", lambda e: NSPClassifier.from_pretrained(e.model("headless")), ModelError,
         "no trained weights for its next-sentence-prediction head (cls.seq_relationship"),
    _api("model-without-vocab", lambda e: NSPClassifier.from_pretrained(e.model("novocab")), ModelError, "vocab"),
    _api("dtype-float8", lambda e: NSPClassifier.from_pretrained(e.model(), device="cpu", dtype="float8"),
         UsageError, "dtype must be one of float32, bfloat16, float16, int8, got 'float8'"),
    _api("max-length-huge", lambda e: NSPClassifier.from_pretrained(e.model(), device="cpu", max_length=100000),
         UsageError, "max_length must be an integer between 4 and 512"),
    _api("batch-size-zero", lambda e: NSPClassifier.from_pretrained(e.model(), device="cpu", batch_size=0),
         UsageError, "batch_size must be a positive integer, got 0"),
    _api("device-unknown", lambda e: NSPClassifier.from_pretrained(e.model(), device="tpu"), UsageError,
         "device 'tpu' is not a device name"),
]


# ---- issue 11 (scorer, cache, YAML): helpers -----------------------------------------------------
def _nan_scorer(e: Env, value=float("nan")):
    import copy

    import torch

    from nspzero import NSPScorer

    model = copy.deepcopy(e.clf.scorer.model)
    with torch.no_grad():
        model.bert.encoder.layer[0].output.dense.weight.fill_(value)
    return NSPScorer(e.clf.scorer.tokenizer, model, device="cpu", name="tiny-broken")


def _pairs(*pairs):
    from nspzero import Pair

    return [Pair(*p) if isinstance(p, tuple) else p for p in pairs]


LONG_PROMPT = "这是一则体育新闻" * 7  # 56 tokens: more than max_length=64 leaves for a prompt (53)

ISSUE11_API_CASES = [
    # non-finite scores
    _api("nan-weights", lambda e: _nan_scorer(e).score(_pairs(("体育", "今天"))), ModelError,
         "model tiny-broken gave non-finite NSP scores"),
    _api("inf-weights", lambda e: _nan_scorer(e, float("inf")).score(_pairs(("体育", "今天"))), ModelError,
         "checkpoint"),
    # prompts never cut
    _api("prompt-too-long-prefix",
         lambda e: e.clf.scorer.score(_pairs(("体育", "今天", "first"), (LONG_PROMPT, "今天", "first"))), UsageError,
         "is 56 tokens long, but max_length=64 leaves room for 53 prompt tokens"),
    _api("prompt-too-long-suffix", lambda e: e.clf.scorer.score(_pairs(("今天", LONG_PROMPT, "second"))), UsageError,
         "max_length=64"),
    _api("prompt-too-long-huge", lambda e: e.clf.scorer.score(_pairs(("体" * 1_000_000, "今天", "first"))),
         UsageError, "is more than 61 tokens long"),
    _api("prompt-too-long-suffix-classify",
         lambda e: e.clf.classify("今天比赛", LABELS, template=LONG_PROMPT + "{label}", placement="suffix"), UsageError,
         "tokens long, but max_length=64"),
    # texts with no content
    _api("nul-text", lambda e: e.clf.score_pairs(["体育"], ["\x00"]), UsageError,
         r"pair 0: its second text '\x00' has no tokens"),
    _api("nul-text-many", lambda e: e.clf.score_pairs(["体育", "体育"], ["今天", "\x00" * 100]), UsageError,
         "pair 1: its second text '\\x00\\x00"),
    _api("zero-width-text", lambda e: e.clf.score_pairs(["体育"], ["\u200b\u200d\u2060"]), UsageError, "has no tokens"),
    _api("bom-text", lambda e: e.clf.score_pairs(["\ufeff"], ["今天"]), UsageError, "pair 0: its first text"),
    _api("control-text", lambda e: e.clf.score_pairs(["体育"], ["\x07\x1b\x7f\x9f"]), UsageError, "has no tokens"),
    _api("soft-hyphen-text", lambda e: e.clf.score_pairs(["体育"], ["\u00ad\u00ad"]), UsageError, "has no tokens"),
    _api("combining-marks-only-text", lambda e: e.clf.score_pairs(["体育"], ["\u0301\u0308"]), UsageError,
         "has no tokens"),
    _api("nul-text-huge", lambda e: e.clf.score_pairs(["体育"], ["\x00" * 3_000_000]), UsageError,
         r"'\x00\x00\x00"),
    # devices
    _api("device-meta", lambda e: NSPClassifier.from_pretrained(e.model(), device="meta"), UsageError,
         "device 'meta' is not supported"),
    _api("device-mps", lambda e: NSPClassifier.from_pretrained(e.model(), device="mps"), UsageError,
         "device 'mps' is not supported"),
    _api("device-xpu", lambda e: NSPClassifier.from_pretrained(e.model(), device="xpu:0"), UsageError,
         "is not supported"),
    _api("device-cuda-index", lambda e: NSPClassifier.from_pretrained(e.model(), device="cuda:99"), UsageError,
         "device 'cuda:99'"),
    _api("device-empty", lambda e: NSPClassifier.from_pretrained(e.model(), device=""), UsageError, "device ''"),
    # cache
    # task YAML
    # prompt-set YAML
]



@pytest.mark.parametrize("fn, exc, message", API_CASES + ISSUE11_API_CASES)
def test_api_bad_input(env, fn, exc, message):
    check_case(fn, env, exc, message)


# ---- the CLI battery ----------------------------------------------------------------------------
def _cli(id, argv, code, message, files=None, marks=()):
    return pytest.param(argv, files or {}, code, message, id="cli-" + id, marks=marks)


M = ["classify", "-m", "@model"]
C = M + ["-l", "体育,财经"]
E = ["eval", "-m", "@model", "-o", "@tmp/out"]
TNEWS_ROW = '{"label": 103, "label_desc": "news_sports", "sentence": "今天比赛", "id": 0}\n'

CLI_CASES = [
    # texts
    _cli("empty-text", C + [""], 2, "texts[0] is empty"),
    _cli("whitespace-text", C + ["今天比赛", "   "], 2, "texts[1] is empty"),
    _cli("lone-surrogate-text", C + ["好\udcff"], 2, "texts[0] is not valid Unicode"),
    _cli("no-texts", C, 2, "no texts: pass them as arguments, or use --input FILE"),
    _cli("texts-and-input", C + ["-i", "@tmp/in.txt", "今天比赛"], 2, "give texts as arguments or with --input, not both",
         files={"in.txt": "a\n"}),
    # labels
    _cli("labels-missing", M + ["今天比赛"], 2, "--labels is required"),
    _cli("labels-empty", M + ["-l", "", "今天比赛"], 2, "a label is an empty string"),
    _cli("labels-only-commas", M + ["-l", ",", "今天比赛"], 2, "a label is an empty string"),
    _cli("one-label", M + ["-l", "体育", "今天比赛"], 2, "only one label ('体育') given"),
    _cli("duplicate-labels", M + ["-l", "体育,财经,体育", "今天比赛"], 2, "label '体育' is given twice"),
    _cli("empty-label-between", M + ["-l", "体育,,财经", "今天比赛"], 2, "a label is an empty string"),
    _cli("lone-surrogate-label", M + ["-l", "体育\udcff,财经", "今天比赛"], 2, "is not valid Unicode"),
    # templates
    _cli("template-without-label", C + ["-t", "这是一则新闻", "今天比赛"], 2, "has no {label} placeholder"),
    _cli("template-attribute", C + ["-t", "{label.__class__}", "今天比赛"], 2, "{label.__class__} is not allowed"),
    _cli("template-index", C + ["-t", "{label[0]}", "今天比赛"], 2, "{label[0]} is not allowed"),
    _cli("template-positional", C + ["-t", "{0}", "今天比赛"], 2, "{0} is not allowed"),
    _cli("template-empty-braces", C + ["-t", "{}", "今天比赛"], 2, "placeholder {} is not allowed"),
    _cli("template-unbalanced-open", C + ["-t", "{label", "今天比赛"], 2, "unbalanced braces?"),
    _cli("template-unbalanced-close", C + ["-t", "label}", "今天比赛"], 2, "unbalanced braces?"),
    _cli("template-second-bad", C + ["-t", "{label}", "-t", "{label!s}", "今天比赛"], 2, "{label!s} is not allowed"),
    # options
    _cli("placement-typo", C + ["--placement", "prefx", "今天比赛"], 2, "placement must be 'prefix'"),
    _cli("threshold-above-1", C + ["--multi-label", "--threshold", "1.5", "今天比赛"], 2,
         "threshold must be a probability between 0 and 1, got 1.5"),
    _cli("threshold-negative", C + ["--multi-label", "--threshold", "-0.5", "今天比赛"], 2, "got -0.5"),
    _cli("threshold-not-a-number", C + ["--threshold", "half", "今天比赛"], 2, "Invalid value for '--threshold'"),
    _cli("format-typo", C + ["--format", "jsnol", "今天比赛"], 2, "--format must be one of jsonl, json, csv, table (stdout) or parquet (with --output FILE.parquet), got 'jsnol'"),
    _cli("dtype-float8", C + ["--dtype", "float8", "今天比赛"], 2, "dtype must be one of float32, bfloat16, float16, int8"),
    _cli("max-length-huge", C + ["--max-length", "100000", "今天比赛"], 2, "max_length must be an integer between 4 and 512"),
    _cli("max-length-not-int", C + ["--max-length", "abc", "今天比赛"], 2, "Invalid value for '--max-length'"),
    _cli("batch-size-zero", C + ["--batch-size", "0", "今天比赛"], 2, "batch_size must be a positive integer, got 0"),
    _cli("device-unknown", C + ["--device", "tpu", "今天比赛"], 2, "device 'tpu' is not a device name"),
    _cli("input-format-unknown", C + ["-i", "@tmp/in.txt", "--input-format", "xml"], 2, "input format must be one of",
         files={"in.txt": "a\n"}),
    _cli("unknown-option", C + ["--bogus", "今天比赛"], 2, "No such option: --bogus"),
    # prompt sets
    _cli("prompt-unknown", M + ["--prompt", "tnewz", "今天比赛"], 2, "unknown prompt set 'tnewz'; did you mean 'tnews'?"),
    _cli("prompt-variant-unknown", M + ["--prompt", "tnews:news", "今天比赛"], 2, "has no variant 'news'"),
    _cli("prompt-pair-set", M + ["--prompt", "ocnli", "今天比赛"], 2, "is a sentence-pair prompt; classification needs a label prompt"),
    _cli("prompt-label-not-in-set", M + ["--prompt", "tnews", "-l", "news_sports,sports", "今天比赛"], 2,
         "labels 'sports' not in prompt tnews"),
    # input files
    _cli("txt-not-utf8", C + ["-i", "@tmp/in.txt"], 1, "in.txt:2: not valid UTF-8 at byte offset 8",
         files={"in.txt": BAD_TXT}),
    _cli("jsonl-not-utf8", C + ["-i", "@tmp/in.jsonl"], 1, "in.jsonl:2: not valid UTF-8 at byte offset 25",
         files={"in.jsonl": BAD_JSONL}),
    _cli("csv-not-utf8", C + ["-i", "@tmp/in.csv"], 1, "in.csv:3: not valid UTF-8 at byte offset 15",
         files={"in.csv": BAD_CSV}),
    _cli("jsonl-malformed", C + ["-i", "@tmp/in.jsonl"], 1, "in.jsonl:3: malformed JSON",
         files={"in.jsonl": '{"text": "a"}\n{"text": "b"}\n{"text": "c"\n'}),
    _cli("jsonl-not-object", C + ["-i", "@tmp/in.jsonl"], 1, "in.jsonl:1: expected a JSON object, got str",
         files={"in.jsonl": '"just a string"\n'}),
    _cli("jsonl-missing-field", C + ["-i", "@tmp/in.jsonl"], 1, "in.jsonl:1: no field 'text' (fields: id, sentence)",
         files={"in.jsonl": '{"id": 1, "sentence": "a"}\n'}),
    _cli("jsonl-text-field-typo", C + ["-i", "@tmp/in.jsonl", "--text-field", "sentense"], 1,
         "no field 'sentense' (fields: id, sentence)", files={"in.jsonl": '{"id": 1, "sentence": "a"}\n'}),
    _cli("jsonl-empty-text", C + ["-i", "@tmp/in.jsonl"], 1, "in.jsonl:2: field 'text' is empty",
         files={"in.jsonl": '{"text": "a"}\n{"text": ""}\n'}),
    _cli("jsonl-lone-surrogate", C + ["-i", "@tmp/in.jsonl"], 1, "in.jsonl:1: field 'text' is not valid Unicode",
         files={"in.jsonl": '{"text": "a\\udc80"}\n'}),
    _cli("csv-no-text-column", C + ["-i", "@tmp/in.csv"], 1, "in.csv:1: CSV has no column 'text' (columns: id, body)",
         files={"in.csv": "id,body\n1,a\n"}),
    _cli("input-missing", C + ["-i", "@tmp/nope.txt"], 1, "does not exist"),
    _cli("input-is-directory", C + ["-i", "@tmp"], 1, "is a directory"),
    _cli("stdin-not-utf8", C + ["-i", "-"], 1, "<stdin>:2: not valid UTF-8 at byte offset 8", files={"<stdin>": BAD_TXT}),
    # models
    _cli("model-missing", ["classify", "-m", "@missing", "-l", "体育,财经", "今天比赛"], 1, "does not exist"),
    _cli("model-dir-without-config", ["classify", "-m", "@empty", "-l", "体育,财经", "今天比赛"], 1, "has no config.json"),
    _cli("model-not-bert", ["classify", "-m", "@gpt2", "-l", "体育,财经", "今天比赛"], 1,
         "is a 'gpt2' model, which has no next-sentence-prediction head"),
    _cli("model-without-nsp-head", ["classify", "-m", "@headless", "-l", "体育,财经", "今天比赛"], 1,
         "no trained weights for its next-sentence-prediction head"),
    _cli("model-without-vocab", ["classify", "-m", "@novocab", "-l", "体育,财经", "今天比赛"], 1, "vocab"),
    # outputs
    _cli("output-dir-missing", C + ["-o", "@tmp/no/such/dir/out.jsonl", "今天比赛"], 1, "no/such/dir"),
    _cli("output-is-directory", C + ["-o", "@tmp", "今天比赛"], 1, "Is a directory"),
    # eval
    _cli("eval-limit-zero", E + ["--data-dir", "@tmp", "--limit", "0"], 2,
         "--limit must be a positive number of examples, got 0"),
    _cli("eval-data-dir-missing", E + ["--data-dir", "@tmp/FewCLUE"], 2, "FewCLUE' is not a directory"),
    _cli("eval-task-unknown", E + ["--data-dir", "@tmp", "--tasks", "eprstmt,tnewz"], 2,
         "unknown task 'tnewz'; did you mean 'tnews'?"),
    _cli("eval-tasks-empty", E + ["--data-dir", "@tmp", "--tasks", ","], 2, "--tasks is empty"),
    _cli("eval-task-folder-missing", E + ["--data-dir", "@tmp/data", "--tasks", "tnews"], 1, "task tnews: no folder",
         files={"data/eprstmt/test_public.json": TNEWS_ROW}),
    _cli("eval-split-missing", E + ["--data-dir", "@tmp/data", "--tasks", "tnews"], 1,
         "task tnews: no split 'test_public'", files={"data/tnews/dev_few_all.json": TNEWS_ROW}),
    _cli("eval-split-typo", E + ["--data-dir", "@tmp/data", "--tasks", "tnews", "--split", "test_pubic"], 1,
         "no split 'test_pubic'", files={"data/tnews/test_public.json": TNEWS_ROW}),
    _cli("eval-split-malformed", E + ["--data-dir", "@tmp/data", "--tasks", "tnews"], 1,
         "test_public.json:2: malformed JSON", files={"data/tnews/test_public.json": TNEWS_ROW + "{oops\n"}),
    _cli("eval-split-missing-field", E + ["--data-dir", "@tmp/data", "--tasks", "tnews"], 1,
         "test_public.json:1: no field 'sentence'", files={"data/tnews/test_public.json": '{"label_desc": "news_sports"}\n'}),
    _cli("eval-prompt-malformed", E + ["--data-dir", "@tmp", "--tasks", "tnews", "--prompt", "tnews"], 2,
         "expected TASK=SET[:VARIANT]"),
    _cli("eval-prompt-unknown-set", E + ["--data-dir", "@tmp/data", "--tasks", "tnews", "--prompt", "tnews=tnewz"], 2,
         "unknown prompt set 'tnewz'", files={"data/tnews/test_public.json": TNEWS_ROW}),
]

ISSUE11_CLI_CASES = [
    _cli("device-meta", C + ["--device", "meta", "今天比赛"], 2, "device 'meta' is not supported"),
    _cli("device-mps", C + ["--device", "mps", "今天比赛"], 2, "device 'mps' is not supported"),
    _cli("nul-text", C + ["\x00\x00"], 2, "texts[0] is empty"),
    _cli("zero-width-text", C + ["今天", "\u200b\u200b"], 2, "texts[1] is empty"),
    _cli("prompt-too-long-suffix", C + ["--placement", "suffix", "--template", LONG_PROMPT + "{label}", "--max-length",
                                        "32", "今天比赛"], 2, "tokens long, but max_length=32 leaves room for 21"),
    _cli("prompt-file-python-tag", M + ["--prompt", "@tmp/p.yaml", "今天比赛"], 2, "p.yaml:1: invalid YAML",
         files={"p.yaml": "name: !!python/object/apply:os.system ['true']\n"}),
    _cli("prompt-file-not-utf8", M + ["--prompt", "@tmp/p.yaml", "今天比赛"], 2, "p.yaml:1: not UTF-8",
         files={"p.yaml": b"name: " + GBK + b"\n"}),
    _cli("eval-task-name-traversal", E + ["--data-dir", "@tmp", "--tasks", "@tmp/t.yaml"], 2,
         "t.yaml:4: field 'name' must be a name", files={"t.yaml": _task_line("name", "../../x")}),
    _cli("eval-task-soft-positions-string", E + ["--data-dir", "@tmp", "--tasks", "@tmp/t.yaml"], 2,
         "field 'soft_positions' must be true or false", files={"t.yaml": _task_line("soft_positions", "'no'")}),
    _cli("eval-task-yaml-syntax", E + ["--data-dir", "@tmp", "--tasks", "@tmp/t.yaml"], 2, "invalid YAML",
         files={"t.yaml": "name: [x\n"}),
    _cli("control-text", C + ["\x07\x1b"], 2, "texts[0] is empty"),
    _cli("eval-task-metric-unknown", E + ["--data-dir", "@tmp", "--tasks", "@tmp/t.yaml"], 2,
         "field 'metric' must be one of accuracy, macro_f1", files={"t.yaml": _task_line("metric", "f1")}),
    _cli("eval-task-not-utf8", E + ["--data-dir", "@tmp", "--tasks", "@tmp/t.yaml"], 2, "t.yaml:5: not UTF-8",
         files={"t.yaml": TASK_OK.encode() + b"description: " + GBK + b"\n"}),
    _cli("eval-task-duplicate-names", E + ["--data-dir", "@tmp", "--tasks", "tnews,@tmp/t.yaml"], 2,
         "two tasks are named 'tnews'", files={"t.yaml": _task_line("name", "tnews")}),
]

MODEL_PLACEHOLDERS = ("@model", "@headless", "@gpt2", "@missing", "@empty", "@novocab")


def _expand(arg: str, env: Env) -> str:
    for ph in MODEL_PLACEHOLDERS:
        if arg == ph:
            return env.model(ph[1:])
    return arg.replace("@tmp", str(env.tmp))


@pytest.mark.parametrize("argv, files, code, message", CLI_CASES + ISSUE11_CLI_CASES)
def test_cli_bad_input(env, capsys, monkeypatch, argv, files, code, message):
    import io

    for name, content in files.items():
        if name == "<stdin>":
            data = content if isinstance(content, bytes) else content.encode("utf-8")
            monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data), encoding="utf-8"))
        else:
            env.file(name, content)
    args = [_expand(a, env) for a in argv]
    got, _, err = run(args, capsys)
    assert_one_line_error(err, code, got, message)


# ---- bad-looking input that must work ----------------------------------------------------------
def test_one_label_with_multi_label_is_allowed(clf, model_dir, capsys):
    r = clf.classify("今天比赛", ["体育"], multi_label=True, threshold=0.0)
    assert r.label == ["体育"] and list(r.scores) == ["体育"]
    code, out, err = run(["classify", "-m", model_dir, "-l", "体育", "--multi-label", "--threshold", "0", "今天比赛"],
                         capsys)
    assert code == 0, err
    assert json.loads(out)["label"] == ["体育"]



def _warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "nspzero" and r.levelno == logging.WARNING]


def test_texts_far_beyond_max_length_succeed_with_one_warning_per_call(clf, nspzero_caplog):
    texts = [LONG_TEXT, "今天比赛", LONG_TEXT[::-1], LONG_TEXT + "好"]
    for call in range(2):
        nspzero_caplog.clear()
        results = clf.classify(texts, LABELS, template="这是一则{label}新闻")
        assert [r.text for r in results] == texts
        assert all(0.0 <= s <= 1.0 for r in results for s in r.scores.values())
        messages = _warnings(nspzero_caplog)
        assert len(messages) == 1, messages
        assert "6 of 8 pairs were longer than max_length=64 tokens and were truncated" in messages[0]


def test_score_pairs_beyond_max_length_one_warning(clf, nspzero_caplog):
    scores = clf.score_pairs(["这是一则体育新闻"] * 3, [LONG_TEXT, LONG_TEXT + "好", "今天比赛"])
    assert scores.shape == (3,)
    messages = _warnings(nspzero_caplog)
    assert len(messages) == 1 and "2 of 3 pairs were longer than max_length=64" in messages[0], messages


def test_no_warning_without_truncation(clf, nspzero_caplog):
    clf.classify(["今天比赛", "市场上涨"], LABELS)
    assert _warnings(nspzero_caplog) == []


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

"""The benchmark runs at small sizes, and every precision path agrees with fp32 where scores are decisive."""
import json
import logging
import os
import shutil

import pytest

from nspzero import NSPClassifier

TEXTS = ["今天比赛球队赢了", "市场上涨公司发布手机", "这次买的东西很差", "老师学生上学校", "电脑游戏玩家"]
LABELS = ["体育", "财经", "科技", "教育", "军事", "旅游"]


@pytest.mark.parametrize("dtype", ["bfloat16", "int8"])
def test_reduced_precision_paths_give_the_fp32_argmax(decisive_model_dir, dtype):
    ref = NSPClassifier.from_pretrained(decisive_model_dir).classify(TEXTS, LABELS, template="这是一则{label}新闻")
    got = NSPClassifier.from_pretrained(decisive_model_dir, dtype=dtype).classify(TEXTS, LABELS,
                                                                                  template="这是一则{label}新闻")
    margins = [sorted(r.scores.values())[-1] - sorted(r.scores.values())[-2] for r in ref]
    assert min(margins) > 0.01  # the fixture really is decisive (margins of 0.015 and more)
    diff = max(abs(a.scores[k] - b.scores[k]) for a, b in zip(ref, got) for k in LABELS)
    assert diff < 0.05
    # the argmax can only move where fp32's own margin is within the precision's error
    for r, g, margin in zip(ref, got, margins):
        assert g.label == r.label or margin < 2 * diff, (r.scores, g.scores)
    assert sum(g.label == r.label for r, g in zip(ref, got)) >= len(TEXTS) - 1


def test_benchmark_runs_at_small_size(tmp_path, capsys):
    from nspzero.cli import main

    config = tmp_path / "config.json"
    config.write_text(json.dumps({"vocab_size": 200, "hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2,
                                  "intermediate_size": 64, "max_position_embeddings": 512}))
    out = tmp_path / "bench.json"
    cache = os.environ["NSPZERO_CACHE_DIR"]
    before = set(os.listdir(os.path.join(cache, "onnx"))) if os.path.isdir(os.path.join(cache, "onnx")) else set()
    try:
        main(["bench", "--config", str(config), "--pairs", "12", "--rounds", "1", "--dtypes", "int8",
              "--json", str(out)])
    except SystemExit as exc:
        assert not exc.code, capsys.readouterr().err
    captured = capsys.readouterr()
    table = captured.out
    # the random model's int8 export went with its temp folder, not into the user cache
    after = set(os.listdir(os.path.join(cache, "onnx"))) if os.path.isdir(os.path.join(cache, "onnx")) else set()
    assert after == before
    warnings = [line for line in captured.err.splitlines() if line.startswith("nspzero: warning:")]
    assert len(warnings) == len(set(warnings)), captured.err  # each warning once, however many loads
    assert "Token indices" not in captured.err and "nspzero bench`" not in captured.err
    summary = json.loads(out.read_text())
    paths = [row["path"] for row in summary["paths"]]
    assert paths == ["nspzero fp32", "nspzero fp32 torch kernels", "nspzero fp32 oneDNN", "nspzero fp32 pad tokens kept",
                     "nspzero int8", "nspzero int8 torch kernels", "pad-to-max fp32", "transformers NLI pipeline bs=1",
                     "transformers NLI pipeline bs=32"]
    rows = {row["path"]: row["tasks"]["tnews"] for row in summary["paths"]}
    assert all(rows[f"nspzero fp32 {p}"]["max_abs_dp"] < 1e-5 for p in ("oneDNN", "torch kernels", "pad tokens kept"))
    assert "max_abs_dp" not in rows["transformers NLI pipeline bs=1"]  # its scores come from another head
    assert all(row["spread"] == 0 for row in rows.values())  # one round: no spread
    assert summary["peak_kernel"]["float32"] in ("torch.mm", "oneDNN") and summary["default_engine"]
    # the default's backend trial ran out before the timed rounds (they time the settled path only)
    assert summary["default_engine"].startswith(("torch default kernels", "oneDNN prepacked")), summary["default_engine"]
    int8 = rows["nspzero int8"]
    assert 0 <= int8["max_abs_dp"] < 1 and 0 <= int8["top1_agreement"] <= 1
    assert summary["peak_gflops"]["float32"] > 0 and summary["mean_tokens_per_pair"]["tnews"] > 3
    assert "| nspzero fp32 |" in table and "±0%" in table and "nspzero fp32 (the default) ran:" in table


def test_spread_over_rounds_warns_above_ten_percent():
    from nspzero.bench import spread_warnings

    def summary(*spreads):
        return {"paths": [{"path": f"p{i}", "tasks": {"tnews": {"spread": s}, "iflytek": {"spread": 0.0}}}
                          for i, s in enumerate(spreads)]}
    assert spread_warnings(summary(0.0, 0.09, 0.10)) == []
    lines = spread_warnings(summary(0.05, 0.53))
    assert len(lines) == 1 and lines[0].startswith("warning: p1: rounds disagree by 53%") and "--rounds" in lines[0]


def test_bench_peers_score_the_same_pairs(tmp_path, capsys):
    """CTranslate2 and ONNX Runtime beside nspzero, each with its max |ΔP| against nspzero fp32."""
    pytest.importorskip("ctranslate2")
    pytest.importorskip("onnxruntime")
    from nspzero.bench import run_benchmark

    config = tmp_path / "config.json"
    config.write_text(json.dumps({"vocab_size": 200, "hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2,
                                  "intermediate_size": 64, "max_position_embeddings": 512}))
    summary = run_benchmark(config_path=str(config), tasks=["tnews"], pairs_per_task=12, rounds=1, dtypes=(),
                            include_pipeline=False, peers=True, log=lambda m: None)
    rows = {row["path"]: row["tasks"]["tnews"] for row in summary["paths"]}
    for name in ("CTranslate2 float32", "ONNX Runtime fp32"):
        assert rows[name]["max_abs_dp"] < 1e-5 and rows[name]["pairs_per_s"] > 0
    for name in ("CTranslate2 int8_float32", "ONNX Runtime int8"):
        assert 0 < rows[name]["max_abs_dp"] < 1e-2


def test_bfloat16_keeps_only_linear_weights_in_bf16(decisive_model_dir):
    """LayerNorm and embeddings stay fp32 (autocast runs them in fp32; that keeps |ΔP| small)."""
    import torch

    model = NSPClassifier.from_pretrained(decisive_model_dir, dtype="bfloat16").scorer.model
    dtypes = {name: p.dtype for name, p in model.named_parameters()}
    assert all(d == torch.bfloat16 for n, d in dtypes.items() if n.endswith(("dense.weight", "query.weight")))
    assert all(d == torch.float32 for n, d in dtypes.items() if "LayerNorm" in n or "embeddings" in n)


def test_compiled_scorer_equals_eager_across_batch_sizes(model_dir):
    """torch.compile (dynamic shapes, frozen weights) scores like the eager model, whatever the batch."""
    import numpy as np

    from nspzero.errors import UsageError
    from nspzero.scorer import NSPScorer, Pair

    pairs = [Pair(f"这是一则{label}新闻", text) for text in TEXTS for label in LABELS]
    eager = NSPScorer.from_pretrained(model_dir, device="cpu", max_length=64).score(pairs)
    compiled = NSPScorer.from_pretrained(model_dir, device="cpu", max_length=64, compile=True)
    for batch_size in (5, 32):  # one compiled model (dynamic shapes) across batch sizes: compiled once
        compiled.batch_size = batch_size
        got = compiled.score(pairs)
        if shutil.which("g++") or shutil.which("c++"):  # inductor's CPU backend compiles C++
            assert compiled.compile, "compilation fell back to eager"
        assert np.abs(got - eager).max() <= 1e-5
    with pytest.raises(UsageError, match="compile works with dtype float32 or bfloat16"):
        NSPScorer.from_pretrained(model_dir, device="cpu", dtype="int8", compile=True)


@pytest.mark.parametrize("message, shown", [
    ("InvalidCxxCompiler: No working C++ compiler found\n(long details)", "InvalidCxxCompiler: No working C++ compiler found"),
    ("", "TorchDynamoException"),
])
def test_failed_compilation_falls_back_to_eager_with_one_warning(model_dir, monkeypatch, caplog, message, shown):
    import numpy as np
    import torch
    import torch._dynamo

    from nspzero.scorer import NSPScorer, Pair

    def broken_compile(model, **kwargs):
        def run(**batch):
            raise torch._dynamo.exc.TorchDynamoException(message)
        return run

    pairs = [Pair(f"这是一则{label}新闻", text) for text in TEXTS for label in LABELS]
    eager = NSPScorer.from_pretrained(model_dir, device="cpu", max_length=64, batch_size=4).score(pairs)
    monkeypatch.setattr(torch, "compile", broken_compile)
    scorer = NSPScorer.from_pretrained(model_dir, device="cpu", max_length=64, batch_size=4, compile=True)
    with caplog.at_level(logging.WARNING, logger="nspzero"):
        got = scorer.score(pairs)
    assert np.abs(got - eager).max() <= 1e-6 and not scorer.compile
    warnings = [r.getMessage() for r in caplog.records if "torch.compile failed" in r.getMessage()]
    assert warnings == [f"torch.compile failed ({shown}); scoring without it"]


def test_errors_that_are_not_compilation_errors_propagate(model_dir, monkeypatch):
    import torch

    from nspzero.scorer import NSPScorer, Pair

    def compiled_but_failing(model, **kwargs):
        def run(**batch):
            raise RuntimeError("a genuine failure while running the model")
        return run

    monkeypatch.setattr(torch, "compile", compiled_but_failing)
    scorer = NSPScorer.from_pretrained(model_dir, device="cpu", max_length=64, compile=True)
    with pytest.raises(RuntimeError, match="genuine failure"):
        scorer.score([Pair("体育", "今天比赛")])
    assert scorer.compile  # not mistaken for a compilation failure


class _Slow:
    """Wraps a model so each call takes `delay` seconds more (a stand-in for a slower path)."""

    def __init__(self, model, delay):
        self.model, self.delay = model, delay

    def __call__(self, **batch):
        import time

        time.sleep(self.delay)
        return self.model(**batch)


@pytest.mark.parametrize("slower", ["compiled", "eager"])
def test_auto_compile_keeps_the_faster_path(model_dir, monkeypatch, nspzero_caplog, slower):
    """compile="auto" stays eager for short jobs; once forward passes have taken AUTO_COMPILE_AFTER_S
    seconds (here 0) it compiles, times the same batches both ways and keeps the faster, saying which
    in one line (torch.compile is replaced by a recorder; one side is slowed down on purpose)."""
    import numpy as np
    import torch

    import nspzero.scorer as scorer_module
    from nspzero.scorer import AUTO_TRIAL_BATCHES, NSPScorer, Pair

    compiled = []
    fast = {}

    def recording_compile(model, **kwargs):  # "compiles" to the plain model: slowed, or the fast original
        compiled.append(kwargs)
        return _Slow(model, 0.05) if slower == "compiled" else fast["model"]

    monkeypatch.setattr(torch, "compile", recording_compile)
    pairs = [Pair(f"这是一则{label}新闻", text) for text in TEXTS for label in LABELS]
    eager = NSPScorer.from_pretrained(model_dir, device="cpu", max_length=64, batch_size=1).score(pairs)
    short = NSPScorer.from_pretrained(model_dir, device="cpu", max_length=64, compile="auto")
    short.score(pairs)
    assert short.compile == "auto" and not compiled and short.forward_seconds > 0
    monkeypatch.setattr(scorer_module, "AUTO_COMPILE_AFTER_S", 0.0)
    long = NSPScorer.from_pretrained(model_dir, device="cpu", max_length=64, batch_size=1, compile="auto")
    if slower == "eager":
        fast["model"] = long.model
        long.model = _Slow(long.model, 0.05)
        long.unpad = False  # the wrapper is the model now: run it, not the unpadded forward of what it wraps
    assert len(pairs) > AUTO_TRIAL_BATCHES + 1  # enough batches for the trial and beyond
    got = long.score(pairs)
    assert compiled == [{"dynamic": True}]
    assert long.compile is (slower == "eager")  # the faster path is kept
    kept = "compiled" if slower == "eager" else "eager"
    lines = [m for m in (r.getMessage() for r in nspzero_caplog.records) if m.startswith("torch.compile:")]
    assert len(lines) == 1 and lines[0].endswith(f"keeping the {kept} model"), lines
    assert np.abs(got - eager).max() <= 1e-6
    assert NSPScorer.from_pretrained(model_dir, device="cpu", dtype="int8", compile="auto").compile is False


@pytest.mark.parametrize("command", ["classify", "eval"])
def test_cli_compile_choice_is_checked_before_loading(command, capsys, tmp_path):
    from conftest import run_cli

    args = ["classify", "--model", "no/such-model", "--labels", "a,b", "x"] if command == "classify" else \
        ["eval", "--model", "no/such-model", "--data-dir", str(tmp_path), "--tasks", "eprstmt"]
    code, _, err = run_cli(args + ["--compile", "maybe"], capsys)
    assert code == 2 and "--compile must be one of auto, on, off, got 'maybe'" in err


@pytest.mark.parametrize("args, message", [
    (["--config", "{tmp}/missing.json"], "--config"),
    (["--config", "{tmp}/bad.json"], "is not a JSON BERT config"),
    (["--vocab", "{tmp}/missing.txt"], "--vocab"),
    (["--data-dir", "{tmp}/nowhere"], "is not a folder"),
])
def test_bench_refuses_bad_inputs_in_one_line(tmp_path, capsys, args, message):
    from conftest import run_cli

    (tmp_path / "bad.json").write_text("{not json", encoding="utf-8")
    code, _, err = run_cli(["bench"] + [a.replace("{tmp}", str(tmp_path)) for a in args], capsys)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err


def test_outlier_features_are_large_in_every_encoder_layer_norm():
    import torch
    from transformers import BertConfig, BertForPreTraining

    from nspzero.bench import OUTLIER_SCALE, add_outlier_features

    torch.manual_seed(0)
    model = BertForPreTraining(BertConfig(vocab_size=50, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                                          intermediate_size=64)).eval()
    dims = add_outlier_features(model, 2)
    assert len(set(dims)) == 2
    with torch.no_grad():
        hidden = model.bert(input_ids=torch.tensor([[2, 7, 9, 11, 3]])).last_hidden_state[0].abs()
    others = [d for d in range(32) if d not in dims]
    assert hidden[:, dims].mean() > OUTLIER_SCALE / 2 * hidden[:, others].mean()
    assert torch.equal(model.bert.embeddings.LayerNorm.weight, torch.ones(32))  # embeddings untouched


def test_each_warning_is_shown_once_during_the_bench_without_the_advice_to_run_it():
    import logging

    from nspzero.bench import each_warning_once
    from nspzero.scorer import BENCH_ADVICE

    shown: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: shown.append(record.getMessage())
    logger = logging.getLogger("nspzero")
    logger.addHandler(handler)
    try:
        with each_warning_once():
            for _ in range(10):
                logger.warning("%s is a tiny model with RANDOM weights", "m")
                logger.warning("bfloat16 is slower here%s", BENCH_ADVICE)
        logger.warning("%s is a tiny model with RANDOM weights", "m")  # after the bench: shown again
    finally:
        logger.removeHandler(handler)
    assert shown == ["m is a tiny model with RANDOM weights", "bfloat16 is slower here",
                     "m is a tiny model with RANDOM weights"]

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from fewclue_fixture import FEWCLUE, write_fewclue
from nspzero.harness import EvalSettings, evaluate
from nspzero.scorer import NSPScorer

FIXTURE_TASKS = ["eprstmt", "tnews", "ocnli", "csl", "chid", "cluewsc"]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return str(write_fewclue(tmp_path_factory.mktemp("fewclue"), n=9))


@pytest.fixture(scope="module")
def scorer(model_dir):
    return NSPScorer.from_pretrained(model_dir, device="cpu", max_length=128, batch_size=8)


def read_jsonl(path):
    return [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines()]


def test_harness_writes_every_output_and_accuracy_matches_predictions(scorer, data_dir, tmp_path):
    results = evaluate(scorer, EvalSettings(data_dir, FIXTURE_TASKS), tmp_path)
    on_disk = json.loads((tmp_path / "results.json").read_text(encoding="utf-8"))
    assert on_disk["tasks"].keys() == set(FIXTURE_TASKS) and on_disk["model"] == scorer.name
    assert len(on_disk["config_hash"]) == 12 and "transformers" in on_disk["versions"]
    for name in FIXTURE_TASKS:
        rows = read_jsonl(tmp_path / f"{name}.predictions.jsonl")
        entry = results["tasks"][name]
        assert [r["index"] for r in rows] == list(range(9))
        assert entry["accuracy"] == pytest.approx(np.mean([r["gold"] == r["prediction"] for r in rows]))
        assert entry["examples"] == 9 and entry["seconds"] >= 0
        if entry["type"] in ("pair", "coref"):
            assert entry["thresholds"] == sorted(entry["thresholds"])
            assert len(entry["thresholds"]) == len(entry["label_order"]) - 1
            assert all(isinstance(r["score"], float) for r in rows)
        else:
            assert all(r["prediction"] == max(r["scores"], key=r["scores"].get) for r in rows)
    md = (tmp_path / "results.md").read_text(encoding="utf-8")
    assert scorer.name in md and "NSP-BERT (paper)" in md and "| 86.9 |" in md


def test_harness_scores_equal_the_classifier_api(scorer, data_dir, tmp_path):
    from nspzero import NSPClassifier

    results = evaluate(scorer, EvalSettings(data_dir, ["eprstmt"]), tmp_path)
    assert results["settings"]["path"] == scorer.engine  # which kernels scored, said in results.json
    rows = read_jsonl(tmp_path / "eprstmt.predictions.jsonl")
    texts = [json.loads(l)["sentence"] for l in Path(data_dir, "eprstmt", "test_public.json").read_text("utf-8").splitlines()]
    api = NSPClassifier(scorer).classify(texts, {"Negative": "很差", "Positive": "很好"}, template="这次买的东西{label}")
    for row, res in zip(rows, api):
        assert row["scores"] == pytest.approx(res.scores, abs=1e-9)


def test_limit_with_head_keeps_the_first_n_examples(scorer, data_dir, tmp_path):
    results = evaluate(scorer, EvalSettings(data_dir, ["ocnli"], limit=4, head=True), tmp_path)
    entry = results["tasks"]["ocnli"]
    assert entry["examples"] == 4 and entry["dev_examples"] == 4
    assert entry["sample"]["test"]["method"] == "head" and entry["sample"]["dev"]["method"] == "head"
    assert [r["index"] for r in read_jsonl(tmp_path / "ocnli.predictions.jsonl")] == [0, 1, 2, 3]


def test_limit_alone_takes_a_stratified_sample_not_the_first_n(scorer, data_dir, tmp_path):
    """ocnli's 9 rows cycle contradiction/neutral/entailment: 4 of them keep every label, and the
    same sample comes back on a second run."""
    first = evaluate(scorer, EvalSettings(data_dir, ["ocnli"], limit=4), tmp_path / "a")["tasks"]["ocnli"]
    again = evaluate(scorer, EvalSettings(data_dir, ["ocnli"], limit=4), tmp_path / "b")["tasks"]["ocnli"]
    sample = first["sample"]["test"]
    assert sample["method"] == "stratified" and sample["n"] == 4 and sample["indexes"] != [0, 1, 2, 3]
    assert set(sample["per_label"]) == {"contradiction", "neutral", "entailment"}
    assert again["sample"] == first["sample"]


class Interrupting:
    """Wraps a scorer's forward to raise KeyboardInterrupt after `after` batches (a killed run)."""

    def __init__(self, scorer, after):
        self.scorer, self.after, self.calls = scorer, after, 0
        self.original = scorer.forward

    def __call__(self, batch):
        self.calls += 1
        if self.calls > self.after:
            raise KeyboardInterrupt
        return self.original(batch)


def test_interrupted_run_resumes_without_rescoring(model_dir, data_dir, tmp_path):
    settings = EvalSettings(data_dir, ["tnews", "chid"])
    full = evaluate(NSPScorer.from_pretrained(model_dir, batch_size=8), settings, tmp_path / "clean")
    total = sum(t["pairs_scored"] for t in full["tasks"].values())

    scorer = NSPScorer.from_pretrained(model_dir, batch_size=8)
    scorer.forward = Interrupting(scorer, after=3)
    with pytest.raises(KeyboardInterrupt):
        evaluate(scorer, settings, tmp_path / "resumed")
    cache = next((tmp_path / "resumed" / "cache").glob("scores-*.jsonl"))
    assert len(cache.read_text().splitlines()) == 3 * 8  # three finished batches were kept

    from nspzero.cache import pair_key

    kept = {json.loads(line)[0] for line in cache.read_text().splitlines()}
    scorer = NSPScorer.from_pretrained(model_dir, batch_size=8)
    asked, original = [], scorer.score
    scorer.score = lambda pairs, **kw: (asked.extend(pairs), original(pairs, **kw))[1]
    resumed = evaluate(scorer, settings, tmp_path / "resumed")
    assert resumed["cache"]["pairs_before"] == 24
    assert sum(t["pairs_scored"] for t in resumed["tasks"].values()) == total - 24
    # only the missing pairs reach the scorer, each once: none of the 24 kept ones is scored again
    assert len(asked) == len(set(asked)) == total - 24 and not kept & {pair_key(p) for p in asked}
    for name in ("tnews", "chid"):
        assert read_jsonl(tmp_path / "clean" / f"{name}.predictions.jsonl") == \
            read_jsonl(tmp_path / "resumed" / f"{name}.predictions.jsonl")
    again = evaluate(NSPScorer.from_pretrained(model_dir, batch_size=8), settings, tmp_path / "resumed")
    assert sum(t["pairs_scored"] for t in again["tasks"].values()) == 0


def test_a_line_cut_short_in_the_cache_is_ignored(model_dir, data_dir, tmp_path):
    settings = EvalSettings(data_dir, ["eprstmt"])
    first = evaluate(NSPScorer.from_pretrained(model_dir), settings, tmp_path)
    cache = next((tmp_path / "cache").glob("scores-*.jsonl"))
    lines = cache.read_text().splitlines()
    cache.write_text("\n".join(lines[:-1]) + "\n" + lines[-1][:10])  # a crash mid-line
    second = evaluate(NSPScorer.from_pretrained(model_dir), settings, tmp_path)
    assert second["tasks"]["eprstmt"]["pairs_scored"] == 1
    assert second["tasks"]["eprstmt"]["accuracy"] == first["tasks"]["eprstmt"]["accuracy"]


def test_cli_eval_all_nine_tasks_on_real_fewclue_rows(model_dir, tmp_path, capsys):
    from nspzero.cli import main

    try:
        main(["eval", "--model", model_dir, "--data-dir", str(FEWCLUE), "--tasks", "all", "--limit", "8",
              "--output-dir", str(tmp_path)])
    except SystemExit as exc:
        assert not exc.code, capsys.readouterr().err
    results = json.loads((tmp_path / "results.json").read_text(encoding="utf-8"))
    assert len(results["tasks"]) == 9 and results["fewclue_score"] is not None
    for name, entry in results["tasks"].items():
        rows = read_jsonl(tmp_path / f"{name}.predictions.jsonl")
        assert len(rows) == 8 and entry["accuracy"] == pytest.approx(np.mean([r["gold"] == r["prediction"] for r in rows]))
    assert len(read_jsonl(tmp_path / "iflytek.predictions.jsonl")[0]["scores"]) == 119
    assert len(read_jsonl(tmp_path / "csldcp.predictions.jsonl")[0]["scores"]) == 67
    assert "NSP-BERT (paper)" in capsys.readouterr().out


def test_compare_prompts_and_calibration_rows_score_each_pair_once(model_dir, tmp_path):
    from fewclue_fixture import write_fewclue

    data = write_fewclue(tmp_path / "data", n=6)
    scorer = NSPScorer.from_pretrained(model_dir, max_length=64)
    calls = []
    original = scorer.score
    scorer.score = lambda pairs, **kw: (calls.extend(pairs), original(pairs, **kw))[1]
    results = evaluate(scorer, EvalSettings(str(data), ["tnews"], compare_prompts=True,
                                            calibration=["content-free", "prior"]), tmp_path / "out")
    assert len(calls) == len(set(calls))  # every distinct pair scored once across variants and ensembles
    entry = results["tasks"]["tnews"]
    assert entry["variants"]["news-2022"]["accuracy"] == entry["accuracy"]
    assert set(entry["variants"]) >= {"label-2022", "ensemble-mean", "ensemble-logmean"}
    assert set(entry["calibrated"]) == {"content-free", "prior"}
    md = (tmp_path / "out" / "results.md").read_text(encoding="utf-8")
    assert "content-free calibration" in md and "ensemble-logmean" in md and "news-2022 (default)" in md


def test_pair_counts_include_variant_and_calibration_rows(model_dir, tmp_path):
    """`pairs` counts every distinct pair a task needed, so `pairs_scored` never exceeds it."""
    from fewclue_fixture import write_fewclue

    from nspzero.harness import EvalSettings, evaluate
    from nspzero.scorer import NSPScorer

    data = write_fewclue(tmp_path / "fewclue", n=4)
    scorer = NSPScorer.from_pretrained(model_dir, device="cpu", max_length=64)
    plain = evaluate(scorer, EvalSettings(str(data), ["eprstmt"]), tmp_path / "plain")["tasks"]["eprstmt"]
    assert plain["pairs"] == plain["pairs_scored"] == 4 * 2
    more = evaluate(scorer, EvalSettings(str(data), ["eprstmt"], compare_prompts=True, calibration=["content-free"]),
                    tmp_path / "more")["tasks"]["eprstmt"]
    assert more["pairs"] == more["pairs_scored"] > plain["pairs"]
    again = evaluate(scorer, EvalSettings(str(data), ["eprstmt"], compare_prompts=True, calibration=["content-free"]),
                     tmp_path / "more")["tasks"]["eprstmt"]
    assert again["pairs"] == more["pairs"] and again["pairs_scored"] == 0


def test_a_run_killed_between_the_two_renames_gets_its_results_back(scorer, data_dir, tmp_path):
    """Without renameat2 the old folder is moved aside first: the next run puts it back, not an empty one."""
    import subprocess
    import sys

    out = tmp_path / "out"
    evaluate(scorer, EvalSettings(data_dir, ["eprstmt"]), out)
    before = (out / "results.json").read_bytes()
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    aside = tmp_path / f".out.previous-{child.pid}-dead"
    os.rename(out, aside)
    with pytest.raises(Exception):
        evaluate(scorer, EvalSettings(data_dir, ["no-such-task"]), out)
    assert (out / "results.json").read_bytes() == before and not aside.exists()


def test_a_failed_report_is_a_warning_and_the_results_are_kept(scorer, data_dir, tmp_path, monkeypatch, caplog):
    out = tmp_path / "out"
    evaluate(scorer, EvalSettings(data_dir, ["eprstmt"], report=True), out)
    assert (out / "report.html").exists()

    def fails(*args, **kwargs):
        raise ValueError("a template went wrong\nsecond line")

    import nspzero.reports.html

    monkeypatch.setattr(nspzero.reports.html, "render_diagnostics", fails)
    results = evaluate(scorer, EvalSettings(data_dir, ["eprstmt", "tnews"], report=True), out)
    assert json.loads((out / "results.json").read_text(encoding="utf-8"))["tasks"].keys() == results["tasks"].keys()
    assert (out / "tnews.predictions.jsonl").exists() and not (out / "report.html").exists()  # no stale report
    assert [r.getMessage() for r in caplog.records if r.levelname == "WARNING"] == [
        "could not write report.html (a template went wrong); the results are written, retry with `nspzero report`"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


@pytest.mark.parametrize("fault", ["results.md", "predictions"])
def test_a_fault_while_writing_the_outputs_leaves_the_previous_run_whole(scorer, data_dir, tmp_path, monkeypatch,
                                                                         fault):
    """eval's files are one unit: predictions, results.json, results.md and the report change together."""
    out = tmp_path / "out"
    evaluate(scorer, EvalSettings(data_dir, ["eprstmt"], report=True), out)
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    assert {"eprstmt.predictions.jsonl", "results.json", "results.md", "report.html"} <= before.keys()

    def fails(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(*(("nspzero.harness.atomic_write_jsonl", fails) if fault == "predictions" else
                          ("nspzero.harness.results_markdown", fails)))
    with pytest.raises(Exception, match="No space left on device"):
        evaluate(scorer, EvalSettings(data_dir, ["eprstmt", "tnews"], report=True), out)
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_eval_refuses_an_output_folder_holding_its_data(scorer, data_dir):
    from nspzero.errors import UsageError

    with pytest.raises(UsageError, match="is or holds the input"):
        evaluate(scorer, EvalSettings(data_dir, ["eprstmt"]), data_dir)


def test_cli_eval_names_the_report_only_when_it_was_written(model_dir, data_dir, tmp_path, capsys, monkeypatch):
    import nspzero.reports.html
    from conftest import run_cli

    args = ["eval", "--model", model_dir, "--data-dir", data_dir, "--tasks", "eprstmt", "--limit", "4",
            "--output-dir", str(tmp_path), "--report"]
    code, _, err = run_cli(args, capsys)
    assert code == 0 and f"report: {tmp_path / 'report.html'}" in err, err

    def fails(*a, **k):
        raise ValueError("broken template")

    monkeypatch.setattr(nspzero.reports.html, "render_diagnostics", fails)
    code, _, err = run_cli(args, capsys)
    assert code == 0 and "report:" not in err and "could not write report.html (broken template)" in err, err
    assert (tmp_path / "results.json").exists() and not (tmp_path / "report.html").exists()


def test_the_harness_scores_through_the_pipelines_chunker(scorer, data_dir, tmp_path):
    """score_examples runs the pipeline's forward stage in chunks: every scoring call holds at most
    one chunk of whole examples, and the scores are those of one unchunked call."""
    from nspzero.cache import ScoreCache
    from nspzero.harness import CachedScoring, score_examples
    from nspzero.tasks.registry import load_task

    class Recording:
        max_length = scorer.max_length

        def __init__(self):
            self.sizes = []

        def score(self, pairs, **kw):
            self.sizes.append(len(pairs))
            return scorer.score(pairs, **kw)

    task = load_task("tnews")
    examples = task.read(data_dir, "test_public")
    per_example = len(task.example_pairs(examples[0]))
    whole, chunked = Recording(), Recording()
    one_call = score_examples(task, examples, CachedScoring(whole, ScoreCache(tmp_path / "a.jsonl")), "t")
    in_chunks = score_examples(task, examples, CachedScoring(chunked, ScoreCache(tmp_path / "b.jsonl")), "t",
                               chunk_pairs=2 * per_example)
    assert whole.sizes == [len(examples) * per_example]
    assert len(chunked.sizes) == 5 and max(chunked.sizes) <= 2 * per_example and sum(chunked.sizes) == whole.sizes[0]
    for a, b in zip(one_call, in_chunks):
        assert b == pytest.approx(a, abs=1e-6)


def test_plots_and_report_come_from_one_diagnostics_computed_from_memory(scorer, data_dir, tmp_path, monkeypatch):
    """eval --plots --report computes each task's diagnostics once (not again from the written files),
    and the page is the one `nspzero report` draws from those files."""
    pytest.importorskip("matplotlib")
    import nspzero.reports.diagnostics as diagnostics
    from nspzero.reports.html import render_report_html

    computed, original = [], diagnostics.task_diagnostics
    monkeypatch.setattr(diagnostics, "task_diagnostics", lambda name, *a, **k: computed.append(name) or
                        original(name, *a, **k))
    monkeypatch.setattr(diagnostics, "read_rows", lambda path: pytest.fail(f"{path} was read back"))
    evaluate(scorer, EvalSettings(data_dir, ["eprstmt", "ocnli", "chid"], plots=True, report=True), tmp_path)
    assert sorted(computed) == ["chid", "eprstmt", "ocnli"]
    assert {p.name for p in tmp_path.glob("*.png")} == {"eprstmt.confusion.png", "ocnli.confusion.png",
                                                        "ocnli.scores.png", "chid.positions.png"}
    monkeypatch.undo()
    assert (tmp_path / "report.html").read_text(encoding="utf-8") == render_report_html(tmp_path)


def test_diagnostics_that_cannot_be_computed_are_a_warning_not_a_lost_eval(scorer, data_dir, tmp_path, monkeypatch,
                                                                          caplog):
    import nspzero.reports.diagnostics as diagnostics

    def fails(*args, **kwargs):
        raise ValueError("accuracy: input should be a finite number")

    monkeypatch.setattr(diagnostics, "eval_diagnostics", fails)
    results = evaluate(scorer, EvalSettings(data_dir, ["eprstmt"], plots=True, report=True), tmp_path)
    assert json.loads((tmp_path / "results.json").read_text(encoding="utf-8"))["tasks"].keys() == results["tasks"].keys()
    assert not (tmp_path / "report.html").exists() and not list(tmp_path.glob("*.png"))
    assert [r.getMessage() for r in caplog.records if r.levelname == "WARNING"] == [
        "could not write the plots or report.html (accuracy: input should be a finite number); the results are "
        "written, retry with `nspzero report`"]


@pytest.mark.parametrize("first, second", [
    (dict(tasks=["eprstmt", "tnews"], report=True, plots=True), dict(tasks=["eprstmt"])),
    (dict(tasks=["tnews"], report=True), dict(tasks=["eprstmt"], plots=True)),
])
def test_a_rerun_into_the_same_folder_leaves_only_its_own_files(scorer, data_dir, tmp_path, first, second):
    """Class: stale files of an earlier run (its report, plots, or another task's predictions) beside new
    results. A folder holds one run's files; the cache and files nspzero does not write are kept."""
    pytest.importorskip("matplotlib")
    out = tmp_path / "out"
    evaluate(scorer, EvalSettings(data_dir, first["tasks"], plots=first.get("plots", False),
                                  report=first.get("report", False)), out)
    (out / "notes.txt").write_text("mine", encoding="utf-8")
    evaluate(scorer, EvalSettings(data_dir, second["tasks"], plots=second.get("plots", False),
                                  report=second.get("report", False)), out)
    fresh = tmp_path / "fresh"
    evaluate(scorer, EvalSettings(data_dir, second["tasks"], plots=second.get("plots", False),
                                  report=second.get("report", False)), fresh)
    files = {p.name for p in out.iterdir() if p.is_file()}
    assert files == {p.name for p in fresh.iterdir() if p.is_file()} | {"notes.txt"}
    assert (out / "cache").is_dir() and (out / "notes.txt").read_text(encoding="utf-8") == "mine"


@pytest.fixture(scope="module")
def decisive_scorer(decisive_model_dir):
    return NSPScorer.from_pretrained(decisive_model_dir, device="cpu", max_length=128, batch_size=8)


def test_few_shot_tunes_scores_through_the_harness_and_keeps_base_and_tuned_scores_apart(decisive_scorer, data_dir,
                                                                                     tmp_path):
    """eval --few-shot: the tuned column equals an independent run of the same tuning scored through the
    public API; the zero-shot column and cache are those of the base model; --limit bounds every split."""
    import copy

    from nspzero.fewshot import tune_task
    from nspzero.harness import read_split
    from nspzero.tasks.registry import load_task

    scorer = decisive_scorer
    before = {k: v.clone() for k, v in scorer.model.state_dict().items()}
    zero = evaluate(scorer, EvalSettings(data_dir, ["eprstmt", "ocnli"], limit=6), tmp_path / "zero")
    results = evaluate(scorer, EvalSettings(data_dir, ["eprstmt", "ocnli"], limit=6, few_shot=True), tmp_path / "few")
    assert all(torch.equal(before[k], v) for k, v in scorer.model.state_dict().items())  # the caller's model is back
    for name in ("eprstmt", "ocnli"):  # the zero-shot column is the base model's
        assert results["tasks"][name]["accuracy"] == zero["tasks"][name]["accuracy"]
    assert results["tasks"]["ocnli"]["few_shot"] == {"tuned": False, "note": "not tuned in the paper"}
    few = results["tasks"]["eprstmt"]["few_shot"]
    assert few["tuned"] and (few["train_examples"], few["dev_examples"], few["examples"]) == (6, 6, 6)
    assert len(few["epochs"]) == 10 and few["recipe"]["batch_size"] == 8 and few["recipe"]["learning_rate"] == 1e-5
    assert few["best_dev_accuracy"] == max(e["dev_accuracy"] for e in few["epochs"])

    # the reference: the same tuning on a copy of the model, its pairs scored by NSPScorer.score directly
    task = load_task("eprstmt")
    settings = EvalSettings(data_dir, ["eprstmt"], limit=6)
    train, dev, test = (read_split(task, settings, s)[0] for s in ("train_few_all", "dev_few_all", "test_public"))
    copy_scorer = NSPScorer(scorer.tokenizer, copy.deepcopy(scorer.model), device="cpu", max_length=128)
    report = tune_task(copy_scorer, task, train, dev, task.config.few_shot)
    assert report.best_epoch == few["best_epoch"]
    rows = read_jsonl(tmp_path / "few" / "eprstmt.few-shot.predictions.jsonl")
    tuned_scores = copy_scorer.score([p for e in test for p in task.example_pairs(e)], progress=False)
    assert np.concatenate([[r["scores"][n] for n in task.candidates(e).names] for r, e in zip(rows, test)]) \
        == pytest.approx(tuned_scores, abs=1e-6)
    assert few["accuracy"] == pytest.approx(np.mean([r["gold"] == r["prediction"] for r in rows]))

    # base and tuned scores live under different cache keys: the zero-shot file holds the base scores only
    caches = sorted((tmp_path / "few" / "cache").glob("scores-*.jsonl"))
    zero_cache = next(c for c in caches if "tuned" not in c.name)
    assert zero_cache.name == next((tmp_path / "zero" / "cache").glob("scores-*.jsonl")).name
    assert zero_cache.read_text() == next((tmp_path / "zero" / "cache").glob("scores-*.jsonl")).read_text()
    assert few["cache"] == f"cache/{next(c for c in caches if 'tuned' in c.name).name}"
    md = (tmp_path / "few" / "results.md").read_text(encoding="utf-8")
    assert "| nspzero few-shot (NSP-tuning) |" in md and "not tuned" in md and "| PET few-shot (paper) |" in md

    # a rerun (as after a kill) goes on from the kept tuning state: no training step, the same tuned weights,
    # so the tuned scores come from the cache; another --limit is another run, whose stale state is dropped
    from nspzero.tuning import trainer

    steps = []
    real = trainer.step_loss
    trainer.step_loss = lambda *a, **k: steps.append(1) or real(*a, **k)
    try:
        again = evaluate(scorer, EvalSettings(data_dir, ["eprstmt"], limit=6, few_shot=True), tmp_path / "few")
        assert steps == [] and again["tasks"]["eprstmt"]["few_shot"]["pairs_scored"] == 0
        assert again["tasks"]["eprstmt"]["few_shot"]["accuracy"] == few["accuracy"]
        other = evaluate(scorer, EvalSettings(data_dir, ["eprstmt"], limit=4, few_shot=True), tmp_path / "few")
        assert steps and other["tasks"]["eprstmt"]["few_shot"]["train_examples"] == 4
    finally:
        trainer.step_loss = real


def test_few_shot_refuses_weights_it_cannot_train_before_writing(model_dir, data_dir, tmp_path):
    from nspzero.errors import UsageError

    scorer = NSPScorer.from_pretrained(model_dir, device="cpu", dtype="bfloat16")
    with pytest.raises(UsageError, match="float32"):
        evaluate(scorer, EvalSettings(data_dir, ["eprstmt"], few_shot=True), tmp_path / "out")
    assert not (tmp_path / "out").exists()

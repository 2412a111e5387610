"""`classify_with_ray`: a local 2-CPU Ray against in-process `NSPClassifier.classify()`.

Every Ray run goes through `_bounded`, which fails the test after RUN_TIMEOUT seconds instead of
letting a stalled Ray job (e.g. actors starving the read task of CPUs) block the suite.
"""
from __future__ import annotations

import csv
import json

import pytest

ray = pytest.importorskip("ray")
pytest.importorskip("ray.data")

from nspzero import NSPClassifier  # noqa: E402
from nspzero.distributed import classify_with_ray  # noqa: E402
from nspzero.errors import DataError, ModelError, UsageError  # noqa: E402
from conftest import bounded_call  # noqa: E402

RUN_TIMEOUT = 120
BASE = ["今天比赛球队赢了", "市场上涨公司发布手机", "这次买的东西很差", "学校老师学生", "电竞玩家游戏", "汽车房产旅游"]
TEXTS = [f"{BASE[i % len(BASE)]}{'一二三四五六七八九十'[i % 10] * (1 + i % 4)}" for i in range(30)]
LABELS = ["体育", "财经", "科技"]
TEMPLATE = "这是一则{label}新闻"


@pytest.fixture(scope="module")
def local_ray():
    """A private 2-CPU Ray on 127.0.0.1 (never plain `ray.init()`, which joins the last cluster run here)."""
    from nspzero.distributed.common import private_ray

    with private_ray(num_cpus=2) as session:
        yield session


def _bounded(fn, *args, **kwargs):
    return bounded_call(fn, *args, timeout=RUN_TIMEOUT, **kwargs)


def _expected(model_dir):
    clf = NSPClassifier.from_pretrained(model_dir, device="cpu", max_length=64, batch_size=4)
    return clf.classify(TEXTS, LABELS, template=TEMPLATE)


def _check(rows, expected, id_type):
    assert len(rows) == len(expected)
    for i, (row, exp) in enumerate(zip(rows, expected)):
        assert list(row)[:3] == ["text", "label", "scores"]
        assert row["id"] == id_type(i)  # passthrough column kept, rows in input order
        assert row["text"] == exp.text
        assert row["label"] == exp.label
        assert list(row["scores"]) == list(exp.scores)  # same labels, same best-first order
        for name, value in exp.scores.items():
            assert row["scores"][name] == pytest.approx(value, abs=1e-5)


def _read_jsonl(path):
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle]


def _assert_same_predictions(local_path, ray_path):
    """Same examples, gold and predictions; every score within 1e-5."""
    a, b = _read_jsonl(local_path), _read_jsonl(ray_path)
    assert len(a) == len(b) > 0
    for ra, rb in zip(a, b):
        assert (ra["index"], ra["gold"], ra["prediction"]) == (rb["index"], rb["gold"], rb["prediction"])
        if "scores" in ra:
            assert list(ra["scores"]) == list(rb["scores"])
            assert max(abs(ra["scores"][k] - rb["scores"][k]) for k in ra["scores"]) <= 1e-5
        else:
            assert abs(ra["score"] - rb["score"]) <= 1e-5


def test_jsonl_matches_local_classify(local_ray, model_dir, tmp_path):
    src, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    src.write_text("".join(json.dumps({"id": i, "text": t}, ensure_ascii=False) + "\n"
                           for i, t in enumerate(TEXTS)), encoding="utf-8")
    n = _bounded(classify_with_ray, str(src), str(out), model_dir, LABELS, template=TEMPLATE,
                 num_actors=2, batch_size=4, max_length=64, device="cpu", rows_per_batch=7)
    assert n == len(TEXTS)
    _check(_read_jsonl(out), _expected(model_dir), int)
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_csv_to_parquet_and_parquet_input_match_local_classify(local_ray, model_dir, tmp_path):
    import pyarrow.parquet as pq

    src, out = tmp_path / "in.csv", tmp_path / "out.parquet"
    with open(src, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "text"])
        writer.writerows([f"r{i}", t] for i, t in enumerate(TEXTS))
    n = _bounded(classify_with_ray, str(src), str(out), model_dir, LABELS, template=TEMPLATE,
                 batch_size=4, max_length=64, device="cpu", rows_per_batch=8)
    assert n == len(TEXTS)
    rows = pq.read_table(out).to_pylist()
    for row in rows:
        row["scores"] = json.loads(row["scores"])
    _check(rows, _expected(model_dir), lambda i: f"r{i}")

    # that Parquet file as input: its own label/scores columns pass through as input_label/input_scores
    again = tmp_path / "again.jsonl"
    n = _bounded(classify_with_ray, str(out), str(again), model_dir, LABELS, template=TEMPLATE,
                 batch_size=4, max_length=64, device="cpu")
    assert n == len(TEXTS)
    rows2 = _read_jsonl(again)
    _check(rows2, _expected(model_dir), lambda i: f"r{i}")
    assert [json.loads(r["input_scores"]) for r in rows2] == [r["scores"] for r in rows]
    assert [r["input_label"] for r in rows2] == [r["label"] for r in rows]


def test_errors_are_one_line_nspzero_errors(local_ray, model_dir, tmp_path):
    src, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    src.write_text('{"id": 1, "sentence": "今天比赛"}\n', encoding="utf-8")
    with pytest.raises(DataError, match="no field 'text'"):  # checked before Ray runs anything
        classify_with_ray(str(src), str(out), model_dir, LABELS)
    with pytest.raises(DataError, match="does not exist"):
        classify_with_ray(str(tmp_path / "missing.jsonl"), str(out), model_dir, LABELS)
    with pytest.raises(UsageError, match="template"):
        classify_with_ray(str(src), str(out), model_dir, LABELS, template="{label.__class__}")
    # a bad row deep in the file is found by the one reader, with its file:line, before Ray starts
    out.write_text("old\n", encoding="utf-8")
    src.write_text('{"id": 1, "text": "今天比赛"}\n{"id": 2, "text": "  "}\n', encoding="utf-8")
    with pytest.raises(DataError, match=r"in.jsonl:2: field 'text' is empty") as info:
        _bounded(classify_with_ray, str(src), str(out), model_dir, LABELS, device="cpu")
    assert "\n" not in str(info.value)
    assert out.read_text(encoding="utf-8") == "old\n"  # the old output survives a failed run
    # a model that fails to load in the actors' __init__ is a ModelError, not a hang
    bad_model = tmp_path / "not-a-model"
    bad_model.mkdir()
    (bad_model / "config.json").write_text("{}", encoding="utf-8")
    src.write_text('{"id": 1, "text": "今天比赛"}\n', encoding="utf-8")
    with pytest.raises(ModelError, match="could not load model"):
        _bounded(classify_with_ray, str(src), str(out), str(bad_model), LABELS, device="cpu")


def test_ray_missing_is_a_usage_error(monkeypatch, model_dir, tmp_path):
    import builtins

    real_import = builtins.__import__

    def no_ray(name, *args, **kwargs):
        if name == "ray" or name.startswith("ray."):
            raise ImportError("No module named 'ray'")
        return real_import(name, *args, **kwargs)

    src = tmp_path / "in.jsonl"
    src.write_text('{"text": "今天比赛"}\n', encoding="utf-8")
    monkeypatch.setattr(builtins, "__import__", no_ray)
    from nspzero.extras import install_hint

    with pytest.raises(UsageError) as info:
        classify_with_ray(str(src), str(tmp_path / "out.jsonl"), model_dir, LABELS)
    assert str(info.value).endswith(f"the ray engine needs it: {install_hint('ray')}")


def test_cli_engine_ray_equals_the_local_cli(local_ray, model_dir, tmp_path, capsys):
    from conftest import run_cli

    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps({"id": i, "text": t}, ensure_ascii=False) + "\n"
                           for i, t in enumerate(TEXTS[:12])), encoding="utf-8")
    common = ["classify", "--model", model_dir, "--labels", ",".join(LABELS), "--template", TEMPLATE,
              "--input", str(src), "--max-length", "64", "--device", "cpu"]
    local_out, ray_out = tmp_path / "local.jsonl", tmp_path / "ray.jsonl"
    assert run_cli(common + ["--output", str(local_out)], capsys)[0] == 0
    code, _, err = _bounded(run_cli, common + ["--output", str(ray_out), "--engine", "ray", "--num-actors", "2"],
                            capsys)
    assert code == 0, err
    local, distributed = _read_jsonl(local_out), _read_jsonl(ray_out)
    assert [r["id"] for r in distributed] == list(range(12))
    for a, b in zip(local, distributed):
        assert (a["text"], a["label"], list(a["scores"])) == (b["text"], b["label"], list(b["scores"]))
        assert max(abs(a["scores"][k] - b["scores"][k]) for k in a["scores"]) <= 1e-5


@pytest.mark.parametrize("extra, message", [
    (["--engine", "spark"], "--engine must be one of local, ray"),
    (["--num-actors", "3"], "apply to --engine ray"),
    (["--engine", "ray", "--num-actors", "0"], "--num-actors must be a positive number"),
    (["--engine", "ray", "--format", "csv", "--output", "o.jsonl"], "--format csv contradicts --output"),
    (["--engine", "ray"], "give both"),
])
def test_cli_engine_usage_errors(model_dir, tmp_path, capsys, extra, message):
    from conftest import run_cli

    src = tmp_path / "in.jsonl"
    src.write_text('{"text": "今天比赛"}\n', encoding="utf-8")
    code, _, err = run_cli(["classify", "--model", model_dir, "--labels", "体育,财经", "--input", str(src)] + extra,
                           capsys)
    assert code == 2 and message in err and "Traceback" not in err


def test_eval_engine_ray_equals_local_eval(local_ray, model_dir, tmp_path):
    """Every task type (C-C, S-C with its dev split, ChID with soft positions) scored on Ray gives the
    local predictions and scores; the cache written through Ray is the local one."""
    from fewclue_fixture import write_fewclue

    from nspzero.distributed import RayPairScorer
    from nspzero.harness import EvalSettings, evaluate
    from nspzero.scorer import NSPScorer

    data = write_fewclue(tmp_path / "fewclue", n=5)
    settings = EvalSettings(str(data), ["eprstmt", "ocnli", "chid"])
    scorer = NSPScorer.from_pretrained(model_dir, device="cpu", max_length=128)
    local = evaluate(scorer, settings, tmp_path / "local")
    with RayPairScorer(model_dir, num_actors=2, device="cpu", max_length=128, rows_per_batch=16) as engine:
        distributed = _bounded(evaluate, scorer, settings, tmp_path / "ray", engine=engine,
                               engine_name="ray (2 actors)")
        # rerun on the Ray output dir: everything comes from the cache, nothing is rescored
        again = evaluate(scorer, settings, tmp_path / "ray", engine=engine)
    assert all(entry["pairs_scored"] == 0 for entry in again["tasks"].values())
    assert distributed["settings"]["engine"] == "ray (2 actors)"
    for name in settings.tasks:
        assert distributed["tasks"][name]["accuracy"] == local["tasks"][name]["accuracy"]
        assert distributed["tasks"][name]["pairs_scored"] == local["tasks"][name]["pairs_scored"] > 0
        _assert_same_predictions(tmp_path / "local" / f"{name}.predictions.jsonl",
                                 tmp_path / "ray" / f"{name}.predictions.jsonl")


def test_eval_engine_ray_model_error_is_one_line(local_ray, tmp_path):
    from nspzero.distributed import RayPairScorer
    from nspzero.scorer import Pair

    bad_model = tmp_path / "not-a-model"
    bad_model.mkdir()
    (bad_model / "config.json").write_text("{}", encoding="utf-8")
    with RayPairScorer(str(bad_model), device="cpu") as engine:
        with pytest.raises(ModelError, match="could not load model") as info:
            _bounded(engine.score, [Pair("体育", "今天比赛")])
    assert "\n" not in str(info.value)


def test_cli_eval_engine_ray_equals_local(local_ray, model_dir, tmp_path, capsys):
    from conftest import run_cli
    from fewclue_fixture import write_fewclue

    data = write_fewclue(tmp_path / "fewclue", n=4)
    common = ["eval", "--model", model_dir, "--data-dir", str(data), "--tasks", "tnews,ocnli", "--device", "cpu"]
    assert run_cli(common + ["-o", str(tmp_path / "local")], capsys)[0] == 0
    code, _, err = _bounded(run_cli, common + ["-o", str(tmp_path / "ray"), "--engine", "ray"], capsys)
    assert code == 0, err
    local = json.loads((tmp_path / "local" / "results.json").read_text(encoding="utf-8"))
    distributed = json.loads((tmp_path / "ray" / "results.json").read_text(encoding="utf-8"))
    assert distributed["settings"]["engine"] == "ray (1 actor)" and local["settings"]["engine"] == "local"
    for name in ("tnews", "ocnli"):
        assert distributed["tasks"][name]["accuracy"] == local["tasks"][name]["accuracy"]
        _assert_same_predictions(tmp_path / "local" / f"{name}.predictions.jsonl",
                                 tmp_path / "ray" / f"{name}.predictions.jsonl")


def test_passthrough_columns_keep_their_text_and_empty_parquet_gives_a_valid_file(local_ray, model_dir, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    src, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    src.write_text(json.dumps({"id": "007", "date": "2024-01-01", "n": 3, "text": "今天比赛"}) + "\n", encoding="utf-8")
    assert _bounded(classify_with_ray, str(src), str(out), model_dir, LABELS, device="cpu") == 1
    row = _read_jsonl(out)[0]
    assert (row["id"], row["date"], row["n"]) == ("007", "2024-01-01", 3)

    empty, out2 = tmp_path / "empty.parquet", tmp_path / "out2.parquet"
    pq.write_table(pa.table({"text": pa.array([], pa.string())}), empty)
    assert _bounded(classify_with_ray, str(empty), str(out2), model_dir, LABELS, device="cpu") == 0
    assert pq.read_table(out2).num_rows == 0 and pq.read_table(out2).column_names == ["text", "label", "scores"]


def test_unwritable_output_fails_before_ray_starts(model_dir, tmp_path):
    src = tmp_path / "in.jsonl"
    src.write_text('{"text": "今天比赛"}\n', encoding="utf-8")
    blocker = tmp_path / "a-file"
    blocker.write_text("", encoding="utf-8")
    with pytest.raises(DataError, match="cannot write --output"):
        classify_with_ray(str(src), str(blocker / "out.jsonl"), model_dir, LABELS)


def test_actor_resources_leave_room_for_reading_and_use_big_nodes():
    from nspzero.distributed import actor_resources

    two = actor_resources(2, 2, "cpu")  # the 2-CPU case that used to hang: reading keeps one CPU
    assert (two.read_cpus, two.actor_cpus, two.torch_threads) == (1.0, 0.5, 1)
    big = actor_resources(16, 1, "cpu", node_cpus=16)  # one actor on a 16-core box gets 15 threads
    assert (big.actor_cpus, big.torch_threads, big.actor_gpus) == (15.0, 15, 0)
    cluster = actor_resources(64, 2, "cuda", read=False, node_cpus=8)  # at most one node per actor
    assert (cluster.read_cpus, cluster.actor_cpus, cluster.actor_gpus) == (0.0, 8.0, 1)


def test_ray_pair_scoring_reports_truncation_to_the_driver(local_ray, model_dir):
    """The actors' truncation counts come back with their scores: one report for the whole call, on
    the driver (an actor's own warning would be lost with its log)."""
    from nspzero.distributed import RayPairScorer
    from nspzero.scorer import NSPScorer, Pair

    pairs = [Pair("体育", "今天比赛球队赢了。" * 4), Pair("体育", "今天"), Pair("财经", "今天比赛球队赢了。" * 4)]
    counts = []
    with RayPairScorer(model_dir, device="cpu", max_length=16, rows_per_batch=1) as engine:
        scores = _bounded(engine.score, pairs, on_truncated=lambda cut, total: counts.append((cut, total)))
    local = NSPScorer.from_pretrained(model_dir, device="cpu", max_length=16).score(pairs, on_truncated=lambda *a: None)
    assert counts == [(2, 3)] and scores == pytest.approx(local, abs=1e-6)


def test_resume_on_ray_scores_only_the_shards_a_stopped_run_left(local_ray, model_dir, tmp_path, capsys, monkeypatch):
    """`classify --resume` begun on the local engine and stopped after its first shard, resumed with
    --engine ray: a changed request is refused before Ray runs anything; the actors get only the rows
    of the missing shards; the kept shard's lines are the local run's bytes, the rest its scores."""
    import nspzero.distributed.classify as ray_classify
    from conftest import run_cli
    from nspzero.resume import SHARD_ROWS, progress_folder

    monkeypatch.setenv("NSPZERO_BACKEND", "torch")  # the plain run's kernels are the ones --resume pins
    rows = SHARD_ROWS + 40
    src, plain, out = tmp_path / "in.jsonl", tmp_path / "plain.jsonl", tmp_path / "out.jsonl"
    src.write_text("".join(json.dumps({"id": i, "text": TEXTS[i % len(TEXTS)] + str(i)}, ensure_ascii=False) + "\n"
                           for i in range(rows)), encoding="utf-8")
    common = ["classify", "--model", model_dir, "--labels", ",".join(LABELS), "--template", TEMPLATE,
              "--input", str(src), "--max-length", "64", "--device", "cpu", "--compile", "off"]
    assert run_cli(common + ["--output", str(plain)], capsys)[0] == 0
    calls = {"n": 0}
    original = NSPClassifier.run

    def stop_in_the_second_call(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return original(self, *args, **kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(NSPClassifier, "run", stop_in_the_second_call)
        assert run_cli(common + ["--output", str(out), "--resume"], capsys)[0] == 130
    assert [p.name for p in progress_folder(out).glob("shard-*")] == ["shard-000000.jsonl"]

    other = [a if a != ",".join(LABELS) else "体育,财经" for a in common]
    code, _, err = run_cli(other + ["--output", str(out), "--resume", "--engine", "ray"], capsys)
    assert code == 1 and "was begun with another request" in err, err

    wanted = []
    real = ray_classify._scored_on_ray
    monkeypatch.setattr(ray_classify, "_scored_on_ray", lambda ray, rows_, own, rows_wanted, *a:
                        wanted.extend(rows_wanted) or real(ray, rows_, own, rows_wanted, *a))
    code, _, err = _bounded(run_cli, common + ["--output", str(out), "--resume", "--engine", "ray",
                                               "--num-actors", "2"], capsys)
    assert code == 0, err
    assert wanted == list(range(SHARD_ROWS, rows))
    local, resumed = plain.read_text(encoding="utf-8").splitlines(), out.read_text(encoding="utf-8").splitlines()
    assert resumed[:SHARD_ROWS] == local[:SHARD_ROWS] and len(resumed) == rows
    for a, b in zip(map(json.loads, local[SHARD_ROWS:]), map(json.loads, resumed[SHARD_ROWS:])):
        assert (a["id"], a["text"], a["label"], list(a["scores"])) == (b["id"], b["text"], b["label"], list(b["scores"]))
        assert max(abs(a["scores"][k] - b["scores"][k]) for k in a["scores"]) <= 1e-5
    assert not progress_folder(out).exists()


def test_eval_on_ray_caches_each_chunk_as_it_finishes(local_ray, model_dir, tmp_path, monkeypatch):
    """`eval --engine ray` keeps finished work: each chunk an actor returns is on disk in the score
    cache before the next is taken, so a run stopped after three chunks resumes from them and scores
    only the rest (with the local scores)."""
    from nspzero.cache import ScoreCache
    from nspzero.distributed import RayPairScorer
    from nspzero.harness import CachedScoring
    from nspzero.scorer import NSPScorer, Pair

    pairs = [Pair(f"这是一则{label}新闻", text) for text in TEXTS[:20] for label in LABELS]  # 60 pairs
    path = tmp_path / "scores.jsonl"
    on_disk: list[int] = []
    real_chunks = RayPairScorer._score_chunks

    def stopped_after_three(self, *args):
        for n, item in enumerate(real_chunks(self, *args)):
            if n == 3:
                on_disk.append(len(path.read_text(encoding="utf-8").splitlines()))
                raise KeyboardInterrupt  # the driver stops (Ctrl-C, a kill) while actors still work
            yield item
            on_disk.append(len(path.read_text(encoding="utf-8").splitlines()))

    with RayPairScorer(model_dir, num_actors=2, device="cpu", max_length=32, rows_per_batch=8) as engine:
        cache = ScoreCache(path)
        with monkeypatch.context() as patch:
            patch.setattr(RayPairScorer, "_score_chunks", stopped_after_three)
            with pytest.raises(KeyboardInterrupt):
                _bounded(CachedScoring(engine, cache).score, pairs)
        cache.close()
        assert on_disk == [8, 16, 24, 24]  # a chunk's pairs are on disk as soon as it comes back
        again = CachedScoring(engine, ScoreCache(path))
        assert len(again.cache) == 24
        scores = _bounded(again.score, pairs)
        again.cache.close()
    assert again.scored == len(pairs) - 24
    local = NSPScorer.from_pretrained(model_dir, device="cpu", max_length=32).score(pairs)
    assert scores == pytest.approx(local, abs=1e-6)

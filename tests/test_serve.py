"""`nspzero serve`: a real uvicorn server in a subprocess, checked against in-process classify()."""
from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")
httpx = pytest.importorskip("httpx")

from nspzero import NSPClassifier  # noqa: E402
from nspzero.errors import UsageError  # noqa: E402
from nspzero.prompt_sets import load_prompt  # noqa: E402

MAX_TEXTS, MAX_LABELS, MAX_TEXT_CHARS = 8, 20, 200
TEXTS = ["今天比赛球队赢了", "市场上涨公司发布手机", "这次买的东西很差", "学校老师学生"]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(model_dir, tmp_path_factory):
    """Base URL of `run_server` on the tiny model, in a subprocess killed at the end of the module."""
    port = _free_port()
    log_path = tmp_path_factory.mktemp("serve") / "server.log"
    code = (f"from nspzero.serve import run_server; run_server({model_dir!r}, port={port}, device='cpu', "
            f"max_texts={MAX_TEXTS}, max_labels={MAX_LABELS}, max_text_chars={MAX_TEXT_CHARS})")
    env = dict(os.environ, HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    with open(log_path, "wb") as log:  # a file, not a pipe: a full pipe would block the server
        proc = subprocess.Popen([sys.executable, "-c", code], stdout=log, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                pytest.fail(f"server exited with {proc.returncode}:\n{log_path.read_text(errors='replace')[-3000:]}")
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"server not up after 60 s:\n{log_path.read_text(errors='replace')[-3000:]}")
            time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="module")
def local(model_dir):
    """The same classifier in-process, with the server's settings."""
    return NSPClassifier.from_pretrained(model_dir, device="cpu", max_length=256, batch_size=32)


def _post(url, body, **kwargs):
    return httpx.post(f"{url}/classify", json=body, timeout=30, **kwargs)


def assert_same(got: dict, expected) -> None:
    assert got["text"] == expected.text
    assert got["label"] == expected.label
    assert list(got["scores"]) == list(expected.scores)  # same labels, same order (best first)
    for name, p in expected.scores.items():
        assert abs(got["scores"][name] - p) <= 1e-5, (name, got["scores"][name], p)


def test_health(server, model_dir):
    r = httpx.get(f"{server}/health")
    assert r.status_code == 200 and r.json() == {"status": "ok", "model": model_dir, "random_weights": False,
                                              "tuned_labels": None}
    assert httpx.get(f"{server}/docs").status_code == 200
    schema = httpx.get(f"{server}/openapi.json").json()
    assert {"/classify", "/health"} <= set(schema["paths"])


PARITY = {
    "list labels": dict(labels=["体育", "财经", "科技"], template="这是一则{label}新闻"),
    "dict labels, several words": dict(labels={"pos": ["很好", "不错"], "neg": "很差", "mid": ["一般"]},
                                       template="这次买的东西{label}"),
    "several templates": dict(labels={"体育": ["体育", "比赛"], "财经": "财经"},
                              template=["这是一则{label}新闻", "{label}"]),
    "suffix placement": dict(labels=["体育", "财经"], template="{label}新闻", placement="suffix"),
    "multi label": dict(labels=["体育", "财经", "科技", "教育"], multi_label=True, threshold=0.5),
    "default template": dict(labels=["体育", "财经"]),
}


@pytest.mark.parametrize("kwargs", list(PARITY.values()), ids=list(PARITY))
def test_results_equal_in_process_classify(server, local, kwargs):
    r = _post(server, {"texts": TEXTS, **kwargs})
    assert r.status_code == 200, r.text
    got = r.json()["results"]
    expected = local.classify(TEXTS, **kwargs)
    assert len(got) == len(expected)
    for g, e in zip(got, expected):
        assert_same(g, e)


def test_single_text_gives_a_list_of_one(server, local):
    r = _post(server, {"text": TEXTS[0], "labels": ["体育", "财经"], "template": "这是一则{label}新闻"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert list(body) == ["results"] and len(body["results"]) == 1
    assert_same(body["results"][0], local.classify(TEXTS[0], ["体育", "财经"], template="这是一则{label}新闻"))


@pytest.mark.parametrize("spec", ["tnews", "tnews:news-2021"])
def test_prompt_set_gives_labels_templates_and_placement(server, local, spec):
    r = _post(server, {"texts": TEXTS[:2], "prompt": spec})
    assert r.status_code == 200, r.text
    variant = load_prompt(spec)
    expected = local.classify(TEXTS[:2], {k: list(v) for k, v in variant.words.items()},
                              template=list(variant.templates), placement=variant.placement)
    for g, e in zip(r.json()["results"], expected):
        assert_same(g, e)
    # `labels` picks some of the prompt's labels
    some = list(variant.words)[:3]
    r = _post(server, {"text": TEXTS[0], "prompt": spec, "labels": some})
    assert r.status_code == 200 and list(r.json()["results"][0]["scores"]) != []
    assert set(r.json()["results"][0]["scores"]) == set(some)


def test_concurrent_requests_all_answered_like_in_process(server, local):
    label_sets = [["体育", "财经"], ["体育", "财经", "科技"], {"好": ["很好", "不错"], "差": "很差"}]
    bodies = [{"texts": TEXTS[i % 4:] + TEXTS[:i % 4], "labels": label_sets[i % 3],
               "template": ["这是一则{label}新闻", "{label}"][i % 2]} for i in range(12)]
    with ThreadPoolExecutor(12) as pool:
        responses = list(pool.map(lambda b: _post(server, b), bodies))
    for body, r in zip(bodies, responses):
        assert r.status_code == 200, r.text
        expected = local.classify(body["texts"], body["labels"], template=body["template"])
        for g, e in zip(r.json()["results"], expected):
            assert_same(g, e)


T2 = {"texts": ["今天"], "labels": ["体育", "财经"]}
BAD = {  # body, status, a piece of `detail`, `field`
    "empty texts list": ({"texts": [], "labels": ["体育", "财经"]}, 422, "no texts", "texts"),
    "empty text": ({"texts": ["今天", " "], "labels": ["体育", "财经"]}, 422, "texts[1] is empty", "texts"),
    "empty single text": ({"text": "", "labels": ["体育", "财经"]}, 422, "is empty", "text"),
    "no texts at all": ({"labels": ["体育", "财经"]}, 422, "no texts", "texts"),
    "text and texts": ({"text": "今天", "texts": ["今天"], "labels": ["体育", "财经"]}, 422, "not both", "texts"),
    "non-string text": ({"texts": [1], "labels": ["体育", "财经"]}, 422, "texts[0]", "texts"),
    "duplicate labels": ({"texts": ["今天"], "labels": ["体育", "体育"]}, 422, "given twice", "labels"),
    "invisible label": ({"texts": ["今天"], "labels": ["体育", "\u200b\u200e"]}, 422, "once invisible characters are removed",
                        "labels"),
    "labels equal once normalised": ({"texts": ["今天"], "labels": ["体育", "体 育"]}, 422, "differ only in invisible",
                                     "labels"),
    "a word under two labels": ({"texts": ["今天"], "labels": {"体育": "运动", "健身": "运动"}}, 422,
                                "share the word '运动'", "labels"),
    "labels as one string": ({"texts": ["今天"], "labels": "体育,财经"}, 422, "a single string", "labels"),
    "non-string label word": ({"texts": ["今天"], "labels": {"体育": 1, "财经": "钱"}}, 422, "verbalization", "labels"),
    "no labels": ({"texts": ["今天"]}, 422, "no labels", "labels"),
    "attribute template": ({**T2, "template": "{label.__class__}"}, 422, "{label.__class__} is not allowed", "template"),
    "template without label": ({**T2, "template": "新闻"}, 422, "has no {label} placeholder", "template"),
    "unknown placement": ({**T2, "placement": "middle"}, 422, "placement must be 'prefix'", "placement"),
    "threshold out of range": ({"texts": ["今天"], "labels": ["体育"], "multi_label": True, "threshold": 2}, 422,
                               "threshold must be a probability between 0 and 1, got 2", "threshold"),
    "true as top_k": ({**T2, "top_k": True}, 422, "top_k: Input should be a valid integer, got True", "top_k"),
    "true as threshold": ({**T2, "threshold": True}, 422, "threshold: Input should be a valid number", "threshold"),
    "true as overlap": ({**T2, "overlap": True}, 422, "overlap: Input should be a valid integer", "overlap"),
    "unknown prompt set": ({"texts": ["今天"], "prompt": "tnewz"}, 422, "unknown prompt set 'tnewz'", "prompt"),
    "unknown prompt variant": ({"texts": ["今天"], "prompt": "tnews:nope"}, 422, "no variant 'nope'", "prompt"),
    "label not in prompt": ({"texts": ["今天"], "prompt": "tnews", "labels": ["火星"]}, 422, "not in prompt", "labels"),
    "prompt file path": ({"texts": ["今天"], "prompt": "/etc/passwd.yaml"}, 422, "not files", "prompt"),
    "unknown field": ({**T2, "lables": 1}, 422, "lables: unknown field", "lables"),
    "too many texts": ({"texts": ["今天"] * (MAX_TEXTS + 1), "labels": ["体育", "财经"]}, 413, "--max-texts", "texts"),
    "too many labels": ({"texts": ["今天"], "labels": [f"类{i}" for i in range(MAX_LABELS + 1)]}, 413,
                        "--max-labels", "labels"),
    "oversized text": ({"texts": ["今天", "好" * (MAX_TEXT_CHARS + 1)], "labels": ["体育", "财经"]}, 413,
                       "--max-text-chars", "texts"),
    "a list of label sets in labels": ({"texts": ["今天", "东西"], "labels": [["体育", "财经"], ["好", "差"]]}, 422,
                                       "for one label set per text use labels_per_text", "labels"),
    "per-row labels, one set short": ({"texts": ["今天", "东西"], "labels_per_text": [["体育", "财经"]]}, 422,
                                      "one label set per text is needed, got 1 label sets for 2 texts",
                                      "labels_per_text"),
    "per-row labels, a bad set": ({"texts": ["今天", "东西"], "labels_per_text": [["体育", "财经"], ["好", "好"]]}, 422,
                                  "labels_per_text[1]: label '好' is given twice", "labels_per_text"),
    "per-row labels, too many": ({"texts": ["今天", "东西"], "labels_per_text": [
        ["体育", "财经"], [f"类{i}" for i in range(MAX_LABELS + 1)]]}, 413, "too many labels in labels_per_text[1]",
        "labels_per_text"),
    "per-row labels, two for one text": ({"text": "今天", "labels_per_text": [["体育", "财经"], ["好", "差"]]}, 422,
                                         "got 2 label sets for 1 texts", "labels_per_text"),
    "per-row labels, all null": ({"texts": ["今天", "东西"], "labels_per_text": [None, None]}, 422,
                                 "texts[0] has no labels", "labels_per_text"),
    "bad long_text": ({**T2, "long_text": "split"}, 422, "long_text: Input should be 'truncate' or 'chunk'",
                      "long_text"),
    "bad top_k": ({**T2, "top_k": 0}, 422, "top_k: Input should be greater than or equal to 1", "top_k"),
}


@pytest.mark.parametrize("body, status, needle, field", list(BAD.values()), ids=list(BAD))
def test_bad_requests_get_a_clear_error_and_the_server_keeps_serving(server, body, status, needle, field):
    r = _post(server, body)
    assert r.status_code == status, r.text
    assert set(r.json()) == {"detail", "field"} and r.json()["field"] == field, r.text
    detail = r.json()["detail"]
    assert isinstance(detail, str) and needle in detail, detail
    assert httpx.get(f"{server}/health").status_code == 200



def test_malformed_json_is_422_and_server_keeps_serving(server, local):
    r = httpx.post(f"{server}/classify", content=b'{"texts": ["a"', headers={"content-type": "application/json"})
    assert r.status_code == 422 and "not valid JSON" in r.json()["detail"], r.text
    assert httpx.get(f"{server}/health").status_code == 200
    r = _post(server, {"text": TEXTS[1], "labels": ["体育", "财经"]})
    assert r.status_code == 200
    assert_same(r.json()["results"][0], local.classify(TEXTS[1], ["体育", "财经"]))


# ---- in-process: micro-batching and failure isolation (no subprocess needed) -----------------------

def _asgi_client(app):
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")


def _post_concurrently(app, bodies):
    """POST every body to /classify at once (so the batcher may join them); the responses in order."""
    async def go():
        async with _asgi_client(app) as client:
            responses = await asyncio.gather(*(client.post("/classify", json=b) for b in bodies))
            await app.state.batcher.stop()
            return responses

    return asyncio.run(go())


def test_concurrent_requests_are_scored_in_one_call(local):
    from nspzero.serve import create_app

    calls = []
    real = local.scorer.score

    class Counting:
        name = local.scorer.name
        tokenizer, max_length = local.scorer.tokenizer, local.scorer.max_length  # preprocess checks the labels

        def score(self, pairs, **kwargs):
            calls.append(len(pairs))
            return real(pairs, **kwargs)

    app = create_app(NSPClassifier(Counting()), window_ms=200)
    bodies = [{"texts": TEXTS[i:] or TEXTS, "labels": ["体育", "财经"]} for i in range(4)]

    responses = _post_concurrently(app, bodies)
    assert calls == [sum(len(b["texts"]) * 2 for b in bodies)]  # ONE score() call for all four requests
    for b, r in zip(bodies, responses):
        assert r.status_code == 200
        for g, e in zip(r.json()["results"], local.classify(b["texts"], b["labels"])):
            assert_same(g, e)


def test_a_scorer_that_is_not_batch_invariant_never_mixes_requests(local):
    """Class: answers that depend on other clients' traffic. torch's int8 moves a pair's score with its
    batch-mates (docs/reliability.md), so a scorer saying `batch_invariant = False` gets each request's
    pieces in calls of their own: an answer then depends on its own request only."""
    from nspzero.serve import create_app

    calls = []
    real = local.scorer.score

    class Int8Like:
        name = local.scorer.name
        tokenizer, max_length = local.scorer.tokenizer, local.scorer.max_length
        batch_invariant = False

        def score(self, pairs, **kwargs):
            calls.append(sorted({p.second for p in pairs}))
            return real(pairs, **kwargs)

    app = create_app(NSPClassifier(Int8Like()), window_ms=200)
    bodies = [{"texts": [t], "labels": ["体育", "财经"]} for t in TEXTS[:3]]

    responses = _post_concurrently(app, bodies)
    assert sorted(calls) == sorted([[t] for t in TEXTS[:3]])  # one call per request, never two requests in one
    assert all(r.status_code == 200 for r in responses)


def test_int8_on_torch_is_the_one_path_that_is_not_batch_invariant(model_dir):
    from nspzero.scorer import NSPScorer

    assert NSPScorer.from_pretrained(model_dir).batch_invariant
    assert not NSPScorer.from_pretrained(model_dir, dtype="int8", backend="torch").batch_invariant


def test_a_failing_request_fails_alone_even_in_a_shared_batch(local, nspzero_caplog):
    from nspzero.serve import create_app

    class Flaky:
        name = local.scorer.name
        tokenizer, max_length = local.scorer.tokenizer, local.scorer.max_length  # preprocess checks the labels

        def score(self, pairs, **kwargs):
            if any(p.second == "炸" for p in pairs):
                raise RuntimeError("boom")
            return local.scorer.score(pairs, **kwargs)

    app = create_app(NSPClassifier(Flaky()), window_ms=100)
    poisoned = {"texts": ["炸"], "labels": ["体育", "财经"]}
    fine = {"texts": [TEXTS[0]], "labels": ["体育", "财经"]}

    async def go():
        async with _asgi_client(app) as client:
            batch = await asyncio.gather(client.post("/classify", json=poisoned), client.post("/classify", json=fine))
            after = await client.post("/classify", json=fine)
            health = await client.get("/health")
            await app.state.batcher.stop()
            return batch, after, health

    (bad, same_batch), after, health = asyncio.run(go())
    assert bad.status_code == 500 and bad.json() == {"detail": "scoring failed: an internal error (the server log has "
                                                     "the details); the server keeps serving", "field": None}
    logged = [r for r in nspzero_caplog.records if r.getMessage() == "scoring failed"]
    assert len(logged) == 1 and "RuntimeError: boom" in nspzero_caplog.text and logged[0].exc_info  # the traceback
    # the innocent request scored in the same batch is re-scored on its own and answered
    assert same_batch.status_code == 200
    assert_same(same_batch.json()["results"][0], local.classify(TEXTS[0], ["体育", "财经"]))
    assert after.status_code == 200 and health.status_code == 200
    assert_same(after.json()["results"][0], local.classify(TEXTS[0], ["体育", "财经"]))


def test_create_app_rejects_bad_limits(local):
    from nspzero.serve import create_app

    with pytest.raises(UsageError, match="max_texts"):
        create_app(local, max_texts=0)


def test_run_server_without_the_extra_says_what_to_install(monkeypatch):
    from nspzero import serve

    monkeypatch.setitem(sys.modules, "uvicorn", None)  # import uvicorn → ImportError
    from nspzero.extras import install_hint

    with pytest.raises(UsageError) as info:
        serve.run_server("unused")
    assert str(info.value) == f"nspzero serve needs the 'serve' extra: {install_hint('serve')}"


def test_cli_serve_command_passes_every_option(monkeypatch):
    """Each option, set away from its default, reaches run_server; without options the CLI's
    defaults are run_server's own (so the two cannot drift apart)."""
    import inspect

    from nspzero import cli, serve, web

    seen, original = {}, serve.run_server
    monkeypatch.setattr(serve, "run_server", lambda model, **kw: seen.update(model=model, **kw))
    monkeypatch.setattr(web, "report_html", lambda folder: None)
    cli.main(["serve", "--model", "m", "--host", "0.0.0.0", "--port", "8123", "--max-texts", "5", "--max-labels", "6",
              "--max-text-chars", "7", "--max-pairs", "99", "--header-timeout", "1.5", "--body-timeout", "2.5",
              "--max-connections", "11", "--allowed-hosts", "a.example, b.example", "--results", "out/",
              "--device", "cpu", "--dtype", "bfloat16", "--max-length", "64", "--batch-size", "3"])
    assert seen == dict(model="m", host="0.0.0.0", port=8123, max_texts=5, max_labels=6, max_text_chars=7, max_pairs=99,
                        header_timeout=1.5, body_timeout=2.5, max_connections=11, allowed_hosts=["a.example", "b.example"],
                        results_dir="out/", device="cpu", dtype="bfloat16", max_length=64, batch_size=3, compile=False)
    seen.clear()
    cli.main(["serve", "--model", "m"])
    defaults = {name: p.default for name, p in inspect.signature(original).parameters.items() if name != "model"}
    assert {k: v for k, v in seen.items() if k != "model"} == defaults


def test_a_big_request_is_scored_in_pieces_taking_turns_with_small_ones(local):
    """A request bigger than max_batch_pairs is cut into pieces of whole texts; a small request
    that arrives meanwhile is scored after one piece, and the big one's results are still exact."""
    from nspzero.serve import create_app

    order = []

    class Recording:
        name = local.scorer.name
        tokenizer, max_length = local.scorer.tokenizer, local.scorer.max_length  # preprocess checks the labels

        def score(self, pairs, **kwargs):
            order.append(sorted({p.second for p in pairs}))
            time.sleep(0.2)  # a piece takes a while (as a real one does): the small request arrives meanwhile
            return local.scorer.score(pairs, **kwargs)

    app = create_app(NSPClassifier(Recording()), window_ms=0, max_batch_pairs=4)
    big = {"texts": [f"今天比赛{i}" for i in range(6)], "labels": ["体育", "财经"]}   # 12 pairs: 3 pieces of 2 texts
    small = {"texts": ["市场上涨"], "labels": ["体育", "财经"]}

    async def go():
        async with _asgi_client(app) as client:
            big_response = asyncio.ensure_future(client.post("/classify", json=big))
            await asyncio.sleep(0)
            while not order:  # the big request's first piece is being scored
                await asyncio.sleep(0.001)
            small_response = await client.post("/classify", json=small)
            responses = (await big_response, small_response)
            await app.state.batcher.stop()
            return responses

    big_r, small_r = asyncio.run(go())
    assert big_r.status_code == 200 and small_r.status_code == 200
    assert len(order) >= 3 and all(len(texts) <= 2 for texts in order)
    small_at = next(i for i, texts in enumerate(order) if "市场上涨" in texts)
    assert small_at < len(order) - 1  # answered before the big request's last piece
    for g, e in zip(big_r.json()["results"], local.classify(big["texts"], big["labels"])):
        assert_same(g, e)


def test_too_many_pairs_is_413_naming_the_option(local):
    from fastapi.testclient import TestClient

    from nspzero.serve import create_app

    with TestClient(create_app(local, max_pairs=5)) as client:
        r = client.post("/classify", json={"texts": ["a", "b", "c"], "labels": ["体育", "财经"]})
    assert r.status_code == 413 and "--max-pairs" in r.json()["detail"]


def test_serve_on_a_port_in_use_is_one_line(model_dir, capsys):
    import socket

    from conftest import run_cli

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        code, _, err = run_cli(["serve", "-m", model_dir, "--port", str(port)], capsys)
    assert code == 1 and "cannot serve on 127.0.0.1" in err and len(err.strip().splitlines()) == 1, err
    code, _, err = run_cli(["serve", "-m", model_dir, "--host", "no-such-host.invalid"], capsys)
    assert code == 2 and "is not an address of this machine" in err, err


# ---- the server's shape: work off the loop, sizes before rendering, browser protections -------------
class _Instant:
    """The local scorer's tokenizer and max_length, with instant constant scores: what is left to
    take time is the request's preparation (prompts, tokens, windows)."""

    def __init__(self, scorer):
        self.tokenizer, self.max_length, self.name = scorer.tokenizer, scorer.max_length, scorer.name

    def score(self, pairs, **kwargs):
        import numpy as np

        return np.full(len(pairs), 0.5)


def test_health_answers_within_half_a_second_while_a_big_request_is_prepared(local):
    """Windows and prompts are made off the event loop: a within-limits request that takes seconds
    to prepare holds neither /health nor anything else."""
    from nspzero.serve import create_app

    app = create_app(NSPClassifier(_Instant(local.scorer)), max_texts=64, max_text_chars=20000, max_pairs=10**7)
    body = {"texts": ["今天比赛球队赢了。" * 2000] * 16, "labels": ["体育", "财经"], "long_text": "chunk"}

    async def go():
        async with _asgi_client(app) as client:
            big = asyncio.ensure_future(client.post("/classify", json=body))
            await asyncio.sleep(0.3)  # the big request is admitted and being prepared
            start = time.perf_counter()
            health = await client.get("/health")
            took, still_running = time.perf_counter() - start, not big.done()
            response = await big
            await app.state.batcher.stop()
            return health, took, still_running, response

    health, took, still_running, response = asyncio.run(go())
    assert health.status_code == 200 and response.status_code == 200
    assert still_running, "the big request finished too soon to show anything"
    assert took < 0.5, f"/health took {took:.2f} s while a request was prepared"


def test_an_oversized_request_is_413_before_anything_is_rendered(local, monkeypatch):
    """Pairs are counted from the body's sizes: a request over --max-pairs is refused before a
    prompt is rendered or a text tokenized, within 100 ms."""
    import json

    from fastapi.testclient import TestClient

    from nspzero.serve import create_app, routers

    monkeypatch.setattr(routers, "prepare", lambda *a: pytest.fail("the request was prepared before its 413"))
    body = {"texts": [f"今天{i}" for i in range(256)],
            "labels_per_text": [[f"类别{i}-{j}" for j in range(256)] for i in range(256)]}
    with TestClient(create_app(local, max_pairs=10000)) as client:
        client.get("/health")
        raw = json.dumps(body).encode()  # encoded before the clock starts: the server's time is measured
        start = time.perf_counter()
        r = client.post("/classify", content=raw, headers={"content-type": "application/json"})
        took = time.perf_counter() - start
    assert r.status_code == 413 and r.json()["field"] == "texts" and "at least 65536" in r.text
    assert "--max-pairs" in r.json()["detail"] and took < 0.1, (took, r.text[:200])


def test_the_hugging_face_zero_shot_payload_is_answered_like_the_inference_api(local):
    from fastapi.testclient import TestClient

    from nspzero.serve import create_app

    params = {"candidate_labels": "体育,财经,科技", "hypothesis_template": "这是一则{}新闻"}
    with TestClient(create_app(local)) as client:
        one = client.post("/", json={"inputs": TEXTS[0], "parameters": params, "options": {"wait_for_model": True}})
        many = client.post("/", json={"inputs": TEXTS[:2], "parameters": {**params, "normalize": True}})
        bad = client.post("/", json={"inputs": TEXTS[0], "parameters": {"candidate_labels": ["体育", "体育"]}})
        single = client.post("/", json={"inputs": TEXTS[0], "parameters": {"candidate_labels": ["体育"]}})
        typo = client.post("/", json={"inputs": TEXTS[0], "parameters": {**params, "multi_labels": True}})
    want = local(TEXTS[0], ["体育", "财经", "科技"], hypothesis_template="这是一则{}新闻")
    assert one.status_code == 200 and one.json()["sequence"] == TEXTS[0] and one.json()["labels"] == want["labels"]
    assert max(abs(a - b) for a, b in zip(one.json()["scores"], want["scores"])) <= 1e-5
    answers = many.json()
    assert [a["sequence"] for a in answers] == TEXTS[:2] and abs(sum(answers[0]["scores"]) - 1) < 1e-6
    assert bad.status_code == 422 and bad.json()["field"] == "parameters.candidate_labels"
    # one candidate is answered, as the Inference API answers it: that label, its own P(IsNext)
    own = local.classify(TEXTS[0], ["体育"]).scores["体育"]
    assert single.status_code == 200 and single.json()["labels"] == ["体育"]
    assert abs(single.json()["scores"][0] - own) <= 1e-6
    assert typo.status_code == 422 and typo.json()["field"] == "parameters" and "multi_labels" in typo.json()["detail"]


def test_422_never_echoes_a_huge_input(local):
    from fastapi.testclient import TestClient

    from nspzero.serve import create_app

    with TestClient(create_app(local)) as client:
        r = client.post("/classify", json={"texts": ["今天"], "labels": ["体育", "财经"], "prompt": ["x" * 10**6]})
    assert r.status_code == 422 and r.json()["field"] == "prompt" and len(r.content) < 500, r.text[:300]


def test_served_html_forbids_inline_script_and_the_report_is_rendered_once(local, tmp_path, monkeypatch):
    import json

    from fastapi.testclient import TestClient

    from nspzero import web
    from nspzero.reports import html as report_html
    from nspzero.serve import create_app

    (tmp_path / "results.json").write_text(json.dumps({"model": "tiny", "settings": {}, "tasks": {}}), encoding="utf-8")
    renders = []
    monkeypatch.setattr(report_html, "render_report_html", lambda folder: renders.append(folder) or "<p>report</p>")
    web._rendered.cache_clear()
    with TestClient(create_app(local, results_dir=str(tmp_path))) as client:
        pages = [client.get(path) for path in ("/", "/report", "/report", "/docs", "/redoc")]
    assert [p.status_code for p in pages] == [200] * 5 and len(renders) == 1
    for page in pages[:3]:
        policy = page.headers["content-security-policy"]
        assert "script-src 'self';" in policy and "unsafe-inline" not in policy.split("script-src")[1].split(";")[0]
    docs_policy = pages[3].headers["content-security-policy"]
    assert "'sha256-" in docs_policy and "'unsafe-inline'" not in docs_policy.split(";")[1]


def test_only_allowed_hosts_are_answered(local):
    """Against DNS rebinding: a loopback server answers its loopback names only."""
    from fastapi.testclient import TestClient

    from nspzero.serve import create_app
    from nspzero.serve.security import LOOPBACK_HOSTS

    with TestClient(create_app(local, allowed_hosts=LOOPBACK_HOSTS)) as client:
        status = {host: client.get("/health", headers={"host": host}).status_code
                  for host in ("localhost:8000", "127.0.0.1:8000", "[::1]:8000", "LOCALHOST",
                               "attacker.example:8000", "127.0.0.1.attacker.example", "")}
        refused = client.get("/health", headers={"host": "attacker.example"})
    assert status == {"localhost:8000": 200, "127.0.0.1:8000": 200, "[::1]:8000": 200, "LOCALHOST": 200,
                      "attacker.example:8000": 400, "127.0.0.1.attacker.example": 400, "": 400}
    assert "--allowed-hosts attacker.example" in refused.json()["detail"]


def test_run_server_defaults_to_loopback_hosts_fits_the_fd_limit_and_never_compiles(model_dir, monkeypatch):
    import resource

    import uvicorn
    from fastapi.testclient import TestClient

    from nspzero import serve

    seen = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: seen.update(app=app, **kw))
    serve.run_server(model_dir, port=0, device="cpu", max_connections=10**6)
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    assert seen["limit_concurrency"] < soft
    with TestClient(seen["app"]) as client:
        assert client.get("/health", headers={"host": "evil.example"}).status_code == 400
        assert client.get("/health", headers={"host": "localhost:8000"}).status_code == 200
    with pytest.raises(UsageError, match="never compiles"):
        serve.run_server(model_dir, port=0, device="cpu", compile="auto")


def test_max_connections_turns_extra_connections_away_with_503(local):
    import threading

    import uvicorn

    from nspzero.serve import create_app
    from nspzero.serve.app import uvicorn_options

    port = _free_port()
    options = uvicorn_options("127.0.0.1", port, header_timeout=10, max_connections=2)
    server = uvicorn.Server(uvicorn.Config(create_app(local), **{**options, "log_level": "warning"}))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    held = []
    try:
        while not server.started:
            time.sleep(0.05)
        assert httpx.get(f"http://127.0.0.1:{port}/health").status_code == 200
        for _ in range(2):  # two idle connections take the two places
            held.append(socket.create_connection(("127.0.0.1", port)))
        time.sleep(0.2)
        r = httpx.get(f"http://127.0.0.1:{port}/health")
        assert r.status_code == 503
    finally:
        for s in held:
            s.close()
        server.should_exit = True
        thread.join(timeout=10)


def test_without_fastapi_offline_docs_fall_back_to_the_cdn_and_say_so(local, monkeypatch, caplog):
    from fastapi.testclient import TestClient

    from nspzero.extras import install_hint
    from nspzero.serve import app as serve_app, create_app

    monkeypatch.setitem(sys.modules, "fastapi_offline", None)
    with caplog.at_level("WARNING", logger="nspzero"):
        app = create_app(local)
    assert [r.getMessage() for r in caplog.records if r.name == "nspzero"] == [serve_app.NO_OFFLINE_DOCS % install_hint("serve")]
    with TestClient(app) as c:
        assert "cdn.jsdelivr.net" in c.get("/docs").text


def test_cli_serve_takes_allowed_hosts_and_refuses_compile(monkeypatch, model_dir, capsys):
    from conftest import run_cli

    from nspzero import cli, serve

    seen = {}
    monkeypatch.setattr(serve, "run_server", lambda model, **kw: seen.update(model=model, **kw))
    cli.main(["serve", "--model", "m", "--allowed-hosts", "nsp.example, localhost"])
    assert seen["allowed_hosts"] == ["nsp.example", "localhost"]
    monkeypatch.undo()
    code, _, err = run_cli(["serve", "-m", model_dir, "--compile", "on"], capsys)
    assert code == 2 and "never compiles" in err and len(err.strip().splitlines()) == 1, err


@pytest.mark.parametrize("texts", [{"texts": []}, {}, {"text": None}])
def test_a_request_without_texts_is_refused_before_its_prompts_are_rendered(local, monkeypatch, texts):
    """No texts means no pairs to count: the texts are checked first, so 256 labels × 100 templates
    are never rendered for a request that is refused anyway."""
    from fastapi.testclient import TestClient

    from nspzero.serve import create_app, routers

    monkeypatch.setattr(routers, "prepare", lambda *a: pytest.fail("a request without texts was prepared"))
    body = {**texts, "labels": [f"类别{i}" for i in range(256)], "template": [f"模板{i}{{label}}" for i in range(100)]}
    with TestClient(create_app(local, max_pairs=10000)) as client:
        r = client.post("/classify", json=body)
    assert r.status_code == 422 and r.json()["field"] == "texts" and "texts" in r.json()["detail"], r.text


def test_the_prompts_alone_are_bounded_by_max_pairs(local):
    from fastapi.testclient import TestClient

    from nspzero.serve import create_app

    body = {"texts": ["今天"], "labels": [f"类别{i}" for i in range(200)], "template": [f"模板{i}{{label}}" for i in range(60)]}
    with TestClient(create_app(local, max_pairs=10000)) as client:
        r = client.post("/classify", json=body)
    assert r.status_code == 413 and r.json()["field"] == "labels", r.text
    assert r.json()["detail"].startswith("too many prompts: labels × templates: 12000; the server accepts at most "
                                         "10000 pairs per request"), r.text


def test_unknown_paths_and_methods_answer_the_same_json_shape(local):
    from fastapi.testclient import TestClient

    from nspzero.serve import create_app

    with TestClient(create_app(local)) as client:
        missing, wrong_method = client.get("/no-such-page"), client.get("/classify")
    assert missing.status_code == 404 and missing.json() == {"detail": "Not Found", "field": None}
    assert wrong_method.status_code == 405 and wrong_method.json() == {"detail": "Method Not Allowed", "field": None}
    assert wrong_method.headers["allow"] == "POST"


def test_an_unexpected_error_is_logged_with_its_traceback_and_not_shown(local, monkeypatch, nspzero_caplog):
    from fastapi.testclient import TestClient

    from nspzero.serve import create_app, routers

    def broken(*args):
        raise RuntimeError("secret /srv/model/path")

    monkeypatch.setattr(routers, "prepare", broken)
    with TestClient(create_app(local), raise_server_exceptions=False) as client:
        r = client.post("/classify", json={"texts": ["今天"], "labels": ["体育", "财经"]})
    assert r.status_code == 500 and r.json() == {"detail": "request failed: an internal error (the server log has the "
                                                           "details); the server keeps serving", "field": None}
    logged = [r for r in nspzero_caplog.records if r.getMessage() == "request failed"]
    assert logged and logged[0].exc_info and "secret /srv/model/path" in nspzero_caplog.text


HUGE = "x" * 30_000


@pytest.mark.parametrize("path, body", [
    ("/classify", {"texts": ["今天"], "labels": ["体育", "财经"], "template": HUGE + "{bad}"}),
    ("/classify", {"texts": ["今天"], "labels": ["体育", "财经"], "template": HUGE}),
    ("/classify", {"texts": ["今天"], "labels": ["体育", "财经"], "placement": HUGE}),
    ("/classify", {"texts": ["今天"], "labels": ["体育", HUGE]}),
    ("/classify", {"texts": ["今天"], "labels": {"体育": HUGE + "|" + HUGE, "财经": 3}}),
    ("/classify", {"texts": ["今天"], "labels": ["体育", "财经"], HUGE: 1}),
    ("/classify", {"texts": ["今天"], "labels": ["体育", "财经"], "prompt": HUGE}),
    ("/classify", {"texts": [HUGE * 0 + "\x00"], "labels": ["体育", "财经"]}),
    ("/", {"inputs": "今天", "parameters": {"candidate_labels": ["体育", "财经"], "hypothesis_template": HUGE}}),
    ("/", {"inputs": "今天", "parameters": {"candidate_labels": HUGE + "," + HUGE}}),
    ("/", {"inputs": "今天", "parameters": {"candidate_labels": ["体育", "财经"], HUGE: True}}),
])
def test_an_error_never_echoes_an_input_whole(local, path, body):
    """Class: error messages built around an input (a template, a label, an unknown field name, a
    prompt name) in /classify and the Hugging Face payload: one short line, the field named once."""
    from fastapi.testclient import TestClient

    from nspzero.serve import create_app

    with TestClient(create_app(local)) as client:
        r = client.post(path, json=body)
    assert r.status_code == 422 and len(r.content) < 1500, (r.status_code, r.text[:300])
    detail, field = r.json()["detail"], r.json()["field"]
    assert "\n" not in detail and (field is None or len(field) <= 40)
    assert "x" * 200 not in r.text

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
    assert r.status_code == 200 and r.json() == {"status": "ok", "model": model_dir}
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


BAD = {
    "empty texts list": ({"texts": [], "labels": ["体育", "财经"]}, 422, "no texts"),
    "empty text": ({"texts": ["今天", " "], "labels": ["体育", "财经"]}, 422, "texts[1] is empty"),
    "empty single text": ({"text": "", "labels": ["体育", "财经"]}, 422, "is empty"),
    "no texts at all": ({"labels": ["体育", "财经"]}, 422, "no texts"),
    "text and texts": ({"text": "今天", "texts": ["今天"], "labels": ["体育", "财经"]}, 422, "not both"),
    "non-string text": ({"texts": [1], "labels": ["体育", "财经"]}, 422, "texts[0]"),
    "one label": ({"texts": ["今天"], "labels": ["体育"]}, 422, "only one label"),
    "duplicate labels": ({"texts": ["今天"], "labels": ["体育", "体育"]}, 422, "given twice"),
    "labels as one string": ({"texts": ["今天"], "labels": "体育,财经"}, 422, "split it"),
    "non-string label word": ({"texts": ["今天"], "labels": {"体育": 1, "财经": "钱"}}, 422, "verbalization"),
    "no labels": ({"texts": ["今天"]}, 422, "no labels"),
    "attribute template": ({"texts": ["今天"], "labels": ["体育", "财经"], "template": "{label.__class__}"}, 422,
                           "{label.__class__} is not allowed"),
    "template without label": ({"texts": ["今天"], "labels": ["体育", "财经"], "template": "新闻"}, 422,
                               "has no {label} placeholder"),
    "unknown placement": ({"texts": ["今天"], "labels": ["体育", "财经"], "placement": "middle"}, 422,
                          "placement must be"),
    "threshold out of range": ({"texts": ["今天"], "labels": ["体育"], "multi_label": True, "threshold": 2}, 422,
                               "threshold must be"),
    "unknown prompt set": ({"texts": ["今天"], "prompt": "tnewz"}, 422, "unknown prompt set 'tnewz'"),
    "unknown prompt variant": ({"texts": ["今天"], "prompt": "tnews:nope"}, 422, "no variant 'nope'"),
    "label not in prompt": ({"texts": ["今天"], "prompt": "tnews", "labels": ["火星"]}, 422, "not in prompt"),
    "prompt file path": ({"texts": ["今天"], "prompt": "/etc/passwd.yaml"}, 422, "not files"),
    "unknown field": ({"texts": ["今天"], "labels": ["体育", "财经"], "lables": 1}, 422, "lables"),
    "too many texts": ({"texts": ["今天"] * (MAX_TEXTS + 1), "labels": ["体育", "财经"]}, 413, "--max-texts"),
    "too many labels": ({"texts": ["今天"], "labels": [f"类{i}" for i in range(MAX_LABELS + 1)]}, 413,
                        "--max-labels"),
    "oversized text": ({"texts": ["今天", "好" * (MAX_TEXT_CHARS + 1)], "labels": ["体育", "财经"]}, 413,
                       "--max-text-chars"),
    "per-row labels, one set short": ({"texts": ["今天", "东西"], "labels": [["体育", "财经"]]}, 422,
                                      "one label set per text is needed, got 1 label sets for 2 texts"),
    "per-row labels, a bad set": ({"texts": ["今天", "东西"], "labels": [["体育", "财经"], ["好"]]}, 422,
                                  "labels[1]: only one label ('好') given"),
    "per-row labels, too many": ({"texts": ["今天", "东西"], "labels": [["体育", "财经"],
                                                                      [f"类{i}" for i in range(MAX_LABELS + 1)]]},
                                 413, "too many labels in labels[1]"),
    "per-row labels, two for one text": ({"text": "今天", "labels": [["体育", "财经"], ["好", "差"]]}, 422,
                                         "got 2 label sets for 1 texts"),
    "per-row labels, all null": ({"texts": ["今天", "东西"], "labels": [None, None]}, 422, "texts[0] has no labels"),
    "bad long_text": ({"texts": ["今天"], "labels": ["体育", "财经"], "long_text": "split"}, 422,
                      "long_text must be one of truncate, chunk"),
    "bad top_k": ({"texts": ["今天"], "labels": ["体育", "财经"], "top_k": 0}, 422, "top_k must be an integer ≥ 1"),
}


@pytest.mark.parametrize("body, status, needle", list(BAD.values()), ids=list(BAD))
def test_bad_requests_get_a_clear_error_and_the_server_keeps_serving(server, body, status, needle):
    r = _post(server, body)
    assert r.status_code == status, r.text
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


def test_concurrent_requests_are_scored_in_one_call(local):
    from nspzero.serve import create_app

    calls = []
    real = local.scorer.score

    class Counting:
        name = local.scorer.name

        def score(self, pairs, **kwargs):
            calls.append(len(pairs))
            return real(pairs, **kwargs)

    app = create_app(NSPClassifier(Counting()), window_ms=200)
    bodies = [{"texts": TEXTS[i:] or TEXTS, "labels": ["体育", "财经"]} for i in range(4)]

    async def go():
        async with _asgi_client(app) as client:
            responses = await asyncio.gather(*(client.post("/classify", json=b) for b in bodies))
            await app.state.batcher.stop()
            return responses

    responses = asyncio.run(go())
    assert calls == [sum(len(b["texts"]) * 2 for b in bodies)]  # ONE score() call for all four requests
    for b, r in zip(bodies, responses):
        assert r.status_code == 200
        for g, e in zip(r.json()["results"], local.classify(b["texts"], b["labels"])):
            assert_same(g, e)


def test_a_failing_request_fails_alone_even_in_a_shared_batch(local):
    from nspzero.serve import create_app

    class Flaky:
        name = local.scorer.name

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
    assert bad.status_code == 500 and "scoring failed: RuntimeError: boom" in bad.json()["detail"]
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

    from nspzero import cli, html_report, serve

    seen, original = {}, serve.run_server
    monkeypatch.setattr(serve, "run_server", lambda model, **kw: seen.update(model=model, **kw))
    monkeypatch.setattr(html_report, "render_report", lambda folder: None)
    cli.main(["serve", "--model", "m", "--host", "0.0.0.0", "--port", "8123", "--max-texts", "5", "--max-labels", "6",
              "--max-text-chars", "7", "--max-pairs", "99", "--header-timeout", "1.5", "--body-timeout", "2.5",
              "--max-connections", "11", "--results", "out/", "--device", "cpu", "--dtype", "bfloat16",
              "--max-length", "64", "--batch-size", "3", "--compile", "on"])
    assert seen == dict(model="m", host="0.0.0.0", port=8123, max_texts=5, max_labels=6, max_text_chars=7, max_pairs=99,
                        header_timeout=1.5, body_timeout=2.5, max_connections=11, results_dir="out/", device="cpu",
                        dtype="bfloat16", max_length=64, batch_size=3, compile=True)
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

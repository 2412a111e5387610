"""The page at / of `nspzero serve` (nspzero/web): its endpoints in-process, then the page itself in
a real Chromium against a real server, checked against direct POST /classify calls."""
from __future__ import annotations

import csv
import io
import json

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")
httpx = pytest.importorskip("httpx")

from browser_fixture import RequestLog, chromium, serve_app  # noqa: E402
from nspzero.web import ASSETS, asset_text, prompt_catalogue  # noqa: E402
from nspzero.prompt_sets import load_prompt  # noqa: E402

MAX_TEXTS = 3  # small, so a 7-line file goes out in three requests
TEXTS = ["今天比赛球队赢了", "市场上涨公司发布手机"]
LABELS = ["体育", "财经", "科技"]
TEMPLATE = "这是一则{label}新闻"


@pytest.fixture(scope="module")
def server(decisive_model_dir):
    """One server for the module: create_app on the tiny model, uvicorn in a thread."""
    from nspzero import NSPClassifier
    from nspzero.serve import create_app

    app = create_app(NSPClassifier.from_pretrained(decisive_model_dir, device="cpu"), max_texts=MAX_TEXTS,
                     max_labels=20, max_text_chars=200)
    with serve_app(app) as url:
        yield url


class Client:
    """httpx against the live server, spelled like a TestClient."""

    def __init__(self, url):
        self.url = url

    def get(self, path):
        return httpx.get(self.url + path, timeout=30)

    def post(self, path, **kwargs):
        return httpx.post(self.url + path, timeout=60, **kwargs)


@pytest.fixture(scope="module")
def client(server):
    return Client(server)


# ---------------------------------------------------------------- the endpoints (no browser)

def test_page_assets_are_served_from_the_package(client):
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    for name in ("app.js", "style.css"):
        r = client.get(f"/static/{name}")
        assert r.status_code == 200 and r.headers["content-type"] == ASSETS[name]
        assert f"static/{name}" in page.text
    assert client.get("/static/index.html").status_code == 404
    assert client.get("/static/../serve.py").status_code == 404
    for text in (page.text, client.get("/static/app.js").text, client.get("/static/style.css").text):
        assert "http://" not in text and "https://" not in text  # nothing to fetch from elsewhere
    assert 5_000 < sum(len(asset_text(name).encode()) for name in ASSETS) < 60_000  # the page's weight


def test_every_test_id_the_issue_lists_is_on_the_page(client):
    page = client.get("/").text + client.get("/static/app.js").text
    for testid in ("text", "labels", "prompt", "template", "placement", "multi-label", "threshold", "classify",
                   "error", "top-label", "result-row"):
        assert f'data-testid="{testid}"' in page or f'"data-testid": "{testid}"' in page, testid


def test_prompts_lists_label_prompt_sets_with_their_variants(client):
    from nspzero.prompt_sets import load_prompt

    body = client.get("/prompts").json()
    sets = {s["name"]: s for s in body["prompt_sets"]}
    assert {"tnews", "eprstmt", "iflytek", "csldcp"} <= set(sets)
    assert not {"ocnli", "csl", "chid", "cluewsc", "bustm"} & set(sets)  # sentence-pair prompts can't classify
    tnews = sets["tnews"]
    assert tnews["default"] == load_prompt("tnews").name
    variant = {v["key"]: v for v in tnews["variants"]}["tnews:news-2021"]
    expected = load_prompt("tnews:news-2021")
    assert variant["templates"] == list(expected.templates) and variant["placement"] == expected.placement
    assert variant["labels"] == {k: list(w) for k, w in expected.words.items()}
    assert body["prompt_sets"] == prompt_catalogue()
    assert "/prompts" in client.get("/openapi.json").json()["paths"]


def test_the_prompt_set_list_opens_on_the_chinese_sets(client):
    """The default model is Chinese: FewCLUE's sets come before the English ones (agnews, sst2...), each
    group by name, so the list does not open on sets whose labels are ids like "0"."""
    names = [s["name"] for s in client.get("/prompts").json()["prompt_sets"]]
    chinese = [n for n in names if n in ("csldcp", "eprstmt", "iflytek", "tnews")]
    assert names[:len(chinese)] == sorted(chinese) == ["csldcp", "eprstmt", "iflytek", "tnews"]
    assert names[len(chinese):] == sorted(names[len(chinese):]) and "agnews" in names


def test_limits_are_the_ones_classify_enforces(client):
    assert client.get("/limits").json() == {"max_texts": MAX_TEXTS, "max_labels": 20, "max_text_chars": 200,
                                            "max_pairs": 65536}
    r = client.post("/classify", json={"texts": ["体育"] * (MAX_TEXTS + 1), "labels": LABELS})
    assert r.status_code == 413


def test_docs_use_local_assets(client):
    docs = client.get("/docs").text
    assert "cdn.jsdelivr" not in docs and "/docs-static/swagger-ui-bundle.js" in docs
    assert '"validatorUrl": null' in docs
    assert client.get("/docs-static/swagger-ui-bundle.js").status_code == 200
    assert client.get("/docs-static/swagger-ui.css").status_code == 200
    redoc = client.get("/redoc").text
    assert "/docs-static/redoc.standalone.js" in redoc and "fonts.googleapis" not in redoc
    assert client.get("/report").status_code == 404  # only with an eval folder (mount_web results_dir=)


# ---------------------------------------------------------------- in Chromium

@pytest.fixture(scope="module")
def browser():
    with chromium() as b:
        yield b


@pytest.fixture(scope="module")
def shots(tmp_path_factory):
    return tmp_path_factory.mktemp("web-screenshots")


@pytest.fixture
def page(browser, server):
    """A fresh page on `/`; after the test, no request may have left 127.0.0.1."""
    # bypass_csp: Playwright's wait_for_function evaluates strings, which the server's CSP forbids;
    # the page under its CSP is tried in test_the_page_works_under_its_content_security_policy
    context = browser.new_context(viewport={"width": 1100, "height": 900}, accept_downloads=True, bypass_csp=True)
    requests = RequestLog(context)
    errors: list[str] = []
    p = context.new_page()
    p.on("pageerror", lambda exc: errors.append(str(exc)))
    p.goto(server + "/")
    p.wait_for_function("document.querySelectorAll('#prompt option').length > 1")  # /prompts loaded
    yield p
    context.close()
    assert requests.external() == [], requests.external()
    assert errors == []


def api(server, body):
    r = httpx.post(f"{server}/classify", json=body, timeout=60)
    assert r.status_code == 200, r.text
    return r.json()["results"]


def shown(page):
    """Per result card: [(data-label, data-score)] in the order shown, and its top label(s)."""
    cards = []
    for card in page.get_by_test_id("result").all():
        rows = [(r.get_attribute("data-label"), r.get_attribute("data-score"))
                for r in card.get_by_test_id("result-row").all()]
        cards.append((rows, [t.get_attribute("data-label") for t in card.get_by_test_id("top-label").all()]))
    return cards


def assert_page_equals_api(cards, results):
    assert len(cards) == len(results)
    for (rows, tops), result in zip(cards, results):
        assert [label for label, _ in rows] == list(result["scores"])  # every label, best first
        for label, score in rows:
            assert float(score) == result["scores"][label]  # the API's number, not a rounding of it
        assert tops == (result["label"] if isinstance(result["label"], list) else [result["label"]])


def classify(page):
    page.get_by_test_id("classify").click()
    page.wait_for_function("!document.getElementById('classify').disabled")


def test_typed_labels_show_the_api_scores_as_bars(page, server, shots):
    page.get_by_test_id("text").fill("\n".join(TEXTS) + "\n\n")
    page.get_by_test_id("labels").fill("体育，财经, 科技")  # a Chinese comma works too
    page.get_by_test_id("template").fill(TEMPLATE)
    classify(page)
    assert page.get_by_test_id("error").is_hidden()
    results = api(server, {"texts": TEXTS, "labels": LABELS, "template": TEMPLATE})
    assert_page_equals_api(shown(page), results)
    # the top row is highlighted and its bar is the longest
    top = page.get_by_test_id("result-row").first
    assert "top" in top.get_attribute("class")
    assert json.loads(page.get_by_test_id("json").text_content()) == {"results": results}
    assert "2 texts classified in" in page.get_by_test_id("timing").inner_text()
    page.screenshot(path=str(shots / "page-typed-labels.png"), full_page=True)


def test_long_texts_can_be_read_in_windows(page, server):
    """The page sends long_text/aggregate (the server's windows are tested in test_request and
    test_pipeline; this server's texts are too short for more than one window)."""
    page.get_by_test_id("text").fill(TEXTS[0])
    page.get_by_test_id("labels").fill("体育,财经")
    page.get_by_test_id("template").fill(TEMPLATE)
    page.get_by_test_id("long-text").select_option("chunk-mean")
    with page.expect_request(lambda r: r.url.endswith("/classify") and r.method == "POST") as sent:
        classify(page)
    body = json.loads(sent.value.post_data)
    assert (body["long_text"], body["aggregate"]) == ("chunk", "mean")
    assert_page_equals_api(shown(page), api(server, body))


def test_a_prompt_set_and_placement_and_multi_label(page, server, shots):
    page.get_by_test_id("text").fill(TEXTS[0])
    page.get_by_test_id("prompt").select_option("tnews:news-2021")
    assert page.get_by_test_id("template").input_value() == ""  # the prompt's own templates
    assert "news_sports→体育" in page.get_by_test_id("prompt-info").inner_text()
    classify(page)
    results = api(server, {"texts": [TEXTS[0]], "prompt": "tnews:news-2021"})
    assert len(results[0]["scores"]) == 15
    assert_page_equals_api(shown(page), results)
    shown_names = page.locator(".bar-label").all_inner_texts()  # a label id is shown by its word
    assert "体育 (news_sports)" in shown_names and "news_sports" not in shown_names
    top = results[0]["label"]
    assert page.get_by_test_id("top-label").first.inner_text() == \
        f"{load_prompt('tnews:news-2021').words[top][0]} ({top})"
    page.screenshot(path=str(shots / "page-prompt-set.png"), full_page=True)

    page.get_by_test_id("labels").fill("news_sports, news_finance, news_tech")
    page.get_by_test_id("placement").select_option("suffix")
    page.get_by_test_id("multi-label").check()
    page.get_by_test_id("threshold").fill("0.3")
    classify(page)
    results = api(server, {"texts": [TEXTS[0]], "prompt": "tnews:news-2021", "placement": "suffix",
                           "labels": ["news_sports", "news_finance", "news_tech"], "multi_label": True,
                           "threshold": 0.3})
    assert isinstance(results[0]["label"], list)
    assert_page_equals_api(shown(page), results)


@pytest.mark.parametrize("field, fill, expected", [
    ("labels", {"labels": "体育,体育"}, "label '体育' is given twice"),
    ("template", {"template": "没有占位符"}, "has no {label} placeholder"),
    ("threshold", {"multi-label": True, "threshold": "1.5"}, "threshold must be a probability"),
    ("prompt", {"prompt": "tnews", "labels": "体育"}, "not in prompt tnews"),
])
def test_api_errors_show_inline_next_to_their_field(page, server, field, fill, expected, shots):
    page.get_by_test_id("text").fill(TEXTS[0])
    for testid, value in fill.items():
        if testid == "prompt":
            page.get_by_test_id(testid).select_option(value)
        elif value is True:
            page.get_by_test_id(testid).check()
        else:
            page.get_by_test_id(testid).fill(value)
    classify(page)
    error = page.get_by_test_id("error")
    assert error.is_visible() and expected in error.inner_text()
    holder = "labels" if field == "prompt" else field  # "labels X not in prompt": the labels field
    assert page.locator(f"#field-{holder} [data-testid=error]").count() == 1
    assert page.get_by_test_id(holder).get_attribute("aria-invalid") == "true"
    assert page.get_by_test_id("classify").is_enabled()  # the page is still usable
    if field == "labels":
        page.screenshot(path=str(shots / "page-inline-error.png"), full_page=True)
        page.get_by_test_id("labels").fill("体育, 财经")  # fixing it clears the error
        classify(page)
        assert error.is_hidden() and page.get_by_test_id("result-row").count() == 2


def test_a_file_is_classified_in_chunks_and_downloads_as_csv_and_jsonl(page, server, tmp_path, shots):
    texts = ["今天比赛球队赢了", '市场上涨，"公司"发布手机', "这次买的东西很差", "老师学生上学校", "电脑游戏玩家",
             "手机很好不错", "国际比赛"]
    source = tmp_path / "news.csv"
    with open(source, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "text"])
        writer.writerows([i, t] for i, t in enumerate(texts))
    page.get_by_test_id("mode-file").click()
    page.get_by_test_id("labels").fill(", ".join(LABELS))
    page.get_by_test_id("template").fill(TEMPLATE)
    page.get_by_test_id("file").set_input_files(str(source))
    page.wait_for_function("document.getElementById('file-info').textContent.includes('7 texts')")
    assert "3 requests" in page.get_by_test_id("file-info").inner_text()
    classify(page)
    assert page.get_by_test_id("error").is_hidden(), page.get_by_test_id("error").inner_text()
    assert page.get_by_test_id("file-row").count() == len(texts)
    expected = [r for start in range(0, len(texts), MAX_TEXTS)
                for r in api(server, {"texts": texts[start:start + MAX_TEXTS], "labels": LABELS, "template": TEMPLATE})]
    page.screenshot(path=str(shots / "page-file-mode.png"), full_page=True)

    with page.expect_download() as info:
        page.get_by_test_id("download-jsonl").click()
    jsonl = (tmp_path / "out.jsonl")
    info.value.save_as(jsonl)
    assert info.value.suggested_filename == "news.nspzero.jsonl"
    assert [json.loads(line) for line in jsonl.read_text(encoding="utf-8").splitlines()] == expected

    with page.expect_download() as info:
        page.get_by_test_id("download-csv").click()
    path = tmp_path / "out.csv"
    info.value.save_as(path)
    rows = list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8-sig"))))
    assert [r["text"] for r in rows] == texts and [r["line"] for r in rows] == [str(i) for i in range(2, 9)]
    for row, result in zip(rows, expected):
        assert row["label"] == result["label"]
        assert {label: float(row[label]) for label in LABELS} == result["scores"]


def test_a_bad_file_is_reported_at_the_file_field(page, tmp_path):
    source = tmp_path / "bad.jsonl"
    source.write_text('{"text": "今天比赛"}\n{"text": 3}\n', encoding="utf-8")
    page.get_by_test_id("mode-file").click()
    page.get_by_test_id("file").set_input_files(str(source))
    error = page.get_by_test_id("error")
    error.wait_for(state="visible")
    assert "bad.jsonl: line 2: field 'text' is not a string" in error.inner_text()
    assert page.locator("#field-file [data-testid=error]").count() == 1
    long = tmp_path / "long.txt"
    long.write_text("短\n" + "长" * 201 + "\n", encoding="utf-8")
    page.get_by_test_id("file").set_input_files(str(long))
    page.wait_for_function("document.getElementById('error').textContent.includes('line 2')")
    assert "at most 200" in error.inner_text()


@pytest.mark.parametrize("second, failure", [
    ('{"text": "今天比赛"}\n{"text": 3}\n', "line 2: field 'text' is not a string"),  # the file is refused
    ("今天比赛\n", "given twice"),  # the file reads, the request fails
])
def test_a_failed_upload_leaves_no_earlier_results_as_if_current(page, tmp_path, second, failure):
    """File A classified, then file B fails (to parse, or at the server): A's rows, JSON and downloads are gone,
    and only the error stands."""
    first = tmp_path / "a.txt"
    first.write_text("今天比赛球队赢了\n市场上涨\n", encoding="utf-8")
    page.get_by_test_id("mode-file").click()
    page.get_by_test_id("labels").fill(", ".join(LABELS))
    page.get_by_test_id("file").set_input_files(str(first))
    page.wait_for_function("document.getElementById('file-info').textContent.includes('2 texts')")
    classify(page)
    assert page.get_by_test_id("file-row").count() == 2
    bad = tmp_path / ("b.jsonl" if second.startswith("{") else "b.txt")
    bad.write_text(second, encoding="utf-8")
    if failure == "given twice":
        page.get_by_test_id("labels").fill("体育, 体育")
    page.get_by_test_id("file").set_input_files(str(bad))
    if failure == "given twice":
        page.wait_for_function("document.getElementById('file-info').textContent.includes('1 texts')")
        classify(page)
    page.wait_for_function("!document.getElementById('error').hidden")
    assert failure in page.get_by_test_id("error").inner_text()
    assert page.get_by_test_id("file-row").count() == 0 and page.get_by_test_id("download-csv").is_hidden()
    assert page.get_by_test_id("json").text_content() == ""


def test_the_page_works_under_its_content_security_policy(browser, server):
    """No inline script on the page: under the served CSP it loads its prompt sets and classifies,
    and the browser reports no violation."""
    context = browser.new_context()
    p = context.new_page()
    console: list[str] = []
    p.on("console", lambda msg: console.append(msg.text))
    p.goto(server + "/")
    p.locator("#prompt option").nth(1).wait_for(state="attached")
    p.get_by_test_id("text").fill(TEXTS[0])
    p.get_by_test_id("labels").fill("体育,财经")
    p.get_by_test_id("classify").click()
    p.get_by_test_id("result").first.wait_for()
    context.close()
    assert not [m for m in console if "Content Security Policy" in m], console


def test_docs_render_offline(browser, server, shots):
    context = browser.new_context()
    requests = RequestLog(context)
    p = context.new_page()
    p.goto(server + "/docs")
    p.locator(".swagger-ui .opblock-summary-path", has_text="/classify").first.wait_for(timeout=20_000)
    assert p.locator(".swagger-ui .opblock").count() >= 4  # /health, /classify, /prompts, /limits
    p.screenshot(path=str(shots / "docs.png"))
    context.close()
    assert requests.external() == []
    assert any("/docs-static/swagger-ui-bundle.js" in u for u in requests.urls)


def test_mount_web_can_show_an_eval_report(tmp_path):
    """`mount_web(app, results_dir=OUT)` (for `nspzero serve --results OUT`): GET /report, linked from /."""
    import fastapi
    from fastapi.testclient import TestClient

    from nspzero.web import mount_web

    (tmp_path / "results.json").write_text(json.dumps({
        "model": "tiny", "settings": {}, "tasks": {"eprstmt": {"accuracy": 0.5, "examples": 2, "type": "classification"}}}),
        encoding="utf-8")
    (tmp_path / "eprstmt.predictions.jsonl").write_text(
        '{"index": 0, "gold": "Positive", "prediction": "Positive", "scores": {"Positive": 0.9, "Negative": 0.1}}\n'
        '{"index": 1, "gold": "Negative", "prediction": "Positive", "scores": {"Positive": 0.8, "Negative": 0.3}}\n',
        encoding="utf-8")
    app = fastapi.FastAPI(docs_url=None, redoc_url=None)
    mount_web(app, results_dir=tmp_path)
    with TestClient(app) as c:
        page = c.get("/").text
        assert '<span id="report-link">' in page and 'href="report"' in page
        report = c.get("/report")
        assert report.status_code == 200 and "nspzero zero-shot eval" in report.text and "Positive" in report.text


def test_a_long_text_shows_folded_in_its_card(page, server):
    """A long text (the 200 characters this server takes) shows its first 160; the rest opens on a click."""
    long_text = (TEXTS[0] * 200)[:200]
    page.get_by_test_id("text").fill(long_text + "\n" + TEXTS[1])
    page.get_by_test_id("labels").fill("体育,财经")
    classify(page)
    assert page.get_by_test_id("error").is_hidden(), page.get_by_test_id("error").inner_text()
    folded, short = page.get_by_test_id("result-text").all()
    summary = folded.locator("summary")
    assert summary.inner_text() == long_text[:160] + "… (200 characters; show all)"
    assert folded.get_attribute("open") is None and short.inner_text() == TEXTS[1]
    closed_height = folded.bounding_box()["height"]
    summary.click()
    assert folded.get_attribute("open") == "" and long_text in folded.inner_text()
    assert folded.bounding_box()["height"] > closed_height


def test_a_random_weights_model_is_named_on_the_page_and_in_health(page, browser, client, tmp_path):
    """A `nspzero tiny-model` server says so in /health and above every answer on the page (its green
    "top label" badges mean nothing); the module's server, a model without the mark, shows no banner."""
    from nspzero import NSPClassifier
    from nspzero.serve import create_app
    from nspzero.tiny_model import write_tiny_model

    assert client.get("/health").json()["random_weights"] is False
    assert page.get_by_test_id("random-weights").is_hidden()
    tiny = write_tiny_model(tmp_path / "tiny")
    with serve_app(create_app(NSPClassifier.from_pretrained(str(tiny), device="cpu"))) as url:
        assert httpx.get(url + "/health", timeout=30).json()["random_weights"] is True
        context = browser.new_context(bypass_csp=True)
        try:
            p = context.new_page()
            p.goto(url + "/")
            p.wait_for_function("document.querySelectorAll('#prompt option').length > 1")
            assert p.get_by_test_id("random-weights").is_visible()
            assert "RANDOM weights" in p.get_by_test_id("random-weights").inner_text()
            classify(p)
            assert "random weights, meaningless" in p.get_by_test_id("result").first.inner_text()
        finally:
            context.close()


def test_one_label_is_answered_on_the_page_as_by_the_api(page, server):
    """One candidate label (no multi-label): the page shows the API's answer, that label with its own P(IsNext)."""
    page.get_by_test_id("text").fill(TEXTS[0])
    page.get_by_test_id("labels").fill("体育")
    page.get_by_test_id("template").fill(TEMPLATE)
    classify(page)
    assert page.get_by_test_id("error").is_hidden(), page.get_by_test_id("error").inner_text()
    results = api(server, {"texts": [TEXTS[0]], "labels": ["体育"], "template": TEMPLATE})
    assert results[0]["label"] == "体育" and list(results[0]["scores"]) == ["体育"]
    assert_page_equals_api(shown(page), results)

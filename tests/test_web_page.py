"""The page at / (nspzero/web/app.js) tried as a new user would, in a real Chromium against a real
server: recovering from an upload error, coming back from a prompt set, stale answers, CSV downloads
that a spreadsheet would run, and errors placed by the `field` of a 422 answer."""
from __future__ import annotations

import csv
import io
import json

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")
pytest.importorskip("httpx")

from test_web import LABELS, TEMPLATE, TEXTS, browser, classify, page, server  # noqa: E402,F401 (fixtures)


def write_csv(path, header, texts):
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", header])
        writer.writerows([i, t] for i, t in enumerate(texts))
    return path


def test_after_an_upload_error_the_page_recovers_at_the_first_click(page, tmp_path):
    source = write_csv(tmp_path / "news.csv", "sentence", TEXTS)  # no column "text"
    page.get_by_test_id("mode-file").click()
    page.get_by_test_id("labels").fill(", ".join(LABELS))
    page.get_by_test_id("template").fill(TEMPLATE)
    page.get_by_test_id("file").set_input_files(str(source))
    error = page.get_by_test_id("error")
    error.wait_for(state="visible")
    assert "CSV has no column 'text'" in error.inner_text()
    classify(page)
    assert page.get_by_test_id("status").inner_text() == ""  # not "classifying…" forever
    assert error.is_visible() and page.locator("#field-file [data-testid=error]").count() == 1
    assert page.get_by_test_id("file-row").count() == 0
    page.get_by_test_id("text-field").fill("sentence")  # the fix, then ONE click
    page.get_by_test_id("classify").click()
    page.wait_for_function("document.querySelectorAll('[data-testid=file-row]').length === 2", timeout=20_000)
    assert error.is_hidden()
    assert "2 texts in" in page.get_by_test_id("status").inner_text()


def test_typing_a_field_name_reads_the_file_once_typing_pauses(page, tmp_path):
    source = write_csv(tmp_path / "news.csv", "sentence", TEXTS)
    page.get_by_test_id("mode-file").click()
    page.evaluate("""() => { window.reads = 0; const read = Blob.prototype.text;
                            File.prototype.text = function () { window.reads++; return read.call(this); }; }""")
    page.get_by_test_id("file").set_input_files(str(source))
    page.get_by_test_id("error").wait_for(state="visible")
    page.get_by_test_id("text-field").select_text()
    page.get_by_test_id("text-field").press_sequentially("sentence", delay=20)  # 8 keystrokes over "text"
    page.wait_for_function("document.getElementById('file-info').textContent.includes('2 texts in')", timeout=5_000)
    assert page.evaluate("window.reads") == 2  # the choice, then once after the typing
    page.evaluate("""() => { File.prototype.text = () => Promise.reject(new Error("the file was removed")); }""")
    page.get_by_test_id("text-field").fill("text")
    page.get_by_test_id("error").wait_for(state="visible")
    assert page.get_by_test_id("error").inner_text() == ("news.csv: could not read the file (the file was removed); "
                                                         "choose it again")


def test_back_to_none_restores_the_typed_labels_template_and_placement(page):
    page.get_by_test_id("labels").fill("好评, 差评")
    page.get_by_test_id("template").fill("总之{label}")
    page.get_by_test_id("placement").select_option("suffix")
    page.get_by_test_id("prompt").select_option("tnews")
    assert page.get_by_test_id("labels").input_value() == "" and page.get_by_test_id("template").input_value() == ""
    page.get_by_test_id("prompt").select_option("eprstmt")  # a second set in between changes nothing
    page.get_by_test_id("prompt").select_option("")
    assert page.get_by_test_id("labels").input_value() == "好评, 差评"
    assert page.get_by_test_id("template").input_value() == "总之{label}"
    assert page.get_by_test_id("placement").input_value() == "suffix"
    assert "label=word|word" in page.locator("#labels-hint").inner_text()


def test_a_new_prompt_set_clears_the_old_answers(page):
    page.get_by_test_id("text").fill(TEXTS[0])
    page.get_by_test_id("labels").fill(", ".join(LABELS))
    page.get_by_test_id("template").fill(TEMPLATE)
    classify(page)
    assert page.get_by_test_id("result-row").count() == len(LABELS)
    page.get_by_test_id("prompt").select_option("tnews")
    assert page.get_by_test_id("result").count() == 0
    assert page.get_by_test_id("json").text_content() == "" and page.get_by_test_id("status").inner_text() == ""
    classify(page)
    assert page.get_by_test_id("result-row").count() == 15  # the prompt set's own labels


def test_the_csv_download_neutralises_formulas(page, tmp_path):
    texts = ["=1+2", "+SUM(A1:A9)", "-2+3", "@cmd|' /C calc'!A0", "\t=tab", "正常的文本 = 1", "-5"]  # -5: a number
    source = write_csv(tmp_path / "risky.csv", "text", texts)
    page.get_by_test_id("mode-file").click()
    page.get_by_test_id("labels").fill("+体育, -财经, 科技")
    page.get_by_test_id("template").fill(TEMPLATE)
    page.get_by_test_id("file").set_input_files(str(source))
    page.wait_for_function("document.getElementById('file-info').textContent.includes('7 texts')")
    classify(page)
    assert page.get_by_test_id("error").is_hidden(), page.get_by_test_id("error").inner_text()
    assert page.get_by_test_id("file-row").count() == len(texts)
    with page.expect_download() as info:
        page.get_by_test_id("download-csv").click()
    path = tmp_path / "out.csv"
    info.value.save_as(path)
    rows = list(csv.reader(io.StringIO(path.read_text(encoding="utf-8-sig"))))
    assert rows[0] == ["line", "text", "label", "'+体育", "'-财经", "科技"]
    # a plain number stays as it is, as in the CLI's CSV
    assert [r[1] for r in rows[1:]] == ["'" + t for t in texts[:5]] + texts[5:]
    for row in rows[1:]:
        assert not row[2].startswith(("=", "+", "-", "@"))
        assert all(0 <= float(v) <= 1 for v in row[3:])  # scores stay numbers
    with page.expect_download() as info:  # JSONL keeps the texts exactly
        page.get_by_test_id("download-jsonl").click()
    info.value.save_as(tmp_path / "out.jsonl")
    lines = (tmp_path / "out.jsonl").read_text(encoding="utf-8").splitlines()
    assert [json.loads(line)["text"] for line in lines] == texts


@pytest.mark.parametrize("mode, field, holder", [("text", "threshold", "threshold"), ("text", "texts.0", "text"),
                                                 ("file", "texts", "file"), ("text", "long_text", "long-text"),
                                                 ("text", "template", "template")])
def test_errors_are_placed_by_the_field_of_the_answer(page, tmp_path, mode, field, holder):
    """The message says nothing the page could match: only `field` tells where it belongs."""
    page.route("**/classify", lambda route: route.fulfill(
        status=422, content_type="application/json",
        body=json.dumps({"detail": "value is not acceptable here", "field": field})))
    if mode == "file":
        page.get_by_test_id("mode-file").click()
        (tmp_path / "a.txt").write_text("今天比赛\n", encoding="utf-8")
        page.get_by_test_id("file").set_input_files(str(tmp_path / "a.txt"))
        page.wait_for_function("document.getElementById('file-info').textContent.includes('1 texts')")
    classify(page)
    error = page.get_by_test_id("error")
    assert error.inner_text() == "value is not acceptable here"
    assert page.locator(f"#field-{holder} [data-testid=error]").count() == 1
    assert page.get_by_test_id(holder).get_attribute("aria-invalid") == "true"
    assert page.get_by_test_id("status").inner_text() == ""


def test_the_page_works_under_a_csp_without_inline_script_or_style(browser, server):
    """The server may send `default-src 'self'` with its HTML: the page needs nothing inline."""
    context = browser.new_context()

    def strict(route):
        response = route.fetch()
        headers = {**response.headers, "content-security-policy": "default-src 'self'; img-src 'self' data:"}
        route.fulfill(response=response, headers=headers)

    context.route(server + "/", strict)
    p = context.new_page()
    refused = []
    p.on("console", lambda m: refused.append(m.text) if "Content Security Policy" in m.text else None)
    p.goto(server + "/")
    p.locator("#prompt option").nth(1).wait_for(state="attached")  # (string predicates would need eval)
    p.get_by_test_id("text").fill(TEXTS[0])
    p.get_by_test_id("labels").fill(", ".join(LABELS))
    p.get_by_test_id("template").fill(TEMPLATE)
    p.get_by_test_id("classify").click()
    p.get_by_test_id("result-row").nth(len(LABELS) - 1).wait_for()
    widths = p.eval_on_selector_all(".bar-fill", "nodes => nodes.map(n => n.getBoundingClientRect().width)")
    context.close()
    assert len(widths) == len(LABELS) and max(widths) > 0
    assert refused == []


def test_an_answer_without_a_field_is_shown_under_the_form_not_guessed_from_its_words(page):
    page.route("**/classify", lambda route: route.fulfill(
        status=422, content_type="application/json",
        body=json.dumps({"detail": "threshold and template and labels are all fine", "field": None})))
    classify(page)
    assert page.get_by_test_id("error").inner_text() == "threshold and template and labels are all fine"
    assert page.locator("#form > [data-testid=error]").count() == 1
    assert page.locator("[aria-invalid=true]").count() == 0

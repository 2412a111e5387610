"""nspzero/reports/html.py: the HTML report of a real eval output folder (the harness on the tiny
model over the FewCLUE-shaped fixture), checked as text, then opened from disk in Chromium."""
from __future__ import annotations

import html
import json
import re
import shutil
from collections import Counter

import markupsafe
import pytest

from browser_fixture import RequestLog, chromium
from fewclue_fixture import write_fewclue
from nspzero.errors import DataError
from nspzero.harness import EvalSettings, evaluate
from nspzero.reports.diagnostics import short_numbers
from nspzero.reports.html import render_report_html as render_report, write_report
from nspzero.scorer import NSPScorer

TASKS = ["eprstmt", "tnews", "ocnli", "chid", "cluewsc"]


@pytest.fixture(scope="module")
def eval_dir(model_dir, tmp_path_factory):
    """A real `nspzero eval` output folder: prompt variants and calibration included."""
    root = tmp_path_factory.mktemp("report-eval")
    data = write_fewclue(root / "data", n=9)
    scorer = NSPScorer.from_pretrained(model_dir, device="cpu", max_length=128, batch_size=16)
    evaluate(scorer, EvalSettings(str(data), TASKS, compare_prompts=True, calibration=["content-free", "prior"]),
             root / "out")
    return root / "out"


@pytest.fixture(scope="module")
def report(eval_dir):
    return write_report(eval_dir)


@pytest.fixture(scope="module")
def browser():
    """One Chromium for the module's browser tests."""
    with chromium() as b:
        yield b


def rows_of(eval_dir, task):
    return [json.loads(line) for line in (eval_dir / f"{task}.predictions.jsonl").read_text("utf-8").splitlines()]


def section(text, task):
    start = text.index(f'id="task-{task}"')
    end = text.find('<section class="task"', start)
    return text[start:end if end > 0 else None]


def test_write_report_defaults_to_report_html_and_writes_atomically(eval_dir, report, tmp_path):
    assert report == eval_dir / "report.html"
    assert not [p.name for p in eval_dir.iterdir() if p.name.endswith(".tmp")]
    other = write_report(eval_dir, tmp_path / "sub" / "r.html")
    assert other == tmp_path / "sub" / "r.html"
    assert other.read_text(encoding="utf-8") == report.read_text(encoding="utf-8") == render_report(eval_dir)


def test_the_report_is_self_contained(report):
    text = report.read_text(encoding="utf-8")
    assert not re.search(r"<(script|link|img|iframe)\b", text)  # no script or resource to fetch
    assert not re.search(r"\b(src|href)=|url\(|@import", text)
    assert re.findall(r"https?://[^\s\"'<>]+", text) == ["http://www.w3.org/2000/svg"] * text.count("<svg ")


def test_results_table_sits_beside_the_papers_rows(eval_dir, report):
    text = report.read_text(encoding="utf-8")
    results = json.loads((eval_dir / "results.json").read_text(encoding="utf-8"))
    table = text[text.index('data-testid="results-table"'):]
    table = table[:table.index("</table>")]
    assert "NSP-BERT (paper)" in table and "PET-zero (paper)" in table and "GPT-zero (paper)" in table
    assert html.escape(results["model"]) in table
    for task in TASKS:
        assert f"<th>{task.upper()}</th>" in table
        assert f"{100 * results['tasks'][task]['accuracy']:.1f}" in table
    assert "nspzero + content-free calibration" in table and "nspzero + prior calibration" in table
    assert ">86.9<" in table  # the paper's EPRSTMT
    bars = text[text.index('data-testid="accuracy-bars"'):]
    assert bars.count('class="ours"') == len(TASKS) and bars.count('class="paper"') == len(TASKS)


def test_confusion_tables_count_the_predictions_with_label_names(eval_dir, report):
    text = report.read_text(encoding="utf-8")
    for task in ("eprstmt", "tnews", "ocnli", "cluewsc"):
        part = section(text, task)
        assert 'data-testid="confusion"' in part
        counts = Counter((r["gold"], r["prediction"]) for r in rows_of(eval_dir, task))
        cells = dict(((g, p), int(n)) for g, p, n in re.findall(r'title="gold (.+?) → (.+?): (\d+)"', part))
        assert {k: v for k, v in cells.items() if v} == dict(counts)
    assert "news_sports" in section(text, "tnews")


def test_chid_has_answer_positions_not_a_confusion_matrix(eval_dir, report):
    part = section(report.read_text(encoding="utf-8"), "chid")
    assert 'data-testid="confusion"' not in part
    assert 'data-testid="cloze-positions"' in part and 'data-testid="cloze-candidates"' in part
    rows = rows_of(eval_dir, "chid")
    by_position = Counter(list(r["scores"]).index(r["gold"]) + 1 for r in rows)
    table = part[part.index('data-testid="cloze-positions"'):]
    for position, n in by_position.items():
        assert re.search(rf'<td class="num">{position}</td><td class="num">{n}</td>', table)


def test_samples_contrast_histograms_show_the_learned_thresholds(eval_dir, report):
    results = json.loads((eval_dir / "results.json").read_text(encoding="utf-8"))
    text = report.read_text(encoding="utf-8")
    for task in ("ocnli", "cluewsc"):
        part = section(text, task)
        assert 'data-testid="histograms"' in part
        entry = results["tasks"][task]
        shown = short_numbers(entry["thresholds"])
        assert len(set(shown)) == len(set(entry["thresholds"]))  # still tells them apart
        for t, number in zip(entry["thresholds"], shown):
            assert f"<code>{number}</code>" in part and abs(float(number) - t) <= 5e-3 * abs(t)
            assert len(number.lstrip("-0.").replace(".", "")) <= 6  # a few digits, not 15
            assert f"<code>{t!r}</code>" not in part
        assert part.count('class="threshold"') == len(entry["thresholds"])
        for label in entry["label_order"]:
            n = sum(r["gold"] == label for r in rows_of(eval_dir, task))
            assert f"{label} (n={n})" in part
    assert 'data-testid="histograms"' not in section(text, "tnews")


def test_variants_calibration_and_misclassified_examples(eval_dir, report):
    results = json.loads((eval_dir / "results.json").read_text(encoding="utf-8"))
    text = report.read_text(encoding="utf-8")
    tnews = section(text, "tnews")
    for name in results["tasks"]["tnews"]["variants"]:
        assert f"<td>{name}" in tnews
    assert "ensemble-logmean" in tnews and 'data-testid="calibration"' in tnews
    assert 'data-testid="variants"' not in section(text, "ocnli")
    for task in TASKS:
        wrong = [r for r in rows_of(eval_dir, task) if r["gold"] != r["prediction"]]
        part = section(text, task)
        if wrong:
            table = part[part.index('data-testid="misclassified"'):]
            assert table.count("<tr>") - 1 == min(5, len(wrong))
    # the texts are read back from the eval's data folder
    assert "今天比赛球队赢了" in text or "市场上涨公司发布手机" in text


def test_without_the_data_folder_the_examples_show_indices_only(eval_dir, tmp_path):
    copy = tmp_path / "moved"
    shutil.copytree(eval_dir, copy, ignore=shutil.ignore_patterns("cache", "report.html"))
    results = json.loads((copy / "results.json").read_text(encoding="utf-8"))
    results["settings"]["data_dir"] = str(tmp_path / "gone")
    (copy / "results.json").write_text(json.dumps(results, ensure_ascii=False), encoding="utf-8")
    (copy / "tnews.predictions.jsonl").unlink()
    text = render_report(copy)
    assert "text not available" in text
    assert "No tnews.predictions.jsonl in this folder" in text


def test_missing_or_broken_results_are_one_line_errors(tmp_path):
    with pytest.raises(DataError, match=r"results.json: missing; give the --output-dir of an `nspzero eval` run"):
        write_report(tmp_path)
    (tmp_path / "results.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(DataError, match=r"results.json: not valid JSON"):
        write_report(tmp_path)
    with pytest.raises(DataError, match=r"no such folder"):
        write_report(tmp_path / "nope")
    assert not (tmp_path / "report.html").exists()


def test_the_report_opens_from_disk_in_a_browser(report, tmp_path_factory, browser):
    shots = tmp_path_factory.mktemp("report-screenshots")
    context = browser.new_context(viewport={"width": 1200, "height": 1000})
    requests = RequestLog(context)
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(report.as_uri())
    table = page.get_by_test_id("results-table")
    assert table.is_visible()
    assert table.locator("tbody tr").count() == 1 + 2 + 3  # ours, two calibrations, three paper rows
    assert page.get_by_test_id("confusion").count() == len(TASKS) - 1  # not for chid
    assert page.get_by_test_id("cloze-positions").is_visible()
    assert page.get_by_test_id("histograms").count() == 2
    box = page.get_by_test_id("accuracy-bars").bounding_box()
    assert box["width"] > 300 and box["height"] > 100
    page.screenshot(path=str(shots / "report-top.png"))
    page.screenshot(path=str(shots / "report-full.png"), full_page=True)
    page.locator("#task-ocnli").screenshot(path=str(shots / "report-ocnli.png"))
    context.close()
    assert errors == []
    assert requests.urls and all(u.startswith("file://") for u in requests.urls), requests.urls
    assert requests.external() == []


# ---------------------------------------------------------------- crafted results: nothing runs

EVIL = ['<script>window.__pwned = "script"</script>', '"</script><script>window.__pwned = "close"</script>',
        'x" onmouseover="window.__pwned=\'attr\'" data-x="', "</title><svg onload=\"window.__pwned='svg'\">",
        "<img src=x onerror=\"window.__pwned='img'\">", "{{ 7*7 }}"]


def crafted_folder(tmp_path):
    """A results.json whose every string field (task names, labels, model, settings, variants,
    calibrations, texts) carries markup that would run if it reached the page unescaped."""
    labels = EVIL[:3]
    tasks = {}
    for k, name in enumerate(EVIL):
        tasks[name] = {"accuracy": 0.5, "examples": 4, "type": "classification", "prompt": EVIL[(k + 1) % 6],
                       "split": EVIL[(k + 2) % 6], "reference": 50.0, "dev_split": EVIL[(k + 3) % 6],
                       "thresholds": [0.3, 0.6], "label_order": labels,
                       "variants": {EVIL[k]: {"templates": [EVIL[(k + 4) % 6]], "combine": EVIL[(k + 5) % 6],
                                              "accuracy": 0.5}},
                       "calibrated": {EVIL[k]: 0.25}, "batched_accuracy": {EVIL[(k + 1) % 6]: 0.5}}
    results = {"model": EVIL[3], "config_hash": EVIL[0], "versions": {EVIL[1]: EVIL[2]},
               "settings": {"split": EVIL[4], "dtype": EVIL[0], "device": EVIL[1], "engine": EVIL[2],
                            "calibration": [EVIL[0]], "data_dir": str(tmp_path / "gone")},
               "tasks": tasks}
    (tmp_path / "results.json").write_text(json.dumps(results), encoding="utf-8")
    safe = [n for n in EVIL if "/" not in n]
    for name in safe:  # the names without a slash can be file names: their predictions are read
        rows = [{"index": i, "gold": labels[i % 3], "prediction": labels[(i + 1) % 3], "score": 0.2 * (i + 1),
                 "scores": None} for i in range(4)]
        rows += [{"index": 9, "gold": labels[0], "prediction": EVIL[4], "scores": {EVIL[4]: 0.9, labels[0]: 0.1}}]
        (tmp_path / f"{name}.predictions.jsonl").write_text("\n".join(json.dumps(r) for r in rows), encoding="utf-8")
    return tmp_path, safe


def test_crafted_results_run_no_script_in_a_browser(tmp_path, browser):
    folder, readable = crafted_folder(tmp_path)
    assert readable  # some tasks have predictions: confusion tables, histograms, examples get the markup too
    path = write_report(folder)
    text = path.read_text(encoding="utf-8")
    assert "<script" not in text and "<img" not in text and "onmouseover=" not in text.replace("onmouseover=&#34;", "")
    context = browser.new_context()
    page = context.new_page()
    dialogs, errors = [], []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(path.as_uri())
    page.mouse.move(10, 10)
    for box in page.locator("section.task h2, th.col, th.row, td[title], svg text").all()[:40]:
        box.hover(force=True, timeout=2000)  # fires any onmouseover that made it into an attribute
    assert page.evaluate("window.__pwned") is None
    assert page.evaluate("document.querySelectorAll('script, img, iframe, object, embed').length") == 0
    handlers = page.evaluate("""[...document.querySelectorAll('*')].flatMap(
        n => [...n.attributes].filter(a => a.name.startsWith('on')).map(a => n.tagName + ' ' + a.name))""")
    assert handlers == []
    # every crafted name is shown as the text it is
    assert sorted(page.locator("section.task h2").all_inner_texts()) == sorted(EVIL)
    titles = page.evaluate("[...document.querySelectorAll('svg title')].map(t => t.textContent)")
    assert f"nspzero {EVIL[3]}: 50.0%" in titles
    context.close()
    assert dialogs == [] and errors == []


def test_the_report_forbids_script_by_content_security_policy(eval_dir, report, tmp_path, browser):
    """Even a value that slipped past the escaping could not run: the page's CSP allows no script."""
    from nspzero.reports.html import CSP

    text = report.read_text(encoding="utf-8")
    assert f'<meta http-equiv="Content-Security-Policy" content="{markupsafe.escape(CSP)}">' in text
    assert "default-src 'none'" in CSP and "script-src" not in CSP
    slipped = tmp_path / "slipped.html"  # what a template bug would produce
    slipped.write_text(text.replace("</h1>", '</h1><script>window.__pwned = 1</script>'
                                    '<img src="x" onerror="window.__pwned = 2">', 1), encoding="utf-8")
    page = browser.new_page()
    page.goto(slipped.as_uri())
    page.wait_for_load_state("load")
    assert page.evaluate("window.__pwned") is None
    page.close()


# ---------------------------------------------------------------- layout in a real browser

def layout_folder(tmp_path, n_classes):
    """A task with `n_classes` long label names (one filled column: everything predicted as the
    last class) and a samples-contrast task whose thresholds sit close together."""
    names = [f"category number {k:02d} with a long name" for k in range(n_classes)]
    rows = [{"index": i, "gold": names[i % n_classes], "prediction": names[-1],
             "scores": {n: (0.9 if n == names[-1] else 0.1) for n in names}} for i in range(3 * n_classes)]
    order = ["contradiction", "neutral", "entailment", "unrelated", "other"]
    thresholds = [0.4935084283351898, 0.4936551117897034, 0.80, 0.8512345678901234]
    sc_rows = [{"index": i, "gold": order[i % 5], "prediction": order[(i + 1) % 5], "score": 0.3 + 0.05 * (i % 12)}
               for i in range(40)]
    results = {"model": "m", "settings": {}, "tasks": {
        "wide": {"accuracy": 1 / n_classes, "examples": len(rows), "label_order": names},
        "pairs": {"accuracy": 0.0, "examples": 40, "thresholds": thresholds, "label_order": order}}}
    (tmp_path / "results.json").write_text(json.dumps(results), encoding="utf-8")
    (tmp_path / "wide.predictions.jsonl").write_text("\n".join(map(json.dumps, rows)), encoding="utf-8")
    (tmp_path / "pairs.predictions.jsonl").write_text("\n".join(map(json.dumps, sc_rows)), encoding="utf-8")
    return write_report(tmp_path)


@pytest.mark.parametrize("n_classes", [15, 119])
def test_a_wide_confusion_matrix_stays_inside_its_card(tmp_path, n_classes, browser):
    path = layout_folder(tmp_path, n_classes)
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    page.goto(path.as_uri())
    card = page.locator("#task-wide").bounding_box()
    holder = page.locator("#task-wide [data-testid=confusion-scroll]").bounding_box()
    assert card["x"] <= holder["x"] and holder["x"] + holder["width"] <= card["x"] + card["width"]
    assert page.evaluate("document.scrollingElement.scrollWidth <= window.innerWidth")  # no page-wide scroll
    fits = page.evaluate("""(() => { const s = document.querySelector('#task-wide [data-testid=confusion-scroll]');
                             return s.scrollWidth <= s.clientWidth; })()""")
    if n_classes == 15:  # fits without scrolling: the filled last column is on screen
        assert fits
        last = page.locator("#task-wide [data-testid=confusion] tbody tr").first.locator("td").nth(n_classes - 1)
        box = last.bounding_box()
        assert last.inner_text() == "3" and box["x"] + box["width"] <= holder["x"] + holder["width"]
    page.close()


def test_threshold_labels_cross_no_line_and_no_other_label(tmp_path, browser):
    path = layout_folder(tmp_path, 3)
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    page.goto(path.as_uri())
    boxes = page.evaluate("""(() => {
        const svg = document.querySelector('#task-pairs [data-testid=histograms]');
        const box = (n) => { const b = n.getBBox(); return [b.x, b.y, b.x + b.width, b.y + b.height]; };
        return {labels: [...svg.querySelectorAll('text.thr')].map(box),
                lines: [...svg.querySelectorAll('line.threshold')].map(box),
                texts: [...svg.querySelectorAll('text.thr')].map(n => n.textContent)}; })()""")
    page.close()
    overlap = lambda a, b: a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]  # noqa: E731
    assert len(boxes["labels"]) == len(boxes["lines"]) == 4
    for i, label in enumerate(boxes["labels"]):
        assert not any(overlap(label, [x0 - 0.5, y0, x1 + 0.5, y1]) for x0, y0, x1, y1 in boxes["lines"])
        assert not any(overlap(label, other) for j, other in enumerate(boxes["labels"]) if j != i)
    assert [t.rsplit("  ", 1)[1] for t in boxes["texts"]] == ["0.4935", "0.4937", "0.8", "0.8512"]


def test_the_report_never_overwrites_what_it_reads(eval_dir, tmp_path, capsys):
    from conftest import run_cli

    before = {p.name: p.read_bytes() for p in eval_dir.iterdir() if p.is_file()}
    link = tmp_path / "alias.json"
    link.symlink_to(eval_dir / "results.json")
    for target in (eval_dir / "results.json", eval_dir / "tnews.predictions.jsonl", link):
        code, out, err = run_cli(["report", str(eval_dir), "-o", str(target)], capsys)
        assert code == 2 and err.startswith(f"nspzero: error: --output '{target}' is the input file"), err
    assert {p.name: p.read_bytes() for p in eval_dir.iterdir() if p.is_file()} == before


def huge_folder(tmp_path):
    """A results folder as a hostile or careless results.json makes it: a 100,000-character unbroken model
    name and a task with 20,000 labels in label_order."""
    names = [f"label-{k}" for k in range(20_000)]
    rows = [{"index": i, "gold": names[i % 40], "prediction": names[(i * 3) % 50],
             "scores": {n: 0.9 if n == names[(i * 3) % 50] else 0.1 for n in names[:50]}} for i in range(200)]
    results = {"model": "m" * 100_000, "settings": {}, "tasks": {
        "many": {"accuracy": 0.1, "examples": len(rows), "label_order": names}}}
    (tmp_path / "results.json").write_text(json.dumps(results), encoding="utf-8")
    (tmp_path / "many.predictions.jsonl").write_text("\n".join(map(json.dumps, rows)), encoding="utf-8")
    return tmp_path


def test_a_report_renders_a_bounded_view_of_an_unbounded_results_file(tmp_path):
    """Class: results.json values that size the page (label count). The confusion view holds at most
    MAX_CONFUSION_CLASSES labels, and the page says what it left out."""
    from nspzero.reports.diagnostics import MAX_CONFUSION_CLASSES
    from nspzero.reports.html import render_report_html

    html = render_report_html(huge_folder(tmp_path))
    part = section(html, "many")
    assert part.count('<th class="row"') == MAX_CONFUSION_CLASSES and "19,851 other labels" in part
    assert 'data-testid="bound-note"' in part and len(html) < 2_000_000


def test_an_unbroken_long_word_wraps_inside_the_page(tmp_path, browser):
    """Class: long words (a model name, a label, a text with no space) widening the page."""
    path = write_report(huge_folder(tmp_path))
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    page.goto(path.as_uri())
    assert page.evaluate("document.scrollingElement.scrollWidth <= window.innerWidth")
    page.close()

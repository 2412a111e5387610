import random
import sys
import warnings

import pytest

pytest.importorskip("matplotlib")

from nspzero.reports import png as plots  # noqa: E402
from nspzero.reports.diagnostics import TaskEntry, rows_from_dicts, task_diagnostics  # noqa: E402

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def task_pngs(name, rows, entry, model=None):
    """A task's plots from prediction rows and a results entry, drawn as `eval --plots` draws them."""
    checked = TaskEntry.model_validate({k: v for k, v in entry.items() if k in TaskEntry.model_fields})
    return plots.task_pngs(task_diagnostics(name, rows_from_dicts(rows), checked), model or entry.get("model"))


def write_task_plots(out, name, rows, entry, model=None):
    """The plots written as `eval --plots` writes them (each file atomically)."""
    from nspzero.io import atomic_write

    out.mkdir(parents=True, exist_ok=True)
    return [atomic_write(out / file, lambda handle, data=data: handle.write(data))
            for file, data in task_pngs(name, rows, entry, model).items()]


def assert_png(path, min_side=200):
    import matplotlib.image

    assert path.is_file()
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    image = matplotlib.image.imread(path)
    assert image.ndim == 3 and image.shape[2] in (3, 4)
    assert min(image.shape[:2]) >= min_side
    return image


def assert_no_temp_files(folder):
    leftovers = [p.name for p in folder.iterdir() if p.name.startswith(".") or p.suffix == ".tmp"]
    assert leftovers == []


def cc_rows(labels, n, seed=0):
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        gold = labels[i % len(labels)]
        scores = {label: rng.random() for label in labels}
        if rng.random() < 0.6:
            scores[gold] = 1.0
        rows.append({"index": i, "gold": gold, "prediction": max(scores, key=scores.get), "scores": scores})
    return rows


def accuracy(rows):
    return sum(r["gold"] == r["prediction"] for r in rows) / len(rows)


def test_classification_task_writes_only_a_confusion_matrix(tmp_path):
    rows = cc_rows(["news_sports", "news_finance", "news_tech", "news_game"], 40)
    entry = {"accuracy": accuracy(rows), "examples": len(rows), "type": "classification"}
    written = write_task_plots(tmp_path, "tnews", rows, entry, model="bert-base-chinese")
    assert written == [tmp_path / "tnews.confusion.png"]
    assert_png(written[0])
    assert not (tmp_path / "tnews.scores.png").exists()
    assert_no_temp_files(tmp_path)


def sc_case(n=60, seed=1):
    rng = random.Random(seed)
    order = ["contradiction", "neutral", "entailment"]
    thresholds = [0.55, 0.8]
    rows = []
    for i in range(n):
        k = i % 3
        score = min(1.0, max(0.0, rng.gauss(0.45 + 0.22 * k, 0.12)))
        prediction = order[sum(score >= t for t in thresholds)]
        rows.append({"index": i, "gold": order[k], "prediction": prediction, "score": score})
    entry = {"accuracy": accuracy(rows), "examples": n, "type": "pair", "thresholds": thresholds,
             "label_order": order, "model": "bert-base-chinese"}
    return rows, entry


def test_samples_contrast_task_writes_confusion_and_score_histograms(tmp_path):
    rows, entry = sc_case()
    written = write_task_plots(tmp_path / "out", "ocnli", rows, entry)  # creates the folder
    out = tmp_path / "out"
    assert written == [out / "ocnli.confusion.png", out / "ocnli.scores.png"]
    for path in written:
        assert_png(path)
    assert_no_temp_files(out)


def test_rewriting_replaces_the_files_in_place(tmp_path):
    rows, entry = sc_case()
    first = [p.read_bytes() for p in write_task_plots(tmp_path, "ocnli", rows, entry)]
    rows2, entry2 = sc_case(seed=7)
    second = write_task_plots(tmp_path, "ocnli", rows2, entry2)
    assert [p.read_bytes() for p in second] != first
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ocnli.confusion.png", "ocnli.scores.png"]


def test_scores_need_thresholds_and_label_order(tmp_path):
    rows, entry = sc_case()
    del entry["thresholds"]
    written = write_task_plots(tmp_path, "ocnli", rows, entry)
    assert [p.name for p in written] == ["ocnli.confusion.png"]


def test_many_classes_with_chinese_names(tmp_path):
    labels = [f"类别{i:03d}" for i in range(119)]  # IFLYTEK-sized; may have no CJK font here
    rows = cc_rows(labels, 300, seed=3)
    entry = {"accuracy": accuracy(rows), "examples": len(rows)}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        written = write_task_plots(tmp_path, "iflytek", rows, entry, model="m")
    assert not [w for w in caught if "Glyph" in str(w.message)]
    image = assert_png(written[0], min_side=1500)  # scaled up with the class count
    assert abs(image.shape[0] - image.shape[1]) < 0.2 * image.shape[0]
    assert [p.name for p in tmp_path.iterdir()] == ["iflytek.confusion.png"]


def test_the_title_names_task_model_accuracy_and_size(tmp_path):
    from nspzero.reports.diagnostics import TaskEntry, rows_from_dicts, task_diagnostics

    rows = [{"gold": "b", "prediction": "z"}, {"gold": "a", "prediction": "b"}]
    task = task_diagnostics("ocnli", rows_from_dicts(rows), TaskEntry(accuracy=0.4567))
    assert plots._title(task, "from-arg") == "ocnli · from-arg · accuracy 45.7% · n=2"
    assert plots._title(task_diagnostics("x", rows_from_dicts(rows), TaskEntry()), None) == "x · accuracy 0.0% · n=2"


def test_empty_rows_still_write_a_figure(tmp_path):
    written = write_task_plots(tmp_path, "csl", [], {"accuracy": 0.0})
    assert_png(written[0], min_side=100)


def test_missing_matplotlib_raises_with_install_hint(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(ImportError, match="plots need matplotlib: pip install") as info:
        write_task_plots(tmp_path, "tnews", cc_rows(["x", "y"], 4), {"accuracy": 0.5})
    from nspzero.extras import install_hint

    assert str(info.value) == f"plots need matplotlib: {install_hint('plots')}"
    assert list(tmp_path.iterdir()) == []


def chid_rows(n=14, seed=5):
    rng = random.Random(seed)
    idioms = ["严阵以待", "改朝换代", "不共戴天", "天南海北", "物归原主", "波谲云诡", "高视阔步"]
    rows = []
    for i in range(n):
        candidates = idioms[: 5 + i % 3]  # 5, 6 or 7 candidates: they differ per example
        scores = {c: rng.random() for c in candidates}
        gold = candidates[i % len(candidates)]
        rows.append({"index": i, "gold": gold, "prediction": max(scores, key=scores.get), "scores": scores})
    return rows


def test_cloze_task_gets_answer_positions_instead_of_a_confusion_matrix(tmp_path):
    rows = chid_rows()
    entry = {"accuracy": accuracy(rows), "examples": len(rows), "type": "cloze"}
    written = write_task_plots(tmp_path, "chid", rows, entry, model="m")
    assert written == [tmp_path / "chid.positions.png"]
    assert_png(written[0])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["chid.positions.png"]
    # recognised from the rows alone too (candidates differ per example)
    del entry["type"]
    assert [p.name for p in write_task_plots(tmp_path / "untyped", "chid", rows, entry)] == ["chid.positions.png"]


def test_without_a_cjk_font_one_warning_says_what_to_install(tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(plots, "cjk_font", lambda: None)
    monkeypatch.setattr(plots, "_warned_no_cjk", False)
    rows = cc_rows(["体育", "财经", "科技"], 12)
    with warnings.catch_warnings(record=True) as caught, caplog.at_level("WARNING", logger="nspzero"):
        warnings.simplefilter("always")
        write_task_plots(tmp_path, "tnews", rows, {"accuracy": accuracy(rows)})
        write_task_plots(tmp_path, "tnews2", rows, {"accuracy": accuracy(rows)})
    messages = [r.getMessage() for r in caplog.records if r.name == "nspzero"]
    assert messages == [plots.NO_CJK_FONT]
    assert "apt-get install fonts-noto-cjk" in messages[0]
    assert not [w for w in caught if "Glyph" in str(w.message)]


def test_ascii_labels_need_no_cjk_font(tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(plots, "cjk_font", lambda: None)
    monkeypatch.setattr(plots, "_warned_no_cjk", False)
    rows = cc_rows(["sports", "finance"], 8)
    with caplog.at_level("WARNING", logger="nspzero"):
        write_task_plots(tmp_path, "agnews", rows, {"accuracy": accuracy(rows)})
    assert not [r for r in caplog.records if r.name == "nspzero"]


def test_an_installed_cjk_font_is_used(tmp_path):
    plots.cjk_font.cache_clear()
    family = plots.cjk_font()
    if family is None:
        pytest.skip("no CJK font installed here (e.g. apt-get install fonts-noto-cjk)")
    assert plots._font_rc(needs_cjk=True)["font.family"] == ["DejaVu Sans", family]
    from matplotlib import font_manager

    path = font_manager.findfont(font_manager.FontProperties(family=family), fallback_to_default=False)
    from matplotlib.ft2font import FT2Font

    assert FT2Font(path).get_char_index(ord("体")) != 0  # the font really has the glyph


def test_the_files_written_hold_the_bytes_task_pngs_draws(tmp_path):
    rows, entry = sc_case()
    pngs = task_pngs("ocnli", rows, entry)
    assert sorted(pngs) == ["ocnli.confusion.png", "ocnli.scores.png"]
    assert all(data[:8] == PNG_SIGNATURE for data in pngs.values())
    written = write_task_plots(tmp_path, "ocnli", rows, entry)
    assert {p.name: p.read_bytes() for p in written} == pngs

"""nspzero/reports/diagnostics.py: the numbers every report draws, and results.json checked at the
boundary: a malformed file is one line naming the field (CLI: no traceback), never a wrong figure."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

from conftest import run_cli
from nspzero.errors import DataError
from nspzero.reports.diagnostics import (Row, TaskEntry, classes_of, folder_diagnostics, is_cloze, read_results,
                                         rows_from_dicts, short_numbers, task_diagnostics)


def write_folder(folder, results, predictions=None):
    folder.mkdir(parents=True, exist_ok=True)
    text = results if isinstance(results, str) else json.dumps(results, ensure_ascii=False)
    (folder / "results.json").write_text(text, encoding="utf-8")
    for task, rows in (predictions or {}).items():
        lines = [r if isinstance(r, str) else json.dumps(r, ensure_ascii=False) for r in rows]
        (folder / f"{task}.predictions.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder


def test_confusion_counts_every_gold_prediction_pair_in_label_order():
    rows = rows_from_dicts([{"gold": "b", "prediction": "a"}, {"gold": "b", "prediction": "b"},
                            {"gold": "a", "prediction": "z"}, {"gold": "a", "prediction": "a"},
                            {"gold": "a", "prediction": "a"}])
    task = task_diagnostics("t", rows, TaskEntry(label_order=["b", "a"]))
    assert task.confusion.classes == ["b", "a", "z"]
    assert task.confusion.matrix.tolist() == [[1, 1, 0], [0, 2, 1], [0, 0, 0]]
    assert task.confusion.totals == [2, 3, 0] and task.confusion.recall == [0.5, 2 / 3, None]
    assert task.confusion.top_confusions() == [("b", "a", 1), ("a", "z", 1)]
    assert task.wrong == 2 and len(task.misclassified) == 2


def test_labels_meet_whatever_json_type_they_were_written_with():
    rows = rows_from_dicts([{"gold": 10, "prediction": 2}, {"gold": True, "prediction": "true"}])
    assert classes_of(rows, TaskEntry()) == ["2", "10", "true"]  # numbers sort as numbers
    assert classes_of(rows, TaskEntry(label_order=[True, 10])) == ["true", "10", "2"]


def test_histograms_count_each_gold_labels_scores_over_shared_edges():
    scores = {"x": [0.1, 0.12, 0.5], "y": [0.6, 0.9]}
    rows = rows_from_dicts([{"gold": g, "prediction": g, "score": s} for g, ss in scores.items() for s in ss])
    task = task_diagnostics("t", rows, TaskEntry(label_order=["x", "y"], thresholds=[0.55]))
    h = task.histograms
    assert h.order == ["x", "y"] and h.sizes == {"x": 3, "y": 2} and h.between == ["x | y"]
    for label, values in scores.items():
        assert h.counts[label].tolist() == np.histogram(values, bins=h.edges)[0].tolist()
    assert h.low < 0.1 and h.high > 0.9
    assert task.confusion is not None and task.cloze is None


def test_short_numbers_keep_few_digits_but_tell_values_apart():
    assert short_numbers([0.4935084283351898, 0.8]) == ["0.494", "0.8"]
    assert short_numbers([0.49350842, 0.49350901]) == ["0.493508", "0.493509"]
    assert short_numbers([0.5, 0.5]) == ["0.5", "0.5"]


def test_cloze_is_recognised_by_candidates_that_differ_per_row():
    rows = rows_from_dicts([{"gold": "a", "prediction": "b", "scores": {"a": 0.1, "b": 0.9}},
                            {"gold": "c", "prediction": "c", "scores": {"b": 0.1, "c": 0.9, "d": 0.2}}])
    assert is_cloze(rows, TaskEntry())
    task = task_diagnostics("chid", rows, TaskEntry())
    assert task.cloze.positions == [1, 2] and task.cloze.answers == {1: [0], 2: [1]}
    assert task.cloze.predicted == {2: 2} and task.cloze.by_count == {2: [0], 3: [1]}
    assert not is_cloze(rows_from_dicts([{"gold": "a", "prediction": "a", "scores": {"a": 1.0, "b": 0.0}}] * 2),
                        TaskEntry())


def test_a_minimal_results_file_is_enough(tmp_path):
    d = folder_diagnostics(write_folder(tmp_path, {"tasks": {"eprstmt": {}, "mine": {"accuracy": 1}}}))
    assert d.columns == ["eprstmt", "mine"] and d.results.model == "?"
    assert [t.rows for t in d.tasks] == [None, None]


def test_unreadable_prediction_lines_are_counted_not_used(tmp_path):
    rows = [{"index": 0, "gold": "a", "prediction": "a", "scores": {"a": 0.9, "b": 0.1}}, "{broken",
            {"index": 1, "gold": "a", "prediction": "b", "scores": {"a": "high"}}, '{"gold": "a", "score": NaN}',
            '[1, 2]', {"index": 2, "gold": "b", "prediction": "b", "scores": {"a": 0.2, "b": 0.8}}]
    d = folder_diagnostics(write_folder(tmp_path, {"tasks": {"t": {"accuracy": 1.0}}}, {"t": rows}))
    task = d.tasks[0]
    assert [r.index for r in task.rows] == [0, 2] and task.skipped_rows == 4
    assert task.confusion.matrix.tolist() == [[1, 0], [0, 1]]


def test_a_task_name_never_reads_outside_the_folder(tmp_path):
    outside = tmp_path / "secret.predictions.jsonl"
    outside.write_text(json.dumps({"gold": "a", "prediction": "b", "scores": {"a": 0.1, "b": 0.9}}) + "\n")
    d = folder_diagnostics(write_folder(tmp_path / "out", {"tasks": {"../secret": {"accuracy": 0.5}}}))
    assert d.tasks[0].rows is None


HUGE = "x" * 1_000_000
MALFORMED = {  # results.json text → what the one line must say
    "tasks-not-a-mapping": ('{"tasks": [1]}', "no 'tasks' mapping"),
    "not-an-object": ("[1, 2]", "no 'tasks' mapping"),
    "entry-is-null": ('{"tasks": {"t": null}}', "tasks.t: input should be a valid dictionary"),
    "accuracy-text": ('{"tasks": {"t": {"accuracy": "high"}}}', "tasks.t.accuracy: input should be a valid number"),
    "accuracy-nan": ('{"tasks": {"t": {"accuracy": NaN}}}', "tasks.t.accuracy: input should be a finite number"),
    "accuracy-inf": ('{"tasks": {"t": {"accuracy": 1e999}}}', "tasks.t.accuracy: input should be a finite number"),
    "accuracy-above-1": ('{"tasks": {"t": {"accuracy": 1.5}}}', "tasks.t.accuracy: input should be less than or equal to 1"),
    "threshold-nan": ('{"tasks": {"t": {"thresholds": [0.5, NaN]}}}', "tasks.t.thresholds.1: input should be a finite"),
    "thresholds-text": ('{"tasks": {"t": {"thresholds": "0.5"}}}', "tasks.t.thresholds: input should be a valid list"),
    "label-null": ('{"tasks": {"t": {"label_order": [null]}}}', "tasks.t.label_order.0"),
    "settings-list": ('{"settings": [], "tasks": {}}', "settings: input should be a valid dictionary"),
    "model-number": ('{"model": 5, "tasks": {}}', "model: input should be a valid string"),
    "variant-templates": ('{"tasks": {"t": {"variants": {"v": {"templates": "x"}}}}}', "tasks.t.variants.v.templates"),
    "calibrated-list": ('{"tasks": {"t": {"calibrated": [1]}}}', "tasks.t.calibrated: input should be a valid dict"),
    "examples-negative": ('{"tasks": {"t": {"examples": -3}}}', "tasks.t.examples: input should be greater than"),
    "huge-int": ('{"tasks": {"t": {"examples": ' + "9" * 5000 + "}}}", "not valid JSON"),
    "deep-nesting": ('{"tasks": ' + "[" * 100_000 + "]" * 100_000 + "}", "not valid JSON"),
    "huge-name": (json.dumps({"tasks": {HUGE: {"accuracy": "bad"}}}), "tasks.xxxxxxxx"),
    "not-json": ("{not json", "not valid JSON"),
    "not-utf8": (b"\xff\xfe{}", "not valid JSON"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_a_malformed_results_file_is_one_line_from_the_cli(case, tmp_path, capsys):
    text, expected = MALFORMED[case]
    tmp_path.joinpath("results.json").write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
    with pytest.raises(DataError) as info:
        read_results(tmp_path)
    assert expected in str(info.value)
    code, out, err = run_cli(["report", str(tmp_path)], capsys)
    assert code == 1 and out == ""
    assert err.count("\n") == 1 and err.startswith(f"nspzero: error: {tmp_path / 'results.json'}: ")
    assert expected in err and "Traceback" not in err and len(err) < 400  # never echoes the huge value
    assert not (tmp_path / "report.html").exists()


def test_a_results_file_larger_than_any_eval_writes_is_refused_before_reading(tmp_path, monkeypatch):
    from nspzero.reports import diagnostics

    monkeypatch.setattr(diagnostics, "MAX_RESULTS_BYTES", 100)
    write_folder(tmp_path, {"tasks": {"t": {"prompt": "p" * 200}}})
    with pytest.raises(DataError, match=r"results.json: 2\d\d bytes, more than an eval writes \(at most 100\)"):
        read_results(tmp_path)


def test_rows_keep_finite_numbers_only():
    with pytest.raises(ValueError):
        Row.model_validate({"gold": "a", "score": math.inf})
    assert Row.model_validate({"gold": 1, "prediction": None}).gold == "1"


def test_a_predictions_file_larger_than_any_eval_writes_is_refused(tmp_path, monkeypatch):
    from nspzero.reports import diagnostics

    monkeypatch.setattr(diagnostics, "MAX_PREDICTIONS_BYTES", 10)
    write_folder(tmp_path, {"tasks": {"t": {}}}, {"t": [{"gold": "a", "prediction": "a"}]})
    with pytest.raises(DataError, match=r"t.predictions.jsonl: \d+ bytes, more than an eval writes \(at most 10\)"):
        folder_diagnostics(tmp_path)


def test_a_confusion_view_is_bounded_however_many_labels_a_task_has():
    """Class: a results.json whose label set sizes the report (20,000 label_order names would be a
    20,000² view). Past the bound the most frequent labels are kept and the rest counted as one
    class: no count is lost (checked against sklearn's full matrix on the same rows)."""
    from sklearn.metrics import confusion_matrix

    from nspzero.reports.diagnostics import MAX_CONFUSION_CLASSES

    names = [f"label{k}" for k in range(20_000)]
    pairs = [(names[k % 300], names[(k * 7) % 300]) for k in range(900)] + [(names[5], names[19_999])]
    rows = rows_from_dicts([{"gold": g, "prediction": p} for g, p in pairs])
    task = task_diagnostics("t", rows, TaskEntry(label_order=names))
    c = task.confusion
    assert len(c.classes) == MAX_CONFUSION_CLASSES and c.matrix.shape == (MAX_CONFUSION_CLASSES,) * 2
    assert c.hidden == 20_000 - (MAX_CONFUSION_CLASSES - 1) and c.classes[-1] == f"({c.hidden:,} other labels)"
    assert int(c.matrix.sum()) == len(pairs) and task.notes and "other 19,851 labels" in task.notes[0]
    kept = c.classes[:-1]
    full = confusion_matrix([g for g, _ in pairs], [p for _, p in pairs], labels=kept)
    np.testing.assert_array_equal(c.matrix[:-1, :-1], full)  # the kept cells are exact
    assert kept == [n for n in names if n in set(kept)]    # in label_order's order
    small = task_diagnostics("t", rows, TaskEntry(label_order=names[:300] + [names[19_999]]))
    assert small.confusion.matrix.shape == (MAX_CONFUSION_CLASSES,) * 2


def test_histograms_are_not_drawn_for_more_labels_than_the_bound():
    from nspzero.reports.diagnostics import MAX_HISTOGRAM_LABELS

    order = [f"l{k}" for k in range(20_000)]
    rows = rows_from_dicts([{"gold": order[k], "prediction": order[k + 1], "score": k / 10} for k in range(10)])
    task = task_diagnostics("t", rows, TaskEntry(label_order=order, thresholds=[k / 10 for k in range(19_999)]))
    assert task.histograms is None and any(str(MAX_HISTOGRAM_LABELS) in n for n in task.notes)
    few = task_diagnostics("t", rows, TaskEntry(label_order=order[:11], thresholds=[k / 10 for k in range(10)]))
    assert few.histograms is not None and not few.notes


def test_a_data_folder_given_to_report_points_to_an_eval_that_would_run(tmp_path, monkeypatch):
    """`nspzero report <data folder>`: not "run eval --output-dir <data folder>" (eval refuses to write into its
    data), but an eval command whose output folder eval accepts; a killed eval's folder (only cache/) is no data."""
    import re

    from nspzero.errors import DataError
    from nspzero.folders import check_folder_output
    from nspzero.reports.diagnostics import read_results

    monkeypatch.chdir(tmp_path)
    data = tmp_path / "FewCLUE"
    (data / "eprstmt").mkdir(parents=True)
    (data / "eprstmt" / "test_public.json").write_text('{"sentence": "好", "label": "Positive"}\n', encoding="utf-8")
    with pytest.raises(DataError) as info:
        read_results(data)
    message = str(info.value)
    out = re.search(r"nspzero eval -d \S+ -o (\S+) first", message).group(1)
    check_folder_output(out, [str(data)])  # the suggested folder is one eval takes
    assert f"--output-dir {data}" not in message and f"nspzero report {out}" in message
    killed = tmp_path / "killed"
    (killed / "cache").mkdir(parents=True)
    (killed / "cache" / "scores-abc.jsonl").write_text("", encoding="utf-8")
    with pytest.raises(DataError, match=r"results.json: missing; give the --output-dir of an `nspzero eval` run"):
        read_results(killed)

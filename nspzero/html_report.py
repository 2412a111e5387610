"""`nspzero report`: one self-contained HTML file from an eval output folder, to read or send on.

Everything is inline (CSS, SVG; no script, no font or image download), so the file opens from disk
with no internet and the browser draws the Chinese label names. It reads what `nspzero eval`
writes: results.json (settings, per-task entries: accuracy, thresholds, label_order, variants,
calibrated) and <task>.predictions.jsonl (gold, prediction, and `scores` per label or one `score`).
When the eval's data folder is still where results.json says, the misclassified examples show
their texts too.
"""
from __future__ import annotations

import html
import json
import math
import os
from pathlib import Path
from typing import Any, Iterable, Optional, Sequence

from .errors import DataError
from .io import atomic_write_text

MISCLASSIFIED_PER_TASK = 5
MAX_SCORES_SHOWN = 6          # per misclassified example (the gold label's score is always shown)
MAX_TEXT_CHARS = 300
GOLD_ROLES = ("label", "answer")  # task fields that hold the gold answer: shown in their own column
BAR_COLOURS = ("#2f6fde", "#e07b39", "#1f9d55", "#9c4dcc", "#c62828", "#00838f", "#6d4c41", "#5c6bc0")


def write_report(out_dir: str | os.PathLike[str], output: Optional[str | os.PathLike[str]] = None) -> Path:
    """Write the HTML report of the eval in `out_dir` to `output` (default: OUT_DIR/report.html),
    atomically; returns its path. Raises DataError when `out_dir` holds no readable results.json."""
    path = Path(output) if output is not None else Path(out_dir) / "report.html"
    atomic_write_text(path, render_report(out_dir))
    return path


def render_report(out_dir: str | os.PathLike[str]) -> str:
    """The report of the eval in `out_dir`, as one HTML string."""
    out = Path(out_dir)
    results = _read_results(out)
    from .report import paper_rows
    from .tasks.registry import FEWCLUE

    paper = paper_rows()
    ours = results.get("tasks") or {}
    columns = [t for t in FEWCLUE if t in ours] + [t for t in ours if t not in FEWCLUE]
    body = [_header(results), _results_table(results, columns, paper), _accuracy_bars(ours, columns, paper)]
    for name in columns:
        body.append(_task_section(out, results, name, ours[name]))
    title = f"nspzero eval report — {results.get('model', '?')}"
    return (f"<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>{_e(title)}</title>\n"
            f"<style>{CSS}</style>\n</head>\n<body>\n<main>\n" + "\n".join(body) + "\n</main>\n</body>\n</html>\n")


# ---------------------------------------------------------------- reading

def _read_results(out: Path) -> dict:
    path = out / "results.json"
    if not out.is_dir():
        raise DataError(f"{out}: no such folder; give the --output-dir of an `nspzero eval` run")
    if not path.is_file():
        raise DataError(f"{path}: missing; give the --output-dir of an `nspzero eval` run "
                        f"(or run `nspzero eval ... --output-dir {out}` first)")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: not valid JSON ({exc}); re-run the eval to rewrite it") from None
    if not isinstance(data, dict) or not isinstance(data.get("tasks"), dict):
        raise DataError(f"{path}: not an nspzero results file (no 'tasks' mapping)")
    return data


def _read_rows(path: Path) -> Optional[list[dict]]:
    """The prediction rows of a task, or None when the file is missing; bad lines are skipped."""
    if not path.is_file():
        return None
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(row, dict):
            rows.append(row)
    return rows


def _example_texts(results: dict, name: str, entry: dict, indices: Iterable[int]) -> dict[int, dict]:
    """index → the example's fields (role → value), read back from the eval's data folder when it
    is still there; {} when it is not (the report then shows indices only)."""
    wanted = set(indices)
    data_dir = (results.get("settings") or {}).get("data_dir")
    if not wanted or not data_dir or not os.path.isdir(data_dir):
        return {}
    try:
        from .tasks.registry import load_task

        task = load_task(name)
        examples = task.read(data_dir, entry.get("split") or task.config.test_split, limit=max(wanted) + 1)
    except Exception:  # noqa: BLE001 - texts are a nicety; the report never fails for them
        return {}
    return {e.index: e.fields for e in examples if e.index in wanted}


# ---------------------------------------------------------------- formatting

def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _pct(value: Optional[float]) -> str:
    return "—" if value is None else f"{100 * value:.1f}"


def _num(value: Any, digits: int = 4) -> str:
    if isinstance(value, float):
        return f"{value:.{digits}g}" if abs(value) < 1e-3 or abs(value) >= 1e4 else f"{value:.{digits}f}"
    return _e(value)


def _short(text: Any, limit: int = MAX_TEXT_CHARS) -> str:
    text = str(text)
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _table(head: Sequence[str], rows: Iterable[Sequence[str]], cls: str = "", testid: str = "") -> str:
    """An HTML table; `head` and cells are HTML already (escape before)."""
    attrs = (f' class="{cls}"' if cls else "") + (f' data-testid="{testid}"' if testid else "")
    out = [f"<table{attrs}><thead><tr>" + "".join(f"<th>{h}</th>" for h in head) + "</tr></thead><tbody>"]
    for row in rows:
        out.append("<tr>" + "".join(c if c.startswith("<td") else f"<td>{c}</td>" for c in row) + "</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def _td_num(text: str, cls: str = "num") -> str:
    return f'<td class="{cls}">{text}</td>'


# ---------------------------------------------------------------- sections

def _facts(facts: Sequence[tuple[str, str]]) -> str:
    """Key: value pairs in one wrapping line (values are HTML already)."""
    return ('<p class="facts">' + "".join(f'<span class="fact"><span class="k">{_e(k)}:</span> {v}</span>'
                                          for k, v in facts) + "</p>")


def _header(results: dict) -> str:
    settings = results.get("settings") or {}
    versions = results.get("versions") or {}
    facts = [("model", f"<code>{_e(results.get('model', '?'))}</code>"),
             ("config hash", f"<code>{_e(results.get('config_hash', '?'))}</code>"),
             ("split", _e(settings.get("split", "?"))), ("max length", _e(settings.get("max_length", "?"))),
             ("dtype", _e(settings.get("dtype", "?"))), ("device", _e(settings.get("device", "?"))),
             ("engine", _e(settings.get("engine", "?"))), ("limit", _e(settings.get("limit") or "none")),
             ("versions", _e(", ".join(f"{k} {v}" for k, v in versions.items())))]
    score, mean = results.get("fewclue_score"), results.get("mean_accuracy")
    headline = (f"FewCLUE score <b>{_pct(score)}</b>" if score is not None
                else f"mean accuracy <b>{_pct(mean)}</b> over {len(results.get('tasks') or {})} task(s) "
                     f"(the FewCLUE score needs all nine)")
    notes = []
    if settings.get("limit"):
        notes.append(f'<p class="warn">With limit {_e(settings["limit"])} these numbers are a smoke test, '
                     f"not comparable to the paper.</p>")
    return (f"<header><h1>nspzero zero-shot eval — <code>{_e(results.get('model', '?'))}</code></h1>"
            f"<p class=\"headline\">{headline}. Accuracy in %.</p>"
            + _facts(facts)
            + "".join(notes) + "</header>")


def _results_table(results: dict, columns: list[str], paper: dict) -> str:
    ours = results["tasks"]
    model = results.get("model", "?")
    score = results.get("fewclue_score")
    head = ["method", "model", "score"] + [_e(c.upper()) for c in columns]
    reference = paper["rows"].get("NSP-BERT", {})
    rows = []
    cells = []
    for c in columns:
        acc = ours[c].get("accuracy")
        ref = reference.get(c, ours[c].get("reference"))
        delta = "" if acc is None or ref is None else f'<span class="delta">{100 * acc - ref:+.1f}</span>'
        cells.append(f'<td class="num ours">{_pct(acc)}{delta}</td>')
    rows.append(["<b>nspzero</b>", f"<code>{_e(model)}</code>", _td_num(_pct(score) if score is not None else "—"),
                 *cells])
    for how in (results.get("settings") or {}).get("calibration") or ():
        rows.append([f"nspzero + {_e(how)} calibration", f"<code>{_e(model)}</code>", _td_num("—"),
                     *[_td_num(_pct((ours[c].get("calibrated") or {}).get(how))) for c in columns]])
    for method, prow in paper["rows"].items():
        who = paper["model"] if method == "NSP-BERT" else "(paper)"
        rows.append([f"{_e(method)} (paper)", _e(who), _td_num(f"{prow['score']:.2f}"),
                     *[_td_num(f"{prow[c]:.1f}" if c in prow else "—") for c in columns]])
    return ("<section><h2>Results beside the paper</h2>"
            "<p class=\"hint\">Our accuracy per task, its difference to the paper's NSP-BERT row in small print, "
            "then the paper's rows (Table 1, zero-shot, FewCLUE test_public).</p>"
            + _table(head, rows, "results", "results-table") + "</section>")


def _accuracy_bars(ours: dict, columns: list[str], paper: dict) -> str:
    """Per task: our accuracy and the paper's NSP-BERT accuracy as two horizontal bars (SVG)."""
    reference = paper["rows"].get("NSP-BERT", {})
    left, width, row_h = 90, 520, 34
    height = 30 + row_h * len(columns)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" data-testid="accuracy-bars" '
             f'viewBox="0 0 {left + width + 70} {height}" width="{left + width + 70}" height="{height}" '
             f'role="img" aria-label="accuracy per task, ours against the paper">']
    for i in range(0, 101, 20):
        x = left + width * i / 100
        parts.append(f'<line x1="{x}" y1="18" x2="{x}" y2="{height - 4}" class="grid"/>'
                     f'<text x="{x}" y="12" class="tick" text-anchor="middle">{i}%</text>')
    for k, c in enumerate(columns):
        y = 22 + k * row_h
        acc = ours[c].get("accuracy") or 0.0
        ref = reference.get(c, ours[c].get("reference"))
        parts.append(f'<text x="{left - 8}" y="{y + 17}" text-anchor="end" class="name">{_e(c)}</text>')
        parts.append(f'<rect x="{left}" y="{y}" width="{width * acc:.1f}" height="13" class="ours">'
                     f'<title>nspzero {c}: {100 * acc:.1f}%</title></rect>'
                     f'<text x="{left + width * acc + 4:.1f}" y="{y + 11}" class="val">{100 * acc:.1f}</text>')
        if ref is not None:
            parts.append(f'<rect x="{left}" y="{y + 15}" width="{width * ref / 100:.1f}" height="13" class="paper">'
                         f'<title>paper NSP-BERT {c}: {ref:.1f}%</title></rect>'
                         f'<text x="{left + width * ref / 100 + 4:.1f}" y="{y + 26}" class="val">{ref:.1f}</text>')
    parts.append("</svg>")
    legend = ('<p class="legend"><span class="swatch ours"></span> nspzero '
              '<span class="swatch paper"></span> paper (NSP-BERT)</p>')
    return "<section><h2>Accuracy per task</h2>" + legend + "".join(parts) + "</section>"


def _task_section(out: Path, results: dict, name: str, entry: dict) -> str:
    rows = _read_rows(out / f"{name}.predictions.jsonl")
    facts = [("accuracy", f"<b>{_pct(entry.get('accuracy'))}%</b>"), ("examples", _e(entry.get("examples", "?"))),
             ("type", _e(entry.get("type", "?"))), ("prompt", f"<code>{_e(entry.get('prompt', '?'))}</code>"),
             ("split", _e(entry.get("split", "?")))]
    if entry.get("reference") is not None:
        facts.append(("paper", f"{entry['reference']:.1f}%"))
    if entry.get("dev_split"):
        facts.append(("thresholds from", f"{_e(entry['dev_split'])} ({_e(entry.get('dev_examples', '?'))} examples)"))
    facts += [("pairs", _e(entry.get("pairs", "?"))), ("seconds", _e(entry.get("seconds", "?")))]
    parts = [f'<section class="task" id="task-{_e(name)}" data-testid="task-{_e(name)}">'
             f"<h2>{_e(name)}</h2>" + _facts(facts)]
    if rows is None:
        parts.append(f'<p class="warn">No {_e(name)}.predictions.jsonl in this folder: no per-example views.</p>')
    elif entry.get("type") == "cloze" or _is_cloze(rows):
        parts.append(_cloze_views(rows))
    else:
        parts.append(_confusion(rows, entry))
        if _is_samples_contrast(rows, entry):
            parts.append(_histograms(rows, entry))
    parts.append(_variants(entry))
    parts.append(_calibrated(entry))
    parts.append(_batched(entry))
    if rows:
        parts.append(_misclassified(results, name, entry, rows))
    parts.append("</section>")
    return "".join(p for p in parts if p)


def _is_cloze(rows: list[dict]) -> bool:
    return bool(rows) and all(isinstance(r.get("scores"), dict) and r.get("gold") in r["scores"] for r in rows) \
        and len({tuple(r["scores"]) for r in rows}) > 1


def _is_samples_contrast(rows: list[dict], entry: dict) -> bool:
    return bool(rows) and all(isinstance(r.get("score"), (int, float)) for r in rows) \
        and bool(entry.get("thresholds")) and bool(entry.get("label_order"))


def _classes(rows: list[dict], entry: dict) -> list[Any]:
    seen = [r.get("gold") for r in rows] + [r.get("prediction") for r in rows]
    order = list(entry.get("label_order") or [])
    if not order:
        for r in rows:  # C-C rows list every label in their scores
            if isinstance(r.get("scores"), dict):
                order = list(r["scores"])
                break
    extra = sorted({str(x) for x in seen if x not in order})
    return order + [x for x in extra if x not in order]


def _confusion(rows: list[dict], entry: dict) -> str:
    """Gold × prediction counts as an HTML table, shaded by count; the last column is recall."""
    classes = _classes(rows, entry)
    index = {c: i for i, c in enumerate(classes)}
    index.update({str(c): i for i, c in enumerate(classes)})
    n = len(classes)
    matrix = [[0] * n for _ in range(n)]
    for r in rows:
        g, p = index.get(r.get("gold"), index.get(str(r.get("gold")))), index.get(r.get("prediction"),
                                                                                   index.get(str(r.get("prediction"))))
        if g is not None and p is not None:
            matrix[g][p] += 1
    top = max((v for row in matrix for v in row), default=0) or 1
    small = " small" if n > 20 else ""
    out = [f'<h3>Confusion matrix</h3><p class="hint">Rows: gold label; columns: prediction'
           f'{" (numbered as the rows)" if n > 20 else ""}. Diagonal cells are correct.</p><div class="scroll"><table class="confusion{small}" '
           f'data-testid="confusion"><thead><tr><th class="corner">gold \\ predicted</th>']
    # many classes (IFLYTEK's 119): columns are numbered, the rows carry number and name
    numbered = n > 20
    out += [f'<th class="col" title="{_e(c)}">{j + 1 if numbered else _e(_short(c, 24))}</th>'
            for j, c in enumerate(classes)]
    out.append("<th>n</th><th>recall</th></tr></thead><tbody>")
    for i, c in enumerate(classes):
        total = sum(matrix[i])
        recall = f"{100 * matrix[i][i] / total:.0f}%" if total else "—"
        cells = []
        for j, v in enumerate(matrix[i]):
            if not v:  # empty cells stay bare: a 119-class table has 14,161 of them
                cells.append('<td class="diag"></td>' if i == j else "<td></td>")
                continue
            alpha = v / top
            colour = f"rgba(31,157,85,{0.15 + 0.75 * alpha:.2f})" if i == j else f"rgba(47,111,222,{0.1 + 0.8 * alpha:.2f})"
            cls = ("diag" if i == j else "") + (" light" if alpha > 0.55 else "")
            cells.append(f'<td class="{cls.strip()}" style="background:{colour}" '
                         f'title="gold {_e(c)} → {_e(classes[j])}: {v}">{v}</td>')
        name = f"{i + 1} {_short(c, 24)}" if numbered else _short(c, 24)
        out.append(f'<tr><th class="row" title="{_e(c)}">{_e(name)}</th>' + "".join(cells)
                   + f'<td class="num">{total}</td><td class="num">{recall}</td></tr>')
    out.append("</tbody></table></div>")
    confusions = sorted(((matrix[i][j], i, j) for i in range(n) for j in range(n) if i != j and matrix[i][j]),
                        key=lambda t: (-t[0], t[1], t[2]))[:5]
    if confusions:
        out.append('<p class="hint">Most frequent confusions (gold → predicted): '
                   + ", ".join(f"{_e(classes[i])} → {_e(classes[j])} ({v})" for v, i, j in confusions) + ".</p>")
    return "".join(out)


def _ticks(low: float, high: float) -> tuple[list[float], int]:
    """Five tick positions and the decimals that tell them apart (tiny models spread scores by 1e-6)."""
    span = high - low or 1.0
    decimals = max(2, min(8, int(math.ceil(-math.log10(span / 4))) + 1))
    return [low + span * k / 4 for k in range(5)], decimals


def _histograms(rows: list[dict], entry: dict) -> str:
    """Samples-contrast: one histogram of scores per gold label, the learned thresholds dashed."""
    order = list(entry["label_order"])
    order += sorted({str(r.get("gold")) for r in rows} - set(map(str, order)))
    thresholds = [float(t) for t in entry["thresholds"]]
    by_label = {label: [float(r["score"]) for r in rows if str(r.get("gold")) == str(label)
                        and math.isfinite(float(r["score"]))] for label in order}
    values = [s for scores in by_label.values() for s in scores] + thresholds
    low, high = (min(values), max(values)) if values else (0.0, 1.0)
    pad = (high - low) * 0.04 or 0.01
    low, high = low - pad, high + pad
    n_scores = sum(len(s) for s in by_label.values())
    bins = int(min(40, max(8, 2 * math.sqrt(max(n_scores, 1)))))
    left, width, panel_h, gap = 150, 560, 54, 12
    head = 14 + 12 * len(thresholds)  # one text line per threshold label, so close ones never overlap
    height = head + len(order) * (panel_h + gap) + 30
    x = lambda v: left + width * (v - low) / (high - low)  # noqa: E731
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" data-testid="histograms" '
             f'viewBox="0 0 {left + width + 60} {height}" width="{left + width + 60}" height="{height}" role="img" '
             f'aria-label="score histograms per gold label with the learned thresholds">']
    for k, label in enumerate(order):
        top = head + k * (panel_h + gap)
        counts = [0] * bins
        for s in by_label[label]:
            counts[min(bins - 1, max(0, int((s - low) / (high - low) * bins)))] += 1
        peak = max(counts) or 1
        colour = BAR_COLOURS[k % len(BAR_COLOURS)]
        parts.append(f'<text x="{left - 8}" y="{top + panel_h / 2 + 4}" text-anchor="end" class="name">'
                     f'{_e(_short(label, 18))} (n={len(by_label[label])})</text>'
                     f'<line x1="{left}" y1="{top + panel_h}" x2="{left + width}" y2="{top + panel_h}" class="axis"/>')
        bw = width / bins
        for b, count in enumerate(counts):
            if count:
                h = panel_h * count / peak
                parts.append(f'<rect x="{left + b * bw:.2f}" y="{top + panel_h - h:.2f}" width="{bw - 1:.2f}" '
                             f'height="{h:.2f}" fill="{colour}" opacity="0.75"><title>{count}</title></rect>')
    bottom = head + len(order) * (panel_h + gap)
    ticks, decimals = _ticks(low, high)
    for t in ticks:
        parts.append(f'<text x="{x(t):.1f}" y="{bottom + 8}" text-anchor="middle" class="tick">{t:.{decimals}f}</text>')
    parts.append(f'<text x="{left + width / 2}" y="{bottom + 24}" text-anchor="middle" class="tick">'
                 f'NSP score P(IsNext)</text>')
    for i, t in enumerate(thresholds):
        between = f"{_short(order[i], 12)} | {_short(order[i + 1], 12)}" if i + 1 < len(order) else f"t{i + 1}"
        y = 12 + 12 * i
        anchor = "end" if x(t) > left + width * 0.6 else "start"
        parts.append(f'<line x1="{x(t):.1f}" y1="{y + 2}" x2="{x(t):.1f}" y2="{bottom - 4}" class="threshold"/>'
                     f'<text x="{x(t) + (-3 if anchor == "end" else 3):.1f}" y="{y}" text-anchor="{anchor}" '
                     f'class="thr">{_e(between)}  {t:.{decimals + 1}f}</text>')
    parts.append("</svg>")
    listing = ", ".join(f"{_e(order[i])} | {_e(order[i + 1]) if i + 1 < len(order) else '?'} at "
                        f"<code>{t!r}</code>" for i, t in enumerate(thresholds))
    return ("<h3>Scores and learned thresholds</h3><p class=\"hint\">Samples contrast: each test example's "
            "NSP score, by gold label; the dashed lines are the thresholds learned on the dev split "
            f"({listing}). Labels are ordered by rising score.</p>" + "".join(parts))


def _cloze_views(rows: list[dict]) -> str:
    """ChID: the candidates differ per example, so no confusion matrix; instead accuracy by the
    answer's position among the candidates, where the predictions fall, and by candidate count."""
    by_pos: dict[int, list[int]] = {}
    predicted_at: dict[int, int] = {}
    by_count: dict[int, list[int]] = {}
    for r in rows:
        names = list(r["scores"])
        pos = names.index(r["gold"]) + 1
        correct = int(r.get("prediction") == r.get("gold"))
        by_pos.setdefault(pos, []).append(correct)
        by_count.setdefault(len(names), []).append(correct)
        if r.get("prediction") in names:
            p = names.index(r["prediction"]) + 1
            predicted_at[p] = predicted_at.get(p, 0) + 1
    positions = sorted(set(by_pos) | set(predicted_at))

    def bar(value: float) -> str:
        return f'<td class="barcell"><span class="minibar" style="width:{100 * value:.0f}%"></span></td>'

    pos_rows = []
    for p in positions:
        hits = by_pos.get(p, [])
        acc = sum(hits) / len(hits) if hits else 0.0
        pos_rows.append([_td_num(str(p)), _td_num(str(len(hits))), _td_num(_pct(acc) if hits else "—"), bar(acc),
                         _td_num(str(predicted_at.get(p, 0)))])
    count_rows = [[_td_num(str(c)), _td_num(str(len(v))), _td_num(_pct(sum(v) / len(v)))]
                  for c, v in sorted(by_count.items())]
    return ("<h3>Accuracy by the answer's position</h3><p class=\"hint\">Cloze task: every example has its own "
            "candidates, so there is no confusion matrix. A model with a position bias predicts one position "
            "far more often than the answers sit there.</p>"
            + _table(["answer position", "examples", "accuracy %", "accuracy", "predicted here"], pos_rows, "narrow",
                     "cloze-positions")
            + "<h3>Accuracy by number of candidates</h3>"
            + _table(["candidates", "examples", "accuracy %"], count_rows, "narrow", "cloze-candidates"))


def _variants(entry: dict) -> str:
    variants = entry.get("variants")
    if not variants:
        return ""
    prompt = str(entry.get("prompt", ""))
    rows = [[_e(name) + (" <i>(default)</i>" if prompt.endswith(":" + name) else ""),
             " · ".join(f"<code>{_e(t)}</code>" for t in v.get("templates", [])), _e(v.get("combine", "")),
             _td_num(_pct(v.get("accuracy")))] for name, v in variants.items()]
    return ("<h3>Prompt variants and ensembles</h3>"
            + _table(["variant", "templates", "combine", "accuracy %"], rows, "narrow", "variants"))


def _calibrated(entry: dict) -> str:
    calibrated = entry.get("calibrated")
    if not calibrated:
        return ""
    rows = [["none", _td_num(_pct(entry.get("accuracy")))]]
    rows += [[_e(how), _td_num(_pct(acc))] for how, acc in calibrated.items()]
    return "<h3>Calibration</h3>" + _table(["calibration", "accuracy %"], rows, "narrow", "calibration")


def _batched(entry: dict) -> str:
    batched = entry.get("batched_accuracy")
    if not isinstance(batched, dict) or not batched:
        return ""
    head = ["chunk size"] + [_e(k) for k in batched]
    return ("<h3>Without a dev set: equal split within test chunks</h3><p class=\"hint\">Accuracy when each "
            "chunk of this many test examples (in input order) is split evenly among the labels by score, "
            "instead of using the dev thresholds.</p>"
            + _table(head, [["accuracy %"] + [_td_num(_pct(v)) for v in batched.values()]], "narrow", "batched"))


def _wrong_margin(row: dict, entry: dict) -> float:
    """How confidently wrong a row is (larger first): the predicted label's score above the gold's,
    or for a single score its distance from the gold label's threshold interval."""
    scores = row.get("scores")
    if isinstance(scores, dict):
        return float(scores.get(row.get("prediction"), 0.0)) - float(scores.get(row.get("gold"), 0.0))
    score, order, thresholds = row.get("score"), list(entry.get("label_order") or []), entry.get("thresholds") or []
    if not isinstance(score, (int, float)) or row.get("gold") not in order or len(thresholds) != len(order) - 1:
        return 0.0
    k = order.index(row["gold"])
    low = thresholds[k - 1] if k > 0 else -math.inf
    high = thresholds[k] if k < len(thresholds) else math.inf
    return max(low - score, score - high, 0.0)


def _misclassified(results: dict, name: str, entry: dict, rows: list[dict]) -> str:
    wrong = [r for r in rows if r.get("gold") != r.get("prediction")]
    if not wrong:
        return "<h3>Misclassified examples</h3><p>None: every example is right.</p>"
    shown = sorted(wrong, key=lambda r: -_wrong_margin(r, entry))[:MISCLASSIFIED_PER_TASK]
    texts = _example_texts(results, name, entry, [r["index"] for r in shown if isinstance(r.get("index"), int)])
    items = []
    for r in shown:
        fields = texts.get(r.get("index"))
        if fields:
            text = "<br>".join(f'<span class="role">{_e(role)}</span> {_e(_short(_flat(v)))}'
                               for role, v in fields.items() if role not in GOLD_ROLES)
        else:
            text = '<span class="hint">(text not available: the data folder is not where results.json says)</span>'
        scores = r.get("scores")
        if isinstance(scores, dict):
            ranked = sorted(scores.items(), key=lambda kv: -kv[1])
            keep = ranked[:MAX_SCORES_SHOWN]
            if r.get("gold") in scores and r["gold"] not in dict(keep):
                keep.append((r["gold"], scores[r["gold"]]))
            score_html = " ".join(
                f'<span class="chip{" gold" if k == r.get("gold") else ""}{" pred" if k == r.get("prediction") else ""}">'
                f"{_e(k)} <code>{v:.6g}</code></span>" for k, v in keep)
        else:
            score_html = f"score <code>{_e(r.get('score'))}</code>"
        items.append([_td_num(_e(r.get("index", "?"))), text, f'<span class="chip gold">{_e(r.get("gold"))}</span>',
                      f'<span class="chip pred">{_e(r.get("prediction"))}</span>', score_html])
    return (f"<h3>Misclassified examples</h3><p class=\"hint\">The {len(shown)} most confidently wrong of "
            f"{len(wrong)} (green: gold, red: predicted).</p>"
            + _table(["#", "text", "gold", "predicted", "scores"], items, "examples", "misclassified"))


def _flat(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return ", ".join(map(str, value))
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


CSS = """
:root{--fg:#1d2330;--muted:#5b6475;--line:#d9dde5;--accent:#2f6fde;--ok:#1f9d55;--bad:#c62828;
font-family:system-ui,-apple-system,"Segoe UI","Noto Sans","Noto Sans CJK SC","PingFang SC","Microsoft YaHei",
"WenQuanYi Micro Hei",sans-serif;color:var(--fg);background:#f6f7f9;font-size:14px}
body{margin:0}main{max-width:1100px;margin:0 auto;padding:18px 24px 60px}
header,section{background:#fff;border:1px solid var(--line);border-radius:8px;padding:12px 18px;margin-bottom:16px}
h1{font-size:21px;margin:4px 0}h2{font-size:18px;margin:4px 0 8px}h3{font-size:15px;margin:16px 0 6px}
.headline{font-size:16px}.hint{color:var(--muted);font-size:13px}.warn{color:#8a5a00;background:#fff4d6;padding:6px 10px;border-radius:6px}
p.facts{margin:6px 0;line-height:1.7}.fact{margin-right:18px;display:inline-block}.fact .k{color:var(--muted)}
code{background:#eef0f4;padding:0 3px;border-radius:3px;font-size:90%}
table{border-collapse:collapse;margin:4px 0 8px}th,td{border:1px solid var(--line);padding:3px 7px;text-align:left;vertical-align:top}
th{background:#f0f2f6}td.num{text-align:right;font-variant-numeric:tabular-nums}
table.results td.ours{background:#eaf1fd;font-weight:600}.delta{display:block;font-size:11px;font-weight:normal;color:var(--muted)}
.scroll{overflow:auto;max-height:900px}
table.confusion td{text-align:center;min-width:26px;font-variant-numeric:tabular-nums}table.confusion td.diag{font-weight:700}
table.confusion td.light{color:#fff}table.confusion th.row{text-align:right;white-space:nowrap}
table.confusion th.col{vertical-align:bottom;white-space:nowrap}
table.confusion.small{font-size:10px}table.confusion.small td{min-width:14px;padding:1px 2px}
svg.chart{max-width:100%;height:auto;display:block}svg .grid{stroke:#e3e6ec}svg .axis{stroke:#9aa3b2}
svg .tick{font-size:10px;fill:var(--muted)}svg .name{font-size:12px;fill:var(--fg)}svg .val{font-size:10px;fill:var(--muted)}
svg rect.ours{fill:var(--accent)}svg rect.paper{fill:#b9c0cc}svg .threshold{stroke:#333;stroke-dasharray:5 3}
svg .thr{font-size:10px;fill:#333}
.legend .swatch{display:inline-block;width:12px;height:12px;border-radius:2px;vertical-align:middle}
.swatch.ours{background:var(--accent)}.swatch.paper{background:#b9c0cc;margin-left:12px}
td.barcell{width:160px}.minibar{display:block;height:10px;background:var(--accent);border-radius:2px}
table.examples td{max-width:520px}.role{color:var(--muted);font-size:12px}
.chip{display:inline-block;border-radius:4px;padding:0 5px;margin:1px 2px;background:#eef0f4;white-space:nowrap}
.chip.gold{background:#d5f2e1;color:#12663a}.chip.pred{background:#fdecea;color:var(--bad)}
@media print{main{max-width:none}section{break-inside:avoid}}
"""

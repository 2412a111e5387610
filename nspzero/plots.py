"""Diagnostic plots for `nspzero eval`: a confusion matrix per task and, for samples-contrast tasks,
score histograms with the learned thresholds, so that a poor accuracy can be seen rather than guessed.
ChID (cloze: each example has its own candidates) gets accuracy by the answer's position instead.

Chinese labels need a CJK font: the first installed one of CJK_FONTS is used (system font files
matplotlib's cached font list misses are found too). Without one, a single warning says what to
install, instead of one matplotlib "Glyph missing" warning per character.

matplotlib is an optional extra (`pip install 'nspzero[plots]'`); it is imported only when a plot is
drawn, so the rest of nspzero never needs it.
"""
from __future__ import annotations

import functools
import logging
import math
import os
import warnings
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np

from .extras import install_hint
from .io import atomic_write

log = logging.getLogger("nspzero")

INSTALL_HINT = f"plots need matplotlib: {install_hint('plots')}"
NO_CJK_FONT = ("no CJK font found: Chinese labels in the plots show as empty boxes; install one, e.g. "
               "`apt-get install fonts-noto-cjk` (Debian/Ubuntu), `dnf install google-noto-sans-cjk-fonts` "
               "(Fedora) or `brew install --cask font-noto-sans-cjk` (macOS), then re-run")
MAX_CELL_TEXT = 30        # above this many classes the confusion cells carry no counts
MAX_LABEL_CHARS = 24      # longer class names are shortened on the axes

# Families tried, in order, for glyphs DejaVu Sans lacks (Chinese labels such as IFLYTEK's).
CJK_FONTS = ("Noto Sans CJK SC", "Noto Sans SC", "Source Han Sans SC", "Source Han Sans CN",
             "WenQuanYi Micro Hei", "WenQuanYi Zen Hei", "Microsoft YaHei", "SimHei", "PingFang SC",
             "Heiti SC", "Hiragino Sans GB", "Droid Sans Fallback", "Arial Unicode MS")
# File names of those fonts, for system fonts installed after matplotlib cached its font list.
CJK_FILE_HINTS = ("notosanscjk", "notoserifcjk", "notosanssc", "sourcehansans", "wqy-microhei", "wqy-zenhei",
                  "msyh", "simhei", "pingfang", "droidsansfallback", "arialuni")
_warned_no_cjk = False


def plots_available() -> bool:
    """Whether matplotlib can be imported (the `plots` extra is installed)."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def write_task_plots(out_dir: str | os.PathLike[str], task: str, rows: Sequence[dict], entry: dict,
                     model: Optional[str] = None) -> list[Path]:
    """Write `<task>.confusion.png` and, for samples-contrast tasks, `<task>.scores.png`; a cloze
    task (ChID: candidates differ per example) gets `<task>.positions.png` instead of a confusion matrix.

    `rows` are the task's prediction rows (`gold`, `prediction`, and `scores` or `score`); `entry`
    is its results entry (`accuracy`, and for samples-contrast `thresholds` and `label_order`).
    `model` names the model in the titles (default: `entry["model"]`, if any). Each file is replaced
    atomically. Returns the paths written. Raises ImportError with an install hint when matplotlib
    is missing.
    """
    plt = _pyplot()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rows = list(rows)
    title = _title(task, rows, entry, model if model is not None else entry.get("model"))
    written = []
    texts = [title] + [str(c) for c in _classes(rows, entry)] if not _is_cloze(rows, entry) else [title]
    with plt.rc_context(_font_rc(needs_cjk=any(_is_cjk(t) for t in texts))), warnings.catch_warnings():
        # without a CJK font, _font_rc has said so once; matplotlib would repeat it per character
        warnings.filterwarnings("ignore", message=r"Glyph .* missing from")
        if _is_cloze(rows, entry):
            fig = _positions_figure(plt, rows, title)
            written.append(_save(plt, fig, out / f"{task}.positions.png"))
            return written
        fig = _confusion_figure(plt, rows, entry, title)
        written.append(_save(plt, fig, out / f"{task}.confusion.png"))
        if _is_samples_contrast(rows, entry):
            fig = _scores_figure(plt, rows, entry, title)
            written.append(_save(plt, fig, out / f"{task}.scores.png"))
    return written


def _pyplot() -> Any:
    try:
        import matplotlib
        matplotlib.use("Agg")  # files only: never open a window, work without a display
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise ImportError(INSTALL_HINT) from exc
    return plt


def _is_cjk(text: str) -> bool:
    """Whether `text` has a character from the CJK blocks (which DejaVu Sans lacks)."""
    return any("\u2e80" <= ch <= "\u9fff" or "\uac00" <= ch <= "\ud7af" or "\uf900" <= ch <= "\ufaff"
               or "\uff00" <= ch <= "\uffef" for ch in text)


@functools.lru_cache(maxsize=1)
def cjk_font() -> Optional[str]:
    """The family name of an installed CJK font (CJK_FONTS order), or None.

    matplotlib caches its font list once; a font installed later is found by its file name among
    the system fonts and registered (`fontManager.addfont`)."""
    from matplotlib import font_manager

    installed = {f.name for f in font_manager.fontManager.ttflist}
    for name in CJK_FONTS:
        if name in installed:
            return name
    found = []
    for path in font_manager.findSystemFonts():
        stem = os.path.basename(path).lower().replace("_", "").replace(" ", "")
        if any(hint in stem for hint in CJK_FILE_HINTS):
            try:
                font_manager.fontManager.addfont(path)
                found.append(font_manager.FontProperties(fname=path).get_name())
            except Exception:  # noqa: BLE001 - an unreadable font file is just not a candidate
                continue
    for name in CJK_FONTS:
        if name in found:
            return name
    return found[0] if found else None


def _font_rc(needs_cjk: bool = True) -> dict[str, Any]:
    """DejaVu Sans first, then an installed CJK family as the per-glyph fallback; when the text
    needs one and none is installed, one warning (per process) says what to install."""
    global _warned_no_cjk
    family = cjk_font()
    if family is None and needs_cjk and not _warned_no_cjk:
        log.warning(NO_CJK_FONT)
        _warned_no_cjk = True
    return {"font.family": ["DejaVu Sans"] + ([family] if family else [])}


def _title(task: str, rows: list[dict], entry: dict, model: Optional[str]) -> str:
    accuracy = entry.get("accuracy")
    if accuracy is None and rows:
        accuracy = float(np.mean([r.get("gold") == r.get("prediction") for r in rows]))
    parts = [task]
    if model:
        parts.append(str(model))
    parts.append(f"accuracy {accuracy:.1%}" if accuracy is not None else "accuracy n/a")
    parts.append(f"n={len(rows)}")
    return " · ".join(parts)


def _sort_key(label: Any) -> tuple[int, Any]:
    if isinstance(label, (int, float)) and not isinstance(label, bool):
        return (0, label)
    return (1, str(label))


def _classes(rows: list[dict], entry: dict) -> list[Any]:
    """`label_order` when the entry has one (labels it misses appended), else the sorted union."""
    seen = {r.get("gold") for r in rows} | {r.get("prediction") for r in rows}
    order = list(entry.get("label_order") or [])
    extra = sorted((label for label in seen if label not in order), key=_sort_key)
    return order + extra


def _short(label: Any) -> str:
    text = str(label)
    return text if len(text) <= MAX_LABEL_CHARS else text[:MAX_LABEL_CHARS - 1] + "…"


def _confusion_figure(plt: Any, rows: list[dict], entry: dict, title: str) -> Any:
    classes = _classes(rows, entry)
    n = len(classes)
    matrix = np.zeros((n, n), dtype=int)
    if n:
        from sklearn.metrics import confusion_matrix

        matrix = confusion_matrix([r.get("gold") for r in rows], [r.get("prediction") for r in rows], labels=classes)

    side = min(32.0, max(6.0, 0.22 * n + 3.5))             # inches: ~0.22 in per class when many
    tick_size = 10.0 if n <= 15 else max(4.5, 10.0 - (n - 15) * 0.055)
    fig, ax = plt.subplots(figsize=(side + 1.2, side), dpi=130 if n <= MAX_CELL_TEXT else 100)
    ax.set_title(title, fontsize=11 if n <= MAX_CELL_TEXT else 14, pad=10)
    if n == 0:
        ax.text(0.5, 0.5, "no examples", ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
        return fig
    image = ax.imshow(matrix, cmap="Blues", interpolation="nearest", aspect="equal",
                      vmin=0, vmax=max(1, int(matrix.max())))
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.02).set_label("examples")
    names = [_short(c) for c in classes]
    ax.set_xticks(range(n), names, fontsize=tick_size, rotation=90 if n > 8 else 45,
                  ha="center" if n > 8 else "right", rotation_mode="anchor" if n <= 8 else "default")
    ax.set_yticks(range(n), names, fontsize=tick_size)
    ax.set_xlabel("prediction")
    ax.set_ylabel("gold")
    if n <= MAX_CELL_TEXT:
        dark = matrix.max() / 2
        cell_size = max(5.0, min(11.0, 160.0 / n))
        for i in range(n):
            for j in range(n):
                value = matrix[i, j]
                ax.text(j, i, str(value), ha="center", va="center", fontsize=cell_size,
                        color="white" if value > dark else ("0.6" if value == 0 else "black"))
    fig.tight_layout()
    return fig


def _is_cloze(rows: list[dict], entry: dict) -> bool:
    """ChID-like: typed 'cloze', or rows whose candidate sets (their scores' keys) differ."""
    if entry.get("type") == "cloze":
        return True
    return bool(rows) and all(isinstance(r.get("scores"), dict) and r.get("gold") in r["scores"] for r in rows) \
        and len({tuple(r["scores"]) for r in rows}) > 1


def _positions_figure(plt: Any, rows: list[dict], title: str) -> Any:
    """Cloze: accuracy by the answer's position among the candidates (left), and where answers
    and predictions fall (right) — a position bias shows as one tall prediction bar."""
    answers: dict[int, list[int]] = {}
    predicted: dict[int, int] = {}
    for r in rows:
        scores = r.get("scores")
        if not isinstance(scores, dict) or r.get("gold") not in scores:
            continue
        names = list(scores)
        pos = names.index(r["gold"]) + 1
        answers.setdefault(pos, []).append(int(r.get("prediction") == r.get("gold")))
        if r.get("prediction") in names:
            p = names.index(r["prediction"]) + 1
            predicted[p] = predicted.get(p, 0) + 1
    positions = sorted(set(answers) | set(predicted))
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.5), dpi=130)
    fig.suptitle(title, fontsize=11)
    if not positions:
        for ax in (left, right):
            ax.text(0.5, 0.5, "no examples", ha="center", va="center", transform=ax.transAxes)
            ax.set_axis_off()
        return fig
    accuracy = [float(np.mean(answers[p])) if answers.get(p) else 0.0 for p in positions]
    bars = left.bar(positions, accuracy, color="#2f6fde")
    for bar, p in zip(bars, positions):
        left.annotate(f"n={len(answers.get(p, []))}", (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                      ha="center", va="bottom", fontsize=8, xytext=(0, 2), textcoords="offset points")
    left.set_ylim(0, 1.1)
    left.set_xticks(positions)
    left.set_xlabel("position of the answer among the candidates")
    left.set_ylabel("accuracy")
    left.set_title("accuracy by answer position", fontsize=10)
    width = 0.4
    right.bar([p - width / 2 for p in positions], [len(answers.get(p, [])) for p in positions], width,
              label="answers here", color="#1f9d55")
    right.bar([p + width / 2 for p in positions], [predicted.get(p, 0) for p in positions], width,
              label="predictions here", color="#e07b39")
    right.set_xticks(positions)
    right.set_xlabel("candidate position")
    right.set_ylabel("examples")
    right.set_title("where answers and predictions fall", fontsize=10)
    right.legend(fontsize=8)
    fig.tight_layout()
    return fig


def _is_samples_contrast(rows: list[dict], entry: dict) -> bool:
    return bool(rows) and all("score" in r for r in rows) \
        and bool(entry.get("thresholds")) and bool(entry.get("label_order"))


def _scores_figure(plt: Any, rows: list[dict], entry: dict, title: str) -> Any:
    order = list(entry["label_order"])
    order += sorted({r.get("gold") for r in rows} - set(order), key=_sort_key)
    thresholds = [float(t) for t in entry["thresholds"]]
    by_label = {label: np.array([float(r["score"]) for r in rows if r.get("gold") == label], dtype=float)
                for label in order}
    by_label = {label: s[np.isfinite(s)] for label, s in by_label.items()}
    everything = np.concatenate([*by_label.values(), np.array(thresholds)])
    everything = everything[np.isfinite(everything)]
    low, high = (float(everything.min()), float(everything.max())) if everything.size else (0.0, 1.0)
    pad = (high - low) * 0.03 or 0.01
    n_scores = sum(s.size for s in by_label.values())
    edges = np.linspace(low - pad, high + pad, int(min(60, max(10, 2 * math.sqrt(max(n_scores, 1))))) + 1)

    fig, ax = plt.subplots(figsize=(9, 5), dpi=130)
    colours = plt.get_cmap("tab10" if len(order) <= 10 else "tab20")
    for i, label in enumerate(order):
        scores = by_label[label]
        if label not in entry["label_order"] and scores.size == 0:
            continue
        colour = colours(i % colours.N)
        ax.hist(scores, bins=edges, histtype="stepfilled", alpha=0.35, color=colour,
                label=f"{_short(label)} (n={scores.size})")
        ax.hist(scores, bins=edges, histtype="step", linewidth=1.2, color=colour)
    for i, t in enumerate(thresholds):
        ax.axvline(t, color="0.2", linestyle="--", linewidth=1.0)
        between = f"{_short(order[i])} | {_short(order[i + 1])}" if i + 1 < len(order) else f"t{i + 1}"
        ax.text(t, 0.98, f"{between}  {t:.4g}", transform=ax.get_xaxis_transform(), rotation=90,
                ha="right", va="top", fontsize=8, color="0.15",
                bbox={"boxstyle": "round,pad=0.2", "facecolor": "white", "edgecolor": "none", "alpha": 0.7})
    ax.set_ylim(top=ax.get_ylim()[1] * 1.3)  # headroom for the threshold labels
    ax.set_title(title, fontsize=11)
    ax.set_xlabel("NSP score P(IsNext)")
    ax.set_ylabel("examples")
    ax.legend(title="gold label", fontsize=8, title_fontsize=8, loc="best", framealpha=0.85)
    fig.tight_layout()
    return fig


def _save(plt: Any, fig: Any, path: Path) -> Path:
    """Save `fig` as PNG atomically (temp file + rename, as every nspzero output)."""
    try:
        return atomic_write(path, lambda handle: fig.savefig(handle, format="png"))
    finally:
        plt.close(fig)

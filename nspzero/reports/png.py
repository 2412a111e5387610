"""PNG plots for `nspzero eval --plots`: a confusion matrix per task and, for samples-contrast tasks,
score histograms with the learned thresholds; ChID (cloze: each example has its own candidates)
gets accuracy by the answer's position instead. The numbers come from diagnostics.py, the same
ones the HTML report shows; this module only draws them.

Chinese labels need a CJK font: the first installed one of CJK_FONTS is used (system font files
matplotlib's cached font list misses are found too). Without one, a single warning says what to
install, instead of one matplotlib "Glyph missing" warning per character.

matplotlib is an optional extra (`pip install 'nspzero[plots]'`); it is imported only when a plot is
drawn, so the rest of nspzero never needs it.
"""
from __future__ import annotations

import functools
import io
import logging
import os
import warnings
from typing import Any, Optional

import numpy as np

from ..extras import install_hint
from .diagnostics import ClozePositions, Confusion, Histograms, TaskDiagnostics, TaskEntry, shorten

log = logging.getLogger("nspzero")

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


def task_pngs(task: TaskDiagnostics, model: Optional[str] = None) -> dict[str, bytes]:
    """The plots of one task as PNG bytes by file name: `<task>.confusion.png` (and
    `<task>.scores.png` for samples contrast), or `<task>.positions.png` for a cloze task.
    Raises ImportError with an install hint when matplotlib is missing."""
    plt = _pyplot()
    title = _title(task, model)
    texts = [title] + (task.confusion.classes if task.confusion else [])
    figures: dict[str, Any] = {}
    with plt.rc_context(_font_rc(needs_cjk=any(_is_cjk(t) for t in texts))), warnings.catch_warnings():
        # without a CJK font, _font_rc has said so once; matplotlib would repeat it per character
        warnings.filterwarnings("ignore", message=r"Glyph .* missing from")
        if task.cloze is not None:
            figures[f"{task.name}.positions.png"] = _positions_figure(plt, task.cloze, title)
        else:
            empty = Confusion([], np.zeros((0, 0), dtype=int))
            figures[f"{task.name}.confusion.png"] = _confusion_figure(plt, task.confusion or empty, title)
            if task.histograms is not None:
                figures[f"{task.name}.scores.png"] = _scores_figure(plt, task.histograms, task.entry, title)
        return {name: _png(plt, fig) for name, fig in figures.items()}


def _pyplot() -> Any:
    try:
        import matplotlib
        matplotlib.use("Agg")  # files only: never open a window, work without a display
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise ImportError(f"plots need matplotlib: {install_hint('plots')}") from exc
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


def _title(task: TaskDiagnostics, model: Optional[str]) -> str:
    accuracy = task.accuracy
    parts = [task.name] + ([str(model)] if model else [])
    parts.append(f"accuracy {accuracy:.1%}" if accuracy is not None else "accuracy n/a")
    parts.append(f"n={len(task.rows or [])}")
    return " · ".join(parts)


def _confusion_figure(plt: Any, confusion: Confusion, title: str) -> Any:
    n = len(confusion.classes)
    matrix = confusion.matrix
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
    names = [shorten(c, MAX_LABEL_CHARS) for c in confusion.classes]
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


def _positions_figure(plt: Any, cloze: ClozePositions, title: str) -> Any:
    """Cloze: accuracy by the answer's position among the candidates (left), and where answers
    and predictions fall (right) — a position bias shows as one tall prediction bar."""
    positions = cloze.positions
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.5), dpi=130)
    fig.suptitle(title, fontsize=11)
    if not positions:
        for ax in (left, right):
            ax.text(0.5, 0.5, "no examples", ha="center", va="center", transform=ax.transAxes)
            ax.set_axis_off()
        return fig
    accuracy = [cloze.accuracy(cloze.answers.get(p, [])) or 0.0 for p in positions]
    bars = left.bar(positions, accuracy, color="#2f6fde")
    for bar, p in zip(bars, positions):
        left.annotate(f"n={len(cloze.answers.get(p, []))}", (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                      ha="center", va="bottom", fontsize=8, xytext=(0, 2), textcoords="offset points")
    left.set_ylim(0, 1.1)
    left.set_xticks(positions)
    left.set_xlabel("position of the answer among the candidates")
    left.set_ylabel("accuracy")
    left.set_title("accuracy by answer position", fontsize=10)
    width = 0.4
    right.bar([p - width / 2 for p in positions], [len(cloze.answers.get(p, [])) for p in positions], width,
              label="answers here", color="#1f9d55")
    right.bar([p + width / 2 for p in positions], [cloze.predicted.get(p, 0) for p in positions], width,
              label="predictions here", color="#e07b39")
    right.set_xticks(positions)
    right.set_xlabel("candidate position")
    right.set_ylabel("examples")
    right.set_title("where answers and predictions fall", fontsize=10)
    right.legend(fontsize=8)
    fig.tight_layout()
    return fig


def _scores_figure(plt: Any, h: Histograms, entry: TaskEntry, title: str) -> Any:
    fig, ax = plt.subplots(figsize=(9, 5), dpi=130)
    colours = plt.get_cmap("tab10" if len(h.order) <= 10 else "tab20")
    for i, label in enumerate(h.order):
        if label not in entry.label_order and h.sizes[label] == 0:
            continue
        colour = colours(i % colours.N)
        ax.stairs(h.counts[label], h.edges, fill=True, alpha=0.35, color=colour,
                  label=f"{shorten(label, MAX_LABEL_CHARS)} (n={h.sizes[label]})")
        ax.stairs(h.counts[label], h.edges, linewidth=1.2, color=colour)
    for t, text, between in zip(h.thresholds, h.threshold_text, h.between):
        ax.axvline(t, color="0.2", linestyle="--", linewidth=1.0)
        ax.text(t, 0.98, f"{shorten(between, 2 * MAX_LABEL_CHARS)}  {text}", transform=ax.get_xaxis_transform(), rotation=90,
                ha="right", va="top", fontsize=8, color="0.15",
                bbox={"boxstyle": "round,pad=0.2", "facecolor": "white", "edgecolor": "none", "alpha": 0.7})
    ax.set_ylim(top=ax.get_ylim()[1] * 1.3)  # headroom for the threshold labels
    ax.set_title(title, fontsize=11)
    ax.set_xlabel("NSP score P(IsNext)")
    ax.set_ylabel("examples")
    ax.legend(title="gold label", fontsize=8, title_fontsize=8, loc="best", framealpha=0.85)
    fig.tight_layout()
    return fig


def _png(plt: Any, fig: Any) -> bytes:
    try:
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png")
        return buffer.getvalue()
    finally:
        plt.close(fig)

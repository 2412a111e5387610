"""results.md: our accuracies beside the paper's rows, always naming the model they came from."""
from __future__ import annotations

from typing import Any

from .diagnostics import paper_rows, pct, task_columns


def md(value: Any) -> str:
    """A value as one Markdown table cell: a `|` would open a new column, a newline end the row,
    and `<` start raw HTML in a viewer that renders it."""
    return str(value).replace("|", "\\|").replace("<", "&lt;").replace("\r", " ").replace("\n", " ")


def _sample_note(entry: dict) -> str:
    sample = entry.get("sample")
    if not sample:
        return "all"
    parts = [sample] if "method" in sample else [sample["test"], sample["dev"]]
    shown = []
    for part in parts:
        if part["method"] == "head":
            shown.append(f"first {part['n']}")
        else:
            shown.append(f"{part['n']} of {part['of']} (stratified, seed {part['seed']})")
    return shown[0] if len(shown) == 1 else f"test {shown[0]}; dev {shown[1]}"


RANDOM_WEIGHTS_LINE = ("**The model has RANDOM weights** (a `nspzero tiny-model` folder): every score and accuracy "
                       "here is meaningless.")


def _few_shot_cell(entry: dict) -> str:
    """A task's few-shot accuracy, or why it has none (the paper does not tune it)."""
    f = entry.get("few_shot")
    if not f:
        return "—"
    return pct(f.get("accuracy")) if f.get("tuned") else "not tuned"


def results_markdown(results: dict) -> str:
    """A Markdown report that explains itself: the FewCLUE tasks in the paper's order (then any
    others), our row(s), the paper's rows, then per task the prompt, sample and time, and what
    every "—" means. `results` is what the eval writes to results.json."""
    ours = results["tasks"]
    columns = task_columns(ours)
    paper = paper_rows()
    settings = results["settings"]
    score = results.get("fewclue_score")
    total_s = sum(ours[c].get("seconds", 0.0) + (ours[c].get("few_shot") or {}).get("seconds", 0.0) for c in columns)
    limited = settings.get("limit")
    few_shot = any("few_shot" in ours[c] for c in columns)
    lines = [
        f"# nspzero {'zero-shot and few-shot' if few_shot else 'zero-shot'} results — model `{md(results['model'])}`",
        "",
        f"Model `{md(results['model'])}` (config hash `{md(results['config_hash'])}`), split {settings['split']}, "
        f"max length {settings['max_length']}, dtype {settings['dtype']}, device {settings.get('device', '?')}, "
        f"engine {settings.get('engine', 'local')}; "
        + (f"a sample of at most {limited} examples per split ({settings.get('sample') or 'first N'})"
           if limited else "every example of each split") + f"; {total_s:.1f} s in all. Accuracy in %.",
        "",
        *([RANDOM_WEIGHTS_LINE, ""] if results.get("random_weights") else []),
        "| method | model | score | " + " | ".join(md(c.upper()) for c in columns) + " |",
        "|---|---|---|" + "---|" * len(columns),
        f"| nspzero | `{md(results['model'])}` | {pct(score)} | "
        + " | ".join(pct(ours[c]["accuracy"]) for c in columns) + " |",
    ]
    if any("macro_f1" in ours[c] for c in columns):
        cells = [pct(ours[c].get("macro_f1")) for c in columns]
        lines.append(f"| nspzero, macro-F1 | `{md(results['model'])}` | — | " + " | ".join(cells) + " |")
    for how in settings.get("calibration") or ():
        cells = [pct(ours[c].get("calibrated", {}).get(how)) for c in columns]
        lines.append(f"| nspzero + {md(how)} calibration | `{md(results['model'])}` | — | " + " | ".join(cells) + " |")
    if few_shot:
        lines.append(f"| nspzero few-shot (NSP-tuning) | `{md(results['model'])}` | — | "
                     + " | ".join(_few_shot_cell(ours[c]) for c in columns) + " |")
    for method, row in paper["rows"].items():
        model = paper["model"] if method == "NSP-BERT" else "(paper)"
        cells = [f"{row[c]:.1f}" if c in row else "—" for c in columns]
        lines.append(f"| {method} (paper) | {model} | {row['score']:.2f} | " + " | ".join(cells) + " |")
    if few_shot:
        for method, row in paper.get("few_shot", {}).get("rows", {}).items():
            cells = [f"{row[c]:.1f}" if c in row else "—" for c in columns]
            lines.append(f"| {method} few-shot (paper) | (paper) | {row['score']:.2f} | " + " | ".join(cells) + " |")
    lines += ["", "What a \"—\" means:",
              "- score: the FewCLUE score is the mean of the nine task accuracies; it needs all nine tasks"
              + ("" if score is not None else f" (this run has {len(columns)})") + ".",
              "- macro-F1: reported only for tasks whose config asks for it (`metric:`; the many-label tasks).",
              "- calibration rows: calibration re-weights the candidates of label tasks (EPRSTMT, CSLDCP, TNEWS, "
              "IFLYTEK); it does not apply to samples-contrast tasks (OCNLI, BUSTM, CSL, CLUEWSC) or ChID.",
              "- paper rows: the paper reports the nine FewCLUE tasks only.", ""]
    if few_shot:
        lines[-1:-1] = [
            "- few-shot row: \"not tuned\" marks tasks the paper does not NSP-tune (the samples-contrast tasks, "
            "ChID); the paper tunes the single-sentence tasks (EPRSTMT, TNEWS, CSLDCP, IFLYTEK) only.",
            "- few-shot paper rows: the score is the FewCLUE average over all nine tasks, as published; "
            "LM-BFF is published as an average only."]
    lines += ["## Per task", "", "| task | prompt | examples | sample | pairs scored | seconds |",
              "|---|---|---|---|---|---|"]
    for c in columns:
        e = ours[c]
        lines.append(f"| {md(c)} | `{md(e.get('prompt', '?'))}` | {e['examples']} | {_sample_note(e)} | "
                     f"{e.get('pairs_scored', 0)}/{e.get('pairs', 0)} | {e.get('seconds', 0):.1f} |")
    tuned = [c for c in columns if ours[c].get("few_shot", {}).get("tuned")]
    if tuned:
        lines += ["", "## Few-shot (NSP-tuning, best dev epoch kept)", "",
                  "| task | train | dev | lr | batch | epochs | best epoch | dev accuracy | test accuracy | seconds |",
                  "|---|---|---|---|---|---|---|---|---|---|"]
        for c in tuned:
            f = ours[c]["few_shot"]
            r = f["recipe"]
            lines.append(f"| {md(c)} | {f['train_examples']} ({md(f['train_split'])}) | {f['dev_examples']} | "
                         f"{r['learning_rate']:g} | {r['batch_size']} | {r['epochs']} | {f['best_epoch']} | "
                         f"{pct(f.get('best_dev_accuracy'))} | {pct(f['accuracy'])} | {f.get('seconds', 0):.1f} |")
    variant_rows = [(c, name, v) for c in columns for name, v in ours[c].get("variants", {}).items()]
    if variant_rows:
        lines += ["", "## Prompt variants and ensembles (same model, same examples)", "",
                  "| task | variant | templates | combine | accuracy |", "|---|---|---|---|---|"]
        for c, name, v in variant_rows:
            default = " (default)" if ours[c].get("prompt", "").endswith(":" + name) else ""
            templates = " · ".join(f"`{md(t)}`" for t in v["templates"])
            lines.append(f"| {md(c)} | {md(name)}{default} | {templates} | {md(v['combine'])} | {pct(v['accuracy'])} |")
    if limited:
        lines += ["", f"These numbers come from a sample of at most {limited} examples per split: a smoke test, "
                      f"not comparable to the paper (which uses every test_public example)."]
    return "\n".join(lines) + "\n"

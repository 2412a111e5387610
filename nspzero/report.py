"""results.md: our accuracies beside the paper's rows, always naming the model they came from."""
from __future__ import annotations

from importlib import resources

import yaml

from .tasks.registry import FEWCLUE


def paper_rows() -> dict:
    text = resources.files("nspzero.eval").joinpath("paper.yaml").read_text(encoding="utf-8")
    return yaml.safe_load(text)


def _pct(value) -> str:
    return "—" if value is None else f"{100 * value:.1f}"


def results_markdown(results: dict) -> str:
    """A Markdown table: the FewCLUE tasks in the paper's order (then any others), our row, the paper's."""
    ours = results["tasks"]
    columns = [t for t in FEWCLUE if t in ours] + [t for t in ours if t not in FEWCLUE]
    paper = paper_rows()
    settings = results["settings"]
    score = results.get("fewclue_score")
    lines = [
        f"# nspzero zero-shot results — model `{results['model']}`",
        "",
        f"Config hash `{results['config_hash']}`, split {settings['split']}, max length {settings['max_length']}, "
        f"dtype {settings['dtype']}, limit {settings['limit'] or 'none'}. Accuracy in %.",
        "",
        "| method | model | score | " + " | ".join(c.upper() for c in columns) + " |",
        "|---|---|---|" + "---|" * len(columns),
        f"| nspzero | `{results['model']}` | {_pct(score) if score is not None else '—'} | "
        + " | ".join(_pct(ours[c]["accuracy"]) for c in columns) + " |",
    ]
    for how in settings.get("calibration") or ():
        cells = [_pct(ours[c].get("calibrated", {}).get(how)) for c in columns]
        lines.append(f"| nspzero + {how} calibration | `{results['model']}` | — | " + " | ".join(cells) + " |")
    for method, row in paper["rows"].items():
        model = paper["model"] if method == "NSP-BERT" else "(paper)"
        cells = [f"{row[c]:.1f}" if c in row else "—" for c in columns]
        lines.append(f"| {method} (paper) | {model} | {row['score']:.2f} | " + " | ".join(cells) + " |")
    variant_rows = [(c, name, v) for c in columns for name, v in ours[c].get("variants", {}).items()]
    if variant_rows:
        lines += ["", "## Prompt variants and ensembles (same model, same examples)", "",
                  "| task | variant | templates | combine | accuracy |", "|---|---|---|---|---|"]
        for c, name, v in variant_rows:
            default = " (default)" if ours[c].get("prompt", "").endswith(":" + name) else ""
            templates = " · ".join(f"`{t}`" for t in v["templates"])
            lines.append(f"| {c} | {name}{default} | {templates} | {v['combine']} | {_pct(v['accuracy'])} |")
    lines += ["", "Examples per task: " + ", ".join(f"{c} {ours[c]['examples']}" for c in columns) + "."]
    if score is None:
        lines.append("The FewCLUE score (mean of the nine accuracies) needs all nine tasks; this run has "
                     f"{len(columns)}.")
    if settings.get("limit"):
        lines.append(f"With --limit {settings['limit']} these numbers are a smoke test, not comparable to the paper.")
    return "\n".join(lines) + "\n"

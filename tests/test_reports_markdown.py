"""nspzero/reports/markdown.py: results.md, our row beside the paper's, every "—" explained."""
from __future__ import annotations

from nspzero.reports.diagnostics import paper_rows
from nspzero.reports.markdown import results_markdown


def results(**tasks):
    return {"model": "tiny-bert", "config_hash": "abc123",
            "settings": {"split": "test_public", "max_length": 128, "dtype": "float32", "device": "cpu",
                         "limit": None, "calibration": ["prior"]},
            "fewclue_score": None, "tasks": tasks}


def entry(accuracy, **extra):
    return {"accuracy": accuracy, "examples": 10, "prompt": "p:default", "pairs": 20, "pairs_scored": 5,
            "seconds": 1.25, **extra}


def test_columns_follow_the_paper_then_our_own_tasks():
    md = results_markdown(results(mine=entry(0.5), tnews=entry(0.25, calibrated={"prior": 0.3}), eprstmt=entry(1.0)))
    lines = md.splitlines()
    assert lines[0] == "# nspzero zero-shot results — model `tiny-bert`"
    header = next(line for line in lines if line.startswith("| method |"))
    assert header == "| method | model | score | EPRSTMT | TNEWS | MINE |"
    assert "| nspzero | `tiny-bert` | — | 100.0 | 25.0 | 50.0 |" in lines
    assert "| nspzero + prior calibration | `tiny-bert` | — | — | 30.0 | — |" in lines
    paper = paper_rows()
    nsp = paper["rows"]["NSP-BERT"]
    assert f"| NSP-BERT (paper) | {paper['model']} | {nsp['score']:.2f} | {nsp['eprstmt']:.1f} | {nsp['tnews']:.1f} | — |" \
        in lines
    assert "it needs all nine tasks (this run has 3)." in md
    assert "| mine | `p:default` | 10 | all | 5/20 | 1.2 |" in lines


def test_variants_and_a_limit_are_explained():
    run = results(tnews=entry(0.5, variants={"default": {"templates": ["这是{label}"], "combine": "mean",
                                                          "accuracy": 0.5}}))
    run["settings"]["limit"] = 8
    md = results_markdown(run)
    assert "| tnews | default (default) | `这是{label}` | mean | 50.0 |" in md
    assert "a sample of at most 8 examples per split" in md and "a smoke test" in md


def test_a_name_cannot_break_the_table_or_open_html():
    md = results_markdown(results(**{"a|b\n<script>x</script>": entry(0.5, prompt="p|q")}))
    row = next(line for line in md.splitlines() if line.startswith("| nspzero |"))
    assert row.count(" | ") == 3  # method, model, score, one task: no column added by the name
    assert "| A\\|B &lt;SCRIPT>X&lt;/SCRIPT> |" in md and "<script" not in md.lower()
    assert "| a\\|b &lt;script>x&lt;/script> | `p\\|q` |" in md


def test_a_random_weights_model_is_named_before_the_numbers():
    """results.json's `random_weights` (a `nspzero tiny-model` folder) puts one warning line above the table;
    a trained model's results.md has none."""
    plain = results_markdown(results(eprstmt=entry(1.0)))
    flagged = results_markdown({**results(eprstmt=entry(1.0)), "random_weights": True})
    assert "RANDOM weights" not in plain
    lines = flagged.splitlines()
    warning = next(i for i, line in enumerate(lines) if "RANDOM weights" in line)
    assert "meaningless" in lines[warning] and warning < next(i for i, l in enumerate(lines) if l.startswith("| method"))

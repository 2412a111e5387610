"""Calibration rows beyond the paper: content-free and prior re-weighting of label scores."""
import json

import numpy as np
import pytest

from nspzero.calibration import content_free, prior


def test_calibration_math():
    m = np.array([[0.8, 0.6], [0.4, 0.5]])
    np.testing.assert_allclose(content_free(m, np.array([0.8, 0.5])), [[1.0, 1.2], [0.5, 1.0]])
    np.testing.assert_allclose(prior(m), m / np.array([0.6, 0.55]))


def test_the_mask_probe_is_the_mask_token_not_the_text(model_dir, reference):
    """The content-free [MASK] probe is BERT's mask token id; the text "[MASK]" stays three text tokens."""
    from nspzero.calibration import CONTENT_FREE_TEXTS
    from nspzero.scorer import NSPScorer, Pair
    from nspzero.tokens import MASK_TOKEN

    scorer = NSPScorer.from_pretrained(model_dir, max_length=64)
    tok = scorer.tokenizer
    probe, text = scorer.encode([Pair("这是一则体育新闻", MASK_TOKEN, prompt="first"),
                                 Pair("这是一则体育新闻", "[MASK]", prompt="first")])
    assert probe.input_ids[-2:] == [tok.mask_token_id, tok.sep_token_id]
    assert tok.mask_token_id not in text.input_ids
    assert set(CONTENT_FREE_TEXTS) == {"N/A", MASK_TOKEN}
    got = scorer.score([Pair("这是一则体育新闻", MASK_TOKEN, prompt="first")])[0]
    assert got == pytest.approx(reference("这是一则体育新闻", "[MASK]"), abs=1e-5)  # transformers reads it as the token


def test_content_free_eval_row_divides_by_the_probes_mean(model_dir, tmp_path):
    """eval --calibrate content-free: each label's scores divided by its mean over the two probes."""
    from fewclue_fixture import write_fewclue
    from nspzero.harness import EvalSettings, evaluate
    from nspzero.prompt_sets import load_prompt
    from nspzero.scorer import NSPScorer, Pair
    from nspzero.tokens import MASK_TOKEN

    data = write_fewclue(tmp_path / "data", n=6)
    scorer = NSPScorer.from_pretrained(model_dir, max_length=64)
    results = evaluate(scorer, EvalSettings(str(data), ["eprstmt"], calibration=["content-free"]), tmp_path / "out")
    rows = [json.loads(l) for l in (tmp_path / "out" / "eprstmt.predictions.jsonl").read_text("utf-8").splitlines()]
    variant = load_prompt("eprstmt")
    names = list(variant.labels)
    prompts = {n: variant.templates[0].replace("{label}", variant.words[n][0]) for n in names}
    free = {n: np.mean(scorer.score([Pair(prompts[n], t, prompt="first") for t in ("N/A", MASK_TOKEN)]))
            for n in names}
    predicted = [max(names, key=lambda n: r["scores"][n] / free[n]) for r in rows]
    gold = [r["gold"] for r in rows]
    assert results["tasks"]["eprstmt"]["calibrated"]["content-free"] == pytest.approx(
        np.mean([p == g for p, g in zip(predicted, gold)]))

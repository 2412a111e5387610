"""The eval's few-shot leg (nspzero.fewshot): recipes read from the task yamls, fresh base weights per
task, and a cache key that follows the tuned weights, never the base model's files."""
import pytest
import torch

from nspzero.cache import scorer_fingerprint
from nspzero.fewshot import BaseWeights, recipe_settings, tuned_fingerprint, tunes
from nspzero.scorer import NSPScorer
from nspzero.tasks.registry import FEWCLUE, load_task


def test_the_paper_tunes_the_four_single_sentence_tasks_with_its_batch_sizes():
    recipes = {name: tunes(load_task(name)) for name in FEWCLUE}
    assert {name for name, r in recipes.items() if r is not None} == {"eprstmt", "tnews", "csldcp", "iflytek"}
    assert {name: recipes[name].batch_size for name in ("eprstmt", "tnews", "csldcp", "iflytek")} == \
        {"eprstmt": 8, "tnews": 8, "csldcp": 1, "iflytek": 1}
    settings = recipe_settings(recipes["tnews"], seed=3)
    assert (settings.learning_rate, settings.epochs, settings.max_length, settings.seed, settings.loss) == \
        (1e-5, 10, 128, 3, "bce")
    assert recipes["tnews"].train_split == "train_few_all"


def test_tuned_weights_get_their_own_cache_key_and_the_base_comes_back(model_dir):
    scorer = NSPScorer.from_pretrained(model_dir, device="cpu")
    base_key, base_tuned_key = scorer_fingerprint(scorer), tuned_fingerprint(scorer)
    before = {k: v.clone() for k, v in scorer.model.state_dict().items()}
    base = BaseWeights(scorer)
    with base.tuning():
        with torch.no_grad():
            next(scorer.model.parameters()).add_(1e-3)  # what an optimiser step does, in place
        scorer.weights_changed()  # as tune() says after each epoch
        changed = tuned_fingerprint(scorer)
        assert changed != base_tuned_key and changed != base_key
    after = scorer.model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before) and not scorer.model.training
    assert tuned_fingerprint(scorer) == base_tuned_key and scorer_fingerprint(scorer) == base_key

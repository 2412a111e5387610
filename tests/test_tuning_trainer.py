"""NSP-tuning's loop (nspzero.tuning.trainer), pinned to an independent plain-transformers loop:
BertForPreTraining, torch.optim.Adam, full-batch mean BCE on softmax(NSP logits)[IsNext]."""
import json
import os

import numpy as np
import pytest
import torch

from conftest import build_model_dir
from nspzero.classifier import NSPClassifier
from nspzero.errors import ModelError, UsageError
from nspzero.request import build_request
from nspzero.scorer import NSPScorer
from nspzero.tuning import EpochRecord, TuneSettings, tune
from nspzero.tuning import trainer

TEXTS = ["东西很好", "一二三四五", "天南海北", "物归原主了", "高视阔步", "不共戴天", "严阵以待", "改朝换代"]
TARGETS = ["好", "坏", "中", "好", "坏", "中", "好", "坏"]
LABELS = ["好", "坏", "中"]
TEMPLATE = "这是{label}评"


def without_dropout(folder) -> str:
    """A decisive tiny BERT (scores spread, so a wrong step shows) with dropout 0: steps are deterministic."""
    build_model_dir(folder, seed=1, scale_nsp=3.0, initializer_range=0.2)
    path = os.path.join(folder, "config.json")
    with open(path, encoding="utf-8") as handle:
        config = json.load(handle)
    config.update(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(config, handle)
    return str(folder)


@pytest.fixture(scope="module")
def still_dir(tmp_path_factory) -> str:
    return without_dropout(tmp_path_factory.mktemp("tiny-bert-no-dropout"))


def reference_scores(folder: str, epochs: int, lr: float) -> np.ndarray:
    """The recipe written directly: every text × every label's prompt, full-batch Adam steps on the
    mean BCE of P(IsNext) (gold 1, others 0); then P(IsNext) of the same pairs, texts × labels."""
    from transformers import BertForPreTraining, BertTokenizer

    tokenizer = BertTokenizer.from_pretrained(folder)
    model = BertForPreTraining.from_pretrained(folder)
    prompts = [TEMPLATE.format(label=label) for label in LABELS]
    first = [p for _ in TEXTS for p in prompts]
    second = [t for t in TEXTS for _ in prompts]
    y = torch.tensor([float(label == gold) for gold in TARGETS for label in LABELS])
    batch = tokenizer(first, second, padding=True, return_tensors="pt")
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    for _ in range(epochs):
        optimizer.zero_grad()
        p = torch.softmax(model(**batch).seq_relationship_logits, dim=-1)[:, 0]
        torch.nn.functional.binary_cross_entropy(p, y).backward()
        optimizer.step()
    model.eval()
    with torch.no_grad():
        p = torch.softmax(model(**batch).seq_relationship_logits, dim=-1)[:, 0]
    return p.numpy().reshape(len(TEXTS), len(LABELS))


def scores(clf: NSPClassifier) -> np.ndarray:
    return clf.label_scores(TEXTS, LABELS, template=TEMPLATE)[1]


def test_fit_equals_plain_transformers_full_batch_steps(still_dir):
    clf = NSPClassifier.from_pretrained(still_dir)
    before = scores(clf)
    clf.fit(TEXTS, TARGETS, labels=LABELS, template=TEMPLATE, epochs=3, learning_rate=1e-3, batch_size=len(TEXTS),
            seed=0)
    after = scores(clf)
    expected = reference_scores(still_dir, 3, 1e-3)
    assert np.abs(after - before).max() > 0.05  # the steps moved the scores: the pin below is not vacuous
    np.testing.assert_allclose(after, expected, atol=1e-4)
    assert [e.epoch for e in clf.tuned[2].epochs] == [1, 2, 3] and clf.tuned[2].best_epoch == 3


def test_same_seed_gives_the_same_weights_and_another_seed_others(decisive_model_dir):
    """With dropout on (the config's) and small batches, both the shuffle and the dropout masks follow the seed."""
    def weights(seed):
        scorer = NSPScorer.from_pretrained(decisive_model_dir)
        tune(scorer, build_request(LABELS, template=TEMPLATE), TEXTS, TARGETS,
             TuneSettings(epochs=2, learning_rate=1e-3, batch_size=3, seed=seed))
        return torch.cat([p.detach().flatten() for p in scorer.model.parameters()])

    assert torch.equal(weights(0), weights(0))
    assert not torch.allclose(weights(0), weights(1))


@pytest.mark.parametrize("loss", ["bce", "softmax"])
def test_a_step_accumulated_over_chunks_equals_the_unchunked_step(still_dir, loss):
    """The gradients of one step (what Adam is given): over chunks of 4 pairs (softmax: one text a
    chunk) as over the whole batch of 5 texts × 6 pairs, and the step's loss too."""
    scorer = NSPScorer.from_pretrained(still_dir)
    request = build_request(LABELS, template=[TEMPLATE, "{label}"])
    examples = trainer.text_pairs(scorer, request, TEXTS, TARGETS)
    encoded = [scorer.encode(e.pairs).items for e in examples]

    def step(chunk_pairs):
        scorer.model.zero_grad(set_to_none=True)
        scorer.model.train()
        value = trainer.step_loss(scorer, examples, encoded, [0, 3, 4, 6, 7],
                                  TuneSettings(batch_size=5, chunk_pairs=chunk_pairs, loss=loss))
        return value, torch.cat([p.grad.flatten() for p in scorer.model.parameters() if p.grad is not None])

    (whole, g_whole), (chunked, g_chunked) = step(1000), step(4)
    assert g_whole.abs().max() > 1e-3
    assert abs(whole - chunked) < 1e-6
    assert torch.allclose(g_whole, g_chunked, atol=1e-5, rtol=0)
    if loss == "bce":  # the mean over all of the batch's pairs, as written directly
        scorer.model.eval()
        flat = scorer._collate([e for t in (0, 3, 4, 6, 7) for e in encoded[t]])
        with torch.no_grad():
            p = torch.softmax(scorer.model(**flat).logits, dim=-1)[:, 0]
            y = torch.tensor([float(t) for i in (0, 3, 4, 6, 7) for t in examples[i].targets])
        assert abs(float(torch.nn.functional.binary_cross_entropy(p, y)) - whole) < 1e-5


def test_dev_keeps_the_best_epochs_weights(still_dir):
    records: list[EpochRecord] = []
    scorer = NSPScorer.from_pretrained(still_dir)
    request = build_request(LABELS, template=TEMPLATE)
    report = tune(scorer, request, TEXTS, TARGETS, TuneSettings(epochs=4, learning_rate=3e-3, batch_size=4),
                  dev=(TEXTS[:6], TARGETS[:6]), on_epoch_end=records.append)
    accuracies = [r.dev_accuracy for r in report.epochs]
    assert records == report.epochs and all(a is not None for a in accuracies)
    assert report.best_epoch == 1 + accuracies.index(max(accuracies))  # ties: the earlier epoch
    kept = np.vstack(list(trainer.label_rows(scorer, request, TEXTS)))
    again = NSPScorer.from_pretrained(still_dir)  # the same run stopped at the best epoch
    tune(again, request, TEXTS, TARGETS, TuneSettings(epochs=report.best_epoch, learning_rate=3e-3, batch_size=4))
    np.testing.assert_allclose(kept, np.vstack(list(trainer.label_rows(again, request, TEXTS))), atol=1e-6)


def test_a_nan_loss_stops_keeps_nothing_and_says_to_lower_the_rate(decisive_model_dir, monkeypatch):
    scorer = NSPScorer.from_pretrained(decisive_model_dir)
    before = {k: v.clone() for k, v in scorer.model.state_dict().items()}
    calls, real = [], trainer.bce_sum

    def diverging(logits, targets):  # the 4th chunk's loss turns NaN, as a too-high rate makes it
        calls.append(1)
        return real(logits, targets) * (float("nan") if len(calls) > 3 else 1.0)

    monkeypatch.setattr(trainer, "bce_sum", diverging)
    with pytest.raises(ModelError, match="lower learning rate") as info:
        tune(scorer, build_request(LABELS, template=TEMPLATE), TEXTS, TARGETS,
             TuneSettings(epochs=3, learning_rate=1e-3, batch_size=2))
    assert "\n" not in str(info.value)
    assert all(torch.equal(before[k], v) for k, v in scorer.model.state_dict().items())


def test_resume_goes_on_from_the_last_finished_epoch_as_if_never_stopped(decisive_model_dir, tmp_path):
    request = build_request(LABELS, template=TEMPLATE)
    settings = TuneSettings(epochs=3, learning_rate=1e-3, batch_size=3)
    whole = NSPScorer.from_pretrained(decisive_model_dir)
    tune(whole, request, TEXTS, TARGETS, settings)

    class Killed(Exception):
        pass

    def stop_after_2(record):
        if record.epoch == 2:
            raise Killed

    state = str(tmp_path / "state")
    with pytest.raises(Killed):
        tune(NSPScorer.from_pretrained(decisive_model_dir), request, TEXTS, TARGETS, settings, state_dir=state,
             on_epoch_end=stop_after_2)
    with pytest.raises(UsageError, match="another run"):
        tune(NSPScorer.from_pretrained(decisive_model_dir), request, TEXTS, TARGETS,
             TuneSettings(epochs=3, learning_rate=2e-3, batch_size=3), state_dir=state)
    with pytest.raises(UsageError, match="another run"):  # the state continues another checkpoint
        tune(NSPScorer.from_pretrained(build_model_dir(tmp_path / "other", seed=5)), request, TEXTS, TARGETS,
             settings, state_dir=state)
    # chunk_pairs only bounds memory (a resume after running out of it may lower it): accepted as the
    # same run (its weights equal up to float noise, which Adam's normalisation turns into tiny steps)
    import shutil

    shutil.copytree(state, tmp_path / "state-copy")
    smaller = TuneSettings(epochs=3, learning_rate=1e-3, batch_size=3, chunk_pairs=2)
    report = tune(NSPScorer.from_pretrained(decisive_model_dir), request, TEXTS, TARGETS, smaller,
                  state_dir=str(tmp_path / "state-copy"))
    assert [e.epoch for e in report.epochs] == [1, 2, 3]
    resumed = NSPScorer.from_pretrained(decisive_model_dir)
    report = tune(resumed, request, TEXTS, TARGETS, settings, state_dir=state)
    assert [e.epoch for e in report.epochs] == [1, 2, 3]
    for a, b in zip(whole.model.parameters(), resumed.model.parameters()):
        assert torch.equal(a, b)


def test_weights_a_step_made_nan_are_refused_even_when_no_loss_showed_it(decisive_model_dir, monkeypatch):
    """Class: divergence. The last step of a run can break the weights after its (finite) loss was
    taken; the epoch's check refuses them and puts the original weights back."""
    scorer = NSPScorer.from_pretrained(decisive_model_dir)
    before = {k: v.clone() for k, v in scorer.model.state_dict().items()}
    real_step = torch.optim.Adam.step

    def breaking_step(self, *args, **kwargs):
        out = real_step(self, *args, **kwargs)
        with torch.no_grad():
            self.param_groups[0]["params"][0].fill_(float("nan"))
        return out

    monkeypatch.setattr(torch.optim.Adam, "step", breaking_step)
    with pytest.raises(trainer.Diverged, match="NaN/inf .*lower learning rate"):
        tune(scorer, build_request(LABELS, template=TEMPLATE), TEXTS, TARGETS,
             TuneSettings(epochs=1, learning_rate=1e-3, batch_size=8))
    assert all(torch.equal(before[k], v) for k, v in scorer.model.state_dict().items())


def test_only_float32_torch_models_are_tuned(decisive_model_dir):
    scorer = NSPScorer.from_pretrained(decisive_model_dir, dtype="bfloat16")
    with pytest.raises(UsageError, match="float32"):
        tune(scorer, build_request(LABELS, template=TEMPLATE), TEXTS, TARGETS, TuneSettings(epochs=1))


def test_a_tuned_scorer_is_not_served_stale_cached_scores(decisive_model_dir):
    """The scores cache keys a model by its files until its weights change in memory, then by its tensors."""
    from nspzero.cache import scorer_fingerprint

    scorer = NSPScorer.from_pretrained(decisive_model_dir)
    loaded = scorer_fingerprint(scorer)
    assert scorer_fingerprint(NSPScorer.from_pretrained(decisive_model_dir)) == loaded
    tune(scorer, build_request(LABELS, template=TEMPLATE), TEXTS, TARGETS, TuneSettings(epochs=1, learning_rate=1e-3))
    tuned = scorer_fingerprint(scorer)
    assert tuned != loaded
    tune(scorer, build_request(LABELS, template=TEMPLATE), TEXTS, TARGETS, TuneSettings(epochs=1, learning_rate=1e-3))
    assert scorer_fingerprint(scorer) != tuned


def test_bf16_autocast_training_stays_near_float32(still_dir):
    """settings.bf16 runs the forward passes under bfloat16 autocast (weights and Adam stay float32)."""
    request = build_request(LABELS, template=TEMPLATE)

    def tuned(bf16):
        scorer = NSPScorer.from_pretrained(still_dir)
        tune(scorer, request, TEXTS, TARGETS, TuneSettings(epochs=2, learning_rate=1e-3, batch_size=4, bf16=bf16))
        assert all(p.dtype == torch.float32 for p in scorer.model.parameters())
        return np.vstack(list(trainer.label_rows(scorer, request, TEXTS)))

    fp32, bf16 = tuned(False), tuned(True)
    assert 0 < np.abs(fp32 - bf16).max() < 0.01  # 1.1e-3 measured (2 epochs, lr 1e-3)

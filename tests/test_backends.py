"""backends.py and the scorer's backend choice: oneDNN-packed Linear layers are exact fp32, leave the
state dict alone, and backend="auto" settles by a timed trial without changing any score it returns."""
import copy
import logging

import numpy as np
import pytest
import torch

from nspzero import scorer as scorer_module
from nspzero.backends import OneDNNLinear, onednn_available, use_onednn
from nspzero.errors import UsageError
from nspzero.scorer import NSPScorer, Pair

pytestmark = pytest.mark.skipif(not onednn_available(), reason="this torch build has no oneDNN")

PAIRS = [Pair(p, t) for p in ("这是体育新闻", "这是一则财经新闻", "科技") for t in
         ("今天比赛球队赢了", "市场上涨", "公司发布手机电脑游戏", "学校老师学生上文中指其是否相关论文软件类款篇")]


def test_onednn_linear_is_exact_fp32_for_any_row_count_and_shape():
    torch.manual_seed(0)
    linear = torch.nn.Linear(48, 80)
    packed = OneDNNLinear.from_linear(linear)
    packed.pack()
    for shape in ((1, 48), (7, 48), (3, 5, 48), (2000, 48)):
        x = torch.randn(*shape)
        torch.testing.assert_close(packed(x), linear(x), atol=1e-5, rtol=1e-5)
        assert packed(x).shape == linear(x).shape


def test_use_onednn_keeps_the_state_dict_and_unpacks():
    model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 4, bias=False))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    assert use_onednn(model) == 2
    assert isinstance(model[0], OneDNNLinear) and model[0].packed is not None
    after = model.state_dict()
    assert list(after) == list(before) and all(torch.equal(after[k], before[k]) for k in before)
    use_onednn(model, False)
    assert model[0].packed is None and model[2].packed is None


def test_onednn_backend_matches_transformers_reference(model_dir, reference):
    scorer = NSPScorer.from_pretrained(model_dir, device="cpu", batch_size=3, backend="onednn")
    assert scorer.backend == "onednn" and "oneDNN" in scorer.engine
    assert any(isinstance(m, OneDNNLinear) and m.packed is not None for m in scorer.model.modules())
    got = scorer.score(PAIRS)
    np.testing.assert_allclose(got, [reference(p.first, p.second) for p in PAIRS], atol=1e-5, rtol=0)


def test_auto_trial_settles_returns_torch_scores_meanwhile_and_says_which(model_dir, monkeypatch, nspzero_caplog):
    monkeypatch.setattr(scorer_module, "AUTO_BACKEND_AFTER_S", 0.0)
    torch_scores = NSPScorer.from_pretrained(model_dir, device="cpu", batch_size=1, backend="torch").score(PAIRS)
    auto = NSPScorer.from_pretrained(model_dir, device="cpu", batch_size=1)
    assert auto.backend == "auto"
    with nspzero_caplog.at_level(logging.INFO, logger="nspzero"):
        got = auto.score(PAIRS[:scorer_module.AUTO_TRIAL_BATCHES + 2])
    assert auto.backend in ("torch", "onednn")
    np.testing.assert_array_equal(got, torch_scores[:len(got)])  # trial batches return torch's own logits
    assert "fp32 Linear layers" in nspzero_caplog.text and "running" in nspzero_caplog.text
    packed = [m.packed is not None for m in auto.model.modules() if isinstance(m, OneDNNLinear)]
    assert packed and all(packed) == (auto.backend == "onednn") and any(packed) == all(packed)
    np.testing.assert_allclose(auto.score(PAIRS), torch_scores, atol=1e-6, rtol=0)


def test_backend_env_variable_and_refusals(model_dir, monkeypatch):
    monkeypatch.setenv("NSPZERO_BACKEND", "torch")
    assert NSPScorer.from_pretrained(model_dir, device="cpu").backend == "torch"
    monkeypatch.setenv("NSPZERO_BACKEND", "mkl")
    with pytest.raises(UsageError, match="backend must be one of auto, torch, onednn, got 'mkl'"):
        NSPScorer.from_pretrained(model_dir, device="cpu")
    monkeypatch.delenv("NSPZERO_BACKEND")
    with pytest.raises(UsageError, match="backend onednn runs fp32"):
        NSPScorer.from_pretrained(model_dir, device="cpu", dtype="bfloat16", backend="onednn")
    assert NSPScorer.from_pretrained(model_dir, device="cpu", dtype="int8").backend == "torch"
    monkeypatch.setenv("NSPZERO_BACKEND", "onednn")  # a preference: where it cannot apply, torch runs
    assert NSPScorer.from_pretrained(model_dir, device="cpu", dtype="int8").backend == "torch"
    assert NSPScorer.from_pretrained(model_dir, device="cpu").backend == "onednn"


def _packed_model():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 4))
    reference = copy.deepcopy(model)
    assert use_onednn(model) == 2
    return model, reference


def test_packed_model_deepcopies_and_pickles_and_the_copy_runs_torch_kernels(tmp_path):
    model, reference = _packed_model()
    clone = copy.deepcopy(model)
    assert clone[0].packed is None and not clone[0].active and model[0].packed is not None
    torch.save(model, tmp_path / "m.pt")
    loaded = torch.load(tmp_path / "m.pt", weights_only=False)
    x = torch.randn(5, 8)
    with torch.inference_mode():
        for m in (clone, loaded, model):
            torch.testing.assert_close(m(x), reference(x), atol=1e-5, rtol=1e-5)


def test_packed_model_follows_dtype_change_in_place_edits_and_autograd():
    model, reference = _packed_model()
    x = torch.randn(5, 8)
    with torch.inference_mode():  # bf16 weights: the fp32 packed copy must not run (a oneDNN error)
        out = model.to(torch.bfloat16)(x.bfloat16())
    torch.testing.assert_close(out, reference.to(torch.bfloat16)(x.bfloat16()))
    model, reference = _packed_model()
    with torch.no_grad():  # edited after packing: the packed copy is stale
        for m in (model, reference):
            m[0].weight.mul_(2)
    with torch.inference_mode():
        torch.testing.assert_close(model(x), reference(x), atol=1e-5, rtol=1e-5)
    model, _ = _packed_model()
    model(x).sum().backward()  # training: gradients reach the weights
    assert model[0].weight.grad is not None and model[0].weight.grad.abs().sum() > 0


def test_no_backend_changes_a_callers_model(model_dir, monkeypatch):
    from nspzero.loading import load_nsp_model

    monkeypatch.setattr(scorer_module, "AUTO_BACKEND_AFTER_S", 0.0)
    tokenizer, model = load_nsp_model(model_dir)
    scorer = NSPScorer(tokenizer, model, device="cpu", batch_size=1)
    assert scorer.backend == "torch"
    scorer.score(PAIRS[:scorer_module.AUTO_TRIAL_BATCHES + 2])
    assert not any(isinstance(m, OneDNNLinear) for m in model.modules())
    explicit = NSPScorer(tokenizer, model, device="cpu", backend="onednn")  # runs a copy, as bf16 does
    assert explicit.backend == "onednn" and any(isinstance(m, OneDNNLinear) for m in explicit.model.modules())
    assert not any(isinstance(m, OneDNNLinear) for m in model.modules())
    np.testing.assert_allclose(explicit.score(PAIRS), NSPScorer(tokenizer, model, device="cpu").score(PAIRS), atol=1e-6)


def test_auto_trial_keeps_torch_when_onednn_fails(model_dir, monkeypatch, nspzero_caplog):
    monkeypatch.setattr(scorer_module, "AUTO_BACKEND_AFTER_S", 0.0)
    torch_scores = NSPScorer.from_pretrained(model_dir, device="cpu", batch_size=1, backend="torch").score(PAIRS)

    plain = OneDNNLinear.forward

    def broken(self, x):  # the packed path fails as oneDNN does on a CPU/build it cannot serve
        if self.active:
            raise RuntimeError("could not create a primitive descriptor\nmore detail")
        return plain(self, x)

    monkeypatch.setattr(OneDNNLinear, "forward", broken)
    auto = NSPScorer.from_pretrained(model_dir, device="cpu", batch_size=1)
    with nspzero_caplog.at_level(logging.WARNING, logger="nspzero"):
        got = auto.score(PAIRS)
    np.testing.assert_array_equal(got, torch_scores)
    assert auto.backend == "torch" and "oneDNN Linear failed (could not create a primitive descriptor)" in nspzero_caplog.text
    assert not any(isinstance(m, OneDNNLinear) and m.packed is not None for m in auto.model.modules())

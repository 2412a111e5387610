"""unpadded.py: BERT's forward on the real tokens only gives transformers' logits for every row, in every
precision the scorer uses, and is used only where the architecture is one it reproduces."""
import copy

import pytest
import torch
import transformers as T

from nspzero import unpadded
from nspzero.quantize import quantize_int8
from nspzero.scorer import NSPScorer, Pair


def _model(cls=T.BertForNextSentencePrediction, config_cls=T.BertConfig, seed=0, **extra):
    torch.manual_seed(seed)
    config = config_cls(vocab_size=60, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                        intermediate_size=64, max_position_embeddings=64, **extra)
    return cls(config).eval()


def _batch(lengths, seed=0, positions=False):
    """Right-padded rows of the given lengths, each starting with [CLS]=2; types switch mid-row."""
    gen = torch.Generator().manual_seed(seed)
    width = max(lengths)
    batch = {"input_ids": torch.zeros(len(lengths), width, dtype=torch.long),
             "token_type_ids": torch.zeros(len(lengths), width, dtype=torch.long),
             "attention_mask": torch.zeros(len(lengths), width, dtype=torch.long)}
    for row, length in enumerate(lengths):
        batch["input_ids"][row, :length] = torch.randint(5, 60, (length,), generator=gen)
        batch["input_ids"][row, 0] = 2
        batch["token_type_ids"][row, length // 2:length] = 1
        batch["attention_mask"][row, :length] = 1
    if positions:  # soft positions: any ids below the model's limit, padded with 0
        batch["position_ids"] = torch.randint(0, 64, (len(lengths), width), generator=gen) * batch["attention_mask"]
    return batch


LENGTHS = [[9], [9, 9, 9], [12, 11, 7, 3, 2], [3, 17, 5]]


@pytest.mark.parametrize("lengths", LENGTHS, ids=lambda x: "-".join(map(str, x)))
@pytest.mark.parametrize("positions", [False, True], ids=["positions", "soft-positions"])
def test_logits_equal_transformers_padded_forward(lengths, positions):
    model = _model()
    batch = _batch(lengths, positions=positions)
    with torch.inference_mode():
        expected = model(**batch).logits
        got = unpadded.logits(model, **batch)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=0)
    assert got.shape == (len(lengths), 2)


def test_each_row_equals_that_row_scored_alone_without_padding():
    model = _model(seed=3)
    lengths = [14, 6, 10, 2]
    batch = _batch(lengths, seed=3)
    with torch.inference_mode():
        rows = unpadded.logits(model, **batch)
        for i, length in enumerate(lengths):
            alone = model(**{k: v[i:i + 1, :length] for k, v in batch.items()}).logits
            torch.testing.assert_close(rows[i:i + 1], alone, atol=1e-5, rtol=0)


def test_int8_and_bfloat16_layers_run_unchanged_inside():
    """The layers' own modules run: an int8 model gives what its padded forward gives, bf16 under autocast too."""
    model = _model(seed=1)
    batch = _batch([12, 11, 7, 3], seed=1)
    int8 = quantize_int8(copy.deepcopy(model))
    with torch.inference_mode():
        torch.testing.assert_close(unpadded.logits(int8, **batch), int8(**batch).logits, atol=1e-4, rtol=0)
        bf16 = copy.deepcopy(model)
        for module in bf16.modules():
            if isinstance(module, torch.nn.Linear):
                module.to(torch.bfloat16)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            got, expected = unpadded.logits(bf16, **batch).float(), bf16(**batch).logits.float()
    torch.testing.assert_close(got, expected, atol=2e-2, rtol=0)


class _DoubledLinear(torch.nn.Linear):
    """A user's Linear form: the fused fp32 steps must not bypass its forward."""

    def forward(self, x):
        return 2 * super().forward(x)


def _double_every_dense(model):
    for layer in model.bert.encoder.layer:
        for block in (layer.attention.output, layer.intermediate, layer.output):
            old = block.dense
            block.dense = _DoubledLinear(old.in_features, old.out_features)
            block.dense.load_state_dict(old.state_dict())


def _identity_intermediate(model):
    """dense = Identity: an in-place activation on its output would overwrite the residual."""
    for layer in model.bert.encoder.layer:
        layer.intermediate.dense = torch.nn.Identity()
        layer.output.dense = torch.nn.Linear(layer.output.dense.out_features, layer.output.dense.out_features)


@pytest.mark.parametrize("act", ["gelu", "relu", "gelu_new", "gelu_python"])
@pytest.mark.parametrize("change", [None, _double_every_dense, _identity_intermediate], ids=["plain", "linear-subclass",
                                                                                             "identity-dense"])
def test_the_fused_fp32_steps_compute_what_each_module_form_computes(act, change):
    """The in-place GELU and the residual-first add apply to plain Linear + erf GELU only; any other
    activation or Linear form runs as its module says, so every variant equals transformers' forward."""
    model = _model(seed=4, hidden_act=act)
    if change:
        change(model)
    batch = _batch([12, 11, 7, 3], seed=4)
    with torch.inference_mode():
        expected = model(**batch).logits
        got = unpadded.logits(model, **batch)
        again = unpadded.logits(model, **batch)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=0)
    assert torch.equal(got, again)


def test_a_model_in_training_mode_keeps_its_dropout_in_the_residual_blocks():
    """Outside eval mode the residual blocks run as modules (their dropout applies): the fused add is
    for inference only. With dropout 1.0 every block output is zero before the residual."""
    model = _model(seed=5, hidden_dropout_prob=1.0, attention_probs_dropout_prob=0.0).train()
    batch = _batch([6, 4], seed=5)
    blocks = [b for layer in model.bert.encoder.layer for b in (layer.attention.output, layer.output)]
    seen = []
    hooks = [b.dropout.register_forward_hook(lambda m, i, o: seen.append(bool((o == 0).all()))) for b in blocks]
    with torch.no_grad():
        unpadded.logits(model, **batch)
    for hook in hooks:
        hook.remove()
    assert seen == [True] * len(blocks)


def test_the_last_layer_runs_its_feed_forward_on_the_cls_rows_only():
    """The pooler reads [CLS] alone: every other layer sees each real token, the last one its keys and
    values for each real token and the rest for one row per pair."""
    model = _model(seed=6)
    lengths = [12, 11, 7, 3]
    seen = {}
    for name, module in model.named_modules():
        if name.endswith(("intermediate.dense", "self.query", "self.key")):
            module.register_forward_hook(lambda m, i, o, name=name: seen.setdefault(name, i[0].shape[0]) and None)
    with torch.inference_mode():
        unpadded.logits(model, **_batch(lengths, seed=6))
    last = f"bert.encoder.layer.{model.config.num_hidden_layers - 1}"
    assert seen[f"{last}.intermediate.dense"] == seen[f"{last}.attention.self.query"] == len(lengths)
    assert seen[f"{last}.attention.self.key"] == seen["bert.encoder.layer.0.intermediate.dense"] == sum(lengths)


def test_gradients_flow_as_through_transformers_forward():
    """With autograd on, each layer keeps its own Q/K/V buffer and the in-place steps are off: the
    gradients are transformers' (the shared buffer would be overwritten under what backward reads)."""
    model = _model(seed=7)
    batch = _batch([9, 6, 2], seed=7)
    got = unpadded.logits(model, **batch)
    got.sum().backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    model.zero_grad()
    model(**batch).logits.sum().backward()
    assert grads and set(grads) <= {n for n, p in model.named_parameters() if p.grad is not None}
    for name, grad in grads.items():
        torch.testing.assert_close(grad, dict(model.named_parameters())[name].grad, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("mask", [[[1, 1, 1, 0], [1, 1, 1, 1]], [[0, 1, 1, 1], [1, 1, 1, 1]], [[0, 0, 0, 0], [1, 1, 0, 0]]],
                         ids=["right-padded", "left-padded", "empty-row"])
def test_keep_padding_is_transformers_forward_for_any_mask(mask):
    """What the ONNX export traces: every position computed, so any mask gives transformers' logits."""
    model = _model(seed=8)
    batch = _batch([4, 4], seed=8)
    batch["attention_mask"] = torch.tensor(mask)
    with torch.inference_mode():
        got = unpadded.logits(model, **batch, keep_padding=True)
        expected = model(**batch).logits
    assert torch.isfinite(got).all()
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=0)


def test_the_fused_steps_apply_to_plain_linear_layers_at_inference_only():
    linear, x = torch.nn.Linear(4, 4), torch.ones(2, 4)
    with torch.inference_mode():
        assert unpadded._plain(linear, x)
        assert not unpadded._plain(_DoubledLinear(4, 4), x)
        assert not unpadded._plain(linear, x.double())
        with torch.autocast("cpu", dtype=torch.bfloat16):
            assert not unpadded._plain(linear, x)
    assert not unpadded._plain(linear, x)  # autograd on


class _Float32Value(torch.nn.Linear):
    """A value projection that leaves autocast's dtype: K and V then differ."""

    def forward(self, x):
        return torch.nn.functional.linear(x.float(), self.weight.float(), self.bias.float()).float()


def test_projections_of_different_dtypes_raise_instead_of_wiping_each_other():
    model = _model(seed=9)
    for layer in model.bert.encoder.layer:
        old = layer.attention.self.value
        layer.attention.self.value = _Float32Value(old.in_features, old.out_features)
        layer.attention.self.value.load_state_dict(old.state_dict())
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16), pytest.raises(RuntimeError):
        unpadded.logits(model, **_batch([5, 3], seed=9))


def test_ernie_is_supported_and_exact():
    model = _model(T.ErnieForNextSentencePrediction, T.ErnieConfig, seed=2)
    assert unpadded.supports(model)
    batch = _batch([8, 5, 3], seed=2)
    with torch.inference_mode():
        torch.testing.assert_close(unpadded.logits(model, **batch), model(**batch).logits, atol=1e-5, rtol=0)


@pytest.mark.parametrize("make", [
    lambda: _model(T.AlbertForSentenceOrder if hasattr(T, "AlbertForSentenceOrder") else T.AlbertForPreTraining,
                   T.AlbertConfig, embedding_size=16),
    lambda: _model(T.MegatronBertForNextSentencePrediction, T.MegatronBertConfig),
    lambda: _model(T.MobileBertForNextSentencePrediction, T.MobileBertConfig),
    lambda: _model(is_decoder=True),
    lambda: _model(chunk_size_feed_forward=4),
    lambda: torch.nn.Linear(2, 2),
], ids=["albert", "megatron", "mobilebert", "decoder", "chunked-ffn", "not-a-model"])
def test_other_structures_are_not_supported(make):
    assert not unpadded.supports(make())


def test_a_subclass_or_a_changed_layer_is_not_supported():
    """A layer replaced by something else (say, a user's own module) falls back to transformers' forward."""
    model = _model()
    model.bert.encoder.layer[1] = torch.nn.Identity()
    assert not unpadded.supports(model)


def test_the_scorer_skips_pad_tokens_on_cpu_and_scores_like_transformers(model_dir, reference):
    scorer = NSPScorer.from_pretrained(model_dir, device="cpu", max_length=64, batch_size=8)
    assert scorer.unpad and "pad tokens skipped" in scorer.engine
    pairs = [Pair(p, t) for p in ("体育", "这是一则财经新闻") for t in ("今天比赛", "市场上涨了很多公司发布手机", "好")]
    got = scorer.score(pairs, progress=False)
    for pair, score in zip(pairs, got):
        assert abs(score - reference(pair.first, pair.second)) < 1e-5
    scorer.unpad = False
    assert abs(scorer.score(pairs, progress=False) - got).max() < 1e-6


@pytest.mark.parametrize("mask", [[[0, 1, 1], [1, 1, 1]], [[1, 0, 1], [1, 1, 1]]], ids=["left-padded", "hole"])
def test_masks_other_than_right_padding_are_refused_not_misread(mask):
    model = _model()
    batch = _batch([3, 3])
    batch["attention_mask"] = torch.tensor(mask)
    with pytest.raises(ValueError, match="right-padded rows"):
        unpadded.logits(model, **batch)

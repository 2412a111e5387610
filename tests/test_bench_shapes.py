"""`nspzero bench --shape`: the presets have the sizes they claim, memory is counted as the scorer stores
weights, and the projection is the measured speed applied to a full FewCLUE pass."""
import pytest
import torch

from conftest import run_cli

from nspzero import bench_shapes
from nspzero.bench_shapes import FEWCLUE_PASS_PAIRS, SHAPES, ShapeRow, measure_shape, shape_config, weight_bytes
from nspzero.formats.heads import HEADS


@pytest.mark.parametrize("shape, low, high", [("base", 101e6, 103e6), ("large", 320e6, 330e6), ("1.3B", 1.2e9, 1.3e9)])
def test_presets_have_their_parameter_counts(shape, low, high):
    config = shape_config(shape)
    with torch.device("meta"):  # no memory: only the count
        model = HEADS[config.model_type].model_class()(config)
    assert low < sum(p.numel() for p in model.parameters()) < high
    assert config.model_type == ("megatron-bert" if shape == "1.3B" else "bert")


def test_weight_bytes_follow_the_scorers_storage():
    from transformers import BertConfig, BertForNextSentencePrediction

    model = BertForNextSentencePrediction(BertConfig(vocab_size=50, hidden_size=8, num_hidden_layers=1,
                                                     num_attention_heads=2, intermediate_size=16))
    params = sum(p.numel() for p in model.parameters())
    lin = [m for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)]
    lin_w = sum(m.weight.numel() + m.bias.numel() for m in lin)
    assert weight_bytes(model, "float32") == 4 * params
    assert weight_bytes(model, "bfloat16") == 4 * (params - lin_w) + 2 * lin_w
    encoder = [m for n, m in model.named_modules() if isinstance(m, torch.nn.Linear) and n.startswith("bert.encoder")]
    saved = sum(3 * m.weight.numel() - 4 * m.out_features for m in encoder)  # 4 bytes → 1 + a scale per row
    assert weight_bytes(model, "int8") == 4 * params - saved


def test_measure_reports_each_dtype_and_projects_the_fewclue_pass(monkeypatch):
    monkeypatch.setitem(SHAPES, "tiny", ("albert", dict(vocab_size=120, embedding_size=8, hidden_size=16,
                                                        num_hidden_layers=2, num_attention_heads=2,
                                                        intermediate_size=32)))
    rows = measure_shape("tiny", pairs=4, max_length=32, batch_size=2, log=lambda m: None)
    assert [r.dtype for r in rows] == ["float32", "int8", "bfloat16"]
    assert all(r.pairs_per_second > 0 and r.peak_rss_bytes > 0 for r in rows)
    assert rows[0].weight_bytes > rows[2].weight_bytes
    assert rows[0].fewclue_hours == pytest.approx(FEWCLUE_PASS_PAIRS / rows[0].pairs_per_second / 3600)
    table = bench_shapes.format_shape_table(rows)
    assert "| tiny | bfloat16 |" in table and "381,149 pairs" in table


def test_measure_gives_each_dtype_a_fresh_fp32_model_on_torch_kernels(monkeypatch, tmp_path):
    """A shared model would reach the bfloat16 row already int8 (and its weight bytes counted after)."""
    from nspzero import scorer as scorer_module

    monkeypatch.setitem(SHAPES, "tiny", ("bert", dict(vocab_size=120, hidden_size=16, num_hidden_layers=1,
                                                      num_attention_heads=2, intermediate_size=32)))
    seen = []
    real = scorer_module.NSPScorer

    class Spy(real):
        def __init__(self, tokenizer, model, **kwargs):
            seen.append((model, {type(m) for m in model.modules() if "Linear" in type(m).__name__},
                         {m.weight.dtype for m in model.modules() if isinstance(m, torch.nn.Linear)}))
            super().__init__(tokenizer, model, **kwargs)
            assert self.backend == "torch"
            self.kept = model

    monkeypatch.setattr(scorer_module, "NSPScorer", Spy)
    rows = measure_shape("tiny", pairs=2, max_length=32, batch_size=2, log=lambda m: None)
    # the models themselves are kept in `seen`, so three distinct objects are three live ones (ids of
    # freed objects can be reused, so counting ids alone could pass or fail by luck)
    assert len(seen) == 3 and all(a is not b for i, (a, _, _) in enumerate(seen) for b, _, _ in seen[i + 1:])
    assert all(kinds == {torch.nn.Linear} and dtypes == {torch.float32} for _, kinds, dtypes in seen)
    _, fresh = bench_shapes.random_scorer_inputs("tiny", str(tmp_path))
    assert [r.weight_bytes for r in rows] == [weight_bytes(fresh, d) for d in ("float32", "int8", "bfloat16")]


def test_row_of_zero_speed_projects_infinity():
    assert ShapeRow("base", "float32", 1, 4, 0.0, 0).fewclue_hours == float("inf")


def test_cli_refuses_an_unknown_shape_or_dtype(capsys):
    code, _, err = run_cli(["bench", "--shape", "huge"], capsys)
    assert code == 2 and "unknown --shape 'huge'; use one of base, large, 1.3B" in err
    code, _, err = run_cli(["bench", "--shape", "base", "--dtypes", "float8"], capsys)
    assert code == 2 and "float8 unknown" in err

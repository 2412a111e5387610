import random
import re

import numpy as np
import pytest

from nspzero import NSPClassifier, NSPScorer, Pair
from nspzero.errors import ModelError, UsageError
from nspzero.scorer import soft_position_ids, truncated_lengths

PROMPTS = ["这是一则体育新闻", "财经", "这是一则科技新闻", "很好"]
TEXTS = ["今天比赛球队赢了", "市场上涨", "公司发布手机", "我", "这次买的东西很差很差很差", "hello world good movie"]


def all_pairs():
    return [(p, t) for p in PROMPTS for t in TEXTS]


@pytest.mark.parametrize("batch_size", [1, 3, 7, 64])
def test_scores_equal_unbatched_reference_any_batch_size_and_order(model_dir, reference, batch_size):
    scorer = NSPScorer.from_pretrained(model_dir, device="cpu", batch_size=batch_size)
    pairs = all_pairs()
    random.Random(batch_size).shuffle(pairs)
    got = scorer.score([Pair(a, b) for a, b in pairs])
    want = np.array([reference(a, b) for a, b in pairs])
    assert got.shape == (len(pairs),)
    np.testing.assert_allclose(got, want, atol=1e-5, rtol=0)


def test_score_pairs_api_matches_reference(clf, reference):
    first, second = zip(*all_pairs())
    got = clf.score_pairs(list(first), list(second))
    np.testing.assert_allclose(got, [reference(a, b) for a, b in zip(first, second)], atol=1e-5, rtol=0)
    assert np.all((got > 0) & (got < 1))


def test_prefix_and_suffix_segment_ids(clf):
    scorer = clf.scorer
    tok = scorer.tokenizer
    prefix, suffix = scorer.encode([Pair("体育", "今天比赛"), Pair("今天比赛", "体育", prompt="second")])
    cls, sep = tok.cls_token_id, tok.sep_token_id
    sport = tok.convert_tokens_to_ids(list("体育"))
    text = tok.convert_tokens_to_ids(list("今天比赛"))
    assert prefix.input_ids == [cls] + sport + [sep] + text + [sep]
    assert prefix.token_type_ids == [0] * 4 + [1] * 5
    assert suffix.input_ids == [cls] + text + [sep] + sport + [sep]
    assert suffix.token_type_ids == [0] * 6 + [1] * 3
    assert 1 not in prefix.input_ids  # no [UNK]: the test vocab is really used


def _loop_truncate(la, lb, budget, protect_first):
    """The authors' rule spelled out: cut the longer from its end one token at a time."""
    while la + lb > budget:
        if la > lb or (la == lb and not protect_first):
            la -= 1
        else:
            lb -= 1
    return la, lb


@pytest.mark.parametrize("protect_first", [True, False])
def test_truncated_lengths_matches_token_by_token_loop(protect_first):
    for la in range(0, 30):
        for lb in range(0, 30):
            for budget in (1, 5, 10, 17, 40):
                assert truncated_lengths(la, lb, budget, protect_first) == _loop_truncate(la, lb, budget, protect_first)


def test_truncation_keeps_the_prompt_and_cuts_the_text_end(model_dir, reference):
    scorer = NSPScorer.from_pretrained(model_dir, device="cpu", max_length=24)
    prompt, text = "这是一则体育新闻", "今天比赛球队赢了市场上涨公司发布手机电脑游戏"
    tok = scorer.tokenizer
    enc = scorer.encode([Pair(prompt, text)])[0]
    assert tok.convert_ids_to_tokens(enc.input_ids) == ["[CLS]"] + list(prompt) + ["[SEP]"] + list(text[:13]) + ["[SEP]"]
    assert scorer.score([Pair(prompt, text)])[0] == pytest.approx(reference(prompt, text, max_length=24), abs=1e-5)
    suffix = scorer.encode([Pair(text, prompt, prompt="second")])[0]
    assert tok.convert_ids_to_tokens(suffix.input_ids) == ["[CLS]"] + list(text[:13]) + ["[SEP]"] + list(prompt) + ["[SEP]"]


def test_truncation_of_two_long_segments_cuts_the_longer_and_on_a_tie_the_second(model_dir):
    """The paper's rule (8 + 22 tokens into 13): cut the longer side to 8 + 8, then on each tie the
    second side gives a token: 7 + 6. (transformers 5's longest_first gives 6 + 7 here.)"""
    scorer = NSPScorer.from_pretrained(model_dir, device="cpu", max_length=16)
    prompt, text = "这是一则体育新闻", "今天比赛球队赢了市场上涨公司发布手机电脑游戏"
    enc = scorer.encode([Pair(prompt, text)])[0]
    tokens = scorer.tokenizer.convert_ids_to_tokens(enc.input_ids)
    assert tokens == ["[CLS]", *prompt[:7], "[SEP]", *text[:6], "[SEP]"]


def test_soft_position_ids_layout_by_hand():
    # [CLS] i1 i2 [SEP] b1 b2 b3 a1 [SEP]  read as  [CLS] [SEP] b1 b2 b3 i1 i2 a1 [SEP]
    assert soft_position_ids(2, 3, 1) == [0, 5, 6, 1, 2, 3, 4, 7, 8]
    assert soft_position_ids(4, 0, 0) == [0, 2, 3, 4, 5, 1, 6]


def test_anchor_gives_soft_positions_including_truncation(model_dir, reference):
    scorer = NSPScorer.from_pretrained(model_dir, device="cpu", max_length=12)
    idiom, before, after = "严阵以待", "今天", "比赛球队赢了"
    enc = scorer.encode([Pair(idiom, before + after, anchor=len(before))])[0]
    # budget 9 = 4 idiom + 5 passage tokens: 2 before the blank, 3 after (cut from the end)
    assert enc.position_ids == [0, 4, 5, 6, 7, 1, 2, 3, 8, 9, 10, 11]
    assert enc.token_type_ids == [0] * 6 + [1] * 6
    got = scorer.score([Pair(idiom, before + after, anchor=len(before))])[0]
    assert got == pytest.approx(reference(idiom, before + after[:3], position_ids=enc.position_ids), abs=1e-5)
    plain = scorer.score([Pair(idiom, before + after)])[0]
    assert abs(plain - got) > 1e-7  # the positions really reach the model


def test_mixed_anchor_and_plain_pairs_in_one_batch(model_dir):
    scorer = NSPScorer.from_pretrained(model_dir, device="cpu", batch_size=8)
    pairs = [Pair("严阵以待", "今天比赛", anchor=2), Pair("体育", "今天比赛"), Pair("改朝换代", "球队赢了", anchor=0)]
    together = scorer.score(pairs)
    alone = np.array([scorer.score([p])[0] for p in pairs])
    np.testing.assert_allclose(together, alone, atol=1e-5, rtol=0)


def test_duplicate_pairs_scored_once(model_dir):
    scorer = NSPScorer.from_pretrained(model_dir, device="cpu")
    seen = []
    pairs = [Pair("体育", "今天")] * 5 + [Pair("财经", "今天")]
    out = scorer.score(pairs, on_batch=lambda ps, s: seen.extend(ps))
    assert len(seen) == 2 and np.all(out[:5] == out[0])


def test_model_without_nsp_head_is_refused(headless_model_dir):
    with pytest.raises(ModelError, match=r"seq_relationship.*bert-base-chinese"):
        NSPClassifier.from_pretrained(headless_model_dir)


def test_missing_model_dir(tmp_path):
    with pytest.raises(ModelError, match="does not exist"):
        NSPClassifier.from_pretrained(str(tmp_path / "nope"))


def test_non_bert_model_is_refused(tmp_path):
    from transformers import GPT2Config, GPT2LMHeadModel

    GPT2LMHeadModel(GPT2Config(n_layer=1, n_embd=16, n_head=2, vocab_size=50, n_positions=32)).save_pretrained(tmp_path)
    with pytest.raises(ModelError, match="'gpt2' model, which has no next-sentence-prediction head"):
        NSPClassifier.from_pretrained(str(tmp_path))


@pytest.mark.parametrize("kwargs, message", [
    ({"max_length": 1000}, "max_length"), ({"max_length": 2}, "max_length"),
    ({"batch_size": 0}, "batch_size"),
    ({"dtype": "float8"}, "dtype"),
    ({"device": "tpu9"}, "device"),
])
def test_bad_scorer_options(model_dir, kwargs, message):
    with pytest.raises(UsageError, match=message):
        NSPClassifier.from_pretrained(model_dir, **kwargs)


# ---- issue 11: truncation count per call, prompts never cut, empty texts, non-finite scores ------
def test_encode_returns_its_truncation_count_and_keeps_no_state(model_dir):
    scorer = NSPScorer.from_pretrained(model_dir, device="cpu", max_length=16)
    long_text = "今天比赛球队赢了市场上涨公司发布手机"
    encoded = scorer.encode([Pair("体育", long_text, prompt="first"), Pair("体育", "今天"), Pair(long_text, long_text)])
    assert encoded.truncated == 2 and len(encoded) == 3 and len(list(encoded)) == 3
    assert scorer.encode([Pair("体育", "今天")]).truncated == 0
    assert not hasattr(scorer, "truncated_last_call")


@pytest.mark.parametrize("placement", ["first", "second"])
def test_label_prompt_is_never_cut_only_the_text(model_dir, placement):
    scorer = NSPScorer.from_pretrained(model_dir, device="cpu", max_length=22)
    prompt, text = "这是一则体育新闻这是一", "今天比赛球队赢了市场上涨公司发布手机"  # 11 + 18 tokens, budget 19
    pair = Pair(prompt, text, prompt="first") if placement == "first" else Pair(text, prompt, prompt="second")
    tokens = scorer.tokenizer.convert_ids_to_tokens(scorer.encode([pair])[0].input_ids)
    if placement == "first":
        assert tokens == ["[CLS]"] + list(prompt) + ["[SEP]"] + list(text[:8]) + ["[SEP]"]
    else:
        assert tokens == ["[CLS]"] + list(text[:8]) + ["[SEP]"] + list(prompt) + ["[SEP]"]
    # the paper's rule for two data segments would have cut the "prompt" too
    data = scorer.tokenizer.convert_ids_to_tokens(scorer.encode([Pair(prompt, text)])[0].input_ids)
    assert data[1:12] == list(prompt[:10]) + ["[SEP]"]


@pytest.mark.parametrize("placement", ["first", "second"])
def test_prompt_too_long_for_max_length_is_a_usage_error_before_any_scoring(model_dir, placement):
    scorer = NSPScorer.from_pretrained(model_dir, device="cpu", max_length=16)
    scorer.forward = lambda batch: pytest.fail("scored before the prompt was checked")
    prompt = "这是一则体育新闻"  # 8 tokens; max_length 16 leaves 13, minus MIN_TEXT_TOKENS = 5
    pair = Pair(prompt, "今天", prompt="first") if placement == "first" else Pair("今天", prompt, prompt="second")
    with pytest.raises(UsageError, match=r"prompt '这是一则体育新闻' is 8 tokens long, but max_length=16 leaves room "
                                         r"for 5 prompt tokens \(at least 8 are kept for the text\)"):
        scorer.score([Pair("体育", "今天", prompt="first"), pair])


@pytest.mark.parametrize("max_length, prompt, need", [(8, "这是一则体育新闻", "at least 17"), (11, "体育", "13"),
                                                      (16, "这是一则体育新闻", "19")])
def test_prompt_too_long_message_gives_the_max_length_that_fits(model_dir, max_length, prompt, need):
    """The message names a --max-length that holds the prompt, and, when max_length leaves no room for any
    prompt, says the limit is the problem (never "more than 5 tokens … room for 0")."""
    scorer = NSPScorer.from_pretrained(model_dir, device="cpu", max_length=max_length)
    with pytest.raises(UsageError) as info:
        scorer.score([Pair(prompt, "今天", prompt="first")])
    message = str(info.value)
    assert "room for 0" not in message and "room for -" not in message
    assert message.endswith(need) and ("too small for any prompt" in message) == (max_length - 3 - 8 < 1)
    import re

    fits = int(re.search(r"(\d+)$", message).group(1))
    if not need.startswith("at least"):  # the named length is enough, one less is not
        assert NSPScorer.from_pretrained(model_dir, device="cpu", max_length=fits).score(
            [Pair(prompt, "今天", prompt="first")]).shape == (1,)
        with pytest.raises(UsageError):
            NSPScorer.from_pretrained(model_dir, device="cpu", max_length=fits - 1).score(
                [Pair(prompt, "今天", prompt="first")])


def test_huge_prompt_is_named_without_tokenizing_it_whole(model_dir):
    scorer = NSPScorer.from_pretrained(model_dir, device="cpu", max_length=16)
    with pytest.raises(UsageError, match=r"prompt '这这这这[^']*'… is more than 13 tokens long, but max_length=16"):
        scorer.score([Pair("这" * 100_000, "今天", prompt="first")])


@pytest.mark.parametrize("text", ["\x00", "\x00\x00\x00", "\u200b\u200c\ufeff", "\x07\x1b", " \t\n\u3000", "\u00ad"])
def test_texts_with_no_tokens_are_refused_naming_the_pair(clf, text):
    pairs = [Pair("体育", "今天")] * 3 + [Pair("体育", text)]  # duplicates first: the index is still the caller's
    with pytest.raises(UsageError, match=rf"pair 3: its second text {re.escape(repr(text))} has no tokens"):
        clf.scorer.score(pairs)
    with pytest.raises(UsageError, match=r"pair 0: its first text"):
        clf.scorer.score([Pair(text, "今天", prompt="second")])


def test_empty_passage_part_before_a_blank_is_fine(clf):
    assert clf.scorer.score([Pair("严阵以待", "今天比赛", anchor=0)]).shape == (1,)


def test_special_token_strings_in_user_text_are_text(clf):
    tok = clf.scorer.tokenizer
    for text in ("[SEP]今天", "今天[CLS][PAD][MASK][UNK]比赛"):
        enc = clf.scorer.encode([Pair("体育", text, prompt="first")])[0]
        assert enc.input_ids.count(tok.sep_token_id) == 2 and enc.input_ids.count(tok.cls_token_id) == 1
        assert tok.pad_token_id not in enc.input_ids and tok.mask_token_id not in enc.input_ids


def test_a_huge_text_is_tokenized_only_as_far_as_max_length_needs(model_dir, monkeypatch):
    scorer = NSPScorer.from_pretrained(model_dir, device="cpu", max_length=32)
    seen = []
    real = scorer.tokenizer.__class__.__call__
    monkeypatch.setattr(scorer.tokenizer.__class__, "__call__",
                        lambda self, texts, **kw: seen.extend(len(t) for t in texts) or real(self, texts, **kw))
    text = "今天比赛球队赢了，hello world。" * 200_000
    got = scorer.encode([Pair("体育", text, prompt="first")])[0]
    assert max(seen) < 2000
    want = scorer.encode([Pair("体育", text[:200], prompt="first")])[0]
    assert got == want


def test_nan_weights_are_a_model_error_naming_the_model(model_dir):
    import torch

    base = NSPScorer.from_pretrained(model_dir, device="cpu")
    with torch.no_grad():
        base.model.bert.encoder.layer[0].output.dense.weight.fill_(float("nan"))
    scorer = NSPScorer(base.tokenizer, base.model, device="cpu", name="tiny-nan")
    with pytest.raises(ModelError, match=r"model tiny-nan gave non-finite NSP scores .* corrupt .* dtype"):
        scorer.score([Pair("体育", "今天"), Pair("财经", "今天")])


def test_inf_logits_are_a_model_error(model_dir):
    import torch

    base = NSPScorer.from_pretrained(model_dir, device="cpu")
    scorer = NSPScorer(base.tokenizer, base.model, device="cpu", name="tiny-inf")
    with torch.no_grad():
        scorer.model.cls.seq_relationship.bias.fill_(float("inf"))
    with pytest.raises(ModelError, match="non-finite"):
        scorer.score([Pair("体育", "今天")])


@pytest.mark.parametrize("device", ["meta", "mps", "xpu", "cuda:7", "hpu"])
def test_devices_other_than_cpu_and_cuda_are_one_line_usage_errors(device):
    from nspzero.scorer import resolve_device

    with pytest.raises(UsageError) as info:
        resolve_device(device)
    assert "\n" not in str(info.value) and repr(device) in str(info.value)


def test_int8_leaves_a_callers_model_alone_and_quantises_its_own_in_place(model_dir):
    """A model object passed in is quantised as a copy (the caller keeps its fp32 model); one that
    from_pretrained loaded is quantised in place (no second copy of the weights)."""
    import torch

    from nspzero.loading import load_nsp_model
    from nspzero.quantize import Int8Linear

    tokenizer, model = load_nsp_model(model_dir)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    scorer = NSPScorer(tokenizer, model, device="cpu", dtype="int8", backend="torch")
    assert scorer.model is not model and any(isinstance(m, Int8Linear) for m in scorer.model.modules())
    assert not any(isinstance(m, Int8Linear) for m in model.modules())
    after = model.state_dict()
    assert list(after) == list(before) and all(torch.equal(after[k], before[k]) for k in before)
    fp32 = NSPScorer(tokenizer, model, device="cpu").score([Pair("体育", "今天比赛球队赢了")])
    np.testing.assert_array_equal(fp32, NSPScorer.from_pretrained(model_dir, device="cpu").score(
        [Pair("体育", "今天比赛球队赢了")]))
    own = NSPScorer.from_pretrained(model_dir, device="cpu", dtype="int8", backend="torch")
    assert own.owns_model and any(isinstance(m, Int8Linear) for m in own.model.modules())


@pytest.mark.parametrize("amx,native,says", [(True, True, None), (False, True, "no AMX"),
                                             (False, False, "no native bfloat16")])
def test_bfloat16_on_a_cpu_without_amx_warns_that_it_is_slower(model_dir, monkeypatch, caplog, amx, native, says):
    """AVX-512 BF16 without AMX ran bf16 at about half fp32's speed (docs/speed.md): the user is told."""
    from nspzero import cpu

    monkeypatch.setattr(cpu, "has_amx", lambda: amx)
    monkeypatch.setattr(cpu, "has_native_bf16", lambda: native)
    with caplog.at_level("WARNING", logger="nspzero"):
        NSPScorer.from_pretrained(model_dir, device="cpu", dtype="bfloat16")
    warnings = [r.getMessage() for r in caplog.records if "bfloat16" in r.getMessage()]
    assert (warnings == []) if says is None else (len(warnings) == 1 and says in warnings[0]), warnings


def test_bfloat16_leaves_a_callers_model_in_float32(model_dir):
    """bf16 converts the Linear layers in place, so a model object passed in is converted as a copy."""
    import torch

    from nspzero.loading import load_nsp_model

    tokenizer, model = load_nsp_model(model_dir)
    scorer = NSPScorer(tokenizer, model, device="cpu", dtype="bfloat16")
    assert all(p.dtype == torch.float32 for p in model.parameters())
    assert any(p.dtype == torch.bfloat16 for p in scorer.model.parameters())


# ==== Bad-input rows (moved here from test_bad_input.py: scorer settings and devices, non-finite scores, prompts that do not fit, texts without tokens; the one truncation warning per call) ====
import logging  # noqa: E402

from bad_input import Env, case, check_case, env  # noqa: E402,F401  (env is a fixture)

LABELS = ["体育", "财经"]
LONG_TEXT = "今天比赛球队赢了市场上涨公司发布手机" * 30  # ~540 tokens, far beyond max_length
LONG_PROMPT = "这是一则体育新闻" * 7  # 56 tokens: more than max_length=64 leaves for a prompt (53)


def _nan_scorer(e: Env, value=float("nan")):
    import copy

    import torch

    model = copy.deepcopy(e.clf.scorer.model)
    with torch.no_grad():
        model.bert.encoder.layer[0].output.dense.weight.fill_(value)
    return NSPScorer(e.clf.scorer.tokenizer, model, device="cpu", name="tiny-broken")


def _pairs(*pairs):
    return [Pair(*p) if isinstance(p, tuple) else p for p in pairs]


SCORER_BAD_INPUT = [
    case("dtype-float8", lambda e: NSPClassifier.from_pretrained(e.model(), device="cpu", dtype="float8"),
         UsageError, "dtype must be one of float32, bfloat16, float16, int8, got 'float8'"),
    case("max-length-huge", lambda e: NSPClassifier.from_pretrained(e.model(), device="cpu", max_length=100000),
         UsageError, "max_length must be an integer between 4 and 512"),
    case("batch-size-zero", lambda e: NSPClassifier.from_pretrained(e.model(), device="cpu", batch_size=0),
         UsageError, "batch_size must be a positive integer, got 0"),
    case("device-unknown", lambda e: NSPClassifier.from_pretrained(e.model(), device="tpu"), UsageError,
         "device 'tpu' is not a device name"),
    case("nan-weights", lambda e: _nan_scorer(e).score(_pairs(("体育", "今天"))), ModelError,
         "model tiny-broken gave non-finite NSP scores"),
    case("inf-weights", lambda e: _nan_scorer(e, float("inf")).score(_pairs(("体育", "今天"))), ModelError,
         "checkpoint"),
    case("prompt-too-long-prefix",
         lambda e: e.clf.scorer.score(_pairs(("体育", "今天", "first"), (LONG_PROMPT, "今天", "first"))), UsageError,
         "is 56 tokens long, but max_length=64 leaves room for 53 prompt tokens"),
    case("prompt-too-long-suffix", lambda e: e.clf.scorer.score(_pairs(("今天", LONG_PROMPT, "second"))), UsageError,
         "max_length=64"),
    case("prompt-too-long-huge", lambda e: e.clf.scorer.score(_pairs(("体" * 1_000_000, "今天", "first"))),
         UsageError, "is more than 61 tokens long"),
    case("prompt-too-long-suffix-classify",
         lambda e: e.clf.classify("今天比赛", LABELS, template=LONG_PROMPT + "{label}", placement="suffix"), UsageError,
         "tokens long, but max_length=64"),
    case("nul-text", lambda e: e.clf.score_pairs(["体育"], ["\x00"]), UsageError,
         r"pair 0: its second text '\x00' has no tokens"),
    case("nul-text-many", lambda e: e.clf.score_pairs(["体育", "体育"], ["今天", "\x00" * 100]), UsageError,
         "pair 1: its second text '\\x00\\x00"),
    case("zero-width-text", lambda e: e.clf.score_pairs(["体育"], ["\u200b\u200d\u2060"]), UsageError, "has no tokens"),
    case("bom-text", lambda e: e.clf.score_pairs(["\ufeff"], ["今天"]), UsageError, "pair 0: its first text"),
    case("control-text", lambda e: e.clf.score_pairs(["体育"], ["\x07\x1b\x7f\x9f"]), UsageError, "has no tokens"),
    case("soft-hyphen-text", lambda e: e.clf.score_pairs(["体育"], ["\u00ad\u00ad"]), UsageError, "has no tokens"),
    case("combining-marks-only-text", lambda e: e.clf.score_pairs(["体育"], ["\u0301\u0308"]), UsageError,
         "has no tokens"),
    case("nul-text-huge", lambda e: e.clf.score_pairs(["体育"], ["\x00" * 3_000_000]), UsageError,
         r"'\x00\x00\x00"),
    case("device-meta", lambda e: NSPClassifier.from_pretrained(e.model(), device="meta"), UsageError,
         "device 'meta' is not supported"),
    case("device-mps", lambda e: NSPClassifier.from_pretrained(e.model(), device="mps"), UsageError,
         "device 'mps' is not supported"),
    case("device-xpu", lambda e: NSPClassifier.from_pretrained(e.model(), device="xpu:0"), UsageError,
         "is not supported"),
    case("device-cuda-index", lambda e: NSPClassifier.from_pretrained(e.model(), device="cuda:99"), UsageError,
         "device 'cuda:99'"),
    case("device-empty", lambda e: NSPClassifier.from_pretrained(e.model(), device=""), UsageError, "device ''"),
]


@pytest.mark.usefixtures("one_torch_thread")
@pytest.mark.parametrize("fn, exc, message", SCORER_BAD_INPUT)
def test_scorer_bad_input_is_a_one_line_error(env, fn, exc, message):
    check_case(fn, env, exc, message)


def _warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "nspzero" and r.levelno == logging.WARNING]


def test_texts_far_beyond_max_length_succeed_with_one_warning_per_call(clf, nspzero_caplog):
    texts = [LONG_TEXT, "今天比赛", LONG_TEXT[::-1], LONG_TEXT + "好"]
    for call in range(2):
        nspzero_caplog.clear()
        results = clf.classify(texts, LABELS, template="这是一则{label}新闻")
        assert [r.text for r in results] == texts
        assert all(0.0 <= s <= 1.0 for r in results for s in r.scores.values())
        messages = _warnings(nspzero_caplog)
        assert len(messages) == 1, messages
        assert "6 of 8 pairs were longer than max_length=64 tokens and were truncated" in messages[0]


def test_score_pairs_beyond_max_length_one_warning(clf, nspzero_caplog):
    scores = clf.score_pairs(["这是一则体育新闻"] * 3, [LONG_TEXT, LONG_TEXT + "好", "今天比赛"])
    assert scores.shape == (3,)
    messages = _warnings(nspzero_caplog)
    assert len(messages) == 1 and "2 of 3 pairs were longer than max_length=64" in messages[0], messages


def test_no_warning_without_truncation(clf, nspzero_caplog):
    clf.classify(["今天比赛", "市场上涨"], LABELS)
    assert _warnings(nspzero_caplog) == []
# ==== end of the moved bad-input rows ====


class _BrokenInstall:
    """A meta-path finder whose onnxruntime import fails the way a broken wheel does (not ImportError)."""

    def find_spec(self, name, path=None, target=None):
        if name == "onnxruntime" or name.startswith("onnxruntime."):
            raise OSError("libonnxruntime.so.1: cannot open shared object file")
        return None


@pytest.mark.parametrize("backend", ["auto", "onnxruntime"])
def test_a_broken_onnxruntime_install_falls_back_to_torch_with_one_warning(model_dir, monkeypatch, caplog, backend):
    """Class: an optional runtime whose import raises something other than ImportError. int8 with the
    automatic choice (and the NSPZERO_BACKEND preference) runs torch's int8 after one warning; no traceback."""
    import sys

    from nspzero import scorer as scorer_module

    for name in [n for n in sys.modules if n == "onnxruntime" or n.startswith("onnxruntime.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setattr(sys, "meta_path", [_BrokenInstall(), *sys.meta_path])
    monkeypatch.setattr(scorer_module, "_WARNED", set())
    if backend == "onnxruntime":
        monkeypatch.setenv("NSPZERO_BACKEND", "onnxruntime")
    pair = [Pair("体育", "今天比赛球队赢了")]
    with caplog.at_level("WARNING", logger="nspzero"):
        got = [NSPScorer.from_pretrained(model_dir, device="cpu", dtype="int8").score(pair) for _ in range(2)]
    want = NSPScorer.from_pretrained(model_dir, device="cpu", dtype="int8", backend="torch").score(pair)
    with pytest.raises(UsageError, match="backend onnxruntime needs .*cannot be imported .*OSError"):
        NSPScorer.from_pretrained(model_dir, device="cpu", dtype="int8", backend="onnxruntime")
    np.testing.assert_array_equal(got[0], want)
    np.testing.assert_array_equal(got[1], want)
    said = [r.getMessage() for r in caplog.records if "cannot be imported" in r.getMessage()]
    assert len(said) == 1 and "OSError" in said[0] and "\n" not in said[0]

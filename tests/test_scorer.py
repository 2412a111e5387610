import random

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


def test_truncation_of_two_long_segments_matches_transformers_longest_first(model_dir, reference):
    scorer = NSPScorer.from_pretrained(model_dir, device="cpu", max_length=16)
    prompt, text = "这是一则体育新闻", "今天比赛球队赢了市场上涨公司发布手机电脑游戏"
    enc = scorer.encode([Pair(prompt, text)])[0]
    assert len(enc.input_ids) == 16  # 13 tokens left: the prompt keeps 7, the text 6
    assert scorer.tokenizer.convert_ids_to_tokens(enc.input_ids)[1:9] == list(prompt[:7]) + ["[SEP]"]
    assert scorer.score([Pair(prompt, text)])[0] == pytest.approx(reference(prompt, text, max_length=16), abs=1e-5)


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

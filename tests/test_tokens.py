"""tokens.py: a prefix tokenization gives exactly full tokenization's first ids; special-token
strings in user text stay text."""
from __future__ import annotations

import random

import pytest

from nspzero.tokens import _ids, is_safe_cut, short_enough, token_ids, token_prefix

from conftest import CHARS as _CHARS, VOCAB

CHARS = "".join(_CHARS)

EXTRA = ["[", "]", "sep", "cls", "pad", "mask", "unk", "##s", "##ing", "##ed", "un", "##able", "long", "##er"]


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    from transformers import BertTokenizer

    folder = tmp_path_factory.mktemp("vocab")
    (folder / "vocab.txt").write_text("\n".join(VOCAB + EXTRA) + "\n", encoding="utf-8")
    return BertTokenizer.from_pretrained(str(folder))


ALPHABET = {
    "chinese": CHARS[:60] + "，。！？、",
    "english": "helloworldgoodbadmovie great terrible piece of work the it is sing edable longer ",
    "mixed": CHARS[:30] + "hello world good 12 34 ,.!?[]()'\"-–— \t\n\u3000",
    "hostile": "ab\u0301e\u0301\u0338<>=\u200b\x00\x07\ufeff\u00ad İß́ 中\u0301！\u0301 \r\n" + CHARS[:10],
}


def _random_text(rng: random.Random, kind: str, n: int) -> str:
    chars = ALPHABET[kind]
    out = []
    while len(out) < n:
        if rng.random() < 0.05:  # a long word: becomes [UNK] (over 100 characters) or many word pieces
            out.extend(rng.choice("abcdefghij") for _ in range(rng.choice((20, 99, 100, 101, 350))))
        else:
            out.append(rng.choice(chars))
    return "".join(out)


@pytest.mark.parametrize("kind", sorted(ALPHABET))
@pytest.mark.parametrize("limit", [5, 13, 62, 126, 510])
def test_prefix_ids_equal_full_tokenization(tokenizer, kind, limit):
    rng = random.Random(f"{kind}{limit}")
    for trial in range(6):
        text = _random_text(rng, kind, rng.choice((9 * limit + 300, 30 * limit + 2000, 3)))
        full = _ids(tokenizer, [text])[0]
        assert token_prefix(tokenizer, text, limit) == full[:limit], (kind, limit, trial)
        assert token_ids(tokenizer, [text, "今天"], limit)[text] == full[:limit]


def test_long_text_with_little_content_is_read_to_its_end(tokenizer):
    text = "\x00" * 300_000 + "今天比赛" + "\u200b" * 300_000
    assert not short_enough(text, 10)
    assert token_prefix(tokenizer, text, 10) == _ids(tokenizer, ["今天比赛"])[0]
    assert token_prefix(tokenizer, "\x00\u200b\x07" * 100_000, 10) == []


def test_safe_cuts():
    assert is_safe_cut("ab cd", 2) and is_safe_cut("ab cd", 3)
    assert not is_safe_cut("abcd", 2)                       # inside a word
    assert is_safe_cut("今天比赛", 2)                        # between CJK characters
    assert not is_safe_cut("今\u0301天", 1)                  # a combining mark joins the character before it
    assert not is_safe_cut("<\u0338", 1)                     # NFC would compose "≮"
    assert is_safe_cut("中a", 1) and is_safe_cut("!中", 1)


@pytest.mark.parametrize("text", ["[SEP]", "今天[CLS]比赛", "[PAD][MASK][UNK]", "a [SEP] it", "[sep]", "[ SEP ]"])
def test_special_token_strings_in_text_are_text(tokenizer, text):
    ids = token_ids(tokenizer, [text], 64)[text]
    specials = {tokenizer.cls_token_id, tokenizer.sep_token_id, tokenizer.pad_token_id, tokenizer.mask_token_id,
                tokenizer.unk_token_id}
    assert ids and not specials & set(ids), tokenizer.convert_ids_to_tokens(ids)
    assert tokenizer.convert_ids_to_tokens(ids)[:1] in (["["], ["今"], ["a"])


@pytest.mark.parametrize("run", ["a" * 5000, "0f" * 3000, "ab\x00" * 2000])
@pytest.mark.parametrize("after", ["", " 今天比赛 hello", "，好。", "é tail", "\u0301x"])
def test_long_ascii_run_is_one_unk_without_tokenizing_it(tokenizer, run, after):
    for before in ("", "今天 ", "hello,"):
        text = before + run + after + " 比赛" * 50
        for limit in (2, 5, 40):
            assert token_prefix(tokenizer, text, limit) == _ids(tokenizer, [text])[0][:limit], (before, after, limit)


@pytest.mark.parametrize("run", ["д" * 5000, "é" * 3000, "e\u0301" * 2000, "ab😀" * 1500, "ß" * 4000, "ع" * 3000])
@pytest.mark.parametrize("after", ["", " 今天比赛 hello", "，好。", "_x tail", "\u0301x"])
def test_a_long_word_in_any_script_is_one_unk_without_tokenizing_it(tokenizer, run, after):
    """Words longer than WordPiece takes are one [UNK] in any script: the prefix rule skips them
    and must give exactly the ids of tokenizing the whole text."""
    for before in ("", "今天 ", "hello,"):
        text = before + run + after + " 比赛" * 50
        for limit in (2, 5, 40):
            assert token_prefix(tokenizer, text, limit) == _ids(tokenizer, [text])[0][:limit], (before, after, limit)


def test_a_word_of_accents_is_counted_after_stripping(tokenizer):
    """60 letters each with two combining marks: 180 characters, but 60 after accents are stripped,
    so it is a word, not [UNK]; the rule must not skip it."""
    text = "今天 " + "e\u0301\u0308" * 60 + " 比赛" * 400
    assert token_prefix(tokenizer, text, 30) == _ids(tokenizer, [text])[0][:30]


def test_a_multi_megabyte_word_costs_no_memory(tokenizer):
    import tracemalloc

    text = "今天 " + "д" * 20_000_000 + " 比赛"
    tracemalloc.start()
    ids = token_prefix(tokenizer, text, 8)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert ids == _ids(tokenizer, ["今天"])[0] + [tokenizer.unk_token_id] + _ids(tokenizer, ["比赛"])[0]
    assert peak < 20_000_000  # far less than the 80 MB the word takes, let alone tokenizing it


def test_a_text_longer_than_the_model_leaks_no_transformers_warning(tokenizer, capfd):
    """nspzero cuts or windows long texts and says so itself: transformers' "Token indices sequence length
    is longer than the specified maximum" must not reach the terminal (it did once per tokenizer, e.g. in bench)."""
    import logging

    from transformers.utils import logging as tlog

    tokenizer.model_max_length = 16
    tokenizer.deprecation_warnings.pop("sequence-length-is-longer-than-the-specified-maximum", None)
    records: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: records.append(record.getMessage())
    tlog.get_logger("transformers").addHandler(handler)
    try:
        ids = _ids(tokenizer, ["今天比赛球队赢了" * 10])
        token_ids(tokenizer, ["今天比赛球队赢了" * 10], 64)
    finally:
        tlog.get_logger("transformers").removeHandler(handler)
    assert len(ids[0]) == 80
    assert not [m for m in records if "Token indices" in m]
    assert "Token indices" not in capfd.readouterr().err

"""windows.py: long texts split into windows of at most `budget` tokens, on sentence ends where
possible, covering every token in order, each window re-tokenizing to exactly its span's tokens."""
from __future__ import annotations

import json
import os
import random
import shutil
from bisect import bisect_left

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nspzero import windows as windows_module
from nspzero.errors import UsageError
from nspzero.tokens import token_ids
from nspzero.windows import sentence_ends, split_windows, window_spans, window_spans_many

from conftest import VOCAB, one_line
from fewclue_fixture import FEWCLUE, VOCAB_DIR

LETTERS = "abcdefghij"
# word pieces, so that a long word of these letters is many tokens ("abc" → a ##b ##c)
PIECES = [c for c in LETTERS if c not in VOCAB] + ["##" + c for c in LETTERS]


def _tokenizer(folder, words):
    from transformers import BertTokenizer

    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "vocab.txt"), "w", encoding="utf-8") as handle:
        handle.write("\n".join(words) + "\n")
    return BertTokenizer.from_pretrained(str(folder))


@pytest.fixture(scope="module")
def tok(tmp_path_factory):
    """The tests' tiny vocab: every character or word of it is one token, anything else [UNK]."""
    return _tokenizer(tmp_path_factory.mktemp("vocab"), VOCAB)


@pytest.fixture(scope="module")
def other_toks(tmp_path_factory):
    """The tiny vocab with BERT's other normalizer settings: cased (accents kept), and CJK runs as
    words (tokenize_chinese_chars=False)."""
    from transformers import BertTokenizer

    folder = tmp_path_factory.mktemp("vocab-other")
    _tokenizer(folder, VOCAB + PIECES)
    return [BertTokenizer.from_pretrained(str(folder), do_lower_case=False),
            BertTokenizer.from_pretrained(str(folder), tokenize_chinese_chars=False)]


@pytest.fixture(scope="module")
def piece_tok(tmp_path_factory):
    """The tiny vocab plus single-letter word pieces: a word of a-j letters is one token per letter."""
    return _tokenizer(tmp_path_factory.mktemp("vocab-pieces"), VOCAB + PIECES)


def _ids(tokenizer, text):
    return tokenizer(text, add_special_tokens=False, split_special_tokens=True)["input_ids"]


def _full(tokenizer, text):
    enc = tokenizer(text, add_special_tokens=False, split_special_tokens=True, return_offsets_mapping=True)
    return enc["input_ids"], [a for a, _ in enc["offset_mapping"]], enc.word_ids()


def _token_span(starts, span):
    """The tokens [i, j) of the whole text that a character span holds."""
    return bisect_left(starts, span[0]), bisect_left(starts, span[1])


def check_windows(tokenizer, text, budget, overlap):
    """Every promise of split_windows, checked against the whole text's tokenization."""
    spans = window_spans(tokenizer, text, budget, overlap)
    windows = split_windows(tokenizer, text, budget, overlap)
    assert windows == [text[a:b] for a, b in spans]
    ids, starts, words = _full(tokenizer, text)
    if len(ids) <= budget:
        assert windows == [text] and spans == [(0, len(text))]
        return windows
    assert all(windows) and len(windows) >= 2
    ranges = [_token_span(starts, span) for span in spans]
    assert ranges[0][0] == 0 and ranges[-1][1] == len(ids)
    for (a, b), (c, d) in zip(ranges, ranges[1:]):
        assert a <= c and b < d                                  # in order, always moving on
        assert c <= b and b - c <= overlap                       # no token lost, overlap bounded
        if overlap == 0:
            assert c == b
    for (i, j), (a, b), window in zip(ranges, spans, windows):
        assert i < j and starts[i] == a
        window_ids = _ids(tokenizer, window)
        assert len(window_ids) <= budget, (window, budget)
        clean = all(k in (0, len(ids)) or words[k] != words[k - 1] for k in (i, j))
        if clean:   # re-tokenizing the window gives exactly its tokens in the whole text
            assert window_ids == ids[i:j], (window, text)
    # characters in no window hold no token (whitespace, invisible characters)
    covered = [False] * len(text)
    for a, b in spans:
        covered[a:b] = [True] * (b - a)
    gaps = "".join(c if not seen else "\x00" for c, seen in zip(text, covered)).split("\x00")
    assert all(_ids(tokenizer, gap) == [] for gap in gaps)
    return windows


# --- sentence ends ---------------------------------------------------------------------------

def test_sentence_ends_keep_punctuation_and_closing_quotes_with_the_sentence():
    text = "他说：“我们赢了！”然后走了。好吗？！是的；ok? yes!) no; 」x\nnext\r\nlast"
    ends = sentence_ends(text)
    pieces = [text[a:b] for a, b in zip([0] + ends, ends + [len(text)])]
    assert pieces == ["他说：“我们赢了！”", "然后走了。", "好吗？！", "是的；", "ok?", " yes!)", " no;", " 」x\n",
                      "next\r\n", "last"]


def test_sentence_ends_edge_cases():
    assert sentence_ends("") == []
    assert sentence_ends("no end") == []
    assert sentence_ends("。") == [1]
    assert sentence_ends("a.b. c") == []          # '.' is no sentence end (abbreviations, numbers)
    assert sentence_ends("\n\n") == [1, 2]
    assert sentence_ends("好！”」\n") == [4, 5]


# --- hand-computed windows on the tiny vocab (one token per character or word) -----------------

CN = "今天比赛球队赢了。市场上涨！公司发布手机？"   # sentences of 9, 5 and 7 tokens
EN = "it is a good movie! the work is bad; hello world"   # 6, 5 and 2 tokens


@pytest.mark.parametrize("budget, overlap, expected", [
    (21, 0, [CN]),
    (100, 10, [CN]),
    (20, 0, ["今天比赛球队赢了。市场上涨！", "公司发布手机？"]),
    (14, 0, ["今天比赛球队赢了。市场上涨！", "公司发布手机？"]),
    (12, 0, ["今天比赛球队赢了。", "市场上涨！公司发布手机？"]),
    # overlap: the previous window's trailing whole sentences of at most `overlap` tokens
    (14, 5, ["今天比赛球队赢了。市场上涨！", "市场上涨！公司发布手机？"]),
    (14, 4, ["今天比赛球队赢了。市场上涨！", "公司发布手机？"]),
    (12, 5, ["今天比赛球队赢了。", "市场上涨！公司发布手机？"]),
    # a sentence longer than the budget is cut between tokens; the last sentence too
    (6, 0, ["今天比赛球队", "赢了。", "市场上涨！", "公司发布手机", "？"]),
    (8, 0, ["今天比赛球队赢了", "。市场上涨！", "公司发布手机？"]),
    # a hard cut overlaps exactly `overlap` tokens; a sentence cut only whole sentences
    (6, 2, ["今天比赛球队", "球队赢了。", "市场上涨！", "公司发布手机", "手机？"]),
    (8, 3, ["今天比赛球队赢了", "队赢了。", "市场上涨！", "公司发布手机？"]),
    (1, 0, list(CN)),
])
def test_chinese_reference_windows(tok, budget, overlap, expected):
    assert split_windows(tok, CN, budget, overlap) == expected
    check_windows(tok, CN, budget, overlap)


@pytest.mark.parametrize("budget, overlap, expected", [
    (13, 0, [EN]),
    (11, 0, ["it is a good movie! the work is bad;", "hello world"]),
    (8, 5, ["it is a good movie!", "the work is bad; hello world"]),
    (12, 7, ["it is a good movie! the work is bad;", "the work is bad; hello world"]),
    # hard cuts fall between words, overlap counted in tokens
    (4, 1, ["it is a good", "good movie!", "the work is bad", "bad; hello world"]),
    (3, 0, ["it is a", "good movie!", "the work is", "bad;", "hello world"]),
])
def test_english_reference_windows(tok, budget, overlap, expected):
    assert split_windows(tok, EN, budget, overlap) == expected
    check_windows(tok, EN, budget, overlap)


def test_spans_locate_the_windows(tok):
    import numpy as np

    assert window_spans(tok, CN, 14, 5) == [(0, 14), (9, 21)]
    assert window_spans(tok, CN, np.int64(14), np.int32(5)) == [(0, 14), (9, 21)]
    assert window_spans(tok, EN, 11) == [(0, 36), (37, 48)]


def test_a_text_that_fits_is_returned_whole_whitespace_and_all(tok):
    text = "  今天比赛\n "
    assert split_windows(tok, text, 4) == [text]          # exactly the budget
    assert window_spans(tok, text, 4, 3) == [(0, len(text))]
    assert split_windows(tok, text, 3) == ["今天比", "赛"]   # one token more: leading whitespace skipped
    assert split_windows(tok, "", 1) == [""]
    assert split_windows(tok, " \n\t", 1) == [" \n\t"]


def test_windows_break_after_newlines(tok):
    text = "今天比赛\n球队赢了\n市场上涨"
    assert split_windows(tok, text, 9) == ["今天比赛\n球队赢了", "市场上涨"]
    assert split_windows(tok, text, 5) == ["今天比赛", "球队赢了", "市场上涨"]
    assert split_windows(tok, text, 9, 4) == ["今天比赛\n球队赢了", "球队赢了\n市场上涨"]
    assert split_windows(tok, "今天\r\n\r\n比赛", 3) == ["今天", "比赛"]


def test_closing_quotes_stay_with_their_sentence(tok):
    text = "他说：“我们赢了！”然后走了。"   # 10 + 5 tokens
    assert split_windows(tok, text, 12) == ["他说：“我们赢了！”", "然后走了。"]
    assert split_windows(tok, "「好！」『是？』（对。）后", 4) == ["「好！」", "『是？』", "（对。）", "后"]


def test_mixed_scripts(tok):
    text = "hello 我们！good movie? 这是一则新闻。the end"   # sentences of 4, 3, 7 and 2 tokens
    assert split_windows(tok, text, 9) == ["hello 我们！good movie?", "这是一则新闻。the end"]
    assert split_windows(tok, text, 8) == ["hello 我们！good movie?", "这是一则新闻。", "the end"]
    assert split_windows(tok, text, 10, 3) == ["hello 我们！good movie?", "good movie? 这是一则新闻。", "the end"]
    # the overlap sentence is dropped when it would leave no room for the next whole sentence
    assert split_windows(tok, text, 7, 3) == ["hello 我们！good movie?", "这是一则新闻。", "the end"]
    for budget, overlap in [(10, 3), (7, 3), (5, 4)]:
        check_windows(tok, text, budget, overlap)


def test_special_token_strings_are_text(tok):
    text = "[SEP] 今天。[CLS]比赛。"   # "[SEP]" is the three tokens [ sep ], as the scorer sees it
    assert split_windows(tok, text, 6) == ["[SEP] 今天。", "[CLS]比赛。"]


def test_one_very_long_word(tok, piece_tok):
    word = LETTERS * 3   # 30 word pieces with piece_tok; one [UNK] with the tiny vocab
    assert split_windows(tok, word, 1) == [word]
    assert split_windows(piece_tok, word, 8) == ["abcdefgh", "ijabcdef", "ghijabcd", "efghij"]
    assert split_windows(piece_tok, word, 8, 2) == ["abcdefgh", "ghijabcd", "cdefghij", "ijabcdef", "efghij"]
    assert split_windows(piece_tok, "x " + LETTERS * 11, 1) == ["x", LETTERS * 11]   # over 100 letters: one [UNK]
    for budget, overlap in [(1, 0), (2, 1), (5, 4), (29, 3)]:
        check_windows(piece_tok, word, budget, overlap)


def test_a_long_word_is_cut_only_when_it_alone_exceeds_the_budget(piece_tok):
    text = "the bad " + LETTERS + " work"   # 1 + 1 + 10 + 1 tokens
    assert split_windows(piece_tok, text, 10) == ["the bad", "abcdefghij", "work"]
    assert split_windows(piece_tok, text, 11) == ["the bad", "abcdefghij work"]
    assert split_windows(piece_tok, text, 6) == ["the bad", "abcdef", "ghij work"]


# --- errors --------------------------------------------------------------------------------

@pytest.mark.parametrize("budget, overlap, needles", [
    (0, 0, ("budget", "≥ 1", "0", "max_length")),
    (-3, 0, ("budget", "-3")),
    (2.5, 0, ("budget", "2.5")),
    (True, 0, ("budget", "True")),
    (5, -1, ("overlap", "≥ 0", "-1")),
    (5, 5, ("overlap (5 tokens) must be smaller than the window budget (5 tokens)",)),
    (5, 9, ("overlap (9 tokens)", "lower the overlap")),
])
def test_bad_budget_or_overlap(tok, budget, overlap, needles):
    for call in (split_windows, window_spans):
        with pytest.raises(UsageError) as info:
            call(tok, CN, budget, overlap)
        one_line(info, *needles)


def test_a_slow_tokenizer_is_refused(tok):
    class Slow:
        is_fast = False

    with pytest.raises(UsageError) as info:
        split_windows(Slow(), CN, 5)
    one_line(info, "fast", "tokenizer")


# --- one tokenization, however long the text -------------------------------------------------

class CountingTokenizer:
    def __init__(self, inner):
        self.inner, self.calls = inner, 0

    def __call__(self, *args, **kwargs):
        self.calls += 1
        return self.inner(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(self.inner, name)


def test_the_text_is_tokenized_once(tok):
    text = "".join(f"今天比赛{'球队' * (i % 7)}赢了。\n" for i in range(5000))   # ~70 k characters
    counting = CountingTokenizer(tok)
    assert len(split_windows(counting, text, 50, 10)) > 1000
    assert counting.calls == 1   # one call, with the text in pieces of ~8 k characters
    check_windows(tok, text[:3000], 50, 10)


def test_many_texts_in_one_tokenizer_call(tok, monkeypatch):
    monkeypatch.setattr(windows_module, "PIECE_CHARS", 16)   # the long text goes in pieces too
    texts = [CN, "", EN, "短", CN * 5, "  \n", EN + "\n" + CN]
    counting = CountingTokenizer(tok)
    assert window_spans_many(counting, texts, 12, 5) == [window_spans(tok, t, 12, 5) for t in texts]
    assert counting.calls == 1
    assert window_spans_many(tok, [], 12) == [] and window_spans_many(tok, iter([CN]), 21) == [[(0, len(CN))]]
    with pytest.raises(UsageError) as info:
        window_spans_many(tok, [CN, None], 12)
    one_line(info, "texts must be strings, got NoneType None")
    with pytest.raises(UsageError):
        window_spans_many(tok, [CN], 0)


# --- properties on random texts -------------------------------------------------------------

ATOMS = (list("今天比赛球队赢了市场上涨公司发布手机我们这是一则新闻") + ["hello", "world", "good", "the", "movie"]
         + [" ", " ", "  ", "\n", "\r\n", "\t", "。", "！", "？", "!", "?", ";", "；", "”", "」", "』", "）", ")", "“",
            "，", ",", "[SEP]", "é", "e\u0301", "\u200b", "İ", "ß", "中\u0301", "x", "12", LETTERS, LETTERS * 4,
            LETTERS * 11])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(atoms=st.lists(st.sampled_from(ATOMS), max_size=80), budget=st.integers(1, 30), data=st.data())
def test_windows_properties_on_random_texts(tok, piece_tok, other_toks, atoms, budget, data):
    text = "".join(atoms)
    overlap = data.draw(st.integers(0, budget - 1))
    for tokenizer in [tok, piece_tok] + other_toks:
        check_windows(tokenizer, text, budget, overlap)


@pytest.mark.parametrize("seed", range(6))
def test_long_texts_are_tokenized_in_pieces_with_the_same_tokens(tok, piece_tok, other_toks, monkeypatch, seed):
    """Tokenizing in pieces (cut before whitespace, or between CJK characters and punctuation)
    gives exactly the offsets and word boundaries of tokenizing the text whole."""
    monkeypatch.setattr(windows_module, "PIECE_CHARS", 16)
    rng = random.Random(seed)
    pool = ATOMS if seed % 2 else [a for a in ATOMS if a.strip() and a not in ("x", "12")] + ["今天" * 30]
    text = "".join(rng.choice(pool) for _ in range(400))
    for tokenizer in [tok, piece_tok] + other_toks:
        (bounds, word), = windows_module._encode(tokenizer, [text])
        enc = tokenizer(text, add_special_tokens=False, split_special_tokens=True, return_offsets_mapping=True)
        assert bounds.tolist() == [list(o) for o in enc["offset_mapping"]]
        whole = enc.word_ids()
        assert [word[k] != word[k - 1] for k in range(1, len(whole))] == \
               [whole[k] != whole[k - 1] for k in range(1, len(whole))]
    assert len(windows_module._piece_cuts(text, True)) > 10


def _greedy_reference(tokenizer, text, budget):
    """Whole sentences packed greedily, each counted on its own (valid when all fit the budget)."""
    ends = sentence_ends(text)
    sentences = [text[a:b] for a, b in zip([0] + ends, ends + [len(text)])]
    windows, current, size = [], "", 0
    for sentence in sentences:
        count = len(_ids(tokenizer, sentence))
        if size + count > budget and size:
            windows.append(current)
            current, size = "", 0
        current, size = current + sentence, size + count
    windows.append(current)
    return [w.strip() for w in windows if w.strip()]


@settings(max_examples=200, deadline=None)
@given(sentences=st.lists(st.tuples(st.lists(st.sampled_from(list("今天比赛球队赢了市场上涨") + ["hello", " the", " "]),
                                             min_size=1, max_size=8),
                                    st.sampled_from(["。", "！", "？”", "!", "?)", ";", "\n", "。\n", "； "])),
                          min_size=1, max_size=20),
       budget=st.integers(10, 20))   # every sentence fits (at most 8 + 2 tokens)
def test_whole_sentences_are_packed_greedily(tok, sentences, budget):
    text = "".join("".join(words) + end for words, end in sentences)
    if len(_ids(tok, text)) <= budget:
        assert split_windows(tok, text, budget) == [text]
    else:
        assert split_windows(tok, text, budget) == _greedy_reference(tok, text, budget)


def test_the_scorer_tokenizes_each_window_as_its_span(tok):
    rng = random.Random(5)
    text = "".join(rng.choice(ATOMS[:60]) for _ in range(3000))
    windows = check_windows(tok, text, 40, 8)
    ids, starts, _ = _full(tok, text)
    scorer_ids = token_ids(tok, windows, 512)   # what the scorer feeds the model for each window
    for span, window in zip(window_spans(tok, text, 40, 8), windows):
        i, j = _token_span(starts, span)
        assert scorer_ids[window] == ids[i:j]


# --- BERT's real vocabularies (the pieces these texts use: tests/fixtures/vocab) ----------------

def _real_tokenizer(tmp_path_factory, name):
    source = VOCAB_DIR / name
    from transformers import BertTokenizer

    folder = tmp_path_factory.mktemp(name.split(".")[0])
    shutil.copy(source, folder / "vocab.txt")
    return BertTokenizer.from_pretrained(str(folder))


def _iflytek_document(limit=15):
    with open(FEWCLUE / "iflytek" / "dev_few_all.json", encoding="utf-8") as handle:
        return "\n".join(json.loads(line)["sentence"] for line, _ in zip(handle, range(limit)))


def test_real_chinese_vocab(tmp_path_factory):
    tokenizer = _real_tokenizer(tmp_path_factory, "bert-base-chinese-vocab-subset.txt")
    text = _iflytek_document()
    for budget, overlap in [(509 - 20, 0), (128, 32), (60, 59), (12, 4)]:
        windows = check_windows(tokenizer, text, budget, overlap)
        assert len(windows) > 1


def test_real_english_vocab(tmp_path_factory):
    tokenizer = _real_tokenizer(tmp_path_factory, "bert-base-uncased-vocab-subset.txt")
    rng = random.Random(7)
    words = ("The committee's unprecedented reorganization surprised everyone! Nevertheless, antidisestablishmentarian"
             " Floccinaucinihilipilification; naïve café résumé — well? \"Quoted!\" (Brackets.) [SEP] 3.14 e-mail"
             " pneumonoultramicroscopicsilicovolcanoconiosis").split(" ")
    text = " ".join(rng.choice(words) + rng.choice(["", "", "", "\n", ". "]) for _ in range(300))
    for budget, overlap in [(400, 50), (64, 16), (12, 5), (5, 0), (3, 2)]:
        check_windows(tokenizer, text, budget, overlap)
    # a word of many pieces, longer than the budget, is cut between its pieces
    windows = split_windows(tokenizer, "pneumonoultramicroscopicsilicovolcanoconiosis", 4)
    assert len(windows) > 1 and "".join(windows) == "pneumonoultramicroscopicsilicovolcanoconiosis"


def test_a_text_longer_than_the_chunk_limit_is_refused_before_it_is_tokenized(monkeypatch):
    import nspzero.windows as windows

    class NoTokenizer:
        def __call__(self, *args, **kwargs):
            raise AssertionError("tokenized before the size check")

    monkeypatch.setattr(windows, "MAX_CHUNK_CHARS", 100)
    with pytest.raises(UsageError, match=r"^a text of 101 characters is longer than long_text='chunk' reads \(100 "
                                         r"characters, about 10 windows\); split it into parts first$"):
        windows.split_windows(NoTokenizer(), "字" * 101, 10)

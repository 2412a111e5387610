"""The score cache: its fingerprint changes whenever anything that decides a score changes (weights
or vocab replaced in place included), file hashes are memoised, garbage lines never block a resume."""
from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from nspzero import NSPScorer, Pair
from nspzero.cache import ScoreCache, pair_key, scorer_fingerprint
from nspzero.errors import DataError

from conftest import VOCAB, build_model_dir
from bad_input import Files, case, check_case


@pytest.fixture(autouse=True)
def _memo_in_tmp(tmp_path, monkeypatch):
    monkeypatch.setenv("NSPZERO_CACHE_DIR", str(tmp_path / "memo"))


def _fp(path, **kwargs) -> str:
    return scorer_fingerprint(NSPScorer.from_pretrained(path, device="cpu", **kwargs))


def test_fingerprint_is_stable_across_loads(model_copy):
    assert _fp(model_copy) == _fp(model_copy)


def test_replacing_encoder_weights_in_place_changes_the_fingerprint(model_copy, tmp_path):
    before = _fp(model_copy)
    other = build_model_dir(tmp_path / "other", seed=7)  # same config and vocab, other weights
    shutil.copy(os.path.join(other, "model.safetensors"), os.path.join(model_copy, "model.safetensors"))
    assert _fp(model_copy) != before


def test_changing_one_deep_encoder_weight_in_place_changes_the_fingerprint(model_copy):
    from transformers import BertForPreTraining

    before = _fp(model_copy)
    model = BertForPreTraining.from_pretrained(model_copy)
    with torch.no_grad():  # a tensor the old fingerprint never looked at
        model.bert.encoder.layer[1].intermediate.dense.bias[3] += 1e-3
    model.save_pretrained(model_copy)
    assert _fp(model_copy) != before


def test_replacing_vocab_in_place_changes_the_fingerprint(model_copy):
    before = _fp(model_copy)
    vocab = VOCAB[:5] + list(reversed(VOCAB[5:]))  # same size, other ids
    for name in ("vocab.txt",):
        with open(os.path.join(model_copy, name), "w", encoding="utf-8") as handle:
            handle.write("\n".join(vocab) + "\n")
    assert _fp(model_copy) != before


def test_settings_change_the_fingerprint(model_copy):
    assert len({_fp(model_copy), _fp(model_copy, max_length=64), _fp(model_copy, dtype="int8")}) == 3


def test_in_memory_model_fingerprint_covers_every_tensor(model_dir):
    scorer = NSPScorer.from_pretrained(model_dir, device="cpu")
    scorer.model.name_or_path = ""  # as if built in memory: the tensors themselves are hashed
    before = scorer_fingerprint(scorer)
    with torch.no_grad():
        scorer.model.bert.encoder.layer[0].attention.self.query.weight[0, 0] += 1e-4
    assert scorer_fingerprint(scorer) != before


def test_unwritable_memo_dir_costs_only_the_memo(model_copy, tmp_path, monkeypatch):
    blocker = tmp_path / "blocker"
    blocker.write_text("a file, not a folder")
    monkeypatch.setenv("NSPZERO_CACHE_DIR", str(blocker / "sub"))
    assert _fp(model_copy) == _fp(model_copy)


# ---- the scores file ---------------------------------------------------------------------------
def _warnings(caplog):
    return [r.getMessage() for r in caplog.records if r.name == "nspzero" and r.levelno == logging.WARNING]



def test_garbage_lines_are_skipped_with_one_warning(tmp_path, nspzero_caplog):
    path = tmp_path / "scores.jsonl"
    good = [Pair("体育", "今天"), Pair("财经", "今天")]
    lines = [json.dumps([pair_key(good[0]), 0.25]), "garbage", '{"a": 1}', json.dumps(["k", "0.5"]),
             json.dumps(["k", float("nan")]), json.dumps(["k", 1.5]), json.dumps(["k", True]), "[" * 5000,
             json.dumps([pair_key(good[1]), 0.75])]
    path.write_bytes(("\n".join(lines) + "\n").encode() + b"\xff\xfe binary\n" + b'["cut short", 0.')
    cache = ScoreCache(path)
    scores, todo = cache.lookup(good + [Pair("x", "y")])
    assert scores[:2].tolist() == [0.25, 0.75] and todo == [2]
    assert cache.skipped == 9
    messages = _warnings(nspzero_caplog)
    assert len(messages) == 1 and "skipped 9 unreadable line(s)" in messages[0]
    cache.add([Pair("x", "y")], [0.5])  # a resume appends on a fresh line after the cut one
    cache.close()
    assert ScoreCache(path).lookup([Pair("x", "y")])[0].tolist() == [0.5]


def test_clean_cache_gives_no_warning(tmp_path, nspzero_caplog):
    path = tmp_path / "scores.jsonl"
    cache = ScoreCache(path)
    cache.add([Pair("a", "b")], [0.5])
    cache.close()
    assert len(ScoreCache(path)) == 1 and _warnings(nspzero_caplog) == []


def test_cache_folder_that_is_a_file_is_one_data_error(tmp_path):
    (tmp_path / "cache").write_text("not a folder")
    with pytest.raises(DataError, match="cache/ must be a writable folder"):
        ScoreCache(tmp_path / "cache" / "scores.jsonl")


def test_scores_are_read_back_exactly(tmp_path):
    path = tmp_path / "scores.jsonl"
    values = np.random.default_rng(0).random(20)
    pairs = [Pair(str(i), "t") for i in range(20)]
    cache = ScoreCache(path)
    cache.add(pairs, values)
    cache.close()
    assert ScoreCache(path).lookup(pairs)[0].tolist() == values.tolist()


BAD_INPUT = [
    case("cache-dir-is-a-file",
         lambda e: ScoreCache(Path(e.file("out/cache", "x")) / "s.jsonl"),
         DataError, "cache/ must be a writable folder"),
]


@pytest.mark.parametrize("fn, exc, message", BAD_INPUT)
def test_bad_input_is_a_one_line_error(tmp_path, monkeypatch, fn, exc, message):
    """The score cache refuses a folder it cannot write, saying which."""
    check_case(fn, Files(tmp_path, monkeypatch), exc, message)


def test_int8_fingerprint_includes_the_activation_range(model_copy, monkeypatch):
    """7- or 8-bit activations (by CPU) give different int8 scores: a cache from the other scheme is not reused."""
    from nspzero import cpu

    fps = {}
    for vnni in (True, False):
        monkeypatch.setattr(cpu, "has_vnni", lambda vnni=vnni: vnni)
        fps[vnni] = _fp(model_copy, dtype="int8")
    assert fps[True] != fps[False]
    assert _fp(model_copy, dtype="int8") == fps[False]
